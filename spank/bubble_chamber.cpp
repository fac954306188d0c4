// bubble-chamber SPANK plugin: the entry points, dispatched by context. Nothing here may fail or delay a
// job: every path logs and returns success, and no exception crosses the C ABI.
// spank.h (22.05) declares the callbacks outside its own extern "C" block; wrap it so they get C linkage.
extern "C" {
#include <slurm/spank.h>
}

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cgroup_monitor/bpf/load_failure.hpp"
#include "cgroup_monitor/cgroup_paths.hpp"
#include "cgroup_monitor/handoff.hpp"
#include "cgroup_monitor/launch.hpp"
#include "cgroup_monitor/proc_parse.hpp"
#include "cgroup_monitor/task_finals.hpp"
#include "common/fd.hpp"
#include "common/key_value.hpp"
#include "common/slurm_ids.hpp"
#include "spank/config.hpp"
#include "spank/launcher.hpp"

extern "C" {
extern const char plugin_name[] = "bubble_chamber";
extern const char plugin_type[] = "spank";
extern const unsigned int plugin_version = SLURM_VERSION_NUMBER;
}

namespace {

#define BC_LOG_PREFIX "bubble-chamber: "

enum class UserChoice { Unset, Yes, No };

bc::spank::Config g_config;
bool g_config_ok = false;
UserChoice g_user_choice = UserChoice::Unset;
bool g_monitor_expected = false;  // this step started the job's monitor or found it running

// Slurm may call option callbacks more than once (srun and again in slurmstepd): idempotent.
int on_bc_monitor_option(int /*val*/, const char* optarg, int /*remote*/) {
  bool value = true;
  if (!optarg || !bc::kv::parse_bool(optarg, value)) {
    slurm_error(BC_LOG_PREFIX "--bc-monitor takes yes or no, not '%s'", optarg ? optarg : "");
    return -1;
  }
  g_user_choice = value ? UserChoice::Yes : UserChoice::No;
  return 0;
}

spank_option g_options[] = {
    {const_cast<char*>("bc-monitor"), const_cast<char*>("yes|no"),
     const_cast<char*>("Record this job's processes with bubble-chamber (default: yes)."), 1, 0, on_bc_monitor_option},
    SPANK_OPTIONS_TABLE_END};

void load_config(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  std::vector<std::string> errors;
  g_config = bc::spank::parse_config(args, errors);
  g_config_ok = errors.empty();
  for (const auto& e : errors) slurm_error(BC_LOG_PREFIX "plugstack.conf: %s; monitoring is off", e.c_str());
}

bool wanted() { return g_config_ok && g_config.enable && g_user_choice != UserChoice::No; }

bool job_identity(spank_t sp, uint32_t& job_id, uid_t& uid) {
  if (spank_get_item(sp, S_JOB_ID, &job_id) != ESPANK_SUCCESS) return false;
  if (spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS) return false;
  return true;
}

// The job's cgroups as found from slurmstepd's position when the step began: by the step's end slurmstepd
// may have left them.
std::optional<bc::monitor::JobCgroup> g_job_cgroup;

// A variable of the job's environment, empty when unset or longer than 4 KiB.
std::string job_env(spank_t sp, const char* name) {
  std::string value(4096, '\0');
  if (spank_getenv(sp, name, value.data(), static_cast<int>(value.size())) != ESPANK_SUCCESS) return {};
  value.resize(std::strlen(value.c_str()));
  return value;
}

int remote_post_opt(spank_t sp) {
  if (!wanted()) return 0;
  uint32_t job_id = 0;
  uid_t uid = 0;
  if (!job_identity(sp, job_id, uid)) {
    slurm_error(BC_LOG_PREFIX "cannot get job id and uid; not monitoring this step");
    return 0;
  }
  uint32_t step = bc::slurm::kStepUnknown;
  std::string error;
  if (spank_get_item(sp, S_JOB_STEPID, &step) == ESPANK_SUCCESS) g_job_cgroup = bc::spank::own_job_cgroup(step, error);
  if (!g_job_cgroup) {
    slurm_error(BC_LOG_PREFIX "job %u: monitor not started: %s; the job runs unmonitored", job_id,
                error.empty() ? "no step id" : error.c_str());
    return 0;
  }
  bc::spank::JobToMonitor job;
  job.job_id = job_id;
  job.uid = uid;
  job.cgroup = *g_job_cgroup;
  job.name = job_env(sp, "SLURM_JOB_NAME");
  job.nodes = job_env(sp, "SLURM_JOB_NODELIST");
  job.gpus = job_env(sp, "SLURM_JOB_GPUS");
  // An array task: its own job id (S_JOB_ID) and the array's, as sacct shows it ("123_4").
  const std::string array_job = job_env(sp, "SLURM_ARRAY_JOB_ID");
  const std::string array_task = job_env(sp, "SLURM_ARRAY_TASK_ID");
  if (!array_job.empty() && !array_task.empty()) {
    char* end_job = nullptr;
    char* end_task = nullptr;
    const unsigned long a = std::strtoul(array_job.c_str(), &end_job, 10);
    const unsigned long t = std::strtoul(array_task.c_str(), &end_task, 10);
    if (!*end_job && !*end_task && a > 0 && a <= UINT32_MAX && t <= UINT32_MAX) {
      job.array.array_job_id = static_cast<uint32_t>(a);
      job.array.task_id = static_cast<uint32_t>(t);
    }
  }
  auto started = std::chrono::steady_clock::now();
  // The node's name is slurmstepd's own (launcher.hpp), never the job's SLURMD_NODENAME: srun passes on the
  // environment of the node it runs on, so a step that a batch script starts on other nodes carries the
  // batch host's name there.
  auto result = bc::spank::ensure_monitor(g_config, job);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  using Outcome = bc::spank::LaunchResult::Outcome;
  g_monitor_expected = result.outcome != Outcome::Failed;
  if (result.outcome == Outcome::Failed) {
    slurm_error(BC_LOG_PREFIX "job %u: monitor not started: %s; the job runs unmonitored", job_id,
                result.message.c_str());
  } else {
    slurm_verbose(BC_LOG_PREFIX "job %u: monitor %s (%.2f ms)", job_id,
                  result.outcome == Outcome::Started ? "started" : "already running", ms);
    if (!result.message.empty()) slurm_error(BC_LOG_PREFIX "job %u: %s", job_id, result.message.c_str());
  }
  return 0;
}

// In the task, as root, before its exec: the monitor tracks it from here, so a task living a millisecond and
// everything it starts are seen. Bounded by bpf_task_wait_ms; on a timeout or an error the task goes on.
// Only when waiting can pay: not where the events are known not to load on this node.
void remote_task_start(spank_t sp) {
  if (!wanted() || !g_config.bpf || g_config.bpf_task_wait_ms <= 0 || !g_monitor_expected) return;
  uint32_t job_id = 0, step_id = 0;
  if (spank_get_item(sp, S_JOB_ID, &job_id) != ESPANK_SUCCESS ||
      spank_get_item(sp, S_JOB_STEPID, &step_id) != ESPANK_SUCCESS)
    return;
  if (bc::events::load_known_to_fail(bc::events::kNodeRunDir, g_config.monitor, g_config.bpf_object)) {
    slurm_verbose(BC_LOG_PREFIX
                  "job %u: events do not load on this node ('bc-monitor --check-events' says why): "
                  "task %d does not wait",
                  job_id, static_cast<int>(::getpid()));
    return;
  }
  const auto r =
      bc::monitor::hand_off_self(bc::monitor::monitor_handoff_path(g_config.run_dir, job_id), step_id,
                                 g_config.bpf_task_wait_ms, bc::monitor::monitor_lock_path(g_config.run_dir, job_id));
  using Outcome = bc::monitor::HandoffResult::Outcome;
  if (r.outcome == Outcome::TimedOut || r.outcome == Outcome::Failed) {
    slurm_error(BC_LOG_PREFIX
                "job %u: task not handed to the monitor after %.0f ms (%s); its first events may "
                "be missing",
                job_id, r.waited_ms, r.message.c_str());
  } else {
    slurm_verbose(BC_LOG_PREFIX "job %u: task %d tracked by the monitor after %.2f ms", job_id,
                  static_cast<int>(::getpid()), r.waited_ms);
  }
}

// Who the task was, for a task that ends before any sample sees it: the step, its ranks and the program it
// runs.
void describe_task(spank_t sp, bc::monitor::FinalRecord& record) {
  uint32_t step = 0;
  if (spank_get_item(sp, S_JOB_STEPID, &step) == ESPANK_SUCCESS) record.step = step;
  uint32_t global_id = 0;
  if (spank_get_item(sp, S_TASK_GLOBAL_ID, &global_id) == ESPANK_SUCCESS) record.task_global = global_id;
  int local_id = -1;
  if (spank_get_item(sp, S_TASK_ID, &local_id) == ESPANK_SUCCESS && local_id >= 0)
    record.task_local = static_cast<uint32_t>(local_id);
  int argc = 0;
  char** argv = nullptr;
  if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) == ESPANK_SUCCESS && argc > 0 && argv && argv[0]) {
    const std::string_view program(argv[0]);
    const std::string_view name = program.substr(program.rfind('/') + 1);
    std::memcpy(record.command, name.data(), std::min(name.size(), sizeof record.command - 1));
  }
}

