#include "accounting_db/codec.hpp"

#include <algorithm>

namespace bc::store::codec {

// Each record starts with a format tag so fields can be appended later without a migration.
namespace {
constexpr uint64_t kJobFormatV1 = 1;      // schemas 1 and 2
constexpr uint64_t kJobFormatV2 = 2;      // + events: unavailable reason, lost events by cause; job name,
                                          // allocation, container identity
constexpr uint64_t kJobFormatV3 = 3;      // + Slurm array job and task ids, batches the node gave up shipping
constexpr uint64_t kJobFormatV4 = 4;      // + late tasks (a lost-events cause)
constexpr uint64_t kJobFormatV5 = 5;      // + the job's node list
constexpr uint64_t kJobFormat = 6;        // + GPUs
constexpr uint64_t kProcessFormatV1 = 1;  // schema 1
constexpr uint64_t kProcessFormatV2 = 2;  // + flags (bit 0: the counters are the series' last point)
constexpr uint64_t kProcessFormatV3 = 3;  // + exit status and event flags
constexpr uint64_t kProcessFormatV4 = 4;  // + the most threads and the Slurm task
constexpr uint64_t kProcessFormat = 5;    // + GPU memory and SM time
constexpr uint64_t kFileFormat = 1;
constexpr uint64_t kConnectionFormat = 1;
// A job record written before events existed: nothing says they ran.
constexpr const char* kNoEventsBefore = "events unavailable: recorded by a monitor without events";
constexpr uint64_t kSampleFormat = 1;

void expect_format(Decoder& d, uint64_t want, const char* what) {
  uint64_t got = d.u64();
  if (got != want) throw StoreError(std::string("unknown ") + what + " record format " + std::to_string(got));
}

uint64_t zigzag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t unzigzag(uint64_t v) { return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1)); }

// The event flags and exit status that end both a process record (format 3) and its identity. Checked on
// reading; allocates only to throw.
struct ExitStatus {
  uint64_t events = 0;
  int code = 0, signal = 0;
};
ExitStatus read_exit_status(Decoder& d, const char* what) {
  const uint64_t events = d.u64();
  if (events > 15) throw StoreError(std::string("corrupt ") + what + ": event flags");
  const int64_t code = d.i64();
  const uint64_t signal = d.u64();
  if (code < -1 || code > 255 || signal > 127) throw StoreError(std::string("corrupt ") + what + ": exit status");
  return {events, static_cast<int>(code), static_cast<int>(signal)};
}
// The task is stored plus one, so that "none" is the one-byte 0.
uint64_t task_code(uint32_t task) { return task == kTaskUnknown ? 0 : uint64_t{task} + 1; }
struct ThreadsAndTask {
  uint32_t max_threads = 0;
  uint32_t task = kTaskUnknown;
};
ThreadsAndTask read_threads_and_task(Decoder& d, const char* what) {
  const uint64_t threads = d.u64();
  const uint64_t task = d.u64();
  if (threads > UINT32_MAX || task > UINT32_MAX) throw StoreError(std::string("corrupt ") + what + ": threads or task");
  return {static_cast<uint32_t>(threads), task == 0 ? kTaskUnknown : static_cast<uint32_t>(task - 1)};
}
void set_exit_status(ProcessRecord& p, const ExitStatus& s) {
  p.exited = s.events & 1U;
  p.core_dumped = s.events & 2U;
  p.argv_truncated = s.events & 4U;
  p.exact = s.events & 8U;
  p.exit_code = s.code;
  p.exit_signal = s.signal;
}
}  // namespace

std::string encode_job(const JobRecord& j) {
  Encoder e;
  e.u64(kJobFormat);
  e.u64(j.job_id);
  e.str(j.node);
  e.u64(j.uid);
  e.str(j.user);
  e.u64(j.steps.size());
  for (uint32_t s : j.steps) e.u64(s);
  e.i64(j.start_ms);
  e.i64(j.end_ms);
  e.i64(j.last_sample_ms);
  e.u64(j.cgroup_version);
  e.u64((j.has_cgroup_cpu ? 1U : 0U) | (j.has_cgroup_memory ? 2U : 0U) | (j.has_cgroup_io ? 4U : 0U));
  e.u64(j.cgroup_cpu_ns);
  e.u64(j.cgroup_mem_current);
  e.u64(j.cgroup_mem_peak);
  e.u64(j.cgroup_read_bytes);
  e.u64(j.cgroup_write_bytes);
  e.u64(j.max_rss_sum);
  e.u64(j.sample_count);
  e.u64(j.monitor_cpu_ns);
  e.u64(j.monitor_max_rss);
  e.str(j.events_unavailable);
  e.u64(j.lost_events);
  for (uint64_t n : {j.lost.ring, j.lost.files, j.lost.connections, j.lost.tracked, j.lost.unreadable, j.lost.monitor})
    e.u64(n);
  e.str(j.job_name);
  e.u64(j.alloc_cpus);
  e.u64(j.mem_limit_bytes);
  e.str(j.container_id);
  e.str(j.container_name);
  e.str(j.container_image);
  e.u64(j.array_job_id);
  e.u64(j.array_task_id);
  e.u64(j.unshipped_batches);
  e.u64(j.unshipped_samples);
  e.u64(j.lost.late);
  e.str(j.job_nodes);
  e.u64(j.gpus.size());
  for (const JobGpu& g : j.gpus) {
    e.str(g.uuid);
    e.str(g.parent_uuid);
    e.u64(g.minor == UINT32_MAX ? 0 : uint64_t{g.minor} + 1);
    e.u64(g.allocated ? 1 : 0);
    for (uint64_t v : {g.memory_total, g.memory_max, g.util_ns, g.busy_ns, g.power_ns, g.energy_mj}) e.u64(v);
  }
  e.u64(j.gpus_lost);
  return e.bytes();
}

