// bench/store: a synthetic job, batched the way the monitor batches it (one Batch per tick with the job
// record, the job-total sample and every changed process with its record and sample).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "accounting_db/store.hpp"

namespace bc::bench {

struct SyntheticJob {
  uint64_t job_id = 1000;
  std::string node = "node001";
  int processes = 1000;
  int64_t start_s = 1'800'000'000;  // 2027-01-15, aligned to nothing in particular
  uint64_t seed = 42;

  void init() {
    rng.seed(seed);
    procs.clear();
    threads.clear();
    for (int i = 0; i < processes; ++i) {
      store::ProcessRecord p;
      p.job_id = job_id;
      p.node = node;
      p.pid = static_cast<uint32_t>(10000 + i);
      p.ppid = 9999;
      p.step = 0;
      p.start_ticks = 5000000 + static_cast<uint64_t>(i);
      p.start_ms = start_s * 1000;
      p.command = "solver";
      p.exe = "/opt/app/bin/solver";
      p.argv = {"/opt/app/bin/solver", "--input", "/scratch/case" + std::to_string(i % 17) + ".dat", "--threads", "1"};
      p.rss = (64ULL << 20) + (static_cast<uint64_t>(i) << 12);
      p.max_rss = p.rss;
      procs.push_back(p);
      load.push_back(50 + static_cast<int>(rng() % 51));  // % of a core this process tends to use
    }
    job.job_id = job_id;
    job.node = node;
    job.uid = 1000;
    job.user = "alice";
    job.steps = {0, store::kStepBatch};
    job.start_ms = start_s * 1000;
    job.cgroup_version = 1;
    job.has_cgroup_cpu = true;
    job.has_cgroup_memory = true;
  }

  // The batch of tick `k` (time start_s + k).
  store::Batch tick(int64_t k) {
    const int64_t t = start_s + k;
    store::Batch b;
    uint64_t cpu_sum = 0, rss_sum = 0, rd_sum = 0, wr_sum = 0, threads_sum = 0;
    b.processes.reserve(procs.size());
    for (size_t i = 0; i < procs.size(); ++i) {
      auto& p = procs[i];
      // CPU in clock ticks (10 ms), around the process's load.
      int ticks = load[i] + static_cast<int>(rng() % 21) - 10;
      ticks = std::max(0, std::min(100, ticks));
      p.cpu_ns += static_cast<uint64_t>(ticks) * 10'000'000ULL;
      // RSS moves by a few pages now and then.
      const uint64_t r = rng();
      if (r % 8 == 0) p.rss += ((r >> 8) % 64) * 4096;
      if (r % 8 == 1 && p.rss > (64ULL << 20)) p.rss -= ((r >> 8) % 64) * 4096;
      p.max_rss = std::max(p.max_rss, p.rss);
      // Occasional I/O.
      if (r % 50 == 2) p.read_bytes += ((r >> 16) % 256 + 1) * 4096;
      if (r % 100 == 3) p.write_bytes += ((r >> 24) % 128 + 1) * 4096;
      // 1 to 4 threads, and 2 more for a while now and then (a thread count changes rarely).
      const auto base_threads = static_cast<uint32_t>(1 + i % 4);
      if (threads.size() <= i) threads.push_back(base_threads);
      if (r % 97 == 5) threads[i] = threads[i] == base_threads ? base_threads + 2 : base_threads;
      p.max_threads = std::max(p.max_threads, threads[i]);
      threads_sum += threads[i];
      cpu_sum += p.cpu_ns;
      rss_sum += p.rss;
      rd_sum += p.read_bytes;
      wr_sum += p.write_bytes;
      store::ProcessUpdate u;
      u.record = p;
      u.sample = store::Sample{0, t, p.cpu_ns, p.rss, p.read_bytes, p.write_bytes, threads[i]};
      b.processes.push_back(std::move(u));
    }
    if (job.end_ms)  // the final tick: every process has ended, as in a finished job
      for (auto& u : b.processes) u.record.end_ms = job.end_ms;
    job.last_sample_ms = t * 1000;
    job.cgroup_cpu_ns = cpu_sum;
    job.cgroup_mem_current = rss_sum;
    job.cgroup_mem_peak = std::max(job.cgroup_mem_peak, rss_sum);
    job.max_rss_sum = std::max(job.max_rss_sum, rss_sum);
    ++job.sample_count;
    b.job = job;
    b.job_sample = store::Sample{0, t, cpu_sum, rss_sum, rd_sum, wr_sum, static_cast<uint32_t>(threads_sum)};
    return b;
  }

  // After a committed batch, keep the series ids the store gave (as the monitor's process table does).
  void commit(const store::Batch& b) {
    for (size_t i = 0; i < procs.size(); ++i) procs[i].series_id = b.processes[i].record.series_id;
  }

  std::mt19937_64 rng;
  std::vector<store::ProcessRecord> procs;
  std::vector<uint32_t> threads;  // each process's at the last tick
  std::vector<int> load;
  store::JobRecord job;
};

}  // namespace bc::bench
