// GPU figures from NVML, loaded at run time: a node without NVIDIA's library or without a GPU builds and runs
// the same, and the sampler is simply not there.
//
// What a job's GPUs are: Slurm names them by the minor number of /dev/nvidiaN (gres.conf's File=, the devices
// cgroup, SLURM_JOB_GPUS), which is not NVML's index nor CUDA's (CUDA_VISIBLE_DEVICES counts from 0 inside
// the job's devices). The sampler matches devices by minor number. A GPU in MIG mode is reported as its MIG
// instances, each with its own memory and processes: NVML lists no process on a MIG parent.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace bc::gpu {

inline constexpr uint32_t kNoMinor = UINT32_MAX;
inline constexpr const char* kDefaultLibrary = "libnvidia-ml.so.1";

struct Device {
  std::string uuid;         // "GPU-…", or "MIG-…" for a MIG instance
  std::string parent_uuid;  // a MIG instance's GPU; empty for a GPU
  uint32_t index = 0;       // NVML's index of the GPU (a MIG instance: its GPU's)
  uint32_t minor = kNoMinor;
  uint64_t memory_total = 0;  // bytes
  bool mig_parent = false;    // a GPU in MIG mode: its instances are sampled instead
};

struct DeviceSample {
  size_t device = 0;                     // into GpuSampler::devices()
  std::optional<uint32_t> util_percent;  // % of the last period a kernel ran (not for MIG instances)
  std::optional<uint64_t> memory_used;   // bytes
  std::optional<uint32_t> power_mw;      // the whole GPU's draw (not for MIG instances)
};

struct ProcessSample {
  uint32_t pid = 0;
  size_t device = 0;
  uint64_t memory_used = 0;            // bytes
  std::optional<uint32_t> sm_percent;  // its share of the device's SMs since the last sample, when NVML has one
};

struct Sample {
  std::vector<DeviceSample> devices;
  std::vector<ProcessSample> processes;
};

class Sampler {
 public:
  // Loads NVML from `library` and lists its devices. Null, with the reason in `why`, when the library is
  // missing, NVML cannot start (no driver) or there is no GPU.
  static std::unique_ptr<Sampler> open(const std::string& library, std::string& why);
  virtual ~Sampler() = default;

  virtual const std::vector<Device>& devices() const = 0;
  // The devices of a job given the minor numbers Slurm allocated (a GPU in MIG mode: its instances).
  virtual std::vector<size_t> devices_of(const std::vector<uint32_t>& minors) const = 0;
  // Every device that can hold a job's processes (GPUs not in MIG mode, and MIG instances).
  virtual std::vector<size_t> all_devices() const = 0;
  // Figures of `which` and the processes on them. A device that answers "GPU is lost" is left out from then
  // on and counted.
  virtual Sample sample(const std::vector<size_t>& which) = 0;
  virtual uint64_t lost_devices() const = 0;
  virtual bool lost(size_t device) const = 0;
};

// "0,2-3" (SLURM_JOB_GPUS, SLURM_STEP_GPUS) as minor numbers; nullopt for text that is not such a list.
std::optional<std::vector<uint32_t>> parse_minor_list(const std::string& text);

}  // namespace bc::gpu
