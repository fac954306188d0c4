// What bc-docker does with what Docker tells it: for each container run, record it in the container log,
// locate its cgroup and make sure a bc-monitor samples it. No I/O of its own besides /proc reads through an
// injected reader, so the whole state machine is tested with fakes.
//
// Idempotent by design: the event stream is replayed after a reconnect and the container list overlaps the
// stream, so the same start or die may arrive twice; a run (container id + start time) is handled once.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "docker_monitor/container_log.hpp"
#include "docker_monitor/docker_api.hpp"
#include "docker_monitor/docker_config.hpp"
#include "docker_monitor/docker_launcher.hpp"
#include "docker_monitor/docker_log.hpp"

namespace bc::docker {

struct InspectResult {
  enum class Status { Ok, NotFound, Error } status = Status::Error;
  ContainerInfo info;
  std::string error;
};

class DockerQueries {
 public:
  virtual ~DockerQueries() = default;
  virtual InspectResult inspect(const std::string& id) = 0;
};

// Reads a whole file (/proc/PID/cgroup, /proc/PID/status); nullopt when it cannot.
using FileReader = std::function<std::optional<std::string>(const std::string& path)>;
// Epoch nanoseconds.
using Clock = std::function<int64_t()>;

class Discovery {
 public:
  Discovery(Config config, std::string node, DockerQueries& docker, MonitorLauncher& launcher, ContainerLog& log,
            LogSink logger, FileReader read_file, Clock clock);

  // Runs that an earlier bc-docker left open in the container log; closed or re-adopted by the next resync.
  void adopt(std::map<std::string, ContainerRecord>&& open_runs);
  // After each (re)connect, with GET /containers/json?all=1: starts monitors where missing, records the end
  // of runs that ended while nobody was watching.
  void resync(const std::vector<ListedContainer>& containers);
  void on_event(const ContainerEvent& event);

  // The latest run of each container not yet destroyed.
  const std::map<std::string, ContainerRecord>& runs() const { return runs_; }

 private:
  void handle_start(const std::string& id, const ContainerEvent* event);
  void handle_die(const std::string& id, const ContainerEvent* event);
  void handle_destroy(const std::string& id, const ContainerEvent& event);
  // Fills the monitoring part of a running container's record.
  void monitor(ContainerRecord& record, const ContainerInfo& info);
  void write(const ContainerRecord& record);
  ContainerRecord new_record(const std::string& id) const;
  void log(Level level, const std::string& text) const { logger_(level, text); }
  static std::string label(const ContainerRecord& r);

  Config config_;
  std::string node_;
  DockerQueries& docker_;
  MonitorLauncher& launcher_;
  ContainerLog& container_log_;
  LogSink logger_;
  FileReader read_file_;
  Clock clock_;
  std::map<std::string, ContainerRecord> runs_;  // by full id
  std::set<std::string> unresolved_;             // inspect failed (dockerd away): looked at again by resync
};

}  // namespace bc::docker
