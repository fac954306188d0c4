// Finished answers of bcd's job views, reused while the job's records are unchanged: the key holds the
// request and a fingerprint of the job's node records, so any new sample or end makes a new key. Bounded
// by bytes, least recently used first out.
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace bc::bcd {

class ResponseCache {
 public:
  explicit ResponseCache(size_t max_bytes) : max_bytes_(max_bytes) {}

  std::shared_ptr<const std::string> get(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    entries_.splice(entries_.begin(), entries_, it->second);
    return it->second->second;
  }

  void put(const std::string& key, std::string body) {
    if (body.size() > max_bytes_ / 4) return;  // one answer never takes most of the cache
    auto value = std::make_shared<const std::string>(std::move(body));
    std::lock_guard lock(mutex_);
    if (auto it = index_.find(key); it != index_.end()) {
      bytes_ -= it->second->second->size();
      entries_.erase(it->second);
      index_.erase(it);
    }
    entries_.emplace_front(key, value);
    index_[key] = entries_.begin();
    bytes_ += value->size();
    while (bytes_ > max_bytes_ && !entries_.empty()) {
      bytes_ -= entries_.back().second->size();
      index_.erase(entries_.back().first);
      entries_.pop_back();
    }
  }

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const std::string>>;
  size_t max_bytes_;
  std::mutex mutex_;
  std::list<Entry> entries_;
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  size_t bytes_ = 0;
};

}  // namespace bc::bcd
