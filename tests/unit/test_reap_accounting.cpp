// The credit rule of ReapAccounting against a model of the kernel: random trees of processes with random
// lifetimes, forks, exits, orphans and reaps, sampled at random instants the way ProcessTable samples /proc
// (one process after another in birth order, the world moving on between two reads; pids are random). The sum of the
// records must never exceed what the processes used, and at the end must equal it exactly for every task whose final
// figures slurmstepd passed on (cgroup_monitor/reap_accounting.hpp has the rule).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "cgroup_monitor/reap_accounting.hpp"

using bc::monitor::Counters;
using bc::monitor::ReapAccounting;

namespace {

constexpr uint32_t kStepd = 1;  // slurmstepd: reaps the tasks and the orphans, never observed

struct Process {
  uint32_t parent = kStepd;
  bool alive = true, zombie = false, reaped = false;
  uint64_t own = 0;              // CPU it used itself
  uint64_t reaped_children = 0;  // cutime: own + reaped_children of each child it reaped, at the reap
  uint64_t born = 0;             // start time: a child is always born after its parent
};

// One random job: the kernel's side (processes) and the monitor's (the accounting and the sampler's state).
class SimulatedJob {
 public:
  // finals: slurmstepd passes on each task's final figures. orphans: a process may end before its children.
  SimulatedJob(uint32_t seed, bool finals, bool orphans) : rng_(seed), finals_(finals), orphans_(orphans) {
    const int tasks = 1 + static_cast<int>(rng_() % 3);
    for (int i = 0; i < tasks; ++i) spawn(kStepd);
  }

  // Runs the job to its end, sampling in between.
  void run() {
    int until_sample = 1;
    while (!all_reaped()) {
      step();
      if (--until_sample == 0) {
        sample();
        until_sample = 1 + static_cast<int>(rng_() % 8);
        ASSERT_LE(recorded_sum(), used()) << "the records hold more CPU than the processes used";
      }
    }
    sample();  // the monitor's last tick, after the job
    sample();
    ASSERT_LE(recorded_sum(), used());
    if (finals_) {
      EXPECT_EQ(recorded_sum(), countable()) << "every CPU unit of a task observed is counted once";
    }
  }

 private:
  uint32_t spawn(uint32_t parent) {
    uint32_t pid;
    do {
      pid = 2 + static_cast<uint32_t>(rng_() % 100000);  // random pids: reading order is not birth order
    } while (procs_.count(pid));
    procs_[pid].parent = parent;
    procs_[pid].born = ++births_;
    return pid;
  }

  bool chance(unsigned percent) { return rng_() % 100 < percent; }

  // One unit of time: the processes run, fork, exit and reap.
  void step() {
    std::vector<uint32_t> pids;
    for (const auto& [pid, p] : procs_) pids.push_back(pid);
    for (uint32_t pid : pids) {
      Process& p = procs_.at(pid);
      if (p.alive) {
        p.own += rng_() % 4;
        if (procs_.size() < 40 && chance(8)) {
          spawn(pid);
        } else if (chance(6) && (orphans_ || !has_children(pid))) {
          exit(pid);
        }
      } else if (p.zombie && chance(50)) {
        reap(pid);
      }
    }
  }

  void exit(uint32_t pid) {
    Process& p = procs_.at(pid);
    p.alive = false;
    p.zombie = true;
    for (auto& [child, c] : procs_)
      if (c.parent == pid && !c.reaped) c.parent = kStepd;  // orphans go to the subreaper
  }

  void reap(uint32_t pid) {
    Process& p = procs_.at(pid);
    if (p.parent != kStepd && !procs_.at(p.parent).alive) return;  // a zombie parent reaps nothing
    p.zombie = false;
    p.reaped = true;
    if (p.parent != kStepd) {
      procs_.at(p.parent).reaped_children += p.own + p.reaped_children;
      return;
    }
    // slurmstepd reaped it: it passes on the final figures it got, for a process the monitor has.
    const uint64_t inclusive = p.own + p.reaped_children;
    if (accounting_.has(pid)) {
      stepd_reaped_observed_ += inclusive;
      if (finals_) finals_due_.emplace_back(pid, inclusive);  // the monitor takes them at its next tick
    }
  }

