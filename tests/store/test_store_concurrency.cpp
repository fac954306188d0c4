// 16 writer processes on one node store, growing its map as they go, while reader processes query it:
// no sample is lost, no reader fails or sees data go backwards.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

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
