// JSON as bc writes it: cJSON trees, owned (the one deleter, allocation failure as std::bad_alloc), strings
// made valid UTF-8, and cJSON's printer for every answer. bc_json; the header-only part needs only cJSON.
#pragma once

#include <cJSON.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <string_view>

namespace bc::json {

struct Delete {
  void operator()(cJSON* item) const { cJSON_Delete(item); }
};
using Ptr = std::unique_ptr<cJSON, Delete>;

// For the cJSON_Create* calls, whose only failure is out of memory.
inline cJSON* checked(cJSON* item) {
  if (!item) throw std::bad_alloc();
  return item;
}

// Puts item into object under name, or at the end of array. Takes ownership of item in every case; a NULL
// item (a failed cJSON_Create*) is out of memory.
inline void add(cJSON* object, const char* name, cJSON* item) {
  Ptr owned(checked(item));
  if (!cJSON_AddItemToObject(object, name, owned.get())) throw std::bad_alloc();
  (void)owned.release();  // the object owns it now
}
inline void append(cJSON* array, cJSON* item) {
  Ptr owned(checked(item));
  if (!cJSON_AddItemToArray(array, owned.get())) throw std::bad_alloc();
  (void)owned.release();  // the array owns it now
}

// Valid UTF-8: each invalid byte becomes U+FFFD. Data from /proc is not guaranteed to be UTF-8, and JSON
// must be.
std::string valid_utf8(std::string_view s);

// A JSON string of s, made valid UTF-8 (cJSON escapes quotes and control characters).
cJSON* string(std::string_view s);

// Integers exactly. cJSON prints a number with 15 significant digits whenever that reads back as nearly the
// same double, so from 10^15 on (a container's key, a 64-bit counter) an integer is written out digit by
// digit instead.
inline cJSON* count(uint64_t v) {
  if (v < 1'000'000'000'000'000ULL) return checked(cJSON_CreateNumber(static_cast<double>(v)));
  return checked(cJSON_CreateRaw(std::to_string(v).c_str()));
}
inline cJSON* integer(int64_t v) {
  if (v >= 0) return count(static_cast<uint64_t>(v));
  if (v > -1'000'000'000'000'000LL) return checked(cJSON_CreateNumber(static_cast<double>(v)));
  return checked(cJSON_CreateRaw(std::to_string(v).c_str()));
}

// Text that is JSON already, as an item: columns of numbers formatted to their own precision.
inline cJSON* raw(const std::string& text) { return checked(cJSON_CreateRaw(text.c_str())); }

// The text of item by cJSON's printer, compact or pretty (tabs), without a trailing newline, with room for
// one more character (an answer's newline) so that adding it copies nothing. size_hint: at least how long
// the text will be, for answers of hundreds of kilobytes: they are then printed straight into the string
// instead of into a buffer grown by doubling and copied (a hint too small only costs that again).
std::string print(const cJSON* item, bool pretty = false, size_t size_hint = 0);

}  // namespace bc::json
