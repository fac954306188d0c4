#include "sacct_ext/source_config.hpp"

#include "common/key_value.hpp"

#include <fstream>
#include <sstream>

namespace bc::bcacct {

std::optional<std::string> parse_source_config(std::string_view text, const std::string& origin, SourceConfig& config) {
  for (const kv::Setting& setting : kv::read_settings(text, origin)) {
    const auto where = [&] { return setting.where + ": "; };
    if (setting.malformed) return where() + "expected KEY=VALUE";
    const std::string& key = setting.key;
    const std::string& value = setting.value;
    if (key == "central") {
      config.central = value;
    } else if (key == "ca_file") {
      config.ca_file = value;
    } else if (key == "munge_socket") {
      config.munge_socket = value;
    } else if (key == "store") {
      config.store = value;
    } else if (key == "timeout") {
      if (value.empty() || value.size() > 5 || value.find_first_not_of("0123456789") != std::string::npos ||
          std::stol(value) == 0)
        return where() + "timeout is a whole number of seconds from 1";
      config.timeout_ms = std::stol(value) * 1000;
    } else {
      return where() + "unknown key '" + key + "' (known: central, ca_file, munge_socket, store, timeout)";
    }
  }
  return std::nullopt;
}

std::optional<std::string> read_source_config(const std::string& path, SourceConfig& config) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return parse_source_config(text.str(), path, config);
}

}  // namespace bc::bcacct