JobRecord decode_job(std::string_view value) {
  Decoder d(value);
  const uint64_t format = d.u64();
  if (format < kJobFormatV1 || format > kJobFormat)
    throw StoreError("unknown job record format " + std::to_string(format));
  JobRecord j;
  j.job_id = d.u64();
  j.node = d.str();
  j.uid = d.u32();
  j.user = d.str();
  uint64_t nsteps = d.u64();
  if (nsteps > value.size()) throw StoreError("corrupt job record: step count");
  for (uint64_t i = 0; i < nsteps; ++i) j.steps.push_back(d.u32());
  j.start_ms = d.i64();
  j.end_ms = d.i64();
  j.last_sample_ms = d.i64();
  j.cgroup_version = d.u32();
  uint64_t flags = d.u64();
  j.has_cgroup_cpu = flags & 1U;
  j.has_cgroup_memory = flags & 2U;
  j.has_cgroup_io = flags & 4U;
  j.cgroup_cpu_ns = d.u64();
  j.cgroup_mem_current = d.u64();
  j.cgroup_mem_peak = d.u64();
  j.cgroup_read_bytes = d.u64();
  j.cgroup_write_bytes = d.u64();
  j.max_rss_sum = d.u64();
  j.sample_count = d.u64();
  j.monitor_cpu_ns = d.u64();
  j.monitor_max_rss = d.u64();
  if (format == kJobFormatV1) {
    j.events_unavailable = kNoEventsBefore;
    return j;
  }
  j.events_unavailable = d.str();
  j.lost_events = d.u64();
  for (uint64_t* n :
       {&j.lost.ring, &j.lost.files, &j.lost.connections, &j.lost.tracked, &j.lost.unreadable, &j.lost.monitor})
    *n = d.u64();
  j.job_name = d.str();
  j.alloc_cpus = d.u32();
  j.mem_limit_bytes = d.u64();
  j.container_id = d.str();
  j.container_name = d.str();
  j.container_image = d.str();
  if (format == kJobFormatV2) return j;
  j.array_job_id = d.u32();
  j.array_task_id = d.u32();
  j.unshipped_batches = d.u64();
  j.unshipped_samples = d.u64();
  if (format == kJobFormatV3) return j;
  j.lost.late = d.u64();
  if (format == kJobFormatV4) return j;
  j.job_nodes = d.str();
  if (format == kJobFormatV5) return j;
  const uint64_t gpus = d.u64();
  if (gpus > value.size()) throw StoreError("corrupt job record: GPU count");
  for (uint64_t i = 0; i < gpus; ++i) {
    JobGpu& g = j.gpus.emplace_back();
    g.uuid = d.str();
    g.parent_uuid = d.str();
    const uint64_t minor = d.u64();
    if (minor > UINT32_MAX) throw StoreError("corrupt job record: GPU minor number");
    g.minor = minor == 0 ? UINT32_MAX : static_cast<uint32_t>(minor - 1);
    const uint64_t allocated = d.u64();
    if (allocated > 1) throw StoreError("corrupt job record: GPU flags");
    g.allocated = allocated == 1;
    for (uint64_t* v : {&g.memory_total, &g.memory_max, &g.util_ns, &g.busy_ns, &g.power_ns, &g.energy_mj})
      *v = d.u64();
    if (g.busy_ns > g.util_ns) throw StoreError("corrupt job record: GPU busy time");
  }
  j.gpus_lost = d.u64();
  return j;
}

