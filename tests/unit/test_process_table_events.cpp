// ProcessTable's side of the eBPF events, against a real child: an exit applied to a tracked process gives
// its record the exit status, exact end and final CPU (also in this tick's batch), and a process left to its
// event record is never tracked by sampling again.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>

#include "burn_cpu.hpp"
#include "cgroup_monitor/handoff.hpp"
#include "cgroup_monitor/job_events.hpp"
#include "cgroup_monitor/proc_parse.hpp"
#include "cgroup_monitor/process_table.hpp"

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

// In a child: its /proc/self/io, written to fd (its final figures, sent just before it exits).
void send_own_io(int fd) {
  FILE* io = std::fopen("/proc/self/io", "r");
  char text[512] = {};
  const size_t n = io ? std::fread(text, 1, sizeof text - 1, io) : 0;
  (void)!write(fd, text, n);
}

// What a child sent with send_own_io, read to the end (its exit).
auto read_sent_io(int fd) {
  std::string text;
  char buf[512];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  return parse_proc_io(text);
}

// Waits for the child's word on ready_fd, then samples this process and the child once: the child's start
// ticks, if the table has it.
std::optional<uint64_t> first_sample(ProcessTable& table, pid_t child, int ready_fd, store::Batch& batch) {
  char c;
  if (read(ready_fd, &c, 1) != 1) return std::nullopt;
  const auto pid = static_cast<uint32_t>(child);
  table.sample({{static_cast<uint32_t>(getpid()), 0u}, {pid, 0u}}, now_ms(), batch);
  table.commit(batch);
  auto id = table.identity(pid);
  return id ? std::optional<uint64_t>(id->start_ticks) : std::nullopt;
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
  const pid_t child = fork();
  if (child == 0) {
    burn_cpu(100'000'000);
    (void)!write(ready[1], "x", 1);
    char c;
    (void)!read(go[0], &c, 1);
    burn_cpu(400'000'000);
    _exit(0);
  }
  const auto self = static_cast<uint32_t>(getpid());
  const auto pid = static_cast<uint32_t>(child);
  ProcessTable table;
  store::Batch b1;
  const auto start_ticks = first_sample(table, child, ready[0], b1);
  ASSERT_TRUE(start_ticks);
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
  ASSERT_TRUE(table.apply_exit(pid, *start_ticks, facts, b2));
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

// The same for storage bytes: the kernel folds a reaped child's bytes into the parent's /proc/PID/io, so the
// exit's final bytes (here, what the child read from its own /proc/self/io just before it exited) belong to
// the child's record, and the part written after its last sample must not be left in the parent.
TEST(ProcessTableEvents, LateBytesAtExitBelongToTheChild) {
  char dir_template[] = "/var/tmp/bc-ptio-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir_template));
  const std::string file = std::string(dir_template) + "/data";
  int go[2], ready[2], final_io[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(final_io), 0);
  const pid_t child = fork();
  if (child == 0) {
    static char block[1 << 20];
    FILE* f = std::fopen(file.c_str(), "w");
    if (!f) _exit(1);
    auto write_mib = [&](int n) {
      for (int i = 0; i < n; ++i) std::fwrite(block, 1, sizeof block, f);
      std::fflush(f);
    };
    write_mib(1);
    (void)!write(ready[1], "x", 1);
    char c;
    (void)!read(go[0], &c, 1);
    write_mib(3);
    std::fclose(f);
    send_own_io(final_io[1]);
    _exit(0);
  }
  close(final_io[1]);
  const auto self = static_cast<uint32_t>(getpid());
  const auto pid = static_cast<uint32_t>(child);
  ProcessTable table;
  store::Batch b1;
  const auto start_ticks = first_sample(table, child, ready[0], b1);
  ASSERT_TRUE(start_ticks);
  const auto* sampled = find(b1, pid);
  ASSERT_TRUE(sampled);
  if (sampled->record.write_bytes == 0) {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    GTEST_SKIP() << "this filesystem does not count written bytes in /proc/PID/io (tmpfs?)";
  }
  ASSERT_EQ(write(go[1], "x", 1), 1);
  auto final_bytes = read_sent_io(final_io[0]);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);  // reaped: our /proc/self/io now holds its 4 MiB
  ASSERT_TRUE(final_bytes);
  ASSERT_GE(final_bytes->write_bytes, 4u << 20);
  store::Batch b2;
  table.sample({{self, 0u}}, now_ms(), b2);  // sees the child gone, credits its last sampled 1 MiB
  ProcessTable::ExitFacts facts;
  facts.end_ms = now_ms();
  facts.read_bytes = final_bytes->read_bytes;
  facts.write_bytes = final_bytes->write_bytes;
  ASSERT_TRUE(table.apply_exit(pid, *start_ticks, facts, b2));
  const auto* exited = find(b2, pid);
  ASSERT_TRUE(exited);
  EXPECT_EQ(exited->record.write_bytes, final_bytes->write_bytes);
  table.commit(b2);
  store::Batch b3;
  table.sample({{self, 0u}}, now_ms(), b3);
  const auto* parent = find(b3, self) ? find(b3, self) : find(b2, self);
  ASSERT_TRUE(parent);
  EXPECT_LT(parent->record.write_bytes, 1u << 20) << "the child's late bytes were counted in the parent";
  unlink(file.c_str());
  rmdir(dir_template);
  for (int fd : {go[0], go[1], ready[0], ready[1], final_io[0]}) close(fd);
}

