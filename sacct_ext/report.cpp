#include "sacct_ext/report.hpp"

#include <functional>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <tuple>

namespace bc::report {

using store::ProcessRecord;

std::string format_duration(int64_t seconds) {
  seconds = std::max<int64_t>(seconds, 0);
  const long long days = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60, s = seconds % 60;
  char buf[48];
  if (days > 0) std::snprintf(buf, sizeof buf, "%lld-%02lld:%02lld:%02lld", days, h, m, s);
  else std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", h, m, s);
  return buf;
}

std::string local_time(int64_t epoch_ms) {
  if (epoch_ms == 0) return "Unknown";
  int64_t sec = epoch_ms / 1000;
  if (epoch_ms % 1000 < 0) sec -= 1;
  const time_t t = static_cast<time_t>(sec);
  struct tm tm {};
  char buf[48];
  if (!localtime_r(&t, &tm) || std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm) == 0) return "Invalid";
  return buf;
}

namespace {

// Safe for a terminal: valid UTF-8 and no control characters.
std::string printable(std::string_view s) {
  std::string out = valid_utf8(s);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return out;
}

size_t display_width(const std::string& s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string pad(const std::string& s, size_t width, bool right) {
  const size_t w = display_width(s);
  if (w >= width) return s;
  return right ? std::string(width - w, ' ') + s : s + std::string(width - w, ' ');
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

std::string fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

// "HH:MM:SS.mmm" (or "D-HH:MM:SS.mmm"), like sacct's TotalCPU.
std::string cpu_time(uint64_t ns) {
  const uint64_t ms = ns / 1000000;
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03u", static_cast<unsigned>(ms % 1000));
  return format_duration(static_cast<int64_t>(ms / 1000)) + frac;
}

struct Column {
  const char* title;
  bool right;
};

std::string render_table(const std::vector<Column>& columns, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const Column& c : columns) widths.push_back(display_width(c.title));
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], display_width(row[i]));
  std::string out;
  const auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (size_t i = 0; i < columns.size(); ++i) {
      if (i) text += "  ";
      const std::string& cell = i < cells.size() ? cells[i] : std::string();
      text += pad(cell, widths[i], columns[i].right);
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text + "\n";
  };
  std::vector<std::string> titles, rules;
  for (size_t i = 0; i < columns.size(); ++i) {
    titles.emplace_back(columns[i].title);
    rules.emplace_back(widths[i], '-');
  }
  line(titles);
  line(rules);
  for (const auto& row : rows) line(row);
  return out;
}

}  // namespace

std::string threads_text(const ProcessRecord& p) { return p.max_threads ? std::to_string(p.max_threads) : "-"; }

std::string terminal_safe(std::string_view s) { return printable(s); }
std::string format_cpu_time(uint64_t ns) { return cpu_time(ns); }
std::string join_strings(const std::vector<std::string>& items, const char* sep) { return join(items, sep); }
std::string exit_text(const ProcessRecord& p) {
  if (!p.exited) return "";
  std::string text = p.exit_signal ? "0:" + std::to_string(p.exit_signal) : std::to_string(p.exit_code) + ":0";
  return p.core_dumped ? text + "+core" : text;
}

namespace {
// "0", or "12 (ring 10, files 2)": the total and its non-zero causes.
std::string lost_text(const JobTotals& t) {
  std::vector<std::string> causes;
  const std::pair<const char*, uint64_t> by_cause[] = {
      {"ring", t.lost.ring},       {"files", t.lost.files},           {"connections", t.lost.connections},
      {"tracked", t.lost.tracked}, {"unreadable", t.lost.unreadable}, {"monitor", t.lost.monitor},
      {"late", t.lost.late}};
  for (const auto& [name, n] : by_cause)
    if (n) causes.push_back(std::string(name) + " " + std::to_string(n));
  return std::to_string(t.lost_events) + (causes.empty() ? "" : " (" + join(causes, ", ") + ")");
}
}  // namespace

