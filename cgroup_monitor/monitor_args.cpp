#include "cgroup_monitor/monitor_args.hpp"

#include <getopt.h>

#include <cstdlib>
#include <cstring>

#include "accounting_db/shipper.hpp"
#include "cgroup_monitor/gpu_sampler.hpp"  // kDefaultLibrary
#include "cgroup_monitor/launch.hpp"
#include "common/key_value.hpp"
#include "common/tls_files.hpp"

namespace bc::monitor {
namespace {

bool parse_number(const char* text, double& out) {
  char* end = nullptr;
  out = std::strtod(text, &end);
  return end != text && *end == '\0';
}

bool parse_unsigned(const char* text, unsigned long long& out) {
  char* end = nullptr;
  if (*text == '-') return false;
  out = std::strtoull(text, &end, 10);
  return end != text && *end == '\0';
}

}  // namespace

std::optional<MonitorArgs> parse_monitor_args(int argc, char** argv, const MonitorOptions& defaults,
                                              std::string& error) {
  MonitorArgs parsed;
  parsed.options = defaults;
  const auto fail = [&error](const std::string& message) -> std::optional<MonitorArgs> {
    error = message;
    return std::nullopt;
  };
  int nice_level = 10;
  enum {
    kJob = 1000,
    kCgroupPath,
    kCgroupVersion,
    kCgroupRoot,
    kUid,
    kNode,
    kStore,
    kRunDir,
    kInterval,
    kGrace,
    kNice,
    kVersion,
    kJobName,
    kJobNodes,
    kNvml,
    kGpus,
    kContainerId,
    kContainerName,
    kContainerImage,
    kBpf,
    kBpfRing,
    kFileBytes,
    kBpfPinDir,
    kCentral,
    kMungeSocket,
    kShipEvery,
    kApiKeyFile,
    kCaFile,
    kArrayJob,
    kArrayTask,
    kOutboxMax,
    kBpfObject,
    kCheckEvents,
    kJson,
    kVerbose
  };
  static const option long_options[] = {{"job", required_argument, nullptr, kJob},
                                        {"cgroup-path", required_argument, nullptr, kCgroupPath},
                                        {"cgroup-version", required_argument, nullptr, kCgroupVersion},
                                        {"cgroup-root", required_argument, nullptr, kCgroupRoot},
                                        {"uid", required_argument, nullptr, kUid},
                                        {"node", required_argument, nullptr, kNode},
                                        {"store", required_argument, nullptr, kStore},
                                        {"run-dir", required_argument, nullptr, kRunDir},
                                        {"interval", required_argument, nullptr, kInterval},
                                        {"empty-grace", required_argument, nullptr, kGrace},
                                        {"nice", required_argument, nullptr, kNice},
                                        {"job-name", required_argument, nullptr, kJobName},
                                        {"job-nodes", required_argument, nullptr, kJobNodes},
                                        {"nvml", required_argument, nullptr, kNvml},
                                        {"gpus", required_argument, nullptr, kGpus},
                                        {"array-job", required_argument, nullptr, kArrayJob},
                                        {"array-task", required_argument, nullptr, kArrayTask},
                                        {"outbox-max-mib", required_argument, nullptr, kOutboxMax},
                                        {"ship-every", required_argument, nullptr, kShipEvery},
                                        {"container-id", required_argument, nullptr, kContainerId},
                                        {"container-name", required_argument, nullptr, kContainerName},
                                        {"container-image", required_argument, nullptr, kContainerImage},
                                        {"bpf", required_argument, nullptr, kBpf},
                                        {"bpf-ring-kib", required_argument, nullptr, kBpfRing},
                                        {"file-bytes", required_argument, nullptr, kFileBytes},
                                        {"bpf-pin-dir", required_argument, nullptr, kBpfPinDir},
                                        {"bpf-object", required_argument, nullptr, kBpfObject},
                                        {"check-events", no_argument, nullptr, kCheckEvents},
                                        {"json", no_argument, nullptr, kJson},
                                        {"verbose", no_argument, nullptr, kVerbose},
                                        {"central", required_argument, nullptr, kCentral},
                                        {"api-key-file", required_argument, nullptr, kApiKeyFile},
                                        {"ca-file", required_argument, nullptr, kCaFile},
                                        {"munge-socket", required_argument, nullptr, kMungeSocket},
                                        {"help", no_argument, nullptr, 'h'},
                                        {"version", no_argument, nullptr, kVersion},
                                        {nullptr, 0, nullptr, 0}};
  int c;
  unsigned long long u = 0;
  double d = 0;
  optind = 0;  // getopt_long starts afresh (glibc), so a process may parse more than once
  while ((c = getopt_long(argc, argv, "h", long_options, nullptr)) != -1) {
    switch (c) {
      case kJob:
        if (!parse_unsigned(optarg, u) || u == 0) return fail("--job needs a positive job id");
        parsed.options.job_id = u;
        break;
      case kCgroupPath: parsed.options.cgroup_relative = optarg; break;
      case kCgroupVersion:
        if (std::string(optarg) != "1" && std::string(optarg) != "2") return fail("--cgroup-version is 1 or 2");
        parsed.options.cgroup_version = optarg[0] - '0';
        break;
      case kCgroupRoot: parsed.options.cgroup_root = optarg; break;
      case kUid:
        if (!parse_unsigned(optarg, u) || u > 0xffffffffULL) return fail("--uid needs a number");
        parsed.options.uid = static_cast<uint32_t>(u);
        break;
      case kNode: parsed.options.node = optarg; break;
      case kStore: parsed.options.store_path = optarg; break;
      case kRunDir: parsed.options.run_dir = optarg; break;
      case kInterval:
        if (!parse_number(optarg, d) || d <= 0) return fail("--interval needs a positive number of seconds");
        parsed.options.interval_s = d;
        break;
      case kGrace:
        if (!parse_number(optarg, d) || d < 0) return fail("--empty-grace needs a number of seconds");
        parsed.options.empty_grace_s = d;
        break;
      case kNice:
        if (!parse_number(optarg, d)) return fail("--nice needs a number");
        nice_level = static_cast<int>(d);
        break;
      case kJobName: parsed.options.job_name = optarg; break;
      case kJobNodes:
        if (std::strlen(optarg) > kMaxJobNodesText) return fail("--job-nodes is longer than 4096 characters");
        parsed.options.job_nodes = optarg;
        break;
      case kNvml:
        if (optarg[0] != '/' && std::strcmp(optarg, "off") != 0 && std::strcmp(optarg, gpu::kDefaultLibrary) != 0)
          return fail("--nvml takes off or an absolute path");
        parsed.options.nvml_library = optarg;
        break;
      case kGpus: parsed.options.gpus = optarg; break;  // read by JobGpus: a bad list must not stop the monitor
      case kArrayJob:
        if (!parse_unsigned(optarg, u) || u == 0 || u > 0xffffffffULL) return fail("--array-job needs a job id");
        parsed.options.array_job_id = static_cast<uint32_t>(u);
        break;
      case kArrayTask:
        if (!parse_unsigned(optarg, u) || u > 0xffffffffULL) return fail("--array-task needs a task number");
        parsed.options.array_task_id = static_cast<uint32_t>(u);
        break;
      case kOutboxMax:
        if (!parse_unsigned(optarg, u) || u == 0 || u > (1ULL << 20))
          return fail("--outbox-max-mib takes 1 to 1048576");
        parsed.options.outbox_max_bytes = u << 20;
        break;
      case kContainerId: parsed.options.container_id = optarg; break;
      case kContainerName: parsed.options.container_name = optarg; break;
      case kContainerImage: parsed.options.container_image = optarg; break;
      case kBpf:
        if (!kv::parse_bool(optarg, parsed.options.events.enabled)) return fail("--bpf takes on or off");
        break;
      case kBpfRing:
        if (!parse_unsigned(optarg, u) || u < 4 || u > (1ULL << 20)) return fail("--bpf-ring-kib takes 4 to 1048576");
        parsed.options.events.ring_bytes = static_cast<size_t>(u) * 1024;
        break;
      case kFileBytes:
        if (!kv::parse_bool(optarg, parsed.options.events.file_bytes)) return fail("--file-bytes takes on or off");
        break;
      case kBpfPinDir:
        if (optarg[0] != '/') return fail("--bpf-pin-dir needs an absolute path");
        parsed.options.events.pin_dir = optarg;
        break;
      case kBpfObject:
        if (optarg[0] != '/') return fail("--bpf-object needs an absolute path");
        parsed.options.events.object_file = optarg;
        break;
      case kCheckEvents: parsed.action = MonitorArgs::Action::CheckEvents; break;
      case kJson: parsed.json = true; break;
      case kVerbose: parsed.verbose = true; break;
      case kCentral: parsed.options.central_url = optarg; break;
      case kCaFile:
        if (!bc::auth::check_ca_file("--ca-file", optarg, error)) return std::nullopt;
        parsed.options.ca_file = optarg;
        break;
      case kShipEvery: {
        double seconds = 0;
        if (!parse_number(optarg, seconds) || !(seconds >= 0 && seconds <= 3600))
          return fail("--ship-every takes seconds between 0 and 3600");
        parsed.options.ship_every_s = seconds;
        break;
      }
      case kApiKeyFile:
        if (!bc::ship::read_api_key_file(optarg, parsed.options.api_key, error)) return std::nullopt;
        break;
      case kMungeSocket: parsed.options.munge_socket = optarg; break;
      case 'h': parsed.action = MonitorArgs::Action::Help; return parsed;
      case kVersion: parsed.action = MonitorArgs::Action::Version; return parsed;
      default: return fail("unknown option");
    }
  }
  if (optind < argc) return fail(std::string("unexpected argument '") + argv[optind] + "'");
  if ((parsed.json || parsed.verbose) && parsed.action != MonitorArgs::Action::CheckEvents)
    return fail("--json and --verbose go with --check-events");
  if (parsed.action == MonitorArgs::Action::CheckEvents) {
    if (parsed.options.job_id != 0) return fail("--check-events takes no job");
    return parsed;
  }
  if (parsed.options.job_id == 0) return fail("--job is required");
  if (parsed.options.cgroup_relative.empty() || parsed.options.cgroup_relative[0] != '/')
    return fail("--cgroup-path is required and must start with '/'");
  if (parsed.options.node.empty()) return fail("cannot tell the node name; pass --node");
  parsed.options.nice = nice_level;
  return parsed;
}

}  // namespace bc::monitor
