// Internal to accounting_db: how points become rollup buckets, and how buckets merge. The brute-force
// reference in the tests implements the same rules independently.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "accounting_db/codec.hpp"
#include "accounting_db/store.hpp"

namespace bc::store::rollup {

inline int64_t floor_to(int64_t t, int64_t width) { return t - (t % width); }

// Adds point p to bucket b. prev is the series' point before p, or null for the series' first point.
inline void add_point(Rollup& b, const codec::Point& p, const codec::Point* prev) {
  ++b.samples;
  b.rss_sum += p.rss;
  b.rss_max = std::max(b.rss_max, p.rss);
  b.threads_sum += p.threads;
  b.threads_max = std::max(b.threads_max, p.threads);
  if (!prev) {
    b.cpu_ns += p.cpu;
    b.read_bytes += p.rd;
    b.write_bytes += p.wr;
    return;
  }
  const uint64_t dcpu = p.cpu >= prev->cpu ? p.cpu - prev->cpu : 0;
  b.cpu_ns += dcpu;
  b.read_bytes += p.rd >= prev->rd ? p.rd - prev->rd : 0;
  b.write_bytes += p.wr >= prev->wr ? p.wr - prev->wr : 0;
  const auto dt = static_cast<uint64_t>(p.t - prev->t);
  if (dt == 0) return;  // cannot happen for ordered points; guards the division
  b.timed_cpu_ns += dcpu;
  b.wall_s += dt;
  b.cpu_rate_max = std::max(b.cpu_rate_max, dcpu / dt);
}

inline void merge(Rollup& into, const Rollup& b) { into.merge(b); }

// The rollup of a run of points (all in one bucket) whose first point follows `base` (or starts the series).
inline Rollup of_points(const std::vector<codec::Point>& points, const codec::Point* base) {
  Rollup r;
  const codec::Point* prev = base;
  for (const auto& p : points) {
    add_point(r, p, prev);
    prev = &p;
  }
  return r;
}

// Merge of every bucket in a chunk, or nothing.
inline Rollup merge_all(const codec::Buckets& buckets) {
  Rollup r;
  for (const auto& [index, b] : buckets) merge(r, b);
  return r;
}

// Replaces (or inserts) bucket `index`, keeping the list sorted.
inline void set_bucket(codec::Buckets& buckets, uint32_t index, const Rollup& value) {
  auto it =
      std::lower_bound(buckets.begin(), buckets.end(), index, [](const auto& e, uint32_t i) { return e.first < i; });
  if (it != buckets.end() && it->first == index) {
    it->second = value;
  } else {
    buckets.insert(it, {index, value});
  }
}

}  // namespace bc::store::rollup
