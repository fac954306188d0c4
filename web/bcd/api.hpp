// bcd's JSON API, read side: who is asking (munge credential, web token, or nobody when auth is off) and
// what they may see (their own jobs; admins see all, as Slurm's PrivateData=jobs).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config.hpp"
#include "http_server.hpp"

namespace bc::store {
class Store;
}

namespace bc::bcd {

struct Metrics {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> unauthorized{0};
  std::atomic<uint64_t> forbidden{0};
  std::atomic<uint64_t> not_found{0};
};

class Api {
 public:
  Api(Config config, std::unique_ptr<store::Store> store);
  ~Api();
  std::vector<web::Route> routes();
  Metrics& metrics() { return metrics_; }
  // More OpenMetrics families for /metrics (the ingest counters).
  void add_metrics(std::function<std::string()> fn) { extra_metrics_ = std::move(fn); }

  struct Caller {
    enum class Kind { Anonymous, User, Token } kind = Kind::Anonymous;
    uint32_t uid = 0;
    std::string user;
    bool admin = false;
    std::string token_container;  // for Kind::Token
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

  web::Response health(const web::Request& req);
  web::Response list_jobs(const web::Request& req);
  web::Response job(const web::Request& req);
  web::Response metrics_text(const web::Request& req);

  Config config_;
  std::unique_ptr<store::Store> store_;  // one LMDB env per process; reads run concurrently (MDB_NOTLS)
  Metrics metrics_;
  std::function<std::string()> extra_metrics_;
};

}  // namespace bc::bcd
