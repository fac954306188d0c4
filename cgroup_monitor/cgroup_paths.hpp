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

// The name Slurm gives a step's cgroup directory: "step_0", "step_batch", "step_extern", "step_interactive".
std::string step_cgroup_name(uint32_t step);

// The job's cgroups from where slurmstepd of step `step` itself sits (the text of its /proc/self/cgroup), in
// each hierarchy: in its step's directory (v1 task/cgroup), in the "slurm" directory under it (v2), or in
// the job's directory itself (v1 proctrack/cgroup's freezer), which is known by holding the step's
// directory. The job directory's own name is never read, so the layouts of every Slurm version are found
// alike: "job_<id>" (v1, and v2 up to 25.11), a job SLUID (26.05), "slurm_<node>" roots and
// "<node>_slurmstepd.scope" (--enable-multiple-slurmd), "system.slice/slurmstepd.scope" (v2). Hierarchies
// where slurmstepd is elsewhere (those Slurm does not use, the empty unified tree of a hybrid host) are
// skipped. root_override replaces the mount points as in make_cgroup_reader (fixture trees).
std::optional<JobCgroup> job_cgroup_from_stepd_cgroup(std::string_view proc_cgroup, uint32_t step,
                                                      const std::string& root_override = {});

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
