// ProcessTable against real processes on this host: the numbers must match what the child really did.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "burn_cpu.hpp"
#include "cgroup_monitor/proc_parse.hpp"
#include "cgroup_monitor/process_table.hpp"
#include "common/fd.hpp"

using namespace bc::monitor;
namespace store = bc::store;
using namespace std::chrono_literals;

namespace {
int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Child: writes `bytes` to a file with fsync, touches `touch` bytes of memory, then waits for SIGTERM.
pid_t spawn_child(const std::string& path, size_t bytes, size_t touch, int ready_fd) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char> block(1 << 16, 'x');
  for (size_t done = 0; done < bytes; done += block.size()) {
    if (write(fd, block.data(), block.size()) < 0) _exit(3);
  }
  fsync(fd);
  close(fd);
  void* mem = mmap(nullptr, touch, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  std::memset(mem, 1, touch);
  if (write(ready_fd, "r", 1) != 1) _exit(4);
  pause();
  _exit(0);
}

uint64_t kernel_write_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/io");
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value)
    if (key == "write_bytes:") return value;
  return 0;
}

const store::ProcessUpdate* find(const store::Batch& b, uint32_t pid) {
  for (auto& u : b.processes)
    if (u.record.pid == pid) return &u;
  return nullptr;
}
}  // namespace

