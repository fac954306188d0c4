// bc-docker's configuration: a file of key=value lines, then command-line options on top.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bc::docker {

struct Config {
  std::string socket = "/var/run/docker.sock";
  std::string store = BC_STORE_DEFAULT;
  std::string monitor = BC_MONITOR_DEFAULT;
  std::string run_dir = BC_RUN_DIR_DEFAULT;
  std::string log = BC_MONITOR_LOG_DEFAULT;  // where the monitors' stderr goes
  std::string state_dir = BC_STATE_DEFAULT;  // holds containers.jsonl
  double interval_s = 1.0;
  bool label_only = false;  // only containers labelled bubble-chamber.monitor=true
  bool retry = false;       // keep trying to reach Docker at start instead of exiting
  std::string node;         // empty: the short hostname
  // Push to a central bcd: the monitors ship each tick there with the API key in api_key_file (Docker hosts
  // have no munge). Empty central: the node store only.
  std::string central;
  std::string api_key_file;
  std::string ca_file;            // with an https central: the CA file that verifies bcd (bc-monitor --ca-file)
  uint64_t outbox_max_mib = 256;  // bound of the node store's outbox while bcd cannot be reached (as bc-monitor's)
  uint64_t ship_every_s = 0;  // send at most once per this many seconds while bcd keeps up (bc-monitor --ship-every)
  bool bpf = true;            // per-process eBPF events in the monitors (bc-monitor --bpf), as the plugin's bpf=

  std::string container_log_path() const { return state_dir + "/containers.jsonl"; }
};

// The label that selects a container when label_only is set, and its value.
inline constexpr char kMonitorLabel[] = "bubble-chamber.monitor";
inline constexpr char kMonitorLabelValue[] = "true";

// The compiled-in config file; a missing default file is not an error.
inline constexpr char kDefaultConfigPath[] = BC_DOCKER_CONFIG_DEFAULT;

// Sets one key. Returns an error text ("" when accepted). Keys: socket, store, monitor, rundir, log, state,
// interval, label_only, retry, node, central, api_key_file, ca_file, outbox_max_mib, ship_every, bpf.
std::string apply_setting(Config& config, std::string_view key, std::string_view value);

// A whole config file, read by common/key_value.hpp. Every problem is appended to errors as
// "origin:line: text"; unknown keys are errors.
void parse_config_text(Config& config, std::string_view text, const std::string& origin,
                       std::vector<std::string>& errors);

}  // namespace bc::docker
