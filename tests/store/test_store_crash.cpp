// A writer killed with SIGKILL at random points, again and again: after every kill the store opens,
// passes check, and holds every batch the writer reported as committed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <random>

#include "../unit/store_test_util.hpp"
#include "crash_model.hpp"

using namespace bc::store;
using namespace bc::store::testing;
using namespace bc::store::crash_model;

namespace {

struct Child {
  pid_t pid = -1;
  int out = -1;  // the child's stdout
  int err = -1;  // the child's stderr
};

Child spawn(const std::vector<std::string>& args) {
  int out[2], err[2];
  EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
  std::vector<std::string> storage = args;
  std::vector<char*> argv;
  for (auto& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  Child c;
  c.pid = fork();
  if (c.pid == 0) {
    if (dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0) _exit(126);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  c.out = out[0];
  c.err = err[0];
  return c;
}

// Reads whole lines of sequence numbers from fd until the deadline (or EOF); returns the largest.
uint64_t read_sequences(int fd, std::string& partial, std::chrono::steady_clock::time_point deadline, bool until_eof,
                        bool stop_at_first = false) {
  uint64_t last = 0;
  for (;;) {
    if (stop_at_first && last > 0) break;
    int wait_ms = 0;
    if (!until_eof) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      wait_ms = static_cast<int>(left.count());
    } else {
      wait_ms = 5000;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, wait_ms) <= 0) break;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    partial.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = partial.find('\n')) != std::string::npos) {
      last = std::max<uint64_t>(last, std::strtoull(partial.substr(0, nl).c_str(), nullptr, 10));
      partial.erase(0, nl + 1);
    }
  }
  return last;
}

std::string drain(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  return s;
}

// What the store must hold once batches 1..n are in.
void verify(const std::string& path, uint64_t committed, uint64_t* stored) {
  auto store = Store::open(path, writer_options());
  CheckReport check = store->check();
  ASSERT_TRUE(check.ok()) << check.problem_count << " problems, first: " << check.problems.front();
  auto job = store->job(kCrashJob, "n1");
  if (committed == 0 && !job) return;
  ASSERT_TRUE(job) << "job record missing after " << committed << " committed batches";
  const uint64_t n = job->sample_count;  // batches in the store: at least the reported ones
  ASSERT_GE(n, committed);
  *stored = n;
  // Every tick is in the rollups, exactly once: the sample count and the CPU (a sum of increases).
  uint64_t samples = 0, cpu = 0;
  for (const auto& b : store->query_series({kCrashJob, "n1", 0, 0, INT64_MAX, Resolution::Minute}).buckets) {
    samples += b.samples;
    cpu += b.cpu_ns;
  }
  ASSERT_EQ(samples, n);
  ASSERT_EQ(cpu, crash_job_cpu(n));
  // Process 0 also has its late points (one every five batches).
  samples = cpu = 0;
  for (const auto& b : store->query_series({kCrashJob, "n1", 1, 0, INT64_MAX, Resolution::Hour}).buckets) {
    samples += b.samples;
    cpu += b.cpu_ns;
  }
  ASSERT_EQ(samples, n + n / 5);
  ASSERT_EQ(cpu, crash_proc_cpu(n, 0));
  // The seconds still retained are the right ones.
  auto raw = store->series(kCrashJob, "n1", 0, 0, INT64_MAX);
  ASSERT_FALSE(raw.empty());
  ASSERT_EQ(raw.back().time_s, crash_time(n));
  ASSERT_GE(raw.front().time_s, crash_time(n) - 600);
  for (size_t i = 1; i < raw.size(); ++i) ASSERT_EQ(raw[i].time_s - raw[i - 1].time_s, kStep);
  ASSERT_EQ(store->processes(kCrashJob).size(), static_cast<size_t>(kCrashProcs));
}

}  // namespace

TEST(StoreCrash, SigkillAtRandomPointsLosesNoCommittedBatch) {
  TempDir dir;
  const std::string path = dir.store();
  const char* loops_env = std::getenv("BC_CRASH_LOOPS");
  const int loops = loops_env ? std::atoi(loops_env) : 50;
  std::mt19937 rng(static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
  uint64_t committed = 0, stored = 0;
  int early = 0;
  for (int loop = 0; loop < loops; ++loop) {
    Child c = spawn({STORE_WRITER, "crash", path, std::to_string(stored + 1)});
    std::string partial;
    uint64_t seen = 0;
    const auto now = [] { return std::chrono::steady_clock::now(); };
    if (rng() % 4 == 0) {
      // Early: while it opens the store, grows the map, writes its first batch.
      ++early;
      seen = read_sequences(c.out, partial, now() + std::chrono::milliseconds(rng() % 15), false);
    } else {
      // In the middle of its batches: after its first commit, at a random point within the next 250 ms.
      seen = read_sequences(c.out, partial, now() + std::chrono::seconds(20), false, /*stop_at_first=*/true);
      EXPECT_GT(seen, stored) << "loop " << loop << ": no batch committed within 20 s";
      seen = std::max(seen, read_sequences(c.out, partial, now() + std::chrono::milliseconds(rng() % 250), false));
    }
    kill(c.pid, SIGKILL);
    int status = 0;
    waitpid(c.pid, &status, 0);
    // Lines the writer printed before it died are still in the pipe.
    seen = std::max(seen, read_sequences(c.out, partial, {}, true));
    const std::string err = drain(c.err);
    close(c.out);
    close(c.err);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the writer stopped on its own in loop " << loop << ": " << err;
    committed = std::max(committed, seen);
    ASSERT_NO_FATAL_FAILURE(verify(path, committed, &stored)) << "after kill " << loop;
  }
  EXPECT_LT(early, loops);
  EXPECT_GT(committed, 100u) << "the writer hardly ran";
  std::printf("%d kills, %llu batches committed\n", loops, static_cast<unsigned long long>(committed));
}
