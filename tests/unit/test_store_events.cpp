// eBPF event records in the store: exit status on processes, files and connections per process (increments
// added up per identity), the job's lost-event counts and unavailability reason, schema 2 -> 3.
#include <gtest/gtest.h>
#include <lmdb.h>

#include "accounting_db/codec.hpp"
#include "store_test_util.hpp"

using namespace bc::store;
using namespace bc::store::testing;

namespace {

constexpr int64_t kT0 = 1'800'000'000;

FileRecord file(uint32_t pid, uint64_t start, const std::string& path, uint32_t flags, uint64_t opens, uint64_t failed,
                int64_t first_ms) {
  FileRecord f;
  f.pid = pid;
  f.start_ticks = start;
  f.path = path;
  f.flags = flags;
  f.opens = opens;
  f.failed = failed;
  f.first_ms = first_ms;
  return f;
}

ConnectionRecord conn(uint32_t pid, uint64_t start, const std::string& address, uint16_t port, const std::string& proto,
                      uint64_t count, uint64_t failed) {
  ConnectionRecord c;
  c.pid = pid;
  c.start_ticks = start;
  c.address = address;
  c.port = port;
  c.protocol = proto;
  c.count = count;
  c.failed = failed;
  c.first_ms = kT0 * 1000 + 5;
  return c;
}

Batch tick(uint64_t job, const std::string& node, int64_t t) {
  Batch b;
  b.job.job_id = job;
  b.job.node = node;
  b.job.last_sample_ms = t * 1000;
  b.job_sample = Sample{0, t, 0, 0, 0, 0};
  return b;
}

template <typename Record>
const Record* find_path(const std::vector<Record>& records, uint32_t pid, const std::string& key) {
  for (const auto& r : records) {
    if constexpr (std::is_same_v<Record, FileRecord>) {
      if (r.pid == pid && r.path == key) return &r;
    } else {
      if (r.pid == pid && r.address == key) return &r;
    }
  }
  return nullptr;
}

}  // namespace

TEST(EventCodec, FileAndConnectionRecordsRoundTripAndRejectTruncation) {
  FileRecord f = file(7, 99, "/etc/passwd", kFileRead | kFileWrite, 10000, 3, kT0 * 1000 + 1);
  f.job_id = 4;
  f.node = "n1";
  f.read_bytes = 1ULL << 40;
  f.write_bytes = 12;
  EXPECT_EQ(codec::decode_file(codec::encode_file(f)), f);
  ConnectionRecord c = conn(7, 99, "::1", 65535, "tcp", 5, 2);
  c.job_id = 4;
  c.node = "n1";
  EXPECT_EQ(codec::decode_connection(codec::encode_connection(c)), c);
  const std::string fb = codec::encode_file(f), cb = codec::encode_connection(c);
  for (size_t cut = 0; cut < fb.size(); ++cut) EXPECT_THROW(codec::decode_file(fb.substr(0, cut)), StoreError) << cut;
  for (size_t cut = 0; cut < cb.size(); ++cut)
    EXPECT_THROW(codec::decode_connection(cb.substr(0, cut)), StoreError) << cut;
  EXPECT_THROW(codec::decode_file(fb + "x"), StoreError);
}

TEST(EventCodec, ProcessExitStatusAndJobLossRoundTrip) {
  ProcessRecord p;
  p.pid = 5;
  p.argv = {"sh", "-c", "exit 3"};
  p.exited = true;
  p.exit_code = -1;
  p.exit_signal = 9;
  p.core_dumped = true;
  p.argv_truncated = true;
  p.exact = true;
  ProcessRecord q = codec::decode_process(codec::encode_process(p));
  EXPECT_TRUE(q.exited);
  EXPECT_EQ(q.exit_code, -1);
  EXPECT_EQ(q.exit_signal, 9);
  EXPECT_TRUE(q.core_dumped);
  EXPECT_TRUE(q.argv_truncated);
  EXPECT_TRUE(q.exact);
  p.exit_code = 255;
  p.exit_signal = 0;
  p.core_dumped = false;
  q = codec::decode_process(codec::encode_process(p));
  EXPECT_EQ(q.exit_code, 255);
  EXPECT_FALSE(q.core_dumped);

  JobRecord j;
  j.job_id = 1;
  j.events_unavailable = "events unavailable: disabled (bpf=off)";
  j.lost = {1, 2, 3, 4, 5, 6, 7};
  j.lost_events = j.lost.total();
  JobRecord k = codec::decode_job(codec::encode_job(j));
  EXPECT_EQ(k.events_unavailable, j.events_unavailable);
  EXPECT_EQ(k.lost_events, 28u);
  EXPECT_EQ(k.lost, j.lost);
}

