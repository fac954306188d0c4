// Per-process events of one job from eBPF: fork, exec, exit, file opens, connects (and optionally read and
// write bytes per file), for the processes the monitor tracks. Public header of cgroup_monitor/bpf/.
//
// Sharing across jobs. One set of BPF programs per node serves every monitored job. The first collector
// loads them and pins maps and links under Options::pin_dir/<tag>/, where <tag> is a hash of the BPF object
// and of BC_LAYOUT_VERSION: a collector built from another object never reuses them (it loads its own set
// beside them, and the old set goes when its last user does). Later collectors open the pins. When the last
// collector of a set releases its slot it removes the link pins, which detaches the programs: a node with no
// monitored job runs nothing. The programs and maps stay loaded, so the next job's monitor attaches them in
// a millisecond instead of waiting for the verifier (its tasks wait for it); reclaim_stale() unloads them.
//
// Job slots. Each collector owns one of BC_MAX_SLOTS slots. Slots are handed out and given back under an
// exclusive flock on Options::run_dir/bpf-events.lock; the owner map (pinned) records the monitor's pid and
// start time, so the slot of a monitor that died is taken back by the next collector that opens. A slot has
// an epoch, bumped each time it is handed out; tracked entries from an older epoch are ignored and removed by
// the kernel side when seen.
//
// Filtering. A node-wide hash map tgid -> (slot, epoch, generation) is the only filter: one lookup per event
// whatever the number of jobs, and it works on cgroup v1, hybrid and v2 alike (bpf_get_current_cgroup_id()
// sees only the v2 tree). track() seeds it (the monitor passes cgroup.procs every tick; repeated calls are
// cheap), a fork from a tracked process adds the child, the exit of a process's last thread removes it.
//
// Per-slot kernel state. Each collector creates its own ring buffer (sized by Options::ring_bytes) and its
// own aggregate hash maps and puts them in the node's array-of-maps at its slot: the kernel writes each
// event straight into the owning job's ring, and each monitor reads only its own events.
//
// Aggregates. Opens and connects are counted in the kernel per (process, path) and (process, peer); only the
// first open of a path in an interval sends the path through the ring. The maps are double-buffered: drain()
// switches the kernel to the other half, waits for an RCU grace period (membarrier(MEMBARRIER_CMD_GLOBAL)),
// so no program still writes the old half, then reads and empties it. Counts are therefore exact and per
// interval (FileAgg/ConnAgg are deltas since the previous drain), and the map capacity bounds the distinct
// pairs per interval, not per job.
//
// Paths. Absolute paths are taken as given. A relative path (open, openat with AT_FDCWD or a directory fd)
// is keyed by its string and the directory's dentry; when it is first seen in an interval the kernel walks
// the directory's dentries up to the root, crossing mount points (bounded: BC_WALK_DEPTH components), and
// sends "<dir>/<relative>". User space then removes "." and ".." lexically. Symbolic links in the string are
// not resolved, so a path is the name the process used, made absolute (the directory part has no links).
// exe is resolved the same way from mm->exe_file, which matches readlink(/proc/PID/exe). Paths are relative
// to the root of the process's mount namespace (a container's paths are its own; a chroot is not applied).
// The string is read from the process's memory at syscall exit, where the kernel has just read it (so it is
// paged in), from the saved user registers; another thread rewriting it in between would mislead us.
//
// Events come from raw tracepoints only (kprobes, fentry and LSM programs are unavailable on our kernels, and
// raw tracepoints need neither tracefs nor perf events): sched_process_fork/exec/exit, sched_switch (the
// final CPU slice of an exiting process, so a 1 ms process's CPU is exact) and sys_exit, which sees both the
// arguments (saved registers) and the result of open/openat/openat2/creat/connect in one program.
//
// Clocks. The kernel stamps events with bpf_ktime_get_boot_ns() (CLOCK_BOOTTIME, which counts suspend, as do
// /proc start times). Every time_ns/first_ns returned here is Unix epoch nanoseconds: boot time plus
// (CLOCK_REALTIME - CLOCK_BOOTTIME) measured at each drain.
//
// Loss. Every event the kernel cannot deliver (ring full, aggregate map full, tracked map full, user memory
// unreadable) is counted per slot and reported by drain(); so are events this class drops itself.
//
// Verifier cost. Each program's figure (bpf_prog_info.verified_insns) is read back after load and kept under
// kVerifierInsnBudget, a tenth of the kernel's limit, so that a later kernel's verifier has room (a unit test
// checks it on the build host's kernel).
//
// Failed loads. A load the kernel refuses is remembered on the node (load_failure.hpp): later collectors of
// the same object on the same kernel return at once, before reading the object, with the same reason and
// "(remembered since TIME)" instead of running the verifier again. check_events() loads on purpose and
// forgets or renews the memory.
//
// Threading: one thread uses a collector; open() may run on another thread than the one that then uses the
// collector. Nothing here throws: open() reports failure through its reason string, and the other members
// are noexcept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cgroup_monitor/bpf/load_failure.hpp"

