#include "web/bcd/api.hpp"

#include <cJSON.h>
#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "accounting_db/job_model.hpp"
#include "accounting_db/store.hpp"
#include "common/auth.hpp"
#include "common/container_key.hpp"
#include "common/json.hpp"
#include "web/bcd/gzip.hpp"

namespace bc::bcd {
namespace {

using web::Request;
using web::Response;

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool in_group(const std::string& user, const std::string& group_name) {
  if (group_name.empty()) return false;
  group gr{};
  group* result = nullptr;
  char buf[16384];
  if (getgrnam_r(group_name.c_str(), &gr, buf, sizeof buf, &result) != 0 || !result) return false;
  for (char** m = gr.gr_mem; m && *m; ++m)
    if (user == *m) return true;
  passwd pw{};
  passwd* pres = nullptr;
  char pbuf[4096];
  return getpwnam_r(user.c_str(), &pw, pbuf, sizeof pbuf, &pres) == 0 && pres && pw.pw_gid == gr.gr_gid;
}

// OpenMetrics label values escape backslash, quote and newline.
std::string label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// The running jobs' GPUs: counters from the node records (their rate over a scrape interval is the
// utilisation and the power), and the memory in use at the GPU's last point. Each GPU only where NVML gave
// the figure.
class GpuFamilies {
 public:
  void add(store::Store& db, uint64_t job, const store::JobRecord& r) {
    const int64_t last_s = r.last_sample_ms / 1000;
    for (size_t i = 0; i < r.gpus.size(); ++i) {
      const store::JobGpu& g = r.gpus[i];
      const std::string labels = "{job=\"" + std::to_string(job) + "\",user=\"" + label(r.user) + "\",node=\"" +
                                 label(r.node) + "\",gpu=\"" + label(g.uuid) + "\"}";
      if (g.util_ns)
        busy_ += "bc_job_gpu_busy_seconds_total" + labels + " " + std::to_string(static_cast<double>(g.busy_ns) / 1e9) +
                 "\n";
      if (g.power_ns)
        energy_ += "bc_job_gpu_energy_joules_total" + labels + " " +
                   std::to_string(static_cast<double>(g.energy_mj) / 1000.0) + "\n";
      if (i >= store::kMaxGpuDevices) continue;
      const auto last = db.series(job, r.node, store::gpu_device_series(i), last_s, last_s);
      if (!last.empty())
        memory_ += "bc_job_gpu_memory_used_bytes" + labels + " " +
                   std::to_string(store::GpuSample::of(last.back()).memory) + "\n";
    }
  }
  std::string text() const {
    std::string out;
    if (!busy_.empty())
      out += "# TYPE bc_job_gpu_busy_seconds counter\n# UNIT bc_job_gpu_busy_seconds seconds\n" + busy_;
    if (!energy_.empty())
      out += "# TYPE bc_job_gpu_energy_joules counter\n# UNIT bc_job_gpu_energy_joules joules\n" + energy_;
    if (!memory_.empty())
      out += "# TYPE bc_job_gpu_memory_used_bytes gauge\n# UNIT bc_job_gpu_memory_used_bytes bytes\n" + memory_;
    return out;
  }