TEST(EventCodec, ProcessesKeepTheirMostThreadsAndTheirTask) {
  ProcessRecord p;
  p.pid = 5;
  p.max_threads = 70000;
  p.task = 0;  // rank 0 is a task, not "none"
  std::string v = codec::encode_process(p);
  ProcessRecord q = codec::decode_process(v);
  EXPECT_EQ(q.max_threads, 70000u);
  EXPECT_EQ(q.task, 0u);
  p.task = kTaskUnknown;
  p.max_threads = 0;
  q = codec::decode_process(codec::encode_process(p));
  EXPECT_EQ(q.task, kTaskUnknown);
  // Format 3 ends before both (3 bytes for 70000, 1 for task 0) and the GPU figures after them (1 byte each): none.
  v[0] = 3;
  v.resize(v.size() - 6);
  q = codec::decode_process(v);
  EXPECT_EQ(q.pid, 5u);
  EXPECT_EQ(q.max_threads, 0u);
  EXPECT_EQ(q.task, kTaskUnknown);
  // A task past 32 bits is a corrupt record, not a wrapped rank.
  std::string big = codec::encode_process(p);
  big.resize(big.size() - 3);                         // the task and the two GPU figures after it
  big += std::string("\x81\x80\x80\x80\x10\0\0", 7);  // 2^32 + 1, then the GPU figures
  EXPECT_THROW(codec::decode_process(big), StoreError);
}

TEST(EventCodec, OldJobRecordsSayEventsDidNotRun) {
  JobRecord j;
  j.job_id = 1;
  std::string v = codec::encode_job(j);
  v[0] = 1;  // format 1 ends before the event fields (8 bytes), the job description (6 bytes when empty), the
             // array and shipping fields (4 bytes when 0), the late tasks (1 byte) and the node list (1 byte)
  v.resize(v.size() - 20);
  JobRecord k = codec::decode_job(v);
  EXPECT_EQ(k.job_id, 1u);
  EXPECT_EQ(k.events_unavailable.rfind("events unavailable: ", 0), 0u) << k.events_unavailable;
}

TEST(EventCodec, JobRecordsBeforeFormat4HaveNoLateTasks) {
  JobRecord j;
  j.job_id = 1;
  j.lost.ring = 4;
  j.lost.late = 2;
  j.array_job_id = 7;
  std::string v = codec::encode_job(j);
  v[0] = 3;  // format 3 ends before the late tasks (1 byte) and the node list (1 byte when empty)
  v.resize(v.size() - 2);
  JobRecord k = codec::decode_job(v);
  EXPECT_EQ(k.lost.ring, 4u);
  EXPECT_EQ(k.array_job_id, 7u);
  EXPECT_EQ(k.lost.late, 0u);
  v[0] = 2;  // format 2 ends before the array and shipping fields too (4 bytes; array_job_id 7 is 1 byte)
  v.resize(v.size() - 4);
  k = codec::decode_job(v);
  EXPECT_EQ(k.lost.ring, 4u);
  EXPECT_EQ(k.array_job_id, 0u);
  EXPECT_EQ(k.lost.late, 0u);
}

