// A stand-in for libnvidia-ml.so.1 for machines without a GPU: the NVML functions the sampler uses, with
// NVML's C ABI (cgroup_monitor/nvml_abi.hpp) and return codes, playing back a script named by
// $BC_FAKE_NVML_SCRIPT, read at nvmlInit_v2. It reproduces NVML's documented behaviour where the sampler
// depends on it: INSUFFICIENT_SIZE with the count needed, NOT_FOUND when no process sample is newer than the
// one asked after, NOT_SUPPORTED on calls a device lacks, no processes listed on a GPU in MIG mode (they are
// on its instances), and GPU_IS_LOST on every call to a GPU that fell off the bus.
//
// Script lines ('#' starts a comment); DEV is a GPU's index, or INDEX/SLOT for a MIG instance:
//   init RC                              what nvmlInit_v2 returns (9: the driver is not loaded)
//   gpu INDEX MINOR UUID TOTAL_BYTES [mig]
//   mig INDEX SLOT UUID TOTAL_BYTES
//   step N                               what follows happens from sampling step N (bc_fake_nvml_step)
//   util DEV PERCENT | util DEV unsupported
//   used DEV BYTES
//   power INDEX MILLIWATTS | power INDEX unsupported
//   procs DEV                            DEV's process list is empty from this step, until proc lines
//   proc DEV PID BYTES [SM_PERCENT]      a process on DEV, and an SM sample of it at this step; PID may be
//                                        pidfile=PATH: the pid in that file when NVML is asked (none while the
//                                        file is missing), with a fresh SM sample at each call
// Without $BC_FAKE_NVML_SCRIPT the script is the library's own path with ".script" appended (bc-monitor,
// started by the plugin, gets no environment from the test).
//   putil DEV unsupported                nvmlDeviceGetProcessUtilization answers NOT_SUPPORTED
//   lost INDEX                           the GPU is lost from this step on
// Built twice: with the _v3 process list (nvmlProcessInfo_v2_t) and, with BC_FAKE_NVML_V1, only the
// unversioned one of older drivers (nvmlProcessInfo_v1_t).
#include <dlfcn.h>
#include <sys/time.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cgroup_monitor/nvml_abi.hpp"

namespace nvml = bc::nvml;

struct bc::nvml::DeviceStruct {
  int index = 0;
  int slot = -1;  // a MIG instance's slot
};

namespace {

struct Proc {
  unsigned int pid;
  unsigned long long bytes;
  std::optional<unsigned int> sm;
};

struct Dev {
  nvml::DeviceStruct handle;
  unsigned int minor = 0;
  std::string uuid;
  unsigned long long total = 0;
  bool mig = false;
  std::map<int, size_t> instances;  // slot -> into devices
  // The state at the current step.
  std::optional<unsigned int> util;
  bool util_supported = true;
  unsigned long long used = 0;
  std::optional<unsigned int> power;
  bool power_supported = true;
  bool putil_supported = true;
  bool lost = false;
  std::vector<Proc> procs;
  std::vector<std::pair<unsigned long long, Proc>> samples;  // (time stamp, process) of every step so far
};

struct Line {
  unsigned int step;
  std::vector<std::string> words;
};

std::mutex mu;
nvml::Return init_rc = nvml::kSuccess;
bool initialized = false;
std::vector<Dev> devices;  // GPUs first, by index, then MIG instances
size_t gpu_count = 0;
std::vector<Line> script;
unsigned int current_step = 0;
unsigned int applied_step = ~0U;
bool live = false;  // the script has pidfile= processes: replayed at every call

unsigned long long now_us() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  return static_cast<unsigned long long>(tv.tv_sec) * 1'000'000ULL + static_cast<unsigned long long>(tv.tv_usec);
}

// The pid in a pidfile= word's file; 0 while it is missing. A pid once read is kept: NVML is asked many times
// a sample, and the file does not change.
unsigned int pid_of(const std::string& word) {
  if (word.rfind("pidfile=", 0) != 0) return static_cast<unsigned int>(std::stoul(word));
  static std::map<std::string, unsigned int> known;
  if (auto it = known.find(word); it != known.end()) return it->second;
  std::ifstream in(word.substr(8));
  unsigned int pid = 0;
  in >> pid;
  if (pid) known[word] = pid;
  return pid;
}

Dev* find(const std::string& name) {
  const auto slash = name.find('/');
  const int index = std::atoi(name.substr(0, slash).c_str());
  if (index < 0 || static_cast<size_t>(index) >= gpu_count) return nullptr;
  Dev& gpu = devices[static_cast<size_t>(index)];
  if (slash == std::string::npos) return &gpu;
  auto it = gpu.instances.find(std::atoi(name.substr(slash + 1).c_str()));
  return it == gpu.instances.end() ? nullptr : &devices[it->second];
}