// In slurmstepd, after each task's fork: its start (so its final figures name it beyond doubt), before the
// first task can end what slurmstepd's reaped children had used so far, and its rank, passed on at once.
std::map<pid_t, uint64_t> g_task_start_ticks;
std::optional<bc::monitor::ReapedTotals> g_reaped_before;

void remote_task_forked(spank_t sp) {
  if (!wanted() || !g_monitor_expected) return;
  pid_t pid = 0;
  if (spank_get_item(sp, S_TASK_PID, &pid) != ESPANK_SUCCESS || pid <= 0) return;
  if (!g_reaped_before) g_reaped_before = bc::monitor::reaped_children_totals();
  const auto text = bc::read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto stat = text ? bc::monitor::parse_proc_stat(*text) : std::nullopt;
  if (!stat) return;
  g_task_start_ticks[pid] = stat->start_ticks;
  // Its rank, for the monitor to set on it and what it starts.
  uint32_t job_id = 0;
  uid_t uid = 0;
  if (!job_identity(sp, job_id, uid)) return;
  bc::monitor::FinalRecord record;
  record.kind = bc::monitor::FinalRecord::kTaskStarted;
  record.pid = static_cast<uint32_t>(pid);
  record.start_ticks = stat->start_ticks;
  record.parent = static_cast<uint32_t>(::getpid());
  describe_task(sp, record);
  if (record.task_global != bc::monitor::FinalRecord::kNoTask)
    bc::monitor::append_final(bc::monitor::task_finals_path(g_config.run_dir, job_id), record);
}