TEST(ProcessTable, TrueIoAndRssOfARealChild) {
  char dir_template[] = "/tmp/bc-pt-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir_template));
  std::string file = std::string(dir_template) + "/out";
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  const size_t kBytes = 8 << 20, kTouch = 64 << 20;
  pid_t child = spawn_child(file, kBytes, kTouch, pipefd[1]);
  char c;
  ASSERT_EQ(read(pipefd[0], &c, 1), 1);

  ProcessTable table;
  store::Batch batch;
  auto totals = table.sample({{static_cast<uint32_t>(child), 0u}}, now_ms(), batch);
  const auto* u = find(batch, static_cast<uint32_t>(child));
  ASSERT_TRUE(u);
  EXPECT_EQ(u->record.ppid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(u->record.step, 0u);
  EXPECT_EQ(u->record.end_ms, 0);
  // write_bytes counts pages dirtied: exactly what we wrote, unless this filesystem is not block-backed.
  if (u->record.write_bytes == 0) {
    GTEST_SKIP() << "/tmp does not account write_bytes here (tmpfs?)";
  }
  // The kernel may add a page or two of filesystem metadata to what we wrote: its own count is the truth.
  const uint64_t truth = kernel_write_bytes(child);
  EXPECT_EQ(u->record.write_bytes, truth);
  EXPECT_NEAR(static_cast<double>(u->record.write_bytes), kBytes, kBytes * 0.01);
  EXPECT_GE(u->record.max_rss, kTouch);
  EXPECT_LT(u->record.max_rss, kTouch + (32 << 20));
  EXPECT_EQ(totals.live, 1u);
  ASSERT_TRUE(u->sample);
  EXPECT_EQ(u->sample->write_bytes, truth);
  table.commit(batch);

  kill(child, SIGTERM);
  waitpid(child, nullptr, 0);
  store::Batch after;
  table.sample({}, now_ms(), after);
  const auto* ended = find(after, static_cast<uint32_t>(child));
  ASSERT_TRUE(ended);
  EXPECT_GT(ended->record.end_ms, 0);
  EXPECT_EQ(ended->record.write_bytes, truth);
  table.commit(after);
  // An ended process is reported once, then forgotten, but its totals stay counted.
  store::Batch later;
  auto t = table.sample({}, now_ms(), later);
  EXPECT_TRUE(later.processes.empty());
  EXPECT_EQ(t.write_bytes, truth);
  unlink(file.c_str());
  rmdir(dir_template);
}

TEST(ProcessTable, CpuOfABusyChild) {
  // The child burns 0.6 s of its own CPU clock (not of wall time, which a loaded machine stretches), then
  // says so through a pipe and waits: the table must then read 0.6 s, give or take the last tick.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  if (child == 0) {
    close(ready[0]);
    burn_cpu(600'000'000LL);
    (void)!write(ready[1], "x", 1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  ProcessTable table;
  store::Batch first;
  table.sample({{static_cast<uint32_t>(child), std::nullopt}}, now_ms(), first);
  table.commit(first);
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  close(ready[0]);
  store::Batch second;
  table.sample({{static_cast<uint32_t>(child), std::nullopt}}, now_ms(), second);
  const auto* u = find(second, static_cast<uint32_t>(child));
  ASSERT_TRUE(u);
  EXPECT_GE(u->record.cpu_ns, 590'000'000u);  // /proc's clock ticks round down by at most 10 ms
  EXPECT_LT(u->record.cpu_ns, 700'000'000u);
  EXPECT_EQ(u->record.step, bc::store::kStepUnknown);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
}

TEST(ProcessTable, IgnoresSlurmstepdAndVanishedPids) {
  ProcessTable table;
  store::Batch batch;
  // A pid that cannot exist: the kernel's pid_max is far below this.
  auto totals = table.sample({{0x7ffffff0u, 0u}}, now_ms(), batch);
  EXPECT_TRUE(batch.processes.empty());
  EXPECT_EQ(totals.live, 0u);
}

// A parent that reaps a child too short to be seen carries the child's bytes; a tracked child's bytes are
// counted once, by the child, not again by the parent that reaped it.
TEST(ProcessTable, ReapedChildrenCountedOnce) {
  char dir_template[] = "/tmp/bc-pt-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir_template));
  const std::string dir = dir_template;
  const size_t kBytes = 4 << 20;
  int go[2], ready[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(ready), 0);
  pid_t parent = fork();
  if (parent == 0) {
    // Parent: on each 'g' forks a writer child, reaps it, and reports its pid.
    char c;
    int n = 0;
    while (read(go[0], &c, 1) == 1) {
      if (c == 'q') _exit(0);
      int child_ready[2];
      if (pipe(child_ready) != 0) _exit(5);
      pid_t child = fork();
      if (child == 0) {
        close(child_ready[0]);
        int fd = open((dir + "/f" + std::to_string(n)).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        std::vector<char> block(1 << 16, 'y');
        for (size_t done = 0; done < kBytes; done += block.size())
          if (write(fd, block.data(), block.size()) < 0) _exit(3);
        fsync(fd);
        close(fd);
        if (c == 'h') {  // hold: stay alive until told
          if (write(child_ready[1], "r", 1) != 1) _exit(4);
          pause();
        }
        _exit(0);
      }
      close(child_ready[1]);
      if (c == 'h') {
        char r;
        if (read(child_ready[0], &r, 1) != 1) _exit(6);
      } else {
        waitpid(child, nullptr, 0);
      }
      close(child_ready[0]);
      ++n;
      if (write(ready[1], &child, sizeof child) != sizeof child) _exit(7);
      if (c == 'h') {
        if (read(go[0], &c, 1) != 1) _exit(8);  // 'k': kill and reap the held child
        kill(child, SIGKILL);
        waitpid(child, nullptr, 0);
        if (write(ready[1], &child, sizeof child) != sizeof child) _exit(9);
      }
    }
    _exit(0);
  }
  auto command = [&](char c) {
    pid_t child = 0;
    EXPECT_EQ(write(go[1], &c, 1), 1);
    EXPECT_EQ(read(ready[0], &child, sizeof child), static_cast<ssize_t>(sizeof child));
    return child;
  };
  // The kernel's own inclusive count for the parent (its bytes plus every reaped child's) is the truth.
  auto kernel_inclusive_write = [&] {
    std::ifstream in("/proc/" + std::to_string(parent) + "/io");
    std::string key;
    uint64_t value = 0;
    while (in >> key >> value)
      if (key == "write_bytes:") return value;
    return uint64_t{0};
  };
  ProcessTable table;
  auto tick = [&](std::vector<MemberPid> members) {
    store::Batch b;
    auto totals = table.sample(members, now_ms(), b);
    table.commit(b);
    return totals;
  };
  tick({{static_cast<uint32_t>(parent), 0u}});
  // 1. An unseen child: forked, wrote, reaped between two ticks.
  command('g');
  auto t1 = tick({{static_cast<uint32_t>(parent), 0u}});
  if (t1.write_bytes == 0) GTEST_SKIP() << "/tmp does not account write_bytes here (tmpfs?)";
  EXPECT_EQ(t1.write_bytes, kernel_inclusive_write()) << "the unseen child's bytes are carried by its parent";
  EXPECT_NEAR(static_cast<double>(t1.write_bytes), kBytes, kBytes * 0.01);
  // 2. A seen child: tracked while alive, then reaped.
  pid_t held = command('h');
  auto t2 = tick({{static_cast<uint32_t>(parent), 0u}, {static_cast<uint32_t>(held), 0u}});
  EXPECT_NEAR(static_cast<double>(t2.write_bytes), 2 * kBytes, kBytes * 0.01);
  EXPECT_EQ(command('k'), held);
  auto t3 = tick({{static_cast<uint32_t>(parent), 0u}});
  EXPECT_EQ(t3.write_bytes, kernel_inclusive_write()) << "a reaped tracked child must not be counted twice";
  EXPECT_NEAR(static_cast<double>(t3.write_bytes), 2 * kBytes, kBytes * 0.01);
  auto t4 = tick({{static_cast<uint32_t>(parent), 0u}});
  EXPECT_EQ(t4.write_bytes, t3.write_bytes);
  char q = 'q';
  ASSERT_EQ(write(go[1], &q, 1), 1);
  waitpid(parent, nullptr, 0);
  std::filesystem::remove_all(dir);
}

// A wrapper chain as `timeout 3 sh -c '<busy loop>'` makes it: P waits for C, which waits for the busy G. G
// ends and C ends within one interval, so both are seen gone in the same tick, C last sampled before it
// reaped G. The sum of the three records must be the CPU the kernel counted for the chain, not G's twice.
TEST(ProcessTable, AWrapperChainEndingInOneIntervalIsCountedOnce) {
  int ready[2], go[2], done[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(done), 0);
  pid_t wrapper = fork();
  if (wrapper == 0) {
    pid_t shell = fork();
    if (shell == 0) {
      pid_t busy = fork();
      if (busy == 0) {
        burn_cpu(400'000'000LL);
        char c = 0;
        if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1) _exit(3);
        _exit(0);
      }
      if (write(ready[1], &busy, sizeof busy) != sizeof busy) _exit(4);
      waitpid(busy, nullptr, 0);
      _exit(0);
    }
    waitpid(shell, nullptr, 0);
    if (write(done[1], "d", 1) != 1) _exit(5);
    pause();
    _exit(0);
  }
  pid_t busy = 0;
  char c = 0;
  ASSERT_EQ(read(ready[0], &busy, sizeof busy), static_cast<ssize_t>(sizeof busy));
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  // The shell's pid: the busy process's parent.
  const auto busy_stat = parse_proc_stat(*bc::read_file("/proc/" + std::to_string(busy) + "/stat"));
  ASSERT_TRUE(busy_stat);
  const uint32_t shell = busy_stat->ppid;
  ProcessTable table;
  store::Batch first;
  table.sample({{static_cast<uint32_t>(wrapper), 0u}, {shell, 0u}, {static_cast<uint32_t>(busy), 0u}}, now_ms(), first);
  table.commit(first);
  ASSERT_EQ(write(go[1], "g", 1), 1);
  ASSERT_EQ(read(done[0], &c, 1), 1);
  store::Batch second;
  const auto totals = table.sample({{static_cast<uint32_t>(wrapper), 0u}}, now_ms(), second);
  table.commit(second);
  // The kernel's count for the whole chain: the wrapper's own CPU and all it reaped.
  const auto w = parse_proc_stat(*bc::read_file("/proc/" + std::to_string(wrapper) + "/stat"));
  ASSERT_TRUE(w);
  const uint64_t ns_per_tick = 1'000'000'000ULL / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
  const uint64_t truth = (w->utime_ticks + w->stime_ticks + w->cutime_ticks + w->cstime_ticks) * ns_per_tick;
  EXPECT_GE(truth, 370'000'000u);  // clock ticks: user and system time each round down by up to 10 ms
  EXPECT_NEAR(static_cast<double>(totals.cpu_ns), static_cast<double>(truth), 30e6)
      << "the busy grandchild's CPU must be counted once";
  kill(wrapper, SIGKILL);
  waitpid(wrapper, nullptr, 0);
}

// The plugin passes on each task's end as slurmstepd reaped it (wait's rusage): a task sampling saw gets its
// whole figure, its last interval included; a task no sample saw gets a record of its own from it.
TEST(ProcessTable, ATasksEndFromItsReaperGivesItsLastInterval) {
  int ready[2], go[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(go), 0);
  pid_t task = fork();
  if (task == 0) {
    char c = 0;
    if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1) _exit(3);
    burn_cpu(300'000'000LL);  // after the last sample: sampling cannot see it
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ProcessTable table;
  store::Batch first;
  table.sample({{static_cast<uint32_t>(task), 0u}}, now_ms(), first);
  table.commit(first);
  const auto start_ticks = table.identity(static_cast<uint32_t>(task))->start_ticks;
  ASSERT_EQ(write(go[1], "g", 1), 1);
  rusage usage{};
  ASSERT_EQ(wait4(task, nullptr, 0, &usage), task);  // this test is the task's slurmstepd
  const uint64_t cpu_ns = static_cast<uint64_t>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1'000'000'000ULL +
                          static_cast<uint64_t>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1000ULL;
  ASSERT_GE(cpu_ns, 300'000'000u);
  table.apply_task_end({static_cast<uint32_t>(task), static_cast<uint32_t>(getpid()), 0, start_ticks, now_ms(), "task",
                        Counters{cpu_ns, 0, 0}});
  store::Batch second;
  auto totals = table.sample({}, now_ms(), second);
  const auto* u = find(second, static_cast<uint32_t>(task));
  ASSERT_TRUE(u);
  EXPECT_EQ(u->record.cpu_ns, cpu_ns);
  EXPECT_EQ(totals.cpu_ns, cpu_ns);
  table.commit(second);

  // A task that ended before any sample: its record comes from its end alone, and is counted once.
  const uint32_t unseen = 0x7ffffff1u;  // no such pid: pid_max is far below
  table.apply_task_end({unseen, 77, 3, 123456, now_ms(), "short", Counters{40'000'000, 4096, 8192}});
  store::Batch third;
  totals = table.sample({}, now_ms(), third);
  const auto* s = find(third, unseen);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->record.command, "short");
  EXPECT_EQ(s->record.step, 3u);
  EXPECT_EQ(s->record.ppid, 77u);
  EXPECT_EQ(s->record.cpu_ns, 40'000'000u);
  EXPECT_EQ(s->record.write_bytes, 8192u);
  EXPECT_GT(s->record.end_ms, 0);
  EXPECT_EQ(totals.cpu_ns, cpu_ns + 40'000'000u);
  table.commit(third);
  store::Batch fourth;
  totals = table.sample({}, now_ms(), fourth);
  EXPECT_TRUE(fourth.processes.empty());
  EXPECT_EQ(totals.cpu_ns, cpu_ns + 40'000'000u);
}

// A child that runs `extra` threads besides its main one, all blocked until the pipe closes.
TEST(ProcessTable, TheMostThreadsSeenAtOnceAreKept) {
  int ready[2], hold[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(hold), 0);
  constexpr int kExtra = 4;
  pid_t child = fork();
  if (child == 0) {
    close(hold[1]);
    std::vector<std::thread> threads;
    for (int i = 0; i < kExtra; ++i)
      threads.emplace_back([fd = hold[0]] {
        char c;
        while (read(fd, &c, 1) > 0) {
        }
      });
    if (write(ready[1], "r", 1) != 1) _exit(4);
    for (auto& t : threads) t.join();  // the pipe closed: the threads end, the main one lives on
    if (write(ready[1], "e", 1) != 1) _exit(4);
    pause();
    _exit(0);
  }
  close(hold[0]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ProcessTable table;
  const uint32_t pid = static_cast<uint32_t>(child);
  store::Batch first;
  table.sample({{pid, 0u}}, now_ms(), first);
  ASSERT_TRUE(find(first, pid));
  EXPECT_EQ(find(first, pid)->record.max_threads, 1u + kExtra);
  EXPECT_EQ(find(first, pid)->sample->threads, 1u + kExtra) << "each sample carries the count at the time";
  EXPECT_EQ(first.processes.size(), 1U);
  table.commit(first);

  close(hold[1]);
  ASSERT_EQ(read(ready[0], &c, 1), 1);  // down to one thread
  store::Batch second;
  table.sample({{pid, 0u}}, now_ms(), second);
  ASSERT_TRUE(find(second, pid)) << "a changed thread count is a change to write, even with nothing else";
  EXPECT_EQ(find(second, pid)->sample->threads, 1u);
  EXPECT_EQ(find(second, pid)->record.max_threads, 1u + kExtra);
  table.commit(second);
  store::Batch steady;
  table.sample({{pid, 0u}}, now_ms(), steady);
  EXPECT_FALSE(find(steady, pid)) << "nothing changed: no point";
  table.commit(steady);
  kill(child, SIGTERM);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  store::Batch last;
  table.sample({}, now_ms(), last);
  const auto* u = find(last, pid);
  ASSERT_TRUE(u);  // its end is written
  EXPECT_GT(u->record.end_ms, 0);
  EXPECT_EQ(u->record.max_threads, 1u + kExtra) << "the peak outlives the threads and the process";
}

// slurmstepd names each task's rank when it forks it; what the task starts belongs to the rank.
TEST(ProcessTable, ATasksRankReachesTheProcessesItStarts) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t task = fork();
  if (task == 0) {
    pid_t helper = fork();
    if (helper == 0) {
      pid_t grandchild = fork();
      if (grandchild == 0) pause();
      if (write(ready[1], "r", 1) != 1) _exit(4);
      pause();
    }
    pause();
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  auto children_of = [](pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
    std::vector<uint32_t> out;
    for (uint32_t p = 0; in >> p;) out.push_back(p);
    return out;
  };
  const auto helpers = children_of(task);
  ASSERT_EQ(helpers.size(), 1u);
  const auto grandchildren = children_of(static_cast<pid_t>(helpers[0]));
  ASSERT_EQ(grandchildren.size(), 1u);
  const uint32_t task_pid = static_cast<uint32_t>(task);
  // The descendants are listed before the task: the rank still reaches them in the same sample.
  const std::vector<MemberPid> members{{grandchildren[0], 0u}, {helpers[0], 0u}, {task_pid, 0u}};

  ProcessTable table;
  const auto text = bc::read_file("/proc/" + std::to_string(task) + "/stat");
  ASSERT_TRUE(text);
  const uint64_t start_ticks = parse_proc_stat(*text)->start_ticks;
  table.apply_task_start(task_pid, start_ticks + 1, 9);  // another process that had the pid: not this one
  table.apply_task_start(task_pid, start_ticks, 3);      // before the table tracks it, as the plugin is quick
  store::Batch first;
  table.sample(members, now_ms(), first);
  for (uint32_t pid : {task_pid, helpers[0], grandchildren[0]}) {
    ASSERT_TRUE(find(first, pid)) << pid;
    EXPECT_EQ(find(first, pid)->record.task, 3u) << pid;
  }
  EXPECT_EQ(table.task_of(grandchildren[0]), 3u);
  table.commit(first);

  // A process outside any task has none.
  pid_t outsider = fork();
  if (outsider == 0) {
    pause();
    _exit(0);
  }
  store::Batch second;
  table.sample({{static_cast<uint32_t>(outsider), 0u}}, now_ms(), second);
  ASSERT_TRUE(find(second, static_cast<uint32_t>(outsider)));
  EXPECT_EQ(find(second, static_cast<uint32_t>(outsider))->record.task, store::kTaskUnknown);
  for (pid_t p : {static_cast<pid_t>(grandchildren[0]), static_cast<pid_t>(helpers[0]), task, outsider})
    kill(p, SIGKILL);
  waitpid(task, nullptr, 0);
  waitpid(outsider, nullptr, 0);
}
