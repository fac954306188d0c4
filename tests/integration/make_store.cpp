// bc-make-store: writes fixture jobs into a store through the store API, for tests of its readers.
//   bc-make-store PATH JOB:USER:UID:running|done[:gpu] ...
// With :gpu the job had a GPU (60% busy, 2 GiB of 80 GiB at most, 250 W) and its worker 1.5 GiB on it, at
// half its SMs: figures and a minute of series, a point a second.
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "accounting_db/store.hpp"

int main(int argc, char** argv) try {
  if (argc < 3) {
    std::fputs("usage: bc-make-store PATH JOB:USER:UID:running|done[:gpu] ...\n", stderr);
    return 2;
  }
  auto db = bc::store::Store::open(argv[1]);
  for (int i = 2; i < argc; ++i) {
    std::vector<std::string> f;
    std::stringstream in(argv[i]);
    for (std::string part; std::getline(in, part, ':');) f.push_back(part);
    const bool gpu = f.size() == 5 && f[4] == "gpu";
    if (f.size() != 4 && !gpu) {
      std::fprintf(stderr, "bad spec '%s'\n", argv[i]);
      return 2;
    }
    const int64_t start = 1764000000000 + std::stoll(f[0]) * 1000;
    bc::store::Batch b;
    b.job.job_id = std::stoull(f[0]);
    b.job.node = "n1";
    b.job.user = f[1];
    b.job.uid = static_cast<uint32_t>(std::stoul(f[2]));
    b.job.steps = {bc::store::kStepBatch};
    b.job.start_ms = start;
    b.job.end_ms = f[3] == "done" ? start + 60000 : 0;
    b.job.has_cgroup_cpu = true;
    b.job.cgroup_cpu_ns = 2500000000ULL;
    for (uint32_t pid = 100; pid < 102; ++pid) {
      bc::store::ProcessRecord p;
      p.pid = pid;
      p.ppid = pid == 100 ? 1 : 100;
      p.step = bc::store::kStepBatch;
      p.start_ticks = pid;
      p.start_ms = start;
      p.end_ms = b.job.end_ms;
      p.command = pid == 100 ? "bash" : "work";
      p.argv = {p.command};
      p.cpu_ns = 1250000000ULL;
      p.rss = 1 << 20;
      p.max_rss = 2 << 20;
      p.write_bytes = 4096;
      if (gpu && pid == 101) {
        p.gpu_memory_max = 3ULL << 29;
        p.gpu_sm_ns = 30'000'000'000;
      }
      b.processes.push_back({p, bc::store::Sample{0, start / 1000, p.cpu_ns, p.rss, 0, p.write_bytes}});
    }
    // What the events add: a file each process opened, and a connection of the worker.
    for (const auto& p : b.processes) {
      bc::store::FileRecord file;
      file.pid = p.record.pid;
      file.start_ticks = p.record.start_ticks;
      file.path = "/scratch/" + p.record.command + ".dat";
      file.flags = bc::store::kFileRead | bc::store::kFileWrite;
      file.first_ms = start + 10;
      file.opens = 2;
      file.failed = 1;
      b.files.push_back(file);
    }
    bc::store::ConnectionRecord conn;
    conn.pid = 101;
    conn.start_ticks = 101;
    conn.address = "10.1.2.3";
    conn.port = 5432;
    conn.protocol = "tcp";
    conn.first_ms = start + 20;
    conn.count = 3;
    conn.failed = 1;
    b.connections.push_back(conn);
    b.job_sample = bc::store::Sample{0, start / 1000, b.job.cgroup_cpu_ns, 2 << 20, 0, 8192};
    if (gpu) {
      bc::store::JobGpu g;
      g.uuid = "GPU-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
      g.minor = 0;
      g.allocated = true;
      g.memory_total = 80ULL << 30;
      g.memory_max = 2ULL << 30;
      g.util_ns = g.power_ns = 60'000'000'000;
      g.busy_ns = 36'000'000'000;
      g.energy_mj = 15'000'000;
      b.job.gpus = {g};
    }
    db->write_batch(b);
    for (int64_t k = 1; gpu && k <= 60; ++k) {
      const int64_t t = start / 1000 + k;
      const auto n = static_cast<uint64_t>(k);
      b.job_sample.reset();
      b.files.clear();
      b.connections.clear();
      b.gpu_samples = {{bc::store::gpu_device_series(0), t, n * 600'000'000, (k % 2 ? 1ULL : 2ULL) << 30, n * 250'000}};
      for (auto& u : b.processes) {
        u.sample.reset();
        u.gpu_sample.reset();
        if (u.record.pid == 101) u.gpu_sample = bc::store::GpuSample{0, t, n * 500'000'000, 3ULL << 29, 0};
      }
      db->write_batch(b);
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bc-make-store: %s\n", e.what());
  return 1;
}
