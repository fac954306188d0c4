#include "docker_monitor/discovery.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <utility>

#include "cgroup_monitor/proc_parse.hpp"
#include "common/container_key.hpp"
#include "docker_monitor/container_cgroup.hpp"

namespace bc::docker {
namespace {

std::string seconds_text(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f s", static_cast<double>(ns) / 1e9);
  return buf;
}

void fill_from_info(ContainerRecord& r, const ContainerInfo& info) {
  r.name = info.name;
  r.image = info.image;
  r.command = info.command;
  if (info.started_ns > 0) {
    r.start_ns = info.started_ns;
    r.start_from_docker = true;
  }
  r.init_pid = info.pid;
}

bool live_state(const std::string& state) { return state == "running" || state == "paused" || state == "restarting"; }

}  // namespace

Discovery::Discovery(Config config, std::string node, DockerQueries& docker, MonitorLauncher& launcher,
                     ContainerLog& log, LogSink logger, FileReader read_file, Clock clock)
    : config_(std::move(config)),
      node_(std::move(node)),
      docker_(docker),
      launcher_(launcher),
      container_log_(log),
      logger_(std::move(logger)),
      read_file_(std::move(read_file)),
      clock_(std::move(clock)) {}

std::string Discovery::label(const ContainerRecord& r) {
  return "container " + r.short_id + (r.name.empty() ? "" : " (" + r.name + ")");
}

ContainerRecord Discovery::new_record(const std::string& id) const {
  ContainerRecord r;
  r.id = id;
  r.short_id = id.substr(0, container::kShortIdLength);
  r.key = container::container_key(id).value_or(0);
  r.node = node_;
  return r;
}

void Discovery::write(const ContainerRecord& record) {
  try {
    container_log_.write(record);
  } catch (const std::exception& e) {
    log(Level::Error, std::string(e.what()) + "; " + label(record) + " is not recorded");
  }
}

void Discovery::adopt(std::map<std::string, ContainerRecord>&& open_runs) {
  for (auto& [id, record] : open_runs) runs_[id] = std::move(record);
}

void Discovery::on_event(const ContainerEvent& event) {
  if (event.action == "start") handle_start(event.id, &event);
  else if (event.action == "die") handle_die(event.id, &event);
  else if (event.action == "destroy") handle_destroy(event.id, event);
}

void Discovery::monitor(ContainerRecord& r, const ContainerInfo& info) {
  const std::string proc = "/proc/" + std::to_string(info.pid);
  auto cgroup_text = info.pid > 0 ? read_file_(proc + "/cgroup") : std::nullopt;
  if (!cgroup_text) {
    r.reason = "exited before a monitor could start (its init process is gone)";
    return;
  }
  auto cgroup = container_cgroup_from_proc_cgroup(*cgroup_text, info.id);
  if (!cgroup) {
    // A recycled pid is in another cgroup; a live init process always shows the container's.
    r.reason =
        "exited before a monitor could start (pid " + std::to_string(info.pid) + " is not in the container's cgroup)";
    return;
  }
  r.cgroup_version = cgroup->version;
  r.cgroup_path = cgroup->relative_path;
  auto status_text = read_file_(proc + "/status");
  auto status = status_text ? monitor::parse_proc_status(*status_text) : std::nullopt;
  if (!status) {
    r.reason = "exited before a monitor could start (its init process is gone)";
    return;
  }
  r.uid = status->uid;
  MonitorRequest request{r.key, status->uid, cgroup->version, cgroup->relative_path, label(r), r.id, r.name, r.image};
  const auto result = launcher_.ensure(request);
  switch (result.outcome) {
    case MonitorLauncher::Outcome::Started:
      r.monitored = true;
      r.reason = "monitor started (pid " + std::to_string(result.pid) + ")";
      break;
    case MonitorLauncher::Outcome::AlreadyRunning:
      r.monitored = true;
      r.reason = "a monitor was already running";
      break;
    case MonitorLauncher::Outcome::Failed:
      r.monitored = false;
      r.reason = "monitor not started: " + result.message;
      log(Level::Error, label(r) + ": " + r.reason);
      break;
  }
}

void Discovery::handle_start(const std::string& id, const ContainerEvent* event) {
  InspectResult inspected = docker_.inspect(id);
  if (inspected.status == InspectResult::Status::Error) {
    unresolved_.insert(id);
    log(Level::Warning, "cannot inspect container " + id.substr(0, container::kShortIdLength) + ": " + inspected.error +
                            "; it is looked at again after the next reconnect");
    return;
  }
  unresolved_.erase(id);
  auto existing = runs_.find(id);

  if (inspected.status == InspectResult::Status::NotFound) {
    // Removed already (docker run --rm of something very short). The events carry what is left to know.
    if (!event) return;
    if (existing != runs_.end()) {
      // A replayed start of a known run, or a start published after the die of a run shorter than Docker's
      // own event latency (the die then came first): it belongs to that run.
      ContainerRecord& known = existing->second;
      if (known.start_ns == 0 && !known.running) {
        known.start_ns = std::min(event->time_ns, known.end_ns > 0 ? known.end_ns : event->time_ns);
        if (known.name.empty()) known.name = event->name;
        if (known.image.empty()) known.image = event->image;
        known.reason = "exited before a monitor could start (removed before it could be inspected)";
        write(known);
      }
      return;
    }
    ContainerRecord r = new_record(id);
    r.name = event->name;
    r.image = event->image;
    r.start_ns = event->time_ns;
    r.reason = "exited before a monitor could start (removed before it could be inspected)";
    runs_[id] = r;
    write(r);
    log(Level::Info, label(r) + " started and was gone before it could be inspected; not monitored");
    return;
  }

  const ContainerInfo& info = inspected.info;
  if (existing != runs_.end() && info.started_ns > 0 && existing->second.start_ns == info.started_ns) {
    // This run is known. After a reconnect or a restart of bc-docker, its monitor may be missing.
    ContainerRecord& r = existing->second;
    if (r.running && r.monitored && info.running && !r.cgroup_path.empty() && r.uid) {
      auto result = launcher_.ensure({r.key, *r.uid, r.cgroup_version, r.cgroup_path, label(r), r.id, r.name, r.image});
      if (result.outcome == MonitorLauncher::Outcome::Started)
        log(Level::Info, label(r) + ": its monitor was missing; started pid " + std::to_string(result.pid));
      else if (result.outcome == MonitorLauncher::Outcome::Failed)
        log(Level::Error, label(r) + ": its monitor is missing and cannot be started: " + result.message);
    }
    return;
  }
  if (existing != runs_.end() && existing->second.running) {
    // An earlier run is still open (adopted from the log, or the container restarted unseen): it has ended.
    ContainerRecord& old = existing->second;
    old.running = false;
    old.reason += "; its end was not seen";
    write(old);
  }

  ContainerRecord r = new_record(id);
  fill_from_info(r, info);
  if (r.start_ns == 0 && event) r.start_ns = event->time_ns;
  if (!info.running) {
    r.running = false;
    r.end_ns = info.finished_ns;
    r.end_from_docker = info.finished_ns > 0;
    r.exit_code = info.exit_code;
    r.reason = "exited before a monitor could start";
  } else if (config_.label_only && !has_monitor_label(info.labels)) {
    r.reason = std::string("not labelled ") + kMonitorLabel + "=" + kMonitorLabelValue + " (label_only=yes)";
  } else {
    monitor(r, info);
  }
  runs_[id] = r;
  write(r);

  std::string text = label(r) + " started (image " + r.image + ")";
  if (r.monitored) {
    text += ": monitored, key " + std::to_string(r.key) + ", cgroup v" + std::to_string(r.cgroup_version) + " " +
            r.cgroup_path + ", " + r.reason;
    if (r.start_ns > 0) text += ", " + std::to_string((clock_() - r.start_ns) / 1000000) + " ms after its start";
  } else {
    text += ": not monitored, " + r.reason;
  }
  log(Level::Info, text);
}

void Discovery::handle_die(const std::string& id, const ContainerEvent* event) {
  InspectResult inspected = docker_.inspect(id);
  int64_t end_ns = event ? event->time_ns : 0;
  bool end_from_docker = false;
  std::optional<int> exit_code = event ? event->exit_code : std::nullopt;
  const bool have_info = inspected.status == InspectResult::Status::Ok;
  if (have_info && !inspected.info.running && inspected.info.finished_ns > 0) {
    end_ns = inspected.info.finished_ns;
    end_from_docker = true;
    if (inspected.info.exit_code) exit_code = inspected.info.exit_code;
  }
  auto it = runs_.find(id);
  if (it != runs_.end() && !it->second.running) return;  // ended already (recorded at start, or a replay)
  if (it == runs_.end()) {
    ContainerRecord r = new_record(id);
    if (have_info) fill_from_info(r, inspected.info);
    else if (event) {
      r.name = event->name;
      r.image = event->image;
    }
    r.reason = "its start was not seen (bc-docker was not watching)";
    it = runs_.emplace(id, std::move(r)).first;
  }
  ContainerRecord& r = it->second;
  r.running = false;
  r.end_ns = end_ns;
  r.end_from_docker = end_from_docker;
  r.exit_code = exit_code;
  // A run known only from its start event: Docker's own start time is better when inspect has it now.
  if (have_info && inspected.info.started_ns > 0 && !r.start_from_docker) {
    r.start_ns = inspected.info.started_ns;
    r.start_from_docker = true;
  }
  write(r);
  std::string text = label(r) + " exited";
  text += exit_code ? " with code " + std::to_string(*exit_code) : std::string(" (exit code unknown)");
  if (auto d = r.duration_s()) text += " after " + seconds_text(static_cast<int64_t>(*d * 1e9));
  log(Level::Info, text);
}

void Discovery::handle_destroy(const std::string& id, const ContainerEvent& event) {
  unresolved_.erase(id);
  auto it = runs_.find(id);
  if (it == runs_.end()) return;
  if (it->second.running) {
    ContainerRecord& r = it->second;
    r.running = false;
    r.end_ns = event.time_ns;
    r.end_from_docker = false;
    r.reason += "; removed without a die event";
    write(r);
  }
  runs_.erase(it);
}

void Discovery::resync(const std::vector<ListedContainer>& containers) {
  std::map<std::string, const ListedContainer*> listed;
  for (const auto& c : containers) listed[c.id] = &c;
  for (const auto& c : containers)
    if (live_state(c.state)) handle_start(c.id, nullptr);
  const std::set<std::string> unresolved = unresolved_;
  for (const auto& id : unresolved)
    if (listed.count(id)) handle_start(id, nullptr);
    else unresolved_.erase(id);

  std::vector<std::string> open;
  for (const auto& [id, r] : runs_)
    if (r.running) open.push_back(id);
  for (const auto& id : open) {
    auto l = listed.find(id);
    if (l != listed.end() && live_state(l->second->state)) continue;
    if (l != listed.end()) {
      handle_die(id, nullptr);  // ended while nobody watched: inspect has its end and exit code
      continue;
    }
    ContainerRecord& r = runs_.at(id);
    r.running = false;
    r.reason += "; removed while bc-docker was not watching";
    write(r);
    log(Level::Info, label(r) + " was removed while bc-docker was not watching; its end is unknown");
    runs_.erase(id);
  }
}

}  // namespace bc::docker
