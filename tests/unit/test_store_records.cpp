// Process records: an unchanged record is not rewritten every tick, its counters come from its series,
// and a record written by another process is never lost to a stale cache. Plus load_job.
#include <gtest/gtest.h>
#include <lmdb.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <vector>

#include "accounting_db/codec.hpp"
#include "accounting_db/wire.hpp"
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

// The same through bcd's path: the batches cross the wire and are decoded with their process identities
// left encoded. The first tick's record must land with every identity field; an unchanged identity is not
// rewritten by the later ticks; a changed one (max_rss grew, an exec's argv) lands with all its fields.
TEST(StoreRecords, DeferredIdentitiesAreWrittenWhenNewOrChangedOnly) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  const int64_t t0 = 1'800'000'000;
  ProcessRecord p = proc(1'000'000'000);
  p.series_id = 1;
  p.ppid = 4'000'000;
  p.step = kStepBatch;
  p.start_ms = 1'799'999'999'123;
  p.exact = true;
  std::vector<std::string> wires;
  std::vector<BatchId> ids;
  for (uint64_t k = 0; k < 6; ++k) {
    p.cpu_ns = 1'000'000'000 * (k + 1);
    if (k == 3) p.max_rss = 3 << 20;
    if (k == 4) p.argv = {"sim", "--exec-ed", std::string("nul\0inside", 10)};
    wires.push_back(bc::wire::encode_batch(batch(t0 + static_cast<int64_t>(k), p)));
    ids.push_back({"n1", 3, 9, k + 1});
  }
  std::vector<Batch> group;
  for (size_t k = 0; k < 3; ++k) {
    group.push_back(bc::wire::decode_batch(wires[k], bc::wire::Identity::Deferred));
    ASSERT_FALSE(group.back().processes[0].encoded_identity.empty());
    EXPECT_TRUE(group.back().processes[0].record.command.empty()) << "deferred: the identity stays encoded";
  }
  auto applied = store->write_batches_once(group, {ids.begin(), ids.begin() + 3});
  EXPECT_EQ(std::count(applied.begin(), applied.end(), true), 3);
  bool in_series = false;
  ProcessRecord raw = stored_record(store, dir.store(), &in_series);
  EXPECT_EQ(raw.cpu_ns, 1'000'000'000u) << "a later tick rewrote an unchanged record";
  ProcessRecord got = store->processes(3)[0];
  EXPECT_EQ(got.command, "sim");
  EXPECT_EQ(got.exe, "/bin/sim");
  EXPECT_EQ(got.argv, (std::vector<std::string>{"sim", "--fast"}));
  EXPECT_EQ(got.ppid, 4'000'000u);
  EXPECT_EQ(got.step, kStepBatch);
  EXPECT_EQ(got.start_ms, 1'799'999'999'123);
  EXPECT_EQ(got.max_rss, 1u << 20);
  EXPECT_TRUE(got.exact);
  EXPECT_EQ(got.cpu_ns, 3'000'000'000u);

  group.clear();
  for (size_t k = 3; k < 6; ++k) group.push_back(bc::wire::decode_batch(wires[k], bc::wire::Identity::Deferred));
  applied = store->write_batches_once(group, {ids.begin() + 3, ids.end()});
  EXPECT_EQ(std::count(applied.begin(), applied.end(), true), 3);
  raw = stored_record(store, dir.store(), &in_series);
  EXPECT_EQ(raw.cpu_ns, 5'000'000'000u) << "written by the tick whose argv changed, not by the one after";
  got = store->processes(3)[0];
  EXPECT_EQ(got.argv, p.argv);
  EXPECT_EQ(got.max_rss, 3u << 20);
  EXPECT_EQ(got.command, "sim");
  EXPECT_EQ(got.ppid, 4'000'000u);
  EXPECT_EQ(got.cpu_ns, 6'000'000'000u);
  EXPECT_EQ(store->check().problem_count, 0u);
}

// bcd writes a node's bundle of ticks as one run: each series' points go into its open minute in one read
// and one write. Whatever the run's shape (minutes crossed inside it, a process that starts or ends in it,
// a tick without a process's sample, two ticks out of order, runs of two nodes interleaved), the store must
// hold exactly what writing the same ticks one at a time gives.
TEST(StoreRecords, ARunOfTicksStoresWhatOneTickAtATimeStores) {
  const int64_t t0 = 1'800'000'017;  // not on a minute: the runs cross minutes
  const int ticks = 300;
  std::mt19937_64 rng(11);
  std::vector<Batch> ticks_by_node[2];
  for (int node = 0; node < 2; ++node) {
    uint64_t cpu[3] = {0, 0, 0};
    for (int k = 0; k < ticks; ++k) {
      Batch b;
      b.job.job_id = 3;
      b.job.node = node ? "n2" : "n1";
      b.job.last_sample_ms = (t0 + k) * 1000;
      uint64_t total = 0;
      for (uint32_t i = 0; i < 3; ++i) {
        // The third starts in the minute the second ended in: a series must not take another's points.
        const bool alive = i == 0 || (i == 1 && k >= 50 && k <= 140) || (i == 2 && k >= 150);
        if (!alive) continue;
        cpu[i] += (rng() % 100) * 10'000'000ULL;
        total += cpu[i];
        ProcessUpdate u;
        u.record = proc(cpu[i]);
        u.record.pid = 42 + i;
        u.record.series_id = i == 2 ? 0 : i + 1;  // the third is given its series by the store
        u.record.rss = (1 << 20) + (rng() % 8) * 4096;
        u.record.read_bytes = static_cast<uint64_t>(k) * (i + 1) * 512;
        if (i == 1 && k == 140) {
          u.record.end_ms = (t0 + k) * 1000;
          u.record.exited = true;
        }
        if (!(i == 0 && k % 37 == 5))  // now and then a tick without this process's sample
          u.sample = Sample{0, t0 + k, u.record.cpu_ns, u.record.rss, u.record.read_bytes, u.record.write_bytes};
        b.processes.push_back(u);
      }
      b.job_sample = Sample{0, t0 + k, total, 3 << 20, 0, 0};
      ticks_by_node[node].push_back(b);
    }
  }

  TempDir one_dir, run_dir;
  auto one = Store::open(one_dir.store(), test_options());
  auto runs = Store::open(run_dir.store(), test_options());
  for (int k = 0; k < ticks; ++k)
    for (auto& node_ticks : ticks_by_node) {
      Batch b = node_ticks[static_cast<size_t>(k)];
      one->write_batch(b);
    }
  // As bcd gets them: bundles of 100 ticks, one node's after the other's, in one transaction.
  for (int round = 0; round < ticks; round += 100) {
    std::vector<Batch> group;
    std::vector<BatchId> ids;
    for (int node = 0; node < 2; ++node)
      for (int k = round; k < round + 100; ++k) {
        // Ticks 10 and 11 of each bundle swapped: a run's ticks need not come in order.
        const int at = k % 100 == 10 ? k + 1 : k % 100 == 11 ? k - 1 : k;
        group.push_back(ticks_by_node[node][static_cast<size_t>(at)]);
        ids.push_back({node ? "n2" : "n1", 3, 9, static_cast<uint64_t>(at) + 1});
      }
    auto applied = runs->write_batches_once(group, ids);
    ASSERT_EQ(std::count(applied.begin(), applied.end(), true), 200);
  }

  for (const char* node : {"n1", "n2"}) {
    for (uint32_t series = 0; series <= 3; ++series) {
      const auto a = one->series(3, node, series, 0, INT64_MAX);
      const auto b = runs->series(3, node, series, 0, INT64_MAX);
      ASSERT_EQ(a.size(), b.size()) << node << " series " << series;
      EXPECT_GT(a.size(), 80u) << node << " series " << series;
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].time_s, b[i].time_s);
        EXPECT_EQ(a[i].cpu_ns, b[i].cpu_ns);
        EXPECT_EQ(a[i].rss, b[i].rss);
        EXPECT_EQ(a[i].read_bytes, b[i].read_bytes);
      }
      for (Resolution r : {Resolution::Minute, Resolution::Hour, Resolution::Day}) {
        SeriesQuery q;
        q.job_id = 3;
        q.node = node;
        q.series_id = series;
        q.resolution = r;
        const auto ra = one->query_series(q).buckets, rb = runs->query_series(q).buckets;
        ASSERT_EQ(ra.size(), rb.size()) << node << " series " << series << " resolution " << static_cast<int>(r);
        for (size_t i = 0; i < ra.size(); ++i) {
          EXPECT_EQ(ra[i].start_s, rb[i].start_s);
          EXPECT_EQ(ra[i].samples, rb[i].samples);
          EXPECT_EQ(ra[i].cpu_ns, rb[i].cpu_ns);
          EXPECT_EQ(ra[i].timed_cpu_ns, rb[i].timed_cpu_ns);
          EXPECT_EQ(ra[i].cpu_rate_max, rb[i].cpu_rate_max);
          EXPECT_EQ(ra[i].rss_sum, rb[i].rss_sum);
          EXPECT_EQ(ra[i].read_bytes, rb[i].read_bytes);
        }
      }
    }
    EXPECT_EQ(one->job(3, node)->last_sample_ms, runs->job(3, node)->last_sample_ms);
  }
  auto pa = one->processes(3), pb = runs->processes(3);
  ASSERT_EQ(pa.size(), 6u);
  ASSERT_EQ(pb.size(), 6u);
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].node, pb[i].node);
    EXPECT_EQ(pa[i].pid, pb[i].pid);
    EXPECT_EQ(pa[i].series_id, pb[i].series_id);
    EXPECT_EQ(pa[i].end_ms, pb[i].end_ms);
    EXPECT_EQ(pa[i].cpu_ns, pb[i].cpu_ns);
    EXPECT_EQ(pa[i].read_bytes, pb[i].read_bytes);
    EXPECT_EQ(pa[i].argv, pb[i].argv);
  }
  EXPECT_EQ(one->check().problem_count, 0u);
  EXPECT_EQ(runs->check().problem_count, 0u);
  EXPECT_EQ(one->stats().dropped_late_samples, runs->stats().dropped_late_samples);
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

