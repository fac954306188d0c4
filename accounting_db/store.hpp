// accounting_db: the node (and later central) store. The only code that knows the schema.
//
// One LMDB environment per path per process, and one Store on it that threads share: reads run at once,
// each in its own MVCC read transaction, beside the writes, which take turns. Only growing the map stops
// readers, for the moment of the resize (env_gate.hpp). Writers batch a whole sample tick into one
// transaction. Keys are fixed-width big-endian so byte order equals numeric order.
//
// Series are kept at four resolutions (second, minute, hour, day). Second-resolution points are stored in
// chunks of one minute per series; minute, hour and day rollups are computed as minutes close and kept in
// chunks too. Retention is per resolution and measured against each job's latest data, so a finished job
// keeps its last hour of seconds. See docs/bcadm.8 for the administration side.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/slurm_ids.hpp"

namespace bc::store {

// Slurm's step ids, as the store's records carry them (common/slurm_ids.hpp).
using slurm::kStepBatch;
using slurm::kStepExtern;
using slurm::kStepInteractive;
using slurm::kStepUnknown;
inline constexpr uint32_t kTaskUnknown = UINT32_MAX;  // not a Slurm task's, or its task is not known
using slurm::step_name;

// 1: one key per sample (the walking skeleton). 2: chunked seconds, rollups, retention. 3: files and
// connections per process (eBPF events).
inline constexpr uint32_t kSchemaVersion = 3;

// A store fault (I/O error, corruption, newer schema). "Not found" is never an exception.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Lost eBPF events of a job by cause (see cgroup_monitor/bpf/events.hpp).
struct EventLoss {
  uint64_t ring = 0;         // the job's ring buffer was full
  uint64_t files = 0;        // the file aggregate map was full
  uint64_t connections = 0;  // the connect aggregate map was full
  uint64_t tracked = 0;      // the node's tracked-process map was full
  uint64_t unreadable = 0;   // a path or address could not be read from the process's memory
  uint64_t monitor = 0;      // dropped by the monitor (too many events between two drains)
  uint64_t late = 0;         // tasks that started before the monitor tracked them (the plugin's wait timed
                             // out): what such a task did first may be missing
  uint64_t total() const { return ring + files + connections + tracked + unreadable + monitor + late; }
  EventLoss& operator+=(const EventLoss& o) {
    ring += o.ring;
    files += o.files;
    connections += o.connections;
    tracked += o.tracked;
    unreadable += o.unreadable;
    monitor += o.monitor;
    late += o.late;
    return *this;
  }
  bool operator==(const EventLoss&) const = default;
};

// A GPU of a job on one node, as NVML saw it while the job ran (cgroup_monitor/gpu_sampler.hpp).
struct JobGpu {
  std::string uuid;             // "GPU-…", or "MIG-…" for a MIG instance
  std::string parent_uuid;      // a MIG instance's GPU; empty for a GPU
  uint32_t minor = UINT32_MAX;  // of /dev/nvidiaN, as Slurm names GPUs; UINT32_MAX when not known
  bool allocated = false;       // Slurm gave it to the job; else only the job's processes were seen on it
  uint64_t memory_total = 0;    // bytes
  uint64_t memory_max = 0;      // the most used on it while the job ran (by any process, on a shared GPU)
  uint64_t util_ns = 0;         // time its utilisation was sampled
  uint64_t busy_ns = 0;         // the part of util_ns a kernel ran
  uint64_t power_ns = 0;        // time its power draw was sampled
  uint64_t energy_mj = 0;       // the energy drawn in power_ns, millijoules
  double util_percent() const {
    return util_ns ? 100.0 * static_cast<double>(busy_ns) / static_cast<double>(util_ns) : 0.0;
  }
  double power_watts() const {
    return power_ns ? static_cast<double>(energy_mj) * 1e6 / static_cast<double>(power_ns) : 0.0;
  }
  bool operator==(const JobGpu&) const = default;
};

struct JobRecord {
  uint64_t job_id = 0;
  std::string node;
  uint32_t uid = 0;
  std::string user;
  std::vector<uint32_t> steps;  // sorted, unique
  int64_t start_ms = 0;         // epoch milliseconds
  int64_t end_ms = 0;           // 0 while running
  int64_t last_sample_ms = 0;
  uint32_t cgroup_version = 0;  // 1 or 2
  // cgroup totals; has_* tell whether the controller existed for this job
  bool has_cgroup_cpu = false;
  uint64_t cgroup_cpu_ns = 0;
  bool has_cgroup_memory = false;
  uint64_t cgroup_mem_current = 0;
  uint64_t cgroup_mem_peak = 0;
  bool has_cgroup_io = false;
  uint64_t cgroup_read_bytes = 0;
  uint64_t cgroup_write_bytes = 0;
  uint64_t max_rss_sum = 0;  // peak over samples of the summed RSS of the job's processes
  uint64_t sample_count = 0;
  // What the monitor itself cost, from getrusage at its exit.
  uint64_t monitor_cpu_ns = 0;
  uint64_t monitor_max_rss = 0;
  // eBPF events. Empty when they ran for this job; "events unavailable: <reason>" otherwise (then only
  // /proc sampling recorded the processes and there are no files or connections).
  std::string events_unavailable;
  uint64_t lost_events = 0;  // events the kernel or the monitor could not deliver; == lost.total()
  EventLoss lost;
  // What the job asked for, when known (0 / empty otherwise): for efficiency and "MaxRSS of requested".
  std::string job_name;          // Slurm's job name (SLURM_JOB_NAME)
  uint32_t alloc_cpus = 0;       // CPUs of the job's cpuset on this node
  uint64_t mem_limit_bytes = 0;  // the job's memory cgroup limit on this node
  // A Docker container monitored by bc-docker (job_id is then container_key(short id)); empty for jobs.
  std::string container_id;    // full 64-hex id
  std::string container_name;  // without the leading '/'
  std::string container_image;
  // A task of a Slurm job array (SLURM_ARRAY_JOB_ID / SLURM_ARRAY_TASK_ID): sacct shows it as
  // "<array_job_id>_<array_task_id>". array_job_id is 0 for a job that is not an array task.
  uint32_t array_job_id = 0;
  uint32_t array_task_id = 0;
  // Batches of this job (and the samples in them) the node dropped from its outbox unshipped because the
  // outbox was at its bound (bcd unreachable for long): they are in the node store, not in bcd's.
  uint64_t unshipped_batches = 0;
  uint64_t unshipped_samples = 0;
  // The job's nodes as Slurm allocated them (SLURM_JOB_NODELIST, a hostlist), as this node's monitor was
  // told: a node of the list with no data, or with no end, is then named as missing. Empty when not known.
  std::string job_nodes;
  // GPUs: those Slurm gave the job on this node, and any other its processes ran on. Empty without NVML.
  std::vector<JobGpu> gpus;
  uint64_t gpus_lost = 0;  // GPUs that fell off the bus while the job ran (NVML: "GPU is lost")
};

// Whether a job's node records name it a task of job array `array_job` (and task `task`, when given).
inline bool is_array_task(const std::vector<JobRecord>& nodes, uint32_t array_job, std::optional<uint32_t> task = {}) {
  for (const JobRecord& r : nodes)
    if (r.array_job_id != 0) return r.array_job_id == array_job && (!task || r.array_task_id == *task);
  return false;
}

struct ProcessRecord {
  uint64_t job_id = 0;
  std::string node;
  uint32_t pid = 0;
  uint32_t ppid = 0;
  uint32_t step = kStepUnknown;
  uint64_t start_ticks = 0;  // /proc/PID/stat starttime: with pid, the identity of a process
  int64_t start_ms = 0;
  int64_t end_ms = 0;  // 0 while running
  uint32_t series_id = 0;
  std::string command;  // comm
  std::string exe;
  std::vector<std::string> argv;
  uint64_t cpu_ns = 0;   // utime + stime, last seen
  uint64_t max_rss = 0;  // VmHWM, last seen
  uint64_t rss = 0;
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
  uint32_t max_threads = 0;      // the most threads seen at once (0: never sampled alive)
  uint32_t task = kTaskUnknown;  // the Slurm task (global rank, SLURM_PROCID) it is or descends from
  // From NVML, summed over the GPUs it ran on (0 for a process no GPU listed).
  uint64_t gpu_memory_max = 0;  // the most GPU memory it held at once, bytes
  uint64_t gpu_sm_ns = 0;       // its share of the GPUs' SMs over time: 1 s at 100% is 1e9
  // From eBPF events (all false/0 for a process only /proc sampling saw).
  bool exited = false;  // its exit was seen: exit_code/exit_signal/core_dumped are set
  int exit_code = 0;    // 0..255, or -1 when killed by a signal
  int exit_signal = 0;  // the signal that killed it, 0 if it exited
  bool core_dumped = false;
  bool argv_truncated = false;  // argv was longer than the kernel side copies
  bool exact = false;           // start, end, final CPU and max RSS come from the kernel's events
};

// ---- eBPF events: files and connections per process ----
// Both are totals per process and key; a Batch carries this tick's increments, which write_batch adds up.

// Open flags seen over the process's life, OR-ed (the bits of bc::events::FileFlags).
inline constexpr uint32_t kFileRead = 1;
inline constexpr uint32_t kFileWrite = 2;
inline constexpr uint32_t kFileCreate = 4;
inline constexpr uint32_t kFileTrunc = 8;
inline constexpr uint32_t kFileAppend = 16;
inline constexpr uint32_t kFileDirectory = 32;
// "r", "w", "rwc", ...: one letter per flag in the order r w c t a d; "-" for none.
std::string file_flags_text(uint32_t flags);
// The flags file_flags_text wrote (letters it does not know, and "-", give no bit).
uint32_t file_flags_from_text(std::string_view text);

// One path opened by one process. Identity: (node, pid, start_ticks, path).
struct FileRecord {
  uint64_t job_id = 0;
  std::string node;
  uint32_t pid = 0;
  uint64_t start_ticks = 0;                  // with pid, the process (as in ProcessRecord)
  std::string path;                          // absolute
  uint32_t flags = 0;                        // kFile* bits
  int64_t first_ms = 0;                      // first open, epoch milliseconds (0: only bytes were seen)
  uint64_t opens = 0;                        // successful opens
  uint64_t failed = 0;                       // failed opens (not included in opens)
  uint64_t read_bytes = 0, write_bytes = 0;  // only when the monitor counts bytes per file
  bool operator==(const FileRecord&) const = default;
};

// One peer connected to by one process. Identity: (node, pid, start_ticks, address, port, protocol).
struct ConnectionRecord {
  uint64_t job_id = 0;
  std::string node;
  uint32_t pid = 0;
  uint64_t start_ticks = 0;
  std::string address;  // "127.0.0.1", "::1", or a unix socket path ("@name" for abstract ones)
  uint16_t port = 0;
  std::string protocol;  // "tcp", "udp", "unix", "raw", "other"
  int64_t first_ms = 0;  // first connect, epoch milliseconds
  uint64_t count = 0;    // connect attempts, failed ones included
  uint64_t failed = 0;   // attempts that returned an error (a non-blocking one in progress is not a failure)
  bool operator==(const ConnectionRecord&) const = default;
};

// Series ids of one job on one node:
//   0                                    the job total
//   1 .. kLastSeriesId                   processes, given in order by the store
//   kFirstGpuDeviceSeriesId + position   the node's GPU at that position in JobRecord::gpus (entries are only
//                                        ever appended, so a position stays the GPU's)
//   process id | kGpuSeriesBit           a process's figures on GPUs
// A GPU series is kept by the same engine as the others, its figures in a sample's columns (GpuSample).
inline constexpr uint32_t kLastSeriesId = 0x7FFF'FEFF;
inline constexpr uint32_t kFirstGpuDeviceSeriesId = kLastSeriesId + 1;
inline constexpr uint32_t kMaxGpuDevices = 256;
inline constexpr uint32_t kGpuSeriesBit = 0x8000'0000;
inline constexpr uint32_t gpu_series_of_process(uint32_t series_id) { return series_id | kGpuSeriesBit; }
inline constexpr uint32_t gpu_device_series(size_t position) {
  return kFirstGpuDeviceSeriesId + static_cast<uint32_t>(position);
}
// The place in JobRecord::gpus of a GPU's series; nullopt for an id that is not one.
inline constexpr std::optional<size_t> gpu_device_position(uint32_t series_id) {
  if (series_id < kFirstGpuDeviceSeriesId || series_id - kFirstGpuDeviceSeriesId >= kMaxGpuDevices) return std::nullopt;
  return series_id - kFirstGpuDeviceSeriesId;
}

// Bounds on names, far above what they are (a host name is at most 255 bytes) and far below what the store
// can hold: a node name is part of LMDB keys, which cannot pass 511 bytes. A record past them is refused
// (StoreError; bcd answers 400 for that request alone).
inline constexpr size_t kMaxNodeNameBytes = 255;
inline constexpr size_t kMaxJobNameBytes = 1024;
inline constexpr size_t kMaxPathBytes = 16384;  // a file's path: a directory and a relative part of 4096 each

// One point of a series. Series 0 is the job total; processes have series ids from 1 to kLastSeriesId.
struct Sample {
  uint32_t series_id = 0;
  int64_t time_s = 0;   // epoch seconds
  uint64_t cpu_ns = 0;  // cumulative
  uint64_t rss = 0;
  uint64_t read_bytes = 0;   // cumulative
  uint64_t write_bytes = 0;  // cumulative
  uint32_t threads = 0;      // the process's (the job's: its processes') threads; 0: not known
};

// One point of a GPU series: a GPU of the node (the job's) or a process's figures over its GPUs.
struct GpuSample {
  uint32_t series_id = 0;  // a device's (gpu_device_series); ignored for a process's, whose own series decides
  int64_t time_s = 0;      // epoch seconds
  uint64_t busy_ns = 0;    // cumulative: a device's time a kernel ran; a process's SM time (share x time)
  uint64_t memory = 0;     // bytes used now
  uint64_t energy_mj = 0;  // cumulative, a device's drawn energy in millijoules (0 for a process)
  bool operator==(const GpuSample&) const = default;
  // The columns it is kept in: busy as CPU time, memory as RSS, energy as read bytes.
  Sample as_sample() const { return Sample{series_id, time_s, busy_ns, memory, energy_mj, 0, 0}; }
  static GpuSample of(const Sample& s) { return GpuSample{s.series_id, s.time_s, s.cpu_ns, s.rss, s.read_bytes}; }
};

enum class Resolution : uint8_t { Second = 0, Minute = 1, Hour = 2, Day = 3 };
inline constexpr int kResolutions = 4;
// 1, 60, 3600, 86400
int64_t bucket_seconds(Resolution r);
// "second", "minute", "hour", "day"
const char* resolution_name(Resolution r);

// A process whose record changed this tick, and its sample for the tick if it was read.
struct ProcessUpdate {
  ProcessRecord record;                   // record.series_id is filled in by write_batch
  std::optional<Sample> sample;           // series_id is ignored: the process's series is used
  std::optional<GpuSample> gpu_sample{};  // its GPU figures this tick, into its GPU series
  // Set only by wire::decode_batch with Identity::Deferred (bcd): the record's identity (ppid, step,
  // start_ms, max_rss, command, exe, argv, the exit fields, max_threads and task) still encoded, pointing into the
  // decoded bytes, which must outlive the write. Those record fields are unset; the writer decodes them only when it
  // must write the record (a new or changed identity, which in a running job is rare, or an ended process).
  std::string_view encoded_identity{};
};

// Everything one monitor tick produces, written in one transaction.
struct Batch {
  JobRecord job;
  std::optional<Sample> job_sample;      // series 0
  std::vector<GpuSample> gpu_samples{};  // the job's GPUs (series ids from gpu_device_series)
  std::vector<ProcessUpdate> processes;
  // This tick's increments, added to the stored totals of the same identity (job_id and node are the
  // job's; the store fills them in).
  std::vector<FileRecord> files;
  std::vector<ConnectionRecord> connections;
  // Its samples of every kind (the job's, its processes', GPU ones): what is lost with it, counted.
  uint64_t sample_count() const {
    uint64_t n = (job_sample ? 1 : 0) + gpu_samples.size();
    for (const auto& u : processes) n += (u.sample ? 1 : 0) + (u.gpu_sample ? 1 : 0);
    return n;
  }
};

// What in the batch is longer than its bound above ("node name of 600 bytes"), or empty when nothing is.
std::string oversized_name(const Batch& batch);

// How long each resolution is kept, in seconds of the job's own data (0 = forever). Age is measured
// against the job's latest sample, not the wall clock.
struct Retention {
  int64_t seconds = 3600;
  int64_t minutes = 172800;  // 2 days
  int64_t hours = 10368000;  // 120 days
  int64_t days = 0;          // forever
  int64_t of(Resolution r) const;
  void set(Resolution r, int64_t value);
  bool operator==(const Retention&) const = default;
};

// Store configuration, a file of KEY=VALUE lines ('#' starts a comment). Keys are the environment names:
// BC_RETENTION_SECONDS, BC_RETENTION_MINUTES, BC_RETENTION_HOURS, BC_RETENTION_DAYS; a value is a whole
// number of seconds, 0 meaning forever. Retention must not shrink from a finer to a coarser resolution
// (forever counts as the longest). BC_STORE_GROUP names a group whose members may read the store; without
// it only its owner can. Unknown keys and bad values throw StoreError naming origin and line.
struct StoreConfig {
  Retention retention;
  std::string group;
};
StoreConfig parse_store_config(std::string_view text, const std::string& origin, StoreConfig base = {});
void validate_retention(const Retention& r, const std::string& origin);
// The compiled-in default config file path (/etc/bubble-chamber/store.conf).
std::string default_config_path();

// How hard a commit pushes data to disk. Every mode survives a killed process with every committed batch
// intact; they differ only after a machine crash or power loss.
enum class Durability : uint8_t {
  Full,        // fsync data and meta on every commit: nothing committed is lost
  NoMetaSync,  // one fsync per commit: the last commit may roll back, the store stays consistent
  NoSync,      // no fsync (tests, benchmarks of CPU cost); the OS flushes when it likes
};

struct OpenOptions {
  bool read_only = false;
  bool create = true;                         // create dir and schema if missing (writers)
  uint64_t initial_map_bytes = 256ULL << 20;  // grows on demand
  uint64_t map_growth_step_bytes = 256ULL << 20;
  // Retention: defaults, then this file (a missing file is fine), then BC_RETENTION_* from the
  // environment, then `retention` when set.
  std::string config_path = default_config_path();
  std::optional<Retention> retention{};
  Durability durability = Durability::NoMetaSync;
  // Disk blocks kept allocated ahead of the data in use, so that a full disk is noticed while the store
  // still has room to drop its finest data. 0 disables the reserve.
  uint64_t disk_reserve_bytes = 16ULL << 20;
  double grow_at_fill = 0.8;  // grow the map before a batch once it is this full
  // The outbox's bound (write_batch_spooled): past it the oldest entries are given up (counted in the ship
  // cursor and the job's record as unshipped), never the store's data. 0: unbounded.
  uint64_t outbox_max_bytes = 256ULL << 20;
};

// One bucket of a series at one resolution: at second resolution, one point.
// CPU and I/O counters are cumulative in samples; a bucket holds their increases. A point's increase is
// counted from the previous point of the series (from zero for the series' first point) and belongs to
// the bucket of the later point. A counter that goes down (a restarted counter) adds nothing.
struct Rollup {
  int64_t start_s = 0;  // bucket start, epoch seconds, aligned to the resolution
  int64_t width_s = 0;  // 1, 60, 3600 or 86400
  uint64_t samples = 0;
  uint64_t cpu_ns = 0;        // CPU time used in the bucket
  uint64_t timed_cpu_ns = 0;  // the part of cpu_ns with a known interval (all but a series' first point)
  uint64_t wall_s = 0;        // the length of those intervals
  uint64_t cpu_rate_max = 0;  // largest CPU rate over one interval, ns of CPU per second (1e9 = 100%)
  uint64_t rss_sum = 0;       // over samples, for the mean
  uint64_t rss_max = 0;
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
  uint64_t threads_sum = 0;  // over samples, for the mean (0 in data written before thread counts)
  uint32_t threads_max = 0;