// Replays the script up to the current step.
void apply() {
  if (applied_step == current_step && !live) return;
  applied_step = current_step;
  for (Dev& d : devices) {
    d.util.reset();
    d.util_supported = d.power_supported = d.putil_supported = true;
    d.used = 0;
    d.power.reset();
    d.lost = false;
    d.procs.clear();
    d.samples.clear();
  }
  std::map<Dev*, unsigned int> listed_at;  // the step of a device's newest proc or procs line
  for (const Line& l : script) {
    if (l.step > current_step || l.words.size() < 2) continue;
    const std::string& verb = l.words[0];
    Dev* d = find(l.words[1]);
    if (!d) continue;
    const std::string arg = l.words.size() > 2 ? l.words[2] : "";
    if (verb == "util") {
      d->util_supported = arg != "unsupported";
      if (d->util_supported) d->util = static_cast<unsigned int>(std::stoul(arg));
    } else if (verb == "used") {
      d->used = std::stoull(arg);
    } else if (verb == "power") {
      d->power_supported = arg != "unsupported";
      if (d->power_supported) d->power = static_cast<unsigned int>(std::stoul(arg));
    } else if (verb == "putil") {
      d->putil_supported = false;
    } else if (verb == "lost") {
      d->lost = true;
    } else if (verb == "procs" || verb == "proc") {
      if (listed_at.count(d) == 0 || listed_at[d] != l.step) d->procs.clear();  // a step lists them anew
      listed_at[d] = l.step;
      if (verb == "procs") continue;
      Proc p{pid_of(arg), std::stoull(l.words.at(3)), std::nullopt};
      if (p.pid == 0) continue;
      if (l.words.size() > 4) p.sm = static_cast<unsigned int>(std::stoul(l.words[4]));
      d->procs.push_back(p);
      const bool from_file = arg.rfind("pidfile=", 0) == 0;
      if (p.sm) d->samples.emplace_back(from_file ? now_us() : (l.step + 1) * 1'000'000ULL, p);
    }
  }
}

void load(const char* path) {
  devices.clear();
  script.clear();
  gpu_count = 0;
  init_rc = nvml::kSuccess;
  applied_step = ~0U;
  live = false;
  if (!path) return;
  std::ifstream in(path);
  std::string text;
  unsigned int step = 0;
  std::vector<std::vector<std::string>> gpus, migs;
  while (std::getline(in, text)) {
    if (const auto hash = text.find('#'); hash != std::string::npos) text.resize(hash);
    std::istringstream words(text);
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    if (w.empty()) continue;
    if (w[0] == "init") init_rc = std::atoi(w.at(1).c_str());
    else if (w[0] == "gpu") gpus.push_back(w);
    else if (w[0] == "mig") migs.push_back(w);
    else if (w[0] == "step") step = static_cast<unsigned int>(std::stoul(w.at(1)));
    else script.push_back({step, w});
    if (w.size() > 2 && w[0] == "proc" && w[2].rfind("pidfile=", 0) == 0) live = true;
  }
  for (const auto& w : gpus) {
    Dev d;
    d.handle.index = std::atoi(w.at(1).c_str());
    d.minor = static_cast<unsigned int>(std::stoul(w.at(2)));
    d.uuid = w.at(3);
    d.total = std::stoull(w.at(4));
    d.mig = w.size() > 5 && w[5] == "mig";
    devices.push_back(d);
  }
  gpu_count = devices.size();
  for (const auto& w : migs) {
    Dev m;
    m.handle.index = std::atoi(w.at(1).c_str());
    m.handle.slot = std::atoi(w.at(2).c_str());
    m.uuid = w.at(3);
    m.total = std::stoull(w.at(4));
    devices.push_back(m);
    devices.at(static_cast<size_t>(m.handle.index)).instances[m.handle.slot] = devices.size() - 1;
  }
}

Dev* of(nvml::Device h) {
  if (!h) return nullptr;
  Dev& gpu = devices.at(static_cast<size_t>(h->index));
  return h->slot < 0 ? &gpu : &devices.at(gpu.instances.at(h->slot));
}

// The common checks of a device call: initialized, a handle, the GPU (or the instance's GPU) not lost.
nvml::Return enter(nvml::Device h, Dev*& d) {
  if (!initialized) return nvml::kErrorUninitialized;
  d = of(h);
  if (!d) return nvml::kErrorInvalidArgument;
  apply();
  if (devices.at(static_cast<size_t>(h->index)).lost) return nvml::kErrorGpuIsLost;
  return nvml::kSuccess;
}