 private:
  std::string busy_, energy_, memory_;
};

// A cached view as an answer: its shared buffer, gzipped when the client takes that.
Response ready_made(const CachedView& view, bool gzip_ok) {
  Response r;
  r.headers.emplace_back("Vary", "Accept-Encoding");
  if (gzip_ok && view.gzipped) {
    r.shared_body = view.gzipped;
    r.headers.emplace_back("Content-Encoding", "gzip");
  } else {
    r.shared_body = view.body;
  }
  return r;
}

}  // namespace

Api::Api(Config config, std::unique_ptr<store::Store> store) : config_(std::move(config)), store_(std::move(store)) {}
Api::~Api() = default;

bool Api::is_admin(uint32_t uid, const std::string& user) const {
  if (uid == 0) return true;
  if (std::find(config_.admins.begin(), config_.admins.end(), user) != config_.admins.end()) return true;
  return in_group(user, config_.admin_group);
}

Api::Verdict Api::identify(const Request& req, const std::string& container, Caller& caller) const {
  if (config_.auth_disable) {
    caller.kind = Caller::Kind::Anonymous;
    caller.admin = true;
    return {};
  }
  if (auto cred = req.header("x-munge-credential")) {
    auth::MungeResult m = auth::munge_decode(*cred, config_.munge_socket);
    if (m.status != auth::MungeStatus::Ok) return {401, "munge credential refused: " + m.message};
    caller.kind = Caller::Kind::User;
    caller.uid = m.uid;
    caller.user = auth::user_name(m.uid);
    caller.admin = is_admin(m.uid, caller.user);
    return {};
  }
  std::optional<std::string> token = req.arg("token");
  if (auto authz = req.header("authorization"); authz && authz->rfind("Bearer ", 0) == 0) token = authz->substr(7);
  if (token) {
    auth::TokenCheck check = auth::verify_token(config_.auth_secret, *token, container, now_s());
    if (check.status != auth::TokenStatus::Valid)
      return {check.status == auth::TokenStatus::WrongContainer ? 403u : 401u, check.message};
    caller.expires_at = check.claims.expires_at;
    if (!check.claims.user.empty()) {
      // A user token: that user's rights, as with their munge credential.
      caller.kind = Caller::Kind::User;
      caller.user = check.claims.user;
      const passwd* pw = getpwnam(caller.user.c_str());
      caller.uid = pw ? pw->pw_uid : UINT32_MAX;
      caller.admin = is_admin(caller.uid, caller.user);
      return {};
    }
    if (container.empty()) return {403, "a job token opens one job's pages, not this endpoint"};
    caller.kind = Caller::Kind::Token;
    caller.token_container = check.claims.container;
    return {};
  }
  return {401, "authentication required: a munge credential (X-Munge-Credential) or a token"};
}

bool Api::may_see(const Caller& caller, const std::string& job_user, const std::string& container) const {
  switch (caller.kind) {
    case Caller::Kind::Anonymous: return caller.admin;
    case Caller::Kind::Token: return caller.token_container == container;
    case Caller::Kind::User: return caller.admin || caller.user == job_user;
  }
  return false;
}

std::vector<web::Route> Api::routes() {
  auto wrap = [this](Response (Api::*fn)(const Request&)) {
    return [this, fn](const Request& r) {
      ++metrics_.requests;
      Response resp = (this->*fn)(r);
      if (resp.status == 401) ++metrics_.unauthorized;
      if (resp.status == 403) ++metrics_.forbidden;
      if (resp.status == 404) ++metrics_.not_found;
      return resp;
    };
  };
  std::vector<web::Route> routes = {
      {"GET", "/api/v1/health", wrap(&Api::health)},
      {"GET", "/api/v1/jobs", wrap(&Api::list_jobs)},
      {"GET", "/api/v1/jobs/{}", wrap(&Api::job)},
      {"GET", "/api/v1/jobs/{}/processes", wrap(&Api::processes)},
      {"GET", "/api/v1/jobs/{}/tree", wrap(&Api::tree)},
      {"GET", "/api/v1/jobs/{}/files", wrap(&Api::files)},
      {"GET", "/api/v1/jobs/{}/connections", wrap(&Api::connections)},
      {"GET", "/api/v1/jobs/{}/series", wrap(&Api::series)},
      {"GET", "/api/v1/jobs/{}/notes", wrap(&Api::notes)},
      {"GET", "/api/v1/jobs/{}/stream", wrap(&Api::stream)},
      {"GET", "/metrics", wrap(&Api::metrics_text)},
  };
  routes.push_back({"GET", "/static/**", web::static_files(config_.static_dir, "/static/")});
  return routes;
}

Response Api::health(const Request&) {
  const json::Ptr health(json::checked(cJSON_CreateObject()));
  json::add(health.get(), "status", json::string("ok"));
  json::add(health.get(), "schema", json::count(store_->schema_version()));
  return Response::json(200, health.get());
}

std::optional<Api::Target> Api::parse_target(const std::string& text) {
  std::string digits = text.rfind("job_", 0) == 0 ? text.substr(4) : text;
  const bool decimal = !digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos;
  // Slurm job ids are 32-bit, so 12 or more digits can only be a container's hex id.
  if (decimal && digits.size() < container::kShortIdLength) return Target{std::stoull(digits), "job_" + digits};
  if (digits != text || text.size() < container::kShortIdLength || text.size() > 64) return std::nullopt;
  auto key = container::container_key(text);
  if (!key || text.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) return std::nullopt;
  return Target{*key, *container::short_id_from_key(*key)};
}

bool Api::open_job(const Request& req, Target& target, store::JobSnapshot& snapshot, Response& refusal, bool processes,
                   Caller* who) {
  auto parsed = parse_target(req.params.at(0));
  if (!parsed) {
    refusal =
        Response::error(400, "'" + req.params[0] + "' is not a job (job_42 or 42) or a container id (12 hex digits)");
    return false;
  }
  target = *parsed;
  Caller caller;
  Verdict v = identify(req, target.container, caller);
  if (v.status != 200) {
    refusal = Response::error(v.status, v.message);
    return false;
  }
  if (processes) snapshot = store_->load_job(target.key);
  else snapshot.nodes = store_->job_nodes(target.key);
  if (snapshot.nodes.empty()) {
    refusal = Response::error(404, target.container + " not found");
    return false;
  }
  // 403, not 404, so bcacct can tell "no permission" from "no such job", as sacct users expect.
  if (!may_see(caller, snapshot.nodes.front().user, target.container)) {
    refusal = Response::error(403, target.container + " belongs to another user");
    return false;
  }
  if (who) *who = std::move(caller);
  return true;
}

Response Api::with_job(const Request& req, const JobView& view, bool processes) {
  Target target;
  store::JobSnapshot snapshot;
  Response refusal;
  if (!open_job(req, target, snapshot, refusal, false)) return refusal;
  // The request without its credential, and what identifies this state of the job.
  std::string key = req.path;
  for (const auto& [name, value] : req.query)
    if (name != "token") key += "&" + name + "=" + value;
  key += records_state(snapshot.nodes);
  const bool gzip_ok = accepts_gzip(req.header("accept-encoding"));
  if (auto cached = cache_.get(key)) return ready_made(*cached, gzip_ok);
  if (processes) {
    snapshot = store_->load_job(target.key);  // header and processes from one transaction
    if (snapshot.nodes.empty()) return Response::error(404, target.container + " not found");
  }
  Response r = view(target, snapshot);
  if (r.status == 200 && !r.stream) return ready_made(*cache_.put(key, std::move(r.body)), gzip_ok);
  return r;
}

Response Api::job(const Request& req) {
  return with_job(req, [](const Target&, store::JobSnapshot& snap) {
    return Response::json(200, job_document(std::move(snap), true));
  });
}

Response Api::list_jobs(const Request& req) {
  Caller caller;
  Verdict v = identify(req, "", caller);
  if (v.status != 200) return Response::error(v.status, v.message);
  const std::string want_user = req.arg("user").value_or("");
  const std::string want_state = req.arg("state").value_or("");
  if (!want_state.empty() && want_state != "running" && want_state != "completed")
    return Response::error(400, "state must be running or completed");
  std::optional<int64_t> from_s, to_s;
  if (!req.int_arg("from", -kMaxEpochS, kMaxEpochS, from_s) || !req.int_arg("to", -kMaxEpochS, kMaxEpochS, to_s))
    return Response::error(400, "from and to are epoch seconds");
  const int64_t from = from_s ? *from_s * 1000 : 0, to = to_s ? *to_s * 1000 : INT64_MAX;
  // array=N: the tasks of Slurm job array N (sacct -j N); task=M with it: only its task M (sacct -j N_M).
  std::optional<uint32_t> array_job, array_task;
  for (auto [name, into] : {std::pair{"array", &array_job}, std::pair{"task", &array_task}}) {
    std::optional<int64_t> number;
    if (!req.int_arg(name, 0, UINT32_MAX, number)) return Response::error(400, std::string(name) + " must be a number");
    if (number) *into = static_cast<uint32_t>(*number);
  }
  if (array_task && !array_job) return Response::error(400, "task goes with array");
  // Each job's records, then its summary: computed from its processes only when a record changed since.
  std::vector<std::pair<uint64_t, std::vector<store::JobRecord>>> jobs;
  if (want_state == "running") {
    jobs = index_.running_jobs();
  } else {
    jobs = store_->all_job_records();
    std::vector<uint64_t> ids;
    for (const auto& job : jobs) ids.push_back(job.first);
    index_.keep_only(ids);
  }
  const json::Ptr answer(json::checked(cJSON_CreateObject()));
  cJSON* list = json::checked(cJSON_AddArrayToObject(answer.get(), "jobs"));
  size_t text_size = 16;
  for (const auto& [id, nodes] : jobs) {
    if (array_job && !store::is_array_task(nodes, *array_job, array_task)) continue;
    const std::shared_ptr<const JobSummary> t = index_.summary(id, nodes);
    if (!t) continue;
    if (!may_see(caller, t->user, "job_" + std::to_string(id))) continue;
    if (!want_user.empty() && t->user != want_user) continue;
    if (want_state == "running" && !t->running) continue;
    if (want_state == "completed" && t->running) continue;
    // Overlap with the window [from, to].
    if (t->start_ms && *t->start_ms > to) continue;
    if (t->end_ms && *t->end_ms < from) continue;
    json::append(list, json::raw(t->list_entry));
    text_size += t->list_entry.size() + 1;
  }
  return Response::json(200, answer.get(), false, text_size);
}

// Who may see the running jobs' series on /metrics: with metrics_jobs on, a scraper bearing metrics_token
// or an admin's munge credential. Anyone else gets bcd's own health; a wrong token is refused outright, so a
// misconfigured scraper notices.
Api::Verdict Api::metrics_access(const Request& req, bool& with_jobs) const {
  with_jobs = false;
  if (!config_.metrics_jobs) return {};
  const auto authz = req.header("authorization");
  if (authz && authz->rfind("Bearer ", 0) == 0) {
    if (!config_.metrics_token.empty() &&
        auth::api_key_matches(authz->substr(7), auth::hash_api_key(config_.metrics_token))) {
      with_jobs = true;
      return {};
    }
    return {401, "wrong metrics token (metrics_token= in bcd.conf)"};
  }
  if (req.header("x-munge-credential") || config_.auth_disable) {
    Caller caller;
    if (Verdict v = identify(req, "", caller); v.status != 200) return v;
    with_jobs = caller.admin;
  }
  return {};
}

// The running jobs from their records and their own series' last point, never their processes: what
// every node's monitor last summed up for the job.
std::string Api::running_jobs_metrics() {
  std::string cpu = "# TYPE bc_job_cpu_seconds counter\n# UNIT bc_job_cpu_seconds seconds\n";
  std::string rss = "# TYPE bc_job_rss_bytes gauge\n# UNIT bc_job_rss_bytes bytes\n";
  std::string rd = "# TYPE bc_job_read_bytes counter\n# UNIT bc_job_read_bytes bytes\n";
  std::string wr = "# TYPE bc_job_write_bytes counter\n# UNIT bc_job_write_bytes bytes\n";
  GpuFamilies gpus;
  for (const auto& [id, nodes] : index_.running_jobs()) {
    uint64_t cpu_ns = 0, live_rss = 0, read = 0, write = 0;
    for (const store::JobRecord& r : nodes) {
      const int64_t last_s = r.last_sample_ms / 1000;
      const std::vector<store::Sample> last = store_->series(id, r.node, 0, last_s, last_s);
      const store::Sample total = last.empty() ? store::Sample{} : last.back();
      cpu_ns += r.has_cgroup_cpu ? r.cgroup_cpu_ns : total.cpu_ns;
      live_rss += total.rss;
      read += total.read_bytes;
      write += total.write_bytes;
    }
    const std::string labels = "{job=\"" + std::to_string(id) + "\",user=\"" + label(nodes.front().user) + "\"}";
    cpu += "bc_job_cpu_seconds_total" + labels + " " + std::to_string(static_cast<double>(cpu_ns) / 1e9) + "\n";
    rss += "bc_job_rss_bytes" + labels + " " + std::to_string(live_rss) + "\n";
    rd += "bc_job_read_bytes_total" + labels + " " + std::to_string(read) + "\n";
    wr += "bc_job_write_bytes_total" + labels + " " + std::to_string(write) + "\n";
    for (const store::JobRecord& r : nodes) gpus.add(*store_, id, r);
  }
  return cpu + rss + rd + wr + gpus.text();
}

Response Api::metrics_text(const Request& req) {
  bool with_jobs = false;
  if (Verdict v = metrics_access(req, with_jobs); v.status != 200) return Response::error(v.status, v.message);
  std::string out;
  out += "# TYPE bcd_requests counter\nbcd_requests_total " + std::to_string(metrics_.requests.load()) + "\n";
  out += "# TYPE bcd_rejected counter\n";
  out += "bcd_rejected_total{reason=\"unauthorized\"} " + std::to_string(metrics_.unauthorized.load()) + "\n";
  out += "bcd_rejected_total{reason=\"forbidden\"} " + std::to_string(metrics_.forbidden.load()) + "\n";
  out += "bcd_rejected_total{reason=\"too_many_streams\"} " + std::to_string(metrics_.streams_refused.load()) + "\n";
  out += "# TYPE bcd_streams gauge\nbcd_streams " + std::to_string(live_streams_->load()) + "\n";
  if (extra_metrics_) out += extra_metrics_();
  if (with_jobs) out += running_jobs_metrics();
  Response r = Response::json(200, out + "# EOF\n");
  r.content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
  return r;
}

}  // namespace bc::bcd
