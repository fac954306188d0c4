// Handing a task to its job's monitor before the task execs, so the eBPF events follow it from its first
// instruction. Shared by the SPANK plugin (the client, in slurm_spank_task_init_privileged) and bc-monitor
// (the server).
//
// Protocol, over a unix stream socket at monitor_handoff_path() (mode 0600: the monitor's user, root):
//   task -> monitor: the task's Slurm step id (4 bytes, host order). The task's pid is not sent: the monitor
//                    takes it from the connection's SO_PEERCRED, so nobody can hand over a process not its own.
//   monitor -> task: one byte once the task is tracked (kTracked), or when the monitor has no events
//                    (kNoEvents), so the task never waits for nothing. While the monitor's events are still
//                    loading it holds the connection and answers when the load has ended.
// The task waits a bounded time, then goes on whatever happens. A monitor whose answer finds the task gone
// (it gave up) counts that task as late: what it did before the monitor tracked it is missing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/fd.hpp"

namespace bc::monitor {

inline std::string monitor_handoff_path(const std::string& run_dir, uint64_t job_id) {
  return run_dir + "/job_" + std::to_string(job_id) + ".sock";
}

inline constexpr char kHandoffTracked = 'T';
inline constexpr char kHandoffNoEvents = 'U';
inline constexpr char kHandoffNotYet = 0;  // from the monitor's take(): hold the task, ask again later

// ---- the task's side (async-signal-safe is not needed: slurmstepd's task child is single-threaded) ----

struct HandoffResult {
  enum class Outcome { Tracked, NoEvents, TimedOut, Failed } outcome = Outcome::Failed;
  double waited_ms = 0;
  std::string message;  // why, for TimedOut and Failed
};

// Connects (retrying while the socket is not there yet, as the monitor may still be starting), sends step and
// waits for the answer, all within timeout_ms. When lock_path is given and no process has held that lock (the
// monitor's, held for its whole life) for kNoMonitorGiveUpMs, gives up early: no monitor is coming (it could
// not start), and the task should not wait for it. Failures are in the result; only allocation can throw,
// and the plugin catches that (not noexcept: std::terminate would kill the task).
inline constexpr int kNoMonitorGiveUpMs = 500;
HandoffResult hand_off_self(const std::string& socket_path, uint32_t step, int timeout_ms,
                            const std::string& lock_path = {});

// ---- the monitor's side ----

class HandoffServer {
 public:
  // Binds and listens (replacing a socket a dead monitor left: the caller holds the job's lock). On failure
  // fd() is -1 and error() says why; tasks then time out and go on.
  explicit HandoffServer(const std::string& socket_path);
  ~HandoffServer();
  HandoffServer(const HandoffServer&) = delete;
  HandoffServer& operator=(const HandoffServer&) = delete;

  int fd() const { return listen_fd_.get(); }
  const std::string& error() const { return error_; }

  // For each waiting task, those held earlier first: take(pid, step) tracks it and returns the answer byte,
  // which is sent, or kHandoffNotYet to hold the task (at most kMaxHeld; past that a task gets kNoEvents).
  // Returns how many tasks had given up before their answer (late).
  uint64_t serve(const std::function<char(uint32_t pid, uint32_t step)>& take);
  size_t held() const { return held_.size(); }

  static constexpr size_t kMaxHeld = 4096;

 private:
  struct Held {
    UniqueFd conn;
    uint32_t pid, step;
  };
  std::string path_;
  UniqueFd listen_fd_;
  std::string error_;
  std::vector<Held> held_;
};

}  // namespace bc::monitor
