// bcacct: a sacct companion for bubble-chamber's per-process accounting. Option parsing and wiring only:
// selection syntax in selection.cpp, rows in format.cpp, charts in timeline.cpp, reports in report.cpp,
// and where the records come from in job_source.cpp / bcd_source.cpp.
//
// Exit status: 0 ok, 1 unknown job, 2 usage error, 3 store cannot be opened or read, 4 any other failure,
// 5 no permission, 6 bcd unreachable and no local store to fall back to.
#include <getopt.h>
#include <unistd.h>

#include <cJSON.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "accounting_db/store.hpp"
#include "common/auth.hpp"
#include "common/clock.hpp"
#include "common/container_key.hpp"
#include "common/fd.hpp"
#include "common/hostlist.hpp"
#include "common/json.hpp"
#include "common/tls_files.hpp"
#include "sacct_ext/format.hpp"
#include "sacct_ext/job_source.hpp"
#include "sacct_ext/report.hpp"
#include "sacct_ext/selection.hpp"
#include "sacct_ext/source_config.hpp"
#include "sacct_ext/timeline.hpp"

#ifndef BC_STORE_DEFAULT
#error "BC_STORE_DEFAULT must be defined by the build"
#endif
#ifndef BC_BCACCT_CONFIG_DEFAULT
#error "BC_BCACCT_CONFIG_DEFAULT must be defined by the build"
#endif
#ifndef BC_VERSION
#define BC_VERSION "unknown"
#endif

