// The plugin's plugstack.conf arguments: key=value words after the plugin path.
#pragma once

#include <string>
#include <vector>

namespace bc::spank {

struct Config {
  bool enable = true;
  std::string store = BC_STORE_DEFAULT;
  std::string monitor = BC_MONITOR_DEFAULT;
  std::string run_dir = BC_RUN_DIR_DEFAULT;
  std::string log = BC_LOG_DEFAULT;
  double interval_s = 1.0;
  // eBPF events, passed to bc-monitor (--bpf, --bpf-ring-kib, --file-bytes).
  bool bpf = true;
  std::string bpf_object;  // a BPF object file to load instead of the one built into bc-monitor (--bpf-object)
  unsigned bpf_ring_kib = 1024;
  bool file_bytes = false;
  // How long a task waits before its exec for the monitor to track it (0: no wait; its first moments may
  // then be missed). No task waits on a node where the events are known not to load. See
  // cgroup_monitor/handoff.hpp.
  int bpf_task_wait_ms = 2000;
  std::string central;       // bcd URL the monitor ships to; empty: node store only
  std::string ca_file;       // with an https central=: the CA file that verifies bcd (bc-monitor --ca-file)
  std::string munge_socket;  // for the monitor's credentials; empty: munge's default
  unsigned outbox_max_mib =
      256;                    // the node store's outbox bound while bcd is unreachable (bc-monitor --outbox-max-mib)
  unsigned ship_every_s = 0;  // with central=: send at most once per this many seconds (bc-monitor --ship-every)
  std::string nvml;           // NVML for GPU figures: an absolute path, or off; empty: bc-monitor's default
};

// Defaults first, then each argument. Every bad word (unknown key, missing '=', bad value, value too long)
// is reported in errors; the caller disables the plugin for the step when errors is non-empty.
Config parse_config(const std::vector<std::string>& args, std::vector<std::string>& errors);

}  // namespace bc::spank
