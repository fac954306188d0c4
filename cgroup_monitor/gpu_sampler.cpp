#include "cgroup_monitor/gpu_sampler.hpp"

#include <algorithm>
#include <charconv>
#include <map>

#include "cgroup_monitor/nvml_abi.hpp"
#include "common/shared_library.hpp"

namespace bc::gpu {
namespace {

// The functions used, looked up once. Those every NVML since driver 450 has are required; the others are
// used where present.
struct Api {
  nvml::InitFn init = nullptr;
  nvml::ShutdownFn shutdown = nullptr;
  nvml::ErrorStringFn error_string = nullptr;
  nvml::DeviceGetCountFn count = nullptr;
  nvml::DeviceGetHandleByIndexFn handle = nullptr;
  nvml::DeviceGetUuidFn uuid = nullptr;
  nvml::DeviceGetMinorNumberFn minor = nullptr;
  nvml::DeviceGetUtilizationRatesFn utilization = nullptr;
  nvml::DeviceGetMemoryInfoFn memory = nullptr;
  nvml::DeviceGetPowerUsageFn power = nullptr;
  nvml::DeviceGetProcessesV2Fn processes_v2 = nullptr;  // _v3, else _v2
  nvml::DeviceGetProcessesV1Fn processes_v1 = nullptr;
  nvml::DeviceGetProcessUtilizationFn process_utilization = nullptr;
  nvml::DeviceGetMigModeFn mig_mode = nullptr;
  nvml::DeviceGetMaxMigDeviceCountFn max_mig = nullptr;
  nvml::DeviceGetMigDeviceHandleByIndexFn mig_handle = nullptr;

  // The name of the first required function missing, or empty.
  std::string load(const SharedLibrary& lib) {
    init = lib.function<nvml::InitFn>("nvmlInit_v2");
    shutdown = lib.function<nvml::ShutdownFn>("nvmlShutdown");
    error_string = lib.function<nvml::ErrorStringFn>("nvmlErrorString");
    count = lib.function<nvml::DeviceGetCountFn>("nvmlDeviceGetCount_v2");
    handle = lib.function<nvml::DeviceGetHandleByIndexFn>("nvmlDeviceGetHandleByIndex_v2");
    uuid = lib.function<nvml::DeviceGetUuidFn>("nvmlDeviceGetUUID");
    minor = lib.function<nvml::DeviceGetMinorNumberFn>("nvmlDeviceGetMinorNumber");
    utilization = lib.function<nvml::DeviceGetUtilizationRatesFn>("nvmlDeviceGetUtilizationRates");
    memory = lib.function<nvml::DeviceGetMemoryInfoFn>("nvmlDeviceGetMemoryInfo");
    power = lib.function<nvml::DeviceGetPowerUsageFn>("nvmlDeviceGetPowerUsage");
    processes_v2 = lib.function<nvml::DeviceGetProcessesV2Fn>("nvmlDeviceGetComputeRunningProcesses_v3");
    if (!processes_v2)
      processes_v2 = lib.function<nvml::DeviceGetProcessesV2Fn>("nvmlDeviceGetComputeRunningProcesses_v2");
    processes_v1 = lib.function<nvml::DeviceGetProcessesV1Fn>("nvmlDeviceGetComputeRunningProcesses");
    process_utilization = lib.function<nvml::DeviceGetProcessUtilizationFn>("nvmlDeviceGetProcessUtilization");
    mig_mode = lib.function<nvml::DeviceGetMigModeFn>("nvmlDeviceGetMigMode");
    max_mig = lib.function<nvml::DeviceGetMaxMigDeviceCountFn>("nvmlDeviceGetMaxMigDeviceCount");
    mig_handle = lib.function<nvml::DeviceGetMigDeviceHandleByIndexFn>("nvmlDeviceGetMigDeviceHandleByIndex");
    const std::pair<bool, const char*> required[] = {{init != nullptr, "nvmlInit_v2"},
                                                     {shutdown != nullptr, "nvmlShutdown"},
                                                     {count != nullptr, "nvmlDeviceGetCount_v2"},
                                                     {handle != nullptr, "nvmlDeviceGetHandleByIndex_v2"},
                                                     {uuid != nullptr, "nvmlDeviceGetUUID"},
                                                     {memory != nullptr, "nvmlDeviceGetMemoryInfo"}};
    for (const auto& [present, name] : required)
      if (!present) return name;
    if (!processes_v2 && !processes_v1) return "nvmlDeviceGetComputeRunningProcesses";
    return "";
  }

  std::string describe(nvml::Return rc) const {
    const char* text = error_string ? error_string(rc) : nullptr;
    return std::string(text ? text : "error") + " (" + std::to_string(rc) + ")";
  }
};

class NvmlSampler final : public Sampler {
 public:
  NvmlSampler(SharedLibrary lib, const Api& api) : lib_(std::move(lib)), api_(api) {}
  ~NvmlSampler() override { api_.shutdown(); }
  NvmlSampler(const NvmlSampler&) = delete;
  NvmlSampler& operator=(const NvmlSampler&) = delete;

