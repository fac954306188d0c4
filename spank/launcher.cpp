#include "spank/launcher.hpp"

#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <vector>

#include "cgroup_monitor/cgroup_paths.hpp"
#include "cgroup_monitor/launch.hpp"
#include "cgroup_monitor/task_finals.hpp"
#include "common/fd.hpp"

namespace bc::spank {
namespace {

const char kMonitorCgroup[] = "bubble-chamber";

bool write_file(const std::string& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  return fd && ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

// The cgroup.procs files the monitor must write itself into, one per hierarchy that holds the job, so it
// outlives the step and is not charged to the job. Created here, before fork, because the child may only
// make async-signal-safe calls.
bool prepare_escape(const bc::monitor::JobCgroup& job, std::vector<std::string>& procs_files, std::string& error) {
  for (const auto& h : job.hierarchies) {
    auto mount = bc::monitor::cgroup_mount_point(h.controllers);
    if (!mount) {
      error = "no mount point for cgroup hierarchy '" + h.controllers + "'";
      return false;
    }
    std::string dir = *mount + "/" + kMonitorCgroup;
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      error = "cannot create " + dir + ": " + std::strerror(errno);
      return false;
    }
    if (h.controllers.find("cpuset") != std::string::npos) {
      // A v1 cpuset cgroup takes no task until its cpus and mems are set; give it the whole machine.
      for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
        auto current = bc::read_file(dir + "/" + file);
        if (current && current->find_first_not_of(" \n") != std::string::npos) continue;
        auto parent = bc::read_file(*mount + "/" + file);
        if (!parent || !write_file(dir + "/" + file, *parent)) {
          error = "cannot set " + dir + "/" + file;
          return false;
        }
      }
    }
    procs_files.push_back(dir + "/cgroup.procs");
  }
  return true;
}

}  // namespace

std::optional<bc::monitor::JobCgroup> own_job_cgroup(uint32_t step, std::string& error) noexcept try {
  const auto proc_cgroup = bc::read_file("/proc/self/cgroup");
  if (!proc_cgroup) {
    error = "cannot read /proc/self/cgroup";
    return std::nullopt;
  }
  auto job = bc::monitor::job_cgroup_from_stepd_cgroup(*proc_cgroup, step);
  if (!job) {
    // Where slurmstepd is instead, for the admin who reads the log.
    std::string where;
    for (const auto& line : bc::monitor::parse_proc_cgroup(*proc_cgroup))
      if (line.path != "/") where += (where.empty() ? "" : ", ") + line.controllers + ":" + line.path;
    error = "slurmstepd is in no cgroup of its step (" + bc::monitor::step_cgroup_name(step) + ") or job; it is in " +
            (where.empty() ? "root cgroups only" : where) +
            "; configure ProctrackType=proctrack/cgroup or TaskPlugin=task/cgroup";
  }
  return job;
} catch (const std::exception& e) {
  error = std::string("internal error: ") + e.what();
  return std::nullopt;
}