std::string format_table(const JobData& job, int64_t now_ms) {
  const JobTotals t = compute_totals(job);
  std::vector<std::string> step_names;
  for (uint32_t s : t.steps) step_names.push_back(store::step_name(s));

  std::string elapsed = "Unknown";
  if (t.start_ms) elapsed = format_duration((t.end_ms.value_or(now_ms) - *t.start_ms) / 1000);

  std::vector<std::pair<std::string, std::string>> header = {
      {"JobID", sacct_job_id(t)},
      {"User", t.user.empty() ? "Unknown" : printable(t.user)},
      {"NodeList", printable(join(t.nodes, ","))},
      {"Steps", join(step_names, ",")},
      {"Start", t.start_ms ? local_time(*t.start_ms) : "Unknown"},
      {"End", t.end_ms ? local_time(*t.end_ms) : "Running"},
      {"Elapsed", elapsed},
      {"TotalCPU", cpu_time(t.cpu_ns)},
      {"MaxRSS", format_size(t.max_rss_bytes)},
      {"Read", format_size(t.read_bytes)},
      {"Write", format_size(t.write_bytes)},
  };
  if (t.array_job_id != 0) header.insert(header.begin() + 1, {"JobIDRaw", std::to_string(t.job_id)});
  if (!t.container_id.empty()) {
    // A container is known by its name, short id and image; its key in the store means nothing to a user.
    header.erase(header.begin());
    header.insert(header.begin(), {{"Container", t.container_name.empty() ? "(no name)" : printable(t.container_name)},
                                   {"ContainerID", printable(t.container_id.substr(0, 12))},
                                   {"Image", t.container_image.empty() ? "Unknown" : printable(t.container_image)}});
  }
  if (t.cgroup_mem_peak_bytes) header.emplace_back("CgroupMemPeak", format_size(*t.cgroup_mem_peak_bytes));
  if (t.cgroup_read_bytes) header.emplace_back("CgroupRead", format_size(*t.cgroup_read_bytes));
  if (t.cgroup_write_bytes) header.emplace_back("CgroupWrite", format_size(*t.cgroup_write_bytes));
  // One line per GPU: "GPU: GPU-1a2b… (n1, minor 0): util 54.0%, memory peak 31.50G of 80G, 212 W".
  for (const store::JobRecord& r : job.nodes)
    for (const store::JobGpu& g : r.gpus) {
      std::string text = printable(g.uuid) + " (" + printable(r.node) +
                         (g.minor == UINT32_MAX ? "" : ", minor " + std::to_string(g.minor)) +
                         (g.allocated ? "" : ", not allocated: a process of the job ran on it") + "): ";
      text += g.util_ns ? "util " + fixed(g.util_percent(), 1) + "%" : "util not reported";
      text += ", memory peak " + format_size(g.memory_max) + " of " + format_size(g.memory_total);
      if (g.power_ns) text += ", " + fixed(g.power_watts(), 0) + " W";
      header.emplace_back("GPU", text);
    }
  if (t.gpus_lost)
    header.emplace_back("GPUsLost", std::to_string(t.gpus_lost) + " (NVML: GPU is lost; not read since)");
  header.emplace_back("Samples", std::to_string(t.samples));
  header.emplace_back("Events", t.events_unavailable.empty() ? "on" : printable(join(t.events_unavailable, "; ")));
  header.emplace_back("LostEvents", lost_text(t));
  if (t.unshipped_batches)
    header.emplace_back("Unshipped", std::to_string(t.unshipped_batches) + " batches, " +
                                         std::to_string(t.unshipped_samples) +
                                         " samples (node outbox at its bound: in the node store, not in bcd)");
  if (!t.missing_nodes.empty()) {
    std::vector<std::string> missing;
    for (const auto& m : t.missing_nodes)
      missing.push_back(printable(m.node) + (m.last_data_ms
                                                 ? " (no end recorded; data up to " + local_time(m.last_data_ms) + ")"
                                                 : " (no data here)"));
    header.emplace_back("MissingNodes", join(missing, ", "));
  }
  header.emplace_back("MonitorCPU", fixed(t.monitor_cpu_seconds(), 3) + "s");
  header.emplace_back("MonitorMaxRSS", format_size(t.monitor_max_rss_bytes));

  size_t label_width = 0;
  for (const auto& [label, value] : header) label_width = std::max(label_width, label.size() + 1);
  std::string out;
  for (const auto& [label, value] : header) out += pad(label + ":", label_width, false) + " " + value + "\n";
  out += "\n";

  if (job.processes.empty()) return out + "No processes recorded.\n";
  const bool tasks = has_multi_task_step(job.processes);
  // GPU columns where a process of the job held GPU memory or ran on SMs.
  const bool gpu = std::any_of(job.processes.begin(), job.processes.end(),
                               [](const ProcessRecord& p) { return p.gpu_memory_max || p.gpu_sm_ns; });
  std::vector<std::vector<std::string>> rows;
  for (const ProcessRecord& p : sorted_processes(job.processes)) {
    std::vector<std::string> row{std::to_string(p.pid), std::to_string(p.ppid), printable(p.node),
                                 store::step_name(p.step)};
    if (tasks) row.push_back(p.task == store::kTaskUnknown ? "" : std::to_string(p.task));
    for (const std::string& value :
         {printable(p.command), local_time(p.start_ms), p.end_ms ? local_time(p.end_ms) : "Running",
          fixed(static_cast<double>(p.cpu_ns) / 1e9, 2), threads_text(p), format_size(p.max_rss)})
      row.push_back(value);
    if (gpu) {
      row.push_back(p.gpu_sm_ns ? fixed(static_cast<double>(p.gpu_sm_ns) / 1e9, 2) : "-");
      row.push_back(p.gpu_memory_max ? format_size(p.gpu_memory_max) : "-");
    }
    for (const std::string& value : {format_size(p.read_bytes), format_size(p.write_bytes), exit_text(p)})
      row.push_back(value);
    rows.push_back(std::move(row));
  }
  std::vector<Column> columns{{"PID", true}, {"PPID", true}, {"Node", false}, {"Step", false}};
  if (tasks) columns.push_back({"Task", true});
  for (Column c : {Column{"Command", false},
                   {"Start", false},
                   {"End", false},
                   {"CPU(s)", true},
                   {"Threads", true},
                   {"MaxRSS", true}})
    columns.push_back(c);
  if (gpu) {
    columns.push_back({"GPU-SM(s)", true});  // SM time: 1 s at 100% of a GPU's SMs
    columns.push_back({"GPUMem", true});
  }
  for (Column c : {Column{"Read", true}, {"Write", true}, {"ExitCode", true}}) columns.push_back(c);
  return out + render_table(columns, rows);
}

