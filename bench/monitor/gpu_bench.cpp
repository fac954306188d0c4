// The monitor's cost per sample with the NVML path on and off (bench/suites/gpu.sh).
//   bc-gpu-bench LIBRARY PROCESSES ROUNDS   PROCESSES sleeping children, each listed by NVML (the fake's script,
//                                           written by the suite, names them) on one of its GPUs; each round
//                                           times ProcessTable::sample + commit alone, then with JobGpus::sample
//                                           before it, as bc-monitor's tick does
//   bc-gpu-bench LIBRARY --list             what NVML reports: "pid uuid used_mib" per process on every GPU, to
//                                           set against nvidia-smi --query-compute-apps on a real GPU
// Each run also prints what an hour of a GPU's series costs in the store's point encoding, against a busy CPU
// process's series, both with figures that vary every second.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "accounting_db/codec.hpp"
#include "cgroup_monitor/gpu_sampler.hpp"
#include "cgroup_monitor/job_gpus.hpp"
#include "cgroup_monitor/process_table.hpp"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

int list(const std::string& library) {
  std::string why;
  auto sampler = bc::gpu::Sampler::open(library, why);
  if (!sampler) {
    std::fprintf(stderr, "bc-gpu-bench: %s\n", why.c_str());
    return 1;
  }
  const bc::gpu::Sample s = sampler->sample(sampler->all_devices());
  for (const auto& p : s.processes)
    std::printf("%u %s %llu\n", p.pid, sampler->devices()[p.device].uuid.c_str(),
                static_cast<unsigned long long>(p.memory_used >> 20));
  return 0;
}

// Bytes per point of an hour of seconds: a GPU at 40-100% and 200-300 W whose memory moves every half minute,
// and (the peer) a process at 50-100% of a core whose RSS moves every ten seconds and that reads now and then.
void series_bytes() {
  std::mt19937_64 rng(7);
  auto within = [&](uint64_t lo, uint64_t hi) { return lo + rng() % (hi - lo + 1); };
  std::vector<bc::store::codec::Point> gpu, cpu;
  bc::store::codec::Point g{1'800'000'000, 0, 20ULL << 30, 0, 0, 0}, c{1'800'000'000, 0, 1ULL << 30, 0, 0, 4};
  for (int s = 0; s < 3600; ++s) {
    ++g.t;
    g.cpu += within(40, 100) * 10'000'000;
    if (s % 30 == 0) g.rss = within(8, 60) << 30 | within(0, 1023) << 20;
    g.rd += within(200'000, 300'000);
    gpu.push_back(g);
    ++c.t;
    c.cpu += within(50, 100) * 10'000'000;
    if (s % 10 == 0) c.rss += within(0, 255) << 12;
    if (s % 5 == 0) c.rd += within(1, 64) << 12;
    cpu.push_back(c);
  }
  std::string out;
  bc::store::codec::encode_points(out, {1'800'000'000, 0, 20ULL << 30, 0, 0, 0}, gpu);
  std::printf("BENCH gpu_series_bytes_per_point %.2f bytes\n", static_cast<double>(out.size()) / 3600.0);
  out.clear();
  bc::store::codec::encode_points(out, {1'800'000'000, 0, 1ULL << 30, 0, 0, 4}, cpu);
  std::printf("BENCH process_series_bytes_per_point %.2f bytes\n", static_cast<double>(out.size()) / 3600.0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[2]) == "--list") return list(argv[1]);
  if (argc != 4) {
    std::fputs("usage: bc-gpu-bench LIBRARY PROCESSES ROUNDS | LIBRARY --list\n", stderr);
    return 2;
  }
  const std::string library = argv[1];
  const int processes = std::atoi(argv[2]), rounds = std::atoi(argv[3]);
  std::vector<pid_t> children;
  for (int i = 0; i < processes; ++i) {
    const pid_t c = fork();
    if (c == 0) {
      pause();
      _exit(0);
    }
    children.push_back(c);
  }
  // The suite's script lists "pidfile=" lines: the children's pids, one per file.
  if (const char* dir = std::getenv("BC_GPU_BENCH_PIDS"))
    for (int i = 0; i < processes; ++i)
      std::ofstream(std::string(dir) + "/" + std::to_string(i)) << children[i] << "\n";
  std::vector<bc::monitor::MemberPid> members;
  for (pid_t c : children) members.push_back({static_cast<uint32_t>(c), 0U});

  std::vector<std::string> logged;
  bc::monitor::JobGpus gpus(library, "", [&](const std::string& s) { logged.push_back(s); });
  gpus.finish_loading();
  if (!gpus.active()) {
    std::fprintf(stderr, "bc-gpu-bench: no NVML at %s%s%s\n", library.c_str(), logged.empty() ? "" : ": ",
                 logged.empty() ? "" : logged[0].c_str());
    return 1;
  }
  bc::monitor::ProcessTable table;
  bc::store::JobRecord job;
  auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  auto tick = [&](bool with_gpus) {
    const auto start = std::chrono::steady_clock::now();
    const int64_t now = now_ms();
    bc::store::Batch batch;
    if (with_gpus) gpus.sample(now, table, job, batch.gpu_samples);
    table.sample(members, now, batch);
    table.commit(batch);
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  };
  tick(true);  // track them, and give the GPUs a first sample
  std::vector<double> without, with;
  for (int r = 0; r < rounds; ++r) {
    without.push_back(tick(false));
    with.push_back(tick(true));
  }
  uint64_t on_gpu = 0;
  for (const auto& r : job.gpus) on_gpu += r.memory_max > 0;
  for (pid_t c : children) kill(c, SIGKILL);
  for (pid_t c : children) waitpid(c, nullptr, 0);
  const double off_us = median(without), on_us = median(with);
  std::printf("BENCH gpu_bench_processes %d count\n", processes);
  std::printf("BENCH gpu_bench_gpus_recorded %llu count\n", static_cast<unsigned long long>(job.gpus.size()));
  std::printf("BENCH gpu_bench_gpus_with_memory %llu count\n", static_cast<unsigned long long>(on_gpu));
  std::printf("BENCH monitor_sample_nvml_off_median %.0f us\n", off_us);
  std::printf("BENCH monitor_sample_nvml_on_median %.0f us\n", on_us);
  std::printf("BENCH monitor_sample_nvml_cost %.0f us\n", on_us - off_us);
  std::printf("BENCH monitor_sample_nvml_ratio %.3f x\n", off_us > 0 ? on_us / off_us : 0);
  series_bytes();
  return 0;
}
