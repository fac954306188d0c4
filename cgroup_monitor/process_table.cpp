#include "cgroup_monitor/process_table.hpp"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <utility>

#include "cgroup_monitor/proc_parse.hpp"

namespace bc::monitor {
namespace {

// Processes that belong to Slurm, not to the job, though they sit in its cgroup.
bool is_slurm_helper(const ProcStat& st) { return st.comm == "slurmstepd"; }

}  // namespace

ProcessTable::ProcessTable(std::string proc_root)
    : proc_root_(std::move(proc_root)),
      ticks_per_second_(static_cast<uint64_t>(sysconf(_SC_CLK_TCK))),
      page_size_(static_cast<uint64_t>(sysconf(_SC_PAGESIZE))),
      boot_epoch_ms_(boot_epoch_ns() / 1'000'000) {
  ns_per_tick_ = 1000000000ULL / ticks_per_second_;
}

ProcessTable::State ProcessTable::refresh(Tracked& t) {
  auto stat_text = pread_all(t.stat_fd.get());
  if (!stat_text) return State::Gone;  // ESRCH: reaped
  auto st = parse_proc_stat(*stat_text);
  if (!st) return State::Gone;
  auto& r = t.record;
  const bool zombie = st->state == 'Z' || st->state == 'X';
  if (st->comm != r.command && !zombie) {
    // comm changes on exec: the process is running another program now.
    r.command = st->comm;
    read_identity(t);
    t.changed = true;
  } else if (r.argv.empty() && !zombie) {
    // exec sets the new comm before the new argument area exists, so a read in between finds no argv.
    read_identity(t);
    if (!r.argv.empty()) t.changed = true;
  }
  if (r.ppid == 0) r.ppid = st->ppid;  // the parent at birth; a reparented process keeps it in its record

  Counters own{(st->utime_ticks + st->stime_ticks) * ns_per_tick_, 0, 0};
  Counters inclusive{own.cpu_ns + (st->cutime_ticks + st->cstime_ticks) * ns_per_tick_, 0, 0};
  if (auto io = own_io(t, st->num_threads)) {
    own.read_bytes = io->read_bytes;
    own.write_bytes = io->write_bytes;
  }
  if (t.io_fd) {
    if (auto text = pread_all(t.io_fd.get())) {
      if (auto whole = parse_proc_io(*text)) {
        inclusive.read_bytes = whole->read_bytes;
        inclusive.write_bytes = whole->write_bytes;
      }
    }
  }
  accounting_.observe(r.pid, own, inclusive);  // counters only grow; a zombie's are final
  if (st->ppid != 0) {
    accounting_.set_reaper(r.pid, st->ppid);  // its current parent, which will reap it
    t.task = slurmstepds_.count(st->ppid) != 0;
  }

  uint64_t rss = zombie ? 0 : st->rss_pages * page_size_;
  uint64_t hwm = r.max_rss;
  if (!zombie) {
    if (auto status_text = pread_all(t.status_fd.get())) {
      if (auto status = parse_proc_status(*status_text)) {
        hwm = std::max(hwm, status->vm_hwm_bytes);
        if (status->vm_rss_bytes) rss = status->vm_rss_bytes;
      }
    }
  }
  if (rss != r.rss) t.changed = true;
  r.rss = rss;
  r.max_rss = std::max(hwm, rss);
  const auto threads = zombie ? 0 : static_cast<uint32_t>(std::min<uint64_t>(st->num_threads, UINT32_MAX));
  if (threads != t.threads) {
    t.threads = threads;
    t.changed = true;  // the series gets a point with the new count
  }
  r.max_threads = std::max(r.max_threads, threads);
  return zombie ? State::Zombie : State::Alive;
}

void ProcessTable::update_record(Tracked& t) {
  auto& r = t.record;
  // Not clamped to the last value: a child reaped between reading it and reading its parent shows up as
  // unseen for one tick and is taken back when the child's credit arrives.
  const Counters now = accounting_.recorded(r.pid);
  if (now.cpu_ns != r.cpu_ns || now.read_bytes != r.read_bytes || now.write_bytes != r.write_bytes) t.changed = true;
  r.cpu_ns = now.cpu_ns;
  r.read_bytes = now.read_bytes;
  r.write_bytes = now.write_bytes;
}

void ProcessTable::read_identity(Tracked& t) {
  const std::string dir = proc_root_ + "/" + std::to_string(t.record.pid);
  if (auto cmdline = read_file(dir + "/cmdline")) t.record.argv = parse_cmdline(*cmdline);
  char exe[4096];
  ssize_t n = ::readlink((dir + "/exe").c_str(), exe, sizeof exe - 1);
  if (n > 0) t.record.exe.assign(exe, static_cast<size_t>(n));
}

std::optional<IoBytes> ProcessTable::own_io(Tracked& t, uint64_t num_threads) {
  if (!t.leader_io_fd) return std::nullopt;  // not permitted (another user's process, not root)
  auto leader_text = pread_all(t.leader_io_fd.get());
  if (!leader_text) return std::nullopt;
  auto leader = parse_proc_io(*leader_text);
  if (!leader) return std::nullopt;
  IoBytes total{leader->read_bytes, leader->write_bytes};
  if (num_threads > 1 || !t.other_threads.empty()) {
    const std::string task_dir = proc_root_ + "/" + std::to_string(t.record.pid) + "/task";
    std::map<uint32_t, IoBytes> seen;
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(task_dir.c_str()), ::closedir);
    while (dir && num_threads > 1) {
      dirent* e = ::readdir(dir.get());
      if (!e) break;
      uint32_t tid = static_cast<uint32_t>(std::strtoul(e->d_name, nullptr, 10));
      if (tid == 0 || tid == t.record.pid) continue;
      if (auto text = read_file(task_dir + "/" + e->d_name + "/io"))
        if (auto io = parse_proc_io(*text)) seen[tid] = IoBytes{io->read_bytes, io->write_bytes};
    }
    for (const auto& [tid, io] : t.other_threads) {
      if (seen.count(tid)) continue;
      t.ended_threads.read_bytes += io.read_bytes;
      t.ended_threads.write_bytes += io.write_bytes;
    }
    t.other_threads = std::move(seen);
    for (const auto& [tid, io] : t.other_threads) {
      total.read_bytes += io.read_bytes;
      total.write_bytes += io.write_bytes;
    }
  }
  total.read_bytes += t.ended_threads.read_bytes;
  total.write_bytes += t.ended_threads.write_bytes;
  return total;
}

