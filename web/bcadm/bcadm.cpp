// bcadm: administration of a bubble-chamber store.
//
//   bcadm db init|upgrade|check|stats|sweep [--store PATH] [--config PATH]
//   bcadm apikey create|delete|list, bcadm token, bcadm ship (bcadm_central.cpp)
//
// Exit status: 0 ok, 1 check found problems (or the central command failed), 2 usage error, 3 the store
// cannot be opened, read or written.
#include <getopt.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "accounting_db/store.hpp"
#include "web/bcadm/central.hpp"

#ifndef BC_STORE_DEFAULT
#error "BC_STORE_DEFAULT must be defined by the build"
#endif
#ifndef BC_VERSION
#define BC_VERSION "unknown"
#endif

namespace {

using namespace bc::store;

constexpr int kExitOk = 0;
constexpr int kExitProblems = 1;
constexpr int kExitUsage = 2;
constexpr int kExitStore = 3;

constexpr char kHelp[] =
    "Usage: bcadm db COMMAND [--store PATH] [--config PATH]\n"
    "       bcadm apikey create --owner EMAIL --node NAME | apikey delete KEY | apikey list   [--store CENTRAL]\n"
    "       bcadm token --job ID | --container ID | --user NAME [--ttl 1h] [--config BCD_CONF]\n"
    "       bcadm ship --central URL [--store PATH] [--munge-socket PATH] [--api-key-file FILE] [--ca-file FILE]\n"
    "                  [--timeout 60]\n"
    "Administer a bubble-chamber accounting store, the central daemon's API keys and web tokens, and ship a\n"
    "node store's outbox to bcd.\n"
    "\n"
    "Commands:\n"
    "  init      create the store with the current schema (nothing to do if it exists)\n"
    "  upgrade   migrate a store of an older schema in place\n"
    "  check     verify every record, chunk and rollup; exit 1 if anything is wrong\n"
    "  stats     size per table and resolution, and how full the map is\n"
    "  sweep     seal and expire old data of every job now (writers also do this a little at a time)\n"
    "  apikey create  print a new API key for pushers without munge (shown once; stored hashed in the\n"
    "                 central store, default " BC_CENTRAL_STORE_DEFAULT
    "). The key pushes only the\n"
    "                 containers of node NAME (bc-docker's host), never Slurm jobs or another user's jobs\n"
    "  apikey delete  refuse a key from now on (give the key or its SHA-256 from 'apikey list')\n"
    "  apikey list    the stored keys' hashes, creation times, nodes and owners\n"
    "  token     mint a web token (HS256 JWT) opening one job or Docker container, or standing for a user\n"
    "            (job list and their jobs), with auth_secret from the bcd config\n"
    "            (default " BC_BCD_CONFIG_DEFAULT
    ") or AUTH_SECRET\n"
    "  ship      send the node store's unshipped batches to bcd (munge, or --api-key-file); exit 1 if\n"
    "            some are left. An https bcd is verified against --ca-file (PEM; default: the system's\n"
    "            CAs), and nothing is sent when it does not verify\n"
    "\n"
    "Options:\n"
    "  -s, --store=PATH    the store (default: $BC_STORE, else " BC_STORE_DEFAULT
    ")\n"
    "  -c, --config=PATH   the store config with the retention (default: the compiled-in path)\n"
    "  -h, --help          print this help and exit\n"
    "  -V, --version       print the version and exit\n"
    "\n"
    "Exit status: 0 ok, 1 check found problems, 2 usage error, 3 store error.\n"
    "See bcadm(8).\n";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "bcadm: %s\nTry 'bcadm --help' for more information.\n", message.c_str());
  return kExitUsage;
}

std::string size_text(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 " B", bytes);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  }
  return buf;
}

std::string retention_text(int64_t seconds) { return seconds == 0 ? "forever" : std::to_string(seconds) + " s"; }

int cmd_init(const std::string& path, const OpenOptions& options) {
  if (Store::init(path, options)) {
    std::printf("created store %s (schema version %u)\n", path.c_str(), kSchemaVersion);
  } else {
    std::printf("store %s already exists (schema version %u); nothing to do\n", path.c_str(), kSchemaVersion);
  }
  return kExitOk;
}

