// ProcessTable's side of the eBPF events, against a real child: an exit applied to a tracked process gives
// its record the exit status, exact end and final CPU (also in this tick's batch), and a process left to its
// event record is never tracked by sampling again.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <ctime>

#include "process_table.hpp"

using namespace bc::monitor;
namespace store = bc::store;

namespace {
int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

pid_t sleeping_child() {
  pid_t pid = fork();
  if (pid == 0) {
    pause();
    _exit(0);
  }
  return pid;
}

const store::ProcessUpdate* find(const store::Batch& b, uint32_t pid) {
  for (const auto& u : b.processes)
    if (u.record.pid == pid) return &u;
  return nullptr;
}
}  // namespace

TEST(ProcessTableEvents, ExitFactsReachTheRecordAndThisTicksBatch) {
  const pid_t child = sleeping_child();
  const auto pid = static_cast<uint32_t>(child);
  ProcessTable table;
  store::Batch first;
  table.sample({{pid, 0u}}, now_ms(), first);
  table.commit(first);
  auto id = table.identity(pid);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->step, 0u);
  EXPECT_EQ(table.live_pids(), std::vector<uint32_t>{pid});

  store::Batch tick;
  table.sample({{pid, 0u}}, now_ms(), tick);
  const size_t before = tick.processes.size();
  ProcessTable::ExitFacts facts;
  facts.end_ms = now_ms();
  facts.exit_code = -1;
  facts.exit_signal = 9;
  facts.cpu_ns = 123'000'000;  // more than the sleeping child used: the kernel's final figure wins
  facts.max_rss = 1ULL << 40;
  EXPECT_FALSE(table.apply_exit(pid, id->start_ticks + 1, facts, tick));  // another process of that pid
  ASSERT_TRUE(table.apply_exit(pid, id->start_ticks, facts, tick));
  EXPECT_LE(tick.processes.size(), before + 1);
  const auto* u = find(tick, pid);
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->record.exited && u->record.exact);
  EXPECT_EQ(u->record.exit_signal, 9);
  EXPECT_EQ(u->record.exit_code, -1);
  EXPECT_EQ(u->record.end_ms, facts.end_ms);
  EXPECT_GE(u->record.cpu_ns, facts.cpu_ns);
  EXPECT_EQ(u->record.max_rss, facts.max_rss);
  EXPECT_TRUE(table.live_pids().empty());
  table.commit(tick);

  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  // The end stays the exact one after sampling sees the process gone.
  store::Batch after;
  table.sample({}, now_ms() + 5000, after);
  if (const auto* a = find(after, pid)) {
    EXPECT_EQ(a->record.end_ms, facts.end_ms);
  }
}

TEST(ProcessTableEvents, AProcessLeftToEventsIsNotTracked) {
  const pid_t child = sleeping_child();
  const auto pid = static_cast<uint32_t>(child);
  ProcessTable probe;
  store::Batch b0;
  probe.sample({{pid, 0u}}, now_ms(), b0);
  const auto start_ticks = probe.identity(pid)->start_ticks;

  ProcessTable table;
  table.leave_to_events(pid, start_ticks + 1);  // another process of that pid: no effect
  store::Batch b1;
  table.sample({{pid, 0u}}, now_ms(), b1);
  EXPECT_TRUE(table.identity(pid));

  ProcessTable owned;
  owned.leave_to_events(pid, start_ticks);
  store::Batch b2;
  owned.sample({{pid, 0u}}, now_ms(), b2);
  EXPECT_FALSE(owned.identity(pid));
  EXPECT_FALSE(find(b2, pid));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
}

// A child that burns CPU after its last sample and is reaped before its exit event is applied: the parent's
// reaped-children total holds the child's final CPU, so the parent must be credited the final figure, not
// the last sampled one, or that CPU is counted twice (once in the child's exact record, once in the parent).
TEST(ProcessTableEvents, ALateExitFigureIsTakenOutOfTheParent) {
  int go[2], ready[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(ready), 0);
  auto burn_until = [](int64_t ns) {
    timespec cpu{};
    volatile unsigned long x = 0;
    do {
      for (int i = 0; i < 100000; ++i) x = x + 1;
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    } while (cpu.tv_sec * 1'000'000'000LL + cpu.tv_nsec < ns);
  };
  const pid_t child = fork();
  if (child == 0) {
    burn_until(100'000'000);
    (void)!write(ready[1], "x", 1);
    char c;
    (void)!read(go[0], &c, 1);
    burn_until(400'000'000);
    _exit(0);
  }
  const auto self = static_cast<uint32_t>(getpid());
  const auto pid = static_cast<uint32_t>(child);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ProcessTable table;
  store::Batch b1;
  table.sample({{self, 0u}, {pid, 0u}}, now_ms(), b1);
  table.commit(b1);
  const auto id = table.identity(pid);
  ASSERT_TRUE(id);
  ASSERT_EQ(write(go[1], "x", 1), 1);
  rusage usage{};
  int status = 0;
  ASSERT_EQ(wait4(child, &status, 0, &usage), child);  // reaped: our children's CPU now holds its 0.4 s
  store::Batch b2;
  table.sample({{self, 0u}}, now_ms(), b2);  // sees the child gone, credits its last sampled 0.1 s
  ProcessTable::ExitFacts facts;
  facts.end_ms = now_ms();
  facts.cpu_ns = static_cast<uint64_t>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1'000'000'000ULL +
                 static_cast<uint64_t>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1000ULL;
  ASSERT_GE(facts.cpu_ns, 390'000'000u);
  ASSERT_TRUE(table.apply_exit(pid, id->start_ticks, facts, b2));
  table.commit(b2);
  store::Batch b3;
  table.sample({{self, 0u}}, now_ms(), b3);
  timespec own{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &own);
  const uint64_t own_ns = static_cast<uint64_t>(own.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(own.tv_nsec);
  const auto* parent = find(b3, self) ? find(b3, self) : find(b2, self);
  ASSERT_TRUE(parent);
  // Our own CPU, give or take /proc's clock ticks; the child's 0.3 s of late CPU must not be in it.
  EXPECT_LT(parent->record.cpu_ns, own_ns + 100'000'000u) << "the child's late CPU was counted in the parent";
  for (int fd : {go[0], go[1], ready[0], ready[1]}) close(fd);
}
