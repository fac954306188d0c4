// bcadm's central commands: API keys for pushers without munge, web tokens, and shipping a node store's
// outbox to bcd (for a systemd timer).
#include "web/bcadm/central.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "accounting_db/shipper.hpp"
#include "accounting_db/store.hpp"
#include "common/auth.hpp"
#include "common/tls_files.hpp"
#include "web/bcd/config.hpp"

namespace bc::admin {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitStore = 3;

int usage_error(const std::string& message) {
  std::fprintf(stderr, "bcadm: %s\nTry 'bcadm --help' for more information.\n", message.c_str());
  return kExitUsage;
}

// "3600", "90s", "30m", "1h", "7d" -> seconds; nullopt when malformed or not positive.
std::optional<int64_t> parse_duration(const std::string& text) {
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) return std::nullopt;
  size_t end = 0;
  int64_t n = 0;
  try {
    n = std::stoll(text, &end);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const std::string unit = text.substr(end);
  int64_t scale = 0;
  if (unit.empty() || unit == "s") scale = 1;
  if (unit == "m") scale = 60;
  if (unit == "h") scale = 3600;
  if (unit == "d") scale = 86400;
  if (scale == 0 || n <= 0 || n > INT64_MAX / scale / 2) return std::nullopt;
  return n * scale;
}

std::string iso(int64_t t) {
  char buf[32];
  std::tm tm{};
  time_t tt = static_cast<time_t>(t);
  gmtime_r(&tt, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct Args {
  std::map<std::string, std::string> values;
  std::string positional;
};

// Long options of one command, all taking a value; one positional argument at most.
std::optional<Args> parse(int argc, char** argv, int first, const std::vector<std::string>& names, bool positional,
                          int& error) {
  Args args;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) == 0) {
      std::string name = a.substr(2), value;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        error = usage_error("--" + name + " needs a value");
        return std::nullopt;
      }
      if (std::find(names.begin(), names.end(), name) == names.end()) {
        error = usage_error("unknown option '--" + name + "'");
        return std::nullopt;
      }
      args.values[name] = value;
    } else if (positional && args.positional.empty()) {
      args.positional = a;
    } else {
      error = usage_error("unexpected argument '" + a + "'");
      return std::nullopt;
    }
  }
  return args;
}

std::unique_ptr<store::Store> open_store(const std::string& path, bool read_only) {
  store::OpenOptions o;
  o.read_only = read_only;
  o.create = !read_only;
  return store::Store::open(path, o);
}

int apikey(const std::string& sub, const Args& args, const std::string& central_store) {
  const std::string path = args.values.count("store") ? args.values.at("store") : central_store;
  if (sub == "create") {
    auto owner = args.values.find("owner");
    if (owner == args.values.end() || owner->second.empty()) return usage_error("apikey create needs --owner EMAIL");
    auto node = args.values.find("node");
    if (node == args.values.end() || node->second.empty())
      return usage_error(
          "apikey create needs --node NAME, the host whose containers the key pushes (bc-docker's "
          "node name: its short host name unless node= says otherwise)");
    if (node->second.size() > store::kMaxNodeNameBytes)
      return usage_error("--node is longer than " + std::to_string(store::kMaxNodeNameBytes) + " bytes");
    const std::string key = auth::new_api_key();
    if (key.empty()) {
      std::fprintf(stderr, "bcadm: no random bytes for a key\n");
      return kExitFailed;
    }
    open_store(path, false)
        ->put_api_key({auth::hash_api_key(key), owner->second, static_cast<int64_t>(time(nullptr)), node->second});
    std::printf("%s\n", key.c_str());
    std::fprintf(stderr,
                 "bcadm: API key for %s, pushing the containers of node %s, stored (hashed) in %s; it is shown "
                 "only this once\n",
                 owner->second.c_str(), node->second.c_str(), path.c_str());
    return kExitOk;
  }
  if (sub == "delete") {
    if (args.positional.empty()) return usage_error("apikey delete needs the KEY (or its SHA-256 as listed)");
    auto db = open_store(path, false);
    // The key itself, or the hash `apikey list` shows (keys are not kept, so list can only show hashes).
    const bool is_hash =
        args.positional.size() == 64 && args.positional.find_first_not_of("0123456789abcdef") == std::string::npos;
    const std::string hash = is_hash ? args.positional : auth::hash_api_key(args.positional);
    if (!db->delete_api_key(hash)) {
      std::fprintf(stderr, "bcadm: no such API key in %s\n", path.c_str());
      return kExitFailed;
    }
    std::printf("deleted API key %s\n", hash.substr(0, 12).c_str());
    return kExitOk;
  }
  if (sub == "list") {
    auto keys = open_store(path, true)->api_keys();
    std::printf("%-64s  %-20s  %-20s  %s\n", "SHA-256 of the key", "created", "node", "owner");
    for (const auto& k : keys)
      std::printf("%-64s  %-20s  %-20s  %s\n", k.hash.c_str(), iso(k.created_s).c_str(),
                  k.node.empty() ? "(none: refused)" : k.node.c_str(), k.owner.c_str());
    return kExitOk;
  }
  return usage_error("unknown command 'apikey " + sub + "' (want: create, delete, list)");
}

