// The processes of one job as seen by /proc sampling. Each tracked process keeps its /proc fds open:
// an fd stays bound to the task it was opened for, so a reused pid can never be mistaken for it, and
// pread on a kept fd costs a third of open+read+close.
//
// Counting: cgroup_monitor/reap_accounting.hpp. Summing every process counts each byte and CPU second once.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "accounting_db/store.hpp"
#include "cgroup_monitor/cgroup_reader.hpp"
#include "cgroup_monitor/reap_accounting.hpp"
#include "common/fd.hpp"

namespace bc::monitor {

struct ProcessTotals {
  uint64_t cpu_ns = 0;  // every process seen, ended ones included
  uint64_t live_rss = 0;
  uint64_t live_threads = 0;
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
  size_t live = 0;
};

class ProcessTable {
 public:
  explicit ProcessTable(std::string proc_root = "/proc");

  // Reads every tracked process and every new member; ended processes get their end time.
  // Appends new and changed processes, with a sample each, to batch.processes.
  ProcessTotals sample(const std::vector<MemberPid>& members, int64_t now_ms, store::Batch& batch);

  // After a successful write: forget processes that are gone, keep the series ids the store assigned.
  void commit(const store::Batch& batch);

  // ---- facts from eBPF events (cgroup_monitor/job_events.cpp) ----
  // The identity and step of a tracked process, if the table has it (a reaped one until it is written).
  struct Identity {
    uint64_t start_ticks = 0;
    uint32_t step = store::kStepUnknown;
    std::string command;
  };
  std::optional<Identity> identity(uint32_t pid) const;
  // The table has pid and saw it reaped (it is kept until written, and while held: keep_until_credited).
  bool gone(uint32_t pid) const;
  // Live (not ended) tracked pids: the processes to hand to the event collector.
  std::vector<uint32_t> live_pids() const;
  // A tracked process (pid, start_ticks) exited: its exact end, exit status and final CPU and peak RSS.
  // False if the table does not have that process.
  struct ExitFacts {
    int64_t end_ms = 0;
    int exit_code = 0, exit_signal = 0;
    bool core_dumped = false;
    uint64_t cpu_ns = 0, max_rss = 0;
    uint64_t read_bytes = 0, write_bytes = 0;  // as /proc/PID/io at the end: reaped children included
  };
  // Also brings the process's update in batch (this tick's, if sample() already put one there) up to date.
  bool apply_exit(uint32_t pid, uint64_t start_ticks, const ExitFacts& facts, store::Batch& batch);
  // A process that has its own record from events (it ended before the table saw it): never track it, though
  // it may still be listed in cgroup.procs as a zombie.
  void leave_to_events(uint32_t pid, uint64_t start_ticks);
  // Sets the parent at birth and the exact start of a tracked process from its fork event.
  void apply_parent(uint32_t pid, uint64_t start_ticks, uint32_t ppid, int64_t fork_ms);
  // The program a tracked process runs, from its latest exec event: a sample between its fork and its exec
  // (or during the exec) saw its parent's argv, or none, and a process living a millisecond is not sampled
  // again.
  struct ExecFacts {
    std::string command, exe;
    std::vector<std::string> argv;
    bool argv_truncated = false;
  };
  void apply_exec(uint32_t pid, uint64_t start_ticks, const ExecFacts& facts);
  // A child the table never saw, reaped by tracked process `parent`, has its own record: its CPU and bytes
  // (as /proc/PID/io counted them, its own reaped children included) are no longer the parent's unseen part.
  void credit_child(uint32_t parent, uint64_t cpu_ns, uint64_t read_bytes, uint64_t write_bytes);
  // A task's end, from the slurmstepd that reaped it (cgroup_monitor/task_finals.hpp): its CPU and bytes with
  // everything it reaped, to its end. Before this tick's sample. A task the table saw gone is kept a few
  // ticks for it; one that ended before any sample saw it (and without an event record) gets its record
  // from this.
  struct TaskEnd {
    uint32_t pid = 0, parent = 0, step = 0;
    uint64_t start_ticks = 0;
    int64_t end_ms = 0;
    std::string command;
    Counters inclusive;
    uint32_t task = store::kTaskUnknown;
  };
  void apply_task_end(const TaskEnd& end);
  // A task's Slurm rank, from the slurmstepd that forked it (cgroup_monitor/task_finals.hpp): set on the
  // task, now or when it is first tracked, and inherited by the processes it starts (at each sample, by
  // their parents at birth), so that a rank's helpers belong to the rank.
  void apply_task_start(uint32_t pid, uint64_t start_ticks, uint32_t task);
  // NVML's figures of a process, summed over its GPUs: the memory it holds now and the SM time it used since
  // the last call. Before this tick's sample, which then gives the process a GPU point (and one of no memory
  // at the tick it is no longer on a GPU). False when the pid is not a live process of the job.
  bool apply_gpu(uint32_t pid, uint64_t memory_bytes, uint64_t sm_ns);
  // The task of a tracked process or of a task the table was told of (kTaskUnknown if neither): for a
  // process that only events saw, born of it.
  uint32_t task_of(uint32_t pid) const;
  static constexpr int kTicksToAwaitFinal = 3;
  // Processes whose reaped children have not sent their exit events yet: commit() does not forget them even
  // when gone, so that those children's credit, when it comes, still reaches their records (which are then
  // written again, without the children's bytes). Replaces the previous tick's set.
  void keep_until_credited(std::set<uint32_t> pids) { held_ = std::move(pids); }

