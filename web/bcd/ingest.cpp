#include "web/bcd/ingest.hpp"

#include <cJSON.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <map>
#include <stdexcept>

#include "accounting_db/store.hpp"
#include "accounting_db/wire.hpp"
#include "common/auth.hpp"
#include "common/clock.hpp"
#include "common/container_key.hpp"
#include "common/json.hpp"

namespace bc::bcd {
namespace {

using web::Request;
using web::Response;

constexpr size_t kBatchesPerTransaction = 256;  // of one request
constexpr size_t kBatchesPerCommit = 1024;      // of the requests that share a commit

}  // namespace

Ingest::Ingest(const Config& config, store::Store& store) : config_(config), store_(store) {}

std::vector<web::Route> Ingest::routes() {
  return {
      {"POST", "/api/v1/ingest", [this](const Request& r) { return ingest(r); },
       [this](const Request& r) { return admit(r, ""); }},
      {"POST", "/event/api/{}", [this](const Request& r) { return ingest(r); },
       [this](const Request& r) { return admit(r, r.path.substr(std::string_view("/event/api/").size())); }},
  };
}

namespace {

// Who is pushing, as admit() found from the headers.
struct Pusher {
  bool munge = false;
  std::string munge_payload;        // the credential's payload: must be the body's SHA-256
  std::string key_owner, key_node;  // an API key's
};

}  // namespace

// The push's type and credential, from its headers alone: a push that is refused here never has its body
// read (an anonymous client cannot make bcd buffer anything).
web::Admission Ingest::admit(const Request& req, const std::string& path_key) {
  ++metrics_.requests;
  auto refuse = [](std::atomic<uint64_t>& counter, unsigned status, const std::string& message) {
    ++counter;
    return web::Admission{Response::error(status, message), {}};
  };
  const std::string type = req.header("content-type").value_or("");
  if (type.rfind("application/octet-stream", 0) != 0)
    return refuse(metrics_.rejected_content_type, 415,
                  "ingest takes a batch bundle as application/octet-stream, not '" + type + "'");
  Pusher pusher;
  if (!config_.ingest_auth) return {std::nullopt, pusher};
  std::string api_key = path_key;
  if (auto authz = req.header("authorization"); authz && authz->rfind("Bearer ", 0) == 0) api_key = authz->substr(7);
  if (auto cred = req.header("x-munge-credential")) {
    auth::MungeResult m = auth::munge_decode(*cred, config_.munge_socket);
    if (m.status != auth::MungeStatus::Ok)
      return refuse(metrics_.rejected_auth, 401, "munge credential refused: " + m.message);
    const std::string user = auth::user_name(m.uid);
    if (m.uid != 0 && std::find(config_.pushers.begin(), config_.pushers.end(), user) == config_.pushers.end())
      return refuse(
          metrics_.rejected_auth, 403,
          "uid " + std::to_string(m.uid) + " (" + user + ") may not push node data; see pushers= in bcd.conf");
    pusher.munge = true;
    pusher.munge_payload = std::move(m.payload);
  } else if (!api_key.empty()) {
    std::optional<store::ApiKeyRecord> record;
    try {
      record = store_.api_key(auth::hash_api_key(api_key));
    } catch (const std::exception& e) {
      return refuse(metrics_.store_errors, 503, std::string("cannot read API keys: ") + e.what());
    }
    if (!record) return refuse(metrics_.rejected_auth, 401, "unknown or deleted API key");
    if (record->node.empty())
      return refuse(metrics_.rejected_scope, 403,
                    "this API key is bound to no node (made by an older bcadm); make a new one with "
                    "'bcadm apikey create --owner EMAIL --node NAME'");
    pusher.key_owner = record->owner;
    pusher.key_node = record->node;
  } else {
    return refuse(metrics_.rejected_auth, 401,
                  "authentication required: X-Munge-Credential over the body's SHA-256, or an API key");
  }
  return {std::nullopt, pusher};
}

Response Ingest::ingest(const Request& req) {
  auto refuse = [](std::atomic<uint64_t>& counter, unsigned status, const std::string& message) {
    ++counter;
    return Response::error(status, message);
  };
  const auto* pusher = std::any_cast<Pusher>(&req.admission);
  if (!pusher) return refuse(metrics_.rejected_auth, 401, "push not admitted");  // never: admit() runs first
  if (pusher->munge && pusher->munge_payload != auth::sha256_hex(req.body))
    return refuse(metrics_.rejected_auth, 401,
                  "munge credential was made for another body (payload must be the body's SHA-256)");
  const std::string& key_owner = pusher->key_owner;
  const std::string& key_node = pusher->key_node;

  // Decode everything before applying anything: a malformed request changes nothing. The batches are decoded
  // in the request's own thread, in place in the body, while other requests are being written.
  std::vector<wire::BatchView> bundle;
  std::vector<store::Batch> batches;
  try {
    bundle = wire::decode_bundle_views(req.body);
    batches.reserve(bundle.size());
    for (const auto& b : bundle) {
      batches.push_back(
          wire::decode_batch(b.wire, wire::Identity::Deferred, batches.empty() ? nullptr : &batches.back()));
      const store::JobRecord& job = batches.back().job;
      if (job.job_id != b.id.job_id || job.node != b.id.node)
        throw wire::WireError("batch " + std::to_string(b.id.seq) + " names job " + std::to_string(b.id.job_id) +
                              " on " + b.id.node + " but holds job " + std::to_string(job.job_id) + " on " + job.node);
      if (job.node.empty()) throw wire::WireError("batch " + std::to_string(b.id.seq) + " has no node name");
    }
  } catch (const wire::WireError& e) {
    return refuse(metrics_.rejected_malformed, 400, e.what());
  }
  if (!key_owner.empty()) {
    std::string why;
    try {
      why = outside_key_scope(batches, key_owner, key_node);
    } catch (const std::exception& e) {
      return refuse(metrics_.store_errors, 503, std::string("cannot read the API key's jobs: ") + e.what());
    }
    if (!why.empty()) return refuse(metrics_.rejected_scope, 403, why);
  }

  uint64_t applied = 0, duplicates = 0, samples = 0;
  std::map<uint64_t, uint64_t> acked;  // job -> highest seq now stored
  int64_t newest_ms = 0;
  try {
    std::vector<store::BatchId> ids;
    std::vector<uint64_t> batch_samples;
    std::vector<int64_t> batch_newest;
    for (size_t i = 0; i < batches.size(); ++i) {
      if (!key_owner.empty()) batches[i].job.user = key_owner;
      ids.push_back(std::move(bundle[i].id));
      batch_samples.push_back(batches[i].sample_count());
      batch_newest.push_back(batches[i].job.last_sample_ms);
    }
    // At most kBatchesPerTransaction of this request per transaction, so readers get turns during a big one.
    for (size_t from = 0; from < batches.size(); from += kBatchesPerTransaction) {
      const size_t to = std::min(batches.size(), from + kBatchesPerTransaction);
      std::vector<store::Batch> group(std::make_move_iterator(batches.begin() + static_cast<long>(from)),
                                      std::make_move_iterator(batches.begin() + static_cast<long>(to)));
      const std::vector<bool> done =
          write_grouped(std::move(group), {ids.begin() + static_cast<long>(from), ids.begin() + static_cast<long>(to)});
      for (size_t i = 0; i < done.size(); ++i) {
        if (done[i]) {
          ++applied;
          samples += batch_samples[from + i];
          newest_ms = std::max(newest_ms, batch_newest[from + i]);
        } else {
          ++duplicates;
        }
        uint64_t& a = acked[ids[from + i].job_id];
        a = std::max(a, ids[from + i].seq);
      }
    }
  } catch (const std::exception& e) {
    // Batches applied before the failure stay applied; the node resends the whole bundle and dedup skips them.
    metrics_.batches += applied;
    metrics_.samples += samples;
    return refuse(metrics_.store_errors, 503, std::string("central store write failed: ") + e.what());
  }
  metrics_.batches += applied;
  metrics_.duplicates += duplicates;
  metrics_.samples += samples;
  metrics_.bytes += req.body.size();
  if (newest_ms > 0) metrics_.lag_ms = std::max<int64_t>(0, epoch_ms() - newest_ms);
  expire_dedup();

  const json::Ptr answer(json::checked(cJSON_CreateObject()));
  json::add(answer.get(), "applied", json::count(applied));
  json::add(answer.get(), "duplicates", json::count(duplicates));
  json::add(answer.get(), "samples", json::count(samples));
  cJSON* acked_list = json::checked(cJSON_AddArrayToObject(answer.get(), "acked"));
  for (auto [job, seq] : acked) {
    json::Ptr ack(json::checked(cJSON_CreateObject()));
    json::add(ack.get(), "job", json::count(job));
    json::add(ack.get(), "seq", json::count(seq));
    json::append(acked_list, ack.release());
  }
  if (!key_owner.empty()) json::add(answer.get(), "owner", json::string(key_owner));
  return Response::json(200, answer.get());
}

// An API key writes the containers of its own node only, and only those that are new or already its
// owner's; anything else in the bundle refuses the whole request. Returns why, or "" when all is in scope;
// throws when the store cannot be read.
std::string Ingest::outside_key_scope(const std::vector<store::Batch>& batches, const std::string& owner,
                                      const std::string& node) {
  std::vector<uint64_t> jobs;
  for (const auto& b : batches) {
    if (b.job.node != node)
      return "this API key pushes the containers of node " + node + " only, not data of node " + b.job.node;
    if (!container::is_container_key(b.job.job_id))
      return "this API key pushes Docker containers only, not job " + std::to_string(b.job.job_id) +
             " (Slurm jobs are pushed with munge)";
    if (jobs.empty() || jobs.back() != b.job.job_id) jobs.push_back(b.job.job_id);
  }
  std::sort(jobs.begin(), jobs.end());
  jobs.erase(std::unique(jobs.begin(), jobs.end()), jobs.end());
  for (uint64_t job : jobs) {
    const std::vector<store::JobRecord> nodes = store_.job_nodes(job);
    if (!nodes.empty() && nodes.front().user != owner)
      return "container " + std::to_string(job) + " belongs to another user; this API key is " + owner + "'s";
  }
  return "";
}

// Group commit: a request hands its batches to the queue; whoever finds no writer at work becomes the writer
// and applies every request waiting then in one transaction (one commit, one fsync), up to
// kBatchesPerCommit batches, while the others wait. Under load, concurrent requests share commits; alone, a
// request commits at once as before.
std::vector<bool> Ingest::write_grouped(std::vector<store::Batch> batches, std::vector<store::BatchId> ids) {
  Queued me{std::move(batches), std::move(ids), {}, {}, false};
  std::unique_lock q(queue_mutex_);
  queue_.push_back(&me);
  while (!me.done) {
    if (writing_) {
      queue_cv_.wait(q);
      continue;
    }
    writing_ = true;
    std::vector<Queued*> take;
    size_t total = 0;
    while (!queue_.empty() && (take.empty() || total + queue_.front()->batches.size() <= kBatchesPerCommit)) {
      total += queue_.front()->batches.size();
      take.push_back(queue_.front());
      queue_.pop_front();
    }
    q.unlock();
    write_taken(take, total);
    q.lock();
    writing_ = false;
    queue_cv_.notify_all();
  }
  if (!me.error.empty()) throw std::runtime_error(me.error);
  return std::move(me.applied);
}

void Ingest::write_taken(const std::vector<Queued*>& take, size_t total) {
  std::vector<store::Batch> all;
  std::vector<store::BatchId> ids;
  all.reserve(total);
  ids.reserve(total);
  for (Queued* r : take) {
    std::move(r->batches.begin(), r->batches.end(), std::back_inserter(all));
    ids.insert(ids.end(), r->ids.begin(), r->ids.end());
  }
  std::vector<bool> applied;
  std::string error;
  try {
    applied = store_.write_batches_once(all, ids);
    const store::DroppedSamples dropped = store_.dropped_samples();
    metrics_.samples_dropped_late = dropped.late;
    metrics_.samples_dropped_rejected = dropped.rejected;
  } catch (const std::exception& e) {
    error = e.what();  // all or nothing: every request of the group is refused, and its node resends
  }
  if (error.empty() && on_written_) {
    for (size_t i = 0; i < all.size(); ++i)
      if (i + 1 == all.size() || all[i + 1].job.job_id != all[i].job.job_id || all[i].job.end_ms != 0)
        on_written_(all[i].job.job_id, all[i].job.end_ms == 0);
  }
  size_t at = 0;
  for (Queued* r : take) {
    if (error.empty())
      r->applied.assign(applied.begin() + static_cast<long>(at),
                        applied.begin() + static_cast<long>(at + r->ids.size()));
    r->error = error;
    at += r->ids.size();
  }
  std::lock_guard q(queue_mutex_);
  for (Queued* r : take) r->done = true;
}

void Ingest::body_too_large(const std::string& path) {
  // A declared length over the bound is refused before admit() has counted the request.
  if (path == "/api/v1/ingest" || path.rfind("/event/api/", 0) == 0) {
    ++metrics_.requests;
    ++metrics_.rejected_too_large;
  }
}

void Ingest::expire_dedup() {
  const int64_t now = epoch_ms();
  const int64_t period_ms = std::min<int64_t>(config_.dedup_window_s, 10) * 1000;
  int64_t last = last_expiry_ms_.load();
  if (now - last < period_ms || !last_expiry_ms_.compare_exchange_strong(last, now)) return;
  try {
    // Bounded work per call, so one request never waits long on a big table; the next call goes on.
    metrics_.dedup_folded += store_.expire_dedup(now / 1000 - config_.dedup_window_s, 50000);
  } catch (const std::exception&) {
    // the data was applied; folding is tried again after the next period
  }
}

std::string Ingest::metrics_text() const {
  auto line = [](const std::string& name, const std::string& labels, uint64_t v) {
    return name + labels + " " + std::to_string(v) + "\n";
  };
  std::string out;
  out += "# TYPE bcd_ingest_requests counter\n" + line("bcd_ingest_requests_total", "", metrics_.requests);
  out += "# TYPE bcd_ingest_batches counter\n" + line("bcd_ingest_batches_total", "", metrics_.batches);
  out += "# TYPE bcd_ingest_duplicate_batches counter\n" +
         line("bcd_ingest_duplicate_batches_total", "", metrics_.duplicates);
  out += "# TYPE bcd_ingest_samples counter\n" + line("bcd_ingest_samples_total", "", metrics_.samples);
  out += "# TYPE bcd_ingest_bytes counter\n# UNIT bcd_ingest_bytes bytes\n" +
         line("bcd_ingest_bytes_total", "", metrics_.bytes);
  out += "# TYPE bcd_ingest_rejected counter\n";
  out += line("bcd_ingest_rejected_total", "{reason=\"auth\"}", metrics_.rejected_auth);
  out += line("bcd_ingest_rejected_total", "{reason=\"scope\"}", metrics_.rejected_scope);
  out += line("bcd_ingest_rejected_total", "{reason=\"malformed\"}", metrics_.rejected_malformed);
  out += line("bcd_ingest_rejected_total", "{reason=\"content_type\"}", metrics_.rejected_content_type);
  out += line("bcd_ingest_rejected_total", "{reason=\"too_large\"}", metrics_.rejected_too_large);
  out += line("bcd_ingest_rejected_total", "{reason=\"store\"}", metrics_.store_errors);
  out += "# TYPE bcd_ingest_samples_dropped counter\n";
  out += line("bcd_ingest_samples_dropped_total", "{reason=\"late\"}", metrics_.samples_dropped_late);
  out += line("bcd_ingest_samples_dropped_total", "{reason=\"rejected\"}", metrics_.samples_dropped_rejected);
  out += "# TYPE bcd_ingest_dedup_folded counter\n" + line("bcd_ingest_dedup_folded_total", "", metrics_.dedup_folded);
  char lag[64];
  std::snprintf(lag, sizeof lag, "%.3f", static_cast<double>(metrics_.lag_ms.load()) / 1000.0);
  out += "# TYPE bcd_ingest_lag_seconds gauge\n# UNIT bcd_ingest_lag_seconds seconds\nbcd_ingest_lag_seconds " +
         std::string(lag) + "\n";
  return out;
}

}  // namespace bc::bcd
