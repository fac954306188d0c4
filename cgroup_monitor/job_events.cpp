#include "cgroup_monitor/job_events.hpp"

#include <signal.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <tuple>

#include "cgroup_monitor/bpf/events.hpp"
#include "cgroup_monitor/handoff.hpp"
#include "cgroup_monitor/proc_parse.hpp"
#include "common/fd.hpp"

namespace bc::monitor {
namespace {

std::optional<uint64_t> proc_start_ticks(uint32_t pid) {
  auto text = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  auto st = parse_proc_stat(*text);
  if (!st) return std::nullopt;
  return st->start_ticks;
}

// The kernel names a process after the file it executes: the last path component, cut to 15 bytes.
std::string comm_of(const std::string& filename) {
  const size_t slash = filename.rfind('/');
  return filename.substr(slash == std::string::npos ? 0 : slash + 1, 15);
}

int64_t ms_of(uint64_t epoch_ns) { return static_cast<int64_t>(epoch_ns / 1'000'000); }

// The pid names no process (reaped, or never was); a pid that now names another process counts as alive.
bool pid_gone(uint32_t pid) { return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

constexpr int kKeepAfterExitTicks = 3;
constexpr int kMaxExitWaits = 2;

}  // namespace

JobEvents::JobEvents(const EventSettings& settings, std::function<void(const std::string&)> log)
    : log_(std::move(log)) {
  const long hz = sysconf(_SC_CLK_TCK);
  if (hz > 0) ns_per_tick_ = 1'000'000'000ULL / static_cast<uint64_t>(hz);
  boot_epoch_ns_ = boot_epoch_ns();
  events::Options options;
  options.enabled = settings.enabled;
  options.ring_bytes = settings.ring_bytes;
  options.file_io_bytes = settings.file_bytes;
  options.pin_dir = settings.pin_dir;
  options.run_dir = settings.run_dir;
  options.object_file = settings.object_file;
  options.log = [this](events::LogLevel level, const std::string& text) {
    if (level != events::LogLevel::Debug) log_("events: " + text);
  };
  if (!settings.enabled) {  // nothing to wait for
    collector_ = events::EventCollector::open(options, unavailable_);
    state_ = collector_ ? State::Running : State::Unavailable;
    return;
  }
  unavailable_ = "events unavailable: the BPF programs were still loading";
  loading_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!loading_fd_) {
    state_ = State::Unavailable;
    unavailable_ = std::string("events unavailable: eventfd: ") + std::strerror(errno);
    return;
  }
  loader_ = std::thread([this, options, fd = loading_fd_.get()] {
    timespec start{}, end{};
    clock_gettime(CLOCK_MONOTONIC, &start);
    std::string reason;
    auto collector = events::EventCollector::open(options, reason);
    clock_gettime(CLOCK_MONOTONIC, &end);
    loaded_ms_ =
        static_cast<double>(end.tv_sec - start.tv_sec) * 1e3 + static_cast<double>(end.tv_nsec - start.tv_nsec) / 1e6;
    loaded_collector_ = std::move(collector);
    loaded_reason_ = std::move(reason);
    loaded_.store(true, std::memory_order_release);  // publishes the fields above
    const uint64_t one = 1;
    if (::write(fd, &one, sizeof one) < 0) {
      // The monitor also looks at loaded_ at every tick.
    }
  });
}

JobEvents::~JobEvents() {
  if (loader_.joinable()) loader_.join();
}

bool JobEvents::finish_loading() {
  if (state_ != State::Loading || !loaded_.load(std::memory_order_acquire)) return false;
  if (loader_.joinable()) loader_.join();
  loading_fd_ = UniqueFd();
  load_ms_ = loaded_ms_;
  collector_ = std::move(loaded_collector_);
  unavailable_ = collector_ ? std::string() : std::move(loaded_reason_);
  if (!collector_ && unavailable_.empty()) unavailable_ = "events unavailable: unknown reason";
  state_ = collector_ ? State::Running : State::Unavailable;
  char ms[32];
  std::snprintf(ms, sizeof ms, "%.1f ms", load_ms_);
  if (collector_) log_(std::string("events running (loaded in ") + ms + ")");
  else log_(unavailable_ + "; sampling only (" + ms + ")");
  return true;
}

void JobEvents::wait_for_load() {
  if (state_ == State::Loading && loader_.joinable()) loader_.join();  // the loader sets loaded_ before it returns
}

int JobEvents::poll_fd() const { return collector_ ? collector_->poll_fd() : -1; }

void JobEvents::pump() {
  if (collector_) collector_->pump();
}

char JobEvents::hand_off(uint32_t pid, uint32_t step) {
  if (state_ == State::Loading) return kHandoffNotYet;
  if (!collector_) return kHandoffNoEvents;
  // The task is slurmstepd's child, waiting for our answer before its exec: alive, so /proc has its identity.
  auto text = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto st = text ? parse_proc_stat(*text) : std::nullopt;
  if (!st || !collector_->track(pid)) return kHandoffNoEvents;  // gone, or another job's: nothing to follow
  Pending& p = pending_[pid];
  p = Pending{};
  p.start_ticks = st->start_ticks;
  p.start_known = true;
  p.ppid = static_cast<uint32_t>(st->ppid);
  p.step = step;
  p.parent_command = st->comm;
  return kHandoffTracked;
}

uint64_t JobEvents::start_ticks_of(uint32_t pid, Pending* p, const ProcessTable& table) {
  if (p && p->start_known) return p->start_ticks;
  if (!p || !p->forked) {
    // Not born under our eyes: the table's, or /proc's. Remembered either way, so the exec and exit of a
    // process the table tracks are matched to its record rather than starting a second one.
    std::optional<uint64_t> ticks;
    if (auto id = table.identity(pid)) ticks = id->start_ticks;
    else ticks = proc_start_ticks(pid);
    if (p && ticks) {
      p->start_ticks = *ticks;
      p->start_known = true;
    }
    return ticks.value_or(0);
  }
  // The kernel stamps start_boottime just before the fork event: the tick of the fork time, or the one before.
  const auto fork_boot = static_cast<int64_t>(p->fork_ns) - boot_epoch_ns_;
  const uint64_t from_fork = fork_boot > 0 ? static_cast<uint64_t>(fork_boot) / ns_per_tick_ : 0;
  auto ticks = proc_start_ticks(pid);
  p->start_ticks = ticks && *ticks <= from_fork && *ticks + 1 >= from_fork ? *ticks : from_fork;
  p->start_known = true;
  return p->start_ticks;
}

void JobEvents::absorb(const events::Drained& d, const ProcessTable& table) {
  for (const auto& f : d.forks) {
    Pending& p = pending_[f.child];
    p = Pending{};
    p.forked = true;
    p.fork_ns = f.time_ns;
    p.ppid = f.parent;
    p.task = table.task_of(f.parent);
    if (auto parent = table.identity(f.parent)) {
      p.step = parent->step;
      p.parent_command = parent->command;
    } else if (auto it = pending_.find(f.parent); it != pending_.end()) {
      p.step = it->second.step;
      if (p.task == store::kTaskUnknown) p.task = it->second.task;
      p.parent_command = it->second.execed ? comm_of(it->second.filename) : it->second.parent_command;
    }
    start_ticks_of(f.child, &p, table);
  }
  for (const auto& e : d.execs) {
    Pending& p = pending_[e.pid];
    p.execed = true;
    p.exec_applied = false;
    p.exec_ns = e.time_ns;
    if (!p.forked) p.ppid = e.ppid;
    p.exe = e.exe;
    p.filename = e.filename;
    p.argv = e.argv;
    p.argv_truncated = e.argv_truncated;
    start_ticks_of(e.pid, &p, table);
  }
  for (const auto& x : d.exits) {
    auto it = pending_.find(x.pid);
    if (it == pending_.end()) {
      // A process tracked since before its fork was seen (seeded from cgroup.procs).
      auto id = table.identity(x.pid);
      if (!id) continue;
      Pending& p = pending_[x.pid];
      p.start_ticks = id->start_ticks;
      p.start_known = true;
      it = pending_.find(x.pid);
    }
    Pending& p = it->second;
    p.exited = true;
    p.exit_ns = x.time_ns;
    p.exit_code = x.exit_code;
    p.exit_signal = x.signal;
    p.core_dumped = x.core_dumped;
    p.cpu_ns = x.cpu_ns;
    p.max_rss = x.max_rss_bytes;
    p.read_bytes = x.read_bytes;
    p.write_bytes = x.write_bytes;
  }
}

store::ProcessRecord JobEvents::event_record(uint32_t pid, const Pending& p) const {
  store::ProcessRecord r;
  r.pid = pid;
  r.ppid = p.ppid;
  r.step = p.step;
  r.task = p.task;
  r.start_ticks = p.start_ticks;
  r.start_ms = ms_of(p.forked ? p.fork_ns : p.exec_ns);
  r.end_ms = ms_of(p.exit_ns);
  if (r.end_ms < r.start_ms) r.end_ms = r.start_ms;
  r.command = p.execed ? comm_of(p.filename) : p.parent_command;
  r.exe = p.exe;
  r.argv = p.argv;
  r.argv_truncated = p.argv_truncated;
  r.cpu_ns = p.cpu_ns;
  r.max_rss = p.max_rss;
  // Its own bytes: the kernel folded in those of the children it reaped, which have records of their own.
  r.read_bytes = p.read_bytes > p.children_read ? p.read_bytes - p.children_read : 0;
  r.write_bytes = p.write_bytes > p.children_write ? p.write_bytes - p.children_write : 0;
  r.exited = true;
  r.exit_code = p.exit_code;
  r.exit_signal = p.exit_signal;
  r.core_dumped = p.core_dumped;
  r.exact = true;
  return r;
}

void JobEvents::merge(ProcessTable& table, int64_t now_ms, store::Batch& batch, store::JobRecord& job) {
  (void)now_ms;
  job.events_unavailable = unavailable_;
  // Tasks that stopped waiting count whether or not events run: what they did first is missing either way.
  job.lost.late += late_;
  late_ = 0;
  job.lost_events = job.lost.total();
  if (!collector_) return;
  boot_epoch_ns_ = boot_epoch_ns();
  for (uint32_t pid : table.live_pids()) collector_->track(pid);
  events::Drained d = collector_->drain();
  ++drains_;
  absorb(d, table);

  job.lost +=
      store::EventLoss{d.lost.ring, d.lost.files, d.lost.conns, d.lost.tracked, d.lost.read_failed, d.lost.user, 0};
  job.lost_events = job.lost.total();

  add_files_and_connections(d, table, batch);
  credit_parents(table);
  const std::set<uint32_t> awaiting_children = hold_for_children(table);
  apply_in_birth_order(table, batch, awaiting_children);
  for (const auto& u : unwritten_) batch.processes.push_back(u);
}

void JobEvents::add_files_and_connections(const events::Drained& d, const ProcessTable& table, store::Batch& batch) {
  auto identity = [&](uint32_t pid) {
    auto it = pending_.find(pid);
    return start_ticks_of(pid, it == pending_.end() ? nullptr : &it->second, table);
  };
  for (const auto& f : d.files) {
    store::FileRecord r;
    r.pid = f.pid;
    r.start_ticks = identity(f.pid);
    r.path = f.path;
    r.flags = f.flags;
    r.first_ms = f.first_ns ? ms_of(f.first_ns) : 0;
    r.opens = f.opens;
    r.failed = f.failed;
    r.read_bytes = f.read_bytes;
    r.write_bytes = f.write_bytes;
    batch.files.push_back(std::move(r));
  }
  for (const auto& c : d.conns) {
    store::ConnectionRecord r;
    r.pid = c.pid;
    r.start_ticks = identity(c.pid);
    r.address = c.address;
    r.port = c.port;
    r.protocol = c.protocol;
    r.count = c.count;  // every attempt: failed ones and non-blocking ones still in progress included
    r.failed = c.failed;
    batch.connections.push_back(std::move(r));
  }
}

void JobEvents::credit_parents(ProcessTable& table) {
  // A process that ends this tick with a record of its own is taken out of its parent's figures: of the
  // parent's record when the table has it, else of the parent's pending entry. Here, before any exit is
  // applied or record made: a parent and the child it reaped often end in the same tick, and the parent's
  // own bytes at exit are its figure less its children's.
  auto in_table_now = [&](uint32_t pid, const Pending& p) {
    auto id = table.identity(pid);
    return id && id->start_ticks == p.start_ticks;
  };
  // Children before their parents (the later born first), so that a parent ending in the same tick passes on
  // its children's CPU too: its reaper's reaped-children total holds the whole subtree.
  for (uint32_t pid : latest_born_first()) {
    Pending& p = pending_.at(pid);
    if (!p.exited || p.ticks_since_exit > 0 || p.parent_credited || !(p.forked || p.execed) || in_table_now(pid, p))
      continue;
    p.parent_credited = true;
    const uint64_t subtree_cpu = p.cpu_ns + p.children_cpu;  // its bytes at exit already hold its children's
    auto parent = pending_.find(p.ppid);
    if (parent == pending_.end() || parent->second.ticks_since_exit > 0 || in_table_now(p.ppid, parent->second)) {
      table.credit_child(p.ppid, subtree_cpu, p.read_bytes, p.write_bytes);  // no-op unless the table has it
      continue;
    }
    parent->second.children_cpu += subtree_cpu;
    parent->second.children_read += p.read_bytes;
    parent->second.children_write += p.write_bytes;
  }
}

std::vector<uint32_t> JobEvents::latest_born_first() const {
  struct Birth {
    uint64_t start_ticks, fork_ns;
    uint32_t pid;
  };
  std::vector<Birth> order;
  order.reserve(pending_.size());
  for (const auto& [pid, p] : pending_) order.push_back({p.start_ticks, p.fork_ns, pid});
  std::sort(order.begin(), order.end(), [](const Birth& a, const Birth& b) {
    return std::tie(a.start_ticks, a.fork_ns, a.pid) > std::tie(b.start_ticks, b.fork_ns, b.pid);
  });
  std::vector<uint32_t> pids;
  pids.reserve(order.size());
  for (const Birth& b : order) pids.push_back(b.pid);
  return pids;
}

std::set<uint32_t> JobEvents::hold_for_children(ProcessTable& table) {
  // A child's exit event is sent when it leaves its CPU for the last time, which can come after its parent
  // has reaped it and exited: a parent whose reaped (gone) children have not sent theirs yet waits for them
  // a tick or two, or its exit figure would keep their bytes. Likewise a parent the table saw gone keeps its
  // record while such children are missing, so their credit still reaches it: a record written and
  // forgotten first would keep their bytes.
  std::set<uint32_t> awaiting_children, held_parents;
  for (const auto& [pid, p] : pending_) {
    if (p.exited || !p.forked) continue;
    auto parent = pending_.find(p.ppid);
    const bool parent_exiting =
        parent != pending_.end() && parent->second.exited && parent->second.ticks_since_exit == 0;
    const bool parent_gone_in_table = table.gone(p.ppid);
    if (!parent_exiting && !parent_gone_in_table) continue;
    if (pid_gone(pid)) {
      if (parent_exiting) awaiting_children.insert(p.ppid);
      if (parent_gone_in_table) held_parents.insert(p.ppid);
    }
  }
  table.keep_until_credited(std::move(held_parents));
  return awaiting_children;
}

void JobEvents::apply_in_birth_order(ProcessTable& table, store::Batch& batch,
                                     const std::set<uint32_t>& awaiting_children) {
  // Children's exits before their parents' (the later born first): a parent's own bytes at exit are its
  // figure less its children's, so a child the table has that ends in the same tick is credited to it first.
  for (uint32_t pid : latest_born_first()) {
    auto it = pending_.find(pid);
    Pending& p = it->second;
    if (p.exited && p.ticks_since_exit == 0 && awaiting_children.count(pid) && p.exit_waits < kMaxExitWaits) {
      ++p.exit_waits;
      continue;
    }
    if (p.ticks_since_exit > 0) {
      if (++p.ticks_since_exit > kKeepAfterExitTicks) pending_.erase(it);
      continue;
    }
    auto id = table.identity(pid);
    const bool in_table = id && id->start_ticks == p.start_ticks;
    if (in_table && (p.children_cpu || p.children_read || p.children_write)) {
      table.credit_child(pid, p.children_cpu, p.children_read, p.children_write);
      p.children_cpu = p.children_read = p.children_write = 0;
    }
    if (in_table && p.forked) table.apply_parent(pid, p.start_ticks, p.ppid, ms_of(p.fork_ns));
    if (in_table && p.execed && !p.exec_applied) {
      table.apply_exec(pid, p.start_ticks, {comm_of(p.filename), p.exe, p.argv, p.argv_truncated});
      p.exec_applied = true;
    }
    if (!p.exited) {
      // Alive: the table picks it up, or its exit event comes. Gone without an exit event (it was lost, and
      // counted): forgotten after a few ticks, so the map stays bounded.
      const bool gone = !in_table && pid_gone(pid);
      p.ticks_gone = gone ? p.ticks_gone + 1 : 0;
      if (p.ticks_gone > kKeepAfterExitTicks) pending_.erase(it);
      continue;
    }
    if (in_table) {
      ProcessTable::ExitFacts facts;
      facts.end_ms = ms_of(p.exit_ns);
      facts.exit_code = p.exit_code;
      facts.exit_signal = p.exit_signal;
      facts.core_dumped = p.core_dumped;
      facts.cpu_ns = p.cpu_ns;
      facts.max_rss = p.max_rss;
      facts.read_bytes = p.read_bytes;
      facts.write_bytes = p.write_bytes;
      table.apply_exit(pid, p.start_ticks, facts, batch);
    } else if (p.forked || p.execed) {
      store::ProcessUpdate u;
      u.record = event_record(pid, p);
      // A task that ended before any sample: its rank came from its slurmstepd, not from a parent.
      if (u.record.task == store::kTaskUnknown) u.record.task = table.task_of(pid);
      unwritten_.push_back(std::move(u));
      table.leave_to_events(pid, p.start_ticks);  // its parent was credited above
    }
    p.ticks_since_exit = 1;
  }
}

void JobEvents::commit() { unwritten_.clear(); }

}  // namespace bc::monitor