// ---------------------------------------------------------------------------------------------
std::string format_tree(const JobData& job) {
  const auto processes = sorted_processes(job.processes);
  // Identity within a job is (node, pid, start): a pid can be reused on a node.
  std::map<std::pair<std::string, uint32_t>, std::vector<size_t>> children;  // (node, ppid) -> indexes
  std::set<std::pair<std::string, uint32_t>> present;
  for (const auto& p : processes) present.insert({p.node, p.pid});
  std::vector<size_t> roots;
  for (size_t i = 0; i < processes.size(); ++i) {
    const auto& p = processes[i];
    if (p.ppid != p.pid && present.count({p.node, p.ppid})) children[{p.node, p.ppid}].push_back(i);
    else roots.push_back(i);
  }
  const bool tasks = has_multi_task_step(processes);
  std::string out;
  std::set<size_t> printed;  // guards against a cycle from reused pids
  std::function<void(size_t, const std::string&, bool, bool)> print = [&](size_t i, const std::string& prefix,
                                                                          bool last, bool root) {
    if (!printed.insert(i).second) return;
    const auto& p = processes[i];
    std::string args = p.argv.empty() ? "[" + p.command + "]" : join(p.argv, " ");
    out += prefix + (root ? "" : (last ? "\u2514\u2500 " : "\u251c\u2500 ")) + std::to_string(p.pid) + " " +
           printable(args) + "  [" + store::step_name(p.step) +
           (tasks && p.task != store::kTaskUnknown ? " rank " + std::to_string(p.task) : "") +
           (p.max_threads > 1 ? " threads " + std::to_string(p.max_threads) : "") + " cpu " +
           fixed(static_cast<double>(p.cpu_ns) / 1e9, 2) + "s rss " + format_size(p.max_rss) + " r " +
           format_size(p.read_bytes) + " w " + format_size(p.write_bytes) + (p.end_ms ? "" : " running") +
           (p.exited ? " exit " + exit_text(p) : "") + "]\n";
    auto it = children.find({p.node, p.pid});
    if (it == children.end()) return;
    const std::string child_prefix = root ? prefix : prefix + (last ? "   " : "\u2502  ");
    for (size_t k = 0; k < it->second.size(); ++k)
      print(it->second[k], child_prefix, k + 1 == it->second.size(), false);
  };
  std::string node;
  for (size_t r : roots) {
    if (processes[r].node != node) {
      node = processes[r].node;
      out += "node " + printable(node) + ":\n";
    }
    print(r, "  ", true, true);
  }
  return out;
}

}  // namespace bc::report

