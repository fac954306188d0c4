// Process records: an unchanged record is not rewritten every tick, its counters come from its series,
// and a record written by another process is never lost to a stale cache. Plus load_job.
#include <gtest/gtest.h>
#include <lmdb.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "codec.hpp"
#include "store_test_util.hpp"

using namespace bc::store;
using namespace bc::store::testing;

namespace {

ProcessRecord proc(uint64_t cpu) {
  ProcessRecord p;
  p.pid = 42;
  p.ppid = 1;
  p.step = 0;
  p.start_ticks = 777;
  p.command = "sim";
  p.exe = "/bin/sim";
  p.argv = {"sim", "--fast"};
  p.cpu_ns = cpu;
  p.rss = 1 << 20;
  p.max_rss = 1 << 20;
  return p;
}

Batch batch(int64_t t, const ProcessRecord& p, bool with_sample = true) {
  Batch b;
  b.job.job_id = 3;
  b.job.node = "n1";
  b.job_sample = Sample{0, t, p.cpu_ns, p.rss, 0, 0};
  ProcessUpdate u;
  u.record = p;
  if (with_sample) u.sample = Sample{0, t, p.cpu_ns, p.rss, p.read_bytes, p.write_bytes};
  b.processes.push_back(u);
  return b;
}

// The process record as stored, bypassing the store's merge with the series. LMDB allows one environment
// per path per process: the store is closed around the raw read and opened again.
ProcessRecord raw_record(const std::string& path, bool* in_series) {
  MDB_env* env = nullptr;
  mdb_env_create(&env);
  mdb_env_set_maxdbs(env, 16);
  EXPECT_EQ(mdb_env_open(env, path.c_str(), MDB_RDONLY, 0644), 0);
  MDB_txn* txn = nullptr;
  mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
  MDB_dbi dbi;
  EXPECT_EQ(mdb_dbi_open(txn, "processes", 0, &dbi), 0);
  MDB_cursor* c = nullptr;
  mdb_cursor_open(txn, dbi, &c);
  MDB_val k, v;
  EXPECT_EQ(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
  ProcessRecord p = codec::decode_process({static_cast<char*>(v.mv_data), v.mv_size}, in_series);
  mdb_cursor_close(c);
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return p;
}

ProcessRecord stored_record(std::unique_ptr<Store>& store, const std::string& path, bool* in_series) {
  store.reset();
  ProcessRecord p = raw_record(path, in_series);
  store = Store::open(path, test_options());
  return p;
}

}  // namespace

TEST(StoreRecords, UnchangedRecordIsNotRewrittenAndItsCountersComeFromTheSeries) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  const int64_t t0 = 1'800'000'000;
  ProcessRecord p = proc(1'000'000'000);
  Batch b1 = batch(t0, p);
  store->write_batch(b1);
  p.series_id = b1.processes[0].record.series_id;
  p.cpu_ns = 2'000'000'000;
  p.rss = 3 << 20;
  Batch b2 = batch(t0 + 1, p);
  store->write_batch(b2);
  bool in_series = false;
  ProcessRecord raw = stored_record(store, dir.store(), &in_series);
  EXPECT_TRUE(in_series);
  EXPECT_EQ(raw.cpu_ns, 1'000'000'000u);  // not rewritten for new counters only
  auto procs = store->processes(3);
  ASSERT_EQ(procs.size(), 1u);
  EXPECT_EQ(procs[0].cpu_ns, 2'000'000'000u);  // the series' last point
  EXPECT_EQ(procs[0].rss, 3u << 20);
  EXPECT_EQ(procs[0].argv, p.argv);
  // A changed identity (the process ended; its peak grew) is written.
  p.end_ms = (t0 + 2) * 1000;
  p.max_rss = 4 << 20;
  p.cpu_ns = 2'500'000'000;
  Batch b3 = batch(t0 + 2, p);
  store->write_batch(b3);
  raw = stored_record(store, dir.store(), &in_series);
  EXPECT_EQ(raw.end_ms, p.end_ms);
  EXPECT_EQ(raw.max_rss, 4u << 20);
  EXPECT_FALSE(in_series);  // an ended process keeps its final counters in its record
  EXPECT_EQ(raw.cpu_ns, 2'500'000'000u);
  procs = store->processes(3);
  EXPECT_EQ(procs[0].cpu_ns, 2'500'000'000u);
  EXPECT_EQ(procs[0].end_ms, p.end_ms);
}

// bcd writes many ticks of a node in one transaction: an unchanged record is written by the first of them
// only, and a change in a later one (an exec's new argv) lands, and is not rewritten again by the next.
TEST(StoreRecords, ATransactionOfManyTicksWritesAnUnchangedRecordOnce) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  const int64_t t0 = 1'800'000'000;
  ProcessRecord p = proc(1'000'000'000);
  p.series_id = 1;
  std::vector<Batch> group;
  std::vector<BatchId> ids;
  for (uint64_t k = 0; k < 4; ++k) {
    p.cpu_ns = 1'000'000'000 * (k + 1);
    group.push_back(batch(t0 + static_cast<int64_t>(k), p));
    ids.push_back({"n1", 3, 9, k + 1});
  }
  auto applied = store->write_batches_once(group, ids);
  EXPECT_EQ(std::count(applied.begin(), applied.end(), true), 4);
  bool in_series = false;
  ProcessRecord raw = stored_record(store, dir.store(), &in_series);
  EXPECT_TRUE(in_series);
  EXPECT_EQ(raw.cpu_ns, 1'000'000'000u) << "a later tick of the same transaction rewrote an unchanged record";
  EXPECT_EQ(store->processes(3)[0].cpu_ns, 4'000'000'000u);  // the series' last point

  group.clear();
  ids.clear();
  for (uint64_t k = 4; k < 7; ++k) {
    if (k == 5) p.argv = {"sim", "--exec-ed"};
    p.cpu_ns = 1'000'000'000 * (k + 1);
    group.push_back(batch(t0 + static_cast<int64_t>(k), p));
    ids.push_back({"n1", 3, 9, k + 1});
  }
  applied = store->write_batches_once(group, ids);
  EXPECT_EQ(std::count(applied.begin(), applied.end(), true), 3);
  raw = stored_record(store, dir.store(), &in_series);
  EXPECT_EQ(raw.argv, p.argv);
  EXPECT_EQ(raw.cpu_ns, 6'000'000'000u) << "written by the tick that changed it, not by the one after";
  EXPECT_EQ(store->processes(3)[0].argv, p.argv);
  EXPECT_EQ(store->processes(3)[0].cpu_ns, 7'000'000'000u);
  EXPECT_EQ(store->check().problem_count, 0u);
}

TEST(StoreRecords, CountersThatAreNotTheSamplesStayInTheRecord) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  ProcessRecord p = proc(5'000'000'000);
  p.read_bytes = 4096;
  Batch b = batch(1'800'000'000, p, /*with_sample=*/false);
  store->write_batch(b);
  bool in_series = true;
  ProcessRecord raw = stored_record(store, dir.store(), &in_series);
  EXPECT_FALSE(in_series);
  EXPECT_EQ(store->processes(3)[0].cpu_ns, 5'000'000'000u);
  EXPECT_EQ(store->processes(3)[0].read_bytes, 4096u);
  // Next tick without a sample: counters changed, so the record is rewritten.
  p.series_id = b.processes[0].record.series_id;
  p.cpu_ns = 6'000'000'000;
  Batch b2 = batch(1'800'000'001, p, false);
  store->write_batch(b2);
  EXPECT_EQ(store->processes(3)[0].cpu_ns, 6'000'000'000u);
}

TEST(StoreRecords, ARecordWrittenByAnotherProcessIsNotHiddenByTheCache) {
  TempDir dir;
  const int64_t t0 = 1'800'000'000;
  auto store = Store::open(dir.store(), test_options());
  ProcessRecord p = proc(1'000'000'000);
  Batch b1 = batch(t0, p);
  store->write_batch(b1);
  p.series_id = b1.processes[0].record.series_id;
  // Another process rewrites the record with a different argv.
  pid_t child = fork();
  if (child == 0) {
    int rc = 0;
    try {
      auto other = Store::open(dir.store(), test_options());
      ProcessRecord q = p;
      q.argv = {"sim", "--slow"};
      q.cpu_ns = 1'500'000'000;
      Batch b = batch(t0 + 1, q);
      other->write_batch(b);
    } catch (...) {
      rc = 1;
    }
    _exit(rc);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(store->processes(3)[0].argv, (std::vector<std::string>{"sim", "--slow"}));
  // This process writes its own (unchanged, in its eyes) record again: it must land.
  p.cpu_ns = 2'000'000'000;
  Batch b2 = batch(t0 + 2, p);
  store->write_batch(b2);
  EXPECT_EQ(store->processes(3)[0].argv, p.argv);
  EXPECT_EQ(store->processes(3)[0].cpu_ns, 2'000'000'000u);
}

TEST(StoreRecords, LoadJobReadsHeaderAndProcessesTogether) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  Batch b = batch(1'800'000'000, proc(1));
  store->write_batch(b);
  b.job.node = "n2";
  b.processes[0].record.series_id = 0;
  store->write_batch(b);
  JobSnapshot s = store->load_job(3);
  EXPECT_EQ(s.nodes.size(), 2u);
  EXPECT_EQ(s.processes.size(), 2u);
  EXPECT_TRUE(store->load_job(4).nodes.empty());
  EXPECT_TRUE(store->load_job(4).processes.empty());
}

TEST(StoreRecords, FailedBatchLeavesSeriesIdsAsTheyWere) {
  TempDir dir;
  OpenOptions o = test_options();
  auto store = Store::open(dir.store(), o);
  Batch b = batch(1'800'000'000, proc(1));
  b.job.node = std::string(600, 'x');  // longer than LMDB's key limit: the batch fails
  EXPECT_THROW(store->write_batch(b), StoreError);
  EXPECT_EQ(b.processes[0].record.series_id, 0u);
  b.job.node = "n1";
  store->write_batch(b);
  EXPECT_EQ(b.processes[0].record.series_id, 1u);
}

TEST(StoreRecords, JobDescriptionAndContainerIdentityAreKept) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  Batch b = batch(1'800'000'000, proc(1));
  b.job.job_name = "train-42";
  b.job.alloc_cpus = 4;
  b.job.mem_limit_bytes = 8ULL << 30;
  b.job.container_id = std::string(64, 'a');
  b.job.container_name = "web-1";
  b.job.container_image = "bc-busybox:test";
  store->write_batch(b);
  auto j = store->job(3, "n1");
  ASSERT_TRUE(j);
  EXPECT_EQ(j->job_name, "train-42");
  EXPECT_EQ(j->alloc_cpus, 4u);
  EXPECT_EQ(j->mem_limit_bytes, 8ULL << 30);
  EXPECT_EQ(j->container_id, std::string(64, 'a'));
  EXPECT_EQ(j->container_name, "web-1");
  EXPECT_EQ(j->container_image, "bc-busybox:test");
}
