#include "cgroup_monitor/reap_accounting.hpp"

#include <algorithm>

namespace bc::monitor {
namespace {

uint64_t minus_floor0(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

Counters max_of(const Counters& a, const Counters& b) {
  return {std::max(a.cpu_ns, b.cpu_ns), std::max(a.read_bytes, b.read_bytes), std::max(a.write_bytes, b.write_bytes)};
}

Counters sum(Counters a, const Counters& b) { return a += b; }

}  // namespace

Counters ReapAccounting::accounted(const Entry& e) { return max_of(e.inclusive, sum(e.own, e.credited)); }

void ReapAccounting::observe(uint32_t pid, const Counters& own, const Counters& inclusive) {
  Entry& e = entries_[pid];
  e.own = max_of(e.own, own);
  e.inclusive = max_of(max_of(e.inclusive, inclusive), e.own);
  if (e.reaped) settle(pid);
}

void ReapAccounting::observe_inclusive_bytes_at_exit(uint32_t pid, uint64_t read_bytes, uint64_t write_bytes) {
  Entry& e = entries_[pid];
  auto raise = [](uint64_t& own, uint64_t& inclusive, uint64_t credited, uint64_t at_exit) {
    const uint64_t children = std::max(inclusive - own, credited);
    own = std::max(own, minus_floor0(at_exit, children));
    inclusive = std::max(inclusive, at_exit);
  };
  raise(e.own.read_bytes, e.inclusive.read_bytes, e.credited.read_bytes, read_bytes);
  raise(e.own.write_bytes, e.inclusive.write_bytes, e.credited.write_bytes, write_bytes);
  if (e.reaped) settle(pid);
}

void ReapAccounting::observe_final(uint32_t pid, const Counters& inclusive) {
  if (has(pid)) observe(pid, Counters{}, inclusive);
}

void ReapAccounting::set_reaper(uint32_t pid, uint32_t reaper) {
  auto it = entries_.find(pid);
  if (it != entries_.end() && !it->second.reaped) it->second.reaper = reaper;
}

void ReapAccounting::reaped(uint32_t pid) {
  auto it = entries_.find(pid);
  if (it == entries_.end() || it->second.reaped) return;
  it->second.reaped = true;
  settle(pid);
}

void ReapAccounting::credit(uint32_t pid, const Counters& child) {
  auto it = entries_.find(pid);
  if (it == entries_.end()) return;
  it->second.credited += child;
  if (it->second.reaped) settle(pid);
}

bool ReapAccounting::is_reaped(uint32_t pid) const {
  auto it = entries_.find(pid);
  return it != entries_.end() && it->second.reaped;
}

std::set<uint32_t> ReapAccounting::awaited_reapers() const {
  std::set<uint32_t> reapers;
  for (const auto& [pid, e] : entries_)
    if (!e.reaped) reapers.insert(e.reaper);
  return reapers;
}

Counters ReapAccounting::recorded(uint32_t pid) const {
  auto it = entries_.find(pid);
  if (it == entries_.end()) return {};
  const Entry& e = it->second;
  auto part = [](uint64_t own, uint64_t inclusive, uint64_t credited) {
    return own + minus_floor0(inclusive - own, credited);
  };
  return {part(e.own.cpu_ns, e.inclusive.cpu_ns, e.credited.cpu_ns),
          part(e.own.read_bytes, e.inclusive.read_bytes, e.credited.read_bytes),
          part(e.own.write_bytes, e.inclusive.write_bytes, e.credited.write_bytes)};
}

void ReapAccounting::settle(uint32_t pid) {
  // Every figure only grows, so accounted() does too, and each step passes on only what is new. Reused pids
  // could in theory make a loop of reapers: no chain is longer than the entries.
  size_t steps = entries_.size();
  for (auto it = entries_.find(pid); it != entries_.end() && it->second.reaped && steps-- > 0;) {
    Entry& e = it->second;
    auto reaper = entries_.find(e.reaper);
    if (reaper == entries_.end() || reaper == it) return;
    const Counters now = accounted(e);
    const Counters due{minus_floor0(now.cpu_ns, e.given.cpu_ns), minus_floor0(now.read_bytes, e.given.read_bytes),
                       minus_floor0(now.write_bytes, e.given.write_bytes)};
    if (due == Counters{}) return;
    e.given += due;
    reaper->second.credited += due;
    it = reaper;
  }
}

}  // namespace bc::monitor