void ProcessTable::track(const MemberPid& member, int64_t now_ms) {
  const std::string dir = proc_root_ + "/" + std::to_string(member.pid);
  Tracked t;
  t.stat_fd = open_read(dir + "/stat");
  if (!t.stat_fd) return;  // exited between listing and reading
  auto stat_text = pread_all(t.stat_fd.get());
  if (!stat_text) return;
  auto st = parse_proc_stat(*stat_text);
  if (!st) return;
  // slurmstepd sits in the job's cgroup but is not the job's. A task forked from it keeps that name until it
  // execs, so an untracked pid is looked at again on every tick until it becomes something else.
  if (is_slurm_helper(*st)) {
    slurmstepds_.insert(member.pid);
    return;
  }
  if (auto owned = event_owned_.find(member.pid); owned != event_owned_.end() && owned->second == st->start_ticks)
    return;
  t.status_fd = open_read(dir + "/status");
  t.io_fd = open_read(dir + "/io");
  t.leader_io_fd = open_read(dir + "/task/" + std::to_string(member.pid) + "/io");
  auto& r = t.record;
  r.pid = member.pid;
  r.step = member.step.value_or(store::kStepUnknown);
  r.start_ticks = st->start_ticks;
  r.start_ms = boot_epoch_ms_ + static_cast<int64_t>(st->start_ticks * 1000 / ticks_per_second_);
  if (r.start_ms > now_ms) r.start_ms = now_ms;
  r.command = st->comm;
  if (auto started = task_starts_.find(member.pid);
      started != task_starts_.end() && started->second.start_ticks == st->start_ticks)
    r.task = started->second.task;
  read_identity(t);
  State state = refresh(t);
  if (state == State::Gone) {
    accounting_.forget(member.pid);
    return;
  }
  update_record(t);
  if (state == State::Zombie) {
    t.ended = true;
    r.end_ms = now_ms;
  }
  tracked_[member.pid] = std::move(t);
}

