#include <gtest/gtest.h>
#include <lmdb.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "accounting_db/codec.hpp"
#include "accounting_db/store.hpp"

using namespace bc::store;
namespace fs = std::filesystem;

namespace {
struct TempDir {
  fs::path path;
  TempDir() {
    char t[] = "/tmp/bc-store-XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string store() const { return (path / "node.lmdb").string(); }
};

ProcessRecord make_process(uint32_t pid, uint64_t start_ticks) {
  ProcessRecord p;
  p.pid = pid;
  p.ppid = 1;
  p.step = 0;
  p.start_ticks = start_ticks;
  p.start_ms = 1700000000000 + pid;
  p.command = "cmd" + std::to_string(pid);
  p.exe = "/bin/cmd";
  p.argv = {"cmd", "--flag", ""};
  p.cpu_ns = 123456789;
  p.max_rss = 1 << 20;
  p.read_bytes = 4096;
  p.write_bytes = 8192;
  return p;
}

Batch make_batch(uint64_t job, const std::string& node, int64_t t, std::vector<ProcessRecord> procs) {
  Batch b;
  b.job.job_id = job;
  b.job.node = node;
  b.job.user = "alice";
  b.job.uid = 1000;
  b.job.steps = {0, kStepBatch};
  b.job.start_ms = 1700000000000;
  b.job_sample = Sample{0, t, 1, 2, 3, 4};
  for (auto& p : procs) b.processes.push_back({p, Sample{0, t, p.cpu_ns, p.rss, p.read_bytes, p.write_bytes}});
  return b;
}
}  // namespace

TEST(Codec, VarintRoundTripsExtremes) {
  codec::Encoder e;
  std::vector<uint64_t> values = {0, 1, 127, 128, 16383, 16384, UINT32_MAX, UINT64_MAX};
  for (auto v : values) e.u64(v);
  for (int64_t v : {INT64_MIN, int64_t{-1}, int64_t{0}, int64_t{1}, INT64_MAX}) e.i64(v);
  e.str("");
  e.str(std::string("a\0b", 3));
  codec::Decoder d(e.bytes());
  for (auto v : values) EXPECT_EQ(d.u64(), v);
  for (int64_t v : {INT64_MIN, int64_t{-1}, int64_t{0}, int64_t{1}, INT64_MAX}) EXPECT_EQ(d.i64(), v);
  EXPECT_EQ(d.str(), "");
  EXPECT_EQ(d.str(), std::string("a\0b", 3));
  EXPECT_TRUE(d.done());
  // Small numbers stay small.
  codec::Encoder small;
  small.u64(100);
  EXPECT_EQ(small.bytes().size(), 1u);
}

TEST(Codec, TruncatedInputIsAnError) {
  std::string full = codec::encode_process(make_process(7, 9));
  for (size_t cut = 0; cut < full.size(); ++cut)
    EXPECT_THROW(codec::decode_process(std::string_view(full).substr(0, cut)), StoreError) << cut;
  codec::Decoder d("\xff\xff");
  EXPECT_THROW(d.u64(), StoreError);
}

TEST(Codec, RecordsRoundTrip) {
  JobRecord j;
  j.job_id = 42;
  j.node = "n1";
  j.uid = 1000;
  j.user = "bob";
  j.steps = {0, 1, kStepBatch};
  j.start_ms = 1700000000123;
  j.end_ms = 1700000999999;
  j.has_cgroup_memory = true;
  j.cgroup_mem_peak = 1ULL << 40;
  j.monitor_max_rss = 5555;
  JobRecord j2 = codec::decode_job(codec::encode_job(j));
  EXPECT_EQ(j2.job_id, 42u);
  EXPECT_EQ(j2.node, "n1");
  EXPECT_EQ(j2.user, "bob");
  EXPECT_EQ(j2.steps, j.steps);
  EXPECT_EQ(j2.end_ms, j.end_ms);
  EXPECT_TRUE(j2.has_cgroup_memory);
  EXPECT_FALSE(j2.has_cgroup_cpu);
  EXPECT_EQ(j2.cgroup_mem_peak, 1ULL << 40);
  EXPECT_EQ(j2.monitor_max_rss, 5555u);

  ProcessRecord p = make_process(99, 12345);
  ProcessRecord p2 = codec::decode_process(codec::encode_process(p));
  EXPECT_EQ(p2.pid, 99u);
  EXPECT_EQ(p2.argv, p.argv);
  EXPECT_EQ(p2.start_ticks, 12345u);
  EXPECT_EQ(p2.cpu_ns, p.cpu_ns);
}

TEST(Codec, BigEndianKeysSortNumerically) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 1000; ++i) {
    uint64_t a = rng(), b = rng();
    uint32_t c = static_cast<uint32_t>(rng()), d = static_cast<uint32_t>(rng());
    std::string ka = codec::Key().u64(a).u32(c).bytes(), kb = codec::Key().u64(b).u32(d).bytes();
    EXPECT_EQ(ka < kb, std::make_pair(a, c) < std::make_pair(b, d));
  }
}

