// User-space side of the per-job BPF events: loads or reuses the node's pinned programs, owns a job slot,
// and turns ring events and kernel aggregates into the structs of events.hpp. Design notes in events.hpp.
#include "cgroup_monitor/bpf/events.hpp"

#include <linux/membarrier.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

#include "cgroup_monitor/bpf/aggregates.hpp"
#include "cgroup_monitor/bpf/bc_events.h"
#include "common/fd.hpp"

#ifndef BC_EVENTS_NO_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup_monitor/bpf/program_set.hpp"
#endif

namespace bc::events {

static_assert(sizeof(bc_ev_hdr) == 16);
static_assert(sizeof(bc_ev_fork) == 24);
static_assert(offsetof(bc_ev_exec, data) == 40);
static_assert(sizeof(bc_ev_exit) == 72);
static_assert(offsetof(bc_ev_name, data) == 40);
static_assert(sizeof(bc_file_key) == 16 && sizeof(bc_file_val) == 48);
static_assert(sizeof(bc_conn_key) == 32 && sizeof(bc_conn_val) == 40);
static_assert(sizeof(bc_tracked) == 16 && sizeof(bc_slot_cfg) == 16 && sizeof(bc_slot_owner) == 16);
static_assert(sizeof(bc_slot_stats) == 48 && sizeof(bc_node_cfg) == 8 && sizeof(bc_meta) == 16);

const char kUnavailable[] = "events unavailable: ";

#ifdef BC_EVENTS_NO_BPF

struct EventCollector::Impl {};
EventCollector::EventCollector(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
EventCollector::~EventCollector() = default;
EventCollector::EventCollector(EventCollector&&) noexcept = default;
EventCollector& EventCollector::operator=(EventCollector&&) noexcept = default;
std::unique_ptr<EventCollector> EventCollector::open(const Options&, std::string& reason) {
  reason = std::string(kUnavailable) + "built without BPF support (no clang, bpftool or kernel BTF at build time)";
  return nullptr;
}
bool EventCollector::track(uint32_t) noexcept { return false; }
Drained EventCollector::drain() noexcept { return {}; }
int EventCollector::poll_fd() const noexcept { return -1; }
size_t EventCollector::pump() noexcept { return 0; }
uint32_t EventCollector::slot() const noexcept { return 0; }
const std::string& EventCollector::pin_path() const noexcept {
  static const std::string empty;
  return empty;
}
size_t EventCollector::ring_bytes() const noexcept { return 0; }
const LoadInfo& EventCollector::load_info() const noexcept {
  static const LoadInfo none;
  return none;
}
std::string EventCollector::reclaim_stale(const Options&) noexcept { return {}; }
CheckReport check_events(const Options&) noexcept {
  CheckReport r;
  r.reason = "built without BPF support (no clang, bpftool or kernel BTF at build time)";
  r.kernel = running_kernel();
  return r;
}

#else  // BPF support

using namespace detail;

namespace {

uint64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// CLOCK_REALTIME - CLOCK_BOOTTIME, from the tightest of a few bracketed reads.
int64_t boot_to_epoch_offset() {
  int64_t best = 0;
  uint64_t best_window = UINT64_MAX;
  for (int i = 0; i < 3; ++i) {
    uint64_t b0 = clock_ns(CLOCK_BOOTTIME);
    uint64_t r = clock_ns(CLOCK_REALTIME);
    uint64_t b1 = clock_ns(CLOCK_BOOTTIME);
    if (b1 - b0 < best_window) {
      best_window = b1 - b0;
      best = static_cast<int64_t>(r) - static_cast<int64_t>(b0 + (b1 - b0) / 2);
    }
  }
  return best;
}

size_t round_ring_size(size_t want) {
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  size_t size = page;
  while (size < want && size < (size_t{1} << 30)) size <<= 1;
  return size;
}

}  // namespace

struct EventCollector::Impl {
  Logger log;
  Options opt;
  LoadInfo info;
  std::string set_dir;
  Pins pins;
  uint32_t slot = 0;
  uint32_t epoch = 0;
  uint32_t cfg_flags = 0;
  uint32_t active = 0;
  uint64_t keys_seen = 0;  // keys_added() when the active half was last switched
  size_t ring_size = 0;
  UniqueFd ring_fd;
  UniqueFd files_fd[2], conns_fd[2];
  struct RingDeleter {
    void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
  };
  std::unique_ptr<ring_buffer, RingDeleter> ring;
  unsigned ncpus = 1;

  // Between drains
  Drained pending;
  size_t pending_events = 0;
  size_t budget = 0;
  LossCounts user_lost;    // counted here: track() failures, malformed events
  LossCounts kernel_seen;  // kernel counters at the previous drain
  LossCounts user_seen;
  int64_t epoch_offset = 0;

  NameTable file_names, unix_names;  // path and unix socket names by their kernel hash
  uint64_t drains = 0;

  explicit Impl(const Options& o) : log(o.log, o.verbose), opt(o) {}

  uint64_t to_epoch(uint64_t boot_ns) const {
    return static_cast<uint64_t>(static_cast<int64_t>(boot_ns) + epoch_offset);
  }

  static int on_sample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<Impl*>(ctx);
    try {
      self->handle(static_cast<const char*>(data), size);
    } catch (...) {
      ++self->user_lost.user;  // allocation failure: the event is lost, and counted
    }
    if (++self->pending_events >= self->budget) return -ECANCELED;  // bounded: the rest stays in the ring
    return 0;
  }

  void handle(const char* data, size_t size) {
    if (size < sizeof(bc_ev_hdr)) {
      ++user_lost.user;
      return;
    }
    bc_ev_hdr hdr;
    std::memcpy(&hdr, data, sizeof hdr);
    switch (hdr.type) {
      case BC_EV_FORK: {
        if (size < sizeof(bc_ev_fork)) break;
        bc_ev_fork e;
        std::memcpy(&e, data, sizeof e);
        pending.forks.push_back({e.hdr.tgid, e.child, to_epoch(e.hdr.time_ns)});
        return;
      }
      case BC_EV_EXIT: {
        if (size < sizeof(bc_ev_exit)) break;
        bc_ev_exit e;
        std::memcpy(&e, data, sizeof e);
        ExitInfo x;
        x.pid = e.hdr.tgid;
        x.time_ns = to_epoch(e.hdr.time_ns);
        auto code = static_cast<uint32_t>(e.exit_code);
        if ((code & 0x7f) == 0) {
          x.exit_code = static_cast<int>((code >> 8) & 0xff);
        } else {
          x.exit_code = -1;
          x.signal = static_cast<int>(code & 0x7f);
          x.core_dumped = (code & 0x80) != 0;
        }
        x.cpu_ns = e.cpu_ns;
        x.read_bytes = e.read_bytes;
        x.write_bytes = e.write_bytes;
        // As the kernel's cputime_adjust: split the precise runtime in the ratio of the tick samples.
        uint64_t ut = e.utime_ticks_ns, st = e.stime_ticks_ns;
        if (st == 0) {
          x.user_ns = x.cpu_ns;
        } else if (ut == 0) {
          x.sys_ns = x.cpu_ns;
        } else {
          x.sys_ns = static_cast<uint64_t>(static_cast<long double>(x.cpu_ns) * static_cast<long double>(st) /
                                           static_cast<long double>(ut + st));
          x.user_ns = x.cpu_ns - x.sys_ns;
        }
        x.max_rss_bytes = e.maxrss_bytes;
        pending.exits.push_back(x);
        return;
      }
      case BC_EV_EXEC: {
        constexpr size_t head = offsetof(bc_ev_exec, data);
        if (size < head) break;
        bc_ev_exec e;
        std::memcpy(&e, data, head);
        size_t need = size_t{e.filename_len} + e.exe_len + e.argv_len;
        if (need > size - head) break;
        const char* p = data + head;
        ExecInfo x;
        x.pid = e.hdr.tgid;
        x.ppid = e.ppid;
        x.time_ns = to_epoch(e.hdr.time_ns);
        x.filename.assign(p, e.filename_len);
        x.exe.assign(p + e.filename_len, e.exe_len);
        if (e.flags & BC_EXEC_EXE_TRUNCATED) x.exe = "..." + x.exe;
        const char* a = p + e.filename_len + e.exe_len;
        size_t alen = e.argv_len;
        x.argv_truncated = (e.flags & BC_EXEC_ARGV_TRUNCATED) != 0;
        size_t i = 0;
        while (i < alen) {
          const char* nul = static_cast<const char*>(std::memchr(a + i, '\0', alen - i));
          size_t end = nul ? static_cast<size_t>(nul - a) : alen;
          if (x.argv.size() == BC_ARGV_MAX_ARGS) {
            x.argv_truncated = true;
            break;
          }
          x.argv.emplace_back(a + i, end - i);
          i = end + 1;
        }
        pending.execs.push_back(std::move(x));
        return;
      }
      case BC_EV_NAME: {
        constexpr size_t head = offsetof(bc_ev_name, data);
        if (size < head) break;
        bc_ev_name e;
        std::memcpy(&e, data, head);
        if (e.len > size - head) break;
        std::string text(data + head, e.len);
        // Deeper than the walk goes: the top of the path is missing, and says so.
        if (e.flags & BC_NAME_TRUNCATED) text = ".../" + text;
        if (e.kind == BC_NAME_FILE) {
          file_names.put(e.hash, normalize_path(text));
        } else if (e.kind == BC_NAME_UNIX) {
          if (!text.empty() && text[0] == '\0') {
            std::replace(text.begin(), text.end(), '\0', '@');  // abstract socket, shown as ss does
          }
          unix_names.put(e.hash, std::move(text));
        }
        return;
      }
      default: break;
    }
    ++user_lost.user;
  }

  size_t consume() {
    if (!ring) return 0;
    if (pending_events >= budget) return 0;
    int n = ring_buffer__consume(ring.get());
    if (n < 0 && n != -ECANCELED) log(LogLevel::Warn, "ring buffer read failed: " + errno_text(n));
    return n > 0 ? static_cast<size_t>(n) : 0;
  }

  static bool map_empty(int fd, size_t key_size) {
    std::vector<char> key(key_size);
    return bpf_map_get_next_key(fd, nullptr, key.data()) != 0;
  }

  // The kernel's count of keys added to this slot's aggregate maps, or nothing when it cannot be read.
  std::optional<uint64_t> keys_added() const {
    std::vector<bc_slot_stats> per_cpu(ncpus);
    uint32_t key = slot;
    if (bpf_map_lookup_elem(pins.slot_stats.get(), &key, per_cpu.data()) != 0) return std::nullopt;
    uint64_t sum = 0;
    for (const auto& s : per_cpu) sum += s.keys_added;
    return sum;
  }

  // Reads and empties one inactive aggregate map.
  template <typename K, typename V, typename F>
  static void take_all(int fd, F&& f) {
    constexpr uint32_t chunk = 1024;
    std::vector<K> keys(chunk);
    std::vector<V> vals(chunk);
    uint64_t token = 0;
    bool first = true;
    bool batch_ok = true;
    for (;;) {
      uint32_t count = chunk;
      int err = bpf_map_lookup_and_delete_batch(fd, first ? nullptr : &token, &token, keys.data(), vals.data(), &count,
                                                nullptr);
      int e = err ? errno : 0;
      for (uint32_t i = 0; i < count && (err == 0 || e == ENOENT); ++i) f(keys[i], vals[i]);
      if (err == 0) {
        first = false;
        continue;
      }
      if (e == ENOENT) return;                        // done
      if (e == ENOSPC && keys.size() < (1u << 20)) {  // a bucket larger than the chunk
        keys.resize(keys.size() * 2);
        vals.resize(vals.size() * 2);
        continue;
      }
      batch_ok = false;
      break;
    }
    if (!batch_ok) {  // kernels without batch ops: one key at a time
      K key{};
      while (bpf_map_get_next_key(fd, nullptr, &key) == 0) {
        V val{};
        if (bpf_map_lookup_elem(fd, &key, &val) == 0) f(key, val);
        bpf_map_delete_elem(fd, &key);
      }
    }
  }

  LossCounts kernel_losses() const {
    LossCounts sum;
    std::vector<bc_slot_stats> per_cpu(ncpus);
    uint32_t key = slot;
    if (bpf_map_lookup_elem(pins.slot_stats.get(), &key, per_cpu.data()) != 0) return kernel_seen;
    for (const auto& s : per_cpu) {
      sum.ring += s.ring_lost;
      sum.files += s.files_lost;
      sum.conns += s.conns_lost;
      sum.tracked += s.tracked_lost;
      sum.read_failed += s.read_failed;
    }
    return sum;
  }

  void wait_for_programs() {
    // After this, no BPF program that could have seen the old "active" value is still running: each runs
    // inside an RCU read-side section, and MEMBARRIER_CMD_GLOBAL waits for an RCU grace period.
    if (::syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) != 0) {
      timespec ts{0, 20 * 1000 * 1000};  // nohz_full kernels refuse it; programs run for microseconds
      ::nanosleep(&ts, nullptr);
    }
  }

