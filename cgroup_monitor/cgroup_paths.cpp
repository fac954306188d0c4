#include "cgroup_monitor/cgroup_paths.hpp"

#include <libcgroup.h>
#include <mntent.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "common/fd.hpp"

namespace bc::monitor {

std::optional<JobCgroup> job_cgroup_from_proc_cgroup(std::string_view proc_cgroup, uint64_t job_id) {
  const std::string component = "/job_" + std::to_string(job_id);
  JobCgroup job;
  for (auto& line : parse_proc_cgroup(proc_cgroup)) {
    // Match a whole path component: "/job_4" must not match "/job_42".
    size_t at = line.path.find(component);
    while (at != std::string::npos) {
      size_t end = at + component.size();
      if (end == line.path.size() || line.path[end] == '/') break;
      at = line.path.find(component, at + 1);
    }
    if (at == std::string::npos) continue;
    std::string relative = line.path.substr(0, at + component.size());
    int version = line.controllers.empty() && line.hierarchy_id == "0" ? 2 : 1;
    // A job in both trees (hybrid host with slurm on v1) is read from v1, where the controllers are.
    if (job.version == 0 || (version == 1 && job.version == 2)) {
      job.version = version;
      job.relative_path = relative;
    }
    job.hierarchies.push_back(line);
  }
  if (job.version == 0) return std::nullopt;
  return job;
}

namespace {
std::once_flag g_libcgroup_once;
int g_libcgroup_rc = -1;
}  // namespace

std::optional<std::string> cgroup_mount_point(const std::string& controllers) {
  if (controllers.empty()) {
    std::unique_ptr<FILE, int (*)(FILE*)> mounts(setmntent("/proc/self/mounts", "r"), endmntent);
    if (!mounts) return std::nullopt;
    mntent entry{};
    char buf[4096];
    while (getmntent_r(mounts.get(), &entry, buf, sizeof buf)) {
      if (std::strcmp(entry.mnt_type, "cgroup2") == 0) return std::string(entry.mnt_dir);
    }
    return std::nullopt;
  }
  std::call_once(g_libcgroup_once, [] { g_libcgroup_rc = cgroup_init(); });
  if (g_libcgroup_rc != 0) return std::nullopt;
  // libcgroup knows co-mounted hierarchies by any one of their controllers.
  std::string first = controllers.substr(0, controllers.find(','));
  if (first.rfind("name=", 0) == 0) return std::nullopt;
  char* mount = nullptr;
  if (cgroup_get_subsys_mount_point(first.c_str(), &mount) != 0 || !mount) return std::nullopt;
  std::string result(mount);
  std::free(mount);
  return result;
}

std::string job_cgroup_cpu_dir(int version, const std::string& relative_path, const std::string& root_override) {
  const char* controller = version == 1 ? "cpuacct" : "";
  std::string mount;
  if (!root_override.empty()) {
    mount = version == 1 ? root_override + "/" + controller : root_override;
  } else {
    mount = cgroup_mount_point(controller).value_or("");
  }
  return mount.empty() ? std::string() : mount + relative_path;
}

std::optional<uint64_t> cgroup_dir_inode(const std::string& dir) {
  struct stat st {};
  if (dir.empty() || ::stat(dir.c_str(), &st) != 0) return std::nullopt;
  return static_cast<uint64_t>(st.st_ino);
}

std::optional<JobCgroupCpu> read_job_cgroup_cpu(int version, const std::string& dir) {
  const auto inode = cgroup_dir_inode(dir);
  if (!inode) return std::nullopt;
  const auto text = read_file(dir + (version == 1 ? "/cpuacct.usage" : "/cpu.stat"));
  if (!text) return std::nullopt;
  std::optional<uint64_t> ns;
  if (version == 1) {
    ns = parse_single_u64(*text);
  } else if (auto usec = flat_keyed_value(*text, "usage_usec")) {
    ns = *usec * 1000;
  }
  if (!ns) return std::nullopt;
  return JobCgroupCpu{*inode, *ns};
}

}  // namespace bc::monitor
