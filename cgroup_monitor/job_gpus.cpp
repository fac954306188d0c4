#include "cgroup_monitor/job_gpus.hpp"

#include <algorithm>
#include <chrono>
#include <map>

namespace bc::monitor {

JobGpus::JobGpus(const std::string& library, const std::string& allocated, std::function<void(const std::string&)> log)
    : log_(std::move(log)) {
  if (library == "off") return;
  if (!allocated.empty()) {
    allocated_ = gpu::parse_minor_list(allocated);
    if (!allocated_)
      log_("SLURM_JOB_GPUS '" + allocated +
           "' is not a list of GPU minor numbers: the job's GPUs are those its processes run on");
  }
  loading_ = std::async(std::launch::async, [library] {
    Loaded loaded;
    loaded.sampler = gpu::Sampler::open(library, loaded.why);
    return loaded;
  });
}

void JobGpus::finish_loading() {
  if (loading_.valid()) take(loading_.get());
}

void JobGpus::take(Loaded loaded) {
  sampler_ = std::move(loaded.sampler);
  if (!sampler_) {
    // The common case on a CPU node (no library): not worth a line, unless the job was given GPUs.
    if (allocated_ || loaded.why.find("NVML") != std::string::npos) log_("no GPU figures: " + loaded.why);
    return;
  }
  device_allocated_.assign(sampler_->devices().size(), false);
  device_used_.assign(sampler_->devices().size(), false);
  if (allocated_) {
    for (size_t d : sampler_->devices_of(*allocated_)) device_allocated_[d] = true;
    if (std::none_of(device_allocated_.begin(), device_allocated_.end(), [](bool b) { return b; }))
      log_("no GPU of this node has the minor number Slurm gave the job; its processes are looked for on all");
  }
  // Every GPU is asked for the job's processes (a job's process may use a GPU it was not given, where devices
  // are not constrained); the device figures of a GPU count for the job only where it was given it or runs on it.
  devices_ = sampler_->all_devices();
}

store::JobGpu& JobGpus::entry(store::JobRecord& job, size_t device, bool allocated) {
  const gpu::Device& d = sampler_->devices()[device];
  auto it = std::find_if(job.gpus.begin(), job.gpus.end(), [&](const store::JobGpu& g) { return g.uuid == d.uuid; });
  if (it == job.gpus.end()) {
    store::JobGpu g;
    g.uuid = d.uuid;
    g.parent_uuid = d.parent_uuid;
    g.minor = d.minor;
    g.memory_total = d.memory_total;
    job.gpus.push_back(g);
    it = job.gpus.end() - 1;
  }
  it->allocated = it->allocated || allocated;
  return *it;
}

void JobGpus::sample(int64_t now_ms, ProcessTable& table, store::JobRecord& job,
                     std::vector<store::GpuSample>& points) {
  if (loading_.valid() && loading_.wait_for(std::chrono::seconds(0)) == std::future_status::ready) take(loading_.get());
  if (!sampler_) return;
  const gpu::Sample s = sampler_->sample(devices_);
  // The interval the utilisation and power stand for: since the last sample (none for the first).
  const uint64_t dt_ns = last_ms_ && now_ms > last_ms_ ? static_cast<uint64_t>(now_ms - last_ms_) * 1'000'000 : 0;
  last_ms_ = now_ms;
  struct OnGpus {
    uint64_t memory = 0, sm_ns = 0;  // memory now, SM time since the last sample, over its GPUs
    std::vector<size_t> devices;
  };
  std::map<uint32_t, OnGpus> per_pid;
  for (const gpu::ProcessSample& p : s.processes) {
    OnGpus& on = per_pid[p.pid];
    on.memory += p.memory_used;
    if (p.sm_percent) on.sm_ns += dt_ns / 100 * *p.sm_percent;
    on.devices.push_back(p.device);
  }
  std::vector<bool> used(sampler_->devices().size(), false);  // a process of the job is on it
  for (const auto& [pid, on] : per_pid)
    if (table.apply_gpu(pid, on.memory, on.sm_ns))
      for (size_t d : on.devices) used[d] = true;
  for (const gpu::DeviceSample& d : s.devices) {
    if (!device_allocated_[d.device] && !used[d.device]) continue;
    store::JobGpu& g = entry(job, d.device, device_allocated_[d.device]);
    if (d.memory_used) g.memory_max = std::max(g.memory_max, *d.memory_used);
    if (dt_ns && d.util_percent) {
      g.util_ns += dt_ns;
      g.busy_ns += dt_ns / 100 * std::min(*d.util_percent, 100U);
    }
    if (dt_ns && d.power_mw) {
      g.power_ns += dt_ns;
      g.energy_mj += static_cast<uint64_t>(*d.power_mw) * dt_ns / 1'000'000'000;
    }
    const auto position = static_cast<size_t>(&g - job.gpus.data());
    if (position < store::kMaxGpuDevices)
      points.push_back(
          {store::gpu_device_series(position), now_ms / 1000, g.busy_ns, d.memory_used.value_or(0), g.energy_mj});
  }
  uint64_t lost = 0;
  for (size_t d = 0; d < device_used_.size(); ++d) {
    device_used_[d] = device_used_[d] || used[d];
    lost += sampler_->lost(d) && (device_allocated_[d] || device_used_[d]);
  }
  job.gpus_lost = lost;
}

}  // namespace bc::monitor