namespace {

using bc::bcacct::JobSpec;
using bc::bcacct::JobView;
using bc::bcacct::Layout;
using bc::bcacct::Metric;
using bc::bcacct::SourceConfig;
using bc::report::SourceError;

constexpr int kExitOk = 0;
constexpr int kExitNotFound = 1;
constexpr int kExitUsage = 2;
constexpr int kExitStore = 3;
constexpr int kExitFailure = 4;
constexpr int kExitPermission = 5;
constexpr int kExitUnreachable = 6;

constexpr char kHelp[] =
    "Usage: bcacct -j JOBID[,JOBID...] [options]     one or more jobs\n"
    "       bcacct [-S TIME] [-E TIME] [-u USERS] ...  jobs of a time window (default: since midnight)\n"
    "       bcacct --container ID [options]          a Docker container recorded by bc-docker\n"
    "Show the per-process accounting that bubble-chamber recorded, with sacct's options.\n"
    "\n"
    "Selection (sacct's meaning):\n"
    "  -j, --jobs=LIST        job ids: 123, 123.batch (one step), 123+1 (het component), 123_4 (array)\n"
    "  -u, --user=LIST        users (names or uids); default: your own jobs, everyone's for root\n"
    "  -a, --allusers         every user's jobs\n"
    "  -S, --starttime=TIME   jobs running at or after TIME (default without -j: midnight today)\n"
    "  -E, --endtime=TIME     jobs running at or before TIME (default: now)\n"
    "                         TIME: HH:MM[:SS], MMDD[YY], MM/DD[/YY], YYYY-MM-DD[THH:MM[:SS]],\n"
    "                         now[{+|-}COUNT[seconds|minutes|hours|days|weeks]]\n"
    "  -s, --state=LIST       running (r), completed (cd)\n"
    "  -N, --nodelist=LIST    jobs that ran on these nodes (n[01-04] ranges allowed)\n"
    "      --container=ID     a Docker container by its id (12 or more hex digits) or name\n"
    "\n"
    "Output:\n"
    "  -o, --format=FIELDS    fields, e.g. JobID,User,MaxRSS%12,Command%-30 (see --helpformat)\n"
    "  -P, --parsable2        fields separated by '|'\n"
    "  -p, --parsable         every field followed by '|'\n"
    "  -n, --noheader         no header line\n"
    "  -e, --helpformat       list the fields and exit\n"
    "      --json             JSON instead of text\n"
    "      --tree             the process tree\n"
    "      --files [--all]    files each process opened (--all: one row per path for the whole job)\n"
    "      --net              connections each process made\n"
    "      --timeline         a chart of the job over time, as wide as the terminal\n"
    "      --metric=M         what --timeline shows: cpu (default), rss, io, threads\n"
    "      --resolution=R     --timeline's buckets: s, m, h, d (default: the finest still held)\n"
    "      --top=N            the N heaviest processes\n"
    "      --sort=M           what --top ranks by: cpu (default), rss, io, threads\n"
    "      --notes            efficiency notes in plain words, each with its figure (with --json: a\n"
    "                         \"notes\" member); thresholds from $BC_NOTES_CONFIG, else\n"
    "                         " BC_NOTES_CONFIG_DEFAULT
    " when it exists\n"
    "      --seff             seff's summary, then the heaviest processes and the notes\n"
    "\n"
    "Source:\n"
    "      --central=URL      bcd to ask (default: $BC_CENTRAL, else central= in the config file)\n"
    "      --store=PATH       read this node store directly instead of asking bcd\n"
    "      --ca-file=FILE     PEM CA certificate(s) that verify an https bcd, trusted alone (default:\n"
    "                         $BC_CA_FILE, else ca_file= in the config file, else the system's CAs)\n"
    "  Without --store, bcacct asks bcd when a URL is configured, authenticating with munge; if bcd\n"
    "  cannot be reached it warns and reads the local node store ($BC_STORE, else\n"
    "  " BC_STORE_DEFAULT
    ").\n"
    "  Without a URL it reads the local node store. Config file: $BC_BCACCT_CONFIG, else\n"
    "  " BC_BCACCT_CONFIG_DEFAULT
    " (central=URL, ca_file=PATH, munge_socket=PATH, store=PATH,\n"
    "  timeout=SECONDS).\n"
    "\n"
    "  -h, --help             print this help and exit\n"
    "  -V, --version          print the version and exit\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  a job (or container) is not known to the source\n"
    "  2  usage error (bad or conflicting arguments, bad config file or CA file)\n"
    "  3  the store cannot be opened or read\n"
    "  4  any other failure (bcd answered an error or its certificate did not verify, out of memory,\n"
    "     cannot write the output)\n"
    "  5  no permission (bcd refused the credential or the job; the store's files are not readable)\n"
    "  6  bcd unreachable and no local node store to fall back to\n"
    "\n"
    "See bcacct(1).\n";

struct Options {
  std::vector<JobSpec> jobs;
  std::optional<std::string> container;
  bool allusers = false;
  bc::bcacct::Filter filter;
  bool explicit_users = false;
  std::optional<std::string> format;
  Layout layout = Layout::Fixed;
  bool header = true;
  bool rows_requested = false;  // -o, -P, -p or -n: sacct rows rather than the job report
  bool json = false;
  bool tree = false;
  bool files = false, files_all = false, net = false;  // eBPF events (report.cpp)
  bool timeline = false;
  Metric metric = Metric::Cpu;
  std::optional<bc::store::Resolution> resolution;
  std::optional<size_t> top;
  Metric sort = Metric::Cpu;
  bool notes = false;
  bool seff = false;
  std::optional<std::string> store_path;
  std::optional<std::string> central;
  std::optional<std::string> ca_file;
};

struct Parsed {
  std::optional<Options> options;
  int exit_code = kExitOk;
};

bool write_stdout(const std::string& text) {
  if (std::fwrite(text.data(), 1, text.size(), stdout) == text.size() && std::fflush(stdout) == 0) return true;
  std::fprintf(stderr, "bcacct: cannot write output: %s\n", std::strerror(errno));
  return false;
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "bcacct: %s\nTry 'bcacct --help' for more information.\n", message.c_str());
  return kExitUsage;
}