// A parent sampled after reaping a child the table never saw counts that child's bytes as its own unseen
// part, until the child's credit arrives with its exit event, which can come after the parent is gone. The
// late credit must take the bytes back out of the parent's record, which is written again before the
// parent is forgotten; a record written and forgotten first would keep them (and the child's own record
// would count them again). The credit comes either a tick later, the gone parent being held meanwhile
// (keep_until_credited), or in the very tick the parent was seen gone, after that tick's sample put the
// parent's record in the batch.
void gone_parent_gets_late_credit(bool same_tick) {
  char dir_template[] = "/var/tmp/bc-pthold-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir_template));
  const std::string file = std::string(dir_template) + "/data";
  int go[2], ready[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(ready), 0);
  const pid_t parent = fork();
  if (parent == 0) {
    const pid_t writer = fork();
    if (writer == 0) {
      static char block[1 << 20];
      FILE* f = std::fopen(file.c_str(), "w");
      if (!f) _exit(1);
      for (int i = 0; i < 2; ++i) std::fwrite(block, 1, sizeof block, f);
      std::fclose(f);
      _exit(0);
    }
    waitpid(writer, nullptr, 0);  // reaped: its bytes are folded into this process's /proc/PID/io
    (void)!write(ready[1], "x", 1);
    char c;
    (void)!read(go[0], &c, 1);
    _exit(0);
  }
  const auto pid = static_cast<uint32_t>(parent);
  ProcessTable table;
  store::Batch b1;
  const auto start_ticks = first_sample(table, parent, ready[0], b1);
  ASSERT_TRUE(start_ticks);
  const auto* sampled = find(b1, pid);
  ASSERT_TRUE(sampled);
  const uint64_t unseen = sampled->record.write_bytes;  // the writer's, counted as the parent's for now
  ASSERT_EQ(write(go[1], "x", 1), 1);
  ASSERT_EQ(waitpid(parent, nullptr, 0), parent);
  std::remove(file.c_str());
  rmdir(dir_template);
  if (unseen < (1u << 20)) GTEST_SKIP() << "this filesystem does not count written bytes in /proc/PID/io (tmpfs?)";

  const auto self = static_cast<uint32_t>(getpid());
  store::Batch b2;
  table.sample({{self, 0u}}, now_ms(), b2);  // the parent is gone
  ASSERT_TRUE(find(b2, pid));
  EXPECT_TRUE(table.gone(pid));
  if (same_tick) {
    table.credit_child(pid, 0, 0, unseen);  // the child's exit event, drained after this tick's sample
    table.commit(b2);
    ASSERT_TRUE(table.identity(pid)) << "a parent whose record changed after the batch was forgotten";
  } else {
    table.keep_until_credited({pid});  // its child has sent no exit event yet
    table.commit(b2);
    ASSERT_TRUE(table.identity(pid)) << "a held parent was forgotten at commit";
    table.credit_child(pid, 0, 0, unseen);  // the child's exit event, a tick late
  }
  store::Batch b3;
  table.sample({{self, 0u}}, now_ms(), b3);
  const auto* rewritten = find(b3, pid);
  ASSERT_TRUE(rewritten) << "the credit did not bring the parent's record up again";
  EXPECT_LT(rewritten->record.write_bytes, unseen);
  EXPECT_LT(rewritten->record.write_bytes, 64u << 10) << "the parent itself wrote next to nothing";
  table.keep_until_credited({});
  table.commit(b3);
  EXPECT_FALSE(table.identity(pid)) << "no longer held: forgotten once written";
}

TEST(ProcessTableEvents, AGoneParentIsKeptUntilItsChildsCreditComes) { gone_parent_gets_late_credit(false); }

TEST(ProcessTableEvents, ACreditInTheTickAParentIsSeenGoneIsWritten) { gone_parent_gets_late_credit(true); }

