// A finished job's process records are also packed into one value for cold readers. The pack must never
// show anything but what the process records say: checked against a store whose pack is removed by hand.
#include <gtest/gtest.h>
#include <lmdb.h>

#include "accounting_db/codec.hpp"
#include "store_test_util.hpp"

using namespace bc::store;
using namespace bc::store::testing;

namespace {

constexpr int64_t kT0 = 1'800'000'000;

ProcessRecord proc(uint32_t pid, uint64_t cpu) {
  ProcessRecord p;
  p.pid = pid;
  p.ppid = 1;
  p.start_ticks = 1000 + pid;
  p.command = "sim" + std::to_string(pid);
  p.exe = "/bin/sim";
  p.argv = {"sim", "--case", std::to_string(pid)};
  p.cpu_ns = cpu;
  p.rss = 1 << 20;
  p.max_rss = 1 << 20;
  return p;
}

Batch tick(int64_t t, const std::string& node, int procs, uint64_t cpu, int64_t end_ms) {
  Batch b;
  b.job.job_id = 9;
  b.job.node = node;
  b.job.end_ms = end_ms;
  b.job_sample = Sample{0, t, cpu * static_cast<uint64_t>(procs), 0, 0, 0};
  for (int i = 0; i < procs; ++i) {
    ProcessUpdate u;
    u.record = proc(static_cast<uint32_t>(100 + i), cpu);
    u.record.end_ms = end_ms;
    u.sample = Sample{0, t, cpu, u.record.rss, 0, 0};
    b.processes.push_back(u);
  }
  return b;
}

// Entries of the pack table, read past the store.
size_t pack_entries(const std::string& path, bool remove) {
  MDB_env* env = nullptr;
  mdb_env_create(&env);
  mdb_env_set_maxdbs(env, 16);
  EXPECT_EQ(mdb_env_open(env, path.c_str(), remove ? 0 : MDB_RDONLY, 0644), 0);
  MDB_txn* txn = nullptr;
  mdb_txn_begin(env, nullptr, remove ? 0 : MDB_RDONLY, &txn);
  MDB_dbi dbi;
  size_t n = 0;
  if (mdb_dbi_open(txn, "process_pack", 0, &dbi) == 0) {
    MDB_stat st{};
    mdb_stat(txn, dbi, &st);
    n = st.ms_entries;
    if (remove) {
      EXPECT_EQ(mdb_drop(txn, dbi, 0), 0);
    }
  }
  if (remove) {
    EXPECT_EQ(mdb_txn_commit(txn), 0);
  } else {
    mdb_txn_abort(txn);
  }
  mdb_env_close(env);
  return n;
}

void expect_same(const std::vector<ProcessRecord>& a, const std::vector<ProcessRecord>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].pid, b[i].pid);
    EXPECT_EQ(a[i].node, b[i].node);
    EXPECT_EQ(a[i].command, b[i].command);
    EXPECT_EQ(a[i].argv, b[i].argv);
    EXPECT_EQ(a[i].cpu_ns, b[i].cpu_ns);
    EXPECT_EQ(a[i].end_ms, b[i].end_ms);
    EXPECT_EQ(a[i].series_id, b[i].series_id);
  }
}

// The job's processes as a read-only reader sees them (a reader opens the store read-only).
std::vector<ProcessRecord> read_only_processes(const std::string& path) {
  OpenOptions o = test_options();
  o.read_only = true;
  o.create = false;
  return Store::open(path, o)->load_job(9).processes;
}

// Writes the batches through a store that is closed again (one environment per path per process), and
// checks the store afterwards.
void write_all(const std::string& path, std::vector<Batch> batches) {
  auto store = Store::open(path, test_options());
  for (Batch& b : batches) store->write_batch(b);
  EXPECT_TRUE(store->check().ok());
}

}  // namespace

