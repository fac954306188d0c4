// cJSON owned: the one deleter, and allocation failure (cJSON's NULL) as std::bad_alloc.
#pragma once

#include <cJSON.h>

#include <memory>
#include <new>

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

}  // namespace bc::json
