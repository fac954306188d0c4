// bcd's per-job views for the web page and bcacct: processes, the process tree, time series and a live
// stream of new samples (Server-Sent Events). Every view goes through Api::open_job, so the same
// authorization applies to all of them.
#include <cjson/cJSON.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "accounting_db/job_model.hpp"
#include "accounting_db/store.hpp"
#include "common/clock.hpp"
#include "common/json.hpp"
#include "web/bcd/api.hpp"

namespace bc::bcd {
namespace {

using store::ProcessRecord;
using store::Resolution;
using web::Request;
using web::Response;

using Json = json::Ptr;
using json::add;
using json::append;
using json::checked;

void add_string(cJSON* o, const char* name, const std::string& value) { add(o, name, json::string(value)); }

void add_time(cJSON* o, const char* name, int64_t ms) { add(o, name, job::time_json(ms)); }

Json object() { return Json(checked(cJSON_CreateObject())); }

// "node:series", the id the page uses for a process (series ids are unique per job and node).
std::string process_key(const std::string& node, uint32_t series_id) { return node + ":" + std::to_string(series_id); }

cJSON* process_object(const ProcessRecord& p) {
  cJSON* o = cJSON_CreateObject();
  add_string(o, "key", process_key(p.node, p.series_id));
  cJSON_AddNumberToObject(o, "pid", p.pid);
  cJSON_AddNumberToObject(o, "ppid", p.ppid);
  add_string(o, "node", p.node);
  add_string(o, "step", store::step_name(p.step));
  cJSON_AddNumberToObject(o, "series", p.series_id);
  add_string(o, "command", p.command);
  add_string(o, "exe", p.exe);
  cJSON* argv = cJSON_AddArrayToObject(o, "argv");
  for (const auto& a : p.argv) append(argv, json::string(a));
  add_time(o, "start", p.start_ms);
  add_time(o, "end", p.end_ms);
  cJSON_AddNumberToObject(o, "cpu_seconds", static_cast<double>(p.cpu_ns) / 1e9);
  cJSON_AddNumberToObject(o, "max_rss_bytes", static_cast<double>(p.max_rss));
  cJSON_AddNumberToObject(o, "rss_bytes", static_cast<double>(p.rss));
  cJSON_AddNumberToObject(o, "read_bytes", static_cast<double>(p.read_bytes));
  cJSON_AddNumberToObject(o, "write_bytes", static_cast<double>(p.write_bytes));
  cJSON_AddNumberToObject(o, "max_threads", p.max_threads);
  cJSON_AddNumberToObject(o, "gpu_memory_max_bytes", static_cast<double>(p.gpu_memory_max));
  cJSON_AddNumberToObject(o, "gpu_sm_seconds", static_cast<double>(p.gpu_sm_ns) / 1e9);
  if (p.task != store::kTaskUnknown) cJSON_AddNumberToObject(o, "task", p.task);
  if (p.exited) {
    cJSON_AddNumberToObject(o, "exit_code", p.exit_code);
    cJSON_AddNumberToObject(o, "exit_signal", p.exit_signal);
    cJSON_AddBoolToObject(o, "core_dumped", p.core_dumped);
  }
  return o;
}

// (node, pid, start ticks) -> the process's key and command, to name the process of a file or connection.
using ProcessIndex = std::map<std::tuple<std::string, uint32_t, uint64_t>, const ProcessRecord*>;
ProcessIndex index_processes(const std::vector<ProcessRecord>& procs) {
  ProcessIndex out;
  for (const auto& p : procs) out[{p.node, p.pid, p.start_ticks}] = &p;
  return out;
}

void add_owner(cJSON* o, const ProcessIndex& index, const std::string& node, uint32_t pid, uint64_t start_ticks) {
  cJSON_AddNumberToObject(o, "pid", pid);
  add_string(o, "node", node);
  auto it = index.find({node, pid, start_ticks});
  if (it == index.end()) {
    cJSON_AddNullToObject(o, "process");
    cJSON_AddNullToObject(o, "command");
    return;
  }
  add_string(o, "process", process_key(node, it->second->series_id));
  add_string(o, "command", it->second->command);
}

// One bucket of a series as the API gives it. Counts stay integers (CPU as nanoseconds), so they print
// as integers and sums over nodes stay exact.
struct Point {
  int64_t t = 0;
  uint64_t samples = 0, cpu_ns = 0;
  double cpu_mean = 0, cpu_max = 0;
  uint64_t rss_mean = 0, rss_max = 0, read = 0, write = 0;
  double threads_mean = 0;
  uint64_t threads_max = 0;
};
using Points = std::vector<Point>;

Points to_points(const std::vector<store::Rollup>& buckets) {
  Points out;
  out.reserve(buckets.size());
  for (const auto& b : buckets)
    out.push_back(Point{b.start_s, b.samples, b.cpu_ns, b.cpu_percent_mean(), b.cpu_percent_max(), b.rss_mean(),
                        b.rss_max, b.read_bytes, b.write_bytes, b.threads_mean(), b.threads_max});
  return out;
}

// Pointwise sum by bucket start (the series of a job's nodes add up to the job's).
Points add(const Points& a, const Points& b) {
  Points out;
  out.reserve(std::max(a.size(), b.size()));
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].t < b[j].t)) {
      out.push_back(a[i++]);
    } else if (i == a.size() || b[j].t < a[i].t) {
      out.push_back(b[j++]);
    } else {
      Point p = a[i++];
      const Point& q = b[j++];
      p.samples += q.samples;
      p.cpu_ns += q.cpu_ns;
      p.cpu_mean += q.cpu_mean;
      p.cpu_max += q.cpu_max;
      p.rss_mean += q.rss_mean;
      p.rss_max += q.rss_max;
      p.read += q.read;
      p.write += q.write;
      p.threads_mean += q.threads_mean;
      p.threads_max += q.threads_max;
      out.push_back(p);
    }
  }
  return out;
}