// A parent and the child it reaped both sampled, then both ending within one tick, the child after the
// tick's sample: the child's exit (applied first) credits it to the parent with its final bytes, so the
// parent's exit, whose figure the kernel gave the child's bytes, keeps only its own.
TEST(ProcessTableEvents, AChildReapedSinceTheSampleIsCreditedBeforeItsParentsExit) {
  char dir_template[] = "/var/tmp/bc-ptreap-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir_template));
  const std::string file = std::string(dir_template) + "/data";
  int go[2], ready[2], child_io[2], parent_io[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(child_io), 0);
  ASSERT_EQ(pipe(parent_io), 0);
  const pid_t parent = fork();
  if (parent == 0) {
    const pid_t writer = fork();
    if (writer == 0) {
      char c;
      (void)!read(go[0], &c, 1);
      static char block[1 << 20];
      FILE* f = std::fopen(file.c_str(), "w");
      if (!f) _exit(1);
      for (int i = 0; i < 2; ++i) std::fwrite(block, 1, sizeof block, f);
      std::fclose(f);
      send_own_io(child_io[1]);
      _exit(0);
    }
    (void)!write(ready[1], &writer, sizeof writer);
    waitpid(writer, nullptr, 0);
    send_own_io(parent_io[1]);
    _exit(0);  // a zombie until the test reaps it
  }
  close(child_io[1]);
  close(parent_io[1]);
  pid_t writer = 0;
  ASSERT_EQ(read(ready[0], &writer, sizeof writer), static_cast<ssize_t>(sizeof writer));
  ProcessTable table;
  store::Batch b1;
  const auto self = static_cast<uint32_t>(getpid());
  const auto ppid = static_cast<uint32_t>(parent), cpid = static_cast<uint32_t>(writer);
  table.sample({{self, 0u}, {ppid, 0u}, {cpid, 0u}}, now_ms(), b1);
  table.commit(b1);
  const auto parent_id = table.identity(ppid), child_id = table.identity(cpid);
  ASSERT_TRUE(parent_id && child_id);
  ASSERT_EQ(write(go[1], "x", 1), 1);
  const auto child_final = read_sent_io(child_io[0]);
  const auto parent_final = read_sent_io(parent_io[0]);  // after it reaped the child
  std::remove(file.c_str());
  rmdir(dir_template);
  ASSERT_TRUE(child_final && parent_final);
  if (child_final->write_bytes < (1u << 20)) {
    waitpid(parent, nullptr, 0);
    GTEST_SKIP() << "this filesystem does not count written bytes in /proc/PID/io (tmpfs?)";
  }
  ASSERT_GE(parent_final->write_bytes, child_final->write_bytes);  // the kernel folded the child in

  store::Batch b2;  // the same tick's exits, children first, with no sample in between
  ProcessTable::ExitFacts facts;
  facts.end_ms = now_ms();
  facts.write_bytes = child_final->write_bytes;
  facts.read_bytes = child_final->read_bytes;
  ASSERT_TRUE(table.apply_exit(cpid, child_id->start_ticks, facts, b2));
  facts.write_bytes = parent_final->write_bytes;
  facts.read_bytes = parent_final->read_bytes;
  ASSERT_TRUE(table.apply_exit(ppid, parent_id->start_ticks, facts, b2));
  ASSERT_EQ(waitpid(parent, nullptr, 0), parent);
  const auto* child_rec = find(b2, cpid);
  const auto* parent_rec = find(b2, ppid);
  ASSERT_TRUE(child_rec && parent_rec);
  EXPECT_EQ(child_rec->record.write_bytes, child_final->write_bytes);
  EXPECT_LT(parent_rec->record.write_bytes, 64u << 10) << "the parent kept its child's bytes";
}

// Tasks that stopped waiting for the monitor reach the job record whether or not events run.
TEST(JobEventsLoss, LateTasksReachTheRecordWithoutEvents) {
  EventSettings settings;
  settings.enabled = false;
  JobEvents events(settings, [](const std::string&) {});
  ASSERT_EQ(events.state(), JobEvents::State::Unavailable);
  EXPECT_EQ(events.loading_fd(), -1);
  EXPECT_EQ(events.hand_off(static_cast<uint32_t>(::getpid()), 0), kHandoffNoEvents);
  events.count_late(3);
  ProcessTable table;
  store::Batch batch;
  store::JobRecord job;
  events.merge(table, 0, batch, job);
  EXPECT_EQ(job.lost.late, 3u);
  EXPECT_EQ(job.lost_events, 3u);
  EXPECT_EQ(job.events_unavailable, "events unavailable: disabled by configuration (bpf=off)");
  events.merge(table, 0, batch, job);
  EXPECT_EQ(job.lost.late, 3u) << "counted once";
}
