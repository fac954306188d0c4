// bcacct --notes and --seff: the efficiency notes (accounting_db/job_notes.hpp) as text, and seff's
// summary with the per-process view below it.
#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "sacct_ext/report.hpp"

namespace bc::report {
namespace {

// seff's sizes: two decimals and a 1024-based unit from KB up ("1.20 GB").
std::string seff_size(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KB", "MB", "GB", "TB", "PB"};
  double value = static_cast<double>(bytes) / 1024.0;
  size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(kUnits)) {
    value /= 1024.0;
    ++unit;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.2f %s", value, kUnits[unit]);
  return buf;
}

std::string group_of(uint32_t uid) {
  passwd pw{}, *found = nullptr;
  char buf[4096];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) != 0 || !found) return "";
  group gr{}, *g = nullptr;
  char gbuf[4096];
  if (getgrgid_r(found->pw_gid, &gr, gbuf, sizeof gbuf, &g) != 0 || !g) return std::to_string(found->pw_gid);
  return g->gr_name;
}

}  // namespace

std::string format_notes(const std::vector<job::Note>& notes) {
  if (notes.empty()) return "No notes: nothing in this job's figures calls for a change.\n";
  std::string out;
  for (const job::Note& n : notes) out += "- " + terminal_safe(n.text) + "\n";
  return out;
}

std::string format_seff(const JobData& job, const JobTotals& t, const std::vector<job::Note>& notes, int64_t now_ms) {
  const int64_t start = t.start_ms.value_or(0);
  const int64_t elapsed_s = start ? std::max<int64_t>(0, t.end_ms.value_or(now_ms) - start) / 1000 : 0;
  const uint32_t uid = job.nodes.empty() ? 0 : job.nodes.front().uid;
  const size_t nodes = std::max<size_t>(1, t.nodes.size());
  std::string out;
  auto line = [&out](const std::string& label, const std::string& value) { out += label + ": " + value + "\n"; };
  line("Job ID", sacct_job_id(t));
  line("User/Group", terminal_safe(t.user) + "/" + terminal_safe(group_of(uid)));
  line("State", t.end_ms ? "COMPLETED" : "RUNNING");
  line("Nodes", std::to_string(t.nodes.size()));
  line("Cores per node", t.alloc_cpus ? std::to_string(t.alloc_cpus / nodes) : "unknown");
  line("CPU Utilized", format_duration(static_cast<int64_t>(t.cpu_ns / 1000000000)));
  if (t.cpu_efficiency)
    line("CPU Efficiency", [&] {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f%%", *t.cpu_efficiency * 100);
      return std::string(buf) + " of " + format_duration(elapsed_s * t.alloc_cpus) + " core-walltime";
    }());
  else line("CPU Efficiency", "unknown (no CPU allocation recorded)");
  line("Job Wall-clock time", format_duration(elapsed_s));
  line("Memory Utilized", seff_size(t.max_rss_bytes));
  if (t.mem_limit_bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f%%",
                  100.0 * static_cast<double>(t.max_rss_bytes) / static_cast<double>(t.mem_limit_bytes));
    line("Memory Efficiency", std::string(buf) + " of " + seff_size(t.mem_limit_bytes));
  } else {
    line("Memory Efficiency", "unknown (no memory limit recorded)");
  }

  // What seff cannot show: the processes, heaviest first, with their ranks and threads.
  std::vector<store::ProcessRecord> heaviest = job.processes;
  std::sort(heaviest.begin(), heaviest.end(), [](const auto& a, const auto& b) { return a.cpu_ns > b.cpu_ns; });
  const size_t shown = std::min<size_t>(heaviest.size(), 10);
  out += "\nPer process (bubble-chamber): " + std::to_string(job.processes.size()) + " processes";
  out += shown < heaviest.size() ? ", the " + std::to_string(shown) + " heaviest by CPU\n" : "\n";
  // The rank column only where a step ran several tasks, as in the job report.
  const bool tasks = has_multi_task_step(job.processes);
  char row[160];
  std::snprintf(row, sizeof row, "%8s %6s %5s %7s %12s %10s  %s\n", "PID", "Step", tasks ? "Task" : "", "Threads",
                "CPU", "MaxRSS", "Command");
  out += row;
  for (size_t i = 0; i < shown; ++i) {
    const auto& p = heaviest[i];
    const std::string task = tasks && p.task != store::kTaskUnknown ? std::to_string(p.task) : "";
    std::snprintf(row, sizeof row, "%8u %6s %5s %7s %12s %10s  ", p.pid, store::step_name(p.step).c_str(), task.c_str(),
                  threads_text(p).c_str(), format_cpu_time(p.cpu_ns).c_str(), format_size(p.max_rss).c_str());
    out += row + terminal_safe(p.command) + "\n";
  }
  out += "\nNotes:\n" + format_notes(notes);
  return out;
}

}  // namespace bc::report