Parsed parse_args(int argc, char** argv) {
  enum {
    kJson = 256,
    kStore,
    kTree,
    kTimeline,
    kMetric,
    kResolution,
    kTop,
    kSort,
    kContainer,
    kCentral,
    kFiles,
    kAll,
    kNet,
    kCaFile,
    kNotes,
    kSeff
  };
  static const struct option kLong[] = {
      {"jobs", required_argument, nullptr, 'j'},
      {"user", required_argument, nullptr, 'u'},
      {"allusers", no_argument, nullptr, 'a'},
      {"starttime", required_argument, nullptr, 'S'},
      {"endtime", required_argument, nullptr, 'E'},
      {"state", required_argument, nullptr, 's'},
      {"nodelist", required_argument, nullptr, 'N'},
      {"format", required_argument, nullptr, 'o'},
      {"parsable2", no_argument, nullptr, 'P'},
      {"parsable", no_argument, nullptr, 'p'},
      {"noheader", no_argument, nullptr, 'n'},
      {"helpformat", no_argument, nullptr, 'e'},
      {"json", no_argument, nullptr, kJson},
      {"tree", no_argument, nullptr, kTree},
      {"timeline", no_argument, nullptr, kTimeline},
      {"metric", required_argument, nullptr, kMetric},
      {"resolution", required_argument, nullptr, kResolution},
      {"top", required_argument, nullptr, kTop},
      {"sort", required_argument, nullptr, kSort},
      {"container", required_argument, nullptr, kContainer},
      {"store", required_argument, nullptr, kStore},
      {"central", required_argument, nullptr, kCentral},
      {"files", no_argument, nullptr, kFiles},
      {"all", no_argument, nullptr, kAll},
      {"net", no_argument, nullptr, kNet},
      {"notes", no_argument, nullptr, kNotes},
      {"seff", no_argument, nullptr, kSeff},
      {"help", no_argument, nullptr, 'h'},
      {"ca-file", required_argument, nullptr, kCaFile},
      {"version", no_argument, nullptr, 'V'},
      {nullptr, 0, nullptr, 0},
  };
  Options o;
  std::optional<std::string> start_text, end_text;
  bool have_metric = false, have_resolution = false, have_sort = false;
  opterr = 0;  // our own messages, without argv[0]
  optind = 1;
  for (;;) {
    const int c = getopt_long(argc, argv, ":j:u:aS:E:s:N:o:PpnehV", kLong, nullptr);
    if (c == -1) break;
    const std::string arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    const auto fail = [](const std::string& message) { return Parsed{std::nullopt, usage_error(message)}; };
    switch (c) {
      case 'j': {
        auto specs = bc::bcacct::parse_job_list(optarg);
        if (auto* error = std::get_if<std::string>(&specs)) return fail(*error);
        for (auto& spec : std::get<std::vector<JobSpec>>(specs)) o.jobs.push_back(std::move(spec));
        break;
      }
      case 'u': {
        auto users = bc::bcacct::split_list(optarg, "user");
        if (auto* error = std::get_if<std::string>(&users)) return fail(*error);
        for (const std::string& u : std::get<std::vector<std::string>>(users)) {
          const bool numeric = u.find_first_not_of("0123456789") == std::string::npos && u.size() < 11;
          o.filter.users.push_back(numeric ? bc::auth::user_name(static_cast<uid_t>(std::stoul(u))) : u);
        }
        o.explicit_users = true;
        break;
      }
      case 'a': o.allusers = true; break;
      case 'S': start_text = optarg; break;
      case 'E': end_text = optarg; break;
      case 's': {
        auto states = bc::bcacct::parse_states(optarg);
        if (auto* error = std::get_if<std::string>(&states)) return fail(*error);
        o.filter.states = std::get<std::vector<bc::bcacct::JobState>>(states);
        break;
      }
      case 'N': {
        auto nodes = bc::expand_hostlist(optarg);
        if (auto* error = std::get_if<std::string>(&nodes)) return fail(*error);
        o.filter.nodes = std::get<std::vector<std::string>>(nodes);
        break;
      }
      case 'o': {
        auto format = bc::bcacct::parse_format(optarg);
        if (auto* error = std::get_if<std::string>(&format)) return fail(*error);
        o.format = optarg;
        o.rows_requested = true;
        break;
      }
      case 'P':
        o.layout = Layout::Parsable2;
        o.rows_requested = true;
        break;
      case 'p':
        o.layout = Layout::Parsable;
        o.rows_requested = true;
        break;
      case 'n':
        o.header = false;
        o.rows_requested = true;
        break;
      case 'e': return {std::nullopt, write_stdout(bc::bcacct::help_format()) ? kExitOk : kExitFailure};
      case kJson: o.json = true; break;
      case kTree: o.tree = true; break;
      case kFiles: o.files = true; break;
      case kAll: o.files_all = true; break;
      case kNet: o.net = true; break;
      case kTimeline: o.timeline = true; break;
      case kNotes: o.notes = true; break;
      case kSeff: o.seff = true; break;
      case kMetric: {
        auto m = bc::bcacct::parse_metric(optarg);
        if (!m) return fail("--metric takes cpu, rss, io or threads, not '" + std::string(optarg) + "'");
        o.metric = *m;
        have_metric = true;
        break;
      }
      case kResolution: {
        auto r = bc::bcacct::parse_resolution(optarg);
        if (!r) return fail("--resolution takes s, m, h or d, not '" + std::string(optarg) + "'");
        o.resolution = r;
        have_resolution = true;
        break;
      }
      case kTop: {
        const std::string t = optarg;
        if (t.empty() || t.size() > 6 || t.find_first_not_of("0123456789") != std::string::npos || std::stoul(t) == 0)
          return fail("--top takes a number of processes from 1, not '" + t + "'");
        o.top = std::stoul(t);
        break;
      }
      case kSort: {
        auto m = bc::bcacct::parse_metric(optarg);
        if (!m) return fail("--sort takes cpu, rss, io or threads, not '" + std::string(optarg) + "'");
        o.sort = *m;
        have_sort = true;
        break;
      }
      case kContainer:
        if (!*optarg) return fail("--container needs an id");
        o.container = optarg;
        break;
      case kStore:
        if (!*optarg) return fail("--store needs a non-empty PATH");
        o.store_path = optarg;
        break;
      case kCentral:
        if (!*optarg) return fail("--central needs a URL");
        o.central = optarg;
        break;
      case kCaFile:
        if (!*optarg) return fail("--ca-file needs a PATH");
        o.ca_file = optarg;
        break;
      case 'h': return {std::nullopt, write_stdout(kHelp) ? kExitOk : kExitFailure};
      case 'V':
        return {std::nullopt, write_stdout("bcacct (bubble-chamber) " BC_VERSION "\n") ? kExitOk : kExitFailure};
      case ':': return fail("option '" + arg + "' requires an argument");
      default:
        if (optopt > 0 && optopt < 128)
          return fail(std::string("invalid option -- '") + static_cast<char>(optopt) + "'");
        return fail("invalid option '" + arg + "'");
    }
  }
  const auto fail = [](const std::string& message) { return Parsed{std::nullopt, usage_error(message)}; };
  if (optind < argc) return fail(std::string("unexpected argument '") + argv[optind] + "'");
  if (o.container && !o.jobs.empty()) return fail("give either -j or --container, not both");
  if (o.store_path && o.central) return fail("give either --store or --central, not both");
  if (o.store_path && o.ca_file) return fail("--ca-file verifies bcd; it does not go with --store");
  // --tree, --files and --net may be combined; each of the others stands alone.
  const bool events = o.tree || o.files || o.net;
  if (int{o.json} + int{events} + int{o.timeline} > 1)
    return fail("--json, --tree/--files/--net and --timeline exclude each other");
  if (o.files_all && !o.files) return fail("--all goes with --files");
  if (o.top && (events || o.timeline))
    return fail("--top lists processes; it does not go with --tree, --files, --net or --timeline");
  if ((have_metric || have_resolution) && !o.timeline) return fail("--metric and --resolution go with --timeline");
  if ((o.notes || o.seff) && (events || o.timeline || o.top || o.rows_requested))
    return fail("--notes and --seff do not go with --tree, --files, --net, --timeline, --top or -o/-P/-p/-n");
  if (o.seff && (o.json || o.notes)) return fail("--seff prints its own summary and notes: it goes alone");
  if (have_sort && !o.top) return fail("--sort goes with --top");
  const bool targeted = !o.jobs.empty() || o.container;
  if ((o.timeline || events || o.top || o.notes || o.seff) && !targeted)
    return fail("--tree, --files, --net, --timeline, --top, --notes and --seff need -j or --container");
  if (o.timeline && (o.jobs.size() > 1 || (o.jobs.size() == 1 && o.jobs[0].step)))
    return fail("--timeline shows one whole job: give one job id");

  const int64_t now_s = bc::epoch_ms() / 1000;
  std::string error;
  if (start_text) {
    auto t = bc::bcacct::parse_sacct_time(*start_text, now_s, error);
    if (!t) return fail(error);
    o.filter.from_ms = *t * 1000;
  }
  if (end_text) {
    auto t = bc::bcacct::parse_sacct_time(*end_text, now_s, error);
    if (!t) return fail(error);
    o.filter.to_ms = *t * 1000 + 999;
  }
  if (!targeted) {
    // sacct without -j: since midnight today, and the caller's own jobs unless root or -a.
    if (!o.filter.from_ms) o.filter.from_ms = *bc::bcacct::parse_sacct_time("midnight", now_s, error) * 1000;
    if (!o.explicit_users && !o.allusers && getuid() != 0) o.filter.users = {bc::auth::user_name(getuid())};
  }
  if (o.filter.from_ms && o.filter.to_ms && *o.filter.to_ms < *o.filter.from_ms)
    return fail("the end time (-E) is before the start time (-S)");
  return {o, kExitOk};
}

