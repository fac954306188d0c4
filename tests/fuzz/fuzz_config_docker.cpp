// bc-docker's config parser (docker_monitor/docker_config.cpp) on a docker.conf. Every problem must be
// reported in errors, never thrown.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "docker_monitor/docker_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  bc::docker::Config config;
  std::vector<std::string> errors;
  bc::docker::parse_config_text(config, text, "docker.conf", errors);
  return 0;
}
