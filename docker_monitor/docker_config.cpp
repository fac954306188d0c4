#include "docker_monitor/docker_config.hpp"

#include "common/key_value.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace bc::docker {
namespace {

constexpr size_t kMaxValue = 1024;

// A whole number in [min, max] (no sign, no suffix).
bool parse_whole(const std::string& text, unsigned long long min, unsigned long long max, uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || text[0] == '-' || *end != '\0' || errno != 0 || n < min || n > max) return false;
  out = n;
  return true;
}

}  // namespace

std::string apply_setting(Config& config, std::string_view key, std::string_view value) {
  const std::string k(key), v(value);
  if (v.size() > kMaxValue) return "value of '" + k + "' is longer than " + std::to_string(kMaxValue) + " characters";
  auto path = [&](std::string& field) -> std::string {
    if (v.empty() || v[0] != '/') return k + "= needs an absolute path, got '" + v + "'";
    field = v;
    return {};
  };
  if (k == "socket") return path(config.socket);
  if (k == "store") return path(config.store);
  if (k == "monitor") return path(config.monitor);
  if (k == "rundir") return path(config.run_dir);
  if (k == "log") return path(config.log);
  if (k == "state") return path(config.state_dir);
  if (k == "interval") {
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !std::isfinite(d) || d < 0.05 || d > 3600)
      return "interval= takes seconds between 0.05 and 3600, got '" + v + "'";
    config.interval_s = d;
    return {};
  }
  if (k == "label_only") {
    if (!kv::parse_bool(v, config.label_only)) return "label_only= takes yes or no, got '" + v + "'";
    return {};
  }
  if (k == "bpf") {
    if (!kv::parse_bool(v, config.bpf)) return "bpf= takes on or off, got '" + v + "'";
    return {};
  }
  if (k == "retry") {
    if (!kv::parse_bool(v, config.retry)) return "retry= takes yes or no, got '" + v + "'";
    return {};
  }
  if (k == "node") {
    if (v.empty() || v.find_first_of(" \t/") != std::string::npos)
      return "node= needs a name without spaces or '/', got '" + v + "'";
    config.node = v;
    return {};
  }
  if (k == "central") {
    if (v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0)
      return "central= takes the bcd URL (http://host:port), got '" + v + "'";
    config.central = v;
    return {};
  }
  if (k == "api_key_file") return path(config.api_key_file);
  if (k == "ca_file") return path(config.ca_file);
  if (k == "outbox_max_mib") {
    if (!parse_whole(v, 1, 1ULL << 20, config.outbox_max_mib))
      return "outbox_max_mib= takes MiB between 1 and 1048576, got '" + v + "'";
    return {};
  }
  if (k == "ship_every") {
    if (!parse_whole(v, 0, 3600, config.ship_every_s))
      return "ship_every= takes whole seconds between 0 and 3600, got '" + v + "'";
    return {};
  }
  return "unknown key '" + k +
         "' (known: socket, store, monitor, rundir, log, state, interval, label_only, retry, node, "
         "central, api_key_file, ca_file, outbox_max_mib, ship_every, bpf)";
}

void parse_config_text(Config& config, std::string_view text, const std::string& origin,
                       std::vector<std::string>& errors) {
  for (const kv::Setting& s : kv::read_settings(text, origin)) {
    if (s.malformed) {
      errors.push_back(s.where + ": '" + s.value + "' is not key=value");
      continue;
    }
    std::string error = apply_setting(config, s.key, s.value);
    if (!error.empty()) errors.push_back(s.where + ": " + error);
  }
}

}  // namespace bc::docker