// A node name past its bound (it is part of LMDB keys, which stop at 511 bytes) is the batch's own error,
// named, with nothing written; the longest allowed is stored.
TEST(Store, NamesPastTheirBoundsAreRefused) {
  TempDir dir;
  auto store = Store::open(dir.store());
  Batch b = make_batch(42, std::string(600, 'n'), 1700000000, {make_process(10, 100)});
  try {
    store->write_batch(b);
    ADD_FAILURE() << "a 600-byte node name was written";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("node name of 600 bytes"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(store->job_ids().empty());
  Batch longest = make_batch(42, std::string(kMaxNodeNameBytes, 'n'), 1700000000, {make_process(10, 100)});
  store->write_batch(longest);
  EXPECT_TRUE(store->job(42, std::string(kMaxNodeNameBytes, 'n')));
}

TEST(Store, WriteAndReadBack) {
  TempDir dir;
  auto store = Store::open(dir.store());
  EXPECT_EQ(store->schema_version(), kSchemaVersion);
  Batch b = make_batch(42, "n1", 1700000000, {make_process(10, 100), make_process(11, 101)});
  store->write_batch(b);
  EXPECT_EQ(b.processes[0].record.series_id, 1u);
  EXPECT_EQ(b.processes[1].record.series_id, 2u);

  auto job = store->job(42, "n1");
  ASSERT_TRUE(job);
  EXPECT_EQ(job->user, "alice");
  EXPECT_FALSE(store->job(42, "n2"));
  EXPECT_FALSE(store->job(43, "n1"));
  auto procs = store->processes(42);
  ASSERT_EQ(procs.size(), 2u);
  EXPECT_EQ(procs[0].node, "n1");
  EXPECT_EQ(procs[0].job_id, 42u);
  EXPECT_TRUE(store->processes(41).empty());

  // Next tick: same processes keep their series; a new one gets the next id.
  Batch b2 = make_batch(42, "n1", 1700000001, {make_process(10, 100), make_process(12, 102)});
  store->write_batch(b2);
  EXPECT_EQ(b2.processes[0].record.series_id, 1u);
  EXPECT_EQ(b2.processes[1].record.series_id, 3u);
  auto s = store->series(42, "n1", 1, 0, INT64_MAX);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].time_s, 1700000000);
  EXPECT_EQ(s[1].time_s, 1700000001);
  EXPECT_EQ(s[1].cpu_ns, 123456789u);
  EXPECT_EQ(store->series(42, "n1", 0, 1700000001, 1700000001).size(), 1u);
  EXPECT_TRUE(store->series(42, "nX", 0, 0, INT64_MAX).empty());
}

TEST(Store, TwoNodesOfOneJob) {
  TempDir dir;
  auto store = Store::open(dir.store());
  Batch a = make_batch(7, "n1", 100, {make_process(10, 1)});
  Batch b = make_batch(7, "n2", 100, {make_process(10, 1)});
  Batch other = make_batch(8, "n1", 100, {make_process(20, 1)});
  store->write_batch(a);
  store->write_batch(b);
  store->write_batch(other);
  EXPECT_EQ(store->job_nodes(7).size(), 2u);
  EXPECT_EQ(store->processes(7).size(), 2u);
  EXPECT_EQ(store->job_ids(), (std::vector<uint64_t>{7, 8}));
  // A listing's read: each job once, with its records of every node.
  const auto all = store->all_job_records();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].first, 7u);
  ASSERT_EQ(all[0].second.size(), 2u);
  EXPECT_EQ(all[0].second[0].node, "n1");
  EXPECT_EQ(all[0].second[1].node, "n2");
  EXPECT_EQ(all[1].first, 8u);
  ASSERT_EQ(all[1].second.size(), 1u);
}

