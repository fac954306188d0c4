// Final figures that sampling cannot see, from slurmstepd. A process is read at most once an interval, so
// what a task and its children did in their last interval is only in what its reaper got back from wait
// (getrusage's RUSAGE_CHILDREN); and the job's cgroup may be removed before the monitor's next read. The
// SPANK plugin appends a record per task from slurm_spank_task_exit, and the job cgroup's CPU counter at
// each task's and each step's end; the job's monitor takes the new records at each tick, before it
// samples (cgroup_monitor/reap_accounting.hpp).
//
// The plugin also appends a record per task from slurm_spank_task_post_fork: its Slurm rank, which the
// monitor sets on the task and its descendants.
//
// The file, task_finals_path(): fixed records of 80 bytes in host order, appended with O_APPEND (atomic
// for one record, so several steps' slurmstepds may append), mode 0600 in the monitor's run dir. The plugin
// makes it empty before it starts a monitor (a task may end before the monitor is up), the monitor removes
// it when it ends, and otherwise the plugin only appends to it: no record outlives its monitor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/fd.hpp"

namespace bc::monitor {

struct FinalRecord {
  enum Kind : uint32_t {
    kTask = 0,          // a task's whole tree to its end, and who it was
    kJobCgroupCpu = 1,  // the job cgroup's CPU counter: cpu_ns, and its directory's inode in start_ticks
    kTaskStarted = 2,   // a task just forked: pid, start_ticks, step, parent and its ranks; no figures yet
  };
  uint32_t pid = 0;
  uint32_t kind = kTask;
  uint64_t start_ticks = 0;  // the task's start, as /proc/PID/stat: a reused pid is not mistaken for it
  uint64_t cpu_ns = 0;       // user + system of the task and everything it reaped
  uint64_t read_bytes = 0;   // storage bytes, likewise (whole 512-byte blocks, as getrusage counts them)
  uint64_t write_bytes = 0;
  int64_t end_ms = 0;   // when slurmstepd reaped it (epoch)
  uint32_t step = 0;    // Slurm step id, as the store keeps it
  uint32_t parent = 0;  // slurmstepd's pid
  // The program the step runs (the basename of its argv[0], as comm would show it, NUL-padded): a task that
  // ended before any sample saw it still gets a record with a name.
  char command[16] = {};
  uint32_t task_global = kNoTask;  // Slurm's task id in the step (SLURM_PROCID), for kTask and kTaskStarted
  uint32_t task_local = kNoTask;   // and on this node (SLURM_LOCALID)
  static constexpr uint32_t kNoTask = UINT32_MAX;
};
static_assert(sizeof(FinalRecord) == 80);

// The name says the record size: a monitor and a plugin of different builds (a node upgraded while a job
// runs) use different files, and lose the final figures rather than misread them.
inline std::string task_finals_path(const std::string& run_dir, uint64_t job_id) {
  return run_dir + "/job_" + std::to_string(job_id) + ".finals80";
}

// Makes the file empty for a monitor about to start; false on failure (then no final figures pass).
bool make_finals_file(const std::string& path) noexcept;

// Appends one record to the monitor's file; false on any failure, and when no monitor made the file (never
// throws, never blocks on anything but the write).
bool append_final(const std::string& path, const FinalRecord& record) noexcept;

// What slurmstepd's reaped children used so far (RUSAGE_CHILDREN): the difference across one task's reap
// is that task's final figures.
struct ReapedTotals {
  uint64_t cpu_ns = 0, read_bytes = 0, write_bytes = 0;
};
ReapedTotals reaped_children_totals() noexcept;

// The monitor's side: opens the file its launcher made (or makes it), then gives the records appended since
// the last call (whole records only).
class FinalsReader {
 public:
  explicit FinalsReader(std::string path);
  std::vector<FinalRecord> take_new();

 private:
  std::string path_;
  UniqueFd fd_;
  uint64_t offset_ = 0;
};

}  // namespace bc::monitor
