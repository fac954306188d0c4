// Schema versions, init, upgrade from schema 1, check, stats, and the bcadm command.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <lmdb.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "accounting_db/codec.hpp"
#include "accounting_db/rollup.hpp"
#include "store_test_util.hpp"

using namespace bc::store;
using namespace bc::store::testing;

namespace {

// Raw LMDB access, to build stores of another schema and to damage stores on purpose.
struct RawEnv {
  MDB_env* env = nullptr;
  explicit RawEnv(const std::string& path) {
    EXPECT_EQ(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    mdb_env_set_mapsize(env, 64ULL << 20);
    EXPECT_EQ(mdb_env_open(env, path.c_str(), 0, 0644), 0) << path;
  }
  ~RawEnv() { mdb_env_close(env); }
  void put(const char* table, const std::string& key, const std::string& value) {
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn, table, MDB_CREATE, &dbi), 0);
    MDB_val k{key.size(), const_cast<char*>(key.data())}, v{value.size(), const_cast<char*>(value.data())};
    ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
  }
  // The first key/value of a table, or nothing.
  std::optional<std::pair<std::string, std::string>> first(const char* table) {
    MDB_txn* txn = nullptr;
    EXPECT_EQ(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn), 0);
    MDB_dbi dbi;
    std::optional<std::pair<std::string, std::string>> out;
    if (mdb_dbi_open(txn, table, 0, &dbi) == 0) {
      MDB_cursor* c = nullptr;
      mdb_cursor_open(txn, dbi, &c);
      MDB_val k, v;
      if (mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0)
        out = std::pair{std::string(static_cast<char*>(k.mv_data), k.mv_size),
                        std::string(static_cast<char*>(v.mv_data), v.mv_size)};
      mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
    return out;
  }
  bool has_table(const char* table) {
    MDB_txn* txn = nullptr;
    EXPECT_EQ(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn), 0);
    MDB_dbi dbi;
    bool ok = mdb_dbi_open(txn, table, 0, &dbi) == 0;
    mdb_txn_abort(txn);
    return ok;
  }
};

