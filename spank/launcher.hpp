// Makes sure a job has its monitor on this node, from inside slurmstepd. Never throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "cgroup_monitor/cgroup_paths.hpp"
#include "spank/config.hpp"

namespace bc::spank {

struct LaunchResult {
  enum class Outcome { Started, AlreadyRunning, Failed } outcome = Outcome::Failed;
  std::string message;  // why it failed, or what did not work beside it, for the log
};

// A task of a Slurm job array (SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID).
struct ArrayTask {
  uint32_t array_job_id = 0;  // 0: not an array task
  uint32_t task_id = 0;
};

// What the monitor is told of its job.
struct JobToMonitor {
  uint64_t job_id = 0;
  uint32_t uid = 0;
  std::string name;  // Slurm's job name, recorded with the job (may be empty)
  ArrayTask array;
  std::string nodes;  // the job's nodes as a Slurm hostlist (SLURM_JOB_NODELIST); empty when unknown
  std::string gpus;   // minor numbers of the job's GPUs on this node (SLURM_JOB_GPUS); empty when none
  bc::monitor::JobCgroup cgroup;
};

// The job's cgroups from the position of slurmstepd of step `step` (cgroup_paths.hpp), in the remote
// context from slurm_spank_init on, before the tasks start. nullopt with the reason in error.
std::optional<bc::monitor::JobCgroup> own_job_cgroup(uint32_t step, std::string& error) noexcept;

// Called in the remote context. Bounded: the only wait is for the intermediate child of the double fork,
// which exits at once (capped at 1 s). The node is named as slurmstepd knows itself: SLURMD_NODENAME in its
// own environment, which it sets from the configuration slurmd sends it (the short hostname where that is
// missing).
LaunchResult ensure_monitor(const Config& config, const JobToMonitor& job) noexcept;

// Asks the job's monitor, if one runs, to sample now. Checks that the pid really is a live bc-monitor
// holding the job's lock before signalling, so a stale pid file never hits an unrelated process.
void poke_monitor(const Config& config, uint64_t job_id) noexcept;

}  // namespace bc::spank
