// Reads a job's cgroup: totals and member processes, behind one interface for v1 and v2.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cgroup_monitor/proc_parse.hpp"

namespace bc::monitor {

struct CgroupTotals {
  bool has_cpu = false;
  uint64_t cpu_ns = 0;
  bool has_memory = false;
  uint64_t mem_current = 0;
  uint64_t mem_peak = 0;
  bool has_io = false;
  IoBytes io;
  bool has_pids = false;
  uint64_t pids = 0;
  uint32_t cpus = 0;       // CPUs in the job's cpuset (0: unknown)
  uint64_t mem_limit = 0;  // the job's memory limit (0: none or unknown)
};

struct MemberPid {
  uint32_t pid = 0;
  std::optional<uint32_t> step;  // from the step_* directory the pid was found in
};

class CgroupReader {
 public:
  virtual ~CgroupReader() = default;
  virtual int version() const = 0;
  // False once the job's cgroup is gone (Slurm removes it when the job's last step ends on this node).
  virtual bool exists() = 0;
  virtual CgroupTotals totals() = 0;
  // Every process in the job cgroup and its sub-cgroups.
  virtual std::vector<MemberPid> members() = 0;
};

// root_override replaces the mount points (v1: ROOT/<controller>, v2: ROOT), for fixture trees.
std::unique_ptr<CgroupReader> make_cgroup_reader(int version, const std::string& relative_path,
                                                 const std::string& root_override = {});

}  // namespace bc::monitor