int token(const Args& args, const std::string& bcd_config) {
  auto job = args.values.find("job");
  auto user = args.values.find("user");
  auto container = args.values.find("container");
  const int given = (job != args.values.end()) + (user != args.values.end()) + (container != args.values.end());
  if (given != 1) return usage_error("token needs one of --job ID, --container ID or --user NAME");
  // A container's web view is opened by its short id (the first 12 hex digits of its id).
  std::string short_id;
  if (container != args.values.end()) {
    for (char ch : container->second) short_id += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (short_id.size() < 12 || short_id.size() > 64 ||
        short_id.find_first_not_of("0123456789abcdef") != std::string::npos)
      return usage_error("--container needs a container id (12 to 64 hex digits)");
    short_id.resize(12);
  }
  if (user != args.values.end() && (user->second.empty() || user->second.find_first_of(" \t/") != std::string::npos))
    return usage_error("--user needs a user name");
  if (job != args.values.end() &&
      (job->second.empty() || job->second.find_first_not_of("0123456789") != std::string::npos ||
       job->second.size() > 19))
    return usage_error("token needs --job ID (a number)");
  const auto ttl = parse_duration(args.values.count("ttl") ? args.values.at("ttl") : "1h");
  if (!ttl) return usage_error("--ttl takes a duration: 3600, 90s, 30m, 1h or 7d");
  const std::string config_path = args.values.count("config") ? args.values.at("config") : bcd_config;
  bcd::Config config;
  try {
    config = bcd::load_config(config_path, args.values.count("config") > 0);  // AUTH_SECRET overrides the file
  } catch (const bcd::ConfigError& e) {
    std::fprintf(stderr, "bcadm: %s\n", e.what());
    return kExitUsage;
  }
  if (config.auth_secret.size() < 16) {
    std::fprintf(stderr, "bcadm: no auth_secret of at least 16 characters in %s or AUTH_SECRET\n", config_path.c_str());
    return kExitFailed;
  }
  const int64_t now = static_cast<int64_t>(time(nullptr));
  auth::TokenClaims claims;
  if (job != args.values.end()) claims.container = "job_" + job->second;
  else if (!short_id.empty()) claims.container = short_id;
  else claims.user = user->second;
  claims.expires_at = now + *ttl;
  claims.issued_at = now;
  std::printf("%s\n", auth::mint_token(config.auth_secret, claims).c_str());
  return kExitOk;
}

int ship(const Args& args, const std::string& node_store) {
  auto central = args.values.find("central");
  if (central == args.values.end() || central->second.empty()) return usage_error("ship needs --central URL");
  const std::string path = args.values.count("store") ? args.values.at("store") : node_store;
  ship::ShipOptions o;
  o.central_url = central->second;
  if (args.values.count("munge-socket")) o.munge_socket = args.values.at("munge-socket");
  if (args.values.count("ca-file")) {
    std::string error;
    if (!auth::check_ca_file("--ca-file", args.values.at("ca-file"), error)) return usage_error(error);
    o.ca_file = args.values.at("ca-file");
  }
  if (args.values.count("api-key-file")) {
    std::string error;
    if (!ship::read_api_key_file(args.values.at("api-key-file"), o.api_key, error)) {
      std::fprintf(stderr, "bcadm: %s\n", error.c_str());
      return kExitUsage;
    }
  }
  const auto timeout = parse_duration(args.values.count("timeout") ? args.values.at("timeout") : "60");
  if (!timeout) return usage_error("--timeout takes a duration");
  o.lock_path = path + "/ship.lock";
  auto db = open_store(path, false);
  std::mutex unused;  // nothing else uses this Store
  const double deadline = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count() +
                          static_cast<double>(*timeout);
  ship::ShipResult r = ship::ship_pending(o, *db, unused, deadline);
  if (r.busy) {
    std::printf("another shipper (a monitor) is shipping %s now; nothing to do\n", path.c_str());
    return kExitOk;
  }
  std::printf("shipped %" PRIu64 " batch(es) in %" PRIu64 " request(s) to %s\n", r.batches, r.requests,
              o.central_url.c_str());
  if (!r.error.empty()) {
    std::fprintf(stderr, "bcadm: shipping stopped: %s (the rest stays in the outbox)\n", r.error.c_str());
    return kExitFailed;
  }
  if (!r.outbox_empty) {
    std::fprintf(stderr, "bcadm: --timeout reached; the rest stays in the outbox\n");
    return kExitFailed;
  }
  for (const auto& s : db->ship_states())
    std::printf("job %" PRIu64 ": shipped up to batch %" PRIu64 " of %" PRIu64 "\n", s.job_id, s.shipped_up_to,
                s.last_seq);
  return kExitOk;
}

}  // namespace

int run_central(int argc, char** argv, int first, const std::string& store_path, const std::string& central_store,
                const std::string& bcd_config) {
  const std::string group = argv[first];
  int error = kExitUsage;
  try {
    if (group == "apikey") {
      if (first + 1 >= argc) return usage_error("missing command (want: apikey create|delete|list)");
      auto args = parse(argc, argv, first + 2, {"owner", "node", "store"}, true, error);
      if (!args) return error;
      if (!store_path.empty() && !args->values.count("store")) args->values["store"] = store_path;
      return apikey(argv[first + 1], *args, central_store);
    }
    if (group == "token") {
      auto args = parse(argc, argv, first + 1, {"job", "container", "user", "ttl", "config"}, false, error);
      return args ? token(*args, bcd_config) : error;
    }
    if (group == "ship") {
      auto args = parse(argc, argv, first + 1,
                        {"central", "store", "munge-socket", "api-key-file", "ca-file", "timeout"}, false, error);
      if (!args) return error;
      return ship(*args, store_path);
    }
  } catch (const store::StoreError& e) {
    std::fprintf(stderr, "bcadm: %s\n", e.what());
    return kExitStore;
  }
  return usage_error("unknown command group '" + group + "'");
}

}  // namespace bc::admin
