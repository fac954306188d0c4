// Efficiency notes: short sentences about one job, each with its number, for users who read words rather
// than charts ("you asked for 32 cores and used 1"). bcacct --notes and --seff print them, bcd's job
// document carries them for the web view. A note is said only past its threshold; a well-behaved job gets
// none. The thresholds come from a key=value file (notes.conf, docs/configuration.md) with the defaults
// below.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "accounting_db/job_model.hpp"
#include "accounting_db/store.hpp"

namespace bc::job {

struct NoteThresholds {
  int64_t min_elapsed_s = 60;                  // shorter jobs get no CPU, memory or thread note: too little to judge
  double cpu_efficiency_low = 0.5;             // CPU time / (elapsed x allocated CPUs) below this
  double memory_low_fraction = 0.25;           // peak RSS below this share of the memory limit...
  uint64_t memory_low_min_bytes = 1ULL << 30;  // ...of a limit at least this large
  double memory_high_fraction = 0.9;           // peak RSS at or above this share of the limit
  double rank_imbalance_ratio = 2.0;           // a rank's CPU at or above this multiple of the ranks' mean
  double rank_imbalance_min_cpu_s = 1;         // ...and at least this much CPU
  double one_process_fraction = 0.9;           // one process's share of the job's CPU, on 2 or more CPUs
  double short_process_s = 1;                  // a process that lived less than this is short
  uint64_t fork_storm_min = 500;               // at least this many short processes...
  double fork_storm_fraction = 0.5;            // ...and this share of all processes
  double io_bound_bytes_per_s = 50e6;          // a bucket reading + writing at least this fast...
  double io_bound_cpu_fraction = 0.25;         // ...while the allocated CPUs were less busy than this share
  double io_bound_time_fraction = 0.2;         // such buckets cover at least this share of the job's buckets
  double gpu_idle_fraction = 0.1;              // a GPU given to the job busy less than this share of the time...
  double gpu_idle_min_s = 60;                  // ...of at least this much sampled time
};

// The defaults, overridden by each key=value of `text` (keys as the members above). Unknown keys and
// values out of range are errors, each "ORIGIN:LINE: why" in `errors`; the defaults stand for them.
NoteThresholds parse_note_thresholds(std::string_view text, const std::string& origin,
                                     std::vector<std::string>& errors);

struct Note {
  std::string id;    // stable, for scripts and tests: cpu_efficiency, memory_low, memory_high, single_thread,
                     // rank_imbalance, one_process, fork_storm, io_bound, gpu_idle
  std::string text;  // one sentence with its figures
};

// The job total over time (summed over nodes) for the I/O note; empty: that note is not considered.
struct TotalSeries {
  std::vector<store::Rollup> buckets;  // by start; each node's bucket of the same start merged into one
  // Adds one node's total (buckets by start, as the store answers), merging equal starts.
  void add_node(const std::vector<store::Rollup>& node_buckets);
};

std::vector<Note> job_notes(const JobData& job, const JobTotals& totals, const TotalSeries& series,
                            const NoteThresholds& limits, int64_t now_ms);

// {"id", "text"} objects, for the job document.
cJSON* notes_json(const std::vector<Note>& notes);

}  // namespace bc::job