std::string encode_process(const ProcessRecord& p, bool counters_in_series) {
  Encoder e;
  e.u64(kProcessFormat);
  e.u64(p.job_id);
  e.str(p.node);
  e.u64(p.pid);
  e.u64(p.ppid);
  e.u64(p.step);
  e.u64(p.start_ticks);
  e.i64(p.start_ms);
  e.i64(p.end_ms);
  e.u64(p.series_id);
  e.str(p.command);
  e.str(p.exe);
  e.u64(p.argv.size());
  for (const auto& a : p.argv) e.str(a);
  e.u64(p.cpu_ns);
  e.u64(p.max_rss);
  e.u64(p.rss);
  e.u64(p.read_bytes);
  e.u64(p.write_bytes);
  e.u64(counters_in_series ? 1U : 0U);
  e.u64((p.exited ? 1U : 0U) | (p.core_dumped ? 2U : 0U) | (p.argv_truncated ? 4U : 0U) | (p.exact ? 8U : 0U));
  e.i64(p.exit_code);
  e.u64(static_cast<uint64_t>(p.exit_signal < 0 ? 0 : p.exit_signal));
  e.u64(p.max_threads);
  e.u64(task_code(p.task));
  e.u64(p.gpu_memory_max);
  e.u64(p.gpu_sm_ns);
  return e.bytes();
}

ProcessRecord decode_process(std::string_view value, bool* counters_in_series) {
  Decoder d(value);
  const uint64_t format = d.u64();
  if (format < kProcessFormatV1 || format > kProcessFormat)
    throw StoreError("unknown process record format " + std::to_string(format));
  ProcessRecord p;
  p.job_id = d.u64();
  p.node = d.str();
  p.pid = d.u32();
  p.ppid = d.u32();
  p.step = d.u32();
  p.start_ticks = d.u64();
  p.start_ms = d.i64();
  p.end_ms = d.i64();
  p.series_id = d.u32();
  p.command = d.str();
  p.exe = d.str();
  uint64_t nargs = d.u64();
  if (nargs > value.size()) throw StoreError("corrupt process record: argv count");
  p.argv.reserve(std::min<uint64_t>(nargs, 256));  // a forged count must not reserve gigabytes
  for (uint64_t i = 0; i < nargs; ++i) p.argv.emplace_back(d.str_view());
  p.cpu_ns = d.u64();
  p.max_rss = d.u64();
  p.rss = d.u64();
  p.read_bytes = d.u64();
  p.write_bytes = d.u64();
  bool in_series = false;
  if (format >= kProcessFormatV2) {
    uint64_t flags = d.u64();
    if (flags > 1) throw StoreError("corrupt process record: flags");
    in_series = flags & 1U;
  }
  if (format >= kProcessFormatV3) set_exit_status(p, read_exit_status(d, "process record"));
  if (format >= kProcessFormatV4) {
    const ThreadsAndTask t = read_threads_and_task(d, "process record");
    p.max_threads = t.max_threads;
    p.task = t.task;
  }
  if (format >= kProcessFormat) {
    p.gpu_memory_max = d.u64();
    p.gpu_sm_ns = d.u64();
  }
  if (counters_in_series) *counters_in_series = in_series;
  return p;
}

void append_process_identity(std::string& out, const ProcessRecord& p) {
  auto str = [&out](std::string_view v) {
    append_varint(out, v.size());
    out.append(v);
  };
  append_varint(out, p.ppid);
  append_varint(out, p.step);
  append_varint(out, zigzag(p.start_ms));
  append_varint(out, p.max_rss);
  str(p.command);
  str(p.exe);
  append_varint(out, p.argv.size());
  for (const auto& a : p.argv) str(a);
  append_varint(out,
                (p.exited ? 1U : 0U) | (p.core_dumped ? 2U : 0U) | (p.argv_truncated ? 4U : 0U) | (p.exact ? 8U : 0U));
  append_varint(out, zigzag(p.exit_code));
  append_varint(out, static_cast<uint64_t>(p.exit_signal < 0 ? 0 : p.exit_signal));
  append_varint(out, p.max_threads);
  append_varint(out, task_code(p.task));
  append_varint(out, p.gpu_memory_max);
  append_varint(out, p.gpu_sm_ns);
}

namespace {

// One reader for checking (p == nullptr: nothing is stored, nothing allocated) and decoding.
void read_process_identity(std::string_view bytes, ProcessRecord* p) {
  Decoder d(bytes);
  const uint32_t ppid = d.u32();
  const uint32_t step = d.u32();
  const int64_t start_ms = d.i64();
  const uint64_t max_rss = d.u64();
  const std::string_view command = d.str_view();
  const std::string_view exe = d.str_view();
  const uint64_t nargs = d.u64();
  if (nargs > bytes.size()) throw StoreError("corrupt process identity: argv count");
  if (p) {
    p->ppid = ppid;
    p->step = step;
    p->start_ms = start_ms;
    p->max_rss = max_rss;
    p->command.assign(command);
    p->exe.assign(exe);
    p->argv.clear();
    p->argv.reserve(std::min<uint64_t>(nargs, 256));  // a forged count must not reserve gigabytes
  }
  for (uint64_t i = 0; i < nargs; ++i) {
    const std::string_view arg = d.str_view();
    if (p) p->argv.emplace_back(arg);
  }
  const ExitStatus status = read_exit_status(d, "process identity");
  // Nodes built before them send neither the threads and task, nor the GPU figures after them.
  ThreadsAndTask threads_and_task;
  if (!d.done()) threads_and_task = read_threads_and_task(d, "process identity");
  uint64_t gpu_memory_max = 0, gpu_sm_ns = 0;
  if (!d.done()) {
    gpu_memory_max = d.u64();
    gpu_sm_ns = d.u64();
  }
  if (!d.done()) throw StoreError("corrupt process identity: trailing bytes");
  if (p) {
    set_exit_status(*p, status);
    p->max_threads = threads_and_task.max_threads;
    p->task = threads_and_task.task;
    p->gpu_memory_max = gpu_memory_max;
    p->gpu_sm_ns = gpu_sm_ns;
  }
}

}  // namespace

