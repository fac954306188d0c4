// Where a job's cgroups are. Shared by the SPANK plugin (to launch the monitor and move it out of the
// job) and the monitor (to read the job).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cgroup_monitor/proc_parse.hpp"

namespace bc::monitor {

struct JobCgroup {
  int version = 0;                          // 1 when the job lives in v1 hierarchies, 2 for the unified tree
  std::string relative_path;                // e.g. "/slurm_node1/uid_1000/job_42", the same in every v1 hierarchy
  std::vector<ProcCgroupLine> hierarchies;  // the /proc/self/cgroup lines that are inside the job
};

// From the text of /proc/self/cgroup of a process inside the job (slurmstepd): the job-level path is the
// prefix up to the "job_<id>" component, so that every step of the job is covered.
std::optional<JobCgroup> job_cgroup_from_proc_cgroup(std::string_view proc_cgroup, uint64_t job_id);

// The directory of the job's CPU counter: v1's cpuacct hierarchy, or the unified tree; empty when that is
// not mounted. root_override replaces the mount points as in make_cgroup_reader (fixture trees).
std::string job_cgroup_cpu_dir(int version, const std::string& relative_path, const std::string& root_override = {});

// A cgroup directory's inode: a cgroup removed and made again under the same name is another directory.
std::optional<uint64_t> cgroup_dir_inode(const std::string& dir);

// The job's CPU counter in ns (v1: cpuacct.usage, v2: cpu.stat's usage_usec), read from dir (as
// job_cgroup_cpu_dir gives it), with the directory's inode.
struct JobCgroupCpu {
  uint64_t dir_inode = 0;
  uint64_t cpu_ns = 0;
};
std::optional<JobCgroupCpu> read_job_cgroup_cpu(int version, const std::string& dir);

// Mount point of the v1 hierarchy holding these controllers ("memory", "cpu,cpuacct"), or of the
// cgroup2 tree when controllers is empty. Uses libcgroup for v1 and the mount table for v2.
std::optional<std::string> cgroup_mount_point(const std::string& controllers);

}  // namespace bc::monitor
