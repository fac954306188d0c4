#include "cgroup_monitor/monitor.hpp"

#include <poll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "accounting_db/shipper.hpp"
#include "accounting_db/store.hpp"
#include "cgroup_monitor/cgroup_paths.hpp"
#include "cgroup_monitor/cgroup_reader.hpp"
#include "cgroup_monitor/handoff.hpp"
#include "cgroup_monitor/job_gpus.hpp"
#include "cgroup_monitor/launch.hpp"
#include "cgroup_monitor/process_table.hpp"
#include "cgroup_monitor/task_finals.hpp"
#include "common/auth.hpp"
#include "common/clock.hpp"
#include "common/fd.hpp"

namespace bc::monitor {
static_assert(FinalRecord::kNoTask == store::kTaskUnknown, "a task's rank passes from the plugin to records as is");
namespace {

// One line per call, written at once: the events' loader thread logs too.
class Log {
 public:
  explicit Log(uint64_t job) : job_(job) {}
  template <typename... Args>
  void operator()(const char* fmt, Args... args) const {
    char when[32];
    time_t t = time(nullptr);
    tm tm_utc{};
    gmtime_r(&t, &tm_utc);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
    char text[2048];
    if constexpr (sizeof...(Args) == 0) {
      std::snprintf(text, sizeof text, "%s", fmt);
    } else {
      std::snprintf(text, sizeof text, fmt, args...);
    }
    std::fprintf(stderr, "%s bc-monitor[%d] job %llu: %s\n", when, static_cast<int>(getpid()),
                 static_cast<unsigned long long>(job_), text);
    std::fflush(stderr);
  }

 private:
  uint64_t job_;
};

void add_step(store::JobRecord& job, uint32_t step) {
  if (step == store::kStepUnknown) return;
  auto it = std::lower_bound(job.steps.begin(), job.steps.end(), step);
  if (it == job.steps.end() || *it != step) job.steps.insert(it, step);
}

// Sleeps until the timeout or a signal; meanwhile empties the event ring when it fills, so a small ring
// survives bursts between ticks, answers tasks handed over by the plugin (on_handoff), and takes the events'
// load when it ends (on_loaded; when it returns true the wait ends at once, for a tick that tracks the job's
// processes now). Returns the signal, or 0 at the timeout.
int wait_for_signal(const sigset_t& signals, int signal_fd, timespec wait, JobEvents& events, int handoff_fd,
                    const std::function<void()>& on_handoff, const std::function<bool()>& on_loaded) {
  siginfo_t info{};
  if (signal_fd < 0) {
    int sig = sigtimedwait(&signals, &info, &wait);
    return sig > 0 ? sig : 0;
  }
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const int64_t deadline_ms =
      now.tv_sec * 1000 + now.tv_nsec / 1'000'000 + wait.tv_sec * 1000 + wait.tv_nsec / 1'000'000;
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    const int64_t left_ms = deadline_ms - (now.tv_sec * 1000 + now.tv_nsec / 1'000'000);
    if (left_ms <= 0) return 0;
    pollfd fds[4] = {{signal_fd, POLLIN, 0},
                     {events.poll_fd(), POLLIN, 0},
                     {handoff_fd, POLLIN, 0},
                     {events.loading_fd(), POLLIN, 0}};
    if (::poll(fds, 4, static_cast<int>(left_ms)) < 0 && errno != EINTR) return sigtimedwait(&signals, &info, &wait);
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si{};
      if (::read(signal_fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) return static_cast<int>(si.ssi_signo);
    }
    if ((fds[3].revents & POLLIN) && on_loaded()) return 0;
    if (fds[1].revents & POLLIN) events.pump();
    if (fds[2].revents & POLLIN) on_handoff();
  }
}

// One monitor per job per node: the lock, held until exit, and the pid file. Returns the exit code when this
// monitor is not the job's: 0 when another monitor has it, 1 when the lock cannot be opened.
std::optional<int> claim_job(const MonitorOptions& opt, const Log& log, UniqueFd& lock) {
  ::mkdir(opt.run_dir.c_str(), 0755);
  lock = UniqueFd(::open(monitor_lock_path(opt.run_dir, opt.job_id).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock) {
    log("cannot open lock file in %s: %s", opt.run_dir.c_str(), std::strerror(errno));
    return 1;
  }
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) return 0;
  if (FILE* f = std::fopen(monitor_pid_path(opt.run_dir, opt.job_id).c_str(), "w")) {
    std::fprintf(f, "%d\n", static_cast<int>(getpid()));
    std::fclose(f);
  }
  return std::nullopt;
}

// Signals are taken synchronously (a signalfd polled beside the other fds, or sigtimedwait without one), so
// the loop has a single place that sleeps.
UniqueFd take_signals(sigset_t& signals) {
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGUSR1, SIGHUP}) sigaddset(&signals, s);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  return UniqueFd(::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK));
}

