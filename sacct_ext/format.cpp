#include "sacct_ext/format.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "accounting_db/store.hpp"

namespace bc::bcacct {

using report::format_duration;
using report::format_size;
using report::local_time;
using store::ProcessRecord;

// What a field shows for a job row (process == nullptr) or a process row.
struct FieldDef {
  const char* name;
  bool process_only;  // a process field: the format gives one row per process
  int width;
  bool left;
  const char* help;
  std::string (*value)(const JobView& job, const ProcessRecord* process, int64_t now_ms);
};

namespace {

std::string seconds2(uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(ns) / 1e9);
  return buf;
}

int64_t start_of(const JobView& j, const ProcessRecord* p) { return p ? p->start_ms : j.totals.start_ms.value_or(0); }
// 0 while running
int64_t end_of(const JobView& j, const ProcessRecord* p) { return p ? p->end_ms : j.totals.end_ms.value_or(0); }

std::string elapsed_seconds(const JobView& j, const ProcessRecord* p, int64_t now_ms) {
  const int64_t start = start_of(j, p);
  if (start == 0) return "";
  const int64_t end = end_of(j, p);
  return std::to_string(std::max<int64_t>((end ? end : now_ms) - start, 0) / 1000);
}

std::string container_of(const JobView& j) {
  return (j.totals.job_id >> 63) != 0 ? j.display_id : std::string();  // containers have the top bit
}

const FieldDef kFields[] = {
    {"JobID", false, 12, true, "job id (a container's short id)",
     [](const JobView& j, const ProcessRecord*, int64_t) { return j.display_id; }},
    {"JobIDRaw", false, 12, true, "the numeric key the store uses",
     [](const JobView& j, const ProcessRecord*, int64_t) { return std::to_string(j.totals.job_id); }},
    {"Container", false, 12, true, "Docker container short id; empty for a Slurm job",
     [](const JobView& j, const ProcessRecord*, int64_t) { return container_of(j); }},
    {"JobName", false, 10, false, "Slurm's job name; a container's name",
     [](const JobView& j, const ProcessRecord*, int64_t) {
       return report::terminal_safe(j.totals.container_id.empty() ? j.totals.name : j.totals.container_name);
     }},
    {"AllocCPUS", false, 10, false, "CPUs allocated (the job's cpusets, all nodes); 0 when not known",
     [](const JobView& j, const ProcessRecord*, int64_t) { return std::to_string(j.totals.alloc_cpus); }},
    {"CPUEff", false, 7, false, "CPU time over elapsed x AllocCPUS, in %; empty when not known",
     [](const JobView& j, const ProcessRecord*, int64_t) {
       if (!j.totals.cpu_efficiency) return std::string();
       char buf[32];
       std::snprintf(buf, sizeof buf, "%.1f%%", *j.totals.cpu_efficiency * 100);
       return std::string(buf);
     }},
    {"User", false, 9, false, "user the job ran as",
     [](const JobView& j, const ProcessRecord*, int64_t) { return report::terminal_safe(j.totals.user); }},
    {"UID", false, 6, false, "numeric user id",
     [](const JobView& j, const ProcessRecord*, int64_t) {
       return j.data.nodes.empty() ? std::string() : std::to_string(j.data.nodes.front().uid);
     }},
    {"State", false, 10, false, "RUNNING, or COMPLETED once every node (process: once it) has ended",
     [](const JobView& j, const ProcessRecord* p, int64_t) {
       return std::string(end_of(j, p) ? "COMPLETED" : "RUNNING");
     }},
    {"Start", false, 19, false, "start, local time",
     [](const JobView& j, const ProcessRecord* p, int64_t) { return local_time(start_of(j, p)); }},
    {"End", false, 19, false, "end, local time; Unknown while running",
     [](const JobView& j, const ProcessRecord* p, int64_t) { return local_time(end_of(j, p)); }},
    {"Elapsed", false, 10, false, "[D-]HH:MM:SS from start to end (or now)",
     [](const JobView& j, const ProcessRecord* p, int64_t now_ms) {
       const std::string s = elapsed_seconds(j, p, now_ms);
       return s.empty() ? std::string("Unknown") : format_duration(std::stoll(s));
     }},
    {"ElapsedRaw", false, 10, false, "elapsed seconds", &elapsed_seconds},
    {"NodeList", false, 15, true, "nodes of the job; the node of a process",
     [](const JobView& j, const ProcessRecord* p, int64_t) {
       return report::terminal_safe(p ? p->node : report::join_strings(j.totals.nodes, ","));
     }},
    {"NNodes", false, 8, false, "number of nodes",
     [](const JobView& j, const ProcessRecord* p, int64_t) { return std::to_string(p ? 1 : j.totals.nodes.size()); }},
    {"TotalCPU", false, 12, false, "user+system CPU time, [D-]HH:MM:SS.mmm",
     [](const JobView& j, const ProcessRecord* p, int64_t) {
       return report::format_cpu_time(p ? p->cpu_ns : j.totals.cpu_ns);
     }},
    {"CPUSeconds", false, 10, false, "user+system CPU time in seconds",
     [](const JobView& j, const ProcessRecord* p, int64_t) { return seconds2(p ? p->cpu_ns : j.totals.cpu_ns); }},
    {"MaxRSS", false, 10, false, "peak resident set size (K/M/G, 1024-based)",
     [](const JobView& j, const ProcessRecord* p, int64_t) {
       return format_size(p ? p->max_rss : j.totals.max_rss_bytes);
     }},
    {"MaxRSSRaw", false, 12, false, "peak resident set size in bytes",
     [](const JobView& j, const ProcessRecord* p, int64_t) {
       return std::to_string(p ? p->max_rss : j.totals.max_rss_bytes);
     }},
    {"GPUUtil", false, 8, false,
     "GPU utilisation in %: the job's GPUs' mean (NVML); a process's SM share over its elapsed time; empty "
     "without GPU figures",
     [](const JobView& j, const ProcessRecord* p, int64_t now_ms) {
       char buf[32];
       if (!p) {
         if (!j.totals.gpu_util_percent) return std::string();
         std::snprintf(buf, sizeof buf, "%.1f%%", *j.totals.gpu_util_percent);
         return std::string(buf);
       }
       const std::string elapsed = elapsed_seconds(j, p, now_ms);
       if (p->gpu_sm_ns == 0 || elapsed.empty() || std::stoll(elapsed) <= 0) return std::string();
       std::snprintf(buf, sizeof buf, "%.1f%%",
                     static_cast<double>(p->gpu_sm_ns) / 1e7 / static_cast<double>(std::stoll(elapsed)));
       return std::string(buf);
     }},
    {"GPUMem", false, 8, false, "GPU memory (K/M/G): the sum of the job's GPUs' peaks; a process's peak",
     [](const JobView& j, const ProcessRecord* p, int64_t) {
       return format_size(p ? p->gpu_memory_max : j.totals.gpu_memory_max_bytes);
     }},
    {"ReadBytes", false, 10, false, "bytes read from storage",
     [](const JobView& j, const ProcessRecord* p, int64_t) {
       return format_size(p ? p->read_bytes : j.totals.read_bytes);
     }},
    {"WriteBytes", false, 10, false, "bytes written to storage",
     [](const JobView& j, const ProcessRecord* p, int64_t) {
       return format_size(p ? p->write_bytes : j.totals.write_bytes);
     }},
    {"Steps", false, 20, true, "steps seen, in sacct's order",
     [](const JobView& j, const ProcessRecord* p, int64_t) {
       if (p) return store::step_name(p->step);
       std::vector<std::string> names;
       for (uint32_t s : j.totals.steps) names.push_back(store::step_name(s));
       return report::join_strings(names, ",");
     }},
    {"Samples", false, 8, false, "samples taken (all nodes)",
     [](const JobView& j, const ProcessRecord*, int64_t) { return std::to_string(j.totals.samples); }},
    {"MonitorCPU", false, 10, false, "CPU seconds the monitors used",
     [](const JobView& j, const ProcessRecord*, int64_t) { return seconds2(j.totals.monitor_cpu_ns); }},
    {"Step", true, 11, false, "the process's step: batch, extern, interactive or a number",
     [](const JobView&, const ProcessRecord* p, int64_t) { return store::step_name(p->step); }},
    {"PID", true, 8, false, "process id",
     [](const JobView&, const ProcessRecord* p, int64_t) { return std::to_string(p->pid); }},
    {"PPID", true, 8, false, "parent process id",
     [](const JobView&, const ProcessRecord* p, int64_t) { return std::to_string(p->ppid); }},
    {"Task", true, 6, false, "the Slurm task (rank, SLURM_PROCID) the process is or descends from; empty if none",
     [](const JobView&, const ProcessRecord* p, int64_t) {
       return p->task == store::kTaskUnknown ? std::string() : std::to_string(p->task);
     }},
    {"MaxThreads", true, 10, false, "the most threads the process ran at once; 0 when never sampled",
     [](const JobView&, const ProcessRecord* p, int64_t) { return std::to_string(p->max_threads); }},
    {"ExitCode", true, 8, false, "the process's exit as code:signal, like sacct; empty when not seen",
     [](const JobView&, const ProcessRecord* p, int64_t) { return report::exit_text(*p); }},
    {"Command", true, 16, true, "the kernel's command name (comm)",
     [](const JobView&, const ProcessRecord* p, int64_t) { return report::terminal_safe(p->command); }},
    {"Exe", true, 30, true, "executable path",
     [](const JobView&, const ProcessRecord* p, int64_t) { return report::terminal_safe(p->exe); }},
    {"Argv", true, 40, true, "arguments, space-separated",
     [](const JobView&, const ProcessRecord* p, int64_t) {
       return report::terminal_safe(report::join_strings(p->argv, " "));
     }},
};

const FieldDef* find_field(std::string_view name) {
  for (const FieldDef& f : kFields) {
    const std::string_view candidate = f.name;
    if (candidate.size() == name.size() &&
        std::equal(candidate.begin(), candidate.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        }))
      return &f;
  }
  return nullptr;
}