ProcessTotals ProcessTable::sample(const std::vector<MemberPid>& members, int64_t now_ms, store::Batch& batch) {
  // Oldest first: a reaper is always older than what it reaps (its child, or an orphan's ancestor), so a
  // child reaped mid-tick is missing from its reaper's total until its credit lands, rather than counted
  // twice. Pids wrap, so their order is not birth order.
  std::vector<std::pair<uint64_t, uint32_t>> by_birth;
  by_birth.reserve(tracked_.size());
  for (const auto& [pid, t] : tracked_)
    if (!t.gone) by_birth.emplace_back(t.record.start_ticks, pid);
  std::sort(by_birth.begin(), by_birth.end());
  std::vector<uint32_t> newly_gone;
  for (const auto& [start_ticks, pid] : by_birth) {
    Tracked& t = tracked_.at(pid);
    State state = refresh(t);
    if (state != State::Alive && !t.ended) {
      t.ended = true;
      t.changed = true;
      t.record.end_ms = now_ms;
    }
    if (state == State::Gone) {
      t.gone = true;
      newly_gone.push_back(pid);
    }
  }
  for (uint32_t pid : newly_gone) accounting_.reaped(pid);
  for (const auto& m : members) {
    // A tracked pid is either still that process, or ended and the pid reused: the ended one is kept until
    // it is gone and written, and the new one is picked up on a later tick.
    if (tracked_.count(m.pid)) continue;
    track(m, now_ms);
  }
  // Event-owned pids no longer listed are gone for good.
  for (auto it = event_owned_.begin(); it != event_owned_.end();) {
    const uint32_t pid = it->first;
    const bool listed = std::any_of(members.begin(), members.end(), [&](const MemberPid& m) { return m.pid == pid; });
    it = listed ? std::next(it) : event_owned_.erase(it);
  }
  inherit_tasks();
  ProcessTotals totals;
  totals.cpu_ns = forgotten_.cpu_ns;
  totals.read_bytes = forgotten_.read_bytes;
  totals.write_bytes = forgotten_.write_bytes;
  for (auto& [pid, t] : tracked_) {
    update_record(t);
    const auto& r = t.record;
    totals.cpu_ns += r.cpu_ns;
    totals.read_bytes += r.read_bytes;
    totals.write_bytes += r.write_bytes;
    if (!t.ended) {
      totals.live_rss += r.rss;
      totals.live_threads += t.threads;
      ++totals.live;
    }
    const bool gpu_point = t.gpu_memory || t.on_gpu;
    t.on_gpu = t.gpu_memory.has_value();
    if (!t.changed && !gpu_point) continue;
    store::ProcessUpdate update;
    update.record = r;
    update.sample = store::Sample{0, now_ms / 1000, r.cpu_ns, r.rss, r.read_bytes, r.write_bytes, t.threads};
    if (gpu_point) update.gpu_sample = store::GpuSample{0, now_ms / 1000, r.gpu_sm_ns, t.gpu_memory.value_or(0), 0};
    t.gpu_memory.reset();
    batch.processes.push_back(std::move(update));
  }
  return totals;
}

void ProcessTable::commit(const store::Batch& batch) {
  for (const auto& update : batch.processes) {
    auto it = tracked_.find(update.record.pid);
    if (it == tracked_.end() || it->second.record.start_ticks != update.record.start_ticks) continue;
    it->second.record.series_id = update.record.series_id;
    it->second.changed = false;
  }
  const std::set<uint32_t> awaited = accounting_.awaited_reapers();
  for (auto it = tracked_.begin(); it != tracked_.end();) {
    // A credit that came after this tick's sample (a child's exit) changed a gone process's figures after
    // its record went into the batch: it is written again, not forgotten with the stale figures.
    if (it->second.gone) update_record(it->second);
    // A gone process is also kept while a process it will reap lives (that child's credit must reach it),
    // and a task for a few ticks until its final figures come.
    Tracked& t = it->second;
    const bool awaiting_final = t.gone && t.task && !t.final_taken && t.ticks_gone++ < kTicksToAwaitFinal;
    if (t.gone && !t.changed && !held_.count(it->first) && !awaited.count(it->first) && !awaiting_final) {
      forgotten_.cpu_ns += it->second.record.cpu_ns;
      forgotten_.read_bytes += it->second.record.read_bytes;
      forgotten_.write_bytes += it->second.record.write_bytes;
      accounting_.forget(it->first);
      it = tracked_.erase(it);
    } else {
      ++it;
    }
  }
}