// ---- Where the jobs come from: bcd, or the local node store ----

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

// --store: that store only. Otherwise bcd when a URL is configured, falling back to the local store;
// else the local store.
std::unique_ptr<bc::report::JobSource> open_source(const Options& o, const SourceConfig& config) {
  if (o.store_path) return bc::report::open_store_source(*o.store_path);
  std::string store = env("BC_STORE") ? env("BC_STORE") : (!config.store.empty() ? config.store : BC_STORE_DEFAULT);
  std::string central = o.central ? *o.central : env("BC_CENTRAL") ? env("BC_CENTRAL") : config.central;
  if (central.empty() || central == "none") return bc::report::open_store_source(store);
  bc::report::BcdOptions bcd;
  bcd.url = central;
  bcd.ca_file = config.ca_file;
  bcd.munge_socket = env("BC_MUNGE_SOCKET") ? env("BC_MUNGE_SOCKET") : config.munge_socket;
  bcd.timeout_ms = config.timeout_ms;
  bcd.connect_timeout_ms = std::min(config.timeout_ms, 3000L);
  bcd.with_events = o.files || o.net || o.json;
  return bc::report::with_store_fallback(bc::report::open_bcd_source(bcd), store, [](const std::string& why) {
    std::fprintf(stderr, "bcacct: warning: %s\n", why.c_str());
  });
}

