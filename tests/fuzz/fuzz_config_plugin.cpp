// The SPANK plugin's options parser (spank/config.cpp) on a plugstack.conf line: Slurm splits the words
// after the plugin's path at blanks and hands them over as argv. Every bad word must be reported in errors,
// never thrown.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "spank/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> args;
  size_t at = 0;
  while (at < line.size()) {
    const size_t start = line.find_first_not_of(" \t\n", at);
    if (start == std::string_view::npos) break;
    const size_t end = std::min(line.find_first_of(" \t\n", start), line.size());
    args.emplace_back(line.substr(start, end - start));
    at = end;
  }
  std::vector<std::string> errors;
  (void)bc::spank::parse_config(args, errors);
  return 0;
}