  // Lists the GPUs and their MIG instances; the reason when there is nothing to sample.
  std::string list_devices() {
    unsigned int count = 0;
    if (const nvml::Return rc = api_.count(&count); rc != nvml::kSuccess) return "no GPU count: " + api_.describe(rc);
    for (unsigned int i = 0; i < count; ++i) {
      nvml::Device handle = nullptr;
      if (api_.handle(i, &handle) != nvml::kSuccess) continue;  // e.g. no permission on this one: the others
      Device d;
      d.index = i;
      d.uuid = uuid_of(handle);
      unsigned int minor = 0;
      if (api_.minor && api_.minor(handle, &minor) == nvml::kSuccess) d.minor = minor;
      d.memory_total = memory_of(handle).value_or(nvml::Memory{}).total;
      unsigned int mode = 0, pending = 0;
      d.mig_parent = api_.mig_mode && api_.max_mig && api_.mig_handle &&
                     api_.mig_mode(handle, &mode, &pending) == nvml::kSuccess && mode == nvml::kMigEnabled;
      add(d, handle);
      if (!d.mig_parent) continue;
      unsigned int slots = 0;
      if (api_.max_mig(handle, &slots) != nvml::kSuccess) continue;
      for (unsigned int s = 0; s < slots; ++s) {
        nvml::Device instance = nullptr;
        if (api_.mig_handle(handle, s, &instance) != nvml::kSuccess) continue;  // an empty slot: NOT_FOUND
        Device m;
        m.index = i;
        m.minor = d.minor;
        m.parent_uuid = d.uuid;
        m.uuid = uuid_of(instance);
        m.memory_total = memory_of(instance).value_or(nvml::Memory{}).total;
        add(m, instance);
      }
    }
    return devices_.empty() ? "NVML lists no GPU" : "";
  }

  const std::vector<Device>& devices() const override { return devices_; }

  std::vector<size_t> devices_of(const std::vector<uint32_t>& minors) const override {
    std::vector<size_t> out;
    for (size_t i = 0; i < devices_.size(); ++i)
      if (!devices_[i].mig_parent && std::find(minors.begin(), minors.end(), devices_[i].minor) != minors.end())
        out.push_back(i);
    return out;
  }

  std::vector<size_t> all_devices() const override {
    std::vector<size_t> out;
    for (size_t i = 0; i < devices_.size(); ++i)
      if (!devices_[i].mig_parent) out.push_back(i);
    return out;
  }

  Sample sample(const std::vector<size_t>& which) override {
    Sample out;
    for (size_t i : which) {
      if (i >= devices_.size() || lost_[i]) continue;
      const nvml::Device h = handles_[i];
      const bool instance = !devices_[i].parent_uuid.empty();
      DeviceSample d;
      d.device = i;
      if (auto m = memory_of(h)) d.memory_used = m->used;
      if (!instance && api_.utilization) {
        nvml::Utilization u{};
        if (check(i, api_.utilization(h, &u))) d.util_percent = u.gpu;
      }
      if (!instance && api_.power) {
        unsigned int mw = 0;
        if (check(i, api_.power(h, &mw))) d.power_mw = mw;
      }
      if (lost_[i]) continue;
      std::map<uint32_t, uint32_t> sm = process_sm(i);
      for (const auto& [pid, bytes] : processes_on(i)) {
        ProcessSample p;
        p.pid = pid;
        p.device = i;
        p.memory_used = bytes;
        if (auto it = sm.find(pid); it != sm.end()) p.sm_percent = it->second;
        out.processes.push_back(p);
      }
      if (lost_[i]) continue;
      out.devices.push_back(d);
    }
    return out;
  }

  uint64_t lost_devices() const override { return lost_count_; }
  bool lost(size_t device) const override { return device < lost_.size() && lost_[device]; }

 private:
  void add(const Device& d, nvml::Device handle) {
    devices_.push_back(d);
    handles_.push_back(handle);
    lost_.push_back(false);
    last_seen_us_.push_back(0);
  }

  std::string uuid_of(nvml::Device h) const {
    char buf[nvml::kUuidBufferSize] = {};
    if (api_.uuid(h, buf, sizeof buf) != nvml::kSuccess) return "";
    return std::string(buf, strnlen(buf, sizeof buf));
  }

  std::optional<nvml::Memory> memory_of(nvml::Device h) const {
    nvml::Memory m{};
    if (api_.memory(h, &m) != nvml::kSuccess) return std::nullopt;
    return m;
  }

  // Whether the call succeeded; a lost GPU is marked and counted once.
  bool check(size_t device, nvml::Return rc) {
    if (rc == nvml::kErrorGpuIsLost && !lost_[device]) {
      lost_[device] = true;
      ++lost_count_;
    }
    return rc == nvml::kSuccess;
  }

