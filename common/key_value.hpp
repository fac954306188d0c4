// The one reader of "key = value" settings: the config files (store.conf, bcd.conf, docker.conf,
// bcacct.conf) and the plugin's plugstack.conf arguments. Each consumer knows its keys and words its own
// errors; this knows lines, comments, blanks and where each setting came from.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bc::kv {

struct Setting {
  std::string key;         // trimmed; empty when the line is not key=value
  std::string value;       // trimmed; the whole trimmed line when it is not key=value
  std::string where;       // "ORIGIN:LINE", for messages
  bool malformed = false;  // no '=' or nothing before it
};

// Every setting of a file's text, in order. Blank lines and comments are skipped: a comment starts at a '#'
// that begins the line or follows a blank, so a value may hold '#' (a URL's fragment, a secret).
std::vector<Setting> read_settings(std::string_view text, const std::string& origin);

// One "key=value" argument (plugstack.conf): nullopt without '=' or with nothing before it. Not trimmed:
// Slurm has already split the arguments at blanks.
std::optional<Setting> split_argument(std::string_view argument);

// Spaces, tabs and carriage returns off both ends.
std::string_view trim(std::string_view s);

// yes/no, on/off, true/false, 1/0; false when the text is none of them (out is then unchanged).
bool parse_bool(std::string_view text, bool& out);

}  // namespace bc::kv