// The node store, or nothing (logged): then the job is not recorded, and runs as it would without us.
std::unique_ptr<store::Store> open_store(const MonitorOptions& opt, const Log& log) {
  try {
    store::OpenOptions open_options;
    open_options.outbox_max_bytes = opt.outbox_max_bytes;
    return store::Store::open(opt.store_path, open_options);
  } catch (const std::exception& e) {
    log("cannot open store: %s; this job is not recorded", e.what());
    return nullptr;
  }
}

// The job's span on this node is its processes': the first one's start and the last one's end. The
// monitor starts before the first task (or late, when it could not start at once) and ends a grace period
// after the last process.
struct ProcessSpan {
  int64_t first_start_ms = 0;
  int64_t last_end_ms = 0;
  void observe(const std::vector<store::ProcessUpdate>& updates) {
    for (const auto& u : updates) {
      const store::ProcessRecord& r = u.record;
      if (r.start_ms > 0 && (first_start_ms == 0 || r.start_ms < first_start_ms)) first_start_ms = r.start_ms;
      last_end_ms = std::max(last_end_ms, r.end_ms);
    }
  }
};

// The job's node list from the step that found this monitor running (launch.hpp), when it was not given.
void take_job_nodes(const MonitorOptions& opt, store::JobRecord& job) {
  auto text = read_file(job_nodes_path(opt.run_dir, opt.job_id));
  if (!text) return;
  while (!text->empty() && std::isspace(static_cast<unsigned char>(text->back()))) text->pop_back();
  if (!text->empty() && text->size() <= kMaxJobNodesText) job.job_nodes = *text;
}

// The job's record on this node at the monitor's start: a job seen before on this node (an earlier monitor of
// the same allocation, e.g. sruns under salloc) keeps its history.
store::JobRecord initial_record(const MonitorOptions& opt, store::Store& db, const Log& log) {
  store::JobRecord job;
  job.job_id = opt.job_id;
  job.uid = opt.uid;
  job.user = bc::auth::user_name(opt.uid);
  job.node = opt.node;
  job.cgroup_version = static_cast<uint32_t>(opt.cgroup_version);
  job.start_ms = epoch_ms();
  try {
    if (auto previous = db.job(opt.job_id, opt.node)) {
      job = *previous;
      job.end_ms = 0;
      job.cgroup_mem_current = 0;
    }
  } catch (const std::exception& e) {
    log("cannot read earlier record: %s", e.what());
  }
  if (!opt.job_name.empty()) job.job_name = opt.job_name;
  if (!opt.job_nodes.empty()) job.job_nodes = opt.job_nodes;
  if (opt.array_job_id != 0) {
    job.array_job_id = opt.array_job_id;
    job.array_task_id = opt.array_task_id;
  }
  if (!opt.container_id.empty()) {
    job.container_id = opt.container_id;
    job.container_name = opt.container_name;
    job.container_image = opt.container_image;
  }
  return job;
}

// The cgroup's counters into the job record. Slurm removes the job cgroup when its last step ends and makes a
// new one for the next step, so the counters restart at zero and are added to the earlier totals; and they
// survive the cgroup only as their last reading, so the record keeps the most it saw.
class CgroupCounters {
 public:
  explicit CgroupCounters(const store::JobRecord& earlier)
      : earlier_cpu_ns_(earlier.cgroup_cpu_ns),
        earlier_read_bytes_(earlier.cgroup_read_bytes),
        earlier_write_bytes_(earlier.cgroup_write_bytes) {}

