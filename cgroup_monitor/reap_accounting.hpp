// How the CPU time and bytes of a tree of processes are counted once, whatever sampling sees of it.
//
// The kernel folds a child into the parent that reaps it (cutime and cstime in /proc/PID/stat, and
// /proc/PID/io), together with everything the child had folded in itself. A process's record therefore
// shows its own figures plus its unseen part: what it folded in that no record of a child holds (children
// that lived less than an interval).
//
// The rule: a reaped process credits its reaper with what records hold of it, its own record plus all it
// was credited itself (accounted = the larger of its inclusive figures and own + credited). The reaper's
// unseen part is its inclusive figures less its own and less that credit, never below zero. What sampling
// missed of a child (its CPU after its last sample, a grandchild it reaped after that sample) is then in
// the reaper's inclusive figures but in no credit, so it lands once, in the reaper; and what a child's
// records hold is never charged again to the reaper. Credit that arrives after a process was reaped (its
// own child's, seen later) passes on up to its reaper. That holds at any depth and in any order of exits.
#pragma once

#include <cstdint>
#include <map>
#include <set>

namespace bc::monitor {

struct Counters {
  uint64_t cpu_ns = 0;
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;

  Counters& operator+=(const Counters& o) {
    cpu_ns += o.cpu_ns;
    read_bytes += o.read_bytes;
    write_bytes += o.write_bytes;
    return *this;
  }
  bool operator==(const Counters&) const = default;
};

class ReapAccounting {
 public:
  // A reading of a process: its own figures and its inclusive ones (own plus every child it reaped). Both
  // only grow, so a lower reading changes nothing; inclusive is kept at least own.
  void observe(uint32_t pid, const Counters& own, const Counters& inclusive);
  // Its bytes at exit, as /proc/PID/io gives them (reaped children included): its own are those less its
  // children's part, the larger of what the last reading and the credit say of them.
  void observe_inclusive_bytes_at_exit(uint32_t pid, uint64_t read_bytes, uint64_t write_bytes);
  // Its final inclusive figures, from the process that reaped it (slurmstepd, for a task). Nothing if the
  // accounting does not have it.
  void observe_final(uint32_t pid, const Counters& inclusive);
  // The process that will reap it (its current parent). A reaper the accounting does not have (slurmstepd,
  // init, a parent never seen) gets no credit: its figures are no record's.
  void set_reaper(uint32_t pid, uint32_t reaper);
  // The process is reaped: from now on its reaper holds credit for all its records hold.
  void reaped(uint32_t pid);
  // A reaped child with a record elsewhere (an eBPF exit event's), never observed here: its inclusive figures.
  void credit(uint32_t pid, const Counters& child);

  bool has(uint32_t pid) const { return entries_.count(pid) != 0; }
  bool is_reaped(uint32_t pid) const;
  // The reapers of processes not yet reaped: their entries must stay, or that credit would be lost.
  std::set<uint32_t> awaited_reapers() const;
  // What the process's record shows: own plus unseen.
  Counters recorded(uint32_t pid) const;
  // Forgets a process (its record is written for good); credit still due to it is dropped.
  void forget(uint32_t pid) { entries_.erase(pid); }

 private:
  struct Entry {
    Counters own;
    Counters inclusive;
    Counters credited;  // what records of reaped children hold
    Counters given;     // what has been credited to the reaper so far
    uint32_t reaper = 0;
    bool reaped = false;
  };
  static Counters accounted(const Entry& e);
  void settle(uint32_t pid);  // pass credit still due up the chain of reaped processes

  std::map<uint32_t, Entry> entries_;
};

}  // namespace bc::monitor
