#include "sacct_ext/source_config.hpp"

#include <fstream>
#include <sstream>

namespace bc::bcacct {

std::optional<std::string> parse_source_config(std::string_view text, const std::string& origin, SourceConfig& config) {
  for (int number = 1; !text.empty(); ++number) {
    const size_t nl = text.find('\n');
    const std::string line(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    const size_t eq = line.find('=');
    const auto where = [&] { return origin + ":" + std::to_string(number) + ": "; };
    if (eq == std::string::npos) return where() + "expected KEY=VALUE";
    std::string key = line.substr(first, eq - first), value = line.substr(eq + 1);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    value.erase(0, value.find_first_not_of(" \t"));
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == '\r')) value.pop_back();
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
