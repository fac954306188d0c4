// bcd's JSON API, read side: who is asking (munge credential, web token, or nobody when auth is off) and
// what they may see (their own jobs; admins see all, as Slurm's PrivateData=jobs).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "web/bcd/config.hpp"
#include "web/bcd/http_server.hpp"
#include "web/bcd/job_index.hpp"
#include "web/bcd/response_cache.hpp"

namespace bc::store {
class Store;
struct JobSnapshot;
}  // namespace bc::store

namespace bc::bcd {

struct Metrics {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> unauthorized{0};
  std::atomic<uint64_t> forbidden{0};
  std::atomic<uint64_t> not_found{0};
  std::atomic<uint64_t> streams_refused{0};
};

class Api {
 public:
  Api(Config config, std::unique_ptr<store::Store> store);
  // GET /api/v1/jobs/{id}: bcacct --json's document plus "node_records" (allocation, lost events, ...).
  static std::string job_document(store::JobSnapshot snap, bool with_processes);
  ~Api();
  std::vector<web::Route> routes();
  Metrics& metrics() { return metrics_; }
  // More OpenMetrics families for /metrics (the ingest counters).
  void add_metrics(std::function<std::string()> fn) { extra_metrics_ = std::move(fn); }
  // The job list's summaries and the running jobs (ingest tells it what it wrote).
  JobIndex& job_index() { return index_; }

  struct Caller {
    enum class Kind { Anonymous, User, Token } kind = Kind::Anonymous;
    uint32_t uid = 0;
    std::string user;
    bool admin = false;
    std::string token_container;  // for Kind::Token
    int64_t expires_at = 0;       // a token's expiry, epoch seconds; 0: the credential does not expire
  };
  // Why a request was refused, for the 401/403 body; empty when allowed.
  struct Verdict {
    unsigned status = 200;
    std::string message;
  };

 private:
  Verdict identify(const web::Request& req, const std::string& container, Caller& caller) const;
  bool may_see(const Caller& caller, const std::string& job_user, const std::string& container) const;
  bool is_admin(uint32_t uid, const std::string& user) const;

  // What a URL's {id} names: "job_42" and "42" are Slurm job 42; 12 to 64 hex digits are a Docker
  // container (its short id). container is the name web tokens carry ("job_42" or the short id).
  struct Target {
    uint64_t key = 0;
    std::string container;
  };
  static std::optional<Target> parse_target(const std::string& text);
  // The bound of every epoch-seconds argument: what milliseconds still hold, so that *1000 cannot overflow.
  static constexpr int64_t kMaxEpochS = INT64_MAX / 1000;
  // Resolves params[0], checks the caller may read that job and loads it. On refusal, `refusal` holds
  // the 400/401/403/404 response and false is returned.
  // Without `processes`, only the job's node records are read (snapshot.processes stays empty).
  bool open_job(const web::Request& req, Target& target, store::JobSnapshot& snapshot, web::Response& refusal,
                bool processes = true, Caller* who = nullptr);
  // open_job, then the view (or its cached answer while the job's records are unchanged); the refusal
  // when the caller may not read the job.
  using JobView = std::function<web::Response(const Target&, store::JobSnapshot&)>;
  web::Response with_job(const web::Request& req, const JobView& view, bool processes = true);

  web::Response health(const web::Request& req);
  web::Response list_jobs(const web::Request& req);
  web::Response job(const web::Request& req);
  web::Response metrics_text(const web::Request& req);
  Verdict metrics_access(const web::Request& req, bool& with_jobs) const;
  std::string running_jobs_metrics();
  // The per-job views (api_views.cpp).
  web::Response processes(const web::Request& req);
  web::Response tree(const web::Request& req);
  web::Response files(const web::Request& req);
  web::Response connections(const web::Request& req);
  web::Response series(const web::Request& req);
  web::Response notes(const web::Request& req);
  web::Response stream(const web::Request& req);
  static web::Response tree_view(const Target& target, store::JobSnapshot& snap);
  web::Response series_view(const web::Request& req, const Target& target, store::JobSnapshot& snap);
  // expires_at: the caller's token's expiry (0: none); the stream ends then.
  web::Response stream_view(const web::Request& req, const Target& target, store::JobSnapshot& snap,
                            int64_t expires_at);

  Config config_;
  // One LMDB environment per process, shared with ingest. Handlers and live streams read it at once, each in
  // its own read transaction, beside ingest's writes.
  std::unique_ptr<store::Store> store_;
  JobIndex index_{*store_};
  Metrics metrics_;
  ResponseCache cache_{64 << 20};
  std::shared_ptr<std::atomic<unsigned>> live_streams_ = std::make_shared<std::atomic<unsigned>>(0);
  std::function<std::string()> extra_metrics_;
};

}  // namespace bc::bcd
