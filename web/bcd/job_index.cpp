#include "web/bcd/job_index.hpp"

#include <algorithm>

#include "accounting_db/job_model.hpp"

namespace bc::bcd {

namespace {
bool any_running(const std::vector<store::JobRecord>& nodes) {
  return std::any_of(nodes.begin(), nodes.end(), [](const store::JobRecord& r) { return r.end_ms == 0; });
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
    if (any_running(nodes)) running.push_back(id);
  std::lock_guard lock(mutex_);
  for (uint64_t id : running) running_.try_emplace(id, 0);
}

std::optional<JobSummary> JobIndex::summary(uint64_t job_id, const std::vector<store::JobRecord>& nodes) {
  if (nodes.empty()) return std::nullopt;
  std::string state = records_state(nodes);
  {
    std::lock_guard lock(mutex_);
    if (auto it = summaries_.find(job_id); it != summaries_.end() && it->second.state == state)
      return it->second.summary;
  }
  // Records and processes from one transaction, and the summary keyed by those records.
  store::JobSnapshot snap = store_.load_job(job_id);
  if (snap.nodes.empty()) return std::nullopt;
  state = records_state(snap.nodes);
  const job::JobTotals t = job::compute_totals(job::JobData{std::move(snap.nodes), std::move(snap.processes)});
  JobSummary s;
  s.user = t.user;
  s.sacct_id = job::sacct_job_id(t);
  s.array_job_id = t.array_job_id;
  s.array_task_id = t.array_task_id;
  s.running = !t.end_ms.has_value();
  s.start_ms = t.start_ms;
  s.end_ms = t.end_ms;
  s.cpu_seconds = t.cpu_seconds();
  s.max_rss_bytes = t.max_rss_bytes;
  std::lock_guard lock(mutex_);
  summaries_.insert_or_assign(job_id, Cached{std::move(state), s});
  return s;
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
    if (any_running(nodes)) out.emplace_back(id, std::move(nodes));
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