template <typename Info>
nvml::Return list(nvml::Device h, unsigned int* count, Info* infos) {
  std::lock_guard lock(mu);
  Dev* d = nullptr;
  if (nvml::Return rc = enter(h, d); rc != nvml::kSuccess) return rc;
  if (!count) return nvml::kErrorInvalidArgument;
  const std::vector<Proc> none;
  const std::vector<Proc>& procs = d->mig ? none : d->procs;  // a MIG parent lists nothing
  const auto n = static_cast<unsigned int>(procs.size());
  if (*count < n) {
    *count = n;
    return nvml::kErrorInsufficientSize;
  }
  *count = n;
  for (unsigned int i = 0; i < n; ++i) {
    infos[i] = Info{};
    infos[i].pid = procs[i].pid;
    infos[i].usedGpuMemory = procs[i].bytes;
  }
  return nvml::kSuccess;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) void bc_fake_nvml_step(unsigned int step) {
  std::lock_guard lock(mu);
  current_step = step;
}

__attribute__((visibility("default"))) nvml::Return nvmlInit_v2() {
  std::lock_guard lock(mu);
  std::string path;
  if (const char* env = std::getenv("BC_FAKE_NVML_SCRIPT")) {
    path = env;
  } else if (Dl_info self{}; dladdr(reinterpret_cast<void*>(&nvmlInit_v2), &self) && self.dli_fname) {
    path = std::string(self.dli_fname) + ".script";
  }
  load(path.empty() ? nullptr : path.c_str());
  initialized = init_rc == nvml::kSuccess;
  return init_rc;
}

__attribute__((visibility("default"))) nvml::Return nvmlShutdown() {
  std::lock_guard lock(mu);
  if (!initialized) return nvml::kErrorUninitialized;
  initialized = false;
  return nvml::kSuccess;
}

__attribute__((visibility("default"))) const char* nvmlErrorString(nvml::Return rc) {
  switch (rc) {
    case nvml::kSuccess: return "Success";
    case nvml::kErrorUninitialized: return "Uninitialized";
    case nvml::kErrorInvalidArgument: return "Invalid Argument";
    case nvml::kErrorNotSupported: return "Not Supported";
    case nvml::kErrorNoPermission: return "Insufficient Permissions";
    case nvml::kErrorNotFound: return "Not Found";
    case nvml::kErrorInsufficientSize: return "Insufficient Size";
    case nvml::kErrorDriverNotLoaded: return "Driver Not Loaded";
    case nvml::kErrorGpuIsLost: return "GPU is lost";
    default: return "Unknown Error";
  }
}

__attribute__((visibility("default"))) nvml::Return nvmlDeviceGetCount_v2(unsigned int* count) {
  std::lock_guard lock(mu);
  if (!initialized) return nvml::kErrorUninitialized;
  *count = static_cast<unsigned int>(gpu_count);
  return nvml::kSuccess;
}

__attribute__((visibility("default"))) nvml::Return nvmlDeviceGetHandleByIndex_v2(unsigned int index,
                                                                                  nvml::Device* device) {
  std::lock_guard lock(mu);
  if (!initialized) return nvml::kErrorUninitialized;
  if (index >= gpu_count) return nvml::kErrorInvalidArgument;
  *device = &devices[index].handle;
  return nvml::kSuccess;
}

__attribute__((visibility("default"))) nvml::Return nvmlDeviceGetUUID(nvml::Device h, char* uuid, unsigned int length) {
  std::lock_guard lock(mu);
  Dev* d = nullptr;
  if (nvml::Return rc = enter(h, d); rc != nvml::kSuccess) return rc;
  if (length < d->uuid.size() + 1) return nvml::kErrorInsufficientSize;
  std::memcpy(uuid, d->uuid.c_str(), d->uuid.size() + 1);
  return nvml::kSuccess;
}

__attribute__((visibility("default"))) nvml::Return nvmlDeviceGetMinorNumber(nvml::Device h, unsigned int* minor) {
  std::lock_guard lock(mu);
  Dev* d = nullptr;
  if (nvml::Return rc = enter(h, d); rc != nvml::kSuccess) return rc;
  if (h->slot >= 0) return nvml::kErrorNotSupported;
  *minor = d->minor;
  return nvml::kSuccess;
}

