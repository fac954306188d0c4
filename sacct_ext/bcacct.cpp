// bcacct: a sacct-like view of one job's per-process accounting.
//
//   bcacct -j JOBID [--store PATH] [--json | --tree | --files [--all] | --net]
//
// Exit status: 0 ok, 1 job not found, 2 usage error, 3 store cannot be opened or read,
// 4 any other failure (out of memory, cannot write the output).
#include <getopt.h>

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
#include <variant>

#include "job_source.hpp"
#include "report.hpp"
#include "store.hpp"

#ifndef BC_STORE_DEFAULT
#error "BC_STORE_DEFAULT must be defined by the build"
#endif
#ifndef BC_VERSION
#define BC_VERSION "unknown"
#endif

namespace {

constexpr int kExitOk = 0;
constexpr int kExitNotFound = 1;
constexpr int kExitUsage = 2;
constexpr int kExitStore = 3;
constexpr int kExitFailure = 4;

constexpr char kHelp[] =
    "Usage: bcacct -j JOBID [--store PATH] [--json | --tree | --files [--all] | --net]\n"
    "Show the per-process accounting that bubble-chamber recorded for a Slurm job.\n"
    "\n"
    "  -j, --jobs=JOBID   the job to show (one numeric job id)\n"
    "      --store=PATH   node store to read (default: $BC_STORE, else " BC_STORE_DEFAULT ")\n"
    "      --json         print one JSON object instead of the table\n"
    "      --tree         print the process tree (parents above children, with argv)\n"
    "      --files        print the files each process opened (eBPF events)\n"
    "      --all          with --files: one row per path for the whole job\n"
    "      --net          print the connections each process made (eBPF events)\n"
    "  -h, --help         print this help and exit\n"
    "  -V, --version      print the version and exit\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  the job is not in the store\n"
    "  2  usage error (bad or missing arguments)\n"
    "  3  the store cannot be opened or read\n"
    "  4  any other failure (out of memory, cannot write the output)\n"
    "\n"
    "See bcacct(1).\n";

struct Options {
  uint64_t job_id = 0;
  std::string store_path;
  bool json = false;
  bool tree = false;
  bool files = false, files_all = false, net = false;
};

// What argument parsing decided: run with options, or exit now with a status.
struct Parsed {
  std::optional<Options> options;
  int exit_code = kExitOk;
};

// Writes everything to stdout and flushes; false (with a message) if it could not.
bool write_stdout(const std::string& text) {
  if (std::fwrite(text.data(), 1, text.size(), stdout) == text.size() && std::fflush(stdout) == 0) return true;
  std::fprintf(stderr, "bcacct: cannot write output: %s\n", std::strerror(errno));
  return false;
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "bcacct: %s\nTry 'bcacct --help' for more information.\n", message.c_str());
  return kExitUsage;
}

// Digits only: no sign, no spaces, no step suffix ("123.batch"), no list ("1,2"). Slurm job ids are
// 32-bit and never 0. Returns the id, or the reason it is not one.
std::variant<uint64_t, std::string> parse_job_id(const std::string& text) {
  if (text.find(',') != std::string::npos) return "only one job id is supported, got '" + text + "'";
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
    return "invalid job id '" + text + "': not a number";
  const size_t first = text.find_first_not_of('0');
  const std::string digits = first == std::string::npos ? "" : text.substr(first);
  if (digits.empty() || digits.size() > 10 || std::stoull(digits) > UINT32_MAX)
    return "invalid job id '" + text + "': out of range 1-" + std::to_string(UINT32_MAX);
  return static_cast<uint64_t>(std::stoull(digits));
}

