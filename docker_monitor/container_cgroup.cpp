#include "docker_monitor/container_cgroup.hpp"

#include "cgroup_monitor/proc_parse.hpp"

namespace bc::docker {
namespace {

bool is_container_component(std::string_view component, std::string_view id) {
  if (component == id) return true;  // cgroupfs driver: <parent>/<id>
  // systemd driver: docker-<id>.scope (and the same for other runtimes' prefixes, e.g. crio-, libpod-).
  constexpr std::string_view kScope = ".scope";
  if (component.size() <= kScope.size() + id.size() + 1) return false;
  if (component.substr(component.size() - kScope.size()) != kScope) return false;
  std::string_view base = component.substr(0, component.size() - kScope.size());
  return base.size() > id.size() && base.substr(base.size() - id.size()) == id &&
         base[base.size() - id.size() - 1] == '-';
}

// The path up to and including the container's component, or "" when the path does not hold it.
std::string container_prefix(std::string_view path, std::string_view id) {
  size_t start = 0;
  while (start < path.size()) {
    if (path[start] == '/') {
      ++start;
      continue;
    }
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (is_container_component(path.substr(start, end - start), id)) return std::string(path.substr(0, end));
    start = end;
  }
  return {};
}

}  // namespace

std::optional<ContainerCgroup> container_cgroup_from_proc_cgroup(std::string_view proc_cgroup,
                                                                 std::string_view full_id) {
  if (full_id.empty()) return std::nullopt;
  std::optional<ContainerCgroup> v1, v2;
  for (const auto& line : monitor::parse_proc_cgroup(proc_cgroup)) {
    std::string prefix = container_prefix(line.path, full_id);
    if (prefix.empty()) continue;
    const bool unified = line.hierarchy_id == "0" && line.controllers.empty();
    if (unified) {
      if (!v2) v2 = ContainerCgroup{2, prefix};
    } else if (line.controllers.rfind("name=", 0) != 0) {
      // A named hierarchy (name=systemd) has no controllers to read; a real controller's line decides.
      if (!v1) v1 = ContainerCgroup{1, prefix};
    }
  }
  if (v1) return v1;
  return v2;
}

}  // namespace bc::docker