uint64_t minus(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

// The job total minus the given series at the total's buckets, never below zero. Its maxima are not
// defined (the max of the rest cannot be derived from the job total), so it has none.
Points rest_of(const Points& total, const Points& shown) {
  std::map<int64_t, Point> by_t;
  for (const auto& p : shown) by_t[p.t] = p;
  Points out;
  for (Point p : total) {
    if (auto it = by_t.find(p.t); it != by_t.end()) {
      p.cpu_mean = std::max(0.0, p.cpu_mean - it->second.cpu_mean);
      p.cpu_ns = minus(p.cpu_ns, it->second.cpu_ns);
      p.rss_mean = minus(p.rss_mean, it->second.rss_mean);
      p.read = minus(p.read, it->second.read);
      p.write = minus(p.write, it->second.write);
      p.threads_mean = std::max(0.0, p.threads_mean - it->second.threads_mean);
    }
    out.push_back(p);
  }
  return out;
}

enum class Metric { All, Cpu, Rss, Io, Threads, Gpu };

std::optional<Metric> parse_metric(const std::string& s) {
  if (s.empty() || s == "all") return Metric::All;
  if (s == "cpu") return Metric::Cpu;
  if (s == "rss") return Metric::Rss;
  if (s == "io") return Metric::Io;
  if (s == "threads") return Metric::Threads;
  if (s == "gpu") return Metric::Gpu;
  return std::nullopt;
}

// Series are the API's bulk: their columns of numbers are formatted with std::to_chars and put into the
// answer as raw JSON, not as cJSON numbers, whose printing dominates large answers. Integers print as
// integers; CPU percent to 0.01 (of one core: 100 us of CPU per second, below the kernel's 10 ms tick); CPU
// seconds exactly, from nanoseconds.
void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

void append_percent(std::string& out, double v) {
  char buf[32];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, std::round(v * 100) / 100).ptr);
}

void append_seconds(std::string& out, uint64_t ns) {
  append_uint(out, ns / 1000000000);
  if (uint64_t frac = ns % 1000000000) {
    char digits[10];
    std::snprintf(digits, sizeof digits, "%09llu", static_cast<unsigned long long>(frac));
    size_t n = 9;
    while (digits[n - 1] == '0') --n;
    out += '.';
    out.append(digits, n);
  }
}

// One column's values, "[v,v,...]".
template <typename List, typename Append>
std::string column(const List& points, Append append) {
  std::string out = "[";
  out.reserve(points.size() * 8 + 2);
  for (size_t i = 0; i < points.size(); ++i) {
    if (i) out += ',';
    append(out, points[i]);
  }
  return out + "]";
}