size_t display_width(const std::string& s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// The first n characters (not bytes) of s.
std::string take(const std::string& s, size_t n) {
  size_t i = 0, chars = 0;
  while (i < s.size() && chars < n) {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
    ++chars;
  }
  return s.substr(0, i);
}

// sacct's fixed-width cell: padded, or cut with '+' as the last character when too long.
std::string cell(const std::string& value, const Column& c) {
  const size_t width = static_cast<size_t>(c.width);
  const size_t w = display_width(value);
  if (w > width) return width == 0 ? std::string() : take(value, width - 1) + "+";
  const std::string fill(width - w, ' ');
  return c.left ? value + fill : fill + value;
}

}  // namespace

std::variant<Format, std::string> parse_format(std::string_view text) {
  Format format;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    std::string_view item = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    if (item.empty()) return "empty field in format '" + std::string(text) + "'";
    std::optional<int> width;
    if (const size_t pct = item.find('%'); pct != std::string_view::npos) {
      std::string_view digits = item.substr(pct + 1);
      const bool negative = !digits.empty() && digits[0] == '-';
      if (negative) digits.remove_prefix(1);
      if (digits.empty() || digits.size() > 4 || digits.find_first_not_of("0123456789") != std::string_view::npos)
        return "invalid width in '" + std::string(item) + "': use FIELD%N or FIELD%-N";
      width = std::stoi(std::string(digits)) * (negative ? -1 : 1);
      item = item.substr(0, pct);
    }
    const FieldDef* field = find_field(item);
    if (!field) return "invalid field requested: \"" + std::string(item) + "\" (bcacct --helpformat lists them)";
    Column c{field, field->width, field->left};
    if (width) {
      c.width = *width < 0 ? -*width : *width;
      c.left = *width < 0;
    }
    format.per_process = format.per_process || field->process_only;
    format.columns.push_back(c);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return format;
}