  Drained drain() {
    ++drains;
    epoch_offset = boot_to_epoch_offset();
    budget = opt.max_events_per_drain;
    consume();

    // Switch the kernel to the other half of the aggregate maps if this one holds anything.
    FileRows file_rows;
    ConnectionRows conn_rows;
    // The active half holds something only if a key was added since the last switch. The count is read
    // before switching: a key added meanwhile makes the next drain look (perhaps at an empty half).
    bool busy;
    const uint64_t seen_before = keys_seen;
    if (auto added = keys_added()) {
      busy = *added != keys_seen;
      keys_seen = *added;
    } else {
      busy = !map_empty(files_fd[active].get(), sizeof(bc_file_key)) ||
             !map_empty(conns_fd[active].get(), sizeof(bc_conn_key));
    }
    if (busy) {
      uint32_t old = active;
      active ^= 1;
      bc_slot_cfg cfg{epoch, active, cfg_flags, 0};
      uint32_t key = slot;
      if (bpf_map_update_elem(pins.slot_cfg.get(), &key, &cfg, BPF_ANY) != 0) {
        log(LogLevel::Error, "cannot switch aggregate maps: " + errno_text(errno));
        active = old;
        keys_seen = seen_before;  // look again next time
      } else {
        wait_for_programs();
        budget = SIZE_MAX;  // the names of what is about to be read must be in
        consume();
        take_all<bc_file_key, bc_file_val>(
            files_fd[old].get(), [&](const bc_file_key& k, const bc_file_val& v) { file_rows.emplace_back(k, v); });
        take_all<bc_conn_key, bc_conn_val>(
            conns_fd[old].get(), [&](const bc_conn_key& k, const bc_conn_val& v) { conn_rows.emplace_back(k, v); });
      }
    }

    Drained out = std::move(pending);
    pending = Drained{};
    pending_events = 0;

    out.files = merge_files(file_rows, file_names, epoch_offset);
    out.conns = merge_connections(conn_rows, unix_names);
    file_names.age();
    unix_names.age();

    LossCounts k = kernel_losses();
    out.lost.ring = k.ring - kernel_seen.ring;
    out.lost.files = k.files - kernel_seen.files;
    out.lost.conns = k.conns - kernel_seen.conns;
    out.lost.tracked = k.tracked - kernel_seen.tracked + user_lost.tracked - user_seen.tracked;
    out.lost.read_failed = k.read_failed - kernel_seen.read_failed;
    out.lost.user = user_lost.user - user_seen.user;
    kernel_seen = k;
    user_seen = user_lost;
    out.lost_events = out.lost.total();
    return out;
  }