Parsed parse_args(int argc, char** argv) {
  // -s is sacct's --state, so --store has no short form.
  enum { kOptJson = 256, kOptStore, kOptTree, kOptFiles, kOptAll, kOptNet };
  static const struct option kLong[] = {
      {"jobs", required_argument, nullptr, 'j'}, {"store", required_argument, nullptr, kOptStore},
      {"json", no_argument, nullptr, kOptJson},  {"tree", no_argument, nullptr, kOptTree},  {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, 'V'},    {"files", no_argument, nullptr, kOptFiles},
      {"all", no_argument, nullptr, kOptAll},    {"net", no_argument, nullptr, kOptNet},
      {nullptr, 0, nullptr, 0},
  };
  Options options;
  bool have_job = false;
  std::optional<std::string> store_path;
  opterr = 0;  // our own messages, without argv[0]
  optind = 1;
  for (;;) {
    const int c = getopt_long(argc, argv, ":j:hV", kLong, nullptr);
    if (c == -1) break;
    const std::string arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    switch (c) {
      case 'j': {
        if (have_job) return {std::nullopt, usage_error("only one -j JOBID is supported")};
        const auto id = parse_job_id(optarg);
        if (const auto* error = std::get_if<std::string>(&id)) return {std::nullopt, usage_error(*error)};
        options.job_id = std::get<uint64_t>(id);
        have_job = true;
        break;
      }
      case kOptStore:
        if (!*optarg) return {std::nullopt, usage_error("--store needs a non-empty PATH")};
        store_path = optarg;
        break;
      case kOptJson: options.json = true; break;
      case kOptTree: options.tree = true; break;
      case kOptFiles: options.files = true; break;
      case kOptAll: options.files_all = true; break;
      case kOptNet: options.net = true; break;
      case 'h': return {std::nullopt, write_stdout(kHelp) ? kExitOk : kExitFailure};
      case 'V':
        return {std::nullopt, write_stdout("bcacct (bubble-chamber) " BC_VERSION "\n") ? kExitOk : kExitFailure};
      case ':':
        return {std::nullopt, usage_error(std::string("option ") + (optopt == 'j' ? "-j/--jobs" : "--store") +
                                          " requires an argument")};
      default:
        // A short option has its letter in optopt; a long one (unknown, ambiguous, or given an argument
        // it does not take) is the whole element just consumed.
        if (optopt > 0 && optopt < 128)
          return {std::nullopt, usage_error(std::string("invalid option -- '") + static_cast<char>(optopt) + "'")};
        return {std::nullopt, usage_error("invalid option '" + arg + "'")};
    }
  }
  if (optind < argc) return {std::nullopt, usage_error(std::string("unexpected argument '") + argv[optind] + "'")};
  if (!have_job) return {std::nullopt, usage_error("missing -j JOBID")};
  if (options.files_all && !options.files) return {std::nullopt, usage_error("--all goes with --files")};

  if (store_path) {
    options.store_path = *store_path;
  } else if (const char* env = std::getenv("BC_STORE"); env && *env) {
    options.store_path = env;
  } else {
    options.store_path = BC_STORE_DEFAULT;
  }
  return {options, kExitOk};
}

int run(int argc, char** argv) {
  const Parsed parsed = parse_args(argc, argv);
  if (!parsed.options) return parsed.exit_code;
  const Options& options = *parsed.options;

  std::unique_ptr<bc::report::JobSource> source;
  std::optional<bc::report::JobData> job;
  try {
    source = bc::report::open_store_source(options.store_path);
    job = source->load(options.job_id);
  } catch (const bc::store::StoreError& e) {
    std::fprintf(stderr, "bcacct: %s\n", e.what());
    return kExitStore;
  }
  if (!job) {
    std::fprintf(stderr, "bcacct: job %llu not found in %s\n", static_cast<unsigned long long>(options.job_id),
                 source->describe().c_str());
    return kExitNotFound;
  }

  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  // --json carries the tree, files and connections already, so it wins over --tree, --files and --net.
  std::string text;
  if (options.json) {
    text = bc::report::format_json(*job);
  } else if (options.tree || options.files || options.net) {
    if (options.tree) text += bc::report::format_tree(*job);
    if (options.files) text += (text.empty() ? "" : "\n") + bc::report::format_files(*job, options.files_all);
    if (options.net) text += (text.empty() ? "" : "\n") + bc::report::format_connections(*job);
  } else {
    text = bc::report::format_table(*job, now_ms);
  }
  return write_stdout(text) ? kExitOk : kExitFailure;
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