int exit_code_of(const SourceError& e) {
  switch (e.kind()) {
    case SourceError::Kind::Store: return kExitStore;
    case SourceError::Kind::Permission: return kExitPermission;
    case SourceError::Kind::Unreachable: return kExitUnreachable;
    case SourceError::Kind::Unsupported:
    case SourceError::Kind::Protocol: return kExitFailure;
  }
  return kExitFailure;
}

// ---- Gathering the jobs ----

JobView make_view(bc::report::JobData data) {
  JobView v;
  v.totals = bc::report::compute_totals(data);
  v.data = std::move(data);
  v.data.processes = bc::report::sorted_processes(std::move(v.data.processes));
  const auto short_id = bc::container::short_id_from_key(v.totals.job_id);
  v.display_id = short_id ? *short_id : bc::report::sacct_job_id(v.totals);
  return v;
}

struct Target {
  uint64_t key = 0;
  std::optional<uint32_t> step;
  std::string shown;                          // "job 123", "container 0123456789ab"
  std::optional<bc::report::JobData> loaded;  // already read while resolving the id
};

// The jobs asked for, or an exit status with the message printed. A container name is looked up among the
// containers the source holds (bc-docker stores the name with each record).
std::variant<std::vector<Target>, int> targets_of(const Options& o, bc::report::JobSource& source) {
  std::vector<Target> targets;
  if (o.container) {
    const std::string& wanted = *o.container;
    const bool hex = wanted.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
    if (const auto key = bc::container::container_key(wanted); key && hex) {
      targets.push_back(
          {*key, std::nullopt, "container " + wanted.substr(0, bc::container::kShortIdLength), std::nullopt});
      return targets;
    }
    const std::string name = wanted[0] == '/' ? wanted.substr(1) : wanted;  // docker inspect's "/name"
    uint64_t found = 0;
    int64_t found_start = 0;
    for (uint64_t id : source.list({})) {
      if (!bc::container::is_container_key(id)) continue;
      auto data = source.load(id);
      if (!data) continue;
      const auto totals = bc::report::compute_totals(*data);
      // A name is reused by a later container: the latest one wins, as docker would resolve it.
      if (totals.container_name == name && totals.start_ms.value_or(0) >= found_start) {
        found = id;
        found_start = totals.start_ms.value_or(0);
      }
    }
    if (!found) {
      std::fprintf(stderr, "bcacct: no container named '%s' in %s (give its id, or a name bc-docker recorded)\n",
                   wanted.c_str(), source.describe().c_str());
      return kExitNotFound;
    }
    targets.push_back({found, std::nullopt, "container " + name, std::nullopt});
    return targets;
  }
  // As sacct: "123_4" is task 4 of job array 123; "123" is job 123 and, when 123 is an array's job id, every
  // task of that array (each task has its own job id; the array's is also the id of one of its tasks).
  for (const JobSpec& spec : o.jobs) {
    // The common case costs one read: a job that is no array's own id is just itself.
    std::optional<bc::report::JobData> self;
    if (!spec.array_task) {
      self = source.load(spec.id);
      if (self && !self->nodes.empty() && self->nodes.front().array_job_id != spec.id) {
        targets.push_back({spec.id, spec.step, "job " + spec.text, std::move(self)});
        continue;
      }
    }
    bc::report::ListQuery tasks;
    tasks.array_job = static_cast<uint32_t>(spec.array_task ? spec.array_base : spec.id);
    tasks.array_task = spec.array_task;
    std::vector<uint64_t> ids = source.list(tasks);
    std::sort(ids.begin(), ids.end());
    // An unknown task is looked up as job 0, which never exists: "not found" like any unknown job.
    if (ids.empty()) ids.push_back(spec.id);
    for (uint64_t id : ids) {
      if (std::any_of(targets.begin(), targets.end(),
                      [&](const Target& t) { return t.key == id && t.step == spec.step; }))
        continue;
      targets.push_back(
          {id, spec.step, "job " + spec.text, id == spec.id ? std::exchange(self, std::nullopt) : std::nullopt});
    }
  }
  return targets;
}

