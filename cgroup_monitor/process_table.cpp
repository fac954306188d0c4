#include "process_table.hpp"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>

#include <ctime>

#include "proc_parse.hpp"

namespace bc::monitor {
namespace {

int64_t boot_epoch_ms() {
  timespec real{}, boot{};
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_BOOTTIME, &boot);
  return (real.tv_sec - boot.tv_sec) * 1000 + (real.tv_nsec - boot.tv_nsec) / 1000000;
}

// Processes that belong to Slurm, not to the job, though they sit in its cgroup.
bool is_slurm_helper(const ProcStat& st) { return st.comm == "slurmstepd"; }

}  // namespace

ProcessTable::ProcessTable(std::string proc_root)
    : proc_root_(std::move(proc_root)),
      ticks_per_second_(sysconf(_SC_CLK_TCK)),
      page_size_(static_cast<uint64_t>(sysconf(_SC_PAGESIZE))),
      boot_epoch_ms_(boot_epoch_ms()) {}

bool ProcessTable::refresh(Tracked& t) {
  auto stat_text = pread_all(t.stat_fd.get());
  if (!stat_text) return false;  // ESRCH: the task is gone
  auto st = parse_proc_stat(*stat_text);
  if (!st) return false;
  auto& r = t.record;
  if (st->comm != r.command && st->state != 'Z') {
    // comm changes on exec: the process is running another program now.
    r.command = st->comm;
    read_identity(t);
    t.changed = true;
  }
  uint64_t cpu = (st->utime_ticks + st->stime_ticks) * (1000000000ULL / static_cast<uint64_t>(ticks_per_second_));
  uint64_t rss = st->rss_pages * page_size_;
  uint64_t hwm = r.max_rss;
  if (auto status_text = pread_all(t.status_fd.get())) {
    if (auto status = parse_proc_status(*status_text)) {
      hwm = std::max(hwm, status->vm_hwm_bytes);
      if (status->vm_rss_bytes) rss = status->vm_rss_bytes;
    }
  }
  hwm = std::max(hwm, rss);
  uint64_t rd = r.read_bytes, wr = r.write_bytes;
  if (auto io = own_io(t, st->num_threads)) {
    rd = io->read_bytes;
    wr = io->write_bytes;
  }
  // A zombie's counters are final, but its memory is already released: keep the last RSS seen.
  bool zombie = st->state == 'Z' || st->state == 'X';
  if (zombie) rss = 0;
  if (cpu != r.cpu_ns || rss != r.rss || hwm != r.max_rss || rd != r.read_bytes || wr != r.write_bytes ||
      st->ppid != r.ppid) {
    t.changed = true;
  }
  r.cpu_ns = std::max(r.cpu_ns, cpu);
  r.rss = rss;
  r.max_rss = hwm;
  r.read_bytes = std::max(r.read_bytes, rd);
  r.write_bytes = std::max(r.write_bytes, wr);
  if (st->ppid != 0) r.ppid = st->ppid;  // a zombie reparented to 0 keeps the parent it had
  return !zombie;
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
  if (is_slurm_helper(*st)) return;
  t.status_fd = open_read(dir + "/status");
  t.leader_io_fd = open_read(dir + "/task/" + std::to_string(member.pid) + "/io");
  auto& r = t.record;
  r.pid = member.pid;
  r.ppid = st->ppid;
  r.step = member.step.value_or(store::kStepUnknown);
  r.start_ticks = st->start_ticks;
  r.start_ms = boot_epoch_ms_ + static_cast<int64_t>(st->start_ticks * 1000 / static_cast<uint64_t>(ticks_per_second_));
  if (r.start_ms > now_ms) r.start_ms = now_ms;
  r.command = st->comm;
  read_identity(t);
  bool alive = refresh(t);
  if (!alive) {
    t.ended = true;
    r.end_ms = now_ms;
  }
  tracked_[member.pid] = std::move(t);
}

ProcessTotals ProcessTable::sample(const std::vector<MemberPid>& members, int64_t now_ms, store::Batch& batch) {
  for (auto& [pid, t] : tracked_) {
    if (t.ended) continue;
    if (!refresh(t)) {
      t.ended = true;
      t.changed = true;
      t.record.end_ms = now_ms;
    }
  }
  for (const auto& m : members) {
    // A tracked pid is either still that process, or ended and the pid reused: the ended one is kept until
    // its final record is written, and the new one is picked up on the next tick.
    if (tracked_.count(m.pid)) continue;
    track(m, now_ms);
  }
  ProcessTotals totals;
  totals.cpu_ns = ended_cpu_ns_;
  totals.read_bytes = ended_read_;
  totals.write_bytes = ended_write_;
  for (auto& [pid, t] : tracked_) {
    const auto& r = t.record;
    totals.cpu_ns += r.cpu_ns;
    totals.read_bytes += r.read_bytes;
    totals.write_bytes += r.write_bytes;
    if (!t.ended) {
      totals.live_rss += r.rss;
      ++totals.live;
    }
    if (!t.changed) continue;
    store::ProcessUpdate update;
    update.record = r;
    update.sample = store::Sample{0, now_ms / 1000, r.cpu_ns, r.rss, r.read_bytes, r.write_bytes};
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
  for (auto it = tracked_.begin(); it != tracked_.end();) {
    if (it->second.ended && !it->second.changed) {
      ended_cpu_ns_ += it->second.record.cpu_ns;
      ended_read_ += it->second.record.read_bytes;
      ended_write_ += it->second.record.write_bytes;
      it = tracked_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace bc::monitor
