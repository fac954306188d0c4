// A job's GPUs, sampled each tick through NVML (gpu_sampler.hpp): the GPUs Slurm gave the job, and any other
// its processes run on, into the job record; each process's GPU memory and SM time into its record.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "accounting_db/store.hpp"
#include "cgroup_monitor/gpu_sampler.hpp"
#include "cgroup_monitor/process_table.hpp"

namespace bc::monitor {

class JobGpus {
 public:
  // library: NVML's file ("off": none). allocated: the minor numbers of the GPUs Slurm gave the job, as
  // SLURM_JOB_GPUS lists them; empty when not known. A list that cannot be read is said and not used.
  // Without NVML or a GPU there is nothing to do, said once through log. A lost GPU counts for the job where it
  // was the job's (given to it, or one of its processes ran there).
  // NVML starts on a thread of its own: without its persistence daemon, nvmlInit takes seconds on a node of
  // several GPUs, and the monitor must serve the job's waiting tasks meanwhile. Samples begin once it has.
  JobGpus(const std::string& library, const std::string& allocated, std::function<void(const std::string&)> log);
  // Waits until NVML has started or failed (tests and benchmarks; the monitor never waits).
  void finish_loading();
  bool active() const { return sampler_ != nullptr; }
  // One sample at now_ms: the job's processes in `table` get their figures, `job` its GPUs, and `points` a
  // point of each of the job's GPUs.
  void sample(int64_t now_ms, ProcessTable& table, store::JobRecord& job, std::vector<store::GpuSample>& points);

 private:
  struct Loaded {
    std::unique_ptr<gpu::Sampler> sampler;
    std::string why;  // without one
  };
  void take(Loaded loaded);
  store::JobGpu& entry(store::JobRecord& job, size_t device, bool allocated);

  std::function<void(const std::string&)> log_;
  std::future<Loaded> loading_;

  std::unique_ptr<gpu::Sampler> sampler_;
  std::optional<std::vector<uint32_t>> allocated_;
  std::vector<size_t> devices_;         // sampled each tick
  std::vector<bool> device_allocated_;  // by index into sampler_->devices()
  std::vector<bool> device_used_;       // a process of the job was seen on it
  int64_t last_ms_ = 0;
};

}  // namespace bc::monitor