// A node names its processes' series. One that names the last id leaves no id to hand out: later new
// processes are left out and their samples counted, and the counter never wraps to 0, the job's own series.
// A batch that names one past the last (only a forged one: the wire refuses it) is left out the same way.
TEST(StoreRecords, SeriesIdsNeverWrapToTheJobsSeries) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  Batch b = batch(1'800'000'000, proc(1));
  b.processes[0].record.series_id = kLastSeriesId;
  store->write_batch(b);
  for (uint32_t pid : {43u, 44u}) {
    Batch next = batch(1'800'000'000 + pid, proc(pid));
    next.processes[0].record.pid = pid;
    next.processes[0].sample->cpu_ns = 999;
    store->write_batch(next);
    EXPECT_EQ(next.processes[0].record.series_id, 0u);
  }
  Batch past = batch(1'800'000'100, proc(100));
  past.processes[0].record.pid = 45;
  past.processes[0].record.series_id = UINT32_MAX;
  past.processes[0].sample->cpu_ns = 999;
  store->write_batch(past);
  EXPECT_EQ(store->stats().rejected_samples, 3u);
  EXPECT_EQ(store->dropped_samples().rejected, 3u);
  // The job's own series holds the job's samples only, never a process's.
  const auto job_points = store->series(3, "n1", 0, 0, INT64_MAX);
  ASSERT_EQ(job_points.size(), 4u);
  for (const auto& p : job_points) EXPECT_NE(p.cpu_ns, 999u) << p.time_s;
  EXPECT_EQ(store->series(3, "n1", kLastSeriesId, 0, INT64_MAX).size(), 1u);
  const JobSnapshot s = store->load_job(3);
  ASSERT_EQ(s.processes.size(), 1u);
  EXPECT_EQ(s.processes[0].pid, 42u);
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

// GPU figures: in the job record (format 6) and the process record (format 5) and identity; records of the
// formats before them still read, with none.
TEST(StoreRecords, GpuFiguresRoundTripAndEarlierFormatsStillRead) {
  JobRecord j;
  j.job_id = 42;
  j.node = "gpu01";
  j.job_nodes = "gpu01";
  JobGpu a;
  a.uuid = "GPU-aaaa";
  a.minor = 0;
  a.allocated = true;
  a.memory_total = 80ULL << 30;
  a.memory_max = 12ULL << 30;
  a.util_ns = 2'000'000'000;
  a.busy_ns = 1'800'000'000;
  a.power_ns = 2'000'000'000;
  a.energy_mj = 600'000;
  JobGpu m;
  m.uuid = "MIG-bbbb";
  m.parent_uuid = "GPU-cccc";
  m.memory_total = 10ULL << 30;
  j.gpus = {a, m};
  j.gpus_lost = 1;
  const JobRecord back = codec::decode_job(codec::encode_job(j));
  EXPECT_EQ(back.gpus, j.gpus);
  EXPECT_EQ(back.gpus[1].minor, UINT32_MAX) << "not known";
  EXPECT_EQ(back.gpus_lost, 1U);
  // Format 5 is format 6 without the GPU count and the lost GPUs at its end.
  j.gpus.clear();
  j.gpus_lost = 0;
  std::string v5 = codec::encode_job(j);
  ASSERT_EQ(v5.front(), 6);
  ASSERT_EQ(v5.substr(v5.size() - 2), std::string(2, '\0'));
  v5.front() = 5;
  v5.resize(v5.size() - 2);
  const JobRecord old = codec::decode_job(v5);
  EXPECT_TRUE(old.gpus.empty());
  EXPECT_EQ(old.job_nodes, "gpu01");
  // A GPU busier than it was sampled is corrupt.
  j.gpus = {a};
  j.gpus[0].busy_ns = a.util_ns + 1;
  EXPECT_THROW(codec::decode_job(codec::encode_job(j)), StoreError);

  ProcessRecord p = proc(5);
  p.gpu_memory_max = 12ULL << 30;
  p.gpu_sm_ns = 2'000'000'000;
  const ProcessRecord q = codec::decode_process(codec::encode_process(p));
  EXPECT_EQ(q.gpu_memory_max, p.gpu_memory_max);
  EXPECT_EQ(q.gpu_sm_ns, p.gpu_sm_ns);
  std::string identity;
  codec::append_process_identity(identity, p);
  ProcessRecord r;
  codec::decode_process_identity(identity, r);
  EXPECT_EQ(r.gpu_memory_max, p.gpu_memory_max);
  EXPECT_EQ(r.gpu_sm_ns, p.gpu_sm_ns);
  // Process format 4 and an identity from a node before GPU figures: the same without the two at the end.
  p.gpu_memory_max = p.gpu_sm_ns = 0;
  std::string v4 = codec::encode_process(p);
  ASSERT_EQ(v4.front(), 5);
  v4.front() = 4;
  v4.resize(v4.size() - 2);
  EXPECT_EQ(codec::decode_process(v4).gpu_sm_ns, 0U);
  identity.clear();
  codec::append_process_identity(identity, p);
  identity.resize(identity.size() - 2);
  codec::decode_process_identity(identity, r);
  EXPECT_EQ(r.gpu_memory_max, 0U);
  identity.resize(identity.size() - 1);  // the task without the thread count before it: not an identity
  EXPECT_THROW(codec::check_process_identity(identity), StoreError);
}

// GPU series are kept by the series engine like the others, in the ids past the processes': a GPU's by its
// place in the job record, a process's next to its own. Their rollups read back in GPU terms (gpu_bucket).
TEST(StoreRecords, GpuSeriesAreKeptAndRolledUpLikeTheOthers) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  constexpr uint64_t kGiB = 1ULL << 30;
  const int64_t t0 = 1'800'000'060;  // a minute's start
  ASSERT_EQ(t0 % 60, 0);
  uint32_t series = 0;
  for (int i = 0; i < 130; ++i) {
    ProcessRecord p = proc(1'000'000ULL * i);
    Batch b = batch(t0 + i, p);
    JobGpu g;
    g.uuid = "GPU-aaaa";
    b.job.gpus = {g};
    // The GPU: 60% busy, 4 and 8 GiB in turn, 250 W. The process: half its SMs, 2 GiB.
    const auto n = static_cast<uint64_t>(i);
    b.gpu_samples = {{gpu_device_series(0), t0 + i, n * 600'000'000, (i % 2 ? 8 : 4) * kGiB, n * 250'000}};
    b.processes[0].gpu_sample = GpuSample{0, t0 + i, n * 500'000'000, 2 * kGiB, 0};
    store->write_batch(b);
    series = b.processes[0].record.series_id;
  }
  ASSERT_EQ(series, 1U);
  auto query = [&](uint32_t id, Resolution r) {
    SeriesQuery q;
    q.job_id = 3;
    q.node = "n1";
    q.series_id = id;
    q.from_s = t0;
    q.to_s = t0 + 119;
    q.resolution = r;
    return store->query_series(q).buckets;
  };
  EXPECT_EQ(query(gpu_device_series(0), Resolution::Second).size(), 120U);
  const auto device = query(gpu_device_series(0), Resolution::Minute);
  ASSERT_EQ(device.size(), 2U);
  for (const Rollup& r : device) {
    const GpuBucket g = gpu_bucket(r);
    EXPECT_DOUBLE_EQ(g.busy_percent_mean, 60.0) << r.start_s;
    EXPECT_DOUBLE_EQ(g.busy_percent_max, 60.0);
    EXPECT_EQ(g.memory_mean, 6 * kGiB);
    EXPECT_EQ(g.memory_max, 8 * kGiB);
    EXPECT_DOUBLE_EQ(g.power_watts, 250.0);
  }
  const auto process = query(gpu_series_of_process(series), Resolution::Minute);
  ASSERT_EQ(process.size(), 2U);
  EXPECT_DOUBLE_EQ(gpu_bucket(process[1]).busy_percent_mean, 50.0);
  EXPECT_EQ(gpu_bucket(process[1]).memory_max, 2 * kGiB);
  // The process's own series and the job's are untouched by them.
  const auto own = query(series, Resolution::Minute);
  ASSERT_EQ(own.size(), 2U);
  EXPECT_EQ(own[1].cpu_ns, 60'000'000U);
  EXPECT_EQ(own[1].rss_max, 1U << 20);
  EXPECT_EQ(query(0, Resolution::Minute)[1].rss_max, 1U << 20);
  EXPECT_TRUE(store->check().ok());
  // A GPU sample outside the GPU series' ids (only a forged batch: the wire refuses it) is left out, counted.
  Batch forged = batch(t0 + 131, proc(1));
  forged.gpu_samples = {{series, t0 + 131, 999, 999, 999}, {gpu_device_series(kMaxGpuDevices), t0 + 131, 1, 1, 1}};
  store->write_batch(forged);
  EXPECT_EQ(store->dropped_samples().rejected, 2U);
  EXPECT_EQ(store->series(3, "n1", series, t0 + 131, t0 + 131).at(0).cpu_ns, 1U);
}
