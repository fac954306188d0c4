// The monitor's cost per sample with the NVML path on and off (bench/suites/gpu.sh).
//   bc-gpu-bench LIBRARY PROCESSES ROUNDS   PROCESSES sleeping children, each listed by NVML (the fake's script,
//                                           written by the suite, names them) on one of its GPUs; each round
//                                           times ProcessTable::sample + commit alone, then with JobGpus::sample
//                                           before it, as bc-monitor's tick does
//   bc-gpu-bench LIBRARY --list             what NVML reports: "pid uuid used_mib" per process on every GPU, to
//                                           set against nvidia-smi --query-compute-apps on a real GPU
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

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
  return 0;
}