std::optional<ProcessTable::Identity> ProcessTable::identity(uint32_t pid) const {
  auto it = tracked_.find(pid);
  if (it == tracked_.end()) return std::nullopt;
  return Identity{it->second.record.start_ticks, it->second.record.step, it->second.record.command};
}

bool ProcessTable::gone(uint32_t pid) const {
  auto it = tracked_.find(pid);
  return it != tracked_.end() && it->second.gone;
}

std::vector<uint32_t> ProcessTable::live_pids() const {
  std::vector<uint32_t> out;
  for (const auto& [pid, t] : tracked_)
    if (!t.ended) out.push_back(pid);
  return out;
}

void ProcessTable::leave_to_events(uint32_t pid, uint64_t start_ticks) { event_owned_[pid] = start_ticks; }

bool ProcessTable::apply_exit(uint32_t pid, uint64_t start_ticks, const ExitFacts& facts, store::Batch& batch) {
  auto it = tracked_.find(pid);
  if (it == tracked_.end() || it->second.record.start_ticks != start_ticks) return false;
  Tracked& t = it->second;
  auto& r = t.record;
  // Reaped since this tick's sample (its parent, whose exit may be applied next, folded its bytes in).
  const bool was_gone = t.gone;
  const bool reaped_now = !was_gone && refresh(t) == State::Gone;
  r.exited = true;
  r.exit_code = facts.exit_code;
  r.exit_signal = facts.exit_signal;
  r.core_dumped = facts.core_dumped;
  r.exact = true;
  r.end_ms = facts.end_ms;  // exact, where sampling saw the end up to an interval late
  t.ended = true;
  // The kernel's final figures: sampling may have missed the last interval's CPU, bytes and a late peak.
  // The exit's bytes include reaped children, like /proc/PID/io; the caller credits a child that ends in the
  // same tick first. A process reaped after this tick's sample credits its reaper with its final figures
  // now, not at the next sample: its parent's exit, applied after its children's, takes its children's part
  // out of its own.
  accounting_.observe(pid, Counters{facts.cpu_ns, 0, 0}, Counters{});
  accounting_.observe_inclusive_bytes_at_exit(pid, facts.read_bytes, facts.write_bytes);
  if (was_gone || reaped_now) {
    t.gone = true;
    accounting_.reaped(pid);
  }
  r.max_rss = std::max(r.max_rss, facts.max_rss);
  r.rss = 0;
  update_record(t);
  t.changed = true;
  for (auto& u : batch.processes) {
    if (u.record.pid != pid || u.record.start_ticks != start_ticks) continue;
    const uint32_t series = u.record.series_id;
    u.record = r;
    u.record.series_id = series;
    return true;
  }
  store::ProcessUpdate update;
  update.record = r;
  batch.processes.push_back(std::move(update));
  return true;
}

void ProcessTable::apply_parent(uint32_t pid, uint64_t start_ticks, uint32_t ppid, int64_t fork_ms) {
  auto it = tracked_.find(pid);
  if (it == tracked_.end() || it->second.record.start_ticks != start_ticks) return;
  store::ProcessRecord& r = it->second.record;
  if (r.ppid == ppid && r.start_ms == fork_ms) return;
  r.ppid = ppid;
  r.start_ms = fork_ms;
  it->second.changed = true;
}

void ProcessTable::apply_exec(uint32_t pid, uint64_t start_ticks, const ExecFacts& facts) {
  auto it = tracked_.find(pid);
  if (it == tracked_.end() || it->second.record.start_ticks != start_ticks) return;
  store::ProcessRecord& r = it->second.record;
  if (r.argv == facts.argv && r.exe == facts.exe && r.command == facts.command &&
      r.argv_truncated == facts.argv_truncated)
    return;
  r.argv = facts.argv;
  r.exe = facts.exe;
  r.command = facts.command;
  r.argv_truncated = facts.argv_truncated;
  it->second.changed = true;
}

