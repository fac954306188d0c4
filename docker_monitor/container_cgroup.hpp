// Where a container's cgroup is, from /proc/<init pid>/cgroup. That file names the cgroup the runtime
// really used, whatever the cgroup driver (cgroupfs: /docker/<id>; systemd: /system.slice/docker-<id>.scope)
// and whatever cgroup-parent was configured, so it is more reliable than guessing from `docker info`.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bc::docker {

struct ContainerCgroup {
  int version = 0;            // 1: the container is in the v1 hierarchies (read there), 2: unified only
  std::string relative_path;  // below the mount point, e.g. "/docker/<id>" or "/system.slice/docker-<id>.scope"
};

// The text of /proc/PID/cgroup of a process of the container, and the container's full id. The container's
// directory is the path up to the component that is the id itself or "docker-<id>.scope"; a process in a
// sub-cgroup of the container (e.g. systemd inside it) still yields the container's directory. A v1
// controller line wins over the v2 line on hybrid hosts, where the controllers are bound to v1.
// nullopt when no line holds the container.
std::optional<ContainerCgroup> container_cgroup_from_proc_cgroup(std::string_view proc_cgroup,
                                                                 std::string_view full_id);

}  // namespace bc::docker
