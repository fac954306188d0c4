// Finished answers of bcd's job views, reused while the job's records are unchanged: the key holds the
// request and a fingerprint of the job's node records, so any new sample or end makes a new key. Each
// answer is kept ready to send, as is and gzipped, in buffers shared by every response that sends it.
// Bounded by bytes, least recently used first out.
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace bc::bcd {

struct CachedView {
  std::shared_ptr<const std::string> body;
  std::shared_ptr<const std::string> gzipped;  // null when gzip would not pay (small answers)
  size_t bytes() const { return body->size() + (gzipped ? gzipped->size() : 0); }
};

class ResponseCache {
 public:
  // Answers below this size are not compressed: the saving is less than a packet.
  static constexpr size_t kGzipMinBytes = 1024;

  explicit ResponseCache(size_t max_bytes) : max_bytes_(max_bytes) {}

  std::shared_ptr<const CachedView> get(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    entries_.splice(entries_.begin(), entries_, it->second);
    return it->second->second;
  }

  // Makes the view ready to send (compressing it once, outside the lock) and keeps it.
  std::shared_ptr<const CachedView> put(const std::string& key, std::string body);

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const CachedView>>;
  size_t max_bytes_;
  std::mutex mutex_;
  std::list<Entry> entries_;
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  size_t bytes_ = 0;
};

}  // namespace bc::bcd