  bool track(uint32_t tgid) {
    bc_tracked cur{};
    if (bpf_map_lookup_elem(pins.tracked.get(), &tgid, &cur) == 0) {
      if (cur.slot == slot && cur.epoch == epoch) return true;
      bc_slot_cfg other{};
      uint32_t s = cur.slot;
      if (bpf_map_lookup_elem(pins.slot_cfg.get(), &s, &other) == 0 && other.epoch != 0 && other.epoch == cur.epoch)
        return false;  // another job's process
    }
    bc_tracked t{slot, epoch, 0, 0};
    pins.tracked_bits.mark(tgid);  // before the entry: the programs look at the bit first
    if (bpf_map_update_elem(pins.tracked.get(), &tgid, &t, BPF_ANY) != 0) {
      if (errno == E2BIG || errno == ENOMEM) ++user_lost.tracked;
      return false;
    }
    // A process that ended before it was entered would leave an entry its exit can no longer remove.
    char state = 0;
    if (proc_start_ticks(tgid, &state) == 0 || has_ended(state)) {
      bc_tracked now{};
      if (bpf_map_lookup_elem(pins.tracked.get(), &tgid, &now) == 0 && now.slot == slot && now.epoch == epoch &&
          now.gen == 0)
        bpf_map_delete_elem(pins.tracked.get(), &tgid);
      return false;
    }
    return true;
  }