LaunchResult ensure_monitor(const Config& config, const JobToMonitor& job) noexcept try {
  LaunchResult result;
  const uint64_t job_id = job.job_id;
  if (!bc::make_directories(config.run_dir, 0755)) {
    result.message = "cannot create run dir " + config.run_dir + ": " + std::strerror(errno);
    return result;
  }
  if (bc::monitor::monitor_running(config.run_dir, job_id)) {
    result.outcome = LaunchResult::Outcome::AlreadyRunning;
    // The step that started it may not have known the job's nodes (the extern step).
    if (!job.nodes.empty() && !bc::monitor::write_job_nodes(config.run_dir, job_id, job.nodes))
      result.message = std::string("the job's node list was not passed on: ") + std::strerror(errno);
    return result;
  }
  // Before the monitor is up: a task may end (and pass on its final figures) before it is.
  bc::monitor::make_finals_file(bc::monitor::task_finals_path(config.run_dir, job_id));
  if (::access(config.monitor.c_str(), X_OK) != 0) {
    result.message = "monitor binary " + config.monitor + " is not executable: " + std::strerror(errno);
    return result;
  }
  std::vector<std::string> procs_files;
  if (!prepare_escape(job.cgroup, procs_files, result.message)) return result;

  std::string log_dir = config.log.substr(0, config.log.rfind('/'));
  if (!log_dir.empty()) bc::make_directories(log_dir, 0755);
  UniqueFd log_fd(::open(config.log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));

  // The node as Slurm knows it, which differs from the hostname on multi-slurmd hosts: slurmstepd sets
  // SLURMD_NODENAME in its own environment from the configuration slurmd sends it.
  const char* node_env = std::getenv("SLURMD_NODENAME");
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const std::string node = node_env && *node_env ? node_env : std::string(host).substr(0, std::string(host).find('.'));

  bc::monitor::MonitorCommand command;
  command.monitor = config.monitor;
  command.job_id = job_id;
  command.uid = job.uid;
  command.node = node;
  command.store = config.store;
  command.run_dir = config.run_dir;
  command.interval_s = config.interval_s;
  command.cgroup_version = job.cgroup.version;
  command.cgroup_path = job.cgroup.relative_path;
  command.bpf = config.bpf;
  command.bpf_ring_kib = config.bpf_ring_kib;
  command.pass_file_bytes = true;
  command.file_bytes = config.file_bytes;
  command.bpf_object = config.bpf_object;
  command.job_name = job.name;
  command.job_nodes = job.nodes;
  command.nvml = config.nvml;
  command.gpus = job.gpus;
  command.array_job_id = job.array.array_job_id;
  command.array_task_id = job.array.task_id;
  if (!config.central.empty()) {
    command.central = config.central;
    command.outbox_max_mib = config.outbox_max_mib;
    command.ship_every_s = config.ship_every_s;
    command.ca_file = config.ca_file;
  }
  command.munge_socket = config.munge_socket;
  std::vector<std::string> args = bc::monitor::monitor_argv(command);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string path_env = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  std::vector<char*> envp = {path_env.data(), nullptr};
  std::vector<const char*> procs;
  for (auto& f : procs_files) procs.push_back(f.c_str());

  pid_t child = ::fork();
  if (child < 0) {
    result.message = std::string("fork failed: ") + std::strerror(errno);
    return result;
  }
  if (child == 0) {
    // Double fork: the monitor is reparented to init and slurmstepd never has to reap it.
    pid_t grandchild = ::fork();
    if (grandchild == 0)
      bc::monitor::exec_monitor("bubble-chamber: ", procs.data(), procs.size(), log_fd.get(), argv[0], argv.data(),
                                envp.data());
    _exit(grandchild < 0 ? 1 : 0);
  }
  // The intermediate child exits at once; bound the wait anyway so a job is never held up.
  int status = 0;
  timespec step{0, 1000000};
  for (int waited_ms = 0; waited_ms < 1000; ++waited_ms) {
    pid_t r = ::waitpid(child, &status, WNOHANG);
    if (r == child || (r < 0 && errno != EINTR)) break;
    ::nanosleep(&step, nullptr);
  }
  result.outcome = LaunchResult::Outcome::Started;
  return result;
} catch (const std::exception& e) {
  return {LaunchResult::Outcome::Failed, std::string("internal error: ") + e.what()};
} catch (...) {
  return {LaunchResult::Outcome::Failed, "internal error"};
}

void poke_monitor(const Config& config, uint64_t job_id) noexcept try {
  if (!bc::monitor::monitor_running(config.run_dir, job_id)) return;
  auto text = bc::read_file(bc::monitor::monitor_pid_path(config.run_dir, job_id));
  if (!text) return;
  long pid = std::strtol(text->c_str(), nullptr, 10);
  if (pid <= 1) return;
  auto comm = bc::read_file("/proc/" + std::to_string(pid) + "/comm");
  if (!comm || comm->rfind("bc-monitor", 0) != 0) return;
  ::kill(static_cast<pid_t>(pid), SIGUSR1);
} catch (...) {
}

}  // namespace bc::spank
