// The job model: everything known about one job, its totals, and its one JSON document, which bcd serves,
// bcacct prints (--json) and the web view reads. Built from the store's records of every node.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "accounting_db/store.hpp"
#include "common/json.hpp"

namespace bc::job {

// Everything known about one job.
struct JobData {
  std::vector<store::JobRecord> nodes;                 // one record per node the job ran on
  std::vector<store::ProcessRecord> processes;         // every node
  std::vector<store::FileRecord> files{};              // eBPF events, every node
  std::vector<store::ConnectionRecord> connections{};  // eBPF events, every node
};

struct JobTotals {
  uint64_t job_id = 0;
  std::string user;
  std::vector<std::string> nodes;   // sorted by name
  std::vector<uint32_t> steps;      // union over nodes, in sacct's order (see sort_steps)
  std::optional<int64_t> start_ms;  // earliest node start; nullopt if no node knows it
  // Latest node end; nullopt while any node is still running. A node with no end that has sent nothing
  // since another node ended is not running but missing its end (below).
  std::optional<int64_t> end_ms;
  // Per node: the cgroup's CPU counter when the controller existed, else the sum over its processes.
  uint64_t cpu_ns = 0;
  // Per node: max(peak summed RSS, largest process peak); then the largest node.
  uint64_t max_rss_bytes = 0;
  uint64_t read_bytes = 0;             // sum over processes (/proc/PID/io)
  uint64_t write_bytes = 0;            // sum over processes
  uint64_t samples = 0;                // sum over nodes
  uint64_t monitor_cpu_ns = 0;         // sum over the nodes' monitors
  uint64_t monitor_max_rss_bytes = 0;  // largest of the nodes' monitors
  // Only when every node had the controller: a total over some nodes would look like the job's.
  std::optional<uint64_t> cgroup_mem_peak_bytes;  // largest node peak
  std::optional<uint64_t> cgroup_read_bytes;      // sum over nodes
  std::optional<uint64_t> cgroup_write_bytes;     // sum over nodes
  // What the job asked for (0 / empty when the monitor could not tell).
  std::string name;              // Slurm's job name
  uint32_t alloc_cpus = 0;       // sum over nodes of the job's cpuset size
  uint64_t mem_limit_bytes = 0;  // largest node's memory limit, to set against max_rss_bytes
  int64_t last_sample_ms = 0;    // latest over nodes
  // CPU time / (elapsed x allocated CPUs), elapsed up to the end or, while running, the latest sample.
  std::optional<double> cpu_efficiency;
  // A Docker container (bc-docker), else empty.
  std::string container_id, container_name, container_image;
  // eBPF events: lost events summed over nodes; the reason per node where they did not run ("node: why").
  uint64_t lost_events = 0;
  store::EventLoss lost;
  std::vector<std::string> events_unavailable;
  // A task of a Slurm job array (array_job_id 0 otherwise): sacct's JobID "<array_job_id>_<array_task_id>".
  uint32_t array_job_id = 0;
  uint32_t array_task_id = 0;
  // Batches and samples the nodes gave up shipping to bcd (outbox at its bound), summed over nodes.
  uint64_t unshipped_batches = 0;
  uint64_t unshipped_samples = 0;
  // The job's nodes as Slurm allocated them (the nodes' records' job node lists), sorted; empty when no
  // record has the list. Once the job has ended: the nodes whose data is not all here, by name, with when
  // their last data was taken (0: none arrived, for a node of the list without a record).
  std::vector<std::string> allocated_nodes;
  struct MissingNode {
    std::string node;
    int64_t last_data_ms = 0;
  };
  std::vector<MissingNode> missing_nodes;
  // GPUs (NVML), over nodes: how many, their utilisation weighted by the time each was sampled (nullopt when
  // none was), the sum of their peaks of memory used, the energy they drew, and those lost mid-run.
  uint32_t gpus = 0;
  std::optional<double> gpu_util_percent;
  uint64_t gpu_memory_max_bytes = 0;
  uint64_t gpu_energy_mj = 0;
  uint64_t gpus_lost = 0;

  double cpu_seconds() const { return static_cast<double>(cpu_ns) / 1e9; }
  double monitor_cpu_seconds() const { return static_cast<double>(monitor_cpu_ns) / 1e9; }
};

JobTotals compute_totals(const JobData& job);

// Whether a job with these node records still runs: some node has no end and has sent data since the
// latest end of the others (a node with no end that has not is missing its end: bcd cannot tell a node that
// is late from one that is lost, and a late node's data still lands and makes the job run again).
bool still_running(const std::vector<store::JobRecord>& nodes);

// The job id as sacct prints JobID: "123", or "123_4" for task 4 of job array 123.
std::string sacct_job_id(const JobTotals& t);

// Processes by start time, then pid (then node, then start ticks, so the order is total).
std::vector<store::ProcessRecord> sorted_processes(std::vector<store::ProcessRecord> processes);

// Each step's Slurm tasks, as its processes (on any node) carry them. A step with several ran ranks (an
// srun -n4, an MPI job); the batch script is task 0 of a step of its own.
std::map<uint32_t, std::set<uint32_t>> tasks_per_step(const std::vector<store::ProcessRecord>& processes);
// Whether some step ran more than one task: then tables get a Task column and charts a per-rank view.
bool has_multi_task_step(const std::vector<store::ProcessRecord>& processes);

// sacct's order: batch, extern, interactive, numbered steps ascending, unknown last.
void sort_steps(std::vector<uint32_t>& steps);

// The job's document {"job": {...}, "node_records": [...], "processes": [...], "files": [...],
// "connections": [...]}, the one bcacct --json prints and bcd serves: "job" holds the totals, "node_records"
// each node's record (by node name). without_processes leaves "processes" out (bcd's job header).
json::Ptr job_document(const JobData& job, bool with_processes = true);
// job_document pretty-printed, with a trailing newline.
std::string format_json(const JobData& job);

// "2026-11-24T20:41:07.123Z"
std::string iso_utc_ms(int64_t epoch_ms);
// Like sacct: 1024-based with K/M/G/T/P/E, two decimals unless exact ("0", "1023", "1.50K", "3G").
std::string format_size(uint64_t bytes);
// The same as a JSON string, or null for 0 (not known yet, or still running).
cJSON* time_json(int64_t epoch_ms);

}  // namespace bc::job