__attribute__((visibility("default"))) nvml::Return nvmlDeviceGetUtilizationRates(nvml::Device h,
                                                                                  nvml::Utilization* u) {
  std::lock_guard lock(mu);
  Dev* d = nullptr;
  if (nvml::Return rc = enter(h, d); rc != nvml::kSuccess) return rc;
  if (h->slot >= 0 || d->mig || !d->util_supported) return nvml::kErrorNotSupported;
  u->gpu = d->util.value_or(0);
  u->memory = 0;
  return nvml::kSuccess;
}

__attribute__((visibility("default"))) nvml::Return nvmlDeviceGetMemoryInfo(nvml::Device h, nvml::Memory* m) {
  std::lock_guard lock(mu);
  Dev* d = nullptr;
  if (nvml::Return rc = enter(h, d); rc != nvml::kSuccess) return rc;
  m->total = d->total;
  m->used = d->used;
  m->free = d->total > d->used ? d->total - d->used : 0;
  return nvml::kSuccess;
}

__attribute__((visibility("default"))) nvml::Return nvmlDeviceGetPowerUsage(nvml::Device h, unsigned int* mw) {
  std::lock_guard lock(mu);
  Dev* d = nullptr;
  if (nvml::Return rc = enter(h, d); rc != nvml::kSuccess) return rc;
  if (h->slot >= 0 || !d->power_supported || !d->power) return nvml::kErrorNotSupported;
  *mw = *d->power;
  return nvml::kSuccess;
}

#ifdef BC_FAKE_NVML_V1
__attribute__((visibility("default"))) nvml::Return nvmlDeviceGetComputeRunningProcesses(nvml::Device h,
                                                                                         unsigned int* count,
                                                                                         nvml::ProcessInfoV1* infos) {
  return list(h, count, infos);
}
#else
__attribute__((visibility("default"))) nvml::Return nvmlDeviceGetComputeRunningProcesses_v3(
    nvml::Device h, unsigned int* count, nvml::ProcessInfoV2* infos) {
  return list(h, count, infos);
}
#endif

__attribute__((visibility("default"))) nvml::Return nvmlDeviceGetProcessUtilization(nvml::Device h,
                                                                                    nvml::ProcessUtilizationSample* out,
                                                                                    unsigned int* count,
                                                                                    unsigned long long last_seen) {
  std::lock_guard lock(mu);
  Dev* d = nullptr;
  if (nvml::Return rc = enter(h, d); rc != nvml::kSuccess) return rc;
  if (h->slot >= 0 || d->mig || !d->putil_supported) return nvml::kErrorNotSupported;
  std::vector<nvml::ProcessUtilizationSample> newer;
  for (const auto& [t, p] : d->samples)
    if (t > last_seen) newer.push_back({p.pid, t, *p.sm, 0, 0, 0});
  if (newer.empty()) return nvml::kErrorNotFound;
  const auto n = static_cast<unsigned int>(newer.size());
  if (!out || *count < n) {
    *count = n;
    return nvml::kErrorInsufficientSize;
  }
  *count = n;
  std::memcpy(out, newer.data(), n * sizeof newer[0]);
  return nvml::kSuccess;
}

__attribute__((visibility("default"))) nvml::Return nvmlDeviceGetMigMode(nvml::Device h, unsigned int* current,
                                                                         unsigned int* pending) {
  std::lock_guard lock(mu);
  Dev* d = nullptr;
  if (nvml::Return rc = enter(h, d); rc != nvml::kSuccess) return rc;
  if (h->slot >= 0) return nvml::kErrorNotSupported;
  *current = *pending = d->mig ? nvml::kMigEnabled : 0;
  return nvml::kSuccess;
}

__attribute__((visibility("default"))) nvml::Return nvmlDeviceGetMaxMigDeviceCount(nvml::Device h,
                                                                                   unsigned int* count) {
  std::lock_guard lock(mu);
  Dev* d = nullptr;
  if (nvml::Return rc = enter(h, d); rc != nvml::kSuccess) return rc;
  *count = d->mig ? 7 : 0;
  return nvml::kSuccess;
}

__attribute__((visibility("default"))) nvml::Return nvmlDeviceGetMigDeviceHandleByIndex(nvml::Device h,
                                                                                        unsigned int slot,
                                                                                        nvml::Device* out) {
  std::lock_guard lock(mu);
  Dev* d = nullptr;
  if (nvml::Return rc = enter(h, d); rc != nvml::kSuccess) return rc;
  if (!d->mig) return nvml::kErrorNotSupported;
  auto it = d->instances.find(static_cast<int>(slot));
  if (it == d->instances.end()) return nvml::kErrorNotFound;
  *out = &devices[it->second].handle;
  return nvml::kSuccess;
}

}  // extern "C"