TEST(StoreProcessPack, FinishedJobIsPackedAndReadsTheSame) {
  TempDir dir;
  std::vector<Batch> running;
  for (int k = 0; k < 5; ++k) running.push_back(tick(kT0 + k, "n1", 50, 10'000'000ULL * static_cast<uint64_t>(k), 0));
  write_all(dir.store(), running);
  EXPECT_EQ(pack_entries(dir.store(), false), 0U) << "a running job is not packed";
  write_all(dir.store(), {tick(kT0 + 5, "n1", 50, 60'000'000, (kT0 + 5) * 1000)});
  EXPECT_EQ(pack_entries(dir.store(), false), 1U);
  const auto packed = read_only_processes(dir.store());
  ASSERT_EQ(packed.size(), 50U);
  EXPECT_EQ(packed[0].cpu_ns, 60'000'000U);
  EXPECT_EQ(packed[0].end_ms, (kT0 + 5) * 1000);
  pack_entries(dir.store(), true);
  expect_same(packed, read_only_processes(dir.store()));
}

TEST(StoreProcessPack, ARecordChangedAfterPackingIsNotHiddenByTheStalePack) {
  TempDir dir;
  // A late record change on a finished job: the pack is rebuilt in the same transaction.
  Batch late = tick(kT0 + 1, "n1", 3, 20'000'000, (kT0 + 1) * 1000);
  late.processes[1].record.command = "renamed";
  write_all(dir.store(), {tick(kT0, "n1", 3, 10'000'000, (kT0 + 1) * 1000), late});
  EXPECT_EQ(read_only_processes(dir.store())[1].command, "renamed");
  // The job restarts (end cleared) and a record changes: the old pack is stale and not used.
  Batch again = tick(kT0 + 2, "n1", 3, 30'000'000, 0);
  again.processes[2].record.command = "again";
  write_all(dir.store(), {again});
  const auto seen = read_only_processes(dir.store());
  EXPECT_EQ(seen[2].command, "again");
  EXPECT_EQ(seen[2].cpu_ns, 30'000'000U);
  EXPECT_EQ(seen[2].end_ms, 0);
}

TEST(StoreProcessPack, NodesKeepTheirOrderWithAndWithoutPacks) {
  TempDir dir;
  write_all(dir.store(), {tick(kT0, "n1", 4, 10'000'000, (kT0 + 1) * 1000),  // finished on n1: packed
                          tick(kT0, "n2", 2, 20'000'000, 0),                 // still running on n2
                          tick(kT0, "n3", 3, 30'000'000, (kT0 + 1) * 1000)});
  const auto mixed = read_only_processes(dir.store());
  ASSERT_EQ(mixed.size(), 9U);
  EXPECT_EQ(mixed[0].node, "n1");
  EXPECT_EQ(mixed[4].node, "n2");
  EXPECT_EQ(mixed[6].node, "n3");
  pack_entries(dir.store(), true);
  expect_same(mixed, read_only_processes(dir.store()));
}

TEST(StoreProcessPack, AStoreWithoutThePackTableOpensReadOnly) {
  TempDir dir;
  write_all(dir.store(), {tick(kT0, "n1", 2, 10'000'000, (kT0 + 1) * 1000)});
  // As a store written before packs existed: the table is deleted outright.
  MDB_env* env = nullptr;
  mdb_env_create(&env);
  mdb_env_set_maxdbs(env, 16);
  ASSERT_EQ(mdb_env_open(env, dir.store().c_str(), 0, 0644), 0);
  MDB_txn* txn = nullptr;
  mdb_txn_begin(env, nullptr, 0, &txn);
  MDB_dbi dbi;
  ASSERT_EQ(mdb_dbi_open(txn, "process_pack", 0, &dbi), 0);
  ASSERT_EQ(mdb_drop(txn, dbi, 1), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
  EXPECT_EQ(read_only_processes(dir.store()).size(), 2U);
  OpenOptions o = test_options();
  o.read_only = true;
  o.create = false;
  auto ro = Store::open(dir.store(), o);
  EXPECT_TRUE(ro->check().ok());
  EXPECT_GT(ro->stats().tables.size(), 5U);
}