  void fold(const CgroupTotals& totals, store::JobRecord& job) {
    if (totals.has_cpu) fold_cpu(totals.cpu_ns, job);
    if (totals.has_memory) {
      job.has_cgroup_memory = true;
      job.cgroup_mem_current = totals.mem_current;
      job.cgroup_mem_peak = std::max(job.cgroup_mem_peak, totals.mem_peak);
    }
    if (totals.has_io) {
      job.cgroup_read_bytes =
          std::max(job.cgroup_read_bytes, based(read_base_, earlier_read_bytes_, totals.io.read_bytes));
      job.cgroup_write_bytes =
          std::max(job.cgroup_write_bytes, based(write_base_, earlier_write_bytes_, totals.io.write_bytes));
      job.has_cgroup_io = true;
    }
    if (totals.cpus) job.alloc_cpus = totals.cpus;
    if (totals.mem_limit) job.mem_limit_bytes = totals.mem_limit;
  }

  // The job cgroup's CPU counter, read now or passed on by slurmstepd.
  void fold_cpu(uint64_t cpu_ns, store::JobRecord& job) {
    job.cgroup_cpu_ns = std::max(job.cgroup_cpu_ns, based(cpu_base_, earlier_cpu_ns_, cpu_ns));
    job.has_cgroup_cpu = true;
  }

 private:
  // A counter below the earlier total belongs to a new cgroup; one at or above it is the same cgroup read by
  // a restarted monitor (a new cgroup cannot have outrun the whole earlier job at its first step's start).
  static uint64_t based(std::optional<uint64_t>& base, uint64_t earlier, uint64_t now_value) {
    if (!base) base = now_value < earlier ? earlier : 0;
    return *base + now_value;
  }

  uint64_t earlier_cpu_ns_, earlier_read_bytes_, earlier_write_bytes_;  // the totals before this monitor
  std::optional<uint64_t> cpu_base_, read_base_, write_base_;
};

// What the monitor itself cost, from getrusage, added to what earlier monitors of the job cost.
void record_monitor_cost(store::JobRecord& job, uint64_t earlier_monitor_cpu_ns) {
  rusage self{};
  getrusage(RUSAGE_SELF, &self);
  job.monitor_cpu_ns = earlier_monitor_cpu_ns +
                       static_cast<uint64_t>(self.ru_utime.tv_sec + self.ru_stime.tv_sec) * 1000000000ULL +
                       static_cast<uint64_t>(self.ru_utime.tv_usec + self.ru_stime.tv_usec) * 1000ULL;
  job.monitor_max_rss = std::max(job.monitor_max_rss, static_cast<uint64_t>(self.ru_maxrss) * 1024);
}

// Shipping runs on its own thread so sampling never waits on bcd; the outbox is the spool.
std::unique_ptr<ship::BackgroundShipper> start_shipper(const MonitorOptions& opt, store::Store& db) {
  if (opt.central_url.empty()) return nullptr;
  ship::ShipOptions ship_options;
  ship_options.central_url = opt.central_url;
  ship_options.ca_file = opt.ca_file;
  ship_options.munge_socket = opt.munge_socket;
  ship_options.api_key = opt.api_key;
  ship_options.lock_path = opt.store_path + "/ship.lock";
  ship_options.ship_every_s = opt.ship_every_s;
  return std::make_unique<ship::BackgroundShipper>(ship_options, db, ship::new_monitor_id());
}

}  // namespace