void check_process_identity(std::string_view bytes) { read_process_identity(bytes, nullptr); }
void decode_process_identity(std::string_view bytes, ProcessRecord& p) { read_process_identity(bytes, &p); }

std::string encode_file(const FileRecord& f) {
  Encoder e;
  e.u64(kFileFormat);
  e.u64(f.job_id);
  e.str(f.node);
  e.u64(f.pid);
  e.u64(f.start_ticks);
  e.str(f.path);
  e.u64(f.flags);
  e.i64(f.first_ms);
  e.u64(f.opens);
  e.u64(f.failed);
  e.u64(f.read_bytes);
  e.u64(f.write_bytes);
  return e.bytes();
}

FileRecord decode_file(std::string_view value) {
  Decoder d(value);
  expect_format(d, kFileFormat, "file");
  FileRecord f;
  f.job_id = d.u64();
  f.node = d.str();
  f.pid = d.u32();
  f.start_ticks = d.u64();
  f.path = d.str();
  f.flags = d.u32();
  f.first_ms = d.i64();
  f.opens = d.u64();
  f.failed = d.u64();
  f.read_bytes = d.u64();
  f.write_bytes = d.u64();
  if (!d.done()) throw StoreError("corrupt file record: trailing bytes");
  return f;
}

std::string encode_connection(const ConnectionRecord& c) {
  Encoder e;
  e.u64(kConnectionFormat);
  e.u64(c.job_id);
  e.str(c.node);
  e.u64(c.pid);
  e.u64(c.start_ticks);
  e.str(c.address);
  e.u64(c.port);
  e.str(c.protocol);
  e.i64(c.first_ms);
  e.u64(c.count);
  e.u64(c.failed);
  return e.bytes();
}

ConnectionRecord decode_connection(std::string_view value) {
  Decoder d(value);
  expect_format(d, kConnectionFormat, "connection");
  ConnectionRecord c;
  c.job_id = d.u64();
  c.node = d.str();
  c.pid = d.u32();
  c.start_ticks = d.u64();
  c.address = d.str();
  const uint64_t port = d.u64();
  if (port > UINT16_MAX) throw StoreError("corrupt connection record: port");
  c.port = static_cast<uint16_t>(port);
  c.protocol = d.str();
  c.first_ms = d.i64();
  c.count = d.u64();
  c.failed = d.u64();
  if (!d.done()) throw StoreError("corrupt connection record: trailing bytes");
  return c;
}

std::string encode_sample(const Sample& s) {
  Encoder e;
  e.u64(kSampleFormat);
  e.u64(s.cpu_ns);
  e.u64(s.rss);
  e.u64(s.read_bytes);
  e.u64(s.write_bytes);
  return e.bytes();
}

Sample decode_sample(std::string_view value) {
  Decoder d(value);
  expect_format(d, kSampleFormat, "sample");
  Sample s;
  s.cpu_ns = d.u64();
  s.rss = d.u64();
  s.read_bytes = d.u64();
  s.write_bytes = d.u64();
  return s;
}

// ---- Schema 2 ----

namespace {
constexpr uint8_t kChunkFormatV1 = 1;  // points of format 1
constexpr uint8_t kChunkFormat = 2;
constexpr uint8_t kOpenFormatV1 = 1;  // varints, no free room
constexpr uint8_t kOpenFormatV2 = 2;  // fixed header without threads, points of format 1
constexpr uint8_t kOpenFormat = 3;
constexpr uint8_t kBucketsFormatV1 = 1;  // no thread figures
constexpr uint8_t kBucketsFormat = 2;
constexpr uint64_t kJobStateFormat = 1;
constexpr uint64_t kProcessPackFormat = 1;

constexpr uint64_t kCpuUnit = 10'000'000;  // one clock tick at USER_HZ 100
constexpr int64_t kRssUnit = 4096;         // one page
constexpr uint64_t kRssSumUnit = 1024;     // VmRSS is in KiB
constexpr int64_t kMaxDt = int64_t{1} << 33;
// Any 32-bit count is stored as given (the monitor clamps to it), so what is written always reads back.
constexpr uint64_t kMaxThreads = UINT32_MAX;

int64_t time_value(Decoder& d) {
  uint64_t v = d.u64();
  if (v > (uint64_t{1} << 40)) throw StoreError("corrupt series data: time out of range");
  return static_cast<int64_t>(v);
}

void put_values(std::string& out, const Point& p) {
  append_varint(out, p.cpu);
  append_varint(out, p.rss);
  append_varint(out, p.rd);
  append_varint(out, p.wr);
}
void get_values(Decoder& d, Point& p) {
  p.cpu = d.u64();
  p.rss = d.u64();
  p.rd = d.u64();
  p.wr = d.u64();
}
uint32_t thread_count(uint64_t v) {
  if (v > kMaxThreads) throw StoreError("corrupt series data: thread count out of range");
  return static_cast<uint32_t>(v);
}
}  // namespace