  double cpu_seconds() const { return static_cast<double>(cpu_ns) / 1e9; }
  // Time-weighted: CPU time over wall time of the intervals in the bucket.
  double cpu_percent_mean() const {
    return wall_s ? static_cast<double>(timed_cpu_ns) / (static_cast<double>(wall_s) * 1e7) : 0.0;
  }
  double cpu_percent_max() const { return static_cast<double>(cpu_rate_max) / 1e7; }
  uint64_t rss_mean() const { return samples ? rss_sum / samples : 0; }
  double threads_mean() const {
    return samples ? static_cast<double>(threads_sum) / static_cast<double>(samples) : 0.0;
  }
  // Adds another bucket of the same time (another node's, a finer one inside it): sums and maxima.
  void merge(const Rollup& b) {
    samples += b.samples;
    cpu_ns += b.cpu_ns;
    timed_cpu_ns += b.timed_cpu_ns;
    wall_s += b.wall_s;
    cpu_rate_max = std::max(cpu_rate_max, b.cpu_rate_max);
    rss_sum += b.rss_sum;
    rss_max = std::max(rss_max, b.rss_max);
    read_bytes += b.read_bytes;
    write_bytes += b.write_bytes;
    threads_sum += b.threads_sum;
    threads_max = std::max(threads_max, b.threads_max);
  }
  bool operator==(const Rollup&) const = default;
};

// A bucket of a GPU series in its own terms (GpuSample says which column holds what).
struct GpuBucket {
  double busy_percent_mean = 0;  // a device's utilisation; a process's SM share (up to 100 per GPU it uses)
  double busy_percent_max = 0;   // over one interval
  uint64_t memory_mean = 0, memory_max = 0;
  double power_watts = 0;  // a device's mean draw over the bucket's intervals
};
inline GpuBucket gpu_bucket(const Rollup& r) {
  GpuBucket b;
  b.busy_percent_mean = r.cpu_percent_mean();
  b.busy_percent_max = r.cpu_percent_max();
  b.memory_mean = r.rss_mean();
  b.memory_max = r.rss_max;
  b.power_watts = r.wall_s ? static_cast<double>(r.read_bytes) / 1000.0 / static_cast<double>(r.wall_s) : 0.0;
  return b;
}

struct SeriesQuery {
  uint64_t job_id = 0;
  std::string node;
  uint32_t series_id = 0;  // 0: the job total
  int64_t from_s = 0;      // inclusive: buckets that overlap [from_s, to_s]
  int64_t to_s = INT64_MAX;
  // Unset: the finest resolution that still holds data back to from_s.
  std::optional<Resolution> resolution;
};

struct SeriesData {
  Resolution resolution = Resolution::Second;
  std::vector<Rollup> buckets;  // by time, only buckets with samples
};

// A job's records as of one snapshot.
struct JobSnapshot {
  std::vector<JobRecord> nodes;          // one record per node
  std::vector<ProcessRecord> processes;  // every node
};

struct TableStats {
  std::string name;
  std::optional<Resolution> resolution;  // for the series tables
  uint64_t entries = 0;
  uint64_t depth = 0;
  uint64_t pages = 0;  // branch + leaf + overflow
  uint64_t bytes = 0;  // pages * page size
};

struct StoreStats {
  uint32_t schema_version = 0;
  uint64_t page_size = 0;
  uint64_t map_bytes = 0;
  uint64_t last_page_bytes = 0;  // high-water mark of the data file
  uint64_t free_pages = 0;       // in LMDB's free list, reusable
  uint64_t in_use_bytes = 0;     // pages in use by tables (sum of `tables`)
  double fill_ratio = 0;         // last_page_bytes / map_bytes
  uint64_t file_bytes = 0;       // data.mdb on disk (allocated blocks)
  uint64_t samples_second = 0;   // points stored at second resolution (sealed chunks + open)
  std::vector<TableStats> tables;
  Retention retention;
  // This process's counters.
  bool degraded = false;  // the disk is full: second-resolution data is being dropped
  uint64_t dropped_late_samples = 0;
  uint64_t rejected_samples = 0;
};

// Samples this process could not store, since it opened the store.
struct DroppedSamples {
  uint64_t late = 0;      // too late to place: past the seconds kept, or before a point already rolled up
  uint64_t rejected = 0;  // a time out of range, or a new process of a node that used every series id
};

struct CheckReport {
  std::vector<std::string> problems;  // empty when the store is sound (at most 100 are kept)
  uint64_t problem_count = 0;
  uint64_t jobs = 0, processes = 0, chunks = 0, points = 0, buckets = 0;
  uint64_t files = 0, connections = 0;
  bool ok() const { return problem_count == 0; }
};

struct SweepReport {
  uint64_t jobs_visited = 0;  // jobs (on a node) finished in this call
  uint64_t chunks_sealed = 0;
  uint64_t chunks_deleted = 0;
  bool complete = false;  // a whole pass over every job finished
};

struct UpgradeReport {
  uint32_t from_version = 0;
  uint32_t to_version = 0;
  uint64_t samples_migrated = 0;
};

// ---- Shipping to a central bcd (node side: the outbox; central side: dedup and API keys) ----

// Names one batch everywhere: the node and job it is for, the monitor instance that wrote it and its
// sequence number in that node store's outbox of the job (from 1, never reused).
struct BatchId {
  std::string node;
  uint64_t job_id = 0;
  uint64_t monitor_id = 0;
  uint64_t seq = 0;
  bool operator==(const BatchId&) const = default;
};

// A batch waiting in the outbox, in the wire encoding (wire::encode_batch).
struct SpooledBatch {
  BatchId id;
  std::string wire;
};

// A job's place in the outbox.
struct ShipState {
  uint64_t job_id = 0;
  uint64_t last_seq = 0;       // the newest batch spooled
  uint64_t shipped_up_to = 0;  // every batch up to here was acknowledged by bcd and removed
  uint64_t pending = 0;        // batches still in the outbox
  uint64_t pending_bytes = 0;
  // Given up at the outbox bound (OpenOptions::outbox_max_bytes): in the node store, never shipped.
  uint64_t dropped_batches = 0;
  uint64_t dropped_samples = 0;
};

// The central dedup table: one entry per recently applied batch, and one mark per (node, job, monitor)
// under which every seq counts as applied (older entries folded in by expire_dedup).
struct DedupStats {
  uint64_t entries = 0;
  uint64_t marks = 0;
};

// An API key for pushers without munge; only its hash is stored.
struct ApiKeyRecord {
  std::string hash;   // lowercase hex SHA-256 of the key
  std::string owner;  // e-mail or name the key was made for
  int64_t created_s = 0;
  // The one node whose data the key may push (bc-docker's host). Empty for keys made before keys were
  // bound to a node: bcd refuses those.
  std::string node;
};

// A Store is used by one thread at a time; open one per thread (LMDB allows one environment per path per
// process, so share one Store between threads only with a lock around it).
class Store {
 public:
  // Throws StoreError with the path and LMDB's text on failure.
  static std::unique_ptr<Store> open(const std::string& path, const OpenOptions& options = {});
  // Creates the store with the current schema. False when it already exists with the current schema;
  // throws when it exists with another schema.
  static bool init(const std::string& path, const OpenOptions& options = {});
  // Migrates an older schema in place (and is a no-op on the current one). Refuses a newer schema.
  static UpgradeReport upgrade(const std::string& path, const OpenOptions& options = {});
  virtual ~Store() = default;

