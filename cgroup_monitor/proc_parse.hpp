// Parsers for /proc and cgroup files. Pure functions over file contents, so they are tested on
// fixtures of the real formats (cgroup v1 and v2) without a live host.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bc::monitor {

struct ProcStat {
  uint32_t pid = 0;
  std::string comm;
  char state = '?';
  uint32_t ppid = 0;
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  uint64_t cutime_ticks = 0;  // waited-for children, inclusive of their own waited-for children
  uint64_t cstime_ticks = 0;
  uint64_t num_threads = 0;
  uint64_t start_ticks = 0;  // since boot
  uint64_t rss_pages = 0;
};
// /proc/PID/stat. comm may hold spaces and parentheses, so fields are counted from the last ')'.
std::optional<ProcStat> parse_proc_stat(std::string_view text);

struct ProcStatus {
  uint64_t vm_hwm_bytes = 0;  // peak RSS
  uint64_t vm_rss_bytes = 0;
  uint32_t uid = 0;  // real uid
};
// /proc/PID/status. Kernel threads and zombies have no Vm* lines; those stay 0.
std::optional<ProcStatus> parse_proc_status(std::string_view text);

struct ProcIo {
  uint64_t read_bytes = 0;   // bytes the process caused to be fetched from storage
  uint64_t write_bytes = 0;  // bytes the process caused to be sent to storage
  uint64_t cancelled_write_bytes = 0;
};
std::optional<ProcIo> parse_proc_io(std::string_view text);

// /proc/PID/cmdline: NUL-separated, with a trailing NUL.
std::vector<std::string> parse_cmdline(std::string_view text);

struct ProcCgroupLine {
  std::string hierarchy_id;
  std::string controllers;  // "memory", "cpu,cpuacct", "name=systemd"; empty for the v2 line
  std::string path;
};
// /proc/PID/cgroup
std::vector<ProcCgroupLine> parse_proc_cgroup(std::string_view text);

// "key value" per line: memory.stat (v1 and v2), cpu.stat (v2).
std::optional<uint64_t> flat_keyed_value(std::string_view text, std::string_view key);

// A file with one integer: cpuacct.usage, memory.usage_in_bytes, memory.current, pids.current.
std::optional<uint64_t> parse_single_u64(std::string_view text);

// cpuset.cpus / cpuset.cpus.effective: "0-3,8,10-11" -> 7. nullopt for malformed text; 0 for an empty set.
std::optional<uint32_t> count_cpu_list(std::string_view text);

// A memory limit: v1 memory.limit_in_bytes (a page-rounded LONG_MAX means none), v2 memory.max ("max" means
// none). Returns 0 for no limit, nullopt for malformed text.
std::optional<uint64_t> parse_memory_limit(std::string_view text);

struct IoBytes {
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
};
// v1 blkio.throttle.io_service_bytes: "MAJ:MIN Read N" lines plus a "Total N" line.
IoBytes parse_blkio_service_bytes(std::string_view text);
// v2 io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N ..." per device.
IoBytes parse_io_stat(std::string_view text);

// Epoch nanoseconds of the boot (CLOCK_REALTIME - CLOCK_BOOTTIME): /proc start times and eBPF event times
// count from the boot, records from the epoch.
int64_t boot_epoch_ns();

// Slurm's step directory name ("step_0", "step_batch", "step_extern") as a step id, from a cgroup path
// relative to the job directory. Returns nullopt when the path is not inside a step.
std::optional<uint32_t> step_from_relative_path(std::string_view relative);

}  // namespace bc::monitor
