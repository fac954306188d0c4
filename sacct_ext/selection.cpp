#include "sacct_ext/selection.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <regex>

#include "accounting_db/store.hpp"

namespace bc::bcacct {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Digits only, at most max; nullopt otherwise.
std::optional<uint64_t> number(std::string_view s, uint64_t max) {
  if (s.empty() || s.size() > 20 || s.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (max - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  return v;
}

}  // namespace

std::optional<uint32_t> parse_step(std::string_view text) {
  const std::string s = lower(text);
  if (s == "batch") return store::kStepBatch;
  if (s == "extern") return store::kStepExtern;
  if (s == "interactive") return store::kStepInteractive;
  // Numbered steps are below Slurm's special ids.
  if (auto n = number(s, 0xfffffff0U)) return static_cast<uint32_t>(*n);
  return std::nullopt;
}

std::variant<std::vector<std::string>, std::string> split_list(std::string_view text, const char* what) {
  std::vector<std::string> items;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    const std::string_view item = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    if (item.empty()) return std::string("empty item in ") + what + " list '" + std::string(text) + "'";
    items.emplace_back(item);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return items;
}

std::variant<std::vector<JobSpec>, std::string> parse_job_list(std::string_view text) {
  auto items = split_list(text, "job");
  if (auto* error = std::get_if<std::string>(&items)) return *error;
  std::vector<JobSpec> specs;
  for (const std::string& item : std::get<std::vector<std::string>>(items)) {
    JobSpec spec;
    spec.text = item;
    std::string_view rest = item;
    const auto bad = [&](const std::string& why) { return "invalid job id '" + item + "': " + why; };
    if (const size_t dot = rest.find('.'); dot != std::string_view::npos) {
      spec.step = parse_step(rest.substr(dot + 1));
      if (!spec.step) return bad("the step must be batch, extern, interactive or a number");
      rest = rest.substr(0, dot);
    }
    const size_t sep = rest.find_first_of("_+");
    const auto base = number(rest.substr(0, sep), UINT32_MAX);
    if (!base) return bad("not a number");
    if (*base == 0) return bad("job ids start at 1");
    spec.id = *base;
    if (sep != std::string_view::npos) {
      const auto sub = number(rest.substr(sep + 1), UINT32_MAX);
      if (!sub) return bad(rest[sep] == '_' ? "the array task must be a number" : "the het offset must be a number");
      if (rest[sep] == '_') {
        spec.array_task = static_cast<uint32_t>(*sub);
        spec.array_base = *base;
        spec.id = 0;
      } else {
        spec.het_offset = static_cast<uint32_t>(*sub);
        spec.id = *base + *sub;
        if (spec.id > UINT32_MAX) return bad("out of range");
      }
    }
    specs.push_back(spec);
  }
  return specs;
}

std::optional<int64_t> parse_sacct_time(std::string_view text, int64_t now_s, std::string& error) {
  const std::string s = lower(text);
  const auto fail = [&](const std::string& why) -> std::optional<int64_t> {
    error = "invalid time '" + std::string(text) + "': " + why;
    return std::nullopt;
  };
  // std::regex matches by recursion, about a level per character: a -S of 100,000 characters overflowed the
  // stack. No time sacct reads comes near this.
  constexpr size_t kMaxText = 64;
  if (text.size() > kMaxText) {
    error = "invalid time '" + std::string(text.substr(0, kMaxText)) + "...': longer than " + std::to_string(kMaxText) +
            " characters";
    return std::nullopt;
  }
  const time_t now = static_cast<time_t>(now_s);
  struct tm today {};
  if (!localtime_r(&now, &today)) return fail("cannot read the local time");

  std::smatch m;
  static const std::regex kNow(
      R"(now(?:\s*([+-])\s*(\d{1,9})\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)?)?)");
  if (std::regex_match(s, m, kNow)) {
    if (!m[1].matched) return now_s;
    int64_t unit = 1;
    const std::string u = m[3].str();
    if (!u.empty()) {
      switch (u[0]) {
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case 'w': unit = 604800; break;
        default: unit = 1;
      }
    }
    const int64_t delta = std::stoll(m[2].str()) * unit;
    return m[1].str() == "+" ? now_s + delta : now_s - delta;
  }

  int year = -1, month = -1, day = -1, hour = -1, minute = 0, second = 0;
  const auto set_time = [&](const std::ssub_match& h, const std::ssub_match& mi, const std::ssub_match& se) {
    hour = std::stoi(h.str());
    minute = std::stoi(mi.str());
    second = se.matched ? std::stoi(se.str()) : 0;
  };
  static const std::regex kIso(R"((\d{4})-(\d{1,2})-(\d{1,2})(?:t(\d{1,2}):(\d{2})(?::(\d{2}))?)?)");
  static const std::regex kSlash(R"((\d{1,2})([/.])(\d{1,2})(?:\2(\d{2}))?(?:-(\d{1,2}):(\d{2})(?::(\d{2}))?)?)");
  static const std::regex kCompact(R"((\d{2})(\d{2})(\d{2})?)");
  static const std::regex kClock(R"((\d{1,2}):(\d{2})(?::(\d{2}))?)");
  if (s == "today" || s == "midnight") {
    hour = 0;
  } else if (s == "noon") {
    hour = 12;
  } else if (s == "tomorrow") {
    const time_t later = now + 86400;
    struct tm t {};
    localtime_r(&later, &t);
    year = t.tm_year;
    month = t.tm_mon;
    day = t.tm_mday;
    hour = 0;
  } else if (std::regex_match(s, m, kIso)) {
    year = std::stoi(m[1].str()) - 1900;
    month = std::stoi(m[2].str()) - 1;
    day = std::stoi(m[3].str());
    if (m[4].matched) set_time(m[4], m[5], m[6]);
  } else if (std::regex_match(s, m, kSlash)) {
    month = std::stoi(m[1].str()) - 1;
    day = std::stoi(m[3].str());
    if (m[4].matched) year = std::stoi(m[4].str()) + 100;
    if (m[5].matched) set_time(m[5], m[6], m[7]);
  } else if (std::regex_match(s, m, kCompact)) {
    month = std::stoi(m[1].str()) - 1;
    day = std::stoi(m[2].str());
    if (m[3].matched) year = std::stoi(m[3].str()) + 100;
  } else if (std::regex_match(s, m, kClock)) {
    set_time(m[1], m[2], m[3]);
  } else {
    return fail("use HH:MM[:SS], MMDD[YY], MM/DD[/YY], YYYY-MM-DD[THH:MM[:SS]] or now[{+|-}COUNT[UNIT]]");
  }
  if (month != -1 && (month < 0 || month > 11)) return fail("no such month");
  if (day != -1 && (day < 1 || day > 31)) return fail("no such day");
  if (hour > 23 || minute > 59 || second > 60) return fail("no such time of day");
  if (hour == -1) hour = 0;  // a date alone means its midnight
  if (month == -1) {         // a time alone means today (sacct looks into the past)
    year = today.tm_year;
    month = today.tm_mon;
    day = today.tm_mday;
  }
  if (year == -1) year = month > today.tm_mon ? today.tm_year - 1 : today.tm_year;

  struct tm t {};
  t.tm_year = year;
  t.tm_mon = month;
  t.tm_mday = day;
  t.tm_hour = hour;
  t.tm_min = minute;
  t.tm_sec = second;
  t.tm_isdst = -1;
  const time_t result = mktime(&t);
  if (result == static_cast<time_t>(-1)) return fail("out of range");
  if (t.tm_mday != day || t.tm_mon != month) return fail("no such date");  // 02/31 normalises to March
  return static_cast<int64_t>(result);
}

const char* state_name(JobState s) { return s == JobState::Running ? "RUNNING" : "COMPLETED"; }

std::variant<std::vector<JobState>, std::string> parse_states(std::string_view text) {
  auto items = split_list(text, "state");
  if (auto* error = std::get_if<std::string>(&items)) return *error;
  std::vector<JobState> states;
  for (const std::string& item : std::get<std::vector<std::string>>(items)) {
    const std::string s = lower(item);
    if (s == "r" || s == "running") {
      states.push_back(JobState::Running);
    } else if (s == "cd" || s == "completed") {
      states.push_back(JobState::Completed);
    } else {
      return "state '" + item +
             "' cannot be told: the store knows RUNNING (r) and COMPLETED (cd, every node has ended), not "
             "Slurm's final job state";
    }
  }
  return states;
}

bool matches(const Filter& filter, const report::JobTotals& job) {
  if (!filter.users.empty() && std::find(filter.users.begin(), filter.users.end(), job.user) == filter.users.end())
    return false;
  const JobState state = job.end_ms ? JobState::Completed : JobState::Running;
  if (!filter.states.empty() && std::find(filter.states.begin(), filter.states.end(), state) == filter.states.end())
    return false;
  // sacct -S/-E: jobs that were running at some point in the window. A job with no start is not known to be.
  if (filter.from_ms || filter.to_ms) {
    if (!job.start_ms) return false;
    if (filter.to_ms && *job.start_ms > *filter.to_ms) return false;
    if (filter.from_ms && job.end_ms && *job.end_ms < *filter.from_ms) return false;
  }
  if (!filter.nodes.empty()) {
    const bool any = std::any_of(job.nodes.begin(), job.nodes.end(), [&](const std::string& n) {
      return std::find(filter.nodes.begin(), filter.nodes.end(), n) != filter.nodes.end();
    });
    if (!any) return false;
  }
  return true;
}

}  // namespace bc::bcacct
