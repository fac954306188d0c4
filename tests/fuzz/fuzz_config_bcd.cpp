// bcd's config parser (web/bcd/config.cpp) on a bcd.conf; bcd's --listen/--store options go through the
// same parser. A bad file must end in ConfigError and nothing else.
#include <cstdint>
#include <string_view>

#include "web/bcd/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const bc::bcd::Config config = bc::bcd::parse_config(text, "bcd.conf");
    bc::bcd::validate(config);
  } catch (const bc::bcd::ConfigError&) {
  }
  return 0;
}
