// Makes sure a job has its monitor on this node, from inside slurmstepd. Never throws.
#pragma once

#include <cstdint>
#include <string>

#include "spank/config.hpp"

namespace bc::spank {

struct LaunchResult {
  enum class Outcome { Started, AlreadyRunning, Failed } outcome = Outcome::Failed;
  std::string message;  // why it failed, for the log
};

// Called in the remote context while slurmstepd is in the step's cgroups. Bounded: the only wait is for the
// intermediate child of the double fork, which exits at once (capped at 1 s).
// The node is named as slurmstepd knows itself: SLURMD_NODENAME in its own environment, which it sets from
// the configuration slurmd sends it (the short hostname where that is missing). job_name: Slurm's job name,
// recorded with the job (may be empty). array: the array job and task ids when the job is a task of a job
// array (SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID).
struct ArrayTask {
  uint32_t array_job_id = 0;  // 0: not an array task
  uint32_t task_id = 0;
};
LaunchResult ensure_monitor(const Config& config, uint64_t job_id, uint32_t uid, const std::string& job_name = {},
                            ArrayTask array = {}) noexcept;

// Asks the job's monitor, if one runs, to sample now. Checks that the pid really is a live bc-monitor
// holding the job's lock before signalling, so a stale pid file never hits an unrelated process.
void poke_monitor(const Config& config, uint64_t job_id) noexcept;

}  // namespace bc::spank
