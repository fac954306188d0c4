#include "web/bcd/config.hpp"

#include "common/key_value.hpp"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace bc::bcd {
namespace {

std::vector<std::string> split_list(const std::string& value) {
  std::vector<std::string> out;
  std::stringstream in(value);
  for (std::string item; std::getline(in, item, ',');) {
    if (const std::string_view name = kv::trim(item); !name.empty()) out.emplace_back(name);
  }
  return out;
}

bool parse_uint(const std::string& v, uint64_t max, uint64_t& out) {
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos) return false;
  errno = 0;
  unsigned long long n = std::strtoull(v.c_str(), nullptr, 10);
  if (errno != 0 || n > max) return false;
  out = n;
  return true;
}

}  // namespace

Config parse_config(std::string_view text, const std::string& origin, Config config) {
  for (const kv::Setting& setting : kv::read_settings(text, origin)) {
    const std::string where = setting.where + ": ";
    if (setting.malformed) throw ConfigError(where + "expected key=value, got '" + setting.value + "'");
    const std::string& key = setting.key;
    const std::string& value = setting.value;
    uint64_t n = 0;
    if (key == "listen") {
      size_t colon = value.rfind(':');
      if (colon == std::string::npos || colon == 0 || !parse_uint(value.substr(colon + 1), 65535, n))
        throw ConfigError(where + "listen= takes ADDRESS:PORT, got '" + value + "'");
      config.listen_address = value.substr(0, colon);
      config.listen_port = static_cast<uint16_t>(n);
    } else if (key == "tls_cert" || key == "tls_key") {
      if (value.empty() || value[0] != '/') throw ConfigError(where + key + "= needs an absolute path");
      (key == "tls_cert" ? config.tls_cert : config.tls_key) = value;
    } else if (key == "store" || key == "static_dir") {
      if (value.empty() || value[0] != '/') throw ConfigError(where + key + "= needs an absolute path");
      (key == "store" ? config.store : config.static_dir) = value;
    } else if (key == "auth_secret") {
      config.auth_secret = value;
    } else if (key == "auth_disable") {
      if (!kv::parse_bool(value, config.auth_disable)) throw ConfigError(where + "auth_disable= takes yes or no");
    } else if (key == "ingest_auth") {
      if (!kv::parse_bool(value, config.ingest_auth)) throw ConfigError(where + "ingest_auth= takes on or off");
    } else if (key == "dedup_window") {
      if (!parse_uint(value, 10ULL * 366 * 86400, n) || n == 0)
        throw ConfigError(where + "dedup_window= takes seconds (1 to 10 years)");
      config.dedup_window_s = static_cast<int64_t>(n);
    } else if (key == "admins") {
      config.admins = split_list(value);
    } else if (key == "admin_group") {
      config.admin_group = value;
    } else if (key == "pushers") {
      config.pushers = split_list(value);
    } else if (key == "munge_socket") {
      config.munge_socket = value;
    } else if (key == "max_body_bytes") {
      if (!parse_uint(value, 1ULL << 32, n) || n < 1024)
        throw ConfigError(where + "max_body_bytes= takes a number of bytes (at least 1024)");
      config.max_body_bytes = n;
    } else if (key == "threads") {
      if (!parse_uint(value, 256, n) || n == 0) throw ConfigError(where + "threads= takes 1 to 256");
      config.threads = static_cast<unsigned>(n);
    } else if (key == "max_streams") {
      if (!parse_uint(value, 100000, n) || n == 0) throw ConfigError(where + "max_streams= takes 1 to 100000");
      config.max_streams = static_cast<unsigned>(n);
    } else if (key == "max_connections" || key == "max_connections_per_ip") {
      if (!parse_uint(value, 1000000, n) || n == 0) throw ConfigError(where + key + "= takes 1 to 1000000");
      (key == "max_connections" ? config.max_connections : config.max_connections_per_ip) = static_cast<unsigned>(n);
    } else if (key == "header_timeout" || key == "body_timeout") {
      if (!parse_uint(value, 3600, n) || n == 0) throw ConfigError(where + key + "= takes seconds, 1 to 3600");
      (key == "header_timeout" ? config.header_timeout_s : config.body_timeout_s) = static_cast<unsigned>(n);
    } else if (key == "max_inflight_bytes") {
      if (!parse_uint(value, 1ULL << 40, n) || n < 1024)
        throw ConfigError(where + "max_inflight_bytes= takes a number of bytes (at least 1024)");
      config.max_inflight_bytes = n;
    } else if (key == "metrics_jobs") {
      if (!kv::parse_bool(value, config.metrics_jobs)) throw ConfigError(where + "metrics_jobs= takes on or off");
    } else if (key == "metrics_token") {
      if (value.size() < 16) throw ConfigError(where + "metrics_token= must be at least 16 characters");
      config.metrics_token = value;
    } else if (key == "notes_config") {
      config.notes_config = value;
    } else if (key == "log") {
      if (value != "stderr" && value != "syslog") throw ConfigError(where + "log= takes stderr or syslog");
      config.log = value;
    } else {
      throw ConfigError(
          where + "unknown key '" + key +
          "' (known: listen, store, static_dir, auth_secret, auth_disable, ingest_auth, dedup_window, admins, "
          "admin_group, pushers, munge_socket, max_body_bytes, threads, max_streams, max_connections, "
          "max_connections_per_ip, header_timeout, body_timeout, max_inflight_bytes, metrics_jobs, "
          "metrics_token, log, tls_cert, tls_key, notes_config)");
    }
  }
  return config;
}

void apply_environment(Config& config) {
  if (const char* secret = std::getenv("AUTH_SECRET"); secret && *secret) config.auth_secret = secret;
  if (const char* disable = std::getenv("AUTH_DISABLE"); disable && *disable) {
    if (!kv::parse_bool(disable, config.auth_disable))
      throw ConfigError(std::string("AUTH_DISABLE takes yes or no, got '") + disable + "'");
  }
}

Config load_config(const std::string& path, bool required) {
  Config config;
  std::ifstream in(path);
  if (in) {
    std::stringstream text;
    text << in.rdbuf();
    config = parse_config(text.str(), path);
  } else if (required) {
    throw ConfigError("cannot read config file " + path);
  }
  apply_environment(config);
  if (!config.notes_config.empty()) {
    std::ifstream notes(config.notes_config);
    if (!notes) throw ConfigError("cannot read notes_config " + config.notes_config);
    std::stringstream text;
    text << notes.rdbuf();
    std::vector<std::string> errors;
    config.notes = job::parse_note_thresholds(text.str(), config.notes_config, errors);
    if (!errors.empty()) throw ConfigError(errors.front());
  }
  return config;
}

void validate(const Config& config) {
  if (config.max_inflight_bytes < config.max_body_bytes)
    throw ConfigError("max_inflight_bytes (" + std::to_string(config.max_inflight_bytes) +
                      ") is below max_body_bytes (" + std::to_string(config.max_body_bytes) +
                      "): the largest push could never be taken");
  if (!config.auth_disable && config.auth_secret.size() < 16)
    throw ConfigError("auth_secret (or AUTH_SECRET) must be at least 16 characters, or set auth_disable=yes");
  if (config.tls_cert.empty() != config.tls_key.empty())
    throw ConfigError("tls_cert= and tls_key= go together: set both for HTTPS, or neither for plain HTTP");
}

}  // namespace bc::bcd
