// bc-monitor command line. Normally started by the SPANK plugin; can be run by hand for debugging.
#include <getopt.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "accounting_db/shipper.hpp"
#include "cgroup_monitor/events_check.hpp"
#include "cgroup_monitor/monitor.hpp"
#include "common/tls_files.hpp"

namespace {

const char kUsage[] =
    "Usage: bc-monitor --job ID --cgroup-path PATH [options]\n"
    "       bc-monitor --check-events [--json] [--bpf-object FILE] [--verbose]\n"
    "Samples one Slurm job's cgroup and processes on this node into the node store.\n"
    "Started by the bubble-chamber SPANK plugin; exits when the job ends on this node.\n"
    "\n"
    "  --check-events        load the eBPF events now, without a job, and say whether they work on this node:\n"
    "                        the reason when not, each program's verifier cost, load time, kernel, BTF, what\n"
    "                        is remembered. A failed load is remembered on the node and monitors skip it; this\n"
    "                        check tries again on purpose (and forgets the failure when the load works).\n"
    "                        Exit 0 when events work, 1 when not: fit for a node health check\n"
    "  --json                with --check-events: the report as JSON\n"
    "  --verbose             with --check-events: libbpf's own messages on stderr\n"
    "  --job ID              Slurm job id (required)\n"
    "  --cgroup-path PATH    job cgroup path relative to the mount, e.g. /slurm_n1/uid_0/job_42 (required)\n"
    "  --cgroup-version 1|2  which cgroup tree holds the job (default 1)\n"
    "  --cgroup-root DIR     read cgroups below DIR instead of the host's mounts (tests)\n"
    "  --uid UID             job owner (default 0)\n"
    "  --node NAME           node name recorded with the data (default: short hostname)\n"
    "  --store PATH          node store (default " BC_STORE_DEFAULT ")\n"
    "  --run-dir DIR         lock and pid files (default " BC_RUN_DIR_DEFAULT ")\n"
    "  --interval SECONDS    sampling interval (default 1, minimum 0.05)\n"
    "  --empty-grace SECONDS exit after the job cgroup has been empty this long (default 3)\n"
    "  --nice N              scheduling niceness, so jobs win the CPU (default 10)\n"
    "  --job-name NAME       Slurm job name, recorded with the job\n"
    "  --array-job ID        the job is task --array-task N of job array ID (sacct's ID_N)\n"
    "  --array-task N\n"
    "  --container-id ID     a Docker container's full id (bc-docker), with --container-name and\n"
    "  --container-name NAME --container-image IMAGE, recorded with the record\n"
    "  --container-image IMAGE\n"
    "  --bpf on|off          per-process eBPF events: exact process lifecycle, files, connects (default on);\n"
    "                        when they cannot load, sampling goes on and the job record says why\n"
    "  --bpf-ring-kib N      this job's event ring buffer in KiB (default 1024, at least 4)\n"
    "  --file-bytes on|off   count read and written bytes per file (default off; costs more)\n"
    "  --bpf-pin-dir DIR     where the node's shared BPF programs are pinned (default /sys/fs/bpf/bubble-chamber)\n"
    "  --bpf-object FILE     load the BPF programs from FILE instead of the object built in (a rebuilt object,\n"
    "                        or the tests' refused one)\n"
    "  --central URL         also ship every tick to this bcd (http://host:port or https://host:port);\n"
    "                        unshipped data waits in the node store's outbox for the next monitor on this\n"
    "                        node or 'bcadm ship'\n"
    "  --ca-file FILE        PEM CA certificate(s) that verify an https bcd, trusted alone (default: the\n"
    "                        system's CAs); nothing is sent to a bcd whose certificate they do not verify\n"
    "  --munge-socket PATH   munged socket for the shipper's credentials (default: munge's)\n"
    "  --ship-every SECONDS  with --central, send at most once per SECONDS while bcd keeps up (default 0:\n"
    "                        every tick); fewer, bigger requests let one bcd take more nodes, and the live\n"
    "                        view lags by up to SECONDS plus a tick\n"
    "  --outbox-max-mib N    bound of the node store's outbox (default 256); past it the oldest batches are\n"
    "                        given up for shipping (they stay in the node store) and counted as unshipped\n"
    "  --api-key-file FILE   ship with the API key in FILE instead of munge (hosts without munge)\n"
    "  -h, --help            this text\n"
    "  --version             version\n"
    "\n"
    "Signals: SIGUSR1 samples now; SIGTERM takes a final sample and exits.\n"
    "Exit status: 0 done (or another monitor already has the job; with --check-events: events work), 1 runtime\n"
    "error (with --check-events: events do not work), 2 usage error.\n";

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

bool parse_on_off(const std::string& text, bool& out) {
  if (text == "on" || text == "yes" || text == "1" || text == "true") return out = true, true;
  if (text == "off" || text == "no" || text == "0" || text == "false") return out = false, true;
  return false;
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "bc-monitor: %s\nTry 'bc-monitor --help'.\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) try {
  bc::monitor::MonitorOptions opt;
  opt.store_path = BC_STORE_DEFAULT;
  opt.run_dir = BC_RUN_DIR_DEFAULT;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) {
    std::string h(host);
    opt.node = h.substr(0, h.find('.'));
  }
  int nice_level = 10;
  enum { kJob = 1000, kCgroupPath, kCgroupVersion, kCgroupRoot, kUid, kNode, kStore, kRunDir, kInterval,
         kGrace, kNice, kVersion, kJobName, kContainerId, kContainerName, kContainerImage, kBpf, kBpfRing,
         kFileBytes, kBpfPinDir, kCentral, kMungeSocket, kShipEvery,
         kApiKeyFile, kCaFile, kArrayJob, kArrayTask, kOutboxMax, kBpfObject, kCheckEvents, kJson, kVerbose };
  static const option long_options[] = {
      {"job", required_argument, nullptr, kJob},
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
  bool check_events = false, json = false, verbose = false;
  int c;
  unsigned long long u = 0;
  double d = 0;
  while ((c = getopt_long(argc, argv, "h", long_options, nullptr)) != -1) {
    switch (c) {
      case kJob:
        if (!parse_unsigned(optarg, u) || u == 0) return usage_error("--job needs a positive job id");
        opt.job_id = u;
        break;
      case kCgroupPath: opt.cgroup_relative = optarg; break;
      case kCgroupVersion:
        if (std::string(optarg) != "1" && std::string(optarg) != "2") return usage_error("--cgroup-version is 1 or 2");
        opt.cgroup_version = optarg[0] - '0';
        break;
      case kCgroupRoot: opt.cgroup_root = optarg; break;
      case kUid:
        if (!parse_unsigned(optarg, u) || u > 0xffffffffULL) return usage_error("--uid needs a number");
        opt.uid = static_cast<uint32_t>(u);
        break;
      case kNode: opt.node = optarg; break;
      case kStore: opt.store_path = optarg; break;
      case kRunDir: opt.run_dir = optarg; break;
      case kInterval:
        if (!parse_number(optarg, d) || d <= 0) return usage_error("--interval needs a positive number of seconds");
        opt.interval_s = d;
        break;
      case kGrace:
        if (!parse_number(optarg, d) || d < 0) return usage_error("--empty-grace needs a number of seconds");
        opt.empty_grace_s = d;
        break;
      case kNice:
        if (!parse_number(optarg, d)) return usage_error("--nice needs a number");
        nice_level = static_cast<int>(d);
        break;
      case kJobName: opt.job_name = optarg; break;
      case kArrayJob:
        if (!parse_unsigned(optarg, u) || u == 0 || u > 0xffffffffULL) return usage_error("--array-job needs a job id");
        opt.array_job_id = static_cast<uint32_t>(u);
        break;
      case kArrayTask:
        if (!parse_unsigned(optarg, u) || u > 0xffffffffULL) return usage_error("--array-task needs a task number");
        opt.array_task_id = static_cast<uint32_t>(u);
        break;
      case kOutboxMax:
        if (!parse_unsigned(optarg, u) || u == 0 || u > (1ULL << 20)) return usage_error("--outbox-max-mib takes 1 to 1048576");
        opt.outbox_max_bytes = u << 20;
        break;
      case kContainerId: opt.container_id = optarg; break;
      case kContainerName: opt.container_name = optarg; break;
      case kContainerImage: opt.container_image = optarg; break;
      case kBpf:
        if (!parse_on_off(optarg, opt.events.enabled)) return usage_error("--bpf takes on or off");
        break;
      case kBpfRing:
        if (!parse_unsigned(optarg, u) || u < 4 || u > (1ULL << 20)) return usage_error("--bpf-ring-kib takes 4 to 1048576");
        opt.events.ring_bytes = static_cast<size_t>(u) * 1024;
        break;
      case kFileBytes:
        if (!parse_on_off(optarg, opt.events.file_bytes)) return usage_error("--file-bytes takes on or off");
        break;
      case kBpfPinDir:
        if (optarg[0] != '/') return usage_error("--bpf-pin-dir needs an absolute path");
        opt.events.pin_dir = optarg;
        break;
      case kBpfObject:
        if (optarg[0] != '/') return usage_error("--bpf-object needs an absolute path");
        opt.events.object_file = optarg;
        break;
      case kCheckEvents: check_events = true; break;
      case kJson: json = true; break;
      case kVerbose: verbose = true; break;
      case kCentral: opt.central_url = optarg; break;
      case kCaFile: {
        std::string error;
        if (!bc::auth::check_ca_file("--ca-file", optarg, error)) return usage_error(error);
        opt.ca_file = optarg;
        break;
      }
      case kShipEvery: {
        double seconds = 0;
        if (!parse_number(optarg, seconds) || !(seconds >= 0 && seconds <= 3600))
          return usage_error("--ship-every takes seconds between 0 and 3600");
        opt.ship_every_s = seconds;
        break;
      }
      case kApiKeyFile: {
        std::string error;
        if (!bc::ship::read_api_key_file(optarg, opt.api_key, error)) return usage_error(error);
        break;
      }
      case kMungeSocket: opt.munge_socket = optarg; break;
      case 'h': std::fputs(kUsage, stdout); return 0;
      case kVersion: std::puts("bc-monitor " BC_VERSION); return 0;
      default: return usage_error("unknown option");
    }
  }
  if (optind < argc) return usage_error(std::string("unexpected argument '") + argv[optind] + "'");
  if ((json || verbose) && !check_events) return usage_error("--json and --verbose go with --check-events");
  if (check_events) {
    if (opt.job_id != 0) return usage_error("--check-events takes no job");
    return bc::monitor::check_events(opt.events, json, verbose);
  }
  if (opt.job_id == 0) return usage_error("--job is required");
  if (opt.cgroup_relative.empty() || opt.cgroup_relative[0] != '/')
    return usage_error("--cgroup-path is required and must start with '/'");
  if (opt.node.empty()) return usage_error("cannot tell the node name; pass --node");
  opt.nice = nice_level;
  return bc::monitor::run_monitor(opt);
} catch (const std::exception& e) {
  std::fprintf(stderr, "bc-monitor: %s\n", e.what());
  return 1;
}