// A series: {"key", "label", "t": [...], "samples": [...], then the metric's columns}. A max column equal to
// its mean at every bucket (one sample per bucket, as at second resolution) is sent once: cpu_percent_max,
// rss_mean_bytes and threads_mean are then left out and named in "same" ({"cpu_percent_max":
// "cpu_percent_mean", "rss_mean_bytes": "rss_max_bytes", "threads_mean": "threads_max"}), so a client reads
// them from their twins. Without maxima ("other"),
// the max columns are left out. A series given the job total it is sent with (`total`), whose buckets are
// the total's ("other" always, long-running processes mostly), leaves its "t" out: it is the total's.
cJSON* series_object(const std::string& key, const std::string& label, const Points& points, Metric metric,
                     bool has_max = true, const Points* total = nullptr) {
  Json out = object();
  Json same = object();
  add_string(out.get(), "key", key);
  add_string(out.get(), "label", label);
  auto add_column = [&out](const char* name, const std::string& values) { add(out.get(), name, json::raw(values)); };
  const bool own_buckets = !total || !std::equal(points.begin(), points.end(), total->begin(), total->end(),
                                                 [](const Point& a, const Point& b) { return a.t == b.t; });
  if (own_buckets)
    add_column("t", column(points, [](std::string& o, const Point& p) {
                 char buf[24];
                 o.append(buf, std::to_chars(buf, buf + sizeof buf, p.t).ptr);
               }));
  add_column("samples", column(points, [](std::string& o, const Point& p) { append_uint(o, p.samples); }));
  if (metric == Metric::All || metric == Metric::Cpu) {
    const std::string mean = column(points, [](std::string& o, const Point& p) { append_percent(o, p.cpu_mean); });
    add_column("cpu_percent_mean", mean);
    if (has_max) {
      std::string max = column(points, [](std::string& o, const Point& p) { append_percent(o, p.cpu_max); });
      if (max == mean) add_string(same.get(), "cpu_percent_max", "cpu_percent_mean");
      else add_column("cpu_percent_max", max);
    }
    add_column("cpu_seconds", column(points, [](std::string& o, const Point& p) { append_seconds(o, p.cpu_ns); }));
  }
  // A gauge's mean, and its max where the series has maxima: equal at every bucket, the mean is sent as the max.
  auto add_gauge = [&](const char* mean_name, const char* max_name, auto append_mean, auto append_max) {
    const std::string mean = column(points, append_mean);
    if (!has_max) {
      add_column(mean_name, mean);
      return;
    }
    const std::string max = column(points, append_max);
    if (max == mean) add_string(same.get(), mean_name, max_name);
    else add_column(mean_name, mean);
    add_column(max_name, max);
  };
  if (metric == Metric::All || metric == Metric::Rss)
    add_gauge(
        "rss_mean_bytes", "rss_max_bytes", [](std::string& o, const Point& p) { append_uint(o, p.rss_mean); },
        [](std::string& o, const Point& p) { append_uint(o, p.rss_max); });
  if (metric == Metric::All || metric == Metric::Io) {
    add_column("read_bytes", column(points, [](std::string& o, const Point& p) { append_uint(o, p.read); }));
    add_column("write_bytes", column(points, [](std::string& o, const Point& p) { append_uint(o, p.write); }));
  }
  // The thread mean to 0.01 of a thread, like CPU percent; 0 where the data predates thread counts.
  if (metric == Metric::All || metric == Metric::Threads)
    add_gauge(
        "threads_mean", "threads_max", [](std::string& o, const Point& p) { append_percent(o, p.threads_mean); },
        [](std::string& o, const Point& p) { append_uint(o, p.threads_max); });
  if (same->child) add(out.get(), "same", same.release());
  return out.release();
}

// One bucket of a GPU series as the API gives it.
struct GpuPoint {
  int64_t t = 0;
  uint64_t samples = 0;
  store::GpuBucket figures;
};

std::vector<GpuPoint> to_gpu_points(const std::vector<store::Rollup>& buckets) {
  std::vector<GpuPoint> out;
  out.reserve(buckets.size());
  for (const auto& b : buckets) out.push_back(GpuPoint{b.start_s, b.samples, store::gpu_bucket(b)});
  return out;
}

// A GPU series: {"key", "label", "t", "samples", "memory_mean_bytes", "memory_max_bytes"}, with
// "busy_percent_mean" and "busy_percent_max" (a GPU's utilisation, a process's SM share) where NVML gave them,
// and a GPU's "power_watts" where NVML gave its draw.
cJSON* gpu_series_object(const std::string& key, const std::string& label, const std::vector<GpuPoint>& points,
                         bool with_busy, bool with_power) {
  Json out = object();
  add_string(out.get(), "key", key);
  add_string(out.get(), "label", label);
  auto add_column = [&](const char* name, auto append) { add(out.get(), name, json::raw(column(points, append))); };
  add_column("t", [](std::string& o, const GpuPoint& p) {
    char buf[24];
    o.append(buf, std::to_chars(buf, buf + sizeof buf, p.t).ptr);
  });
  add_column("samples", [](std::string& o, const GpuPoint& p) { append_uint(o, p.samples); });
  if (with_busy) {
    add_column("busy_percent_mean",
               [](std::string& o, const GpuPoint& p) { append_percent(o, p.figures.busy_percent_mean); });
    add_column("busy_percent_max",
               [](std::string& o, const GpuPoint& p) { append_percent(o, p.figures.busy_percent_max); });
  }
  add_column("memory_mean_bytes", [](std::string& o, const GpuPoint& p) { append_uint(o, p.figures.memory_mean); });
  add_column("memory_max_bytes", [](std::string& o, const GpuPoint& p) { append_uint(o, p.figures.memory_max); });
  if (with_power)
    add_column("power_watts", [](std::string& o, const GpuPoint& p) { append_percent(o, p.figures.power_watts); });
  return out.release();
}

Json container_object(const std::string& container) {
  Json root = object();
  add_string(root.get(), "container", container);
  return root;
}

std::string label_of(const ProcessRecord& p) {
  return std::to_string(p.pid) + " " + (p.argv.empty() ? "[" + p.command + "]" : p.argv.front());
}

