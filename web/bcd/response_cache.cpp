#include "web/bcd/response_cache.hpp"

#include "web/bcd/gzip.hpp"

namespace bc::bcd {

std::shared_ptr<const CachedView> ResponseCache::put(const std::string& key, std::string body) {
  auto view = std::make_shared<CachedView>();
  if (body.size() >= kGzipMinBytes) view->gzipped = std::make_shared<const std::string>(gzip(body));
  view->body = std::make_shared<const std::string>(std::move(body));
  if (view->bytes() > max_bytes_ / 4) return view;  // one answer never takes most of the cache
  std::lock_guard lock(mutex_);
  if (auto it = index_.find(key); it != index_.end()) {
    bytes_ -= it->second->second->bytes();
    entries_.erase(it->second);
    index_.erase(it);
  }
  entries_.emplace_front(key, view);
  index_[key] = entries_.begin();
  bytes_ += view->bytes();
  while (bytes_ > max_bytes_ && !entries_.empty()) {
    bytes_ -= entries_.back().second->bytes();
    index_.erase(entries_.back().first);
    entries_.pop_back();
  }
  return view;
}

}  // namespace bc::bcd
