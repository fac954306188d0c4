// The parts of the Docker Engine API that bc-docker reads, as plain structs, and their JSON parsers.
// Pure functions over response bodies, so they are tested on captured responses without a daemon.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bc::docker {

// One line of GET /events (type container).
struct ContainerEvent {
  std::string action;   // "start", "die", "destroy", ...
  std::string id;       // full 64-hex container id
  int64_t time_ns = 0;  // timeNano: when dockerd saw it
  std::string name;     // from Actor.Attributes
  std::string image;
  std::optional<int> exit_code;                   // die: Actor.Attributes.exitCode
  std::map<std::string, std::string> attributes;  // includes the container's labels
};
// nullopt when the line is not JSON or not a container event with an id.
std::optional<ContainerEvent> parse_event(std::string_view json);

// One entry of GET /containers/json.
struct ListedContainer {
  std::string id;
  std::string name;  // without the leading '/'
  std::string image;
  std::string state;  // "running", "exited", "created", ...
  std::map<std::string, std::string> labels;
};
std::optional<std::vector<ListedContainer>> parse_container_list(std::string_view json);

// GET /containers/{id}/json, the fields used.
struct ContainerInfo {
  std::string id;
  std::string name;                  // without the leading '/'
  std::string image;                 // Config.Image, as given to docker run
  std::string image_id;              // Image, "sha256:..."
  std::vector<std::string> command;  // Path followed by Args
  std::map<std::string, std::string> labels;
  std::string status;  // State.Status
  bool running = false;
  int pid = 0;                   // State.Pid: the init process on the host, 0 when not running
  int64_t started_ns = 0;        // State.StartedAt; 0 when never started
  int64_t finished_ns = 0;       // State.FinishedAt; 0 while running or never finished
  std::optional<int> exit_code;  // State.ExitCode once the container has finished
};
std::optional<ContainerInfo> parse_inspect(std::string_view json);

// RFC 3339 with optional fraction and zone ("2026-11-24T21:16:13.304660548Z", "...+01:00") to epoch
// nanoseconds. Docker's zero time "0001-01-01T00:00:00Z" gives 0. nullopt when malformed.
std::optional<int64_t> parse_docker_time_ns(std::string_view text);

// 64 lower-case hex digits.
bool is_full_container_id(std::string_view id);

// The request path of the event stream: container start, die and destroy events since since_ns (epoch ns;
// 0: from now on).
std::string events_path(int64_t since_ns);

// True when a container carries the monitor label with value "true".
bool has_monitor_label(const std::map<std::string, std::string>& labels);

}  // namespace bc::docker