void put_point(std::string& out, const Point& prev, const Point& p) {
  uint8_t flags = 0;
  const auto dt = static_cast<uint64_t>(p.t - prev.t);
  const bool threads_changed = p.threads != prev.threads;
  if (dt != 1 || threads_changed) flags |= 1U;
  const bool down = p.cpu < prev.cpu || p.rd < prev.rd || p.wr < prev.wr;
  if (down) flags |= 0x80U;
  uint64_t cpu = p.cpu - prev.cpu;  // wraps when the counter went down: zigzag recovers it
  if (cpu != 0) {
    flags |= 2U;
    if (down) {
      cpu = zigzag(static_cast<int64_t>(cpu));
    } else if (cpu % kCpuUnit == 0) {
      flags |= 4U;
      cpu /= kCpuUnit;
    }
  }
  auto rss = static_cast<int64_t>(p.rss - prev.rss);
  if (rss != 0) {
    flags |= 8U;
    if (rss % kRssUnit == 0) {
      flags |= 0x10U;
      rss /= kRssUnit;
    }
  }
  uint64_t rd = p.rd - prev.rd, wr = p.wr - prev.wr;
  if (rd != 0) flags |= 0x20U;
  if (wr != 0) flags |= 0x40U;
  out.push_back(static_cast<char>(flags));
  if (flags & 1U) append_varint(out, dt << 1 | (threads_changed ? 1U : 0U));
  if (flags & 2U) append_varint(out, cpu);
  if (flags & 8U) append_varint(out, zigzag(rss));
  if (flags & 0x20U) append_varint(out, down ? zigzag(static_cast<int64_t>(rd)) : rd);
  if (flags & 0x40U) append_varint(out, down ? zigzag(static_cast<int64_t>(wr)) : wr);
  if (threads_changed) append_varint(out, zigzag(int64_t{p.threads} - int64_t{prev.threads}));
}

Point get_point(Decoder& d, const Point& prev, PointFormat format) {
  const uint8_t flags = d.raw_byte();
  const bool down = flags & 0x80U;
  Point p = prev;
  int64_t dt = 1;
  bool threads_changed = false;
  if (flags & 1U) {
    uint64_t v = d.u64();
    if (format == PointFormat::WithThreads) {
      threads_changed = v & 1U;
      v >>= 1;
    }
    if (v > static_cast<uint64_t>(kMaxDt)) throw StoreError("corrupt series data: time step out of range");
    dt = static_cast<int64_t>(v);
  }
  if (prev.t > INT64_MAX - dt) throw StoreError("corrupt series data: time out of range");
  p.t = prev.t + dt;
  if (flags & 2U) {
    uint64_t v = d.u64();
    if (down) {
      p.cpu = prev.cpu + static_cast<uint64_t>(unzigzag(v));
    } else {
      p.cpu = prev.cpu + ((flags & 4U) ? v * kCpuUnit : v);
    }
  }
  if (flags & 8U) {
    int64_t v = unzigzag(d.u64());
    if (flags & 0x10U) {
      if (v > INT64_MAX / kRssUnit || v < INT64_MIN / kRssUnit)
        throw StoreError("corrupt series data: RSS step out of range");
      v *= kRssUnit;
    }
    p.rss = prev.rss + static_cast<uint64_t>(v);
  }
  if (flags & 0x20U) {
    uint64_t v = d.u64();
    p.rd = prev.rd + (down ? static_cast<uint64_t>(unzigzag(v)) : v);
  }
  if (flags & 0x40U) {
    uint64_t v = d.u64();
    p.wr = prev.wr + (down ? static_cast<uint64_t>(unzigzag(v)) : v);
  }
  if (threads_changed) {
    const int64_t delta = unzigzag(d.u64());
    if (delta > static_cast<int64_t>(kMaxThreads) || delta < -static_cast<int64_t>(kMaxThreads))
      throw StoreError("corrupt series data: thread count out of range");
    p.threads = thread_count(static_cast<uint64_t>(int64_t{prev.threads} + delta));
  }
  return p;
}