// The config file, and the CA file for an https bcd: --ca-file, else $BC_CA_FILE, else the config file's
// ca_file=. False (said on stderr) when either is unusable.
bool read_config(const Options& o, SourceConfig& config) {
  const char* config_path = env("BC_BCACCT_CONFIG") ? env("BC_BCACCT_CONFIG") : BC_BCACCT_CONFIG_DEFAULT;
  if (auto error = bc::bcacct::read_source_config(config_path, config)) {
    std::fprintf(stderr, "bcacct: %s\n", error->c_str());
    return false;
  }
  std::string ca_setting = "ca_file";
  if (o.ca_file) {
    config.ca_file = *o.ca_file;
    ca_setting = "--ca-file";
  } else if (env("BC_CA_FILE")) {
    config.ca_file = env("BC_CA_FILE");
    ca_setting = "BC_CA_FILE";
  }
  if (std::string error;
      !o.store_path && !config.ca_file.empty() && !bc::auth::check_ca_file(ca_setting, config.ca_file, error)) {
    std::fprintf(stderr, "bcacct: %s\n", error.c_str());
    return false;
  }
  return true;
}

// The jobs to show: the targets named (-j, --container), else those the listing's filters select. Returns the
// exit status so far (kExitNotFound when a target named is not there); SourceError when the source fails.
int collect_views(const Options& o, bc::report::JobSource& source, std::vector<Target>& targets,
                  std::vector<JobView>& views) {
  int status = kExitOk;
  if (!targets.empty()) {
    for (Target& t : targets) {
      auto data = t.loaded ? std::move(t.loaded) : source.load(t.key);
      if (!data) {
        std::fprintf(stderr, "bcacct: %s not found in %s\n", t.shown.c_str(), source.describe().c_str());
        if (status == kExitOk) status = kExitNotFound;
        continue;
      }
      JobView view = make_view(std::move(*data));
      if (!bc::bcacct::matches(o.filter, view.totals)) continue;
      if (t.step) {
        auto& procs = view.data.processes;
        procs.erase(std::remove_if(procs.begin(), procs.end(), [&](const auto& p) { return p.step != *t.step; }),
                    procs.end());
      }
      views.push_back(std::move(view));
    }
    return status;
  }
  bc::report::ListQuery query;
  if (o.filter.users.size() == 1) query.user = o.filter.users.front();
  if (o.filter.states.size() == 1) query.running = o.filter.states.front() == bc::bcacct::JobState::Running;
  if (o.filter.from_ms) query.from_s = *o.filter.from_ms / 1000;
  if (o.filter.to_ms) query.to_s = *o.filter.to_ms / 1000;
  for (uint64_t id : source.list(query)) {
    if (bc::container::is_container_key(id)) continue;  // containers are shown with --container
    auto data = source.load(id);
    if (!data) continue;  // gone since the listing
    JobView view = make_view(std::move(*data));
    if (bc::bcacct::matches(o.filter, view.totals)) views.push_back(std::move(view));
  }
  return status;
}

