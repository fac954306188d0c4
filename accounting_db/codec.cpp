#include "codec.hpp"

namespace bc::store::codec {

// Each record starts with a format tag so fields can be appended later without a migration.
namespace {
constexpr uint64_t kJobFormat = 1;
constexpr uint64_t kProcessFormat = 1;
constexpr uint64_t kSampleFormat = 1;

void expect_format(Decoder& d, uint64_t want, const char* what) {
  uint64_t got = d.u64();
  if (got != want) throw StoreError(std::string("unknown ") + what + " record format " + std::to_string(got));
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
  return e.bytes();
}

JobRecord decode_job(std::string_view value) {
  Decoder d(value);
  expect_format(d, kJobFormat, "job");
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
  return j;
}

std::string encode_process(const ProcessRecord& p) {
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
  return e.bytes();
}

ProcessRecord decode_process(std::string_view value) {
  Decoder d(value);
  expect_format(d, kProcessFormat, "process");
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
  for (uint64_t i = 0; i < nargs; ++i) p.argv.push_back(d.str());
  p.cpu_ns = d.u64();
  p.max_rss = d.u64();
  p.rss = d.u64();
  p.read_bytes = d.u64();
  p.write_bytes = d.u64();
  return p;
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

}  // namespace bc::store::codec
