// Starting a bc-monitor process: the contract shared by its two launchers, the SPANK plugin (spank/) and
// bc-docker (docker_monitor/): the lock and pid files, the command line (built here, parsed by
// monitor_args.hpp, round-trip tested), and the exec.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bc::monitor {

// The launch contract: a monitor holds an exclusive flock on monitor_lock_path for its whole life and writes
// its pid to monitor_pid_path, so a later step (or bc-docker) finds it instead of starting a second one.
inline std::string monitor_lock_path(const std::string& run_dir, uint64_t job_id) {
  return run_dir + "/job_" + std::to_string(job_id) + ".lock";
}
inline std::string monitor_pid_path(const std::string& run_dir, uint64_t job_id) {
  return run_dir + "/job_" + std::to_string(job_id) + ".pid";
}

// A monitor is running for the job: it holds the job's lock (a probe that never blocks).
bool monitor_running(const std::string& run_dir, uint64_t job_id);

// The job's node list (a Slurm hostlist), for a monitor already running that was started without it: the
// extern step, which starts the monitor where PrologFlags=Contain, has no SLURM_JOB_NODELIST; a later step
// writes it here (whole, by rename), and the monitor takes it at its next tick and removes it when it ends.
inline constexpr size_t kMaxJobNodesText = 4096;  // longer lists are not recorded
inline std::string job_nodes_path(const std::string& run_dir, uint64_t job_id) {
  return run_dir + "/job_" + std::to_string(job_id) + ".nodes";
}
bool write_job_nodes(const std::string& run_dir, uint64_t job_id, const std::string& nodes) noexcept;

// An interval as bc-monitor's --interval takes it ("1", "0.5").
std::string format_interval(double seconds);

// What a launcher tells bc-monitor. Empty strings and zeros are left off the command line, so the monitor's
// defaults apply (and a launcher upgraded before bc-monitor does not pass what the monitor cannot take).
struct MonitorCommand {
  std::string monitor;  // the bc-monitor binary
  uint64_t job_id = 0;  // a Slurm job id, or a container's key (common/container_key.hpp)
  uint32_t uid = 0;
  std::string node, store, run_dir;
  double interval_s = 1.0;
  int cgroup_version = 1;
  std::string cgroup_path;  // relative to the hierarchy's mount: "/slurm/uid_1000/job_42"
  bool bpf = true;
  unsigned bpf_ring_kib = 0;     // 0: the monitor's default
  bool pass_file_bytes = false;  // give --file-bytes (the plugin does; bc-docker leaves the default)
  bool file_bytes = false;
  std::string bpf_object;
  std::string job_name;
  std::string job_nodes;  // the job's node list, a Slurm hostlist
  std::string nvml;       // --nvml: empty for the monitor's default
  std::string gpus;       // --gpus: SLURM_JOB_GPUS, empty when none
  uint32_t array_job_id = 0, array_task_id = 0;
  std::string central;  // ship to this bcd; the four below only with it
  std::string api_key_file;
  std::string ca_file;
  uint64_t outbox_max_mib = 0;  // 0: the monitor's default
  uint64_t ship_every_s = 0;
  std::string munge_socket;
  std::string container_id, container_name, container_image;
};

// argv for exec: the binary, then the options.
std::vector<std::string> monitor_argv(const MonitorCommand& command);

// In the child of fork, which may be a copy of a multithreaded process: async-signal-safe calls only.
// Leaves the caller's session and signal state, points stdin at /dev/null and stdout/stderr at log_fd
// (/dev/null when negative), writes "0" into each of procs_files (moving itself into those cgroups), closes
// every other descriptor and execs path. A failure is written to stderr after log_prefix ("bc-docker: ")
// and ends the child: 126 when a cgroup move failed (the monitor is not started), 127 when exec failed.
[[noreturn]] void exec_monitor(const char* log_prefix, const char* const* procs_files, size_t procs_count, int log_fd,
                               const char* path, char* const* argv, char* const* envp);

}  // namespace bc::monitor