// The job cgroup's CPU counter, now: Slurm may remove the cgroup before the monitor's next read, and the
// job's last moments would be missing from its CPU.
void pass_on_job_cgroup_cpu(uint32_t job_id) {
  if (!g_job_cgroup) return;
  const auto cpu = bc::monitor::read_job_cgroup_cpu(
      g_job_cgroup->version, bc::monitor::job_cgroup_cpu_dir(g_job_cgroup->version, g_job_cgroup->relative_path));
  if (!cpu) return;
  bc::monitor::FinalRecord record;
  record.kind = bc::monitor::FinalRecord::kJobCgroupCpu;
  record.start_ticks = cpu->dir_inode;
  record.cpu_ns = cpu->cpu_ns;
  bc::monitor::append_final(bc::monitor::task_finals_path(g_config.run_dir, job_id), record);
}

// slurmstepd has just reaped the task: what its reaped children used since the last reap is this task's
// whole tree, to its end, which sampling cannot see. The monitor takes it at its next tick, which the poke
// below brings forward.
void remote_task_ended(spank_t sp) {
  if (!wanted() || !g_monitor_expected) return;
  uint32_t job_id = 0;
  uid_t uid = 0;
  if (!job_identity(sp, job_id, uid)) return;
  pid_t pid = 0;
  if (g_reaped_before && spank_get_item(sp, S_TASK_PID, &pid) == ESPANK_SUCCESS) {
    const bc::monitor::ReapedTotals now = bc::monitor::reaped_children_totals();
    auto start = g_task_start_ticks.find(pid);
    if (start != g_task_start_ticks.end()) {
      bc::monitor::FinalRecord record;
      record.pid = static_cast<uint32_t>(pid);
      record.start_ticks = start->second;
      record.cpu_ns = now.cpu_ns - std::min(now.cpu_ns, g_reaped_before->cpu_ns);
      record.read_bytes = now.read_bytes - std::min(now.read_bytes, g_reaped_before->read_bytes);
      record.write_bytes = now.write_bytes - std::min(now.write_bytes, g_reaped_before->write_bytes);
      record.end_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      record.parent = static_cast<uint32_t>(::getpid());
      describe_task(sp, record);
      if (!bc::monitor::append_final(bc::monitor::task_finals_path(g_config.run_dir, job_id), record))
        slurm_verbose(BC_LOG_PREFIX "job %u: task %d's final figures not passed on: %s", job_id, static_cast<int>(pid),
                      std::strerror(errno));
      g_task_start_ticks.erase(start);
    }
    g_reaped_before = now;
  }
  pass_on_job_cgroup_cpu(job_id);
  bc::spank::poke_monitor(g_config, job_id);
}

