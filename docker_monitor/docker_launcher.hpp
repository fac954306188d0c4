// Starts bc-monitor for a container, the way the SPANK plugin starts it for a job: fork + exec with a fixed
// argument list, stdio to the monitor log, every other fd closed. bc-docker is not inside the container's
// cgroup, so there is no cgroup escape here. Monitors run in their own session: they outlive bc-docker and
// end with their container (bc-monitor exits when the cgroup is gone).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "docker_monitor/docker_config.hpp"

namespace bc::docker {

struct MonitorRequest {
  uint64_t key = 0;  // the store job id (container_key.hpp)
  uint32_t uid = 0;  // of the container's init process
  int cgroup_version = 1;
  std::string cgroup_path;   // relative to the mount, e.g. /docker/<id>
  std::string label;         // for log lines: "container 1a2b3c4d5e6f (name)"
  std::string container_id;  // full id, name and image, recorded with the container's record
  std::string container_name;
  std::string container_image;
};

class MonitorLauncher {
 public:
  enum class Outcome { Started, AlreadyRunning, Failed };
  struct Result {
    Outcome outcome = Outcome::Failed;
    int pid = 0;          // Started
    std::string message;  // Failed: why
  };
  virtual ~MonitorLauncher() = default;
  // Starts a monitor unless one already runs for the key (its lock is held, or one was just started).
  virtual Result ensure(const MonitorRequest& request) = 0;
};

// The argument vector for bc-monitor (exposed for tests).
std::vector<std::string> monitor_argv(const Config& config, const std::string& node, const MonitorRequest& request);

class ProcessLauncher final : public MonitorLauncher {
 public:
  ProcessLauncher(Config config, std::string node);
  Result ensure(const MonitorRequest& request) override;
  // Reaps monitors that exited (call on SIGCHLD). Returns a line for each that failed, for the log.
  std::vector<std::string> reap();
  size_t children() const { return children_.size(); }

 private:
  Config config_;
  std::string node_;
  std::map<pid_t, MonitorRequest> children_;  // started and not yet reaped
};

}  // namespace bc::docker
