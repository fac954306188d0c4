// Starting a bc-monitor process: the part shared by its two launchers, the SPANK plugin (spank/) and
// bc-docker (docker_monitor/). Each builds its own argument list; both exec it the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace bc::monitor {

// The launch contract: a monitor holds an exclusive flock on monitor_lock_path for its whole life and writes
// its pid to monitor_pid_path, so a later step (or bc-docker) finds it instead of starting a second one.
inline std::string monitor_lock_path(const std::string& run_dir, uint64_t job_id) {
  return run_dir + "/job_" + std::to_string(job_id) + ".lock";
}
inline std::string monitor_pid_path(const std::string& run_dir, uint64_t job_id) {
  return run_dir + "/job_" + std::to_string(job_id) + ".pid";
}

// An interval as bc-monitor's --interval takes it ("1", "0.5").
std::string format_interval(double seconds);

// In the child of fork, which may be a copy of a multithreaded process: async-signal-safe calls only.
// Leaves the caller's session and signal state, points stdin at /dev/null and stdout/stderr at log_fd
// (/dev/null when negative), writes "0" into each of procs_files (moving itself into those cgroups), closes
// every other descriptor and execs path. A failure is written to stderr after log_prefix ("bc-docker: ")
// and ends the child: 126 when a cgroup move failed (the monitor is not started), 127 when exec failed.
[[noreturn]] void exec_monitor(const char* log_prefix, const char* const* procs_files, size_t procs_count,
                               int log_fd, const char* path, char* const* argv, char* const* envp);

}  // namespace bc::monitor