TEST(EventCodec, JobRecordsKeepTheJobsNodeListFromFormat5) {
  JobRecord j;
  j.job_id = 1;
  j.lost.late = 2;
  j.job_nodes = "n[01-04],login1";
  std::string v = codec::encode_job(j);
  EXPECT_EQ(codec::decode_job(v).job_nodes, j.job_nodes);
  v[0] = 4;  // format 4 ends before the node list (1 length byte and 15 characters)
  v.resize(v.size() - 16);
  const JobRecord k = codec::decode_job(v);
  EXPECT_EQ(k.lost.late, 2u);
  EXPECT_EQ(k.job_nodes, "");
}

TEST(EventCodec, FileFlagsText) {
  EXPECT_EQ(file_flags_text(0), "-");
  EXPECT_EQ(file_flags_text(kFileRead), "r");
  EXPECT_EQ(file_flags_text(kFileWrite), "w");
  EXPECT_EQ(file_flags_text(kFileRead | kFileWrite | kFileCreate), "rwc");
  EXPECT_EQ(file_flags_text(kFileWrite | kFileTrunc | kFileAppend | kFileDirectory), "wtad");
  // bcacct reads bcd's text back into bits.
  for (uint32_t flags :
       {0u, kFileRead | kFileWrite | kFileCreate, kFileWrite | kFileTrunc | kFileAppend | kFileDirectory})
    EXPECT_EQ(file_flags_from_text(file_flags_text(flags)), flags);
}

TEST(StoreEvents, IncrementsAddUpPerProcessAndPath) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  Batch b1 = tick(9, "n1", kT0);
  b1.files.push_back(file(100, 50, "/data/in", kFileRead, 6000, 0, kT0 * 1000 + 700));
  b1.files.push_back(file(100, 50, "/missing", kFileRead, 1, 1, kT0 * 1000 + 800));
  b1.files.push_back(file(100, 51, "/data/in", kFileRead, 1, 0, kT0 * 1000 + 900));  // a reused pid
  b1.connections.push_back(conn(100, 50, "127.0.0.1", 8080, "tcp", 1, 0));
  b1.connections.push_back(conn(100, 50, "127.0.0.1", 8081, "tcp", 1, 1));
  store->write_batch(b1);
  Batch b2 = tick(9, "n1", kT0 + 1);
  b2.files.push_back(file(100, 50, "/data/in", kFileWrite, 4000, 2, kT0 * 1000 + 1500));
  b2.connections.push_back(conn(100, 50, "127.0.0.1", 8080, "tcp", 2, 1));
  b2.connections.push_back(conn(100, 50, "127.0.0.1", 8080, "udp", 1, 0));
  store->write_batch(b2);

  auto files = store->files(9);
  ASSERT_EQ(files.size(), 3u);
  int seen = 0;
  for (const auto& f : files) {
    EXPECT_EQ(f.job_id, 9u);
    EXPECT_EQ(f.node, "n1");
    if (f.path == "/data/in" && f.start_ticks == 50) {
      ++seen;
      EXPECT_EQ(f.opens, 10000u);
      EXPECT_EQ(f.failed, 2u);
      EXPECT_EQ(f.flags, kFileRead | kFileWrite);
      EXPECT_EQ(f.first_ms, kT0 * 1000 + 700);
    } else if (f.path == "/data/in") {
      ++seen;
      EXPECT_EQ(f.opens, 1u);
      EXPECT_EQ(f.start_ticks, 51u);
    } else {
      ++seen;
      EXPECT_EQ(f.path, "/missing");
      EXPECT_EQ(f.failed, 1u);
    }
  }
  EXPECT_EQ(seen, 3);
  auto conns = store->connections(9);
  ASSERT_EQ(conns.size(), 3u);
  uint64_t tcp8080 = 0, tcp8081_failed = 0, udp = 0;
  for (const auto& c : conns) {
    if (c.protocol == "tcp" && c.port == 8080) tcp8080 = c.count * 10 + c.failed;
    if (c.protocol == "tcp" && c.port == 8081) tcp8081_failed = c.failed;
    if (c.protocol == "udp") udp = c.count;
  }
  EXPECT_EQ(tcp8080, 31u);  // 3 connects, 1 failed
  EXPECT_EQ(tcp8081_failed, 1u);
  EXPECT_EQ(udp, 1u);
  EXPECT_TRUE(store->files(8).empty());
  EXPECT_TRUE(store->connections(10).empty());
  CheckReport check = store->check();
  EXPECT_TRUE(check.ok()) << (check.problems.empty() ? "" : check.problems.front());
  EXPECT_EQ(check.files, 3u);
  EXPECT_EQ(check.connections, 3u);
}