  // Drops whatever an earlier owner left unread in a reused ring.
  static void discard_ring(int fd) {
    ring_buffer* rb = ring_buffer__new(
        fd, [](void*, void*, size_t) { return 0; }, nullptr, nullptr);
    if (!rb) return;
    ring_buffer__consume(rb);
    ring_buffer__free(rb);
  }

  // Under the lock: takes a free slot and gives it this collector's maps.
  bool take_slot(std::string& error) {
    reclaim_dead_slots(pins, log);
    std::optional<uint32_t> free_slot;
    bc_slot_owner owner{};
    for (uint32_t s = 0; s < BC_MAX_SLOTS && !free_slot; ++s) {
      bc_slot_owner o{};
      if (bpf_map_lookup_elem(pins.slot_owner.get(), &s, &o) == 0 && o.pid == 0) {
        free_slot = s;
        owner = o;
      }
    }
    if (!free_slot) {
      error = "no free job slot (" + std::to_string(BC_MAX_SLOTS) + " monitored jobs on this node already)";
      return false;
    }
    slot = *free_slot;
    epoch = owner.last_epoch + 1;
    if (epoch == 0) epoch = 1;

    ring_size = round_ring_size(opt.ring_bytes);
    uint32_t key = slot;
    // The maps an earlier owner of the slot left installed are reused (see clear_slot), emptied first: the
    // slot's epoch is 0 until the end of this function, so nothing writes them meanwhile.
    bool ring_installed = false;
    ring_fd = installed_inner(pins.rings.get(), key, BPF_MAP_TYPE_RINGBUF, 0, 0, static_cast<uint32_t>(ring_size));
    if (ring_fd) {
      ring_installed = true;
      discard_ring(ring_fd.get());
    } else {
      ring_fd = UniqueFd(bpf_map_create(BPF_MAP_TYPE_RINGBUF, "bc_ring", 0, 0, static_cast<__u32>(ring_size), nullptr));
    }
    if (!ring_fd) {
      error = "cannot create a " + std::to_string(ring_size) + "-byte ring buffer: " + errno_text(errno);
      return false;
    }
    bpf_map_create_opts agg_opts{};
    agg_opts.sz = sizeof agg_opts;
    agg_opts.map_flags = BPF_F_NO_PREALLOC;  // as the template in bc_events.bpf.c
    bool aggs_installed[2][2] = {};
    for (uint32_t h = 0; h < 2; ++h) {
      const uint32_t idx = slot * 2 + h;
      files_fd[h] = installed_inner(pins.files.get(), idx, BPF_MAP_TYPE_HASH, sizeof(bc_file_key), sizeof(bc_file_val),
                                    BC_FILE_AGG_MAX);
      conns_fd[h] = installed_inner(pins.conns.get(), idx, BPF_MAP_TYPE_HASH, sizeof(bc_conn_key), sizeof(bc_conn_val),
                                    BC_CONN_AGG_MAX);
      aggs_installed[h][0] = static_cast<bool>(files_fd[h]);
      aggs_installed[h][1] = static_cast<bool>(conns_fd[h]);
      if (files_fd[h]) take_all<bc_file_key, bc_file_val>(files_fd[h].get(), [](const auto&, const auto&) {});
      else
        files_fd[h] = UniqueFd(bpf_map_create(BPF_MAP_TYPE_HASH, "bc_files", sizeof(bc_file_key), sizeof(bc_file_val),
                                              BC_FILE_AGG_MAX, &agg_opts));
      if (conns_fd[h]) take_all<bc_conn_key, bc_conn_val>(conns_fd[h].get(), [](const auto&, const auto&) {});
      else
        conns_fd[h] = UniqueFd(bpf_map_create(BPF_MAP_TYPE_HASH, "bc_conns", sizeof(bc_conn_key), sizeof(bc_conn_val),
                                              BC_CONN_AGG_MAX, &agg_opts));
      if (!files_fd[h] || !conns_fd[h]) {
        error = "cannot create aggregate maps: " + errno_text(errno);
        return false;
      }
    }
    // Stats start from zero for the new owner.
    std::vector<bc_slot_stats> zero_stats(ncpus);
    bpf_map_update_elem(pins.slot_stats.get(), &key, zero_stats.data(), BPF_ANY);

    int rfd = ring_fd.get();
    if (!ring_installed && bpf_map_update_elem(pins.rings.get(), &key, &rfd, BPF_ANY) != 0) {
      // Kernels before 6.8 want inner maps sized like the template.
      if (errno == EINVAL && ring_size != BC_RING_TEMPLATE_BYTES) {
        log(LogLevel::Warn, "this kernel needs every job's ring to be " + std::to_string(BC_RING_TEMPLATE_BYTES) +
                                " bytes; using that instead of " + std::to_string(ring_size));
        ring_size = BC_RING_TEMPLATE_BYTES;
        ring_fd =
            UniqueFd(bpf_map_create(BPF_MAP_TYPE_RINGBUF, "bc_ring", 0, 0, static_cast<__u32>(ring_size), nullptr));
        rfd = ring_fd.get();
      }
      if (!ring_fd || bpf_map_update_elem(pins.rings.get(), &key, &rfd, BPF_ANY) != 0) {
        error = "cannot install the ring buffer: " + errno_text(errno);
        return false;
      }
    }
    for (uint32_t h = 0; h < 2; ++h) {
      uint32_t idx = slot * 2 + h;
      int ffd = files_fd[h].get(), cfd = conns_fd[h].get();
      if ((!aggs_installed[h][0] && bpf_map_update_elem(pins.files.get(), &idx, &ffd, BPF_ANY) != 0) ||
          (!aggs_installed[h][1] && bpf_map_update_elem(pins.conns.get(), &idx, &cfd, BPF_ANY) != 0)) {
        error = "cannot install aggregate maps: " + errno_text(errno);
        clear_slot(pins, slot);
        return false;
      }
    }
    cfg_flags = opt.file_io_bytes ? BC_SLOT_IO_BYTES : 0;
    active = 0;
    keys_seen = 0;
    bc_slot_cfg cfg{epoch, active, cfg_flags, 0};
    if (bpf_map_update_elem(pins.slot_cfg.get(), &key, &cfg, BPF_ANY) != 0) {
      error = "cannot configure the slot: " + errno_text(errno);
      clear_slot(pins, slot);
      return false;
    }
    if (opt.file_io_bytes) {
      uint32_t zero = 0;
      bc_node_cfg n{};
      bpf_map_lookup_elem(pins.node_cfg.get(), &zero, &n);
      ++n.io_slots;
      bpf_map_update_elem(pins.node_cfg.get(), &zero, &n, BPF_ANY);
    }
    owner.pid = static_cast<uint32_t>(::getpid());
    owner.last_epoch = epoch;
    owner.start_ticks = proc_start_ticks(owner.pid);
    if (bpf_map_update_elem(pins.slot_owner.get(), &key, &owner, BPF_ANY) != 0) {
      error = "cannot record the slot owner: " + errno_text(errno);
      clear_slot(pins, slot);
      return false;
    }
    return true;
  }

