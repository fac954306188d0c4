// The processes of one job as seen by /proc sampling. Each tracked process keeps its /proc fds open:
// an fd stays bound to the task it was opened for, so a reused pid can never be mistaken for it, and
// pread on a kept fd costs a third of open+read+close.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <optional>

#include "cgroup_reader.hpp"
#include "fd.hpp"
#include "store.hpp"

namespace bc::monitor {

struct ProcessTotals {
  uint64_t cpu_ns = 0;  // every process seen, ended ones included
  uint64_t live_rss = 0;
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

  // After a successful write: forget ended processes, keep the series ids the store assigned.
  void commit(const store::Batch& batch);

 private:
  struct Tracked {
    store::ProcessRecord record;
    UniqueFd stat_fd, status_fd;
    // /proc/PID/io adds the I/O of reaped children to the parent, which would count a child's bytes twice.
    // The per-thread files hold each thread's own bytes: the leader's is kept open, other threads are read
    // only while the process has any, and the last bytes of threads that ended are kept in ended_threads.
    UniqueFd leader_io_fd;
    std::map<uint32_t, IoBytes> other_threads;
    IoBytes ended_threads;
    bool ended = false;
    bool changed = true;
  };
  bool refresh(Tracked& t);  // false once the process has exited
  void read_identity(Tracked& t);  // argv and exe, again after an exec
  std::optional<IoBytes> own_io(Tracked& t, uint64_t num_threads);
  void track(const MemberPid& member, int64_t now_ms);

  std::string proc_root_;
  long ticks_per_second_;
  uint64_t page_size_;
  int64_t boot_epoch_ms_;
  std::map<uint32_t, Tracked> tracked_;  // by pid
  uint64_t ended_cpu_ns_ = 0, ended_read_ = 0, ended_write_ = 0;
};

}  // namespace bc::monitor