  // Gives each process its series id (an existing record's, or a new one), writes it back into the
  // batch, then writes the job record, the processes and the samples in one transaction. Samples are
  // idempotent on (series, time): a duplicate replaces the earlier point, a late one is put in place and
  // the rollups it touches are recomputed. Samples older than the job's second-resolution retention are
  // dropped. Grows the map as needed; on a full disk drops second-resolution data first and keeps going.
  virtual void write_batch(Batch& batch) = 0;

  virtual std::optional<JobRecord> job(uint64_t job_id, const std::string& node) = 0;
  virtual std::vector<JobRecord> job_nodes(uint64_t job_id) = 0;  // one record per node
  virtual std::vector<uint64_t> job_ids() = 0;
  // Every job with its node records, in id order, from one read transaction: what a job listing reads.
  virtual std::vector<std::pair<uint64_t, std::vector<JobRecord>>> all_job_records() = 0;
  virtual std::vector<ProcessRecord> processes(uint64_t job_id) = 0;  // every node
  // Files and connections of every process of a job, every node, in key order (node, pid, start).
  virtual std::vector<FileRecord> files(uint64_t job_id) = 0;
  virtual std::vector<ConnectionRecord> connections(uint64_t job_id) = 0;
  // Job records and processes in one read transaction.
  virtual JobSnapshot load_job(uint64_t job_id) = 0;
  // The raw second-resolution points (cumulative values) of a series in [from_s, to_s] still retained.
  virtual std::vector<Sample> series(uint64_t job_id, const std::string& node, uint32_t series_id, int64_t from_s,
                                     int64_t to_s) = 0;
  // One series at one resolution; the store picks the finest one that holds the window unless asked.
  virtual SeriesData query_series(const SeriesQuery& query) = 0;
  virtual uint32_t schema_version() = 0;