TEST(StoreEvents, EveryNodeOfAJobAndNoOtherJob) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  for (const char* node : {"n1", "n2"}) {
    Batch b = tick(9, node, kT0);
    b.files.push_back(file(100, 50, std::string("/on/") + node, kFileRead, 1, 0, kT0 * 1000));
    b.connections.push_back(conn(100, 50, "/run/sock", 0, "unix", 1, 0));
    store->write_batch(b);
  }
  Batch other = tick(10, "n1", kT0);
  other.files.push_back(file(100, 50, "/on/n1", kFileRead, 5, 0, kT0 * 1000));
  store->write_batch(other);
  auto files = store->files(9);
  ASSERT_EQ(files.size(), 2u);
  ASSERT_NE(find_path(files, 100, "/on/n1"), nullptr);
  EXPECT_EQ(find_path(files, 100, "/on/n1")->opens, 1u);
  EXPECT_EQ(find_path(files, 100, "/on/n1")->node, "n1");
  EXPECT_EQ(find_path(files, 100, "/on/n2")->node, "n2");
  auto conns = store->connections(9);
  ASSERT_EQ(conns.size(), 2u);
  EXPECT_NE(conns[0].node, conns[1].node);
  EXPECT_EQ(store->files(10).size(), 1u);
  EXPECT_EQ(store->files(10)[0].opens, 5u);
}

TEST(StoreEvents, LongPathsAndProcessExitStatusAreKept) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  const std::string deep = "/" + std::string(3000, 'd') + "/file";
  Batch b = tick(9, "n1", kT0);
  b.files.push_back(file(100, 50, deep, kFileCreate | kFileWrite, 1, 0, kT0 * 1000));
  ProcessUpdate u;
  u.record.pid = 100;
  u.record.start_ticks = 50;
  u.record.argv = {"true"};
  u.record.start_ms = kT0 * 1000;
  u.record.end_ms = kT0 * 1000 + 1;
  u.record.exited = true;
  u.record.exit_code = 3;
  u.record.exact = true;
  b.processes.push_back(u);
  b.job.events_unavailable = "";
  b.job.lost.ring = 7;
  b.job.lost_events = 7;
  store->write_batch(b);
  auto files = store->files(9);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].path, deep);
  auto procs = store->processes(9);
  ASSERT_EQ(procs.size(), 1u);
  EXPECT_TRUE(procs[0].exited);
  EXPECT_EQ(procs[0].exit_code, 3);
  EXPECT_TRUE(procs[0].exact);
  auto job = store->job(9, "n1");
  ASSERT_TRUE(job);
  EXPECT_EQ(job->lost_events, 7u);
  EXPECT_EQ(job->lost.ring, 7u);
  EXPECT_TRUE(job->events_unavailable.empty());
  EXPECT_TRUE(store->check().ok());
}

// A process's record changes only by its exit status: the change is written (not skipped as unchanged).
TEST(StoreEvents, ExitStatusChangeIsWrittenForARunningRecord) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  for (int i = 0; i < 2; ++i) {
    Batch b = tick(9, "n1", kT0 + i);
    ProcessUpdate u;
    u.record.pid = 100;
    u.record.start_ticks = 50;
    u.record.cpu_ns = 10;
    u.record.exit_code = i;  // not exited: the field still has to reach the store
    u.sample = Sample{0, kT0 + i, 10, 0, 0, 0};
    b.processes.push_back(u);
    store->write_batch(b);
  }
  EXPECT_EQ(store->processes(9)[0].exit_code, 1);
}

