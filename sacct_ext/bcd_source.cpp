// The central daemon as a JobSource: libcurl GETs with a fresh munge credential in X-Munge-Credential
// (bcd relies on munge's replay detection, so a credential serves one request).
//
// Endpoints used:
//   GET /api/v1/jobs?user=&state=running|completed&from=&to=   -> {"jobs": [{"id": N, ...}]}
//   GET /api/v1/jobs/ID                                          -> the job as bcacct --json prints it
//   GET /api/v1/jobs/ID/series?metric=all&from=&to=[&resolution=]
//       -> {"resolution": "minute", "series": [{"key": "total", "t": [...], "samples": [...],
//           "cpu_percent_mean": [...], "rss_max_bytes": [...], "read_bytes": [...], "write_bytes": [...]}]}
//          (the nodes summed); an older bcd without it answers 404 -> Unsupported.
#include <cJSON.h>
#include <curl/curl.h>

#include <cmath>
#include <ctime>
#include <memory>
#include <mutex>

#include "common/auth.hpp"
#include "common/container_key.hpp"
#include "common/curl.hpp"
#include "common/json.hpp"
#include "sacct_ext/job_source.hpp"
#include "sacct_ext/selection.hpp"

namespace bc::report {
namespace {

using Kind = SourceError::Kind;

using Json = json::Ptr;

[[noreturn]] void malformed(const std::string& what) { throw SourceError(Kind::Protocol, "bcd sent " + what); }

const cJSON* member(const cJSON* object, const char* name) { return cJSON_GetObjectItemCaseSensitive(object, name); }

double number_of(const cJSON* object, const char* name, bool required = true) {
  const cJSON* item = member(object, name);
  if (cJSON_IsNumber(item)) return item->valuedouble;
  if (required) malformed(std::string("no number '") + name + "'");
  return 0;
}
uint64_t count_of(const cJSON* object, const char* name, bool required = true) {
  const double v = number_of(object, name, required);
  return v > 0 ? static_cast<uint64_t>(std::llround(v)) : 0;
}
uint64_t ns_of(const cJSON* object, const char* name) {
  const double v = number_of(object, name);
  return v > 0 ? static_cast<uint64_t>(std::llround(v * 1e9)) : 0;
}
// A JSON number within [min, max], else malformed: a double outside an integer type's range cannot be cast
// to it (undefined behaviour).
double within(double v, double min, double max, const char* what) {
  if (!(v >= min && v <= max)) malformed(std::string("a number out of range in '") + what + "'");
  return v;
}
// Epoch seconds: bcd's own bound for them, what milliseconds still hold.
int64_t epoch_seconds(double v, const char* what) {
  constexpr double kMaxSeconds = static_cast<double>(INT64_MAX / 1000);
  return static_cast<int64_t>(within(v, -kMaxSeconds, kMaxSeconds, what));
}
std::string string_of(const cJSON* object, const char* name, bool required = true) {
  const cJSON* item = member(object, name);
  if (cJSON_IsString(item)) return item->valuestring;
  if (required) malformed(std::string("no string '") + name + "'");
  return {};
}
std::vector<std::string> strings_of(const cJSON* object, const char* name) {
  const cJSON* array = member(object, name);
  if (!cJSON_IsArray(array)) malformed(std::string("no array '") + name + "'");
  std::vector<std::string> out;
  const cJSON* item = nullptr;
  cJSON_ArrayForEach(item, array) {
    if (!cJSON_IsString(item)) malformed(std::string("a non-string in '") + name + "'");
    out.emplace_back(item->valuestring);
  }
  return out;
}

// "2026-11-24T20:41:07.123Z" -> epoch ms; null -> 0.
int64_t time_of(const cJSON* object, const char* name) {
  const cJSON* item = member(object, name);
  if (cJSON_IsNull(item)) return 0;
  if (!cJSON_IsString(item)) malformed(std::string("no time '") + name + "'");
  struct tm tm {};
  int ms = 0;
  if (std::sscanf(item->valuestring, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &ms) != 7)
    malformed(std::string("a bad time in '") + name + "': " + item->valuestring);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

uint32_t step_of(const std::string& name) {
  if (name == "?") return store::kStepUnknown;
  auto step = bcacct::parse_step(name);
  if (!step) malformed("an unknown step '" + name + "'");
  return *step;
}

Json parse_object(std::string_view text) {
  Json root(cJSON_ParseWithLength(text.data(), text.size()));
  if (!cJSON_IsObject(root.get())) malformed("a body that is not a JSON object");
  return root;
}

// ---- HTTP ----

std::string url_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// The "files" and "connections" arrays of bcd's job document or of its views of them.
std::vector<store::FileRecord> files_from_json(const cJSON* list, uint64_t id) {
  std::vector<store::FileRecord> files;
  const cJSON* f = nullptr;
  cJSON_ArrayForEach(f, list) {
    store::FileRecord r;
    r.job_id = id;
    r.node = string_of(f, "node");
    r.pid = static_cast<uint32_t>(count_of(f, "pid"));
    r.path = string_of(f, "path");
    r.flags = store::file_flags_from_text(string_of(f, "flags"));
    r.first_ms = time_of(f, "first_open");
    r.opens = count_of(f, "opens");
    r.failed = count_of(f, "failed");
    r.read_bytes = count_of(f, "read_bytes");
    r.write_bytes = count_of(f, "write_bytes");
    files.push_back(std::move(r));
  }
  return files;
}

std::vector<store::ConnectionRecord> connections_from_json(const cJSON* list, uint64_t id) {
  std::vector<store::ConnectionRecord> connections;
  const cJSON* c = nullptr;
  cJSON_ArrayForEach(c, list) {
    store::ConnectionRecord r;
    r.job_id = id;
    r.node = string_of(c, "node");
    r.pid = static_cast<uint32_t>(count_of(c, "pid"));
    r.address = string_of(c, "address");
    r.port = static_cast<uint16_t>(count_of(c, "port"));
    r.protocol = string_of(c, "protocol");
    r.first_ms = time_of(c, "first_connect");
    r.count = count_of(c, "count");
    r.failed = count_of(c, "failed");
    connections.push_back(std::move(r));
  }
  return connections;
}

// bcd names a job by its number and a container by its short id (GET /api/v1/jobs/0c0ffee0c0de).
std::string job_path(uint64_t job_id) {
  const auto short_id = container::short_id_from_key(job_id);
  return "/api/v1/jobs/" + (short_id ? *short_id : std::to_string(job_id));
}

class BcdSource final : public JobSource {
 public:
  explicit BcdSource(BcdOptions options) : options_(std::move(options)) {
    while (!options_.url.empty() && options_.url.back() == '/') options_.url.pop_back();
  }

  std::optional<JobData> load(uint64_t job_id) override {
    const auto [status, body] = get(job_path(job_id));
    if (status == 404) return std::nullopt;
    check(status, body);
    JobData data = job_data_from_json(body);
    // The job document carries the processes; files and connections have views of their own.
    if (options_.with_events) {
      for (const std::string view : {"files", "connections"}) {
        const auto [view_status, view_body] = get(job_path(job_id) + "/" + view);
        check(view_status, view_body);
        if (view == "files") data.files = files_view_from_json(view_body, job_id);
        else data.connections = connections_view_from_json(view_body, job_id);
      }
    }
    // JSON numbers are doubles: a container key (above 2^53) comes back rounded. The key asked for is exact.
    for (auto& r : data.nodes) r.job_id = job_id;
    for (auto& p : data.processes) p.job_id = job_id;
    for (auto& f : data.files) f.job_id = job_id;
    for (auto& c : data.connections) c.job_id = job_id;
    return data;
  }

  std::vector<uint64_t> list(const ListQuery& query) override {
    std::string path = "/api/v1/jobs";
    std::string sep = "?";
    const auto arg = [&](const std::string& name, const std::string& value) {
      path += sep + name + "=" + url_escape(value);
      sep = "&";
    };
    if (!query.user.empty()) arg("user", query.user);
    if (query.running) arg("state", *query.running ? "running" : "completed");
    if (query.from_s) arg("from", std::to_string(*query.from_s));
    if (query.to_s) arg("to", std::to_string(*query.to_s));
    if (query.array_job) arg("array", std::to_string(*query.array_job));
    if (query.array_task) arg("task", std::to_string(*query.array_task));
    const auto [status, body] = get(path);
    check(status, body);
    return job_list_from_json(body);
  }

  // bcd sums the nodes' job totals; its buckets are columns (t, samples, cpu_percent_mean, rss_max_bytes,
  // read_bytes, write_bytes), as the web page draws them.
  std::vector<LabelledSeries> job_series(uint64_t job_id, const std::vector<std::string>&,
                                         std::optional<store::Resolution> resolution, int64_t from_s,
                                         int64_t to_s) override {
    std::string path =
        job_path(job_id) + "/series?metric=all&from=" + std::to_string(from_s) + "&to=" + std::to_string(to_s);
    if (resolution) path += std::string("&resolution=") + store::resolution_name(*resolution);
    const auto [status, body] = get(path);
    if (status == 404)
      throw SourceError(Kind::Unsupported,
                        "bcd at " + options_.url + " does not serve series (" + error_text(body) + ")");
    check(status, body);
    return {{"all nodes", series_from_json(body)}};
  }

  std::string describe() const override { return "bcd " + options_.url; }

 private:
  static std::string error_text(const std::string& body) {
    Json root(cJSON_ParseWithLength(body.data(), body.size()));
    const cJSON* error = root ? member(root.get(), "error") : nullptr;
    if (cJSON_IsString(error)) return error->valuestring;
    return body.size() > 200 ? body.substr(0, 200) + "..." : body;
  }

  void check(long status, const std::string& body) const {
    if (status == 200) return;
    if (status == 401 || status == 403)
      throw SourceError(Kind::Permission, "bcd refused (" + std::to_string(status) + "): " + error_text(body));
    throw SourceError(Kind::Protocol,
                      "bcd at " + options_.url + " answered " + std::to_string(status) + ": " + error_text(body));
  }

  std::pair<long, std::string> get(const std::string& path) {
    std::string munge_error;
    const auto credential = auth::munge_encode("", options_.munge_socket, munge_error);
    if (!credential) throw SourceError(Kind::Unreachable, "cannot get a munge credential for bcd: " + munge_error);

    curl::Easy handle(curl::global_init() ? curl_easy_init() : nullptr);
    if (!handle) throw SourceError(Kind::Unreachable, "cannot start libcurl");
    curl::List headers;
    curl::append(headers, "X-Munge-Credential: " + *credential);
    curl::append(headers, "Accept: application/json");
    std::string body;
    char error[CURL_ERROR_SIZE] = "";
    const std::string url = options_.url + path;
    curl_easy_setopt(handle.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(handle.get(), CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(handle.get(), CURLOPT_WRITEFUNCTION, &curl::append_to_string);
    curl_easy_setopt(handle.get(), CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(handle.get(), CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(handle.get(), CURLOPT_CONNECTTIMEOUT_MS, options_.connect_timeout_ms);
    curl_easy_setopt(handle.get(), CURLOPT_TIMEOUT_MS, options_.timeout_ms);
    curl_easy_setopt(handle.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(handle.get(), CURLOPT_PROTOCOLS_STR, "http,https");
    if (!options_.ca_file.empty()) {
      curl_easy_setopt(handle.get(), CURLOPT_CAINFO, options_.ca_file.c_str());
      curl_easy_setopt(handle.get(), CURLOPT_CAPATH, nullptr);
    }
    const CURLcode rc = curl_easy_perform(handle.get());
    const std::string reason = *error ? std::string(error) : curl_easy_strerror(rc);
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_ISSUER_ERROR)
      throw SourceError(Kind::Protocol, "bcd at " + options_.url + " failed TLS verification: " + reason +
                                            (options_.ca_file.empty() ? "" : " (ca_file " + options_.ca_file + ")"));
    if (rc != CURLE_OK) throw SourceError(Kind::Unreachable, "bcd at " + options_.url + " unreachable: " + reason);
    long status = 0;
    curl_easy_getinfo(handle.get(), CURLINFO_RESPONSE_CODE, &status);
    return {status, body};
  }

  BcdOptions options_;
};

}  // namespace

std::unique_ptr<JobSource> open_bcd_source(const BcdOptions& options) { return std::make_unique<BcdSource>(options); }

namespace {

uint32_t u32_of(const cJSON* object, const char* name) {
  return static_cast<uint32_t>(within(number_of(object, name), 0, UINT32_MAX, name));
}

// A counter that is null where its cgroup controller did not exist; present tells which.
uint64_t counter_of(const cJSON* object, const char* name, bool& present) {
  present = !cJSON_IsNull(member(object, name));
  return present ? count_of(object, name) : 0;
}

// One of the document's "node_records", back into the record bcd read from its store.
store::JobRecord node_record_from_json(const cJSON* n, uint64_t id) {
  store::JobRecord r;
  r.job_id = id;
  r.node = string_of(n, "node");
  r.uid = u32_of(n, "uid");
  r.user = string_of(n, "user");
  for (const std::string& s : strings_of(n, "steps")) r.steps.push_back(step_of(s));
  r.start_ms = time_of(n, "start");
  r.end_ms = time_of(n, "end");
  r.last_sample_ms = time_of(n, "last_sample");
  r.cgroup_version = u32_of(n, "cgroup_version");
  r.has_cgroup_cpu = !cJSON_IsNull(member(n, "cgroup_cpu_seconds"));
  if (r.has_cgroup_cpu) r.cgroup_cpu_ns = ns_of(n, "cgroup_cpu_seconds");
  r.cgroup_mem_current = counter_of(n, "cgroup_mem_current_bytes", r.has_cgroup_memory);
  r.cgroup_mem_peak = counter_of(n, "cgroup_mem_peak_bytes", r.has_cgroup_memory);
  r.cgroup_read_bytes = counter_of(n, "cgroup_read_bytes", r.has_cgroup_io);
  r.cgroup_write_bytes = counter_of(n, "cgroup_write_bytes", r.has_cgroup_io);
  r.max_rss_sum = count_of(n, "max_rss_sum_bytes");
  r.sample_count = count_of(n, "samples");
  r.monitor_cpu_ns = ns_of(n, "monitor_cpu_seconds");
  r.monitor_max_rss = count_of(n, "monitor_max_rss_bytes");
  r.events_unavailable = string_of(n, "events_unavailable");
  r.lost_events = count_of(n, "lost_events");
  const cJSON* lost = member(n, "lost_events_by_cause");
  if (!cJSON_IsObject(lost)) malformed("a node record without 'lost_events_by_cause'");
  r.lost.ring = count_of(lost, "ring");
  r.lost.files = count_of(lost, "files");
  r.lost.connections = count_of(lost, "connections");
  r.lost.tracked = count_of(lost, "tracked");
  r.lost.unreadable = count_of(lost, "unreadable");
  r.lost.monitor = count_of(lost, "monitor");
  r.lost.late = count_of(lost, "late");
  r.job_name = string_of(n, "job_name");
  r.alloc_cpus = u32_of(n, "alloc_cpus");
  r.mem_limit_bytes = count_of(n, "mem_limit_bytes");
  r.container_id = string_of(n, "container_id");
  r.container_name = string_of(n, "container_name");
  r.container_image = string_of(n, "container_image");
  r.array_job_id = u32_of(n, "array_job_id");
  r.array_task_id = u32_of(n, "array_task_id");
  r.unshipped_batches = count_of(n, "unshipped_batches");
  r.unshipped_samples = count_of(n, "unshipped_samples");
  r.job_nodes = string_of(n, "job_nodes", false);  // bcd before the job node list
  // Absent from the answer of a bcd before GPU figures.
  if (const cJSON* gpus = member(n, "gpus"); cJSON_IsArray(gpus)) {
    const cJSON* g = nullptr;
    cJSON_ArrayForEach(g, gpus) {
      store::JobGpu gpu;
      gpu.uuid = string_of(g, "uuid");
      if (const cJSON* parent = member(g, "parent_uuid"); cJSON_IsString(parent)) gpu.parent_uuid = parent->valuestring;
      if (const cJSON* minor = member(g, "minor"); cJSON_IsNumber(minor))
        gpu.minor = static_cast<uint32_t>(within(number_of(g, "minor", false), 0, UINT32_MAX - 1, "minor"));
      gpu.allocated = cJSON_IsTrue(member(g, "allocated"));
      gpu.memory_total = count_of(g, "memory_total_bytes");
      gpu.memory_max = count_of(g, "memory_max_bytes");
      gpu.util_ns = count_of(g, "util_ns");
      gpu.busy_ns = count_of(g, "busy_ns");
      gpu.power_ns = count_of(g, "power_ns");
      gpu.energy_mj = count_of(g, "energy_mj");
      r.gpus.push_back(std::move(gpu));
    }
    r.gpus_lost = count_of(n, "gpus_lost");
  }
  return r;
}

}  // namespace

JobData job_data_from_json(std::string_view json) {
  Json root = parse_object(json);
  const cJSON* job = member(root.get(), "job");
  const cJSON* records = member(root.get(), "node_records");
  const cJSON* processes = member(root.get(), "processes");
  if (!cJSON_IsObject(job) || !cJSON_IsArray(processes)) malformed("a job without 'job' and 'processes'");
  // bcd and bcacct come from one release; a bcd older than this bcacct sent only the job's totals.
  if (!cJSON_IsArray(records)) malformed("a job without 'node_records' (is bcd older than this bcacct?)");

  JobData data;
  const uint64_t id = count_of(job, "id");
  const cJSON* n = nullptr;
  cJSON_ArrayForEach(n, records) data.nodes.push_back(node_record_from_json(n, id));
  if (data.nodes.empty()) malformed("a job without node records");

  const cJSON* p = nullptr;
  cJSON_ArrayForEach(p, processes) {
    store::ProcessRecord r;
    r.job_id = id;
    r.node = string_of(p, "node");
    r.pid = static_cast<uint32_t>(count_of(p, "pid"));
    r.ppid = static_cast<uint32_t>(count_of(p, "ppid"));
    r.step = step_of(string_of(p, "step"));
    r.command = string_of(p, "command");
    r.exe = string_of(p, "exe");
    r.argv = strings_of(p, "argv");
    r.start_ms = time_of(p, "start");
    r.end_ms = time_of(p, "end");
    r.cpu_ns = ns_of(p, "cpu_seconds");
    r.max_rss = count_of(p, "max_rss_bytes");
    r.read_bytes = count_of(p, "read_bytes");
    r.write_bytes = count_of(p, "write_bytes");
    // Both absent from an older bcd's answer.
    if (member(p, "max_threads")) r.max_threads = u32_of(p, "max_threads");
    if (member(p, "gpu_memory_max_bytes")) r.gpu_memory_max = count_of(p, "gpu_memory_max_bytes");
    if (member(p, "gpu_sm_seconds")) r.gpu_sm_ns = ns_of(p, "gpu_sm_seconds");
    if (const cJSON* task = member(p, "task"); cJSON_IsNumber(task))
      r.task = static_cast<uint32_t>(within(number_of(p, "task", false), 0, UINT32_MAX - 1, "task"));
    if (const cJSON* code = member(p, "exit_code"); cJSON_IsNumber(code)) {
      r.exited = true;
      r.exit_code = code->valueint;
      r.exit_signal = static_cast<int>(within(number_of(p, "exit_signal", false), 0, 127, "exit_signal"));
    }
    r.core_dumped = cJSON_IsTrue(member(p, "core_dumped"));
    r.argv_truncated = cJSON_IsTrue(member(p, "argv_truncated"));
    r.exact = cJSON_IsTrue(member(p, "exact"));
    data.processes.push_back(std::move(r));
  }
  data.files = files_from_json(member(root.get(), "files"), id);
  data.connections = connections_from_json(member(root.get(), "connections"), id);
  return data;
}

std::vector<uint64_t> job_list_from_json(std::string_view json) {
  Json root = parse_object(json);
  const cJSON* jobs = member(root.get(), "jobs");
  if (!cJSON_IsArray(jobs)) malformed("a job list without 'jobs'");
  std::vector<uint64_t> ids;
  const cJSON* job = nullptr;
  cJSON_ArrayForEach(job, jobs) {
    // A container's key is above 2^53, where a JSON number (a double) is rounded: its short id is exact.
    const std::string container = string_of(job, "container");
    const auto key = container.rfind("job_", 0) == 0 ? std::nullopt : container::container_key(container);
    ids.push_back(key ? *key : count_of(job, "id"));
  }
  return ids;
}

namespace {
// The list of a job's files or connections view: {"files": [...]}, {"connections": [...]}.
const cJSON* view_array(const cJSON* root, const char* view) {
  const cJSON* list = member(root, view);
  if (!cJSON_IsArray(list)) malformed(std::string("a job's ") + view + " view without '" + view + "'");
  return list;
}
}  // namespace

std::vector<store::FileRecord> files_view_from_json(std::string_view json, uint64_t job_id) {
  const Json root = parse_object(json);
  return files_from_json(view_array(root.get(), "files"), job_id);
}

std::vector<store::ConnectionRecord> connections_view_from_json(std::string_view json, uint64_t job_id) {
  const Json root = parse_object(json);
  return connections_from_json(view_array(root.get(), "connections"), job_id);
}

store::SeriesData series_from_json(std::string_view json) {
  Json root = parse_object(json);
  store::SeriesData data;
  const std::string res = string_of(root.get(), "resolution");
  bool known = false;
  for (auto r : {store::Resolution::Second, store::Resolution::Minute, store::Resolution::Hour, store::Resolution::Day})
    if (res == store::resolution_name(r)) {
      data.resolution = r;
      known = true;
    }
  if (!known) malformed("an unknown resolution '" + res + "'");
  const int64_t width = store::bucket_seconds(data.resolution);
  const cJSON* list = member(root.get(), "series");
  const cJSON* total = nullptr;
  const cJSON* item = nullptr;
  cJSON_ArrayForEach(item, list) {
    const cJSON* key = member(item, "key");
    if (cJSON_IsString(key) && std::string_view(key->valuestring) == "total") total = item;
  }
  if (!total) malformed("a series without the job total");
  const auto column = [&](const char* name) {
    std::vector<double> values;
    const cJSON* v = nullptr;
    cJSON_ArrayForEach(v, member(total, name)) values.push_back(cJSON_IsNumber(v) ? v->valuedouble : 0.0);
    return values;
  };
  const auto t = column("t"), samples = column("samples"), cpu = column("cpu_percent_mean"),
             rss = column("rss_max_bytes"), rd = column("read_bytes"), wr = column("write_bytes");
  for (const auto* c : {&samples, &cpu, &rss, &rd, &wr})
    if (c->size() != t.size()) malformed("series columns of different lengths");
  const auto whole = [](double v) { return v > 0 ? static_cast<uint64_t>(std::llround(v)) : uint64_t{0}; };
  for (size_t i = 0; i < t.size(); ++i) {
    store::Rollup r;
    r.start_s = epoch_seconds(t[i], "t");
    r.width_s = width;
    r.samples = whole(samples[i]);
    // The mean CPU % over the bucket, as CPU time over the bucket's wall time.
    r.wall_s = r.samples ? static_cast<uint64_t>(width) : 0;
    r.timed_cpu_ns = whole(cpu[i] * 1e7 * static_cast<double>(r.wall_s));
    r.cpu_ns = r.timed_cpu_ns;
    r.rss_max = whole(rss[i]);
    r.read_bytes = whole(rd[i]);
    r.write_bytes = whole(wr[i]);
    data.buckets.push_back(r);
  }
  return data;
}

}  // namespace bc::report