// A metric=gpu answer's series: the job's GPUs on each node, then its processes that used one, the most GPU
// memory first (at most `top`). `buckets(node, series id)` reads one series.
template <typename Buckets>
void append_gpu_series(cJSON* list, const store::JobSnapshot& snap, size_t top, Buckets buckets) {
  for (const auto& n : snap.nodes)
    for (size_t i = 0; i < n.gpus.size() && i < store::kMaxGpuDevices; ++i) {
      const store::JobGpu& g = n.gpus[i];
      const std::string name = "GPU " + (g.minor == UINT32_MAX ? std::string("?") : std::to_string(g.minor)) +
                               (snap.nodes.size() > 1 ? " on " + n.node : "") + " (" + g.uuid + ")";
      append(list, gpu_series_object("gpu:" + n.node + ":" + std::to_string(i), name,
                                     to_gpu_points(buckets(n.node, store::gpu_device_series(i))), g.util_ns > 0,
                                     g.power_ns > 0));
    }
  std::vector<const ProcessRecord*> used;
  for (const auto& p : snap.processes)
    if (p.gpu_memory_max || p.gpu_sm_ns) used.push_back(&p);
  const size_t n = std::min(used.size(), top);
  std::partial_sort(used.begin(), used.begin() + static_cast<long>(n), used.end(),
                    [](const ProcessRecord* a, const ProcessRecord* b) {
                      return a->gpu_memory_max != b->gpu_memory_max ? a->gpu_memory_max > b->gpu_memory_max
                                                                    : a->gpu_sm_ns > b->gpu_sm_ns;
                    });
  for (size_t i = 0; i < n; ++i)
    append(list,
           gpu_series_object(process_key(used[i]->node, used[i]->series_id), label_of(*used[i]),
                             to_gpu_points(buckets(used[i]->node, store::gpu_series_of_process(used[i]->series_id))),
                             used[i]->gpu_sm_ns > 0, false));
}

// The resolution for a window: seconds up to an hour, minutes up to two days, hours up to 120 days, then
// days (the store keeps each about that long).
Resolution resolution_for_window(int64_t seconds) {
  if (seconds <= 3600) return Resolution::Second;
  if (seconds <= 2 * 86400) return Resolution::Minute;
  if (seconds <= 120 * 86400) return Resolution::Hour;
  return Resolution::Day;
}

// The page's automatic resolution for a job's window [from, to]: the coarser of what the window calls for
// and what the store still holds back to `from` (asked of the job's first node).
Resolution automatic_resolution(store::Store& db, uint64_t job, const store::JobSnapshot& snap, int64_t from,
                                int64_t to) {
  store::SeriesQuery probe;
  probe.job_id = job;
  probe.node = snap.nodes.front().node;
  probe.from_s = from;
  probe.to_s = from;
  return std::max(db.query_series(probe).resolution, resolution_for_window(to - from));
}

// "auto" (or nothing) leaves out unset.
bool parse_resolution(const std::string& s, std::optional<Resolution>& out) {
  static const std::pair<const char*, Resolution> names[] = {{"s", Resolution::Second}, {"second", Resolution::Second},
                                                             {"m", Resolution::Minute}, {"minute", Resolution::Minute},
                                                             {"h", Resolution::Hour},   {"hour", Resolution::Hour},
                                                             {"d", Resolution::Day},    {"day", Resolution::Day}};
  if (s.empty() || s == "auto") return true;
  for (auto [name, r] : names)
    if (s == name) return out = r, true;
  return false;
}

int64_t job_start_s(const store::JobSnapshot& s) {
  int64_t start = INT64_MAX;
  for (const auto& n : s.nodes) start = std::min(start, n.start_ms / 1000);
  return start == INT64_MAX ? 0 : start;
}

// The job's end, or nothing while any node still runs.
std::optional<int64_t> job_end_ms(const std::vector<store::JobRecord>& nodes) {
  int64_t end = 0;
  for (const auto& n : nodes) {
    if (!n.end_ms) return std::nullopt;
    end = std::max(end, n.end_ms);
  }
  return end;
}

// One SSE event; each line of the payload is its own data: line.
std::string sse_event(const std::string& name, const std::string& payload) {
  std::string out = "event: " + name + "\n";
  size_t start = 0;
  while (start < payload.size()) {
    size_t end = payload.find('\n', start);
    if (end == std::string::npos) end = payload.size();
    out += "data: " + payload.substr(start, end - start) + "\n";
    start = end + 1;
  }
  return out + "\n";
}

// Streams new second-resolution points of a job and its processes. Asked once per server poll period;
// the cheap check (the job records' last sample time) usually ends the work.
class JobStream : public web::Stream {
 public:
  // expires_at: when the caller's token expires (epoch seconds; 0: never). The stream ends then, as the
  // token would no longer open the job.
  JobStream(store::Store& db, uint64_t key, std::string container, int64_t since_s, int64_t expires_at,
            std::shared_ptr<std::atomic<unsigned>> counter)
      : db_(db),
        key_(key),
        container_(std::move(container)),
        since_s_(since_s),
        expires_at_(expires_at),
        counter_(std::move(counter)) {}
  ~JobStream() override { --*counter_; }