 private:
  struct Tracked {
    store::ProcessRecord record;
    UniqueFd stat_fd, status_fd, io_fd;
    // /proc/PID/io includes reaped children; the per-thread files hold each thread's own bytes. The leader's
    // is kept open, other threads are read only while there are any, and threads that ended keep their last
    // bytes in ended_threads.
    UniqueFd leader_io_fd;
    std::map<uint32_t, IoBytes> other_threads;
    IoBytes ended_threads;
    uint32_t threads = 0;                // at the last sample; 0 once it exited
    std::optional<uint64_t> gpu_memory;  // this tick's, when NVML listed it on a GPU
    bool on_gpu = false;                 // NVML listed it at the last sample
    bool ended = false;                  // exited (zombie or gone), end_ms set
    bool task = false;                   // its parent is slurmstepd, which will pass on its final figures
    bool final_taken = false;
    int ticks_gone = 0;
    bool gone = false;  // reaped: its /proc entry is no more
    bool changed = true;
  };
  enum class State { Alive, Zombie, Gone };
  State refresh(Tracked& t);
  void read_identity(Tracked& t);  // argv and exe, again after an exec
  std::optional<IoBytes> own_io(Tracked& t, uint64_t num_threads);
  void update_record(Tracked& t);
  void track(const MemberPid& member, int64_t now_ms);
  void inherit_tasks();

  std::string proc_root_;
  uint64_t ns_per_tick_;
  uint64_t ticks_per_second_;
  uint64_t page_size_;
  int64_t boot_epoch_ms_;
  std::map<uint32_t, Tracked> tracked_;       // by pid
  ReapAccounting accounting_;                 // their figures, by pid
  Counters forgotten_;                        // record totals of processes that are gone and written
  std::map<uint32_t, uint64_t> event_owned_;  // pid -> start_ticks, see leave_to_events
  std::set<uint32_t> held_;                   // see keep_until_credited
  std::set<uint32_t> slurmstepds_;            // pids of the job's slurmstepd processes, seen as members
  struct TaskStart {
    uint64_t start_ticks = 0;
    uint32_t task = store::kTaskUnknown;
  };
  std::map<uint32_t, TaskStart> task_starts_;  // by pid, see apply_task_start
};

}  // namespace bc::monitor
