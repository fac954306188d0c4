// 16 writer processes on one node store, growing its map as they go, while reader processes query it:
// no sample is lost, no reader fails or sees data go backwards. Then the same within one process, as bcd
// uses its store: reader threads beside the writer thread, and the gate that lets the writer grow the map.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "accounting_db/env_gate.hpp"

#include "../unit/store_test_util.hpp"
#include "crash_model.hpp"

using namespace bc::store;
using namespace bc::store::testing;

namespace {

pid_t spawn(const std::vector<std::string>& args, int stdin_fd = -1) {
  std::vector<std::string> storage = args;
  std::vector<char*> argv;
  for (auto& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    if (stdin_fd >= 0 && dup2(stdin_fd, 0) < 0) _exit(126);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int exit_code(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

}  // namespace

TEST(StoreConcurrency, SixteenWritersAndFourReadersLoseNothing) {
  TempDir dir;
  const std::string path = dir.store();
  OpenOptions small = test_options(Retention{});
  small.initial_map_bytes = 1 << 20;
  ASSERT_TRUE(Store::init(path, small));
  constexpr int kTicks = 150, kProcs = 8;
  // 14 jobs with a writer each, and one job on two nodes with a writer per node.
  struct Writer {
    uint64_t job;
    std::string node;
  };
  std::vector<Writer> writers;
  for (uint64_t j = 1; j <= 14; ++j) writers.push_back({j, "n1"});
  writers.push_back({200, "a"});
  writers.push_back({200, "b"});
  ASSERT_EQ(writers.size(), 16u);

  std::vector<std::string> reader_args = {STORE_WRITER, "read", path};
  for (const auto& w : writers) reader_args.push_back(std::to_string(w.job));
  int stop[2];
  ASSERT_EQ(pipe2(stop, O_CLOEXEC), 0);  // only the readers' stdin keeps the read end
  std::vector<pid_t> readers;
  for (int i = 0; i < 4; ++i) readers.push_back(spawn(reader_args, stop[0]));
  close(stop[0]);

  std::vector<pid_t> pids;
  for (const auto& w : writers)
    pids.push_back(spawn(
        {STORE_WRITER, "ticks", path, std::to_string(w.job), w.node, std::to_string(kTicks), std::to_string(kProcs)}));
  for (size_t i = 0; i < pids.size(); ++i) EXPECT_EQ(exit_code(pids[i]), 0) << "writer " << i;
  close(stop[1]);  // readers finish their round and exit
  for (size_t i = 0; i < readers.size(); ++i) EXPECT_EQ(exit_code(readers[i]), 0) << "reader " << i;

  auto store = Store::open(path, test_options(Retention{}));
  for (const auto& w : writers) {
    auto job = store->job(w.job, w.node);
    ASSERT_TRUE(job) << w.job << "/" << w.node;
    EXPECT_EQ(job->sample_count, static_cast<uint64_t>(kTicks));
    for (uint32_t series = 0; series <= kProcs; ++series) {
      EXPECT_EQ(store->series(w.job, w.node, series, 0, INT64_MAX).size(), static_cast<size_t>(kTicks))
          << w.job << "/" << w.node << " series " << series;
      uint64_t samples = 0;
      for (const auto& b : store->query_series({w.job, w.node, series, 0, INT64_MAX, Resolution::Day}).buckets)
        samples += b.samples;
      EXPECT_EQ(samples, static_cast<uint64_t>(kTicks));
    }
  }
  EXPECT_EQ(store->processes(200).size(), 2u * kProcs);
  EXPECT_EQ(store->job_ids().size(), 15u);
  EXPECT_GT(store->stats().map_bytes, 1u << 20);  // the writers grew the map together
  CheckReport check = store->check();
  EXPECT_TRUE(check.ok()) << (check.problems.empty() ? "" : check.problems.front());
}

// bcd's shape: one writer thread and reader threads on one Store, the map starting small so the writer
// grows it many times while readers are inside their transactions. No read fails, a reader never sees a job
// go backwards, and nothing written is lost.
TEST(StoreConcurrency, ReaderThreadsRunBesideTheWriterWhileTheMapGrows) {
  TempDir dir;
  OpenOptions small = test_options(Retention{});
  small.initial_map_bytes = 128 << 10;
  small.map_growth_step_bytes = 128 << 10;
  auto store = Store::open(dir.store(), small);
  const uint64_t map_before = store->stats().map_bytes;
  const uint64_t map_grown = map_before + 4 * small.map_growth_step_bytes;
  // Until the map has grown four times and the readers have read beside the writer: how many ticks that takes
  // depends on how many freed pages the readers' snapshots keep from reuse (about 400 here), and on when the
  // reader threads get a core.
  constexpr int kMaxTicks = 4000;
  constexpr uint32_t kProcs = 40;
  std::atomic<bool> writing{true};
  std::atomic<uint64_t> reads{0};
  int ticks = 0;
  auto writer = std::async(std::launch::async, [&] {
    while (ticks < kMaxTicks && (ticks < 400 || store->stats().map_bytes < map_grown || reads <= 100)) {
      Batch b = busy_tick(7, "n1", 1'700'000'000 + ticks, kProcs);
      store->write_batch(b);
      ++ticks;
    }
    writing = false;
  });
  std::vector<std::future<std::string>> readers;
  for (int r = 0; r < 3; ++r)
    readers.push_back(std::async(std::launch::async, [&]() -> std::string {
      int64_t last_sample_ms = 0;
      size_t last_points = 0;
      try {
        while (writing) {
          JobSnapshot snap = store->load_job(7);
          if (!snap.nodes.empty()) {
            if (snap.nodes[0].last_sample_ms < last_sample_ms) return "the job's last sample went backwards";
            last_sample_ms = snap.nodes[0].last_sample_ms;
            if (snap.processes.size() != kProcs) return "saw " + std::to_string(snap.processes.size()) + " processes";
          }
          const size_t points = store->series(7, "n1", kProcs, 0, INT64_MAX).size();
          if (points < last_points) return "series went backwards";
          last_points = points;
          (void)store->job_ids();
          (void)store->query_series({7, "n1", 0, 0, INT64_MAX, Resolution::Minute});
          (void)store->stats();  // takes the writer's lock too: never while inside a transaction
          reads += 5;
        }
      } catch (const std::exception& e) {
        return e.what();
      }
      return "";
    }));
  ASSERT_NO_THROW(writer.get());
  for (auto& r : readers) EXPECT_EQ(r.get(), "");
  EXPECT_GT(reads.load(), 100u);  // the readers did run beside the writer
  EXPECT_GE(store->stats().map_bytes, map_grown);
  EXPECT_EQ(store->series(7, "n1", kProcs, 0, INT64_MAX).size(), static_cast<size_t>(ticks));
  EXPECT_EQ(store->job(7, "n1")->last_sample_ms, (1'700'000'000LL + ticks - 1) * 1000);
  EXPECT_TRUE(store->check().ok());
}

// The gate itself: a resize waits for the transactions inside; once it waits, new transactions wait behind
// it (readers cannot starve it); a thread inside passes again; a resize from inside is refused.
TEST(EnvGate, AResizeWaitsForPassesAndHoldsNewOnesOff) {
  using bc::store::lmdb::EnvGate;
  using namespace std::chrono_literals;
  EnvGate gate;
  auto inside = std::make_optional(gate.enter());
  { EnvGate::Pass nested = gate.enter(); }  // would hang if the thread waited for itself
  EXPECT_THROW(gate.exclusively([] {}), std::logic_error);

  std::atomic<bool> resized{false};
  auto resize = std::async(std::launch::async, [&] { gate.exclusively([&] { resized = true; }); });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(resized.load());  // a pass is still out

  std::atomic<bool> late_entered{false};
  auto late = std::async(std::launch::async, [&] {
    EnvGate::Pass p = gate.enter();
    late_entered = true;
    return resized.load();
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(late_entered.load());  // held off by the waiting resize

  inside.reset();
  resize.get();
  EXPECT_TRUE(resized.load());
  EXPECT_TRUE(late.get());  // entered only after the resize
}