std::vector<Point> decode_points(std::string_view bytes, const Point& origin, bool first_may_equal_origin,
                                 PointFormat format) {
  std::vector<Point> out;
  Decoder d(bytes);
  Point prev = origin;
  while (!d.done()) {
    Point p = get_point(d, prev, format);
    if (p.t < prev.t || (p.t == prev.t && !(out.empty() && first_may_equal_origin)))
      throw StoreError("corrupt series data: points out of order");
    out.push_back(p);
    prev = p;
  }
  return out;
}

void encode_points(std::string& out, const Point& origin, const std::vector<Point>& points) {
  const Point* prev = &origin;
  for (const auto& p : points) {
    put_point(out, *prev, p);
    prev = &p;
  }
}

void encode_chunk_raw(std::string& out, int64_t start, bool has_base, const Point& base, std::string_view points) {
  out.push_back(static_cast<char>(kChunkFormat));
  out.push_back(static_cast<char>(has_base ? 1 : 0));
  if (has_base) {
    append_varint(out, static_cast<uint64_t>(start - base.t));
    put_values(out, base);
    append_varint(out, base.threads);
  }
  out.append(points);
}

std::string encode_chunk(int64_t start, const Chunk& c) {
  std::string points;
  encode_points(points, c.origin(start), c.points);
  std::string out;
  encode_chunk_raw(out, start, c.has_base, c.base, points);
  return out;
}

Chunk decode_chunk(int64_t start, std::string_view value) {
  Decoder d(value);
  const uint8_t format = d.raw_byte();
  if (format != kChunkFormat && format != kChunkFormatV1) throw StoreError("unknown chunk format");
  const PointFormat points = format == kChunkFormat ? PointFormat::WithThreads : PointFormat::WithoutThreads;
  const uint8_t flags = d.raw_byte();
  if (flags > 1) throw StoreError("corrupt chunk: flags");
  Chunk c;
  c.has_base = flags & 1U;
  if (c.has_base) {
    int64_t back = time_value(d);
    if (back < 1 || back > start) throw StoreError("corrupt chunk: base time");
    c.base.t = start - back;
    get_values(d, c.base);
    if (points == PointFormat::WithThreads) c.base.threads = thread_count(d.u64());
  }
  c.points = decode_points(d.rest(), c.origin(start), !c.has_base, points);
  return c;
}

namespace {
// Open record, format 3: fixed offsets, big-endian; times fit 32 bits (the store refuses later ones).
//   0 format  1 flags (bit 0: base, bit 1: points)  2-3 bytes of points used  4-7 chunk start
//   8-47 tail (t u32, cpu, rss, rd, wr u64, threads u32)  48-87 base (same)  88- points, then free room
// Format 2 is the same without the threads: a 36-byte tail at 8 and base at 44, points from 80.
constexpr size_t kOpenHeader = 88;
constexpr size_t kOpenTail = 8, kOpenBase = 48;
constexpr size_t kOpenHeaderV2 = 80;
constexpr size_t kOpenBaseV2 = 44;

void put_be32(char* at, uint64_t v) {
  const uint32_t be = __builtin_bswap32(static_cast<uint32_t>(v));
  std::memcpy(at, &be, 4);
}
void put_be64(char* at, uint64_t v) {
  const uint64_t be = __builtin_bswap64(v);
  std::memcpy(at, &be, 8);
}
uint32_t get_be32(const char* at) {
  uint32_t v;
  std::memcpy(&v, at, 4);
  return __builtin_bswap32(v);
}
uint64_t get_be64(const char* at) {
  uint64_t v;
  std::memcpy(&v, at, 8);
  return __builtin_bswap64(v);
}
void put_be16(char* at, uint64_t v) {
  at[0] = static_cast<char>((v >> 8) & 0xff);
  at[1] = static_cast<char>(v & 0xff);
}
uint64_t get_be16(const char* at) { return (uint64_t{static_cast<uint8_t>(at[0])} << 8) | static_cast<uint8_t>(at[1]); }
void put_fixed_point(char* at, const Point& p) {
  put_be32(at, static_cast<uint64_t>(p.t));
  put_be64(at + 4, p.cpu);
  put_be64(at + 12, p.rss);
  put_be64(at + 20, p.rd);
  put_be64(at + 28, p.wr);
  put_be32(at + 36, p.threads);
}
// Format 2's fixed point ends before the thread count.
Point get_fixed_point(const char* at, bool with_threads) {
  return {static_cast<int64_t>(get_be32(at)),
          get_be64(at + 4),
          get_be64(at + 12),
          get_be64(at + 20),
          get_be64(at + 28),
          with_threads ? thread_count(get_be32(at + 36)) : 0};
}
// Room for about a quarter minute more of typical points before the value has to be rewritten larger.
size_t open_room(size_t used) { return std::max<size_t>(48, used / 2); }

OpenRecord decode_open_v1(Decoder& d) {
  const uint8_t flags = d.raw_byte();
  if (flags > 3 || flags == 0) throw StoreError("corrupt open record: flags");
  OpenRecord r;
  r.has_base = flags & 1U;
  r.has_points = flags & 2U;
  if (r.has_points) r.chunk_start = time_value(d);
  if (r.has_base) {
    r.base.t = time_value(d);
    get_values(d, r.base);
  }
  if (r.has_points) {
    r.tail.t = r.chunk_start + time_value(d);
    get_values(d, r.tail);
    r.points = d.rest();
    if (r.points.empty()) throw StoreError("corrupt open record: no points");
  }
  return r;
}
}  // namespace