  // As ProcessTable::sample: read every tracked process that is not gone, oldest first, the world moving on
  // in between;
  // then the reaped ones credit their reapers; then new processes are taken up; gone ones are forgotten.
  void sample() {
    for (const auto& [pid, inclusive] : finals_due_) accounting_.observe_final(pid, Counters{inclusive, 0, 0});
    finals_due_.clear();
    std::vector<uint32_t> newly_gone;
    std::vector<uint32_t> in_birth_order(tracked_.begin(), tracked_.end());
    std::sort(in_birth_order.begin(), in_birth_order.end(),
              [&](uint32_t a, uint32_t b) { return procs_.at(a).born < procs_.at(b).born; });
    for (uint32_t pid : in_birth_order) {
      if (gone_.count(pid)) continue;
      if (chance(20)) step();
      read(pid, newly_gone);
    }
    for (uint32_t pid : newly_gone) accounting_.reaped(pid);
    for (const auto& [pid, p] : procs_) {
      if (p.reaped || tracked_.count(pid)) continue;
      tracked_.insert(pid);
      std::vector<uint32_t> ignored;
      read(pid, ignored);
    }
    const std::set<uint32_t> awaited = accounting_.awaited_reapers();
    for (auto it = tracked_.begin(); it != tracked_.end();) {
      const uint32_t pid = *it;
      const bool final_due =
          std::any_of(finals_due_.begin(), finals_due_.end(), [pid](auto& f) { return f.first == pid; });
      if (gone_.count(pid) && !awaited.count(pid) && !final_due) {
        forgotten_ += accounting_.recorded(pid).cpu_ns;
        accounting_.forget(pid);
        gone_.erase(pid);
        it = tracked_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void read(uint32_t pid, std::vector<uint32_t>& newly_gone) {
    const Process& p = procs_.at(pid);
    if (p.reaped) {
      gone_.insert(pid);
      newly_gone.push_back(pid);
      return;
    }
    accounting_.observe(pid, Counters{p.own, 0, 0}, Counters{p.own + p.reaped_children, 0, 0});
    accounting_.set_reaper(pid, p.parent);
  }

  bool has_children(uint32_t pid) const {
    return std::any_of(procs_.begin(), procs_.end(),
                       [pid](const auto& e) { return e.second.parent == pid && !e.second.reaped; });
  }
  bool all_reaped() const {
    return std::all_of(procs_.begin(), procs_.end(), [](const auto& e) { return e.second.reaped; });
  }
  uint64_t used() const {
    uint64_t sum = 0;
    for (const auto& [pid, p] : procs_) sum += p.own;
    return sum;
  }
  // What records can hold: the subtrees slurmstepd reaped of the processes the monitor observed.
  uint64_t countable() const { return stepd_reaped_observed_; }
  uint64_t recorded_sum() const {
    uint64_t sum = forgotten_;
    for (uint32_t pid : tracked_) sum += accounting_.recorded(pid).cpu_ns;
    return sum;
  }

  std::mt19937 rng_;
  bool finals_, orphans_;
  std::map<uint32_t, Process> procs_;
  ReapAccounting accounting_;
  std::set<uint32_t> tracked_, gone_;
  uint64_t forgotten_ = 0;
  uint64_t stepd_reaped_observed_ = 0;
  uint64_t births_ = 0;
  std::vector<std::pair<uint32_t, uint64_t>> finals_due_;  // pid, inclusive CPU at its reap
};

}  // namespace

TEST(ReapAccounting, RandomTreesSumToWhatTheTasksUsedWhenTheirFinalFiguresCome) {
  for (uint32_t seed = 1; seed <= 3000; ++seed) {
    SCOPED_TRACE(seed);
    SimulatedJob(seed, true, false).run();
    if (HasFailure()) return;
  }
}

TEST(ReapAccounting, RandomTreesNeverCountTwiceWithoutFinalFigures) {
  for (uint32_t seed = 1; seed <= 3000; ++seed) {
    SCOPED_TRACE(seed);
    SimulatedJob(seed, false, true).run();
    if (HasFailure()) return;
  }
}

// The case the field found (issue: wrapper chains summed to 1.65x the job): a grandchild reaped after its
// parent's last sample, then the parent reaped, both seen gone in the same tick.
TEST(ReapAccounting, AGrandchildReapedAfterItsParentsLastSampleIsNotChargedTwice) {
  ReapAccounting a;
  a.observe(10, {100, 0, 0}, {100, 0, 0});  // the wrapper P
  a.observe(20, {50, 0, 0}, {50, 0, 0});    // its child C, last sampled before it reaped G
  a.set_reaper(20, 10);
  a.observe(30, {300, 0, 0}, {300, 0, 0});  // the grandchild G, the busy one
  a.set_reaper(30, 20);
  // G ends (320), C reaps it, C ends (60), P reaps C: P's reaped-children total is 60 + 320.
  a.observe(10, {100, 0, 0}, {100 + 60 + 320, 0, 0});
  a.reaped(20);
  a.reaped(30);
  const uint64_t sum = a.recorded(10).cpu_ns + a.recorded(20).cpu_ns + a.recorded(30).cpu_ns;
  EXPECT_EQ(sum, 100u + 60 + 320);
  EXPECT_EQ(a.recorded(30).cpu_ns, 300u);  // what sampling saw of G; its last 20 land in P, once
}

TEST(ReapAccounting, ALaterCreditToAReapedProcessPassesUp) {
  ReapAccounting a;
  a.observe(10, {0, 0, 0}, {0, 0, 0});
  a.observe(20, {10, 0, 0}, {10, 0, 0});
  a.set_reaper(20, 10);
  a.reaped(20);
  EXPECT_EQ(a.recorded(10).cpu_ns, 0u);
  a.credit(20, {40, 0, 0});  // a child of 20 with an event record of its own, reported late
  a.observe(10, {0, 0, 0}, {50, 0, 0});
  EXPECT_EQ(a.recorded(10).cpu_ns + a.recorded(20).cpu_ns + 40, 50u);
}