// The job's document, with its notes when given.
bc::json::Ptr document_of(const JobView& view, const std::vector<bc::job::Note>* notes) {
  bc::json::Ptr doc = bc::job::job_document(view.data);
  if (notes) bc::json::add(doc.get(), "notes", bc::job::notes_json(*notes));
  return doc;
}

std::string document_json(const JobView& view, const std::vector<bc::job::Note>* notes) {
  return bc::json::print(document_of(view, notes).get(), true) + "\n";
}

// Several jobs' documents as {"jobs": [...]}, pretty-printed; with notes (--notes), each its own.
std::string jobs_json(const std::vector<JobView>& views, const std::vector<std::vector<bc::job::Note>>& notes) {
  const bc::json::Ptr root(bc::json::checked(cJSON_CreateObject()));
  cJSON* array = bc::json::checked(cJSON_AddArrayToObject(root.get(), "jobs"));
  for (size_t i = 0; i < views.size(); ++i)
    bc::json::append(array, document_of(views[i], i < notes.size() ? &notes[i] : nullptr).release());
  return bc::json::print(root.get(), true) + "\n";
}

// The thresholds: $BC_NOTES_CONFIG (which must exist), else the default file when it exists, else the
// defaults. nullopt (said on stderr) when the file is unreadable or wrong.
std::optional<bc::job::NoteThresholds> read_note_thresholds() {
  const char* named = env("BC_NOTES_CONFIG");
  const std::string path = named ? named : BC_NOTES_CONFIG_DEFAULT;
  const auto text = bc::read_file(path);
  if (!text) {
    if (!named && errno == ENOENT) return bc::job::NoteThresholds{};
    std::fprintf(stderr, "bcacct: cannot read the notes' thresholds %s: %s\n", path.c_str(), std::strerror(errno));
    return std::nullopt;
  }
  std::vector<std::string> errors;
  const bc::job::NoteThresholds limits = bc::job::parse_note_thresholds(*text, path, errors);
  for (const std::string& e : errors) std::fprintf(stderr, "bcacct: %s\n", e.c_str());
  if (!errors.empty()) return std::nullopt;
  return limits;
}

// A job's notes, with its total over time for the I/O note (summed over nodes).
std::vector<bc::job::Note> notes_of(bc::report::JobSource& source, const JobView& view,
                                    const bc::job::NoteThresholds& limits) {
  bc::job::TotalSeries series;
  if (view.totals.start_ms) {
    const int64_t from_s = *view.totals.start_ms / 1000;
    const int64_t to_s = view.totals.end_ms.value_or(bc::epoch_ms()) / 1000;
    for (const auto& labelled : source.job_series(view.totals.job_id, view.totals.nodes, std::nullopt, from_s, to_s))
      series.add_node(labelled.data.buckets);
  }
  return bc::job::job_notes(view.data, view.totals, series, limits, bc::epoch_ms());
}