OpenRecord decode_open(std::string_view value) {
  Decoder d(value);
  const uint8_t format = d.raw_byte();
  if (format == kOpenFormatV1) {
    OpenRecord r = decode_open_v1(d);
    r.point_format = PointFormat::WithoutThreads;
    return r;
  }
  if (format != kOpenFormat && format != kOpenFormatV2) throw StoreError("unknown open-record format");
  const bool v3 = format == kOpenFormat;
  const size_t header = v3 ? kOpenHeader : kOpenHeaderV2;
  if (value.size() < header) throw StoreError("corrupt open record: truncated");
  const auto flags = static_cast<uint8_t>(value[1]);
  if (flags > 3 || flags == 0) throw StoreError("corrupt open record: flags");
  OpenRecord r;
  r.point_format = v3 ? PointFormat::WithThreads : PointFormat::WithoutThreads;
  r.has_base = flags & 1U;
  r.has_points = flags & 2U;
  const size_t used = get_be16(value.data() + 2);
  if (used > value.size() - header) throw StoreError("corrupt open record: points overrun the value");
  if (r.has_base) r.base = get_fixed_point(value.data() + (v3 ? kOpenBase : kOpenBaseV2), v3);
  if (r.has_points) {
    r.chunk_start = static_cast<int64_t>(get_be32(value.data() + 4));
    r.tail = get_fixed_point(value.data() + kOpenTail, v3);
    r.points = value.substr(header, used);
    if (r.points.empty()) throw StoreError("corrupt open record: no points");
  } else if (used != 0) {
    throw StoreError("corrupt open record: points without a minute");
  }
  return r;
}

std::vector<Point> open_points(const OpenRecord& r) {
  return decode_points(r.points, r.origin(), !r.has_base, r.point_format);
}

void upgrade_open_points(OpenRecord& r, std::string& storage) {
  if (r.point_format == kPointFormat) return;
  if (r.has_points) {
    const std::vector<Point> points = open_points(r);
    storage.clear();
    encode_points(storage, r.origin(), points);
    r.points = storage;
  }
  r.point_format = kPointFormat;
}

void encode_open(std::string& out, const OpenRecord& r) {
  if (r.has_points && r.point_format != kPointFormat)
    throw StoreError("open record: points of an old format (upgrade_open_points first)");
  const size_t used = r.has_points ? r.points.size() : 0;
  if (used > 0xffff) throw StoreError("open record: too many point bytes");
  const size_t at = out.size();
  const size_t room = r.has_points ? std::min<size_t>(open_room(used), 0xffff - used) : 0;
  out.resize(at + kOpenHeader + used + room, '\0');
  char* h = out.data() + at;
  h[0] = static_cast<char>(kOpenFormat);
  h[1] = static_cast<char>((r.has_base ? 1 : 0) | (r.has_points ? 2 : 0));
  put_be16(h + 2, used);
  if (r.has_points) {
    put_be32(h + 4, static_cast<uint64_t>(r.chunk_start));
    put_fixed_point(h + kOpenTail, r.tail);
    std::memcpy(h + kOpenHeader, r.points.data(), used);
  }
  if (r.has_base) put_fixed_point(h + kOpenBase, r.base);
}

bool append_open_in_place(std::string& value, const Point& p) {
  if (value.size() < kOpenHeader || static_cast<uint8_t>(value[0]) != kOpenFormat || !(value[1] & 2)) return false;
  const size_t used = get_be16(value.data() + 2);
  const auto chunk_start = static_cast<int64_t>(get_be32(value.data() + 4));
  if (used == 0 || p.t < chunk_start || p.t >= chunk_start + 60) return false;
  const Point tail = get_fixed_point(value.data() + kOpenTail, true);
  if (p.t <= tail.t) return false;
  // The point is encoded past the end of the value, then moved into the free room if it fits.
  const size_t size = value.size();
  put_point(value, tail, p);
  const size_t n = value.size() - size;
  if (kOpenHeader + used + n > size) {
    value.resize(size);
    return false;
  }
  char* h = value.data();
  std::memmove(h + kOpenHeader + used, h + size, n);
  value.resize(size);
  put_be16(h + 2, used + n);
  put_fixed_point(h + kOpenTail, p);
  return true;
}

bool append_open(std::string& out, std::string_view value, const Point& p) {
  out.assign(value);
  return append_open_in_place(out, p);
}