namespace bc::events {

enum class LogLevel { Debug, Info, Warn, Error };

struct Options {
  bool enabled = true;          // false: open() returns "events unavailable: disabled (bpf=off)"
  size_t ring_bytes = 1 << 20;  // this job's ring; rounded up to a power of two, at least a page
  bool file_io_bytes = false;   // count read/write bytes per file (costs a lookup per read/write)
  std::string pin_dir = "/sys/fs/bpf/bubble-chamber";
  std::string run_dir = kNodeRunDir;      // holds bpf-events.lock (slot allocation) and remembered failed loads
  size_t max_events_per_drain = 1 << 20;  // ring events kept between drains; more are counted lost
  std::function<void(LogLevel, const std::string&)> log;  // default: stderr, "bc-events: " prefix
  bool verbose = false;                                   // pass libbpf's debug output to log
  std::string object_file;                        // load the BPF object from this file instead of the built-in one
  std::string monitor_binary = "/proc/self/exe";  // names the remembered failure (load_failure.hpp)
};

inline constexpr uint32_t kVerifierInsnLimit = 1000000;  // BPF_COMPLEXITY_LIMIT_INSNS, the same since 5.2
inline constexpr uint32_t kVerifierInsnBudget = kVerifierInsnLimit / 10;

// One program's cost to the verifier. verified_insns is 0 on kernels before 5.16, which do not report it.
struct ProgramCost {
  std::string name;  // the program's function, "bc_sys_exit"
  uint32_t verified_insns = 0;
};

// How a collector's programs came to run.
struct LoadInfo {
  bool loaded_here = false;  // this open() ran the verifier; false: it reused the set pinned on the node
  double load_ms = 0;        // the verifier's time, when loaded_here
  std::vector<ProgramCost> programs;
};

// What check_events() found.
struct CheckReport {
  bool works = false;
  std::string reason;                     // why not, when !works (without the "events unavailable: " prefix)
  std::vector<std::string> verifier_log;  // the verifier's last lines, when it refused a program
  std::vector<ProgramCost> programs;      // of the programs that loaded
  double load_ms = 0;
  bool attached = false;  // every program attached to its tracepoint, and was detached again
  std::string kernel;     // running_kernel()
  bool btf = false;       // /sys/kernel/btf/vmlinux is readable
  std::string object;     // "built in" or the object file
  std::string object_tag;
  std::string memory_path;                       // where a failure is remembered for this object
  std::optional<LoadFailure> remembered_before;  // what that file held before the check
  bool remembered_now = false;                   // the check's failure is remembered (a success forgets)
  std::vector<std::string> pinned_sets;          // the node's pinned sets: "<tag>: N monitored jobs"
};

// Loads a private copy of the programs (never the node's pinned set, which running jobs use), attaches it
// to its tracepoints for a moment, and reports. Ignores a remembered failure, and then forgets it (success)
// or remembers this one: this is the way to try again on purpose. Needs root, as monitors do.
CheckReport check_events(const Options& options) noexcept;

struct ExecInfo {
  uint32_t pid = 0, ppid = 0;
  uint64_t time_ns = 0;
  std::string exe;       // the executable, absolute, as readlink(/proc/PID/exe)
  std::string filename;  // the path given to execve
  std::vector<std::string> argv;
  bool argv_truncated = false;  // more than BC_ARGV_BYTES bytes or BC_ARGV_MAX_ARGS arguments
};

struct ExitInfo {
  uint32_t pid = 0;
  uint64_t time_ns = 0;
  int exit_code = 0;  // exit status 0..255, or -1 when killed by a signal
  int signal = 0;     // the signal that killed it, 0 if it exited
  bool core_dumped = false;
  uint64_t cpu_ns = 0;   // user + system, all threads, as getrusage(RUSAGE_SELF) would say at the end
  uint64_t user_ns = 0;  // cpu_ns split by the kernel's tick samples, as getrusage does
  uint64_t sys_ns = 0;
  uint64_t max_rss_bytes = 0;
  // Storage bytes as /proc/PID/io counts them at the end: its threads' and those of the children it reaped.
  uint64_t read_bytes = 0, write_bytes = 0;
};

struct ForkInfo {
  uint32_t parent = 0, child = 0;
  uint64_t time_ns = 0;
};

// Open flags seen, OR-ed over the interval.
enum FileFlags : uint32_t {
  kRead = 1,
  kWrite = 2,
  kCreate = 4,
  kTrunc = 8,
  kAppend = 16,
  kDirectory = 32,
};

struct FileAgg {
  uint32_t pid = 0;
  std::string path;       // absolute; empty if its name event was lost (counted in lost_events); ".../x/y"
                          // when deeper than BC_WALK_DEPTH directories (the top is missing)
  uint32_t flags = 0;     // FileFlags
  uint64_t first_ns = 0;  // first open in this interval (0 if only bytes moved)
  uint64_t opens = 0, failed = 0;
  uint64_t read_bytes = 0, write_bytes = 0;  // only with Options::file_io_bytes
};

struct ConnAgg {
  uint32_t pid = 0;
  std::string address;  // "127.0.0.1", "::1", or the unix socket path ("@name" for abstract ones)
  uint16_t port = 0;
  std::string protocol;  // "tcp", "udp", "unix", "raw", "other"
  uint64_t count = 0, failed = 0;
  uint64_t in_progress = 0;  // non-blocking connects that returned EINPROGRESS (outcome not seen)
};

struct LossCounts {
  uint64_t ring = 0;         // ring buffer full
  uint64_t files = 0;        // file aggregate map full
  uint64_t conns = 0;        // connect aggregate map full
  uint64_t tracked = 0;      // tracked-process map full (kernel fork or track())
  uint64_t read_failed = 0;  // path or address unreadable in the process's memory
  uint64_t user = 0;         // dropped by this class (more than max_events_per_drain between drains)
  uint64_t total() const { return ring + files + conns + tracked + read_failed + user; }
};

struct Drained {
  std::vector<ForkInfo> forks;
  std::vector<ExecInfo> execs;
  std::vector<ExitInfo> exits;
  std::vector<FileAgg> files;  // this interval's counts
  std::vector<ConnAgg> conns;
  uint64_t lost_events = 0;  // since the previous drain; == lost.total()
  LossCounts lost;
};

class EventCollector {
 public:
  // Loads or reuses the node's programs and takes a job slot. On failure returns nullptr and sets
  // unavailable_reason to "events unavailable: <reason>"; the monitor then goes on with sampling only.
  static std::unique_ptr<EventCollector> open(const Options& options, std::string& unavailable_reason);

