// bcacct's config file (/etc/bubble-chamber/bcacct.conf, or $BC_BCACCT_CONFIG): where bcd is and where the
// local node store is.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bc::bcacct {

struct SourceConfig {
  std::string central;
  std::string ca_file;
  std::string munge_socket;
  std::string store;
  long timeout_ms = 30000;
};

// KEY=VALUE lines, '#' comments; keys central, ca_file, munge_socket, store, timeout (whole seconds from 1). Returns
// the first problem as "origin:line: text" (unknown keys are one), or nullopt when the text is good.
std::optional<std::string> parse_source_config(std::string_view text, const std::string& origin, SourceConfig& config);
// The same for a file; a missing file is fine.
std::optional<std::string> read_source_config(const std::string& path, SourceConfig& config);

}  // namespace bc::bcacct