void ProcessTable::apply_task_end(const TaskEnd& end) {
  auto it = tracked_.find(end.pid);
  if (it != tracked_.end()) {
    if (it->second.record.start_ticks != end.start_ticks) return;  // another process now has the pid
    accounting_.observe_final(end.pid, end.inclusive);
    it->second.final_taken = true;
    update_record(it->second);
    return;
  }
  if (auto owned = event_owned_.find(end.pid); owned != event_owned_.end() && owned->second == end.start_ticks)
    return;  // its exit event made its record
  // Never sampled: it lived less than an interval. Its record, gone at once, is written with this tick.
  Tracked t;
  store::ProcessRecord& r = t.record;
  r.pid = end.pid;
  r.ppid = end.parent;
  r.step = end.step;
  r.start_ticks = end.start_ticks;
  r.start_ms = boot_epoch_ms_ + static_cast<int64_t>(end.start_ticks * 1000 / ticks_per_second_);
  r.end_ms = std::max(end.end_ms, r.start_ms);
  r.command = end.command;
  r.task = end.task;
  t.ended = t.gone = t.task = t.final_taken = true;
  accounting_.observe(end.pid, Counters{}, end.inclusive);
  accounting_.set_reaper(end.pid, end.parent);
  accounting_.reaped(end.pid);
  update_record(t);
  t.changed = true;
  tracked_[end.pid] = std::move(t);
}

void ProcessTable::apply_task_start(uint32_t pid, uint64_t start_ticks, uint32_t task) {
  // Kept for the whole job: a task's pid is looked up when it is first tracked, and when its descendants
  // are; a job has few tasks per node.
  task_starts_[pid] = TaskStart{start_ticks, task};
  auto it = tracked_.find(pid);
  if (it == tracked_.end() || it->second.record.start_ticks != start_ticks || it->second.record.task == task) return;
  it->second.record.task = task;
  it->second.changed = true;
}

bool ProcessTable::apply_gpu(uint32_t pid, uint64_t memory_bytes, uint64_t sm_ns) {
  auto it = tracked_.find(pid);
  if (it == tracked_.end() || it->second.ended) return false;
  store::ProcessRecord& r = it->second.record;
  if (memory_bytes > r.gpu_memory_max || sm_ns > 0) it->second.changed = true;
  r.gpu_memory_max = std::max(r.gpu_memory_max, memory_bytes);
  r.gpu_sm_ns += sm_ns;
  it->second.gpu_memory = memory_bytes;  // its GPU point, whether or not the record changed
  return true;
}

void ProcessTable::inherit_tasks() {
  if (task_starts_.empty()) return;  // not a job whose tasks were named: nothing to inherit
  for (auto& [pid, t] : tracked_) {
    if (t.record.task != store::kTaskUnknown) continue;
    // Up the parents at birth to the nearest one with a task. A chain that leaves the table (to slurmstepd,
    // or to a parent already forgotten) gives none. Bounded: a parent loop of reused pids must not spin.
    uint32_t parent = t.record.ppid;
    for (int depth = 0; depth < 64 && parent != 0 && parent != pid; ++depth) {
      auto up = tracked_.find(parent);
      if (up == tracked_.end()) break;
      if (up->second.record.task != store::kTaskUnknown) {
        t.record.task = up->second.record.task;
        t.changed = true;
        break;
      }
      parent = up->second.record.ppid;
    }
  }
}

uint32_t ProcessTable::task_of(uint32_t pid) const {
  if (auto it = tracked_.find(pid); it != tracked_.end() && it->second.record.task != store::kTaskUnknown)
    return it->second.record.task;
  auto started = task_starts_.find(pid);
  return started != task_starts_.end() ? started->second.task : store::kTaskUnknown;
}

void ProcessTable::credit_child(uint32_t parent, uint64_t cpu_ns, uint64_t read_bytes, uint64_t write_bytes) {
  if (tracked_.count(parent)) accounting_.credit(parent, Counters{cpu_ns, read_bytes, write_bytes});
}

}  // namespace bc::monitor