std::string encode_buckets(const Buckets& buckets) {
  std::string out;
  out.push_back(static_cast<char>(kBucketsFormat));
  int64_t prev = -1;
  for (const auto& [index, b] : buckets) {
    append_varint(out, static_cast<uint64_t>(static_cast<int64_t>(index) - prev - 1));
    prev = index;
    uint8_t flags = 0;
    uint64_t cpu = b.cpu_ns, rate = b.cpu_rate_max, rss_sum = b.rss_sum, rss_max = b.rss_max;
    if (cpu % kCpuUnit == 0) flags |= 1U, cpu /= kCpuUnit;
    if (rate % kCpuUnit == 0) flags |= 2U, rate /= kCpuUnit;
    if (rss_sum % kRssSumUnit == 0) flags |= 4U, rss_sum /= kRssSumUnit;
    if (rss_max % kRssSumUnit == 0) flags |= 8U, rss_max /= kRssSumUnit;
    out.push_back(static_cast<char>(flags));
    append_varint(out, b.samples);
    append_varint(out, cpu);
    append_varint(out, b.cpu_ns - b.timed_cpu_ns);
    append_varint(out, zigzag(static_cast<int64_t>(b.wall_s - b.samples)));
    append_varint(out, rate);
    append_varint(out, rss_sum);
    append_varint(out, rss_max);
    append_varint(out, b.read_bytes);
    append_varint(out, b.write_bytes);
    append_varint(out, b.threads_sum);
    append_varint(out, b.threads_max);
  }
  return out;
}

Buckets decode_buckets(std::string_view value) {
  Decoder d(value);
  const uint8_t format = d.raw_byte();
  if (format != kBucketsFormat && format != kBucketsFormatV1) throw StoreError("unknown bucket-chunk format");
  Buckets out;
  int64_t prev = -1;
  while (!d.done()) {
    uint64_t gap = d.u64();
    if (gap > 100000) throw StoreError("corrupt bucket chunk: index");
    int64_t index = prev + 1 + static_cast<int64_t>(gap);
    prev = index;
    const uint8_t flags = d.raw_byte();
    if (flags > 15) throw StoreError("corrupt bucket chunk: flags");
    Rollup b;
    b.samples = d.u64();
    b.cpu_ns = d.u64();
    if (flags & 1U) b.cpu_ns *= kCpuUnit;
    uint64_t untimed = d.u64();
    if (untimed > b.cpu_ns) throw StoreError("corrupt bucket chunk: timed CPU");
    b.timed_cpu_ns = b.cpu_ns - untimed;
    b.wall_s = b.samples + static_cast<uint64_t>(unzigzag(d.u64()));
    b.cpu_rate_max = d.u64();
    if (flags & 2U) b.cpu_rate_max *= kCpuUnit;
    b.rss_sum = d.u64();
    if (flags & 4U) b.rss_sum *= kRssSumUnit;
    b.rss_max = d.u64();
    if (flags & 8U) b.rss_max *= kRssSumUnit;
    b.read_bytes = d.u64();
    b.write_bytes = d.u64();
    if (format == kBucketsFormat) {
      b.threads_sum = d.u64();
      b.threads_max = thread_count(d.u64());
    }
    out.emplace_back(static_cast<uint32_t>(index), b);
  }
  return out;
}

std::string encode_job_state(const JobState& s) {
  Encoder e;
  e.u64(kJobStateFormat);
  e.i64(s.first_s);
  e.i64(s.latest_s);
  for (int64_t f : s.floor) e.i64(f);
  e.u64(s.seal_cursor);
  e.u64(s.process_generation);
  return e.bytes();
}

JobState decode_job_state(std::string_view value) {
  Decoder d(value);
  expect_format(d, kJobStateFormat, "job state");
  JobState s;
  s.first_s = d.i64();
  s.latest_s = d.i64();
  for (int64_t& f : s.floor) f = d.i64();
  s.seal_cursor = d.u32();
  s.process_generation = d.u64();
  if (!d.done()) throw StoreError("corrupt job state: trailing bytes");
  return s;
}

void encode_process_pack_header(std::string& out, uint64_t generation, uint64_t count) {
  append_varint(out, kProcessPackFormat);
  append_varint(out, generation);
  append_varint(out, count);
}

void append_packed_record(std::string& out, std::string_view record) {
  append_varint(out, record.size());
  out.append(record);
}

ProcessPack decode_process_pack(std::string_view value) {
  Decoder d(value);
  expect_format(d, kProcessPackFormat, "process pack");
  ProcessPack pack;
  pack.generation = d.u64();
  const uint64_t count = d.u64();
  if (count > value.size()) throw StoreError("corrupt process pack: count");
  pack.records.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t n = d.u64();
    std::string_view rest = d.rest();
    if (n > rest.size()) throw StoreError("corrupt process pack: record overruns the value");
    pack.records.push_back(rest.substr(0, n));
    d = Decoder(rest.substr(n));
  }
  if (!d.done()) throw StoreError("corrupt process pack: trailing bytes");
  return pack;
}

}  // namespace bc::store::codec
