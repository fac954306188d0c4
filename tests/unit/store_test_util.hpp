// Helpers shared by the store tests: temporary stores and a brute-force rollup reference.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "accounting_db/store.hpp"

namespace bc::store::testing {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char t[] = "/tmp/bc-store-XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string store() const { return (path / "node.lmdb").string(); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// Options independent of the machine's config file and environment.
inline OpenOptions test_options(Retention retention = Retention{0, 0, 0, 0}) {
  OpenOptions o;
  o.config_path = "";
  o.retention = retention;
  o.durability = Durability::NoSync;
  o.initial_map_bytes = 64ULL << 20;
  o.disk_reserve_bytes = 1ULL << 20;
  return o;
}

// One tick of a job on a node: `procs` processes (pids 1..procs), each with a sample whose CPU grows with t,
// and the job's own sample. end_ms: the node's end (0 while running).
inline Batch busy_tick(uint64_t job, const std::string& node, int64_t t, uint32_t procs, int64_t end_ms = 0) {
  Batch b;
  b.job.job_id = job;
  b.job.node = node;
  b.job.user = "alice";
  b.job.start_ms = 1'700'000'000'000;
  b.job.last_sample_ms = t * 1000;
  b.job.end_ms = end_ms;
  b.job_sample = Sample{0, t, static_cast<uint64_t>(t) * 1000, 1 << 20, 0, 0};
  for (uint32_t p = 1; p <= procs; ++p) {
    ProcessUpdate u;
    u.record.pid = p;
    u.record.ppid = 1;
    u.record.start_ticks = p;
    u.record.command = "worker";
    u.record.argv = {"worker", std::to_string(p)};
    u.record.cpu_ns = static_cast<uint64_t>(t) * 1000 + p;
    u.record.max_rss = 2 << 20;
    u.sample = Sample{0, t, u.record.cpu_ns, 1 << 20, 0, 0};
    b.processes.push_back(u);
  }
  return b;
}

struct RefPoint {
  int64_t t;
  uint64_t cpu, rss, rd, wr;
  uint32_t threads = 0;
};

// The rollup rules, written independently of accounting_db/rollup.hpp: each point's counter increases
// (from the series' previous point; from zero for its first) belong to the bucket of the point; a
// decrease adds nothing; CPU rate is the increase over the time step. RSS and threads are gauges: summed
// over the bucket's points for the mean, and their maximum.
inline std::vector<Rollup> reference_rollup(const std::vector<RefPoint>& sorted_points, int64_t width) {
  std::map<int64_t, Rollup> buckets;
  const RefPoint* prev = nullptr;
  for (const auto& p : sorted_points) {
    const int64_t start = p.t - p.t % width;
    Rollup& b = buckets[start];
    b.start_s = start;
    b.width_s = width;
    b.samples += 1;
    b.rss_sum += p.rss;
    b.rss_max = std::max(b.rss_max, p.rss);
    b.threads_sum += p.threads;
    b.threads_max = std::max(b.threads_max, p.threads);
    auto inc = [](uint64_t now, uint64_t before) { return now > before ? now - before : 0; };
    if (prev) {
      const uint64_t dcpu = inc(p.cpu, prev->cpu);
      b.cpu_ns += dcpu;
      b.timed_cpu_ns += dcpu;
      b.wall_s += static_cast<uint64_t>(p.t - prev->t);
      b.cpu_rate_max = std::max(b.cpu_rate_max, dcpu / static_cast<uint64_t>(p.t - prev->t));
      b.read_bytes += inc(p.rd, prev->rd);
      b.write_bytes += inc(p.wr, prev->wr);
    } else {
      b.cpu_ns += p.cpu;
      b.read_bytes += p.rd;
      b.write_bytes += p.wr;
    }
    prev = &p;
  }
  std::vector<Rollup> out;
  for (auto& [start, b] : buckets) out.push_back(b);
  return out;
}

inline std::string describe(const Rollup& b) {
  return "{start " + std::to_string(b.start_s) + " w " + std::to_string(b.width_s) + " n " + std::to_string(b.samples) +
         " cpu " + std::to_string(b.cpu_ns) + " timed " + std::to_string(b.timed_cpu_ns) + " wall " +
         std::to_string(b.wall_s) + " rate " + std::to_string(b.cpu_rate_max) + " rss_sum " +
         std::to_string(b.rss_sum) + " rss_max " + std::to_string(b.rss_max) + " rd " + std::to_string(b.read_bytes) +
         " wr " + std::to_string(b.write_bytes) + " threads_sum " + std::to_string(b.threads_sum) + " threads_max " +
         std::to_string(b.threads_max) + "}";
}

}  // namespace bc::store::testing