Format default_format(bool per_process) {
  const char* text = per_process ? "JobID,Step,PID,PPID,NodeList,Command,Start,End,TotalCPU,MaxRSS,ReadBytes,WriteBytes"
                                 : "JobID,User,State,Start,End,Elapsed,NodeList,TotalCPU,MaxRSS";
  return std::get<Format>(parse_format(text));
}

std::string help_format() {
  std::string out = "Job and process fields (a process row shows the process's own value):\n";
  std::string process = "Process fields (any of them gives one row per process):\n";
  for (const FieldDef& f : kFields) {
    char line[160];
    std::snprintf(line, sizeof line, "  %-11s %s\n", f.name, f.help);
    (f.process_only ? process : out) += line;
  }
  return out + process;
}

std::string render_rows(const Format& format, const std::vector<JobView>& jobs, Layout layout, bool header,
                        int64_t now_ms) {
  std::string out;
  const auto line = [&](const std::vector<std::string>& values) {
    std::string text;
    for (size_t i = 0; i < values.size(); ++i) {
      switch (layout) {
        case Layout::Fixed: text += (i ? " " : "") + cell(values[i], format.columns[i]); break;
        case Layout::Parsable: text += values[i] + "|"; break;
        case Layout::Parsable2: text += (i ? "|" : "") + values[i]; break;
      }
    }
    out += text + "\n";
  };
  if (header) {
    std::vector<std::string> names, rules;
    for (const Column& c : format.columns) {
      names.emplace_back(c.field->name);
      rules.emplace_back(static_cast<size_t>(c.width), '-');
    }
    line(names);
    if (layout == Layout::Fixed) line(rules);
  }
  // '|' inside a value would split it: sacct prints it as is, which breaks parsers; we do the same as
  // sacct so that output stays comparable, and commands rarely hold '|'.
  for (const JobView& job : jobs) {
    const auto row = [&](const ProcessRecord* p) {
      std::vector<std::string> values;
      for (const Column& c : format.columns) values.push_back(c.field->value(job, p, now_ms));
      line(values);
    };
    if (!format.per_process) {
      row(nullptr);
      continue;
    }
    for (const ProcessRecord& p : job.data.processes) row(&p);
  }
  return out;
}

}  // namespace bc::bcacct