  // One call of a process-list function, either layout: the pids and used bytes into out on success.
  template <typename Info>
  static nvml::Return read_list(nvml::Return (*list)(nvml::Device, unsigned int*, Info*), nvml::Device h,
                                unsigned int capacity, unsigned int& count,
                                std::vector<std::pair<uint32_t, uint64_t>>& out) {
    std::vector<Info> infos(capacity);
    const nvml::Return rc = list(h, &count, infos.data());
    if (rc == nvml::kSuccess)
      for (unsigned int k = 0; k < std::min(count, capacity); ++k)
        out.emplace_back(infos[k].pid, infos[k].usedGpuMemory);
    return rc;
  }

  // pid -> used bytes. NVML fills at most the count it is given and asks for more with INSUFFICIENT_SIZE.
  std::vector<std::pair<uint32_t, uint64_t>> processes_on(size_t device) {
    std::vector<std::pair<uint32_t, uint64_t>> out;
    const nvml::Device h = handles_[device];
    unsigned int capacity = 64;
    for (int attempt = 0; attempt < 4; ++attempt) {
      unsigned int count = capacity;
      const nvml::Return rc = api_.processes_v2 ? read_list(api_.processes_v2, h, capacity, count, out)
                                                : read_list(api_.processes_v1, h, capacity, count, out);
      if (rc != nvml::kErrorInsufficientSize) {
        check(device, rc);
        return out;
      }
      capacity = count + 16;  // more may have started since it counted
    }
    return out;
  }

  // pid -> SM % from the samples NVML took since the last call (the newest per process).
  std::map<uint32_t, uint32_t> process_sm(size_t device) {
    std::map<uint32_t, uint32_t> out;
    if (!api_.process_utilization) return out;
    std::vector<nvml::ProcessUtilizationSample> samples(64);
    for (int attempt = 0; attempt < 4; ++attempt) {
      auto count = static_cast<unsigned int>(samples.size());
      const nvml::Return rc = api_.process_utilization(handles_[device], samples.data(), &count, last_seen_us_[device]);
      if (rc == nvml::kErrorInsufficientSize) {
        samples.resize(count + 16);
        continue;
      }
      if (!check(device, rc)) return out;  // NOT_FOUND: no sample since; NOT_SUPPORTED: none ever
      std::map<uint32_t, unsigned long long> newest;
      for (unsigned int k = 0; k < std::min<size_t>(count, samples.size()); ++k) {
        const auto& s = samples[k];
        if (s.timeStamp <= last_seen_us_[device] || s.timeStamp < newest[s.pid]) continue;
        newest[s.pid] = s.timeStamp;
        out[s.pid] = std::min(s.smUtil, 100U);
      }
      for (const auto& [pid, t] : newest) last_seen_us_[device] = std::max(last_seen_us_[device], t);
      return out;
    }
    return out;
  }

  SharedLibrary lib_;
  Api api_;
  std::vector<Device> devices_;
  std::vector<nvml::Device> handles_;
  std::vector<bool> lost_;
  std::vector<unsigned long long> last_seen_us_;
  uint64_t lost_count_ = 0;
};

}  // namespace

std::unique_ptr<Sampler> Sampler::open(const std::string& library, std::string& why) {
  SharedLibrary lib = SharedLibrary::open(library, why);
  if (!lib) return nullptr;
  Api api;
  if (std::string missing = api.load(lib); !missing.empty()) {
    why = library + " has no " + missing + " (not NVML, or an NVML older than driver 450)";
    return nullptr;
  }
  if (const nvml::Return rc = api.init(); rc != nvml::kSuccess) {
    why = "NVML did not start: " + api.describe(rc);
    return nullptr;
  }
  auto sampler = std::make_unique<NvmlSampler>(std::move(lib), api);
  if (std::string reason = sampler->list_devices(); !reason.empty()) {
    why = reason;
    return nullptr;
  }
  return sampler;
}

std::optional<std::vector<uint32_t>> parse_minor_list(const std::string& text) {
  std::vector<uint32_t> out;
  size_t at = 0;
  auto number = [&](uint32_t& v) {
    const char* begin = text.data() + at;
    const auto [end, ec] = std::from_chars(begin, text.data() + text.size(), v);
    if (ec != std::errc() || end == begin) return false;
    at += static_cast<size_t>(end - begin);
    return true;
  };
  while (at < text.size()) {
    uint32_t first = 0, last = 0;
    if (!number(first)) return std::nullopt;
    last = first;
    if (at < text.size() && text[at] == '-') {
      ++at;
      if (!number(last) || last < first || last - first > 1024) return std::nullopt;
    }
    for (uint32_t v = first;; ++v) {
      out.push_back(v);
      if (v == last) break;
    }
    if (at == text.size()) break;
    if (text[at] != ',' || ++at == text.size()) return std::nullopt;
  }
  if (out.empty()) return std::nullopt;
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace bc::gpu
