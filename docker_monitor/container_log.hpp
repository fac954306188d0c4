// bc-docker's own record of every container it saw, kept apart from the store on purpose: a container that
// lives a few milliseconds is never sampled by a monitor, yet its name, image, exit code and duration must
// not be lost. Self-contained (JSON lines in one file) so that it can move into the store, behind the same
// interface, once the store's schema has container fields.
//
// The file is append-only: one JSON object per line, each a full snapshot of one container run as known at
// that moment. A run is (id, start_ns); the last line of a run is authoritative. Lines are written when a run
// is first seen and when it ends; a restarted container (same id) starts a new run.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace bc::docker {

struct ContainerRecord {
  std::string id;        // full 64-hex id
  std::string short_id;  // first 12 digits
  uint64_t key = 0;      // the store's job id for the container (container_key.hpp)
  std::string node;
  std::string name;
  std::string image;
  std::vector<std::string> command;
  int64_t start_ns = 0;          // State.StartedAt (or the start event's time); 0 unknown
  int64_t end_ns = 0;            // State.FinishedAt (or the die event's time); 0 while running
  std::optional<int> exit_code;  // once ended, when known
  bool running = true;
  bool monitored = false;   // a bc-monitor was started for (or already watched) this run
  std::string reason;       // why monitored or not, for people
  int cgroup_version = 0;   // 0: not located
  std::string cgroup_path;  // relative to the mount, as given to bc-monitor
  int init_pid = 0;
  std::optional<uint32_t> uid;  // of the init process
  // Where start and end come from: Docker's State.StartedAt/FinishedAt (exact), or, for a container removed
  // before it could be inspected (docker run --rm of something very short), the times of its start and die
  // events, which trail the real times by a few to tens of milliseconds.
  bool start_from_docker = false;
  bool end_from_docker = false;

  // Seconds, when start and end are known; never negative (event times can cross for a very short run).
  std::optional<double> duration_s() const;
};

// One line of JSON (no trailing newline). Keys: id, short_id, key (decimal string: it does not fit a JSON
// double), node, name, image, command, start, end (ISO 8601 UTC with nanoseconds, null when unknown),
// start_ns, end_ns (decimal strings), duration_s, times ("docker" when start and end are Docker's own
// State times, "events" when either comes from an event), exit_code (null when unknown), state ("running" or
// "exited"), monitored, reason, cgroup_version, cgroup_path, init_pid, uid, recorded (when written).
std::string record_to_json(const ContainerRecord& record, int64_t recorded_ns);
// Reads one line back; nullopt when it is not a record.
std::optional<ContainerRecord> record_from_json(const std::string& line);

class ContainerLog {
 public:
  // Creates the file's directory if needed. Throws std::runtime_error when the file cannot be opened for
  // appending.
  explicit ContainerLog(std::string path);
  const std::string& path() const { return path_; }

  // Appends the record as one line with a single write, so concurrent readers never see half a line.
  // Throws std::runtime_error on a write error.
  void write(const ContainerRecord& record);

  // The last record of every container whose last line says it is still running: what an earlier bc-docker
  // left open, to be closed after a restart. Malformed lines are skipped.
  std::map<std::string, ContainerRecord> load_running() const;
  // Every line, in file order (tests and tools).
  std::vector<ContainerRecord> load_all() const;

 private:
  std::string path_;
};

}  // namespace bc::docker
