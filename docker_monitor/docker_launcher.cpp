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
  std::vector<std::string> args = {config.monitor,
          "--job", std::to_string(request.key),
          "--node", node,
          "--store", config.store,
          "--run-dir", config.run_dir,
          "--interval", bc::monitor::format_interval(config.interval_s),
          "--cgroup-version", std::to_string(request.cgroup_version),
          "--cgroup-path", request.cgroup_path,
          "--uid", std::to_string(request.uid),
          "--bpf", config.bpf ? "on" : "off"};
  if (!config.central.empty()) {
    args.insert(args.end(), {"--central", config.central, "--api-key-file", config.api_key_file, "--outbox-max-mib",
                             std::to_string(config.outbox_max_mib)});
    // Only when set, so bc-docker upgraded before bc-monitor still starts monitors with the default.
    if (config.ship_every_s > 0) args.insert(args.end(), {"--ship-every", std::to_string(config.ship_every_s)});
    if (!config.ca_file.empty()) args.insert(args.end(), {"--ca-file", config.ca_file});
  }
  for (const auto& [option, value] : {std::pair{"--container-id", &request.container_id},
                                      std::pair{"--container-name", &request.container_name},
                                      std::pair{"--container-image", &request.container_image}}) {
    if (value->empty()) continue;
    args.push_back(option);
    args.push_back(*value);
  }
  return args;
}

bool monitor_holds_lock(const std::string& run_dir, uint64_t key) {
  UniqueFd fd(::open(bc::monitor::monitor_lock_path(run_dir, key).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return false;  // nobody holds it; closing releases ours
  return errno == EWOULDBLOCK;
}

ProcessLauncher::ProcessLauncher(Config config, std::string node) : config_(std::move(config)), node_(std::move(node)) {}

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
  if (monitor_holds_lock(config_.run_dir, request.key)) {
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