  std::optional<std::string> next() override {
    if (ended_) return std::nullopt;
    std::string out;
    if (!greeted_) {
      greeted_ = true;
      // Reconnect after 3 s if the connection drops before the end event.
      out += "retry: 3000\n" + sse_event("hello", json::print(container_object(container_).get()));
    }
    if (expires_at_ && epoch_ms() / 1000 >= expires_at_) {
      ended_ = true;
      Json expired = object();
      add_string(expired.get(), "error", "the token has expired; ask for a new link");
      return out + sse_event("expired", json::print(expired.get()));
    }
    const std::vector<store::JobRecord> nodes = db_.job_nodes(key_);
    int64_t latest = 0;
    for (const auto& n : nodes) latest = std::max(latest, n.last_sample_ms);
    const auto end = job_end_ms(nodes);
    if (latest != seen_sample_ms_ || (end && !end_sent_)) {
      seen_sample_ms_ = latest;
      out += updates(nodes);
      idle_polls_ = 0;
    } else if (++idle_polls_ >= 15) {
      out += ": keep-alive\n\n";  // also how a parked stream learns its client has gone
      idle_polls_ = 0;
    }
    if (end && !end_sent_) {
      end_sent_ = true;
      ended_ = true;
      Json ended = object();
      add_time(ended.get(), "end", *end);
      out += sse_event("end", json::print(ended.get()));
    }
    return out;
  }

 private:
  std::string updates(const std::vector<store::JobRecord>& nodes) {
    Json samples = object();
    add_string(samples.get(), "resolution", "second");
    cJSON* series = cJSON_AddArrayToObject(samples.get(), "series");
    Json changed(checked(cJSON_CreateArray()));
    int64_t newest = since_s_;
    std::string header;
    {
      store::JobSnapshot snap = db_.load_job(key_);
      auto query = [&](const std::string& node, uint32_t series_id) {
        store::SeriesQuery q;
        q.job_id = key_;
        q.node = node;
        q.series_id = series_id;
        q.from_s = since_s_;  // the last point sent may have changed since: send it again
        q.resolution = Resolution::Second;
        Points p = to_points(db_.query_series(q).buckets);
        if (!p.empty()) newest = std::max(newest, p.back().t);
        return p;
      };
      Points total;
      for (const auto& n : nodes) total = add(total, query(n.node, 0));
      if (!total.empty()) append(series, series_object("total", "job total", total, Metric::All));
      for (const auto& p : snap.processes) {
        const std::string key = process_key(p.node, p.series_id);
        const auto state = std::make_tuple(p.cpu_ns, p.rss, p.max_rss, p.read_bytes, p.write_bytes, p.end_ms,
                                           p.max_threads, p.task, p.gpu_memory_max, p.gpu_sm_ns);
        if (auto [it, fresh] = sent_.try_emplace(key, state); fresh || it->second != state) {
          it->second = state;
          append(changed.get(), process_object(p));
        }
        if (p.end_ms && p.end_ms / 1000 < since_s_) continue;
        Points pts = query(p.node, p.series_id);
        if (!pts.empty()) append(series, series_object(key, label_of(p), pts, Metric::All, true, &total));
      }
      header = Api::job_document(std::move(snap), false);
    }
    since_s_ = newest;
    add(samples.get(), "processes", changed.release());
    return sse_event("job", header) + sse_event("samples", json::print(samples.get()));
  }

  store::Store& db_;
  uint64_t key_;
  std::string container_;
  int64_t since_s_;
  int64_t expires_at_;
  std::shared_ptr<std::atomic<unsigned>> counter_;
  int64_t seen_sample_ms_ = -1;
  // What was last sent of each process (cpu, rss, max rss, read, write, end, threads, task, GPU memory and SM
  // time): only changes are sent again.
  std::map<std::string, std::tuple<uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, int64_t, uint32_t, uint32_t,
                                   uint64_t, uint64_t>>
      sent_;
  int idle_polls_ = 0;
  bool greeted_ = false, end_sent_ = false, ended_ = false;
};

}  // namespace

std::string Api::job_document(store::JobSnapshot snap, bool with_processes) {
  // Exactly the document bcacct --json prints.
  json::Ptr doc = job::job_document(job::JobData{std::move(snap.nodes), std::move(snap.processes)}, with_processes);
  return json::print(doc.get(), with_processes) + "\n";
}

Response Api::processes(const Request& req) {
  return with_job(req, [](const Target& target, store::JobSnapshot& snap) {
    Json root = container_object(target.container);
    cJSON* list = cJSON_AddArrayToObject(root.get(), "processes");
    for (const auto& p : job::sorted_processes(std::move(snap.processes)))
      cJSON_AddItemToArray(list, process_object(p));
    return Response::json(200, root.get());
  });
}

