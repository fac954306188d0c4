// bcd's ingest side: POST /api/v1/ingest (and the original's /event/api/<APIKEY>) takes a bundle of node
// batches (accounting_db/wire.hpp), authenticated by munge (root or a configured pusher; the credential's
// payload is the SHA-256 of the body) or by an API key, and applies each batch once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "web/bcd/config.hpp"
#include "web/bcd/http_server.hpp"

#include "accounting_db/store.hpp"

namespace bc::bcd {

struct IngestMetrics {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> batches{0};     // applied
  std::atomic<uint64_t> duplicates{0};  // already applied, skipped
  std::atomic<uint64_t> samples{0};
  std::atomic<uint64_t> bytes{0};  // request bodies accepted
  std::atomic<uint64_t> rejected_auth{0};
  std::atomic<uint64_t> rejected_scope{0};  // 403: an API key's push outside its node and containers
  std::atomic<uint64_t> rejected_malformed{0};
  std::atomic<uint64_t> rejected_content_type{0};
  std::atomic<uint64_t> rejected_too_large{0};  // 413: body over max_body_bytes (counted by the HTTP layer's hook)
  std::atomic<uint64_t> dedup_folded{0};        // dedup entries folded into their monitor's mark
  std::atomic<uint64_t> store_errors{0};
  std::atomic<uint64_t> samples_dropped_late{0};  // the store's, copied after each write
  std::atomic<uint64_t> samples_dropped_rejected{0};
  std::atomic<int64_t> lag_ms{0};  // now minus the newest sample of the last batch applied
};

class Ingest {
 public:
  // store: shared with the read API, which reads it beside ingest's writes.
  Ingest(const Config& config, store::Store& store);
  std::vector<web::Route> routes();
  // Told, after each commit, the jobs it wrote and whether the batch written last for a job was running.
  void on_written(std::function<void(uint64_t job_id, bool running)> fn) { on_written_ = std::move(fn); }
  // OpenMetrics lines (no # EOF) for /metrics.
  std::string metrics_text() const;
  // The HTTP layer refused a body over max_body_bytes on `path` (ServerOptions::on_body_too_large).
  void body_too_large(const std::string& path);

 private:
  web::Admission admit(const web::Request& req, const std::string& path_key);
  web::Response ingest(const web::Request& req);
  std::string outside_key_scope(const std::vector<store::Batch>& batches, const std::string& owner,
                                const std::string& node);
  // Folds old dedup entries (Store::expire_dedup) at most once per min(dedup_window, 10 s).
  void expire_dedup();
  // Applies the batches with those of other requests waiting at the same time, in one transaction (group
  // commit). Returns which were new; throws when the store write failed (nothing of the group applied).
  std::vector<bool> write_grouped(std::vector<store::Batch> batches, std::vector<store::BatchId> ids);
  struct Queued {
    std::vector<store::Batch> batches;
    std::vector<store::BatchId> ids;
    std::vector<bool> applied;
    std::string error;
    bool done = false;  // guarded by queue_mutex_
  };
  void write_taken(const std::vector<Queued*>& take, size_t total);

  const Config& config_;
  store::Store& store_;
  std::function<void(uint64_t, bool)> on_written_;
  IngestMetrics metrics_;
  std::atomic<int64_t> last_expiry_ms_{0};
  std::mutex queue_mutex_;  // never held while the store is written
  std::condition_variable queue_cv_;
  std::deque<Queued*> queue_;
  bool writing_ = false;
};

}  // namespace bc::bcd