TEST(StoreEvents, CheckFindsARecordThatDoesNotMatchItsKey) {
  TempDir dir;
  {
    auto store = Store::open(dir.store(), test_options());
    Batch b = tick(9, "n1", kT0);
    b.files.push_back(file(100, 50, "/a", kFileRead, 1, 0, kT0 * 1000));
    store->write_batch(b);
  }
  {
    MDB_env* env = nullptr;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 32);
    ASSERT_EQ(mdb_env_open(env, dir.store().c_str(), 0, 0644), 0);
    MDB_txn* txn = nullptr;
    mdb_txn_begin(env, nullptr, 0, &txn);
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn, "files", 0, &dbi), 0);
    MDB_cursor* c = nullptr;
    mdb_cursor_open(txn, dbi, &c);
    MDB_val k, v;
    ASSERT_EQ(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
    FileRecord f = codec::decode_file({static_cast<char*>(v.mv_data), v.mv_size});
    f.path = "/b";  // another path under the first one's key
    const std::string key(static_cast<char*>(k.mv_data), k.mv_size), value = codec::encode_file(f);
    mdb_cursor_close(c);
    MDB_val nk{key.size(), const_cast<char*>(key.data())}, nv{value.size(), const_cast<char*>(value.data())};
    ASSERT_EQ(mdb_put(txn, dbi, &nk, &nv, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
  }
  auto store = Store::open(dir.store(), test_options());
  CheckReport check = store->check();
  EXPECT_FALSE(check.ok());
  ASSERT_FALSE(check.problems.empty());
  EXPECT_NE(check.problems[0].find("files record does not match its key"), std::string::npos) << check.problems[0];
}

// A schema-2 store (no files or connections tables) is refused until upgraded; the upgrade keeps its data.
TEST(StoreSchema, UpgradeFromTwoAddsTheEventTables) {
  TempDir dir;
  {
    auto store = Store::open(dir.store(), test_options());
    Batch b = tick(9, "n1", kT0);
    ProcessUpdate u;
    u.record.pid = 100;
    u.record.start_ticks = 50;
    u.record.command = "old";
    b.processes.push_back(u);
    store->write_batch(b);
  }
  {
    MDB_env* env = nullptr;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 32);
    ASSERT_EQ(mdb_env_open(env, dir.store().c_str(), 0, 0644), 0);
    MDB_txn* txn = nullptr;
    mdb_txn_begin(env, nullptr, 0, &txn);
    for (const char* table : {"files", "connections"}) {
      MDB_dbi dbi;
      ASSERT_EQ(mdb_dbi_open(txn, table, 0, &dbi), 0);
      ASSERT_EQ(mdb_drop(txn, dbi, 1), 0);
    }
    MDB_dbi meta;
    ASSERT_EQ(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    const char two[4] = {0, 0, 0, 2};
    MDB_val k{14, const_cast<char*>("schema_version")}, v{4, const_cast<char*>(two)};
    ASSERT_EQ(mdb_put(txn, meta, &k, &v, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
  }
  EXPECT_THROW(Store::open(dir.store(), test_options()), StoreError);
  UpgradeReport r = Store::upgrade(dir.store(), test_options());
  EXPECT_EQ(r.from_version, 2u);
  EXPECT_EQ(r.to_version, 3u);
  auto store = Store::open(dir.store(), test_options());
  EXPECT_EQ(store->schema_version(), 3u);
  EXPECT_EQ(store->processes(9).at(0).command, "old");
  EXPECT_TRUE(store->files(9).empty());
  Batch b = tick(9, "n1", kT0 + 1);
  b.files.push_back(file(100, 50, "/a", kFileRead, 1, 0, kT0 * 1000));
  store->write_batch(b);
  EXPECT_EQ(store->files(9).size(), 1u);
  EXPECT_TRUE(store->check().ok());
}