  void release() {
    if (!pins.slot_owner) return;
    std::string error;
    auto lock = SlotLock::take(opt.run_dir, error);
    if (!lock) log(LogLevel::Warn, "releasing job slot without the lock: " + error);
    ring.reset();
    clear_slot(pins, slot);
    uint32_t key = slot;
    bc_slot_owner o{};
    bpf_map_lookup_elem(pins.slot_owner.get(), &key, &o);
    o.pid = 0;
    o.start_ticks = 0;
    bpf_map_update_elem(pins.slot_owner.get(), &key, &o, BPF_ANY);
    if (lock && reclaim_dead_slots(pins, log) == 0) {
      // Last user of this set: the programs are detached, so an idle node runs nothing; they stay loaded
      // for the next job (reclaim_stale() unloads them).
      pins = Pins{};
      detach_programs(set_dir);
      log(LogLevel::Info, "last monitored job on this node: BPF programs detached");
    }
  }
};

EventCollector::EventCollector(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
EventCollector::EventCollector(EventCollector&&) noexcept = default;
EventCollector& EventCollector::operator=(EventCollector&& o) noexcept {
  if (this != &o) {
    if (impl_) impl_->release();
    impl_ = std::move(o.impl_);
  }
  return *this;
}

EventCollector::~EventCollector() {
  if (impl_) impl_->release();
}

std::unique_ptr<EventCollector> EventCollector::open(const Options& options, std::string& unavailable_reason) {
  unavailable_reason.clear();
  auto unavailable = [&](const std::string& why) -> std::unique_ptr<EventCollector> {
    unavailable_reason = kUnavailable + why;
    return nullptr;
  };
  try {
    if (!options.enabled) return unavailable("disabled by configuration (bpf=off)");
    if (::access("/sys/kernel/btf/vmlinux", R_OK) != 0)
      return unavailable("the kernel has no BTF (/sys/kernel/btf/vmlinux: " + errno_text(errno) + ")");
    auto impl = std::make_unique<Impl>(options);
    if (impl->opt.run_dir.empty()) impl->opt.run_dir = kNodeRunDir;
    while (impl->opt.pin_dir.size() > 1 && impl->opt.pin_dir.back() == '/') impl->opt.pin_dir.pop_back();
    int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) return unavailable("cannot count CPUs: " + errno_text(cpus));
    impl->ncpus = static_cast<unsigned>(cpus);

    // A load the kernel refused before is not tried again (the verifier would only refuse it again, at a
    // cost), before anything else is done: the file's name stands for the monitor binary and the object file
    // (a new build of either is a new file), so only the kernel is compared here. Another kernel's is dropped.
    const std::string memory = load_failure_path(impl->opt.run_dir, options.monitor_binary, options.object_file);
    if (auto failure = read_load_failure(memory)) {
      if (failure->kernel == running_kernel())
        return unavailable(failure->reason + " (remembered since " + utc_time_text(failure->since) +
                           "; 'bc-monitor --check-events' tries again)");
      forget_load_failure(memory);
    }

    std::string error;
    auto object = ObjectSource::open(options.object_file, error);
    if (!object) return unavailable(error);
    const std::string tag_name = tag_hex(object->tag());
    impl->set_dir = impl->opt.pin_dir + "/" + tag_name;

    if (!ensure_bpffs(impl->opt.pin_dir, impl->log, error)) return unavailable(error);
    if (::mkdir(impl->opt.pin_dir.c_str(), 0700) != 0 && errno != EEXIST)
      return unavailable("cannot create " + impl->opt.pin_dir + ": " + errno_text(errno));

    auto lock = SlotLock::take(impl->opt.run_dir, error);
    if (!lock) return unavailable(error);
    remove_unused_sets(impl->opt.pin_dir, tag_name, impl->log);

    auto meta = read_meta(impl->set_dir);
    bool complete = meta && meta->tag == object->tag() && meta->layout == BC_LAYOUT_VERSION;
    if (complete && !open_own_pins(impl->set_dir, impl->pins)) {
      // Other jobs may be using this set: never remove it on a failure of ours.
      return unavailable("cannot open the pinned maps in " + impl->set_dir + ": " + errno_text(errno));
    }
    if (complete) {
      impl->info.programs = pinned_costs(impl->set_dir);
    } else {
      remove_pin_dir(impl->set_dir);  // incomplete leftovers of a loader that died
      LoadResult result;
      if (!load_and_pin(impl->set_dir, *object, impl->log, options.verbose, result)) {
        if (result.remember) remember_load_failure(memory, tag_name, result.error, impl->log);
        return unavailable(result.error);
      }
      forget_load_failure(memory);
      impl->info = {true, result.load_ms, std::move(result.programs)};
      if (!open_own_pins(impl->set_dir, impl->pins)) {
        remove_pin_dir(impl->set_dir);
        return unavailable("cannot open the pinned maps in " + impl->set_dir + ": " + errno_text(errno));
      }
    }
    for (const auto& p : impl->info.programs) {
      if (p.verified_insns > kVerifierInsnBudget)
        impl->log(LogLevel::Warn, p.name + " cost the verifier " + std::to_string(p.verified_insns) +
                                      " instructions, over our budget of " + std::to_string(kVerifierInsnBudget) +
                                      " (the kernel's limit is " + std::to_string(kVerifierInsnLimit) + ")");
    }
    if (!attach_programs(impl->set_dir, error)) {
      if (reclaim_dead_slots(impl->pins, impl->log) == 0) detach_programs(impl->set_dir);
      impl->pins = Pins{};
      return unavailable(error);
    }
    if (!impl->take_slot(error)) {
      if (reclaim_dead_slots(impl->pins, impl->log) == 0) detach_programs(impl->set_dir);
      impl->pins = Pins{};
      return unavailable(error);
    }
    lock.reset();
    Impl* raw = impl.get();
    // From here on the collector owns the slot: any failure releases it through the destructor.
    std::unique_ptr<EventCollector> collector(new EventCollector(std::move(impl)));
    raw->ring.reset(ring_buffer__new(raw->ring_fd.get(), &Impl::on_sample, raw, nullptr));
    if (!raw->ring) return unavailable("cannot map the ring buffer: " + errno_text(errno));
    raw->epoch_offset = boot_to_epoch_offset();
    raw->budget = raw->opt.max_events_per_drain;
    raw->log(LogLevel::Debug, "job slot " + std::to_string(raw->slot) + " (epoch " + std::to_string(raw->epoch) +
                                  "), ring " + std::to_string(raw->ring_size) + " bytes, " + raw->set_dir);
    return collector;
  } catch (const std::exception& e) {
    return unavailable(e.what());
  }
}