  ~EventCollector();  // releases the slot, its tracked processes and its maps; the last user unpins
  EventCollector(EventCollector&&) noexcept;
  EventCollector& operator=(EventCollector&&) noexcept;
  EventCollector(const EventCollector&) = delete;
  EventCollector& operator=(const EventCollector&) = delete;

  // Tracks a process (and, from now on, the processes it forks). Idempotent. False if the process is gone
  // or tracked by another job, or the node's tracked map is full (then counted in lost.tracked).
  bool track(uint32_t tgid) noexcept;

  // Everything since the previous drain. Call once per monitor tick; the work is bounded by the ring size,
  // the aggregate map sizes and max_events_per_drain.
  Drained drain() noexcept;

  // For a poll loop between ticks: readable when the ring is more than a quarter full. pump() then moves
  // the ring's events into the next drain's result, so a small ring survives bursts.
  int poll_fd() const noexcept;
  size_t pump() noexcept;

  uint32_t slot() const noexcept;
  const std::string& pin_path() const noexcept;  // where the shared objects are pinned
  size_t ring_bytes() const noexcept;            // the ring size in use
  const LoadInfo& load_info() const noexcept;

  // Releases the slots of monitors that died without releasing them, and unloads every set nobody uses
  // (open() does so for sets of other builds). For a node epilog or an administrator. Returns an error text, empty on
  // success.
  static std::string reclaim_stale(const Options& options) noexcept;

 private:
  struct Impl;
  explicit EventCollector(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bc::events