TEST(Store, ReadOnlyOpenOfMissingStoreIsAClearError) {
  TempDir dir;
  OpenOptions ro;
  ro.read_only = true;
  ro.create = false;
  try {
    Store::open(dir.store(), ro);
    FAIL() << "expected StoreError";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
}

TEST(Store, RefusesNewerSchema) {
  TempDir dir;
  Store::open(dir.store());  // create
  {
    MDB_env* env = nullptr;
    ASSERT_EQ(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    ASSERT_EQ(mdb_env_open(env, dir.store().c_str(), 0, 0644), 0);
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    std::string key = "schema_version", value = codec::Key().u32(kSchemaVersion + 1).bytes();
    MDB_val k{key.size(), key.data()}, v{value.size(), value.data()};
    ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
  }
  try {
    Store::open(dir.store());
    FAIL() << "expected StoreError";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }
}

TEST(Store, GrowsTheMapWhenFull) {
  TempDir dir;
  OpenOptions small;
  small.initial_map_bytes = 64 << 10;
  small.map_growth_step_bytes = 256 << 10;
  auto store = Store::open(dir.store(), small);
  std::vector<ProcessRecord> procs;
  for (uint32_t pid = 1; pid <= 50; ++pid) procs.push_back(make_process(pid, pid));
  for (int t = 0; t < 100; ++t) {
    Batch b = make_batch(1, "n1", 1000 + t, procs);
    ASSERT_NO_THROW(store->write_batch(b));
  }
  EXPECT_EQ(store->series(1, "n1", 50, 0, INT64_MAX).size(), 100u);
}

// A write that hits the map's end is tried again in a grown map: samples it rejected (a time out of range)
// are counted once, by the attempt that committed.
TEST(Store, RejectedSamplesAreCountedOnceAcrossRetries) {
  TempDir dir;
  OpenOptions small;
  small.initial_map_bytes = 64 << 10;
  small.map_growth_step_bytes = 64 << 10;
  small.grow_at_fill = 1.0;  // no growth ahead: the map grows when a write hits its end, and that write is retried
  auto store = Store::open(dir.store(), small);
  std::vector<ProcessRecord> procs;
  for (uint32_t pid = 1; pid <= 50; ++pid) procs.push_back(make_process(pid, pid));
  const uint64_t map_before = store->stats().map_bytes;
  for (int t = 0; t < 100; ++t) {
    Batch b = make_batch(1, "n1", 1000 + t, procs);
    b.processes[7].sample->time_s = -1;
    ASSERT_NO_THROW(store->write_batch(b));
  }
  EXPECT_GT(store->stats().map_bytes, map_before);  // it did grow, so writes were retried
  EXPECT_EQ(store->dropped_samples().rejected, 100u);
  EXPECT_EQ(store->series(1, "n1", 50, 0, INT64_MAX).size(), 100u);
}

TEST(Store, ConcurrentWriterProcessesLoseNothing) {
  TempDir dir;
  Store::open(dir.store());
  constexpr int kWriters = 8, kTicks = 60, kProcs = 5;
  std::vector<pid_t> children;
  for (int w = 0; w < kWriters; ++w) {
    pid_t pid = fork();
    if (pid == 0) {
      int rc = 0;
      try {
        auto store = Store::open(dir.store());
        std::vector<ProcessRecord> procs;
        for (uint32_t p = 1; p <= kProcs; ++p) procs.push_back(make_process(p, p));
        for (int t = 0; t < kTicks; ++t) {
          Batch b = make_batch(static_cast<uint64_t>(100 + w), "n1", 1000 + t, procs);
          store->write_batch(b);
        }
      } catch (...) {
        rc = 1;
      }
      _exit(rc);
    }
    children.push_back(pid);
  }
  // A reader runs alongside the writers and never blocks them.
  auto reader = Store::open(dir.store());
  for (int i = 0; i < 20; ++i) (void)reader->job_ids();
  for (pid_t c : children) {
    int status = 0;
    waitpid(c, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto store = Store::open(dir.store());
  ASSERT_EQ(store->job_ids().size(), static_cast<size_t>(kWriters));
  for (int w = 0; w < kWriters; ++w) {
    uint64_t job = static_cast<uint64_t>(100 + w);
    EXPECT_EQ(store->processes(job).size(), static_cast<size_t>(kProcs));
    EXPECT_EQ(store->series(job, "n1", 0, 0, INT64_MAX).size(), static_cast<size_t>(kTicks));
    EXPECT_EQ(store->series(job, "n1", kProcs, 0, INT64_MAX).size(), static_cast<size_t>(kTicks));
  }
}
