// The batches the process-level store tests write, shared by the writer program and the tests that check
// what it left behind. Every value is a pure function of its inputs.
#pragma once

#include <cstdint>
#include <string>

#include "accounting_db/store.hpp"

namespace bc::store::crash_model {

inline constexpr int64_t kT0 = 1'800'000'000;
inline constexpr int64_t kStep = 7;  // seconds between crash batches: minutes close every few batches
inline constexpr int kCrashProcs = 30;
inline constexpr uint64_t kCrashJob = 1;

inline OpenOptions writer_options() {
  OpenOptions o;
  o.config_path = "";
  o.retention = Retention{600, 172800, 10368000, 0};  // seconds expire all the time
  o.initial_map_bytes = 1 << 20;                      // and the map grows all the time
  o.map_growth_step_bytes = 1 << 20;
  o.disk_reserve_bytes = 1 << 20;
  return o;  // default durability
}

inline int64_t crash_time(uint64_t seq) { return kT0 + static_cast<int64_t>(seq) * kStep; }
inline uint64_t crash_job_cpu(uint64_t seq) { return seq * 1'000'000'000ULL; }
inline uint64_t crash_proc_cpu(uint64_t seq, int i) { return seq * static_cast<uint64_t>(i + 1) * 10'000'000ULL; }

inline ProcessRecord crash_process(int i) {
  ProcessRecord p;
  p.pid = static_cast<uint32_t>(100 + i);
  p.ppid = 1;
  p.step = 0;
  p.start_ticks = static_cast<uint64_t>(i);
  p.start_ms = kT0 * 1000;
  p.command = "worker";
  p.argv = {"worker", std::to_string(i)};
  return p;
}

// Batch `seq` (from 1): the job's tick `seq`, 30 processes, and every fifth batch a late point of
// process 0 between two earlier ticks plus a duplicate of an earlier job-total point.
inline Batch make_batch(uint64_t seq) {
  Batch b;
  const int64_t t = crash_time(seq);
  b.job.job_id = kCrashJob;
  b.job.node = "n1";
  b.job.user = "crash";
  b.job.start_ms = kT0 * 1000;
  b.job.last_sample_ms = t * 1000;
  b.job.sample_count = seq;
  b.job_sample = Sample{0, t, crash_job_cpu(seq), (seq % 100) * 4096, seq * 512, 0};
  for (int i = 0; i < kCrashProcs; ++i) {
    ProcessUpdate u;
    u.record = crash_process(i);
    u.record.cpu_ns = crash_proc_cpu(seq, i);
    u.sample = Sample{0, t, crash_proc_cpu(seq, i), 1 << 20, 0, 0};
    b.processes.push_back(u);
  }
  if (seq % 5 == 0 && seq > 3) {
    ProcessUpdate late;
    late.record = crash_process(0);
    late.record.cpu_ns = crash_proc_cpu(seq, 0);
    late.sample = Sample{0, crash_time(seq - 3) + 3, crash_proc_cpu(seq - 3, 0) + 1, 1 << 20, 0, 0};
    b.processes.push_back(late);
  }
  return b;
}

// Tick k of a job in the concurrency test.
inline Batch tick_batch(uint64_t job, const std::string& node, int k, int procs) {
  Batch b;
  const int64_t t = kT0 + k;
  b.job.job_id = job;
  b.job.node = node;
  b.job.sample_count = static_cast<uint64_t>(k) + 1;
  b.job.last_sample_ms = t * 1000;
  b.job_sample = Sample{0, t, static_cast<uint64_t>(k) * 1'000'000'000ULL, 4096, 0, 0};
  for (int i = 0; i < procs; ++i) {
    ProcessUpdate u;
    u.record = crash_process(i);
    u.record.cpu_ns = static_cast<uint64_t>(k) * 10'000'000ULL;
    u.sample = Sample{0, t, u.record.cpu_ns, 1 << 20, 0, 0};
    b.processes.push_back(u);
  }
  return b;
}

}  // namespace bc::store::crash_model
