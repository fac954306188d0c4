// accounting_db: the node (and later central) store. The only code that knows the schema.
//
// One LMDB environment per path per process. Writers batch a whole sample tick into one transaction;
// readers use MVCC read transactions and never block writers. Keys are fixed-width big-endian so byte
// order equals numeric order.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace bc::store {

// Slurm's special step ids (slurm.h), kept here so every consumer prints them the same way.
inline constexpr uint32_t kStepBatch = 0xfffffffbU;
inline constexpr uint32_t kStepExtern = 0xfffffffcU;
inline constexpr uint32_t kStepInteractive = 0xfffffffaU;
inline constexpr uint32_t kStepUnknown = 0xffffffffU;
std::string step_name(uint32_t step);

inline constexpr uint32_t kSchemaVersion = 1;

// A store fault (I/O error, corruption, newer schema). "Not found" is never an exception.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct JobRecord {
  uint64_t job_id = 0;
  std::string node;
  uint32_t uid = 0;
  std::string user;
  std::vector<uint32_t> steps;  // sorted, unique
  int64_t start_ms = 0;         // epoch milliseconds
  int64_t end_ms = 0;           // 0 while running
  int64_t last_sample_ms = 0;
  uint32_t cgroup_version = 0;  // 1 or 2
  // cgroup totals; has_* tell whether the controller existed for this job
  bool has_cgroup_cpu = false;
  uint64_t cgroup_cpu_ns = 0;
  bool has_cgroup_memory = false;
  uint64_t cgroup_mem_current = 0;
  uint64_t cgroup_mem_peak = 0;
  bool has_cgroup_io = false;
  uint64_t cgroup_read_bytes = 0;
  uint64_t cgroup_write_bytes = 0;
  uint64_t max_rss_sum = 0;  // peak over samples of the summed RSS of the job's processes
  uint64_t sample_count = 0;
  // What the monitor itself cost, from getrusage at its exit.
  uint64_t monitor_cpu_ns = 0;
  uint64_t monitor_max_rss = 0;
};

struct ProcessRecord {
  uint64_t job_id = 0;
  std::string node;
  uint32_t pid = 0;
  uint32_t ppid = 0;
  uint32_t step = kStepUnknown;
  uint64_t start_ticks = 0;  // /proc/PID/stat starttime: with pid, the identity of a process
  int64_t start_ms = 0;
  int64_t end_ms = 0;  // 0 while running
  uint32_t series_id = 0;
  std::string command;  // comm
  std::string exe;
  std::vector<std::string> argv;
  uint64_t cpu_ns = 0;  // utime + stime, last seen
  uint64_t max_rss = 0; // VmHWM, last seen
  uint64_t rss = 0;
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
};

// One point of a series. Series 0 is the job total; processes have series ids from 1.
struct Sample {
  uint32_t series_id = 0;
  int64_t time_s = 0;  // epoch seconds
  uint64_t cpu_ns = 0; // cumulative
  uint64_t rss = 0;
  uint64_t read_bytes = 0;  // cumulative
  uint64_t write_bytes = 0; // cumulative
};

enum class Resolution : uint8_t { Second = 0, Minute = 1, Hour = 2, Day = 3 };

// A process whose record changed this tick, and its sample for the tick if it was read.
struct ProcessUpdate {
  ProcessRecord record;  // record.series_id is filled in by write_batch
  std::optional<Sample> sample;  // series_id is ignored: the process's series is used
};

// Everything one monitor tick produces, written in one transaction.
struct Batch {
  JobRecord job;
  std::optional<Sample> job_sample;  // series 0
  std::vector<ProcessUpdate> processes;
};

struct OpenOptions {
  bool read_only = false;
  bool create = true;                            // create dir and schema if missing (writers)
  uint64_t initial_map_bytes = 256ULL << 20;     // grows on demand
  uint64_t map_growth_step_bytes = 256ULL << 20;
};

class Store {
 public:
  // Throws StoreError with the path and LMDB's text on failure.
  static std::unique_ptr<Store> open(const std::string& path, const OpenOptions& options = {});
  virtual ~Store() = default;

  // Gives each process its series id (an existing record's, or a new one), writes it back into the
  // batch, then writes the job record, the processes and the samples in one transaction.
  virtual void write_batch(Batch& batch) = 0;

  virtual std::optional<JobRecord> job(uint64_t job_id, const std::string& node) = 0;
  virtual std::vector<JobRecord> job_nodes(uint64_t job_id) = 0;  // one record per node
  virtual std::vector<uint64_t> job_ids() = 0;
  virtual std::vector<ProcessRecord> processes(uint64_t job_id) = 0;  // every node
  virtual std::vector<Sample> series(uint64_t job_id, const std::string& node, uint32_t series_id,
                                     int64_t from_s, int64_t to_s) = 0;
  virtual uint32_t schema_version() = 0;
};

}  // namespace bc::store
