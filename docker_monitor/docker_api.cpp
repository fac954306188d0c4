#include "docker_monitor/docker_api.hpp"

#include <cjson/cJSON.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>

#include "common/json.hpp"
#include "docker_monitor/docker_config.hpp"

namespace bc::docker {
namespace {

using JsonPtr = json::Ptr;

JsonPtr parse(std::string_view text) { return JsonPtr(cJSON_ParseWithLength(text.data(), text.size())); }

const cJSON* member(const cJSON* object, const char* name) {
  return object && cJSON_IsObject(object) ? cJSON_GetObjectItemCaseSensitive(object, name) : nullptr;
}

std::string string_of(const cJSON* item) {
  return cJSON_IsString(item) && item->valuestring ? std::string(item->valuestring) : std::string();
}

std::optional<int64_t> integer_of(const cJSON* item) {
  if (!cJSON_IsNumber(item)) return std::nullopt;
  return static_cast<int64_t>(item->valuedouble);
}

std::map<std::string, std::string> string_map(const cJSON* object) {
  std::map<std::string, std::string> out;
  if (!cJSON_IsObject(object)) return out;
  for (const cJSON* item = object->child; item; item = item->next)
    if (item->string && cJSON_IsString(item)) out[item->string] = string_of(item);
  return out;
}

std::string strip_slash(std::string name) {
  if (!name.empty() && name[0] == '/') name.erase(0, 1);
  return name;
}

std::optional<int> parse_int(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (*end != '\0' || v < -2147483647L || v > 2147483647L) return std::nullopt;
  return static_cast<int>(v);
}

bool digits(std::string_view s, size_t at, size_t n, int& out) {
  if (at + n > s.size()) return false;
  out = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

// cJSON keeps numbers as doubles, which cannot hold nanoseconds since 1970 exactly. Finds the digits of
// "name": in the text; a match inside a string value is impossible (its quotes would be escaped). Falls back
// to the double when no occurrence is within a microsecond of it.
int64_t exact_integer_field(std::string_view json, std::string_view name, int64_t approx) {
  const std::string pattern = "\"" + std::string(name) + "\"";
  for (size_t at = json.find(pattern); at != std::string_view::npos; at = json.find(pattern, at + 1)) {
    size_t i = at + pattern.size();
    while (i < json.size() && (json[i] == ' ' || json[i] == '\t' || json[i] == '\n' || json[i] == '\r')) ++i;
    if (i >= json.size() || json[i] != ':') continue;
    ++i;
    while (i < json.size() && (json[i] == ' ' || json[i] == '\t' || json[i] == '\n' || json[i] == '\r')) ++i;
    int64_t value = 0;
    auto [ptr, ec] = std::from_chars(json.data() + i, json.data() + json.size(), value);
    if (ec != std::errc() || ptr == json.data() + i) continue;
    if (value - approx < 1000 && approx - value < 1000) return value;
  }
  return approx;
}

}  // namespace

bool is_full_container_id(std::string_view id) {
  if (id.size() != 64) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::optional<int64_t> parse_docker_time_ns(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  int year, month, day, hour, minute, second;
  if (!digits(s, 0, 4, year) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, month) || s[7] != '-' ||
      !digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2, hour) ||
      s[13] != ':' || !digits(s, 14, 2, minute) || s[16] != ':' || !digits(s, 17, 2, second))
    return std::nullopt;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  size_t at = 19;
  int64_t fraction_ns = 0;
  if (at < s.size() && s[at] == '.') {
    ++at;
    int64_t scale = 100000000;
    size_t n = 0;
    while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
      fraction_ns += (s[at] - '0') * scale;
      scale /= 10;
      ++at;
      ++n;
    }
    if (n == 0) return std::nullopt;
  }
  int64_t offset_s = 0;
  if (at < s.size() && (s[at] == 'Z' || s[at] == 'z')) {
    ++at;
  } else if (at < s.size() && (s[at] == '+' || s[at] == '-')) {
    int oh, om;
    if (!digits(s, at + 1, 2, oh) || at + 3 >= s.size() || s[at + 3] != ':' || !digits(s, at + 4, 2, om))
      return std::nullopt;
    offset_s = (s[at] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    at += 6;
  } else {
    return std::nullopt;
  }
  if (at != s.size()) return std::nullopt;
  if (year < 1970) return 0;  // Docker's zero time
  tm t{};
  t.tm_year = year - 1900;
  t.tm_mon = month - 1;
  t.tm_mday = day;
  t.tm_hour = hour;
  t.tm_min = minute;
  t.tm_sec = second;
  const time_t epoch = timegm(&t);
  return (static_cast<int64_t>(epoch) - offset_s) * 1000000000LL + fraction_ns;
}

std::optional<ContainerEvent> parse_event(std::string_view json) {
  JsonPtr root = parse(json);
  if (!root || !cJSON_IsObject(root.get())) return std::nullopt;
  const std::string type = string_of(member(root.get(), "Type"));
  if (!type.empty() && type != "container") return std::nullopt;
  ContainerEvent e;
  e.action = string_of(member(root.get(), "Action"));
  if (e.action.empty()) e.action = string_of(member(root.get(), "status"));  // API < 1.22
  const cJSON* actor = member(root.get(), "Actor");
  e.id = string_of(member(actor, "ID"));
  if (e.id.empty()) e.id = string_of(member(root.get(), "id"));
  if (e.action.empty() || !is_full_container_id(e.id)) return std::nullopt;
  if (auto ns = integer_of(member(root.get(), "timeNano")); ns && *ns > 0) {
    e.time_ns = exact_integer_field(json, "timeNano", *ns);
  } else if (auto secs = integer_of(member(root.get(), "time")); secs) {
    e.time_ns = *secs * 1000000000LL;
  }
  e.attributes = string_map(member(actor, "Attributes"));
  if (auto it = e.attributes.find("name"); it != e.attributes.end()) e.name = it->second;
  if (auto it = e.attributes.find("image"); it != e.attributes.end()) e.image = it->second;
  if (auto it = e.attributes.find("exitCode"); it != e.attributes.end()) e.exit_code = parse_int(it->second);
  return e;
}

std::optional<std::vector<ListedContainer>> parse_container_list(std::string_view json) {
  JsonPtr root = parse(json);
  if (!root || !cJSON_IsArray(root.get())) return std::nullopt;
  std::vector<ListedContainer> out;
  for (const cJSON* item = root->child; item; item = item->next) {
    ListedContainer c;
    c.id = string_of(member(item, "Id"));
    if (!is_full_container_id(c.id)) continue;
    const cJSON* names = member(item, "Names");
    if (cJSON_IsArray(names) && names->child) c.name = strip_slash(string_of(names->child));
    c.image = string_of(member(item, "Image"));
    c.state = string_of(member(item, "State"));
    c.labels = string_map(member(item, "Labels"));
    out.push_back(std::move(c));
  }
  return out;
}

std::optional<ContainerInfo> parse_inspect(std::string_view json) {
  JsonPtr root = parse(json);
  if (!root || !cJSON_IsObject(root.get())) return std::nullopt;
  ContainerInfo c;
  c.id = string_of(member(root.get(), "Id"));
  if (!is_full_container_id(c.id)) return std::nullopt;
  c.name = strip_slash(string_of(member(root.get(), "Name")));
  c.image_id = string_of(member(root.get(), "Image"));
  const cJSON* config = member(root.get(), "Config");
  c.image = string_of(member(config, "Image"));
  if (c.image.empty()) c.image = c.image_id;
  c.labels = string_map(member(config, "Labels"));
  if (std::string path = string_of(member(root.get(), "Path")); !path.empty()) c.command.push_back(path);
  const cJSON* args = member(root.get(), "Args");
  if (cJSON_IsArray(args))
    for (const cJSON* a = args->child; a; a = a->next) c.command.push_back(string_of(a));
  const cJSON* state = member(root.get(), "State");
  if (!cJSON_IsObject(state)) return std::nullopt;
  c.status = string_of(member(state, "Status"));
  c.running = cJSON_IsTrue(member(state, "Running"));
  c.pid = static_cast<int>(integer_of(member(state, "Pid")).value_or(0));
  c.started_ns = parse_docker_time_ns(string_of(member(state, "StartedAt"))).value_or(0);
  c.finished_ns = parse_docker_time_ns(string_of(member(state, "FinishedAt"))).value_or(0);
  if (!c.running && c.finished_ns > 0) {
    if (auto code = integer_of(member(state, "ExitCode"))) c.exit_code = static_cast<int>(*code);
  }
  return c;
}

std::string events_path(int64_t since_ns) {
  // filters={"type":["container"],"event":["start","die","destroy"]}, URL-encoded.
  std::string path =
      "/events?filters=%7B%22type%22%3A%5B%22container%22%5D%2C%22event%22%3A%5B%22start%22%2C%22die%22%2C"
      "%22destroy%22%5D%7D";
  if (since_ns > 0) {
    char since[48];
    std::snprintf(since, sizeof since, "&since=%lld.%09lld", static_cast<long long>(since_ns / 1000000000LL),
                  static_cast<long long>(since_ns % 1000000000LL));
    path += since;
  }
  return path;
}

bool has_monitor_label(const std::map<std::string, std::string>& labels) {
  auto it = labels.find(kMonitorLabel);
  return it != labels.end() && it->second == kMonitorLabelValue;
}

}  // namespace bc::docker
