#include "docker_monitor/docker_config.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace bc::docker {
namespace {

constexpr size_t kMaxValue = 1024;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

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

bool parse_bool(std::string_view text, bool& out) {
  if (text == "yes" || text == "true" || text == "on" || text == "1") {
    out = true;
    return true;
  }
  if (text == "no" || text == "false" || text == "off" || text == "0") {
    out = false;
    return true;
  }
  return false;
}

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
    if (!parse_bool(v, config.label_only)) return "label_only= takes yes or no, got '" + v + "'";
    return {};
  }
  if (k == "bpf") {
    if (!parse_bool(v, config.bpf)) return "bpf= takes on or off, got '" + v + "'";
    return {};
  }
  if (k == "retry") {
    if (!parse_bool(v, config.retry)) return "retry= takes yes or no, got '" + v + "'";
    return {};
  }
  if (k == "node") {
    if (v.empty() || v.find_first_of(" \t/") != std::string::npos) return "node= needs a name without spaces or '/', got '" + v + "'";
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
  return "unknown key '" + k + "' (known: socket, store, monitor, rundir, log, state, interval, label_only, retry, node, "
         "central, api_key_file, ca_file, outbox_max_mib, ship_every, bpf)";
}

void parse_config_text(Config& config, std::string_view text, const std::string& origin,
                       std::vector<std::string>& errors) {
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    const std::string where = origin + ":" + std::to_string(line_no) + ": ";
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      errors.push_back(where + "'" + std::string(line) + "' is not key=value");
      continue;
    }
    std::string error = apply_setting(config, trim(line.substr(0, eq)), trim(line.substr(eq + 1)));
    if (!error.empty()) errors.push_back(where + error);
  }
}

}  // namespace bc::docker
