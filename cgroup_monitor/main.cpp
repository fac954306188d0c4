// bc-monitor command line. Normally started by the SPANK plugin; can be run by hand for debugging.
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <string>

#include "cgroup_monitor/events_check.hpp"
#include "cgroup_monitor/monitor.hpp"
#include "cgroup_monitor/monitor_args.hpp"

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
    "  --store PATH          node store (default " BC_STORE_DEFAULT
    ")\n"
    "  --run-dir DIR         lock and pid files (default " BC_RUN_DIR_DEFAULT
    ")\n"
    "  --interval SECONDS    sampling interval (default 1, minimum 0.05)\n"
    "  --empty-grace SECONDS exit after the job cgroup has been empty this long (default 3)\n"
    "  --nice N              scheduling niceness, so jobs win the CPU (default 10)\n"
    "  --job-name NAME       Slurm job name, recorded with the job\n"
    "  --job-nodes HOSTLIST  the job's nodes (SLURM_JOB_NODELIST), recorded so that a node whose data\n"
    "                        never arrived is named\n"
    "  --nvml PATH|off       NVML for GPU figures (default libnvidia-ml.so.1, where installed)\n"
    "  --gpus LIST           minor numbers of the job's GPUs (SLURM_JOB_GPUS: 0,2-3)\n"
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

int usage_error(const std::string& message) {
  std::fprintf(stderr, "bc-monitor: %s\nTry 'bc-monitor --help'.\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) try {
  bc::monitor::MonitorOptions defaults;
  defaults.store_path = BC_STORE_DEFAULT;
  defaults.run_dir = BC_RUN_DIR_DEFAULT;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) {
    std::string h(host);
    defaults.node = h.substr(0, h.find('.'));
  }
  std::string error;
  const auto args = bc::monitor::parse_monitor_args(argc, argv, defaults, error);
  if (!args) return usage_error(error);
  using Action = bc::monitor::MonitorArgs::Action;
  switch (args->action) {
    case Action::Help: std::fputs(kUsage, stdout); return 0;
    case Action::Version: std::puts("bc-monitor " BC_VERSION); return 0;
    case Action::CheckEvents: return bc::monitor::check_events(args->options.events, args->json, args->verbose);
    case Action::Run: break;
  }
  return bc::monitor::run_monitor(args->options);
} catch (const std::exception& e) {
  std::fprintf(stderr, "bc-monitor: %s\n", e.what());
  return 1;
}
