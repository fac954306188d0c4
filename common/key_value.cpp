#include "common/key_value.hpp"

namespace bc::kv {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

namespace {

std::string_view without_comment(std::string_view line) {
  for (size_t i = 0; i < line.size(); ++i)
    if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) return line.substr(0, i);
  return line;
}

}  // namespace

std::vector<Setting> read_settings(std::string_view text, const std::string& origin) {
  std::vector<Setting> settings;
  for (size_t number = 1; !text.empty(); ++number) {
    const size_t nl = text.find('\n');
    const std::string_view line = trim(without_comment(text.substr(0, nl)));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty()) continue;
    Setting s;
    s.where = origin + ":" + std::to_string(number);
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0 || trim(line.substr(0, eq)).empty()) {
      s.value = line;
      s.malformed = true;
    } else {
      s.key = trim(line.substr(0, eq));
      s.value = trim(line.substr(eq + 1));
    }
    settings.push_back(std::move(s));
  }
  return settings;
}

std::optional<Setting> split_argument(std::string_view argument) {
  const size_t eq = argument.find('=');
  if (eq == std::string_view::npos || eq == 0) return std::nullopt;
  Setting s;
  s.key = argument.substr(0, eq);
  s.value = argument.substr(eq + 1);
  return s;
}

bool parse_bool(std::string_view text, bool& out) {
  if (text == "yes" || text == "on" || text == "true" || text == "1") {
    out = true;
    return true;
  }
  if (text == "no" || text == "off" || text == "false" || text == "0") {
    out = false;
    return true;
  }
  return false;
}

}  // namespace bc::kv
