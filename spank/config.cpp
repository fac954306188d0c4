#include "spank/config.hpp"

#include <cmath>
#include <cstdlib>
#include <optional>

#include "common/key_value.hpp"

namespace bc::spank {
namespace {
constexpr size_t kMaxValue = 1024;

bool parse_interval(const std::string& text, double& out) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !std::isfinite(v) || v < 0.05 || v > 3600) return false;
  out = v;
  return true;
}

// A whole number in [min, max].
bool parse_count(const std::string& text, unsigned long min, unsigned long max, unsigned& out) {
  char* end = nullptr;
  const unsigned long v = std::strtoul(text.c_str(), &end, 10);
  if (text.empty() || text[0] == '-' || *end != '\0' || v < min || v > max) return false;
  out = static_cast<unsigned>(v);
  return true;
}
}  // namespace

Config parse_config(const std::vector<std::string>& args, std::vector<std::string>& errors) {
  Config config;
  for (const auto& arg : args) {
    const std::optional<kv::Setting> setting = kv::split_argument(arg);
    if (!setting) {
      errors.push_back("argument '" + arg + "' is not key=value");
      continue;
    }
    const std::string& key = setting->key;
    const std::string& value = setting->value;
    if (value.size() > kMaxValue) {
      errors.push_back("value of '" + key + "' is longer than " + std::to_string(kMaxValue) + " characters");
      continue;
    }
    auto need_path = [&](std::string& field) {
      if (value.empty() || value[0] != '/') errors.push_back(key + "= needs an absolute path, got '" + value + "'");
      else field = value;
    };
    if (key == "enable") {
      if (!kv::parse_bool(value, config.enable)) errors.push_back("enable= takes yes or no, got '" + value + "'");
    } else if (key == "store") {
      need_path(config.store);
    } else if (key == "monitor") {
      need_path(config.monitor);
    } else if (key == "rundir") {
      need_path(config.run_dir);
    } else if (key == "log") {
      need_path(config.log);
    } else if (key == "interval") {
      if (!parse_interval(value, config.interval_s))
        errors.push_back("interval= takes seconds between 0.05 and 3600, got '" + value + "'");
    } else if (key == "bpf") {
      if (!kv::parse_bool(value, config.bpf)) errors.push_back("bpf= takes on or off, got '" + value + "'");
    } else if (key == "bpf_object") {
      need_path(config.bpf_object);
    } else if (key == "file_bytes") {
      if (!kv::parse_bool(value, config.file_bytes))
        errors.push_back("file_bytes= takes on or off, got '" + value + "'");
    } else if (key == "bpf_ring_kib") {
      if (!parse_count(value, 4, 1UL << 20, config.bpf_ring_kib))
        errors.push_back("bpf_ring_kib= takes KiB between 4 and 1048576, got '" + value + "'");
    } else if (key == "bpf_task_wait_ms") {
      unsigned ms = 0;
      if (!parse_count(value, 0, 10000, ms))
        errors.push_back("bpf_task_wait_ms= takes milliseconds between 0 and 10000, got '" + value + "'");
      else config.bpf_task_wait_ms = static_cast<int>(ms);
    } else if (key == "central") {
      if (value.rfind("http://", 0) != 0 && value.rfind("https://", 0) != 0)
        errors.push_back("central= takes an http:// or https:// URL of bcd, got '" + value + "'");
      else config.central = value;
    } else if (key == "ca_file") {
      need_path(config.ca_file);
    } else if (key == "munge_socket") {
      need_path(config.munge_socket);
    } else if (key == "ship_every") {
      if (!parse_count(value, 0, 3600, config.ship_every_s))
        errors.push_back("ship_every= takes whole seconds between 0 and 3600, got '" + value + "'");
    } else if (key == "nvml") {
      if (value == "off") config.nvml = value;
      else need_path(config.nvml);
    } else if (key == "outbox_max_mib") {
      if (!parse_count(value, 1, 1UL << 20, config.outbox_max_mib))
        errors.push_back("outbox_max_mib= takes MiB between 1 and 1048576, got '" + value + "'");
    } else {
      errors.push_back(
          "unknown key '" + key +
          "' (known: enable, store, monitor, interval, rundir, log, bpf, bpf_object, bpf_ring_kib, file_bytes, "
          "bpf_task_wait_ms, central, ca_file, munge_socket, outbox_max_mib, ship_every, nvml)");
    }
  }
  return config;
}

}  // namespace bc::spank