// ---------------------------------------------------------------------------------------------
// Files and connections (eBPF events)

namespace bc::report {
namespace {

// Why there is nothing to list: events did not run, or ran and saw nothing.
std::string nothing_recorded(const JobData& job, const char* what) {
  const JobTotals t = compute_totals(job);
  if (!t.events_unavailable.empty())
    return std::string("No ") + what + " recorded: " + printable(join(t.events_unavailable, "; ")) + "\n";
  return std::string("No ") + what + " recorded.\n";
}

// The process a file or connection belongs to, for its command name.
const ProcessRecord* owner(const JobData& job, const std::string& node, uint32_t pid, uint64_t start_ticks) {
  for (const auto& p : job.processes)
    if (p.pid == pid && p.start_ticks == start_ticks && p.node == node) return &p;
  return nullptr;
}

}  // namespace

std::string format_files(const JobData& job, bool all) {
  if (job.files.empty()) return nothing_recorded(job, "files");
  std::vector<std::vector<std::string>> rows;
  if (all) {
    struct PathTotal {
      uint32_t flags = 0;
      uint64_t opens = 0, failed = 0, read = 0, write = 0;
      std::set<std::tuple<std::string, uint32_t, uint64_t>> processes;
    };
    std::map<std::string, PathTotal> by_path;
    for (const auto& f : job.files) {
      PathTotal& p = by_path[f.path];
      p.flags |= f.flags;
      p.opens += f.opens;
      p.failed += f.failed;
      p.read += f.read_bytes;
      p.write += f.write_bytes;
      p.processes.insert({f.node, f.pid, f.start_ticks});
    }
    for (const auto& [path, p] : by_path)
      rows.push_back({printable(path), store::file_flags_text(p.flags), std::to_string(p.opens),
                      std::to_string(p.failed), std::to_string(p.processes.size()), format_size(p.read),
                      format_size(p.write)});
    return render_table({{"Path", false},
                         {"Flags", false},
                         {"Opens", true},
                         {"Failed", true},
                         {"Procs", true},
                         {"Read", true},
                         {"Write", true}},
                        rows);
  }
  auto files = job.files;
  std::sort(files.begin(), files.end(), [](const store::FileRecord& a, const store::FileRecord& b) {
    return std::tie(a.node, a.pid, a.start_ticks, a.first_ms, a.path) <
           std::tie(b.node, b.pid, b.start_ticks, b.first_ms, b.path);
  });
  for (const auto& f : files) {
    const ProcessRecord* p = owner(job, f.node, f.pid, f.start_ticks);
    rows.push_back({std::to_string(f.pid), printable(f.node), p ? printable(p->command) : "?", printable(f.path),
                    store::file_flags_text(f.flags), std::to_string(f.opens), std::to_string(f.failed),
                    format_size(f.read_bytes), format_size(f.write_bytes)});
  }
  return render_table({{"PID", true},
                       {"Node", false},
                       {"Command", false},
                       {"Path", false},
                       {"Flags", false},
                       {"Opens", true},
                       {"Failed", true},
                       {"Read", true},
                       {"Write", true}},
                      rows);
}

std::string format_connections(const JobData& job) {
  if (job.connections.empty()) return nothing_recorded(job, "connections");
  auto conns = job.connections;
  std::sort(conns.begin(), conns.end(), [](const store::ConnectionRecord& a, const store::ConnectionRecord& b) {
    return std::tie(a.node, a.pid, a.start_ticks, a.first_ms, a.address, a.port) <
           std::tie(b.node, b.pid, b.start_ticks, b.first_ms, b.address, b.port);
  });
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : conns) {
    const ProcessRecord* p = owner(job, c.node, c.pid, c.start_ticks);
    rows.push_back({std::to_string(c.pid), printable(c.node), p ? printable(p->command) : "?", c.protocol,
                    printable(c.address), c.protocol == "unix" ? "-" : std::to_string(c.port), std::to_string(c.count),
                    std::to_string(c.failed)});
  }
  return render_table({{"PID", true},
                       {"Node", false},
                       {"Command", false},
                       {"Proto", false},
                       {"Address", false},
                       {"Port", true},
                       {"Count", true},
                       {"Failed", true}},
                      rows);
}

}  // namespace bc::report
