// libcurl owned: easy and multi handles and header lists with their one deleter each, the process-wide
// init, and the write callback that collects a body into a string.
#pragma once

#include <curl/curl.h>

#include <memory>
#include <string>

namespace bc::curl {

struct EasyDelete {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
struct MultiDelete {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
struct ListDelete {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using Easy = std::unique_ptr<CURL, EasyDelete>;
using Multi = std::unique_ptr<CURLM, MultiDelete>;
using List = std::unique_ptr<curl_slist, ListDelete>;

// curl_global_init, once per process and before the first handle; false when it failed.
bool global_init();

// Appends one header line; throws std::bad_alloc when libcurl cannot (the list is then unchanged).
void append(List& list, const std::string& line);

// A CURLOPT_WRITEFUNCTION that appends to the std::string given as CURLOPT_WRITEDATA.
size_t append_to_string(char* data, size_t size, size_t count, void* string);

}  // namespace bc::curl
