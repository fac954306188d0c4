// Store configuration: retention per resolution and the reader group, from defaults, a KEY=VALUE file and the
// environment.
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "accounting_db/config.hpp"
#include "accounting_db/store.hpp"
#include "common/key_value.hpp"

#ifndef BC_STORE_CONFIG_DEFAULT
#define BC_STORE_CONFIG_DEFAULT "/etc/bubble-chamber/store.conf"
#endif

namespace bc::store {

namespace {

struct Key {
  const char* name;
  Resolution resolution;
};
constexpr Key kKeys[] = {
    {"BC_RETENTION_SECONDS", Resolution::Second},
    {"BC_RETENTION_MINUTES", Resolution::Minute},
    {"BC_RETENTION_HOURS", Resolution::Hour},
    {"BC_RETENTION_DAYS", Resolution::Day},
};

// A whole number of seconds, 0 to 100 years.
int64_t parse_seconds(std::string_view value, const std::string& where) {
  constexpr int64_t kMax = 100LL * 366 * 86400;
  if (value.empty()) throw StoreError(where + ": empty value (want a number of seconds, 0 = forever)");
  int64_t v = 0;
  for (char c : value) {
    if (c < '0' || c > '9')
      throw StoreError(where + ": '" + std::string(value) + "' is not a whole number of seconds (0 = forever)");
    v = v * 10 + (c - '0');
    if (v > kMax) throw StoreError(where + ": '" + std::string(value) + "' is more than 100 years");
  }
  return v;
}

constexpr char kGroupKey[] = "BC_STORE_GROUP";

// A group name as groupadd takes it; anything else is a typo or an attempt at something.
std::string parse_group(std::string_view value, const std::string& where) {
  const bool valid = !value.empty() && value.size() <= 32 && value.front() != '-' &&
                     value.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
                         std::string_view::npos;
  if (!valid) throw StoreError(where + ": '" + std::string(value) + "' is not a group name");
  return std::string(value);
}

const Key* find_key(std::string_view name) {
  for (const auto& k : kKeys)
    if (name == k.name) return &k;
  return nullptr;
}

}  // namespace

int64_t bucket_seconds(Resolution r) {
  switch (r) {
    case Resolution::Second: return 1;
    case Resolution::Minute: return 60;
    case Resolution::Hour: return 3600;
    case Resolution::Day: return 86400;
  }
  return 1;
}

const char* resolution_name(Resolution r) {
  switch (r) {
    case Resolution::Second: return "second";
    case Resolution::Minute: return "minute";
    case Resolution::Hour: return "hour";
    case Resolution::Day: return "day";
  }
  return "?";
}

int64_t Retention::of(Resolution r) const {
  switch (r) {
    case Resolution::Second: return seconds;
    case Resolution::Minute: return minutes;
    case Resolution::Hour: return hours;
    case Resolution::Day: return days;
  }
  return 0;
}

void Retention::set(Resolution r, int64_t value) {
  switch (r) {
    case Resolution::Second: seconds = value; break;
    case Resolution::Minute: minutes = value; break;
    case Resolution::Hour: hours = value; break;
    case Resolution::Day: days = value; break;
  }
}

std::string default_config_path() { return BC_STORE_CONFIG_DEFAULT; }

StoreConfig parse_store_config(std::string_view text, const std::string& origin, StoreConfig base) {
  StoreConfig c = std::move(base);
  for (const kv::Setting& s : kv::read_settings(text, origin)) {
    if (s.malformed) throw StoreError(s.where + ": expected KEY=VALUE, got '" + s.value + "'");
    if (s.key == kGroupKey) {
      c.group = parse_group(s.value, s.where + ": " + kGroupKey);
      continue;
    }
    const Key* key = find_key(s.key);
    if (!key)
      throw StoreError(s.where + ": unknown key '" + s.key +
                       "' (known: BC_RETENTION_SECONDS, BC_RETENTION_MINUTES, BC_RETENTION_HOURS, BC_RETENTION_DAYS, "
                       "BC_STORE_GROUP)");
    c.retention.set(key->resolution, parse_seconds(s.value, s.where + ": " + key->name));
  }
  validate_retention(c.retention, origin);
  return c;
}

void validate_retention(const Retention& r, const std::string& origin) {
  // A coarser resolution must be kept at least as long as a finer one: rollups of late samples are
  // recomputed from the finer data, which must still be there.
  auto longest = [](int64_t v) { return v == 0 ? INT64_MAX : v; };
  for (int i = 1; i < kResolutions; ++i) {
    auto finer = static_cast<Resolution>(i - 1), coarser = static_cast<Resolution>(i);
    if (longest(r.of(coarser)) < longest(r.of(finer)))
      throw StoreError(origin + ": " + kKeys[i].name + "=" + std::to_string(r.of(coarser)) + " is shorter than " +
                       kKeys[i - 1].name + "=" + std::to_string(r.of(finer)) +
                       "; a coarser resolution must be kept at least as long (0 = forever)");
  }
  if (r.seconds != 0 && r.seconds < 60)
    throw StoreError(origin + ": BC_RETENTION_SECONDS=" + std::to_string(r.seconds) +
                     " is under a minute, the size of one chunk of seconds");
}

StoreConfig effective_config(const OpenOptions& options) {
  StoreConfig c;
  struct stat st {};
  if (!options.config_path.empty()) {
    if (::stat(options.config_path.c_str(), &st) == 0) {
      std::ifstream in(options.config_path);
      std::stringstream text;
      if (in) text << in.rdbuf();
      if (!in || in.bad()) throw StoreError("cannot read store config " + options.config_path);
      c = parse_store_config(text.str(), options.config_path, c);
    } else if (errno != ENOENT && errno != ENOTDIR) {
      throw StoreError("cannot open store config " + options.config_path + ": " + std::strerror(errno));
    }
  }
  for (const auto& k : kKeys) {
    if (const char* v = std::getenv(k.name); v && *v)
      c.retention.set(k.resolution, parse_seconds(kv::trim(v), std::string("environment: ") + k.name));
  }
  if (const char* v = std::getenv(kGroupKey); v && *v)
    c.group = parse_group(kv::trim(v), std::string("environment: ") + kGroupKey);
  validate_retention(c.retention, "retention (config file and BC_RETENTION_* environment)");
  if (options.retention) {
    validate_retention(*options.retention, "OpenOptions::retention");
    c.retention = *options.retention;
  }
  return c;
}

}  // namespace bc::store