void remote_step_end(spank_t sp) {
  if (!wanted() || !g_monitor_expected) return;
  uint32_t job_id = 0;
  uid_t uid = 0;
  if (!job_identity(sp, job_id, uid)) return;
  pass_on_job_cgroup_cpu(job_id);
  bc::spank::poke_monitor(g_config, job_id);
}

}  // namespace

extern "C" {

int slurm_spank_init(spank_t sp, int argc, char** argv) {
  try {
    load_config(argc, argv);
    for (spank_option* opt = g_options; opt->name; ++opt) {
      if (spank_option_register(sp, opt) != ESPANK_SUCCESS)
        slurm_error(BC_LOG_PREFIX "cannot register option --%s", opt->name);
    }
  } catch (...) {
    slurm_error(BC_LOG_PREFIX "internal error in init; monitoring is off");
    g_config_ok = false;
  }
  return 0;
}

int slurm_spank_init_post_opt(spank_t sp, int /*argc*/, char** /*argv*/) {
  try {
    if (spank_context() == S_CTX_REMOTE) return remote_post_opt(sp);
  } catch (...) {
    slurm_error(BC_LOG_PREFIX "internal error at step start; the job runs unmonitored");
  }
  return 0;
}

int slurm_spank_task_init_privileged(spank_t sp, int /*argc*/, char** /*argv*/) {
  try {
    if (spank_context() == S_CTX_REMOTE) remote_task_start(sp);
  } catch (...) {
  }
  return 0;
}

int slurm_spank_task_post_fork(spank_t sp, int /*argc*/, char** /*argv*/) {
  try {
    if (spank_context() == S_CTX_REMOTE) remote_task_forked(sp);
  } catch (...) {
  }
  return 0;
}

int slurm_spank_task_exit(spank_t sp, int /*argc*/, char** /*argv*/) {
  try {
    if (spank_context() == S_CTX_REMOTE) remote_task_ended(sp);
  } catch (...) {
  }
  return 0;
}

int slurm_spank_exit(spank_t sp, int /*argc*/, char** /*argv*/) {
  try {
    if (spank_context() == S_CTX_REMOTE) remote_step_end(sp);
  } catch (...) {
  }
  return 0;
}

}  // extern "C"