int cmd_upgrade(const std::string& path, const OpenOptions& options) {
  UpgradeReport r = Store::upgrade(path, options);
  if (r.from_version == r.to_version) {
    std::printf("store %s is at schema version %u; nothing to do\n", path.c_str(), r.to_version);
  } else {
    std::printf("upgraded store %s from schema version %u to %u (%" PRIu64 " samples migrated)\n", path.c_str(),
                r.from_version, r.to_version, r.samples_migrated);
  }
  return kExitOk;
}

int cmd_check(const std::string& path, OpenOptions options) {
  options.read_only = true;
  options.create = false;
  auto store = Store::open(path, options);
  CheckReport r = store->check();
  std::printf("store %s: %" PRIu64 " jobs, %" PRIu64 " processes, %" PRIu64 " chunks of seconds, %" PRIu64
              " points, %" PRIu64 " rollup buckets, %" PRIu64 " files, %" PRIu64 " connections\n",
              path.c_str(), r.jobs, r.processes, r.chunks, r.points, r.buckets, r.files, r.connections);
  for (const auto& p : r.problems) std::printf("problem: %s\n", p.c_str());
  if (r.problem_count > r.problems.size())
    std::printf("... and %" PRIu64 " more problems\n", r.problem_count - r.problems.size());
  if (!r.ok()) {
    std::printf("check FAILED: %" PRIu64 " problem(s)\n", r.problem_count);
    return kExitProblems;
  }
  std::printf("check ok\n");
  return kExitOk;
}

int cmd_stats(const std::string& path, OpenOptions options) {
  options.read_only = true;
  options.create = false;
  auto store = Store::open(path, options);
  StoreStats s = store->stats();
  std::printf("store            %s\n", path.c_str());
  std::printf("schema version   %u\n", s.schema_version);
  std::printf("page size        %" PRIu64 " B\n", s.page_size);
  std::printf("map size         %s\n", size_text(s.map_bytes).c_str());
  std::printf("map fill ratio   %.1f%% (high-water mark %s)\n", 100.0 * s.fill_ratio,
              size_text(s.last_page_bytes).c_str());
  std::printf("in use           %s in tables, %" PRIu64 " free pages (%s) reusable\n",
              size_text(s.in_use_bytes).c_str(), s.free_pages, size_text(s.free_pages * s.page_size).c_str());
  std::printf("file on disk     %s\n", size_text(s.file_bytes).c_str());
  std::printf("retention        seconds %s, minutes %s, hours %s, days %s\n",
              retention_text(s.retention.seconds).c_str(), retention_text(s.retention.minutes).c_str(),
              retention_text(s.retention.hours).c_str(), retention_text(s.retention.days).c_str());
  uint64_t second_bytes = 0;
  for (const auto& t : s.tables)
    if (t.name == "series_s" || t.name == "open") second_bytes += t.bytes;
  if (s.samples_second) {
    std::printf("second samples   %" PRIu64 " points, %.2f B each (sealed minutes and open ones, keys included)\n",
                s.samples_second, static_cast<double>(second_bytes) / static_cast<double>(s.samples_second));
  } else {
    std::printf("second samples   0 points\n");
  }
  // Shipping: what waits for bcd, what was given up at the outbox bound, and (central) the dedup table.
  uint64_t pending = 0, pending_bytes = 0, dropped = 0, dropped_samples = 0;
  std::vector<std::string> dropped_jobs;
  for (const auto& j : store->ship_states()) {
    pending += j.pending;
    pending_bytes += j.pending_bytes;
    dropped += j.dropped_batches;
    dropped_samples += j.dropped_samples;
    if (j.dropped_batches)
      dropped_jobs.push_back(std::to_string(j.job_id) + " (" + std::to_string(j.dropped_batches) + " batches, " +
                             std::to_string(j.dropped_samples) + " samples)");
  }
  std::printf("outbox           %" PRIu64 " batches (%s) waiting for bcd\n", pending, size_text(pending_bytes).c_str());
  std::printf("unshipped        %" PRIu64 " batches, %" PRIu64 " samples given up at the outbox bound (kept here)\n",
              dropped, dropped_samples);
  for (const auto& j : dropped_jobs) std::printf("  job %s\n", j.c_str());
  const DedupStats dedup = store->dedup_stats();
  std::printf("dedup            %" PRIu64 " batch entries, %" PRIu64 " monitor marks\n", dedup.entries, dedup.marks);
  std::printf("\n%-14s %-10s %12s %6s %10s %12s\n", "table", "resolution", "entries", "depth", "pages", "size");
  for (const auto& t : s.tables) {
    std::printf("%-14s %-10s %12" PRIu64 " %6" PRIu64 " %10" PRIu64 " %12s\n", t.name.c_str(),
                t.resolution ? resolution_name(*t.resolution) : "-", t.entries, t.depth, t.pages,
                size_text(t.bytes).c_str());
  }
  return kExitOk;
}

