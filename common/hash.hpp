// FNV-1a, 64 bits: the store's file and peer keys and the name of a remembered BPF load failure. Both are
// on disk, so the function never changes.
#pragma once

#include <cstdint>
#include <string_view>

namespace bc::hash {

inline constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
inline constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

// Continues the hash h over bytes (start with kFnvOffset).
inline uint64_t fnv1a(std::string_view bytes, uint64_t h = kFnvOffset) {
  for (char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= kFnvPrime;
  }
  return h;
}

}  // namespace bc::hash