bool EventCollector::track(uint32_t tgid) noexcept {
  if (!impl_ || tgid == 0) return false;
  return impl_->track(tgid);
}

Drained EventCollector::drain() noexcept {
  if (!impl_) return {};
  try {
    return impl_->drain();
  } catch (const std::exception& e) {
    impl_->log(LogLevel::Error, std::string("drain failed: ") + e.what());
    return {};
  }
}

int EventCollector::poll_fd() const noexcept {
  return impl_ && impl_->ring ? ring_buffer__epoll_fd(impl_->ring.get()) : -1;
}

size_t EventCollector::pump() noexcept {
  if (!impl_) return 0;
  impl_->epoch_offset = boot_to_epoch_offset();
  return impl_->consume();
}

uint32_t EventCollector::slot() const noexcept { return impl_ ? impl_->slot : 0; }

const std::string& EventCollector::pin_path() const noexcept {
  static const std::string empty;
  return impl_ ? impl_->set_dir : empty;
}

size_t EventCollector::ring_bytes() const noexcept { return impl_ ? impl_->ring_size : 0; }

const LoadInfo& EventCollector::load_info() const noexcept {
  static const LoadInfo none;
  return impl_ ? impl_->info : none;
}

std::string EventCollector::reclaim_stale(const Options& options) noexcept {
  try {
    Logger log(options.log, options.verbose);
    std::string error;
    std::string run_dir = options.run_dir.empty() ? std::string(kNodeRunDir) : options.run_dir;
    if (::access(options.pin_dir.c_str(), F_OK) != 0) return {};
    auto lock = SlotLock::take(run_dir, error);
    if (!lock) return error;
    remove_unused_sets(options.pin_dir, "", log);
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

#endif  // BC_EVENTS_NO_BPF

}  // namespace bc::events