  // Administration.
  virtual StoreStats stats() = 0;
  // Cheap (no transaction): for bcd's /metrics.
  virtual DroppedSamples dropped_samples() = 0;
  virtual CheckReport check() = 0;
  // Expires and seals old data across all jobs, in transactions of bounded size; at most max_work
  // chunk operations per call. Writers also run a small step of this periodically.
  virtual SweepReport sweep(uint64_t max_work) = 0;
  virtual const Retention& retention() const = 0;

  // ---------------------------------------------------------------- shipping (see docs/design/ingest.md)
  // Node side. write_batch, and in the same transaction the batch (series ids filled in, wire-encoded)
  // appended to its job's outbox under the job's next seq. Returns that seq.
  virtual uint64_t write_batch_spooled(Batch& batch, uint64_t monitor_id) = 0;
  // The oldest outbox entries, job by job in seq order, up to about max_bytes (at least one entry).
  virtual std::vector<SpooledBatch> pending_batches(size_t max_batches, size_t max_bytes) = 0;
  // bcd has stored every batch of the job up to up_to_seq: removes them and moves the cursor.
  virtual void acknowledge_batches(uint64_t job_id, uint64_t up_to_seq) = 0;
  virtual std::vector<ShipState> ship_states() = 0;

  // Central side. Applies the batch like write_batch unless a batch with this id was applied before; the id
  // is recorded in the same transaction. False: a duplicate, nothing written.
  virtual bool write_batch_once(Batch& batch, const BatchId& id) = 0;
  // The same for many batches in one transaction (one commit, one fsync): what bcd does with a request.
  // applied[i] tells whether batches[i] was new. All or nothing: on an exception none is applied.
  virtual std::vector<bool> write_batches_once(std::vector<Batch>& batches, const std::vector<BatchId>& ids) = 0;
  virtual uint64_t applied_batch_count() = 0;  // dedup entries (not marks)
  virtual DedupStats dedup_stats() = 0;
  // Folds dedup entries applied before applied_before_s (epoch seconds) into their monitor's mark, at most
  // max_work entries looked at per call (it goes on where the last call stopped). Returns how many were
  // folded. Idempotency is kept exactly (see the comment in store.cpp); bcd calls this with its
  // dedup_window.
  virtual uint64_t expire_dedup(int64_t applied_before_s, uint64_t max_work) = 0;

  virtual void put_api_key(const ApiKeyRecord& key) = 0;
  virtual bool delete_api_key(const std::string& hash) = 0;  // false: no such key
  virtual std::optional<ApiKeyRecord> api_key(const std::string& hash) = 0;
  virtual std::vector<ApiKeyRecord> api_keys() = 0;
};

}  // namespace bc::store