Response Api::files(const Request& req) {
  return with_job(req, [this](const Target& target, store::JobSnapshot& snap) {
    const ProcessIndex index = index_processes(snap.processes);
    Json root = container_object(target.container);
    cJSON* list = cJSON_AddArrayToObject(root.get(), "files");
    const std::vector<store::FileRecord> records = store_->files(target.key);
    for (const auto& f : records) {
      cJSON* o = cJSON_CreateObject();
      add_owner(o, index, f.node, f.pid, f.start_ticks);
      add_string(o, "path", f.path);
      add_string(o, "flags", store::file_flags_text(f.flags));
      cJSON_AddNumberToObject(o, "opens", static_cast<double>(f.opens));
      cJSON_AddNumberToObject(o, "failed", static_cast<double>(f.failed));
      cJSON_AddNumberToObject(o, "read_bytes", static_cast<double>(f.read_bytes));
      cJSON_AddNumberToObject(o, "write_bytes", static_cast<double>(f.write_bytes));
      add_time(o, "first_open", f.first_ms);
      cJSON_AddItemToArray(list, o);
    }
    return Response::json(200, root.get());
  });
}

Response Api::connections(const Request& req) {
  return with_job(req, [this](const Target& target, store::JobSnapshot& snap) {
    const ProcessIndex index = index_processes(snap.processes);
    Json root = container_object(target.container);
    cJSON* list = cJSON_AddArrayToObject(root.get(), "connections");
    const std::vector<store::ConnectionRecord> records = store_->connections(target.key);
    for (const auto& c : records) {
      cJSON* o = cJSON_CreateObject();
      add_owner(o, index, c.node, c.pid, c.start_ticks);
      add_string(o, "address", c.address);
      cJSON_AddNumberToObject(o, "port", c.port);
      add_string(o, "protocol", c.protocol);
      cJSON_AddNumberToObject(o, "count", static_cast<double>(c.count));
      cJSON_AddNumberToObject(o, "failed", static_cast<double>(c.failed));
      add_time(o, "first_connect", c.first_ms);
      cJSON_AddItemToArray(list, o);
    }
    return Response::json(200, root.get());
  });
}

Response Api::tree(const Request& req) {
  return with_job(req, [](const Target& target, store::JobSnapshot& snap) { return tree_view(target, snap); });
}

Response Api::tree_view(const Target& target, store::JobSnapshot& snap) {
  const auto procs = job::sorted_processes(std::move(snap.processes));
  // A process's parent is the one with its ppid on its node (identity within a job is node, pid, start;
  // with a reused pid the latest start before the child wins, as the kernel would have it).
  std::map<std::pair<std::string, uint32_t>, std::vector<size_t>> by_pid;
  for (size_t i = 0; i < procs.size(); ++i) by_pid[{procs[i].node, procs[i].pid}].push_back(i);
  std::vector<std::vector<size_t>> children(procs.size());
  std::vector<size_t> roots;
  for (size_t i = 0; i < procs.size(); ++i) {
    const auto& p = procs[i];
    std::optional<size_t> parent;
    if (auto it = by_pid.find({p.node, p.ppid}); it != by_pid.end() && p.ppid != p.pid)
      for (size_t c : it->second)
        if (c != i && procs[c].start_ms <= p.start_ms) parent = c;
    if (parent) children[*parent].push_back(i);
    else roots.push_back(i);
  }
  // Depth-first, iteratively: a chain of thousands of processes must not exhaust the stack.
  Json root = container_object(target.container);
  cJSON* list = cJSON_AddArrayToObject(root.get(), "processes");
  std::vector<bool> done(procs.size(), false);
  struct Frame {
    size_t index;
    int parent_row;
    int depth;
  };
  std::vector<Frame> stack;
  for (auto r = roots.rbegin(); r != roots.rend(); ++r) stack.push_back({*r, -1, 0});
  int row = 0;
  while (!stack.empty()) {
    Frame f = stack.back();
    stack.pop_back();
    if (done[f.index]) continue;  // a cycle of reused pids
    done[f.index] = true;
    cJSON* o = process_object(procs[f.index]);
    cJSON_AddNumberToObject(o, "depth", f.depth);
    cJSON_AddNumberToObject(o, "parent", f.parent_row);
    cJSON_AddNumberToObject(o, "children", static_cast<double>(children[f.index].size()));
    cJSON_AddItemToArray(list, o);
    for (auto c = children[f.index].rbegin(); c != children[f.index].rend(); ++c)
      stack.push_back({*c, row, f.depth + 1});
    ++row;
  }
  return Response::json(200, root.get());
}

Response Api::series(const Request& req) {
  // The processes are read only when the request names one or asks for the top N.
  return with_job(
      req, [&](const Target& target, store::JobSnapshot& snap) { return series_view(req, target, snap); }, false);
}

