#include "accounting_db/shipper.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <thread>

#include "accounting_db/store.hpp"
#include "accounting_db/wire.hpp"
#include "common/auth.hpp"
#include "common/curl.hpp"
#include "common/fd.hpp"

namespace bc::ship {
namespace {

using Clock = std::chrono::steady_clock;

double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

// flock on the node store's ship lock, released when it goes out of scope.
class ShipLock {
 public:
  explicit ShipLock(const std::string& path) {
    if (path.empty()) {
      held_ = true;
      return;
    }
    fd_ = bc::UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    held_ = fd_.get() >= 0 && flock(fd_.get(), LOCK_EX | LOCK_NB) == 0;
  }
  bool held() const { return held_; }

 private:
  bc::UniqueFd fd_;
  bool held_ = false;
};

}  // namespace

long post_bundle(const ShipOptions& o, const std::string& body, std::string& answer, std::string& error) {
  curl::Easy handle(curl::global_init() ? curl_easy_init() : nullptr);
  if (!handle) {
    error = "cannot create a curl handle";
    return 0;
  }
  curl::List headers;
  try {
    curl::append(headers, "Content-Type: application/octet-stream");
    curl::append(headers, "Expect:");  // no 100-continue round trip
    if (!o.api_key.empty()) {
      curl::append(headers, "Authorization: Bearer " + o.api_key);
    } else {
      std::string munge_error;
      auto cred = auth::munge_encode(auth::sha256_hex(body), o.munge_socket, munge_error);
      if (!cred) {
        error = munge_error;
        return 0;
      }
      curl::append(headers, "X-Munge-Credential: " + *cred);
    }
  } catch (const std::bad_alloc&) {
    error = "out of memory for the request's headers";
    return 0;
  }
  std::string url = o.central_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += "/api/v1/ingest";
  char curl_error[CURL_ERROR_SIZE] = {};
  CURL* c = handle.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.connect_timeout_s * 1000));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(o.request_timeout_s * 1000));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl::append_to_string);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_error);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (!o.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, o.ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
  }
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    error = url + ": " + (curl_error[0] ? curl_error : curl_easy_strerror(rc));
    return 0;
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

uint64_t new_monitor_id() {
  uint64_t id = 0;
  if (getrandom(&id, sizeof id, 0) != sizeof id)
    id = static_cast<uint64_t>(getpid()) << 32 ^ static_cast<uint64_t>(time(nullptr));
  return id;
}

ShipResult ship_pending(const ShipOptions& options, store::Store& store, std::mutex& store_mutex, double deadline_s) {
  ShipResult result;
  ShipLock lock(options.lock_path);
  if (!lock.held()) {
    result.busy = true;
    return result;
  }
  try {
    while (now_s() < deadline_s) {
      std::vector<store::SpooledBatch> pending;
      {
        std::lock_guard guard(store_mutex);
        pending = store.pending_batches(options.max_bundle_batches, options.max_bundle_bytes);
      }
      if (pending.empty()) {
        result.outbox_empty = true;
        result.error.clear();
        return result;
      }
      const std::string body = wire::encode_bundle(pending);
      std::string answer;
      ++result.requests;
      const long status = post_bundle(options, body, answer, result.error);
      if (status != 200) {
        if (status != 0) {
          while (!answer.empty() && answer.back() == '\n') answer.pop_back();
          result.error = "bcd answered " + std::to_string(status) + ": " + answer;
        }
        return result;
      }
      result.error.clear();
      // Every batch in the bundle is stored now (applied or a duplicate): drop them from the outbox.
      std::map<uint64_t, uint64_t> up_to;
      for (const auto& b : pending) up_to[b.id.job_id] = std::max(up_to[b.id.job_id], b.id.seq);
      std::lock_guard guard(store_mutex);
      for (auto [job, seq] : up_to) store.acknowledge_batches(job, seq);
      result.batches += pending.size();
    }
  } catch (const std::exception& e) {
    result.error = std::string("node store: ") + e.what();
  }
  return result;
}

