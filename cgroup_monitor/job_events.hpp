// The eBPF events of one job, merged into the monitor's ticks. Internal to cgroup_monitor/.
//
// Each tick the monitor hands the job's live processes to the collector (track), then drains it and merges:
// - a process the sampling table also tracks gets its exact end, exit status, final CPU and peak RSS, and
//   its parent at birth, in its own record;
// - a process the table never saw (it lived less than an interval) gets a record of its own from its fork,
//   exec and exit events (exact = true), and its CPU is taken out of its parent's unseen part;
// - files and connections become this tick's increments in the batch, keyed by the process's identity;
// - lost events are added to the job record.
// A process still alive at the drain and not yet in the table waits: the table picks it up from
// cgroup.procs on the next tick, or its exit event comes first and it gets an event record.
//
// Loading. The collector is opened on a thread of its own, since the first monitor on a node may wait for the
// verifier: the monitor samples from its first tick whatever the load does, and events join in when the load
// ends. Tasks handed over meanwhile are held (hand_off answers kHandoffNotYet) and answered then.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "accounting_db/store.hpp"
#include "cgroup_monitor/bpf/load_failure.hpp"
#include "cgroup_monitor/process_table.hpp"
#include "common/fd.hpp"

namespace bc::events {
class EventCollector;
struct Drained;
}  // namespace bc::events

namespace bc::monitor {

struct EventSettings {
  bool enabled = true;          // bpf=on|off
  size_t ring_bytes = 1 << 20;  // bpf_ring_kib
  bool file_bytes = false;      // file_bytes=on|off: read/write bytes per file
  std::string pin_dir = "/sys/fs/bpf/bubble-chamber";
  // The slot lock and the memory of failed loads are node-wide like the pinned programs they guard, so not
  // the monitor's --run-dir (tests give each cluster its own run dir, but all of them share the node's
  // programs).
  std::string run_dir = events::kNodeRunDir;
  std::string object_file;  // bpf_object=: load this BPF object instead of the built-in one
};

class JobEvents {
 public:
  // Starts opening the events on a thread of its own (at once unavailable with bpf=off).
  JobEvents(const EventSettings& settings, std::function<void(const std::string&)> log);
  // Waits for a load still running (the verifier cannot be interrupted), then releases the collector.
  ~JobEvents();
  JobEvents(const JobEvents&) = delete;
  JobEvents& operator=(const JobEvents&) = delete;

  enum class State { Loading, Running, Unavailable };
  State state() const { return state_; }
  bool running() const { return state_ == State::Running; }
  // Empty while events run; "events unavailable: <reason>" otherwise (also while they load).
  const std::string& unavailable() const { return unavailable_; }
  // Readable when the load has ended; -1 once it was taken. Then call finish_loading().
  int loading_fd() const { return loading_fd_.get(); }
  // Takes the loader's result when it has ended, and logs it: true when the state changed (the caller then
  // serves the held tasks). The monitor calls it when loading_fd() is readable and at each tick; until then
  // the state stays Loading. The load's time is in load_ms().
  bool finish_loading();
  // Blocks until the load has ended (for the monitor's last record); finish_loading() then takes it.
  void wait_for_load();
  double load_ms() const { return load_ms_; }
  // For the monitor's wait: readable when the ring should be emptied before the next tick (-1 without events).
  int poll_fd() const;
  void pump();

  // A task handed over by the SPANK plugin before its exec (see handoff.hpp): tracked from now on, so its
  // whole life is seen. Returns the answer for the task: kHandoffTracked, kHandoffNoEvents, or kHandoffNotYet
  // while the events still load.
  char hand_off(uint32_t pid, uint32_t step);
  // Tasks whose plugin stopped waiting before the monitor tracked them; added to the job's lost events.
  void count_late(uint64_t tasks) { late_ += tasks; }

  // One tick, after table.sample(): tracks the table's live processes, drains, and adds to batch and job.
  void merge(ProcessTable& table, int64_t now_ms, store::Batch& batch, store::JobRecord& job);
  // After a successful write of batch (records it carried need not be sent again).
  void commit();

 private:
  struct Pending {
    uint64_t start_ticks = 0;
    bool start_known = false;  // read from /proc, or computed from the fork time once the process was gone
    uint64_t fork_ns = 0;      // epoch
    uint32_t ppid = 0;
    bool forked = false, execed = false, exited = false;
    bool exec_applied = false;  // the table's record has this exec's argv
    uint64_t exec_ns = 0;
    std::string exe, filename;
    std::vector<std::string> argv;
    bool argv_truncated = false;
    uint64_t exit_ns = 0;
    int exit_code = 0, exit_signal = 0;
    bool core_dumped = false;
    uint64_t cpu_ns = 0, max_rss = 0;
    uint64_t read_bytes = 0, write_bytes = 0;  // at exit, as /proc/PID/io: reaped children included
    // The CPU and bytes of its children that ended with records of their own, while it had none in the
    // table: taken out of its own figures, or handed to the table when it gets there.
    uint64_t children_cpu = 0, children_read = 0, children_write = 0;
    uint32_t step = store::kStepUnknown;
    uint32_t task = store::kTaskUnknown;  // the parent's Slurm task, as the table had it at the fork
    std::string parent_command;           // comm before an exec: the parent's
    int ticks_since_exit = 0;             // kept a few ticks after its exit for late file and connect aggregates
    int ticks_gone = 0;                   // ticks it has been gone without an exit event
    bool parent_credited = false;         // its CPU and bytes were taken out of its parent's (once)
    int exit_waits = 0;                   // ticks its exit waited for the exit events of children it reaped
  };

  void absorb(const events::Drained& d, const ProcessTable& table);
  // merge()'s steps, in this order.
  void add_files_and_connections(const events::Drained& d, const ProcessTable& table, store::Batch& batch);
  void credit_parents(ProcessTable& table);
  std::set<uint32_t> hold_for_children(ProcessTable& table);  // returns the exiting parents that wait for them
  void apply_in_birth_order(ProcessTable& table, store::Batch& batch, const std::set<uint32_t>& awaiting_children);
  std::vector<uint32_t> latest_born_first() const;  // pending pids, children before the parents that bore them
  uint64_t start_ticks_of(uint32_t pid, Pending* pending, const ProcessTable& table);
  store::ProcessRecord event_record(uint32_t pid, const Pending& p) const;

  std::function<void(const std::string&)> log_;
  State state_ = State::Loading;
  std::string unavailable_;
  std::unique_ptr<events::EventCollector> collector_;
  // The loader thread's results, taken by finish_loading() once loaded_ is set.
  std::unique_ptr<events::EventCollector> loaded_collector_;
  std::string loaded_reason_;
  double loaded_ms_ = 0;
  std::atomic<bool> loaded_{false};
  UniqueFd loading_fd_;  // eventfd, written by the loader when it is done
  std::thread loader_;
  double load_ms_ = 0;
  std::map<uint32_t, Pending> pending_;          // by pid
  std::vector<store::ProcessUpdate> unwritten_;  // event-only records not yet committed
  int64_t boot_epoch_ns_ = 0;
  uint64_t ns_per_tick_ = 10'000'000;
  uint64_t drains_ = 0;
  uint64_t late_ = 0;  // not yet added to the job record
};

}  // namespace bc::monitor
