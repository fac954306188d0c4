#include "docker_monitor/docker_launcher.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cgroup_monitor/launch.hpp"
#include "common/fd.hpp"

namespace bc::docker {

std::vector<std::string> monitor_argv(const Config& config, const std::string& node, const MonitorRequest& request) {
  bc::monitor::MonitorCommand command;
  command.monitor = config.monitor;
  command.job_id = request.key;
  command.uid = request.uid;
  command.node = node;
  command.store = config.store;
  command.run_dir = config.run_dir;
  command.interval_s = config.interval_s;
  command.cgroup_version = request.cgroup_version;
  command.cgroup_path = request.cgroup_path;
  command.bpf = config.bpf;
  if (!config.central.empty()) {
    command.central = config.central;
    command.api_key_file = config.api_key_file;
    command.outbox_max_mib = config.outbox_max_mib;
    command.ship_every_s = config.ship_every_s;
    command.ca_file = config.ca_file;
  }
  command.container_id = request.container_id;
  command.container_name = request.container_name;
  command.container_image = request.container_image;
  return bc::monitor::monitor_argv(command);
}

ProcessLauncher::ProcessLauncher(Config config, std::string node)
    : config_(std::move(config)), node_(std::move(node)) {}

MonitorLauncher::Result ProcessLauncher::ensure(const MonitorRequest& request) {
  Result result;
  for (const auto& [pid, running] : children_) {
    if (running.key == request.key) {  // started, maybe not holding its lock yet
      result.outcome = Outcome::AlreadyRunning;
      result.pid = pid;
      return result;
    }
  }
  if (!bc::make_directories(config_.run_dir, 0755)) {
    result.message = "cannot create run dir " + config_.run_dir + ": " + std::strerror(errno);
    return result;
  }
  if (bc::monitor::monitor_running(config_.run_dir, request.key)) {
    result.outcome = Outcome::AlreadyRunning;
    return result;
  }
  if (::access(config_.monitor.c_str(), X_OK) != 0) {
    result.message = "monitor binary " + config_.monitor + " is not executable: " + std::strerror(errno);
    return result;
  }
  const size_t slash = config_.log.rfind('/');
  if (slash != std::string::npos && slash > 0) bc::make_directories(config_.log.substr(0, slash), 0755);
  UniqueFd log_fd(::open(config_.log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));

  std::vector<std::string> args = monitor_argv(config_, node_, request);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string path_env = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  std::vector<char*> envp = {path_env.data(), nullptr};

  const pid_t child = ::fork();
  if (child < 0) {
    result.message = std::string("fork failed: ") + std::strerror(errno);
    return result;
  }
  if (child == 0) bc::monitor::exec_monitor("bc-docker: ", nullptr, 0, log_fd.get(), argv[0], argv.data(), envp.data());
  children_[child] = request;
  result.outcome = Outcome::Started;
  result.pid = child;
  return result;
}

std::vector<std::string> ProcessLauncher::reap() {
  std::vector<std::string> failures;
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    auto it = children_.find(pid);
    if (it == children_.end()) continue;
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
      failures.push_back("monitor of " + it->second.label + " (pid " + std::to_string(pid) + ") exited with status " +
                         std::to_string(WEXITSTATUS(status)) + "; see " + config_.log);
    } else if (WIFSIGNALED(status)) {
      failures.push_back("monitor of " + it->second.label + " (pid " + std::to_string(pid) + ") was killed by signal " +
                         std::to_string(WTERMSIG(status)));
    }
    children_.erase(it);
  }
  return failures;
}

}  // namespace bc::docker
