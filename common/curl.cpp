#include "common/curl.hpp"

#include <mutex>
#include <new>

namespace bc::curl {

bool global_init() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] { ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; });
  return ok;
}

void append(List& list, const std::string& line) {
  curl_slist* longer = curl_slist_append(list.get(), line.c_str());
  if (!longer) throw std::bad_alloc();
  (void)list.release();  // longer is the same list, one line longer
  list.reset(longer);
}

size_t append_to_string(char* data, size_t size, size_t count, void* string) {
  static_cast<std::string*>(string)->append(data, size * count);
  return size * count;
}

}  // namespace bc::curl
