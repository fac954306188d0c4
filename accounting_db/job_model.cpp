#include "accounting_db/job_model.hpp"

#include "common/hostlist.hpp"
#include "common/json.hpp"

#include <cJSON.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <tuple>
#include <variant>

namespace bc::job {

using store::JobRecord;
using store::ProcessRecord;

// ---------------------------------------------------------------------------------------------
// Totals

namespace {

int step_rank(uint32_t step) {
  switch (step) {
    case store::kStepBatch: return 0;
    case store::kStepExtern: return 1;
    case store::kStepInteractive: return 2;
    case store::kStepUnknown: return 4;
    default: return 3;
  }
}

struct NodeAcc {
  const JobRecord* record = nullptr;
  uint64_t process_cpu_ns = 0;
  uint64_t process_max_rss = 0;
};

// The allocation from the records' job node lists (each distinct list expanded once; a list that is not a
// hostlist is left out), and once the job has ended, the nodes whose data is not all here.
void add_missing_nodes(const JobData& job, JobTotals& t) {
  std::set<std::string> lists, allocated, recorded;
  for (const JobRecord& r : job.nodes) {
    recorded.insert(r.node);
    if (r.job_nodes.empty() || !lists.insert(r.job_nodes).second) continue;
    const auto names = expand_hostlist(r.job_nodes);
    if (const auto* v = std::get_if<std::vector<std::string>>(&names)) allocated.insert(v->begin(), v->end());
  }
  t.allocated_nodes.assign(allocated.begin(), allocated.end());
  if (!t.end_ms) return;
  for (const JobRecord& r : job.nodes)
    if (r.end_ms == 0) t.missing_nodes.push_back({r.node, r.last_sample_ms});
  for (const std::string& node : allocated)
    if (!recorded.contains(node)) t.missing_nodes.push_back({node, 0});
  std::sort(t.missing_nodes.begin(), t.missing_nodes.end(),
            [](const auto& a, const auto& b) { return a.node < b.node; });
}

}  // namespace

void sort_steps(std::vector<uint32_t>& steps) {
  std::sort(steps.begin(), steps.end(),
            [](uint32_t a, uint32_t b) { return std::make_tuple(step_rank(a), a) < std::make_tuple(step_rank(b), b); });
  steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
}

std::vector<ProcessRecord> sorted_processes(std::vector<ProcessRecord> processes) {
  std::sort(processes.begin(), processes.end(), [](const ProcessRecord& a, const ProcessRecord& b) {
    return std::tie(a.start_ms, a.pid, a.node, a.start_ticks) < std::tie(b.start_ms, b.pid, b.node, b.start_ticks);
  });
  return processes;
}

std::string sacct_job_id(const JobTotals& t) {
  if (t.array_job_id == 0) return std::to_string(t.job_id);
  return std::to_string(t.array_job_id) + "_" + std::to_string(t.array_task_id);
}

bool still_running(const std::vector<JobRecord>& nodes) {
  int64_t latest_end = 0;
  for (const JobRecord& r : nodes) latest_end = std::max(latest_end, r.end_ms);
  return std::any_of(nodes.begin(), nodes.end(), [&](const JobRecord& r) {
    return r.end_ms == 0 && (latest_end == 0 || r.last_sample_ms >= latest_end);
  });
}

JobTotals compute_totals(const JobData& job) {
  JobTotals t;
  std::map<std::string, NodeAcc> per_node;
  uint64_t gpu_util_ns = 0, gpu_busy_ns = 0;

  for (const JobRecord& r : job.nodes) {
    if (t.job_id == 0) t.job_id = r.job_id;
    if (t.user.empty()) t.user = r.user;
    per_node[r.node].record = &r;
    t.steps.insert(t.steps.end(), r.steps.begin(), r.steps.end());
    if (r.start_ms != 0 && (!t.start_ms || r.start_ms < *t.start_ms)) t.start_ms = r.start_ms;
    t.samples += r.sample_count;
    t.monitor_cpu_ns += r.monitor_cpu_ns;
    t.monitor_max_rss_bytes = std::max(t.monitor_max_rss_bytes, r.monitor_max_rss);
    if (t.name.empty()) t.name = r.job_name;
    t.alloc_cpus += r.alloc_cpus;
    t.mem_limit_bytes = std::max(t.mem_limit_bytes, r.mem_limit_bytes);
    t.last_sample_ms = std::max(t.last_sample_ms, r.last_sample_ms);
    if (t.container_id.empty() && !r.container_id.empty()) {
      t.container_id = r.container_id;
      t.container_name = r.container_name;
      t.container_image = r.container_image;
    }
    t.lost += r.lost;
    t.lost_events += r.lost_events;
    if (t.array_job_id == 0 && r.array_job_id != 0) {
      t.array_job_id = r.array_job_id;
      t.array_task_id = r.array_task_id;
    }
    t.unshipped_batches += r.unshipped_batches;
    t.unshipped_samples += r.unshipped_samples;
    for (const store::JobGpu& g : r.gpus) {
      ++t.gpus;
      t.gpu_memory_max_bytes += g.memory_max;
      t.gpu_energy_mj += g.energy_mj;
      gpu_util_ns += g.util_ns;
      gpu_busy_ns += g.busy_ns;
    }
    t.gpus_lost += r.gpus_lost;
    if (!r.events_unavailable.empty()) t.events_unavailable.push_back(r.node + ": " + r.events_unavailable);
  }
  for (const ProcessRecord& p : job.processes) {
    if (t.job_id == 0) t.job_id = p.job_id;
    NodeAcc& acc = per_node[p.node];
    acc.process_cpu_ns += p.cpu_ns;
    acc.process_max_rss = std::max(acc.process_max_rss, p.max_rss);
    t.read_bytes += p.read_bytes;
    t.write_bytes += p.write_bytes;
    if (p.step != store::kStepUnknown) t.steps.push_back(p.step);
  }
  sort_steps(t.steps);

  for (const auto& [name, acc] : per_node) {
    t.nodes.push_back(name);
    const JobRecord* r = acc.record;
    t.cpu_ns += (r && r->has_cgroup_cpu) ? r->cgroup_cpu_ns : acc.process_cpu_ns;
    t.max_rss_bytes = std::max({t.max_rss_bytes, r ? r->max_rss_sum : 0, acc.process_max_rss});
  }

  if (!job.nodes.empty()) {
    const auto all = [&](bool JobRecord::*flag) {
      return std::all_of(job.nodes.begin(), job.nodes.end(), [&](const JobRecord& r) { return r.*flag; });
    };
    int64_t end = 0;
    uint64_t mem_peak = 0, cg_read = 0, cg_write = 0;
    for (const JobRecord& r : job.nodes) {
      end = std::max(end, r.end_ms);
      mem_peak = std::max(mem_peak, r.cgroup_mem_peak);
      cg_read += r.cgroup_read_bytes;
      cg_write += r.cgroup_write_bytes;
    }
    if (!still_running(job.nodes)) t.end_ms = end;
    const int64_t until = t.end_ms ? *t.end_ms : t.last_sample_ms;
    if (t.alloc_cpus && t.start_ms && until > *t.start_ms)
      t.cpu_efficiency = static_cast<double>(t.cpu_ns) / 1e6 / static_cast<double>(until - *t.start_ms) / t.alloc_cpus;
    if (gpu_util_ns) t.gpu_util_percent = 100.0 * static_cast<double>(gpu_busy_ns) / static_cast<double>(gpu_util_ns);
    if (all(&JobRecord::has_cgroup_memory)) t.cgroup_mem_peak_bytes = mem_peak;
    if (all(&JobRecord::has_cgroup_io)) {
      t.cgroup_read_bytes = cg_read;
      t.cgroup_write_bytes = cg_write;
    }
  }
  add_missing_nodes(job, t);
  return t;
}

// ---------------------------------------------------------------------------------------------
// Small formatters

std::string format_size(uint64_t bytes) {
  static constexpr char kUnits[] = {'\0', 'K', 'M', 'G', 'T', 'P', 'E'};
  if (bytes < 1024) return std::to_string(bytes);
  unsigned unit = 0;
  double value = static_cast<double>(bytes);
  while (value >= 1024.0 && unit + 1 < sizeof kUnits) {
    value /= 1024.0;
    ++unit;
  }
  // 1048575 bytes is 1023.999K: print "1.00M", not "1024.00K".
  if (std::round(value * 100.0) / 100.0 >= 1024.0 && unit + 1 < sizeof kUnits) {
    value /= 1024.0;
    ++unit;
  }
  const uint64_t unit_bytes = uint64_t{1} << (10 * unit);
  char buf[32];
  if (bytes % unit_bytes == 0)
    std::snprintf(buf, sizeof buf, "%llu%c", static_cast<unsigned long long>(bytes / unit_bytes), kUnits[unit]);
  else std::snprintf(buf, sizeof buf, "%.2f%c", value, kUnits[unit]);
  return buf;
}

std::map<uint32_t, std::set<uint32_t>> tasks_per_step(const std::vector<store::ProcessRecord>& processes) {
  std::map<uint32_t, std::set<uint32_t>> out;
  for (const auto& p : processes)
    if (p.task != store::kTaskUnknown) out[p.step].insert(p.task);
  return out;
}

bool has_multi_task_step(const std::vector<store::ProcessRecord>& processes) {
  const auto steps = tasks_per_step(processes);
  return std::any_of(steps.begin(), steps.end(), [](const auto& step) { return step.second.size() > 1; });
}

std::string iso_utc_ms(int64_t epoch_ms) {
  int64_t sec = epoch_ms / 1000, ms = epoch_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    sec -= 1;
  }
  const time_t t = static_cast<time_t>(sec);
  struct tm tm {};
  char date[48];
  if (!gmtime_r(&t, &tm) || std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) == 0) return "Invalid";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s.%03dZ", date, static_cast<int>(ms));
  return buf;
}

