// A task's final figures, from the slurmstepd that reaped it. Sampling reads a process at most once an
// interval, so what a task and its children did in their last interval is only in what its reaper got
// back from wait (getrusage's RUSAGE_CHILDREN). The SPANK plugin appends one record per task from
// slurm_spank_task_exit; the job's monitor takes the new ones at each tick, before it samples, and the
// task's record then holds its whole tree to the end (cgroup_monitor/reap_accounting.hpp).
//
// The file, task_finals_path(): fixed records of 40 bytes in host order, appended with O_APPEND (atomic
// for one record, so several steps' slurmstepds may append), mode 0600 in the monitor's run dir.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/fd.hpp"

namespace bc::monitor {

struct TaskFinal {
  uint32_t pid = 0;
  uint32_t reserved = 0;
  uint64_t start_ticks = 0;  // the task's start, as /proc/PID/stat: a reused pid is not mistaken for it
  uint64_t cpu_ns = 0;       // user + system of the task and everything it reaped
  uint64_t read_bytes = 0;   // storage bytes, likewise (whole 512-byte blocks, as getrusage counts them)
  uint64_t write_bytes = 0;
};
static_assert(sizeof(TaskFinal) == 40);

inline std::string task_finals_path(const std::string& run_dir, uint64_t job_id) {
  return run_dir + "/job_" + std::to_string(job_id) + ".finals";
}

// Appends one record; false on any failure (never throws, never blocks on anything but the write).
bool append_task_final(const std::string& path, const TaskFinal& final) noexcept;

// What slurmstepd's reaped children used so far (RUSAGE_CHILDREN): the difference across one task's reap
// is that task's final figures.
struct ReapedTotals {
  uint64_t cpu_ns = 0, read_bytes = 0, write_bytes = 0;
};
ReapedTotals reaped_children_totals() noexcept;

// The monitor's side: the records appended since the last call (whole records only).
class TaskFinalsReader {
 public:
  explicit TaskFinalsReader(std::string path) : path_(std::move(path)) {}
  std::vector<TaskFinal> take_new();

 private:
  std::string path_;
  UniqueFd fd_;
  uint64_t offset_ = 0;
};

}  // namespace bc::monitor
