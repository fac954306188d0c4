#include "web/bcd/job_index.hpp"

#include <cJSON.h>

#include <algorithm>

#include "accounting_db/job_model.hpp"
#include "common/container_key.hpp"
#include "common/json.hpp"

namespace bc::bcd {

namespace {
// The job's object in the job list (docs/api.md).
std::string list_entry(uint64_t id, const JobSummary& t) {
  const json::Ptr o(json::checked(cJSON_CreateObject()));
  cJSON* j = o.get();
  const auto short_id = container::short_id_from_key(id);
  json::add(j, "id", json::count(id));
  json::add(j, "job_id", json::string(t.sacct_id));
  if (t.array_job_id) {
    json::Ptr array(json::checked(cJSON_CreateObject()));
    json::add(array.get(), "job_id", json::count(t.array_job_id));
    json::add(array.get(), "task_id", json::count(t.array_task_id));
    json::add(j, "array", array.release());
  } else {
    json::add(j, "array", cJSON_CreateNull());
  }
  json::add(j, "container", json::string(short_id ? *short_id : "job_" + std::to_string(id)));
  json::add(j, "user", json::string(t.user));
  json::add(j, "state", json::string(t.running ? "running" : "completed"));
  json::add(j, "start", job::time_json(t.start_ms.value_or(0)));
  json::add(j, "end", job::time_json(t.end_ms.value_or(0)));
  json::add(j, "cpu_seconds", cJSON_CreateNumber(t.cpu_seconds));
  json::add(j, "max_rss_bytes", json::count(t.max_rss_bytes));
  return json::print(j);
}

}  // namespace

std::string records_state(const std::vector<store::JobRecord>& nodes) {
  std::string state;
  for (const store::JobRecord& n : nodes)
    state += "|" + n.node + ":" + std::to_string(n.last_sample_ms) + ":" + std::to_string(n.end_ms) + ":" +
             std::to_string(n.sample_count) + ":" + std::to_string(n.lost_events);
  return state;
}

void JobIndex::load_running() {
  std::vector<uint64_t> running;
  for (const auto& [id, nodes] : store_.all_job_records())
    if (job::still_running(nodes)) running.push_back(id);
  std::lock_guard lock(mutex_);
  for (uint64_t id : running) running_.try_emplace(id, 0);
}

std::shared_ptr<const JobSummary> JobIndex::summary(uint64_t job_id, const std::vector<store::JobRecord>& nodes) {
  if (nodes.empty()) return nullptr;
  std::string state = records_state(nodes);
  {
    std::lock_guard lock(mutex_);
    if (auto it = summaries_.find(job_id); it != summaries_.end() && it->second.state == state)
      return it->second.summary;
  }
  // Records and processes from one transaction, and the summary keyed by those records.
  store::JobSnapshot snap = store_.load_job(job_id);
  if (snap.nodes.empty()) return nullptr;
  state = records_state(snap.nodes);
  const job::JobTotals t = job::compute_totals(job::JobData{std::move(snap.nodes), std::move(snap.processes)});
  auto summary = std::make_shared<JobSummary>();
  JobSummary& s = *summary;
  s.user = t.user;
  s.sacct_id = job::sacct_job_id(t);
  s.array_job_id = t.array_job_id;
  s.array_task_id = t.array_task_id;
  s.running = !t.end_ms.has_value();
  s.start_ms = t.start_ms;
  s.end_ms = t.end_ms;
  s.cpu_seconds = t.cpu_seconds();
  s.max_rss_bytes = t.max_rss_bytes;
  s.list_entry = list_entry(job_id, s);
  std::lock_guard lock(mutex_);
  summaries_.insert_or_assign(job_id, Cached{std::move(state), summary});
  return summary;
}

void JobIndex::keep_only(const std::vector<uint64_t>& ids) {
  std::lock_guard lock(mutex_);
  std::erase_if(summaries_,
                [&](const auto& entry) { return !std::binary_search(ids.begin(), ids.end(), entry.first); });
}

void JobIndex::written(uint64_t job_id, bool running) {
  std::lock_guard lock(mutex_);
  // An ended batch leaves the job in the set: another node may still run it. running_jobs() decides.
  if (running) running_[job_id] = ++writes_;
}

std::vector<std::pair<uint64_t, std::vector<store::JobRecord>>> JobIndex::running_jobs() {
  std::vector<std::pair<uint64_t, uint64_t>> ids;  // id, the write it was last marked running by
  {
    std::lock_guard lock(mutex_);
    ids.assign(running_.begin(), running_.end());
  }
  std::vector<std::pair<uint64_t, std::vector<store::JobRecord>>> out;
  std::vector<std::pair<uint64_t, uint64_t>> ended;
  for (const auto& [id, mark] : ids) {
    std::vector<store::JobRecord> nodes = store_.job_nodes(id);
    if (job::still_running(nodes)) out.emplace_back(id, std::move(nodes));
    else ended.emplace_back(id, mark);
  }
  if (!ended.empty()) {
    std::lock_guard lock(mutex_);
    // Unless a write marked it running again after that read (a node that starts late).
    for (const auto& [id, mark] : ended)
      if (auto it = running_.find(id); it != running_.end() && it->second == mark) running_.erase(it);
  }
  return out;
}

size_t JobIndex::summaries() const {
  std::lock_guard lock(mutex_);
  return summaries_.size();
}

}  // namespace bc::bcd
