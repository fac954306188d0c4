// bc-monitor --check-events (events_check.cpp). Internal to cgroup_monitor/.
#pragma once

#include "cgroup_monitor/job_events.hpp"

namespace bc::monitor {

// Loads the events on purpose and prints whether they work, as text or JSON. Returns the exit status:
// 0 they work, 1 they do not.
int check_events(const EventSettings& settings, bool json, bool verbose);

}  // namespace bc::monitor
