// Benchmark driver for the eBPF collector (bench/suites/ebpf.sh). Runs a command as a monitored job would:
//   driver [--ring-bytes N] [--interval S] [--io] -- CMD...   collector tracks CMD (and its children)
//   driver --bare -- CMD...                                   same timing, no collector
//   driver --idle --ready FILE                                another job: tracks a sleeping child until SIGTERM
//   --nice N: the driver (not CMD) runs at niceness N after forking CMD, as bc-monitor runs at nice 10
// Prints "DRIVER wall_us=<child wall time> lost=<events lost> ring=.. files=.. conns=.. tracked=.. read=..
// execs=.. exits=.. forks=.. opens=.. file_rows=.. conns_count=.." on stderr, and exits with CMD's status.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cgroup_monitor/bpf/events.hpp"

namespace {
volatile sig_atomic_t g_stop = 0;
void on_term(int) { g_stop = 1; }

struct Totals {
  bc::events::LossCounts lost;
  uint64_t lost_events = 0, execs = 0, exits = 0, forks = 0, opens = 0, file_rows = 0, conns = 0;
  int64_t drain_max_us = 0, drain_total_us = 0, drains = 0;
  void add(const bc::events::Drained& d) {
    lost.ring += d.lost.ring;
    lost.files += d.lost.files;
    lost.conns += d.lost.conns;
    lost.tracked += d.lost.tracked;
    lost.read_failed += d.lost.read_failed;
    lost.user += d.lost.user;
    lost_events += d.lost_events;
    execs += d.execs.size();
    exits += d.exits.size();
    forks += d.forks.size();
    file_rows += d.files.size();
    for (const auto& f : d.files) opens += f.opens + f.failed;
    for (const auto& c : d.conns) conns += c.count;
  }
};
}  // namespace

int main(int argc, char** argv) {
  bc::events::Options opt;
  opt.pin_dir = "/sys/fs/bpf/bc-bench";
  opt.run_dir = "/run/bubble-chamber-bench";
  double interval = 1.0;
  bool bare = false, idle = false;
  int niceness = 0;
  std::string ready;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    } else if (a == "--ring-bytes" && i + 1 < argc) {
      opt.ring_bytes = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--interval" && i + 1 < argc) {
      interval = std::strtod(argv[++i], nullptr);
    } else if (a == "--nice" && i + 1 < argc) {
      niceness = std::atoi(argv[++i]);
    } else if (a == "--io") {
      opt.file_io_bytes = true;
    } else if (a == "--bare") {
      bare = true;
    } else if (a == "--idle") {
      idle = true;
    } else if (a == "--ready" && i + 1 < argc) {
      ready = argv[++i];
    } else {
      std::fprintf(stderr, "driver: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (!idle && i >= argc) {
    std::fprintf(stderr, "driver: no command\n");
    return 2;
  }
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);

  std::unique_ptr<bc::events::EventCollector> collector;
  if (!bare) {
    std::string reason;
    collector = bc::events::EventCollector::open(opt, reason);
    if (!collector) {
      std::fprintf(stderr, "driver: %s\n", reason.c_str());
      return 3;
    }
  }

  int go[2];
  if (pipe(go) != 0) return 4;
  pid_t child = fork();
  if (child == 0) {
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    close(go[1]);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(120);
    close(go[0]);
    if (idle) {
      while (true) pause();
    }
    execvp(argv[i], argv + i);
    _exit(127);
  }
  close(go[0]);
  if (niceness != 0) setpriority(PRIO_PROCESS, 0, niceness);
  if (collector && !collector->track(static_cast<uint32_t>(child))) {
    std::fprintf(stderr, "driver: cannot track %d\n", child);
    return 5;
  }
  if (!ready.empty()) {
    FILE* f = std::fopen(ready.c_str(), "w");
    if (f) std::fclose(f);
  }
  auto t0 = std::chrono::steady_clock::now();
  if (write(go[1], "g", 1) != 1) return 6;
  close(go[1]);

  Totals totals;
  auto next_drain = t0 + std::chrono::duration<double>(interval);
  int status = 0;
  int64_t wall_us = 0;
  // The child's exit is a poll event (pidfd), so the driver sleeps between drains and ring wakeups as
  // bc-monitor does; polling waitpid every few ms woke the other CPU hundreds of times a second and showed up
  // as cost in the workload it was timing.
  const int child_fd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
  if (child_fd < 0) {
    std::fprintf(stderr, "driver: pidfd_open: %s\n", std::strerror(errno));
    return 7;
  }
  while (true) {
    if (g_stop && idle) kill(child, SIGKILL);
    pid_t r = waitpid(child, &status, WNOHANG);
    if (r == child) {
      wall_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
      break;
    }
    auto now = std::chrono::steady_clock::now();
    if (collector && now >= next_drain) {
      auto d0 = std::chrono::steady_clock::now();
      totals.add(collector->drain());
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - d0).count();
      totals.drain_max_us = std::max(totals.drain_max_us, static_cast<int64_t>(us));
      totals.drain_total_us += us;
      ++totals.drains;
      next_drain += std::chrono::duration<double>(interval);
      continue;
    }
    int wait_ms = -1;
    if (collector) {
      wait_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(next_drain - now).count());
      wait_ms = std::max(1, wait_ms);
    }
    pollfd p[2] = {{child_fd, POLLIN, 0}, {collector ? collector->poll_fd() : -1, POLLIN, 0}};
    if (poll(p, 2, wait_ms) > 0 && (p[1].revents & POLLIN)) collector->pump();
  }
  close(child_fd);
  if (collector) {
    totals.add(collector->drain());
    usleep(20000);
    totals.add(collector->drain());
  }
  std::fprintf(stderr,
               "DRIVER wall_us=%lld lost=%llu ring=%llu files=%llu conns=%llu tracked=%llu read=%llu user=%llu "
               "execs=%llu exits=%llu forks=%llu opens=%llu file_rows=%llu connects=%llu drains=%lld drain_max_us=%lld "
               "drain_mean_us=%lld\n",
               static_cast<long long>(wall_us), static_cast<unsigned long long>(totals.lost_events),
               static_cast<unsigned long long>(totals.lost.ring), static_cast<unsigned long long>(totals.lost.files),
               static_cast<unsigned long long>(totals.lost.conns), static_cast<unsigned long long>(totals.lost.tracked),
               static_cast<unsigned long long>(totals.lost.read_failed),
               static_cast<unsigned long long>(totals.lost.user), static_cast<unsigned long long>(totals.execs),
               static_cast<unsigned long long>(totals.exits), static_cast<unsigned long long>(totals.forks),
               static_cast<unsigned long long>(totals.opens), static_cast<unsigned long long>(totals.file_rows),
               static_cast<unsigned long long>(totals.conns), static_cast<long long>(totals.drains),
               static_cast<long long>(totals.drain_max_us),
               static_cast<long long>(totals.drains ? totals.drain_total_us / totals.drains : 0));
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return idle ? 0 : 128 + WTERMSIG(status);
}