struct BackgroundShipper::Impl {
  ShipOptions options;
  store::Store& store;
  uint64_t monitor_id;
  double final_budget_s;
  std::mutex store_mutex;
  std::mutex wake_mutex;
  std::condition_variable wake;
  bool pending = true;  // ship what an earlier monitor left at start
  bool stopping = false;
  std::thread thread;
  uint64_t shipped = 0, failures = 0;

  Impl(ShipOptions o, store::Store& s, uint64_t id, double budget)
      : options(std::move(o)), store(s), monitor_id(id), final_budget_s(budget) {}

  void log(const char* what, const std::string& detail) {
    std::fprintf(stderr, "bc-monitor: shipping to %s: %s%s\n", options.central_url.c_str(), what, detail.c_str());
  }

  void run() {
    double backoff = 0;
    double retry_at = 0;
    std::unique_lock lock(wake_mutex);
    for (;;) {
      if (stopping) return;
      if (!pending || now_s() < retry_at) {
        const double wait = retry_at > now_s() ? retry_at - now_s() : 3600;
        wake.wait_for(lock, std::chrono::duration<double>(wait));
        continue;
      }
      pending = false;
      lock.unlock();
      const double round_start = now_s();
      // Bounded: a slow bcd never holds more than one request's timeout; the rest waits for the next wake.
      ShipResult r = ship_pending(options, store, store_mutex, round_start + options.request_timeout_s);
      lock.lock();
      shipped += r.batches;
      if (!r.error.empty()) {
        if (failures++ % 30 == 0) log("failed, will retry with backoff: ", r.error);
        backoff = backoff == 0 ? 1 : std::min(60.0, backoff * 2);
        retry_at = now_s() + backoff;
        pending = true;
      } else {
        if (failures) log("working again", "");
        failures = 0;
        backoff = 0;
        if (!r.outbox_empty && !r.busy) {
          pending = true;  // a backlog: the next request at once
          retry_at = 0;
        } else {
          retry_at = options.ship_every_s > 0 ? round_start + options.ship_every_s : 0;
        }
      }
    }
  }
};

BackgroundShipper::BackgroundShipper(ShipOptions options, store::Store& store, uint64_t monitor_id,
                                     double final_budget_s)
    : impl_(std::make_unique<Impl>(std::move(options), store, monitor_id, final_budget_s)) {
  impl_->thread = std::thread([this] { impl_->run(); });
}

BackgroundShipper::~BackgroundShipper() {
  {
    std::lock_guard lock(impl_->wake_mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  impl_->thread.join();
  // A last attempt, bounded; leftovers are shipped by the next monitor on this node or `bcadm ship`.
  ShipOptions last = impl_->options;
  last.request_timeout_s = std::min(last.request_timeout_s, impl_->final_budget_s);
  last.connect_timeout_s = std::min(last.connect_timeout_s, impl_->final_budget_s);
  ShipResult r = ship_pending(last, impl_->store, impl_->store_mutex, now_s() + impl_->final_budget_s);
  if (!r.error.empty()) impl_->log("left in the node store's outbox for later: ", r.error);
}

void BackgroundShipper::write(store::Batch& batch) {
  {
    std::lock_guard guard(impl_->store_mutex);
    impl_->store.write_batch_spooled(batch, impl_->monitor_id);
  }
  {
    std::lock_guard lock(impl_->wake_mutex);
    impl_->pending = true;
  }
  impl_->wake.notify_one();
}

bool read_api_key_file(const std::string& path, std::string& key, std::string& error) {
  auto text = bc::read_file(path);
  if (!text) {
    error = "cannot read the API key file " + path + ": " + std::strerror(errno);
    return false;
  }
  const size_t newline = text->find('\n');
  std::string line = text->substr(0, newline);
  const size_t first = line.find_first_not_of(" \t\r");
  const size_t last = line.find_last_not_of(" \t\r");
  key = first == std::string::npos ? std::string() : line.substr(first, last - first + 1);
  if (key.empty()) {
    error = "the API key file " + path + " holds no key on its first line";
    return false;
  }
  return true;
}

}  // namespace bc::ship