std::string be(uint64_t v, int width) {
  std::string s;
  for (int i = width - 1; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// A schema-1 store as the walking skeleton wrote it: one key per sample.
std::vector<RefPoint> make_v1_store(const std::string& path, int64_t t0) {
  std::filesystem::create_directories(path);
  RawEnv raw(path);
  raw.put("meta", "schema_version", be(1, 4));
  raw.put("meta", "next_node_id", be(2, 4));
  raw.put("nodes", "n1", be(1, 4));
  JobRecord j;
  j.job_id = 5;
  j.node = "n1";
  j.user = "carol";
  j.start_ms = t0 * 1000;
  std::string job = codec::encode_job(j);  // format 2: a format tag of 2 first, 8 bytes of events last
  job[0] = 1;
  job.resize(job.size() - 8);
  raw.put("jobs", be(5, 8) + be(1, 4), job);
  ProcessRecord p;
  p.job_id = 5;
  p.node = "n1";
  p.pid = 77;
  p.start_ticks = 9;
  p.series_id = 1;
  p.command = "old";
  p.cpu_ns = 123;
  // format 3: a format tag of 3 first, a flags byte, then 3 bytes of exit status last
  std::string rec = codec::encode_process(p);
  rec[0] = 1;
  rec.resize(rec.size() - 4);
  raw.put("processes", be(5, 8) + be(1, 4) + be(77, 4) + be(9, 8), rec);
  raw.put("series_alloc", be(5, 8) + be(1, 4), be(2, 4));
  std::vector<RefPoint> points;
  uint64_t cpu = 0;
  for (int64_t t = t0; t < t0 + 600; t += (t % 7 == 0 ? 5 : 1)) {
    cpu += 300'000'000;
    points.push_back({t, cpu, 4096 * static_cast<uint64_t>(t % 50), 0, 0});
    for (uint32_t series : {0U, 1U}) {
      Sample s{series, t, cpu, 4096 * static_cast<uint64_t>(t % 50), 0, 0};
      raw.put("samples", be(5, 8) + be(1, 4) + be(series, 4) + be(0, 1) + be(static_cast<uint64_t>(t), 4),
              codec::encode_sample(s));
    }
  }
  return points;
}

struct Outcome {
  int status = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Outcome bcadm(const std::vector<std::string>& args) {
  char out_path[] = "/tmp/bcadm-out-XXXXXX", err_path[] = "/tmp/bcadm-err-XXXXXX";
  const int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
  std::vector<std::string> storage = {BCADM_BINARY};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string env1 = "PATH=/usr/bin:/bin", env2 = "BC_CONFIG_UNUSED=1";
  char* envp[] = {env1.data(), env2.data(), nullptr};
  Outcome r;
  const pid_t pid = fork();
  if (pid == 0) {
    if (dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) _exit(126);
    execve(argv[0], argv.data(), envp);
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) == pid && WIFEXITED(status)) r.status = WEXITSTATUS(status);
  close(out_fd);
  close(err_fd);
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  unlink(out_path);
  unlink(err_path);
  return r;
}

void write_some(Store& store, uint64_t job, int64_t t0, int seconds) {
  uint64_t cpu = 0;
  for (int64_t t = t0; t < t0 + seconds; ++t) {
    cpu += 10'000'000;
    Batch b;
    b.job.job_id = job;
    b.job.node = "n1";
    b.job_sample = Sample{0, t, cpu, 8192, 0, 0};
    ProcessUpdate u;
    u.record.pid = 10;
    u.record.start_ticks = 1;
    u.record.cpu_ns = cpu;
    u.sample = Sample{0, t, cpu, 0, 0, 0};
    b.processes.push_back(u);
    store.write_batch(b);
  }
}

}  // namespace

TEST(StoreSchema, InitCreatesOnceAndOpenFindsIt) {
  TempDir dir;
  EXPECT_TRUE(Store::init(dir.store(), test_options()));
  EXPECT_FALSE(Store::init(dir.store(), test_options()));
  OpenOptions ro = test_options();
  ro.read_only = true;
  ro.create = false;
  EXPECT_EQ(Store::open(dir.store(), ro)->schema_version(), kSchemaVersion);
}

TEST(StoreSchema, OlderSchemaIsRefusedWithAPointerToUpgrade) {
  TempDir dir;
  make_v1_store(dir.store(), 1'800'000'000);
  for (bool read_only : {false, true}) {
    OpenOptions o = test_options();
    o.read_only = read_only;
    try {
      Store::open(dir.store(), o);
      FAIL() << "expected StoreError";
    } catch (const StoreError& e) {
      EXPECT_NE(std::string(e.what()).find("schema version 1, older"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("bcadm db upgrade"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(Store::init(dir.store(), test_options()), StoreError);
}

TEST(StoreSchema, UpgradeMigratesSchemaOneData) {
  TempDir dir;
  const int64_t t0 = 1'800'000'000;
  std::vector<RefPoint> points = make_v1_store(dir.store(), t0);
  UpgradeReport r = Store::upgrade(dir.store(), test_options());
  EXPECT_EQ(r.from_version, 1u);
  EXPECT_EQ(r.to_version, kSchemaVersion);
  EXPECT_EQ(r.samples_migrated, 2 * points.size());
  {
    RawEnv raw(dir.store());
    EXPECT_FALSE(raw.has_table("samples"));
  }
  auto store = Store::open(dir.store(), test_options());
  EXPECT_EQ(store->schema_version(), kSchemaVersion);
  for (uint32_t series : {0U, 1U}) {
    auto raw = store->series(5, "n1", series, 0, INT64_MAX);
    ASSERT_EQ(raw.size(), points.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      EXPECT_EQ(raw[i].time_s, points[i].t);
      EXPECT_EQ(raw[i].cpu_ns, points[i].cpu);
    }
    for (Resolution res : {Resolution::Minute, Resolution::Hour, Resolution::Day})
      EXPECT_EQ(store->query_series({5, "n1", series, 0, INT64_MAX, res}).buckets,
                reference_rollup(points, bucket_seconds(res)));
  }
  auto procs = store->processes(5);
  ASSERT_EQ(procs.size(), 1u);
  EXPECT_EQ(procs[0].command, "old");
  EXPECT_EQ(procs[0].cpu_ns, 123u);  // a schema-1 record keeps its own counters
  EXPECT_EQ(store->job(5, "n1")->user, "carol");
  CheckReport check = store->check();
  EXPECT_TRUE(check.ok()) << (check.problems.empty() ? "" : check.problems.front());
  // New data goes on from there.
  write_some(*store, 5, t0 + 600, 30);
  EXPECT_EQ(store->series(5, "n1", 0, 0, INT64_MAX).size(), points.size() + 30);
  store.reset();
  EXPECT_EQ(Store::upgrade(dir.store(), test_options()).from_version, kSchemaVersion);  // nothing to do
}

TEST(StoreCheck, FindsDamagedRollupsAndChunks) {
  TempDir dir;
  {
    auto store = Store::open(dir.store(), test_options());
    write_some(*store, 1, 1'800'000'000, 300);
    EXPECT_TRUE(store->check().ok());
  }
  {
    // A minute rollup that no longer matches its seconds.
    RawEnv raw(dir.store());
    auto first = raw.first("series_m");
    ASSERT_TRUE(first);
    codec::Buckets b = codec::decode_buckets(first->second);
    ASSERT_FALSE(b.empty());
    b[0].second.samples += 1;
    raw.put("series_m", first->first, codec::encode_buckets(b));
  }
  {
    auto store = Store::open(dir.store(), test_options());
    CheckReport check = store->check();
    EXPECT_FALSE(check.ok());
    ASSERT_FALSE(check.problems.empty());
    bool minute = false, hour = false;
    for (const auto& p : check.problems) {
      minute |= p.find("minute rollup does not match the seconds") != std::string::npos;
      hour |= p.find("next resolution's bucket is not the merge") != std::string::npos;
    }
    EXPECT_TRUE(minute && hour) << check.problems.front();
  }
  {
    // A sealed chunk that does not decode.
    RawEnv raw(dir.store());
    auto first = raw.first("series_s");
    ASSERT_TRUE(first);
    raw.put("series_s", first->first, first->second.substr(0, first->second.size() - 1) + "\xff");
  }
  auto store = Store::open(dir.store(), test_options());
  CheckReport check = store->check();
  bool chunk = false;
  for (const auto& p : check.problems) chunk |= p.find("series_s table") != std::string::npos;
  EXPECT_TRUE(chunk);
}

TEST(StoreStatsTest, ReportsTablesResolutionsAndFill) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  write_some(*store, 1, 1'800'000'000, 200);
  StoreStats s = store->stats();
  EXPECT_EQ(s.schema_version, kSchemaVersion);
  EXPECT_EQ(s.samples_second, 400u);  // two series
  EXPECT_GT(s.fill_ratio, 0.0);
  EXPECT_LE(s.fill_ratio, 1.0);
  EXPECT_EQ(s.map_bytes, 64ULL << 20);
  uint64_t sum = 0;
  int with_resolution = 0;
  for (const auto& t : s.tables) {
    sum += t.bytes;
    if (t.resolution) ++with_resolution;
    if (t.name == "series_s") {
      EXPECT_EQ(t.resolution, Resolution::Second);
      EXPECT_EQ(t.entries, 2u * 3);  // three sealed minutes of each series
    }
  }
  EXPECT_EQ(with_resolution, kResolutions);
  EXPECT_EQ(sum, s.in_use_bytes);
  EXPECT_LE(s.last_page_bytes, s.map_bytes);
}

TEST(Bcadm, InitCheckStatsSweepUpgrade) {
  TempDir dir;
  Outcome r = bcadm({"db", "init", "--store", dir.store()});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("created store"), std::string::npos) << r.out;
  r = bcadm({"db", "init", "-s", dir.store()});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("already exists"), std::string::npos) << r.out;
  {
    auto store = Store::open(dir.store(), test_options());
    write_some(*store, 1, 1'800'000'000, 150);
  }
  r = bcadm({"db", "stats", "--store", dir.store()});
  EXPECT_EQ(r.status, 0) << r.err;
  for (const char* want : {"map fill ratio", "series_s       second", "series_m       minute", "series_h       hour",
                           "series_d       day", "second samples   300 points"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  r = bcadm({"db", "check", "--store", dir.store()});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("check ok"), std::string::npos);
  r = bcadm({"db", "sweep", "--store", dir.store()});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("swept 1 job(s)"), std::string::npos) << r.out;
  {
    RawEnv raw(dir.store());
    auto first = raw.first("series_m");
    codec::Buckets b = codec::decode_buckets(first->second);
    b[0].second.cpu_ns += 1;
    raw.put("series_m", first->first, codec::encode_buckets(b));
  }
  r = bcadm({"db", "check", "--store", dir.store()});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("problem: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("check FAILED"), std::string::npos) << r.out;

  TempDir old;
  make_v1_store(old.store(), 1'800'000'000);
  r = bcadm({"db", "stats", "--store", old.store()});
  EXPECT_EQ(r.status, 3);
  EXPECT_NE(r.err.find("bcadm db upgrade"), std::string::npos) << r.err;
  r = bcadm({"db", "upgrade", "--store", old.store()});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("from schema version 1 to " + std::to_string(kSchemaVersion)), std::string::npos) << r.out;
  r = bcadm({"db", "check", "--store", old.store()});
  EXPECT_EQ(r.status, 0) << r.out;
}

TEST(Bcadm, UsageErrorsAndMissingStores) {
  TempDir dir;
  EXPECT_EQ(bcadm({}).status, 2);
  EXPECT_EQ(bcadm({"db"}).status, 2);
  EXPECT_EQ(bcadm({"db", "frobnicate", "--store", dir.store()}).status, 2);
  EXPECT_EQ(bcadm({"table", "check"}).status, 2);
  EXPECT_EQ(bcadm({"db", "check", "--bogus"}).status, 2);
  EXPECT_EQ(bcadm({"db", "check", "--store"}).status, 2);
  Outcome r = bcadm({"db", "check", "--store", dir.file("absent")});
  EXPECT_EQ(r.status, 3);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  r = bcadm({"--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("Usage: bcadm db COMMAND"), std::string::npos);
  for (const char* group : {"token", "apikey", "ship"}) {  // help after a central command, not "needs a value"
    r = bcadm({group, "--help"});
    EXPECT_EQ(r.status, 0) << group << ": " << r.err;
    EXPECT_NE(r.out.find("bcadm token --job ID"), std::string::npos) << group;
  }
  { std::ofstream(dir.file("bad.conf")) << "BC_RETENTION_WEEKS=1\n"; }
  Store::init(dir.store(), test_options());
  r = bcadm({"db", "sweep", "--store", dir.store(), "--config", dir.file("bad.conf")});
  EXPECT_EQ(r.status, 3);
  EXPECT_NE(r.err.find("unknown key 'BC_RETENTION_WEEKS'"), std::string::npos) << r.err;
}
