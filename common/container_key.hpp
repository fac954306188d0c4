// Store keys for Docker containers. The node store keys jobs by a u64 job id; a container is keyed by its
// short id (the first 12 hex digits of the container id, 48 bits) with the top bit set, so a container key
// can never equal a Slurm job id (those are 32-bit). Used by bc-docker to launch bc-monitor, by bcd, and by readers
// (bcacct) to turn a key back into a short id.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bc::container {

inline constexpr uint64_t kContainerKeyFlag = 1ULL << 63;
inline constexpr uint64_t kShortIdMask = (1ULL << 48) - 1;
inline constexpr size_t kShortIdLength = 12;

// The key of a container, from its short id or its full id (only the first 12 digits count). Lower- and
// upper-case hex are accepted. nullopt when the text is shorter than 12 characters or not hex.
constexpr std::optional<uint64_t> container_key(std::string_view id) {
  if (id.size() < kShortIdLength) return std::nullopt;
  uint64_t value = 0;
  for (size_t i = 0; i < kShortIdLength; ++i) {
    const char c = id[i];
    uint64_t digit = 0;
    if (c >= '0' && c <= '9') digit = static_cast<uint64_t>(c) - '0';
    else if (c >= 'a' && c <= 'f') digit = static_cast<uint64_t>(c) - 'a' + 10;
    else if (c >= 'A' && c <= 'F') digit = static_cast<uint64_t>(c) - 'A' + 10;
    else return std::nullopt;
    value = value << 4 | digit;
  }
  return kContainerKeyFlag | value;
}

// True for keys made by container_key: top bit set, bits 48-62 clear.
constexpr bool is_container_key(uint64_t key) {
  return (key & ~(kContainerKeyFlag | kShortIdMask)) == 0 && (key & kContainerKeyFlag) != 0;
}

// The inverse: the 12 lower-case hex digits of a container key; nullopt for any other number (a job id).
inline std::optional<std::string> short_id_from_key(uint64_t key) {
  if (!is_container_key(key)) return std::nullopt;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kShortIdLength, '0');
  uint64_t value = key & kShortIdMask;
  for (size_t i = kShortIdLength; i-- > 0;) {
    out[i] = kHex[value & 0xf];
    value >>= 4;
  }
  return out;
}

}  // namespace bc::container