int run_monitor(const MonitorOptions& opt) {
  Log log(opt.job_id);

  UniqueFd lock;
  if (std::optional<int> exit_code = claim_job(opt, log, lock)) return *exit_code;
  const std::string pid_file = monitor_pid_path(opt.run_dir, opt.job_id);
  sigset_t signals;
  UniqueFd signal_fd = take_signals(signals);

  // From the start the job wins the CPU: the verifier, when this monitor is the node's first, runs at our
  // niceness too, never ahead of the job's processes.
  setpriority(PRIO_PROCESS, 0, opt.nice);

  // Tasks of the job's steps wait (bounded) in the plugin until this monitor tracks them, so the socket is up
  // before anything else, and the events start loading on a thread of their own while sampling starts.
  HandoffServer handoff(monitor_handoff_path(opt.run_dir, opt.job_id));
  if (!handoff.error().empty()) log("no task handoff (%s): tasks are found by sampling", handoff.error().c_str());
  // Events never stop the monitor: without them, sampling goes on and the job record says why.
  JobEvents events(opt.events, [&log](const std::string& text) { log("%s", text.c_str()); });
  uint64_t handed_off = 0;
  auto serve_handoffs = [&] {
    const uint64_t late = handoff.serve([&](uint32_t pid, uint32_t step) {
      const char answer = events.hand_off(pid, step);
      if (answer != kHandoffNotYet) ++handed_off;
      return answer;
    });
    if (late) {
      log("%llu task(s) stopped waiting before they were tracked: counted as late",
          static_cast<unsigned long long>(late));
      events.count_late(late);
    }
  };
  // True when the events have just started: the processes sampled so far are not tracked yet, and those
  // they start meanwhile would be missed, so the caller samples (and tracks) at once.
  auto take_loaded_events = [&] {
    if (!events.finish_loading()) return false;
    serve_handoffs();  // the tasks held meanwhile
    return events.running();
  };
  if (events.state() == JobEvents::State::Unavailable) log("%s; sampling only", events.unavailable().c_str());
  serve_handoffs();

  std::unique_ptr<store::Store> db = open_store(opt, log);
  if (!db) {
    ::unlink(pid_file.c_str());
    return 1;
  }

  std::unique_ptr<ship::BackgroundShipper> shipper = start_shipper(opt, *db);
  auto reader = make_cgroup_reader(opt.cgroup_version, opt.cgroup_relative, opt.cgroup_root);
  ProcessTable table;
  JobGpus gpus(opt.nvml_library, opt.gpus, [&log](const std::string& text) { log("%s", text.c_str()); });
  FinalsReader finals(task_finals_path(opt.run_dir, opt.job_id));
  // The job cgroup's CPU directory (its mount looked up once) and its inode as last seen: slurmstepd's
  // final counters name the directory they were read from.
  const std::string cgroup_cpu_dir = job_cgroup_cpu_dir(opt.cgroup_version, opt.cgroup_relative, opt.cgroup_root);
  uint64_t cgroup_cpu_inode = 0;
  store::JobRecord job = initial_record(opt, *db, log);
  CgroupCounters cgroup_counters(job);
  ProcessSpan span;
  const int64_t earlier_start_ms = job.sample_count > 0 ? job.start_ms : 0;  // an earlier monitor's record
  const uint64_t earlier_monitor_cpu = job.monitor_cpu_ns;
  log("started: cgroup v%d %s, interval %.3fs, store %s", opt.cgroup_version, opt.cgroup_relative.c_str(),
      opt.interval_s, opt.store_path.c_str());

  uint64_t failed_writes = 0;
  auto tick = [&](bool final_tick) {
    const int64_t now = epoch_ms();
    store::Batch batch;
    std::vector<MemberPid> members;
    CgroupTotals totals;
    if (reader->exists()) {
      members = reader->members();
      totals = reader->totals();
    }
    for (const auto& m : members)
      if (m.step) add_step(job, *m.step);
    if (job.job_nodes.empty()) take_job_nodes(opt, job);
    if (auto inode = cgroup_dir_inode(cgroup_cpu_dir)) cgroup_cpu_inode = *inode;
    for (const FinalRecord& f : finals.take_new()) {
      if (f.kind == FinalRecord::kTask) {
        table.apply_task_end({f.pid, f.parent, f.step, f.start_ticks, f.end_ms,
                              std::string(f.command, strnlen(f.command, sizeof f.command)),
                              Counters{f.cpu_ns, f.read_bytes, f.write_bytes}, f.task_global});
      } else if (f.kind == FinalRecord::kTaskStarted && f.task_global != FinalRecord::kNoTask) {
        table.apply_task_start(f.pid, f.start_ticks, f.task_global);
      } else if (f.kind == FinalRecord::kJobCgroupCpu && f.start_ticks == cgroup_cpu_inode) {
        cgroup_counters.fold_cpu(f.cpu_ns, job);  // the cgroup this monitor reads, not one removed before it
      }
    }
    // Before the table's sample, which writes the processes it changed.
    gpus.sample(now, table, job, batch.gpu_samples);
    ProcessTotals procs = table.sample(members, now, batch);
    take_loaded_events();
    serve_handoffs();
    events.merge(table, now, batch, job);
    span.observe(batch.processes);
    if (span.first_start_ms != 0)
      job.start_ms = earlier_start_ms ? std::min(earlier_start_ms, span.first_start_ms) : span.first_start_ms;
    if (final_tick && job.end_ms != 0 && span.last_end_ms != 0 && procs.live == 0) job.end_ms = span.last_end_ms;
    cgroup_counters.fold(totals, job);
    job.max_rss_sum = std::max(job.max_rss_sum, procs.live_rss);
    job.last_sample_ms = now;
    ++job.sample_count;
    if (final_tick) record_monitor_cost(job, earlier_monitor_cpu);
    batch.job = job;
    batch.job_sample = store::Sample{0,
                                     now / 1000,
                                     job.has_cgroup_cpu ? job.cgroup_cpu_ns : procs.cpu_ns,
                                     procs.live_rss,
                                     procs.read_bytes,
                                     procs.write_bytes,
                                     static_cast<uint32_t>(std::min<uint64_t>(procs.live_threads, UINT32_MAX))};
    try {
      if (shipper) {
        shipper->write(batch);
      } else {
        db->write_batch(batch);
      }
      table.commit(batch);
      events.commit();
    } catch (const std::exception& e) {
      // Never stop or block the job: keep sampling, the changed records are written with a later tick.
      if (failed_writes++ % 60 == 0)
        log("store write failed (%llu so far): %s", static_cast<unsigned long long>(failed_writes), e.what());
    }
    return members.size();
  };

  const double interval = std::max(0.05, opt.interval_s);
  int64_t empty_since = 0;
  bool stop_requested = false;
  for (;;) {
    size_t member_count = tick(false);
    const int64_t now = epoch_ms();
    // A cgroup that holds processes cannot be removed, so only an empty one needs looking up again.
    if (member_count == 0 && !reader->exists()) break;
    if (member_count == 0) {
      if (empty_since == 0) empty_since = now;
      if (static_cast<double>(now - empty_since) >= opt.empty_grace_s * 1000.0) break;
    } else {
      empty_since = 0;
    }
    timespec wait{};
    wait.tv_sec = static_cast<time_t>(interval);
    wait.tv_nsec = static_cast<long>((interval - std::floor(interval)) * 1e9);
    int sig = wait_for_signal(signals, signal_fd.get(), wait, events, handoff.fd(), serve_handoffs, take_loaded_events);
    if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
      stop_requested = true;
      break;
    }
  }
  if (stop_requested) {
    log("stopping on signal while the job may still run");
  } else {
    job.end_ms = epoch_ms();  // the last tick puts the last process's end, once none lives
  }
  // The job is over: waiting for a load still running costs it nothing, and the last record then says how
  // the load ended.
  if (events.state() == JobEvents::State::Loading) {
    log("the job ended while the events were still loading; waiting for the load before the last record");
    events.wait_for_load();
    take_loaded_events();
  }
  tick(true);
  log("finished: %llu samples, %llu failed writes, %llu tasks handed over",
      static_cast<unsigned long long>(job.sample_count), static_cast<unsigned long long>(failed_writes),
      static_cast<unsigned long long>(handed_off));
  shipper.reset();  // a last, bounded attempt; the lock is still held so no second monitor starts meanwhile
  ::unlink(pid_file.c_str());
  ::unlink(task_finals_path(opt.run_dir, opt.job_id).c_str());
  ::unlink(job_nodes_path(opt.run_dir, opt.job_id).c_str());
  ::unlink(monitor_lock_path(opt.run_dir, opt.job_id).c_str());
  return 0;
}

}  // namespace bc::monitor
