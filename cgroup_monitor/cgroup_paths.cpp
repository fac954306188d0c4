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
#include "common/slurm_ids.hpp"

namespace bc::monitor {

std::string step_cgroup_name(uint32_t step) {
  switch (step) {
    case slurm::kStepBatch: return "step_batch";
    case slurm::kStepExtern: return "step_extern";
    case slurm::kStepInteractive: return "step_interactive";
    default: return "step_" + std::to_string(step);
  }
}

namespace {
// "/a/b/c" -> "/a/b"; "/a" -> "".
std::string_view parent_of(std::string_view path) { return path.substr(0, path.rfind('/')); }
std::string_view leaf_of(std::string_view path) { return path.substr(path.rfind('/') + 1); }

// Where a /proc/PID/cgroup line's hierarchy is mounted ("" when it is not); under root_override, v1
// hierarchies are its subdirectories named by their first controller, as the fixture trees are.
std::string mount_of(const ProcCgroupLine& line, int version, const std::string& root_override) {
  if (root_override.empty()) return cgroup_mount_point(version == 1 ? line.controllers : "").value_or("");
  if (version == 2) return root_override;
  return root_override + "/" + line.controllers.substr(0, line.controllers.find(','));
}

// Whether the cgroup `dir` of a hierarchy mounted at `mount` has the step's directory.
bool holds_step(const std::string& mount, std::string_view dir, const std::string& step_dir) {
  struct stat st {};
  return !mount.empty() && ::stat((mount + std::string(dir) + "/" + step_dir).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
}  // namespace

std::optional<JobCgroup> job_cgroup_from_stepd_cgroup(std::string_view proc_cgroup, uint32_t step,
                                                      const std::string& root_override) {
  const std::string step_dir = step_cgroup_name(step);
  JobCgroup job;
  for (auto& line : parse_proc_cgroup(proc_cgroup)) {
    const int version = line.controllers.empty() && line.hierarchy_id == "0" ? 2 : 1;
    std::string_view at = line.path;
    // v2: slurmstepd sits in the step's "slurm" leaf, its tasks in the step's "user" subtree.
    if (version == 2 && leaf_of(at) == "slurm") at = parent_of(at);
    std::string_view job_path;
    if (leaf_of(at) == step_dir) {
      job_path = parent_of(at);
    } else if (at.size() > 1 && holds_step(mount_of(line, version, root_override), at, step_dir)) {
      job_path = at;  // at the job's own level: the directory holds this step's
    }
    if (job_path.empty()) continue;  // not in the job, or a step directory at the root, which is no job's
    // A job in both trees (hybrid host with Slurm on v1) is read from v1, where the controllers are.
    if (job.version == 0 || (version == 1 && job.version == 2)) {
      job.version = version;
      job.relative_path = std::string(job_path);
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
