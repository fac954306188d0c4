// bcacct's config parser (sacct_ext/source_config.cpp) on a bcacct.conf. A bad file is reported as a
// message, never thrown.
#include <cstdint>
#include <string_view>

#include "sacct_ext/source_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  bc::bcacct::SourceConfig config;
  (void)bc::bcacct::parse_source_config(text, "bcacct.conf", config);
  return 0;
}
