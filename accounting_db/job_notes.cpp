#include "accounting_db/job_notes.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "common/key_value.hpp"

namespace bc::job {
namespace {

std::string fixed(double v, int decimals) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string percent(double fraction) { return fixed(fraction * 100, fraction < 0.1 ? 1 : 0) + "%"; }

// "4,812"
std::string count_text(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string process_name(const store::ProcessRecord& p) {
  return "PID " + std::to_string(p.pid) + " (" + (p.command.empty() ? "?" : p.command) + ")";
}

double seconds_of(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

}  // namespace

NoteThresholds parse_note_thresholds(std::string_view text, const std::string& origin,
                                     std::vector<std::string>& errors) {
  NoteThresholds t;
  struct Key {
    const char* name;
    double* real;
    uint64_t* count;
    int64_t* seconds;
    double min, max;
  };
  const Key keys[] = {
      {"min_elapsed_s", nullptr, nullptr, &t.min_elapsed_s, 0, 1e9},
      {"cpu_efficiency_low", &t.cpu_efficiency_low, nullptr, nullptr, 0, 1},
      {"memory_low_fraction", &t.memory_low_fraction, nullptr, nullptr, 0, 1},
      {"memory_low_min_bytes", nullptr, &t.memory_low_min_bytes, nullptr, 0, 1e18},
      {"memory_high_fraction", &t.memory_high_fraction, nullptr, nullptr, 0, 1},
      {"rank_imbalance_ratio", &t.rank_imbalance_ratio, nullptr, nullptr, 1, 1e6},
      {"rank_imbalance_min_cpu_s", &t.rank_imbalance_min_cpu_s, nullptr, nullptr, 0, 1e9},
      {"one_process_fraction", &t.one_process_fraction, nullptr, nullptr, 0, 1},
      {"short_process_s", &t.short_process_s, nullptr, nullptr, 0, 1e6},
      {"fork_storm_min", nullptr, &t.fork_storm_min, nullptr, 1, 1e12},
      {"fork_storm_fraction", &t.fork_storm_fraction, nullptr, nullptr, 0, 1},
      {"io_bound_bytes_per_s", &t.io_bound_bytes_per_s, nullptr, nullptr, 0, 1e15},
      {"io_bound_cpu_fraction", &t.io_bound_cpu_fraction, nullptr, nullptr, 0, 1},
      {"io_bound_time_fraction", &t.io_bound_time_fraction, nullptr, nullptr, 0, 1},
      {"gpu_idle_fraction", &t.gpu_idle_fraction, nullptr, nullptr, 0, 1},
      {"gpu_idle_min_s", &t.gpu_idle_min_s, nullptr, nullptr, 0, 1e9},
  };
  for (const kv::Setting& s : kv::read_settings(text, origin)) {
    if (s.malformed) {
      errors.push_back(s.where + ": not key=value: '" + s.value + "'");
      continue;
    }
    const Key* key = std::find_if(std::begin(keys), std::end(keys), [&](const Key& k) { return s.key == k.name; });
    if (key == std::end(keys)) {
      errors.push_back(s.where + ": unknown key '" + s.key + "'");
      continue;
    }
    char* end = nullptr;
    const double v = std::strtod(s.value.c_str(), &end);
    if (s.value.empty() || *end != '\0' || !std::isfinite(v) || v < key->min || v > key->max ||
        ((key->count || key->seconds) && v != std::floor(v))) {
      errors.push_back(s.where + ": " + s.key + " takes " + (key->real ? "a number" : "a whole number") + " from " +
                       fixed(key->min, 0) + " to " + fixed(key->max, 0) + ", not '" + s.value + "'");
      continue;
    }
    if (key->real) *key->real = v;
    if (key->count) *key->count = static_cast<uint64_t>(v);
    if (key->seconds) *key->seconds = static_cast<int64_t>(v);
  }
  return t;
}

std::vector<Note> job_notes(const JobData& job, const JobTotals& totals, const TotalSeries& series,
                            const NoteThresholds& limits, int64_t now_ms) {
  std::vector<Note> notes;
  const int64_t start_ms = totals.start_ms.value_or(0);
  const int64_t elapsed_ms = start_ms ? std::max<int64_t>(0, totals.end_ms.value_or(now_ms) - start_ms) : 0;
  const bool long_enough = elapsed_ms >= limits.min_elapsed_s * 1000;

  // Ranks: the tasks of each step that ran several; the most at once is what the allocation was for.
  const auto step_tasks = tasks_per_step(job.processes);
  size_t tasks = 1;
  for (const auto& [step, ids] : step_tasks) tasks = std::max(tasks, ids.size());

  if (long_enough && totals.alloc_cpus > 0 && totals.cpu_efficiency &&
      *totals.cpu_efficiency < limits.cpu_efficiency_low) {
    const double used = *totals.cpu_efficiency * totals.alloc_cpus;
    notes.push_back({"cpu_efficiency", "CPU: the job used " + fixed(used, 1) + " of its " +
                                           std::to_string(totals.alloc_cpus) +
                                           (totals.alloc_cpus == 1 ? " allocated CPU" : " allocated CPUs") +
                                           " on average (" + percent(*totals.cpu_efficiency) + " CPU efficiency)."});
  }
  const double memory_share =
      totals.mem_limit_bytes ? static_cast<double>(totals.max_rss_bytes) / static_cast<double>(totals.mem_limit_bytes)
                             : 0;
  if (long_enough && totals.mem_limit_bytes >= limits.memory_low_min_bytes && totals.max_rss_bytes > 0 &&
      memory_share < limits.memory_low_fraction) {
    notes.push_back({"memory_low", "Memory: the peak was " + format_size(totals.max_rss_bytes) + ", " +
                                       percent(memory_share) + " of the " + format_size(totals.mem_limit_bytes) +
                                       " requested; a smaller request would leave room for other jobs."});
  }
  if (totals.mem_limit_bytes > 0 && memory_share >= limits.memory_high_fraction) {
    notes.push_back({"memory_high", "Memory: the peak was " + format_size(totals.max_rss_bytes) + ", " +
                                        percent(memory_share) + " of the " + format_size(totals.mem_limit_bytes) +
                                        " limit; near it the job may be killed for memory."});
  }

  // One thread per task where the allocation had CPUs to spare for more.
  uint32_t most_threads = 0;
  for (const auto& p : job.processes) most_threads = std::max(most_threads, p.max_threads);
  if (long_enough && most_threads == 1 && totals.alloc_cpus >= 2 * tasks) {
    notes.push_back({"single_thread", "Threads: every process ran 1 thread, on " + std::to_string(totals.alloc_cpus) +
                                          " allocated CPUs for " + std::to_string(tasks) +
                                          (tasks == 1 ? " task" : " tasks") +
                                          "; a threaded program (OpenMP: OMP_NUM_THREADS) could use the rest."});
  }

  // Ranks whose CPU differs widely: the others waited for the heaviest at each synchronisation.
  bool rank_note = false;
  for (const auto& [step, ids] : step_tasks) {
    if (ids.size() < 2) continue;
    std::map<uint32_t, uint64_t> cpu;
    for (const auto& p : job.processes)
      if (p.step == step && p.task != store::kTaskUnknown) cpu[p.task] += p.cpu_ns;
    uint64_t sum = 0;
    auto heaviest = cpu.begin();
    for (auto it = cpu.begin(); it != cpu.end(); ++it) {
      sum += it->second;
      if (it->second > heaviest->second) heaviest = it;
    }
    const double mean = static_cast<double>(sum) / static_cast<double>(cpu.size());
    const double top = static_cast<double>(heaviest->second);
    if (mean > 0 && top >= limits.rank_imbalance_ratio * mean &&
        seconds_of(heaviest->second) >= limits.rank_imbalance_min_cpu_s) {
      rank_note = true;
      notes.push_back({"rank_imbalance", "Ranks: rank " + std::to_string(heaviest->first) + " of step " +
                                             store::step_name(step) + " used " + fixed(top / mean, 1) +
                                             "x the CPU of the average rank (" + fixed(top / 1e9, 1) + " s against " +
                                             fixed(mean / 1e9, 1) + " s); the others waited for it."});
    }
  }
  // Without ranks: one process did nearly all the work of a multi-CPU job.
  if (!rank_note && long_enough && totals.alloc_cpus >= 2 && totals.cpu_ns > 0 && job.processes.size() >= 2) {
    const auto top = std::max_element(job.processes.begin(), job.processes.end(),
                                      [](const auto& a, const auto& b) { return a.cpu_ns < b.cpu_ns; });
    const double share = static_cast<double>(top->cpu_ns) / static_cast<double>(totals.cpu_ns);
    if (share >= limits.one_process_fraction && top->max_threads <= 1 && totals.cpu_efficiency &&
        *totals.cpu_efficiency < limits.cpu_efficiency_low)
      notes.push_back({"one_process", "Processes: " + process_name(*top) + " used " + percent(std::min(share, 1.0)) +
                                          " of the job's CPU, on one thread, while the rest of the " +
                                          std::to_string(totals.alloc_cpus) + " allocated CPUs waited."});
  }

  // A fork storm: many processes that lived a moment (a shell loop starting a program per item).
  uint64_t short_count = 0, short_cpu_ns = 0;
  for (const auto& p : job.processes) {
    if (p.end_ms == 0 || p.end_ms - p.start_ms >= static_cast<int64_t>(limits.short_process_s * 1000)) continue;
    ++short_count;
    short_cpu_ns += p.cpu_ns;
  }
  if (short_count >= limits.fork_storm_min &&
      static_cast<double>(short_count) >= limits.fork_storm_fraction * static_cast<double>(job.processes.size())) {
    notes.push_back({"fork_storm", "Processes: " + count_text(short_count) + " of " + count_text(job.processes.size()) +
                                       " lived less than " +
                                       fixed(limits.short_process_s, limits.short_process_s < 1 ? 1 : 0) +
                                       " s and used " + fixed(seconds_of(short_cpu_ns), 1) +
                                       " s of CPU: a loop starting one program per item; doing the items in one "
                                       "process would save the start-ups."});
  }

  // I/O-bound time: buckets moving data fast while the allocated CPUs were mostly idle.
  if (totals.alloc_cpus > 0 && !series.buckets.empty()) {
    size_t io_bound = 0;
    uint64_t io_bytes = 0;
    int64_t io_seconds = 0;
    double io_cpu = 0;
    for (const store::Rollup& b : series.buckets) {
      if (b.width_s <= 0) continue;
      const double rate = static_cast<double>(b.read_bytes + b.write_bytes) / static_cast<double>(b.width_s);
      const double busy = b.cpu_percent_mean() / 100 / totals.alloc_cpus;
      if (rate < limits.io_bound_bytes_per_s || busy >= limits.io_bound_cpu_fraction) continue;
      ++io_bound;
      io_bytes += b.read_bytes + b.write_bytes;
      io_seconds += b.width_s;
      io_cpu += busy;
    }
    const double share = static_cast<double>(io_bound) / static_cast<double>(series.buckets.size());
    if (io_bound > 0 && share >= limits.io_bound_time_fraction) {
      notes.push_back({"io_bound", "I/O: for " + percent(share) + " of the run (" + std::to_string(io_seconds) +
                                       " s) the job read and wrote " +
                                       format_size(io_bytes / static_cast<uint64_t>(std::max<int64_t>(1, io_seconds))) +
                                       "/s while its CPUs were " + percent(io_cpu / static_cast<double>(io_bound)) +
                                       " busy: it waited for storage."});
    }
  }

  // GPUs allocated but idle: the most expensive waste of all.
  for (const store::JobRecord& r : job.nodes)
    for (const store::JobGpu& g : r.gpus) {
      if (!g.allocated || static_cast<double>(g.util_ns) < limits.gpu_idle_min_s * 1e9) continue;
      const double busy = g.util_percent() / 100;
      if (busy >= limits.gpu_idle_fraction) continue;
      notes.push_back({"gpu_idle", "GPU: " + g.uuid + " on " + r.node + " was given to the job and busy " +
                                       percent(busy) + " of " + std::to_string(g.util_ns / 1'000'000'000) +
                                       " s (memory peak " + format_size(g.memory_max) +
                                       "): a job that does not use it should not ask for it."});
    }
  return notes;
}

void TotalSeries::add_node(const std::vector<store::Rollup>& node_buckets) {
  std::vector<store::Rollup> merged;
  merged.reserve(std::max(buckets.size(), node_buckets.size()));
  auto a = buckets.cbegin(), b = node_buckets.cbegin();
  while (a != buckets.cend() || b != node_buckets.cend()) {
    if (b == node_buckets.cend() || (a != buckets.cend() && a->start_s < b->start_s)) {
      merged.push_back(*a++);
    } else if (a == buckets.cend() || b->start_s < a->start_s) {
      merged.push_back(*b++);
    } else {
      merged.push_back(*a++);
      merged.back().merge(*b++);
    }
  }
  buckets = std::move(merged);
}

cJSON* notes_json(const std::vector<Note>& notes) {
  json::Ptr array(json::checked(cJSON_CreateArray()));
  for (const Note& n : notes) {
    json::Ptr o(json::checked(cJSON_CreateObject()));
    json::add(o.get(), "id", json::string(n.id));
    json::add(o.get(), "text", json::string(n.text));
    json::append(array.get(), o.release());
  }
  return array.release();
}

}  // namespace bc::job