int cmd_sweep(const std::string& path, OpenOptions options) {
  options.create = false;
  auto store = Store::open(path, options);
  SweepReport r = store->sweep(UINT64_MAX);
  std::printf("swept %" PRIu64 " job(s): %" PRIu64 " minute(s) sealed, %" PRIu64 " chunk(s) expired\n", r.jobs_visited,
              r.chunks_sealed, r.chunks_deleted);
  return kExitOk;
}

int run(int argc, char** argv) {
  std::string store_path, config_path;
  bool have_store = false, have_config = false;
  static const option long_options[] = {{"store", required_argument, nullptr, 's'},
                                        {"config", required_argument, nullptr, 'c'},
                                        {"help", no_argument, nullptr, 'h'},
                                        {"version", no_argument, nullptr, 'V'},
                                        {nullptr, 0, nullptr, 0}};
  opterr = 0;
  // Options may stand before or after "db COMMAND"; the same loop reads both places. nullopt: go on.
  auto parse_options = [&]() -> std::optional<int> {
    for (;;) {
      int c = getopt_long(argc, argv, "+s:c:hV", long_options, nullptr);
      if (c == -1) return std::nullopt;
      switch (c) {
        case 's':
          if (!*optarg) return usage_error("--store needs a non-empty PATH");
          store_path = optarg;
          have_store = true;
          break;
        case 'c':
          config_path = optarg;
          have_config = true;
          break;
        case 'h': std::fputs(kHelp, stdout); return kExitOk;
        case 'V': std::printf("bcadm %s (schema version %u)\n", BC_VERSION, kSchemaVersion); return kExitOk;
        default: return usage_error(std::string("unknown or incomplete option '") + argv[optind - 1] + "'");
      }
    }
  };
  if (auto done = parse_options()) return *done;
  if (optind < argc) {
    const std::string group = argv[optind];
    if (group == "apikey" || group == "token" || group == "ship") {
      for (int i = optind + 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
          std::fputs(kHelp, stdout);
          return kExitOk;
        }
      }
      std::string node_store = store_path;
      if (!have_store) {
        const char* env = std::getenv("BC_STORE");
        node_store = env && *env ? env : BC_STORE_DEFAULT;
      }
      // For apikey the store is the central one: only an explicit --store replaces its default.
      return bc::admin::run_central(argc, argv, optind, group == "apikey" ? (have_store ? store_path : "") : node_store,
                                    BC_CENTRAL_STORE_DEFAULT, BC_BCD_CONFIG_DEFAULT);
    }
  }
  if (argc - optind < 2)
    return usage_error("missing command (want: db init|upgrade|check|stats|sweep, apikey, token, ship)");
  const std::string group = argv[optind], command = argv[optind + 1];
  if (group != "db") return usage_error("unknown command group '" + group + "' (want: db, apikey, token, ship)");
  optind += 2;
  if (auto done = parse_options()) return *done;
  if (optind < argc) return usage_error(std::string("unexpected argument '") + argv[optind] + "'");
  if (!have_store) {
    const char* env = std::getenv("BC_STORE");
    store_path = env && *env ? env : BC_STORE_DEFAULT;
  }
  OpenOptions options;
  if (have_config) options.config_path = config_path;
  try {
    if (command == "init") return cmd_init(store_path, options);
    if (command == "upgrade") return cmd_upgrade(store_path, options);
    if (command == "check") return cmd_check(store_path, options);
    if (command == "stats") return cmd_stats(store_path, options);
    if (command == "sweep") return cmd_sweep(store_path, options);
  } catch (const StoreError& e) {
    std::fprintf(stderr, "bcadm: %s\n", e.what());
    return kExitStore;
  }
  return usage_error("unknown command 'db " + command + "' (want: init, upgrade, check, stats, sweep)");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bcadm: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "bcadm: unexpected error\n");
  }
  return kExitStore;
}
