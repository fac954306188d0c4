// bc-monitor's command line: the one parser of what the launchers build (launch.hpp, monitor_argv), and of
// what an operator types.
#pragma once

#include <optional>
#include <string>

#include "cgroup_monitor/monitor.hpp"

namespace bc::monitor {

struct MonitorArgs {
  enum class Action { Run, CheckEvents, Help, Version };
  Action action = Action::Run;
  MonitorOptions options;
  bool json = false, verbose = false;  // --check-events' output
};

// argv as main() gets it, over defaults (the store, run dir and node this host would use). nullopt with
// error (one sentence, without "bc-monitor: ") on a usage error. --api-key-file and --ca-file are read here.
std::optional<MonitorArgs> parse_monitor_args(int argc, char** argv, const MonitorOptions& defaults,
                                              std::string& error);

}  // namespace bc::monitor
