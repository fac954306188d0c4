// Wall-clock time as the store keeps it: milliseconds since the epoch.
#pragma once

#include <chrono>
#include <cstdint>

namespace bc {

inline int64_t epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace bc
