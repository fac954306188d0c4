// bc-monitor: one per job per node. Samples the job's cgroup and processes at a fixed interval and
// writes each tick into the node store. Public header of cgroup_monitor/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cgroup_monitor/job_events.hpp"
#include "cgroup_monitor/launch.hpp"

namespace bc::monitor {

struct MonitorOptions {
  uint64_t job_id = 0;
  uint32_t uid = 0;
  std::string node;
  std::string store_path;
  std::string run_dir;  // lock and pid files
  double interval_s = 1.0;
  int cgroup_version = 1;
  std::string cgroup_relative;  // "/slurm_node/uid_1000/job_42"
  std::string cgroup_root;      // overrides the mount points (fixture trees); empty: the host's
  double empty_grace_s = 3.0;   // exit after the job cgroup has had no process this long
  int nice = 10;                // scheduling niceness once the job's tasks no longer wait for the monitor
  std::string job_name;         // recorded in the job record when given
  std::string job_nodes;        // the job's nodes, a Slurm hostlist: recorded when given
  std::string nvml_library = "libnvidia-ml.so.1";  // GPU figures through NVML; "off": none
  std::string gpus;           // the job's GPUs as SLURM_JOB_GPUS lists their minor numbers ("0,2-3"); empty: not known
  uint32_t array_job_id = 0;  // a task of this Slurm job array (0: not an array task)
  uint32_t array_task_id = 0;
  std::string container_id;  // a Docker container (bc-docker): full id, name and image
  std::string container_name;
  std::string container_image;
  EventSettings events;                      // eBPF events; sampling goes on without them if they cannot load
  std::string central_url;                   // ship each tick to this bcd (empty: the node store only)
  std::string ca_file;                       // verifies an https bcd (ship::ShipOptions::ca_file)
  std::string munge_socket;                  // for the shipper's credentials; empty: munge's default
  std::string api_key;                       // ship with this API key instead of munge (Docker hosts)
  uint64_t outbox_max_bytes = 256ULL << 20;  // the outbox's bound (store::OpenOptions::outbox_max_bytes)
  double ship_every_s = 0;                   // ship::ShipOptions::ship_every_s
};

// Runs until the job ends on this node (its cgroup is gone or stays empty), or SIGTERM/SIGINT.
// SIGUSR1 asks for a sample now (the plugin sends it at step end). Returns the process exit code.
int run_monitor(const MonitorOptions& options);

}  // namespace bc::monitor