Response Api::series_view(const Request& req, const Target& target, store::JobSnapshot& snap) {
  auto metric = parse_metric(req.arg("metric").value_or(""));
  if (!metric) return Response::error(400, "metric must be cpu, rss, io, threads, gpu or all");
  std::optional<Resolution> wanted;
  if (!parse_resolution(req.arg("resolution").value_or(""), wanted))
    return Response::error(400, "resolution must be auto, s, m, h or d");
  const auto end = job_end_ms(snap.nodes);
  std::optional<int64_t> from_arg, to_arg, top_arg;
  if (!req.int_arg("from", -kMaxEpochS, kMaxEpochS, from_arg) || !req.int_arg("to", -kMaxEpochS, kMaxEpochS, to_arg))
    return Response::error(400, "from and to are epoch seconds");
  const int64_t from = from_arg.value_or(job_start_s(snap)), to = to_arg.value_or((end ? *end : epoch_ms()) / 1000 + 1);
  if (from > to) return Response::error(400, "from is after to");
  if (!req.int_arg("top", 0, 100, top_arg)) return Response::error(400, "top takes 0 to 100");
  const int64_t top = top_arg.value_or(-1);
  const std::string group = req.arg("group").value_or("process");
  if (group != "process" && group != "task") return Response::error(400, "group must be process or task");
  const bool by_task = group == "task";
  std::optional<std::pair<std::string, uint32_t>> one;  // node, series
  if (req.arg("process") || top > 0) snap.processes = store_->processes(target.key);
  if (req.arg("process")) {
    std::optional<int64_t> process;
    if (!req.int_arg("process", 1, UINT32_MAX, process)) return Response::error(400, "process takes a series id");
    const int64_t id = *process;
    std::string node = req.arg("node").value_or("");
    if (node.empty()) {
      if (snap.nodes.size() != 1) return Response::error(400, "this job ran on several nodes: give node=");
      node = snap.nodes.front().node;
    }
    auto it = std::find_if(snap.processes.begin(), snap.processes.end(),
                           [&](const ProcessRecord& p) { return p.node == node && p.series_id == id; });
    if (it == snap.processes.end()) return Response::error(404, "no process " + node + ":" + std::to_string(id));
    one = {node, static_cast<uint32_t>(id)};
  }
  if (one && top >= 0) return Response::error(400, "give process= or top=, not both");
  if (one && by_task) return Response::error(400, "give process= or group=task, not both");
  if (*metric == Metric::Gpu && (one || by_task))
    return Response::error(400, "metric=gpu takes top=, not process= or group=");

  // One resolution for every series so their buckets line up: the one asked for, else the automatic one.
  const Resolution res = wanted ? *wanted : automatic_resolution(*store_, target.key, snap, from, to);
  auto buckets = [&](const std::string& node, uint32_t series_id) {
    store::SeriesQuery q;
    q.job_id = target.key;
    q.node = node;
    q.series_id = series_id;
    q.from_s = from;
    q.to_s = to;
    q.resolution = res;
    return store_->query_series(q).buckets;
  };
  auto query = [&](const std::string& node, uint32_t series_id) { return to_points(buckets(node, series_id)); };
  Json answer = container_object(target.container);
  add_string(answer.get(), "resolution", store::resolution_name(res));
  add(answer.get(), "width_s", json::integer(store::bucket_seconds(res)));
  add(answer.get(), "from", json::integer(from));
  add(answer.get(), "to", json::integer(to));
  cJSON* list = cJSON_AddArrayToObject(answer.get(), "series");
  if (*metric == Metric::Gpu) {
    if (snap.processes.empty()) snap.processes = store_->processes(target.key);
    append_gpu_series(list, snap, static_cast<size_t>(top >= 0 ? top : 8), buckets);
    return Response::json(200, answer.get());
  }
  if (one) {
    auto it = std::find_if(snap.processes.begin(), snap.processes.end(),
                           [&](const ProcessRecord& p) { return p.node == one->first && p.series_id == one->second; });
    append(list,
           series_object(process_key(one->first, one->second), label_of(*it), query(one->first, one->second), *metric));
    return Response::json(200, answer.get());
  }
  Points total;
  for (const auto& n : snap.nodes) total = add(total, query(n.node, 0));
  append(list, series_object("total", "job total", total, *metric));
  auto weight = [&](const ProcessRecord& p) -> double {
    switch (*metric) {
      case Metric::Rss: return static_cast<double>(p.max_rss);
      case Metric::Io: return static_cast<double>(p.read_bytes + p.write_bytes);
      case Metric::Threads: return static_cast<double>(p.max_threads);
      default: return static_cast<double>(p.cpu_ns);
    }
  };
  if (top > 0 && by_task) {
    // The heaviest ranks, each the sum of its processes, then the rest of the job: processes outside the
    // ranks and the ranks not shown. A rank is a task of a step that ran several (the batch script is task 0
    // of its step, not a rank). Only the shown ranks' processes are read.
    using Rank = std::pair<uint32_t, uint32_t>;  // step, task
    const auto step_tasks = job::tasks_per_step(snap.processes);
    std::map<Rank, std::pair<double, std::vector<const ProcessRecord*>>> ranks;
    for (const auto& p : snap.processes) {
      if (p.task == store::kTaskUnknown || step_tasks.at(p.step).size() < 2) continue;
      auto& [rank_weight, members] = ranks[{p.step, p.task}];
      rank_weight += weight(p);
      members.push_back(&p);
    }
    std::set<uint32_t> steps;
    std::vector<Rank> ranked;
    for (const auto& [rank, _] : ranks) {
      ranked.push_back(rank);
      steps.insert(rank.first);
    }
    const size_t n = std::min(ranked.size(), static_cast<size_t>(top));
    std::partial_sort(ranked.begin(), ranked.begin() + static_cast<long>(n), ranked.end(),
                      [&](const Rank& a, const Rank& b) {
                        return ranks[a].first != ranks[b].first ? ranks[a].first > ranks[b].first : a < b;
                      });
    std::sort(ranked.begin(), ranked.begin() + static_cast<long>(n));  // shown in step and rank order
    Points shown;
    for (size_t i = 0; i < n; ++i) {
      Points pts;
      for (const ProcessRecord* p : ranks[ranked[i]].second) pts = add(pts, query(p->node, p->series_id));
      shown = add(shown, pts);
      const std::string step = store::step_name(ranked[i].first), task = std::to_string(ranked[i].second);
      // "rank 3" where one step ran ranks, "step 1 rank 3" where several did.
      append(list,
             series_object("task:" + step + ":" + task, (steps.size() > 1 ? "step " + step + " " : "") + "rank " + task,
                           pts, *metric, false, &total));
    }
    append(list, series_object("other", n ? "other" : "no Slurm task recorded", rest_of(total, shown), *metric, false,
                               &total));
  } else if (top > 0) {
    // The heaviest processes by the metric's total, then the rest of the job as one series.
    std::vector<const ProcessRecord*> ranked;
    for (const auto& p : snap.processes) ranked.push_back(&p);
    const size_t n = std::min(ranked.size(), static_cast<size_t>(top));
    std::partial_sort(ranked.begin(), ranked.begin() + static_cast<long>(n), ranked.end(),
                      [&](const ProcessRecord* a, const ProcessRecord* b) { return weight(*a) > weight(*b); });
    Points shown;
    for (size_t i = 0; i < n; ++i) {
      Points pts = query(ranked[i]->node, ranked[i]->series_id);
      shown = add(shown, pts);
      append(list, series_object(process_key(ranked[i]->node, ranked[i]->series_id), label_of(*ranked[i]), pts, *metric,
                                 true, &total));
    }
    if (ranked.size() > n) append(list, series_object("other", "other", rest_of(total, shown), *metric, false, &total));
  }
  return Response::json(200, answer.get());
}