int run(int argc, char** argv) {
  const Parsed parsed = parse_args(argc, argv);
  if (!parsed.options) return parsed.exit_code;
  const Options& o = *parsed.options;
  SourceConfig config;
  if (!read_config(o, config)) return kExitUsage;
  std::unique_ptr<bc::report::JobSource> source;
  std::vector<Target> targets;
  std::vector<JobView> views;
  int status = kExitOk;
  try {
    source = open_source(o, config);
    auto target_list = targets_of(o, *source);
    if (const int* code = std::get_if<int>(&target_list)) return *code;
    targets = std::get<std::vector<Target>>(std::move(target_list));
    status = collect_views(o, *source, targets, views);
  } catch (const SourceError& e) {
    std::fprintf(stderr, "bcacct: %s\n", e.what());
    return exit_code_of(e);
  }

  std::vector<std::vector<bc::job::Note>> notes;
  if (o.notes || o.seff) {
    std::optional<bc::job::NoteThresholds> limits = read_note_thresholds();
    if (!limits) return kExitUsage;
    try {
      for (const JobView& v : views) notes.push_back(notes_of(*source, v, *limits));
    } catch (const SourceError& e) {
      std::fprintf(stderr, "bcacct: %s\n", e.what());
      return exit_code_of(e);
    }
  }

  std::string text;
  const bool steps_selected = std::any_of(targets.begin(), targets.end(), [](const Target& t) { return t.step; });
  if (o.top) {
    for (JobView& v : views) v.data.processes = bc::bcacct::top_processes(std::move(v.data.processes), o.sort, *o.top);
  }
  if (o.json) {
    const bool one_job = targets.size() == 1 && !steps_selected && views.size() == 1;
    text = one_job ? document_json(views.front(), o.notes ? &notes.front() : nullptr) : jobs_json(views, notes);
  } else if (o.notes || o.seff) {
    for (size_t i = 0; i < views.size(); ++i) {
      if (i) text += "\n";
      if (o.seff) {
        text += bc::report::format_seff(views[i].data, views[i].totals, notes[i], bc::epoch_ms());
      } else {
        if (views.size() > 1) text += "job " + views[i].display_id + ":\n";
        text += bc::report::format_notes(notes[i]);
      }
    }
  } else if (o.tree || o.files || o.net) {
    for (const JobView& v : views) {
      std::string part;
      if (o.tree) part += bc::report::format_tree(v.data);
      if (o.files) part += (part.empty() ? "" : "\n") + bc::report::format_files(v.data, o.files_all);
      if (o.net) part += (part.empty() ? "" : "\n") + bc::report::format_connections(v.data);
      text += (views.size() > 1 ? "job " + v.display_id + ":\n" : "") + part;
    }
  } else if (o.timeline) {
    for (const JobView& v : views) {
      if (!v.totals.start_ms) {
        std::fprintf(stderr, "bcacct: job %s has no start time: nothing to chart\n", v.display_id.c_str());
        return kExitFailure;
      }
      const int64_t from_s = *v.totals.start_ms / 1000;
      const int64_t to_s = v.totals.end_ms.value_or(bc::epoch_ms()) / 1000;
      std::vector<bc::report::LabelledSeries> series;
      try {
        series = source->job_series(v.totals.job_id, v.totals.nodes, o.resolution, from_s, to_s);
      } catch (const SourceError& e) {
        std::fprintf(stderr, "bcacct: %s\n", e.what());
        return exit_code_of(e);
      }
      text += bc::bcacct::render_timeline(series, o.metric, from_s, to_s, bc::bcacct::terminal_columns());
    }
  } else if (o.rows_requested || targets.empty() || steps_selected || o.top) {
    // sacct rows. With -j (or --top) the default is one row per process, like sacct's step rows.
    const bool per_process_default = !targets.empty();
    bc::bcacct::Format format = o.format ? std::get<bc::bcacct::Format>(bc::bcacct::parse_format(*o.format))
                                         : bc::bcacct::default_format(per_process_default);
    if (o.top) format.per_process = true;
    text = bc::bcacct::render_rows(format, views, o.layout, o.header, bc::epoch_ms());
  } else {
    for (size_t i = 0; i < views.size(); ++i) {
      if (i) text += "\n";
      text += bc::report::format_table(views[i].data, bc::epoch_ms());
    }
  }
  if (!write_stdout(text)) return kExitFailure;
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bcacct: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "bcacct: unexpected error\n");
  }
  return kExitFailure;
}