// ---------------------------------------------------------------------------------------------
// JSON

namespace {

using Json = json::Ptr;

using json::add;
using json::append;
using json::checked;

cJSON* number(uint64_t v) { return json::count(v); }  // exact past 10^15 (a container's key)
cJSON* number(double v) { return cJSON_CreateNumber(v); }
using json::string;

cJSON* string_array(const std::vector<std::string>& items) {
  Json array(checked(cJSON_CreateArray()));
  for (const auto& item : items) append(array.get(), string(item));
  return array.release();
}

cJSON* step_names(const std::vector<uint32_t>& steps) {
  std::vector<std::string> names;
  for (uint32_t s : steps) names.push_back(store::step_name(s));
  return string_array(names);
}

cJSON* loss_object(const store::EventLoss& lost) {
  Json causes(checked(cJSON_CreateObject()));
  add(causes.get(), "ring", number(lost.ring));
  add(causes.get(), "files", number(lost.files));
  add(causes.get(), "connections", number(lost.connections));
  add(causes.get(), "tracked", number(lost.tracked));
  add(causes.get(), "unreadable", number(lost.unreadable));
  add(causes.get(), "monitor", number(lost.monitor));
  add(causes.get(), "late", number(lost.late));
  return causes.release();
}

cJSON* seconds(uint64_t ns) { return number(static_cast<double>(ns) / 1e9); }

// A counter of a cgroup controller, null where the controller did not exist for the job on that node.
cJSON* counter_or_null(bool present, uint64_t value) { return present ? number(value) : cJSON_CreateNull(); }

cJSON* job_object(const JobTotals& t) {
  Json o(checked(cJSON_CreateObject()));
  cJSON* j = o.get();
  add(j, "id", number(t.job_id));
  add(j, "job_id", string(sacct_job_id(t)));  // sacct's JobID ("123_4" for an array task)
  if (t.array_job_id == 0) {
    add(j, "array", cJSON_CreateNull());
  } else {
    Json a(checked(cJSON_CreateObject()));
    add(a.get(), "job_id", number(uint64_t{t.array_job_id}));
    add(a.get(), "task_id", number(uint64_t{t.array_task_id}));
    add(j, "array", a.release());
  }
  add(j, "user", string(t.user));
  add(j, "nodes", string_array(t.nodes));
  add(j, "start", time_json(t.start_ms.value_or(0)));
  add(j, "end", time_json(t.end_ms.value_or(0)));
  add(j, "cpu_seconds", number(t.cpu_seconds()));
  add(j, "max_rss_bytes", number(t.max_rss_bytes));
  add(j, "read_bytes", number(t.read_bytes));
  add(j, "write_bytes", number(t.write_bytes));
  add(j, "steps", step_names(t.steps));
  add(j, "samples", number(t.samples));
  add(j, "monitor_cpu_seconds", number(t.monitor_cpu_seconds()));
  add(j, "monitor_max_rss_bytes", number(t.monitor_max_rss_bytes));
  if (t.cgroup_mem_peak_bytes) add(j, "cgroup_mem_peak_bytes", number(*t.cgroup_mem_peak_bytes));
  if (t.cgroup_read_bytes) add(j, "cgroup_read_bytes", number(*t.cgroup_read_bytes));
  if (t.cgroup_write_bytes) add(j, "cgroup_write_bytes", number(*t.cgroup_write_bytes));
  add(j, "name", string(t.name));
  add(j, "alloc_cpus", number(uint64_t{t.alloc_cpus}));
  add(j, "mem_limit_bytes", t.mem_limit_bytes ? number(t.mem_limit_bytes) : cJSON_CreateNull());
  add(j, "cpu_efficiency", t.cpu_efficiency ? cJSON_CreateNumber(*t.cpu_efficiency) : cJSON_CreateNull());
  if (t.container_id.empty()) {
    add(j, "container", cJSON_CreateNull());
  } else {
    Json c(checked(cJSON_CreateObject()));
    add(c.get(), "id", string(t.container_id));
    add(c.get(), "short_id", string(t.container_id.substr(0, 12)));
    add(c.get(), "name", string(t.container_name));
    add(c.get(), "image", string(t.container_image));
    add(j, "container", c.release());
  }
  add(j, "lost_events", number(t.lost_events));
  add(j, "lost_events_by_cause", loss_object(t.lost));
  add(j, "unshipped_batches", number(t.unshipped_batches));
  add(j, "unshipped_samples", number(t.unshipped_samples));
  add(j, "allocated_nodes", string_array(t.allocated_nodes));
  add(j, "gpus", number(uint64_t{t.gpus}));
  add(j, "gpu_util_percent", t.gpu_util_percent ? number(*t.gpu_util_percent) : cJSON_CreateNull());
  add(j, "gpu_memory_max_bytes", number(t.gpu_memory_max_bytes));
  add(j, "gpu_energy_joules", number(static_cast<double>(t.gpu_energy_mj) / 1e3));
  add(j, "gpus_lost", number(t.gpus_lost));
  Json missing(checked(cJSON_CreateArray()));
  for (const auto& m : t.missing_nodes) {
    Json node(checked(cJSON_CreateObject()));
    add(node.get(), "node", string(m.node));
    add(node.get(), "last_data", time_json(m.last_data_ms));  // null: nothing arrived from it
    cJSON_AddItemToArray(missing.get(), node.release());
  }
  add(j, "missing_nodes", missing.release());
  // null when events ran on every node; else "node: events unavailable: <reason>" per node, joined by "; ".
  std::string unavailable;
  for (const std::string& reason : t.events_unavailable) unavailable += (unavailable.empty() ? "" : "; ") + reason;
  add(j, "events_unavailable", t.events_unavailable.empty() ? cJSON_CreateNull() : string(unavailable));
  return o.release();
}

// A GPU of one node's record: what bcacct --json lists in "gpus" and node_records carry.
cJSON* gpu_object(const std::string& node, const store::JobGpu& g) {
  Json o(checked(cJSON_CreateObject()));
  cJSON* j = o.get();
  add(j, "node", string(node));
  add(j, "uuid", string(g.uuid));
  add(j, "parent_uuid", g.parent_uuid.empty() ? cJSON_CreateNull() : string(g.parent_uuid));
  add(j, "minor", g.minor == UINT32_MAX ? cJSON_CreateNull() : number(uint64_t{g.minor}));
  add(j, "allocated", cJSON_CreateBool(g.allocated));
  add(j, "memory_total_bytes", number(g.memory_total));
  add(j, "memory_max_bytes", number(g.memory_max));
  add(j, "util_percent", g.util_ns ? number(g.util_percent()) : cJSON_CreateNull());
  add(j, "power_watts", g.power_ns ? number(g.power_watts()) : cJSON_CreateNull());
  add(j, "energy_joules", number(static_cast<double>(g.energy_mj) / 1e3));
  // As stored, so that a reader of the document has the record back (bcacct reading from bcd).
  add(j, "util_ns", number(g.util_ns));
  add(j, "busy_ns", number(g.busy_ns));
  add(j, "power_ns", number(g.power_ns));
  add(j, "energy_mj", number(g.energy_mj));
  return o.release();
}

// A node's record as stored, so a reader of the document (bcacct from bcd) has the job's records, not only
// their totals.
cJSON* node_record_object(const JobRecord& r) {
  Json o(checked(cJSON_CreateObject()));
  cJSON* j = o.get();
  add(j, "node", string(r.node));
  add(j, "uid", number(uint64_t{r.uid}));
  add(j, "user", string(r.user));
  add(j, "steps", step_names(r.steps));
  add(j, "start", time_json(r.start_ms));
  add(j, "end", time_json(r.end_ms));
  add(j, "last_sample", time_json(r.last_sample_ms));
  add(j, "cgroup_version", number(uint64_t{r.cgroup_version}));
  add(j, "cgroup_cpu_seconds", r.has_cgroup_cpu ? seconds(r.cgroup_cpu_ns) : cJSON_CreateNull());
  add(j, "cgroup_mem_current_bytes", counter_or_null(r.has_cgroup_memory, r.cgroup_mem_current));
  add(j, "cgroup_mem_peak_bytes", counter_or_null(r.has_cgroup_memory, r.cgroup_mem_peak));
  add(j, "cgroup_read_bytes", counter_or_null(r.has_cgroup_io, r.cgroup_read_bytes));
  add(j, "cgroup_write_bytes", counter_or_null(r.has_cgroup_io, r.cgroup_write_bytes));
  add(j, "max_rss_sum_bytes", number(r.max_rss_sum));
  add(j, "samples", number(r.sample_count));
  add(j, "monitor_cpu_seconds", seconds(r.monitor_cpu_ns));
  add(j, "monitor_max_rss_bytes", number(r.monitor_max_rss));
  add(j, "events_unavailable", string(r.events_unavailable));
  add(j, "lost_events", number(r.lost_events));
  add(j, "lost_events_by_cause", loss_object(r.lost));
  add(j, "job_name", string(r.job_name));
  add(j, "alloc_cpus", number(uint64_t{r.alloc_cpus}));
  add(j, "mem_limit_bytes", number(r.mem_limit_bytes));
  add(j, "container_id", string(r.container_id));
  add(j, "container_name", string(r.container_name));
  add(j, "container_image", string(r.container_image));
  add(j, "array_job_id", number(uint64_t{r.array_job_id}));
  add(j, "array_task_id", number(uint64_t{r.array_task_id}));
  add(j, "unshipped_batches", number(r.unshipped_batches));
  add(j, "unshipped_samples", number(r.unshipped_samples));
  add(j, "job_nodes", string(r.job_nodes));
  Json gpus(checked(cJSON_CreateArray()));
  for (const store::JobGpu& g : r.gpus) append(gpus.get(), gpu_object(r.node, g));
  add(j, "gpus", gpus.release());
  add(j, "gpus_lost", number(r.gpus_lost));
  return o.release();
}

cJSON* process_object(const ProcessRecord& p) {
  Json o(checked(cJSON_CreateObject()));
  cJSON* j = o.get();
  add(j, "pid", number(uint64_t{p.pid}));
  add(j, "ppid", number(uint64_t{p.ppid}));
  add(j, "node", string(p.node));
  add(j, "step", string(store::step_name(p.step)));
  add(j, "command", string(p.command));
  add(j, "exe", string(p.exe));
  add(j, "argv", string_array(p.argv));
  add(j, "start", time_json(p.start_ms));
  add(j, "end", time_json(p.end_ms));
  add(j, "cpu_seconds", seconds(p.cpu_ns));
  add(j, "max_rss_bytes", number(p.max_rss));
  add(j, "read_bytes", number(p.read_bytes));
  add(j, "write_bytes", number(p.write_bytes));
  add(j, "max_threads", number(uint64_t{p.max_threads}));
  add(j, "gpu_memory_max_bytes", number(p.gpu_memory_max));
  add(j, "gpu_sm_seconds", seconds(p.gpu_sm_ns));
  // The Slurm task (rank) it is or descends from: null outside a task, or when not known.
  add(j, "task", p.task == store::kTaskUnknown ? cJSON_CreateNull() : number(uint64_t{p.task}));
  // Exit status from the eBPF exit event: null when it was not seen (sampling only, or still running).
  add(j, "exit_code", p.exited ? cJSON_CreateNumber(p.exit_code) : cJSON_CreateNull());
  add(j, "exit_signal", p.exited ? cJSON_CreateNumber(p.exit_signal) : cJSON_CreateNull());
  add(j, "core_dumped", cJSON_CreateBool(p.core_dumped));
  add(j, "argv_truncated", cJSON_CreateBool(p.argv_truncated));
  add(j, "exact", cJSON_CreateBool(p.exact));
  return o.release();
}

cJSON* file_object(const store::FileRecord& f) {
  Json o(checked(cJSON_CreateObject()));
  cJSON* j = o.get();
  add(j, "pid", number(uint64_t{f.pid}));
  add(j, "node", string(f.node));
  add(j, "path", string(f.path));
  add(j, "flags", string(store::file_flags_text(f.flags)));
  add(j, "first_open", time_json(f.first_ms));
  add(j, "opens", number(f.opens));
  add(j, "failed", number(f.failed));
  add(j, "read_bytes", number(f.read_bytes));
  add(j, "write_bytes", number(f.write_bytes));
  return o.release();
}

cJSON* connection_object(const store::ConnectionRecord& c) {
  Json o(checked(cJSON_CreateObject()));
  cJSON* j = o.get();
  add(j, "pid", number(uint64_t{c.pid}));
  add(j, "node", string(c.node));
  add(j, "address", string(c.address));
  add(j, "port", number(uint64_t{c.port}));
  add(j, "protocol", string(c.protocol));
  add(j, "first_connect", time_json(c.first_ms));
  add(j, "count", number(c.count));
  add(j, "failed", number(c.failed));
  return o.release();
}

}  // namespace

