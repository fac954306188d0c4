// What fuzz_token verifies against, shared with make_seeds.cpp which signs its seeds: a fixed secret, the
// container being opened and the clock.
#pragma once

#include <cstdint>
#include <string_view>

namespace bc::fuzz {

inline constexpr std::string_view kTokenSecret = "fuzz-secret-0123456789abcdef";
inline constexpr std::string_view kTokenContainer = "job_42";
inline constexpr int64_t kTokenNow = 1'800'000'000;

}  // namespace bc::fuzz
