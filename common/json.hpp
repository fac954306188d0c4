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

}  // namespace bc::json