cJSON* time_json(int64_t epoch_ms) {
  return json::checked(epoch_ms == 0 ? cJSON_CreateNull() : json::string(iso_utc_ms(epoch_ms)));
}

json::Ptr job_document(const JobData& job, bool with_processes) {
  Json root(checked(cJSON_CreateObject()));
  add(root.get(), "job", job_object(compute_totals(job)));
  Json records(checked(cJSON_CreateArray()));
  std::vector<const JobRecord*> by_node;
  for (const JobRecord& r : job.nodes) by_node.push_back(&r);
  std::sort(by_node.begin(), by_node.end(), [](const JobRecord* a, const JobRecord* b) { return a->node < b->node; });
  for (const JobRecord* r : by_node) append(records.get(), node_record_object(*r));
  add(root.get(), "node_records", records.release());
  Json gpus(checked(cJSON_CreateArray()));
  for (const JobRecord* r : by_node)
    for (const store::JobGpu& g : r->gpus) append(gpus.get(), gpu_object(r->node, g));
  add(root.get(), "gpus", gpus.release());
  if (with_processes) {
    Json processes(checked(cJSON_CreateArray()));
    for (const ProcessRecord& p : sorted_processes(job.processes)) append(processes.get(), process_object(p));
    add(root.get(), "processes", processes.release());
  }
  Json files(checked(cJSON_CreateArray()));
  for (const auto& f : job.files) append(files.get(), file_object(f));
  add(root.get(), "files", files.release());
  Json connections(checked(cJSON_CreateArray()));
  for (const auto& c : job.connections) append(connections.get(), connection_object(c));
  add(root.get(), "connections", connections.release());
  return root;
}

std::string format_json(const JobData& job) { return json::print(job_document(job).get(), true) + "\n"; }

}  // namespace bc::job