Response Api::notes(const Request& req) {
  return with_job(req, [&](const Target& target, store::JobSnapshot& snap) {
    // The job total over its whole run, summed over nodes, at the page's automatic resolution for it.
    job::TotalSeries series;
    const auto end = job_end_ms(snap.nodes);
    store::SeriesQuery q;
    q.job_id = target.key;
    q.from_s = job_start_s(snap);
    q.to_s = (end ? *end : epoch_ms()) / 1000 + 1;
    q.resolution = automatic_resolution(*store_, target.key, snap, q.from_s, q.to_s);
    for (const auto& n : snap.nodes) {
      q.node = n.node;
      series.add_node(store_->query_series(q).buckets);
    }
    job::JobData data{std::move(snap.nodes), std::move(snap.processes)};
    const job::JobTotals totals = job::compute_totals(data);
    Json root = container_object(target.container);
    add(root.get(), "notes", job::notes_json(job::job_notes(data, totals, series, config_.notes, epoch_ms())));
    return Response::json(200, root.get());
  });
}

Response Api::stream(const Request& req) {
  // Not through with_job: a stream is never a cached answer, and it needs its caller's expiry.
  Target target;
  store::JobSnapshot snapshot;
  Response refusal;
  Caller caller;
  if (!open_job(req, target, snapshot, refusal, true, &caller)) return refusal;
  return stream_view(req, target, snapshot, caller.expires_at);
}

Response Api::stream_view(const Request& req, const Target& target, store::JobSnapshot& snap, int64_t expires_at) {
  std::optional<int64_t> since_arg;
  if (!req.int_arg("since", -kMaxEpochS, kMaxEpochS, since_arg)) return Response::error(400, "since is epoch seconds");
  int64_t since = since_arg.value_or(0);
  if (!since_arg) {
    for (const auto& n : snap.nodes) since = std::max(since, n.last_sample_ms / 1000);
  }
  if (++*live_streams_ > config_.max_streams) {
    --*live_streams_;
    ++metrics_.streams_refused;
    Response r =
        Response::error(503, "too many live streams (max_streams=" + std::to_string(config_.max_streams) + ")");
    r.headers.emplace_back("Retry-After", "10");
    return r;
  }
  Response r;
  r.content_type = "text/event-stream";
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.stream = std::make_shared<JobStream>(*store_, target.key, target.container, since, expires_at, live_streams_);
  return r;
}

}  // namespace bc::bcd
