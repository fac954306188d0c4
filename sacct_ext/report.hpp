// sacct_ext: how bcacct shows a job (accounting_db/job_model.hpp): tables, trees and sacct's formats.
// The records come from a JobSource (job_source.hpp): the node store, or bcd.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "accounting_db/job_model.hpp"
#include "accounting_db/job_notes.hpp"

namespace bc::report {

// The job model's types and functions, as bcacct's formatters use them.
using job::compute_totals;
using job::format_json;
using job::has_multi_task_step;
using job::iso_utc_ms;
using job::JobData;
using job::JobTotals;
using job::sacct_job_id;
using job::sort_steps;
using job::sorted_processes;
using json::valid_utf8;

// The human-readable report: a job header block, then one row per process. now_ms is used for the
// elapsed time of a job still running.
std::string format_table(const JobData& job, int64_t now_ms);

// The process tree per node, children under their parent by start time, with argv, step, CPU, MaxRSS and
// I/O on each line. A process whose parent is not in the job is a root.
std::string format_tree(const JobData& job);

// Files opened (eBPF events). Per process: a block per process with its paths. all: one row per path for
// the whole job, summed over its processes.
std::string format_files(const JobData& job, bool all);
// Connections made (eBPF events), one row per process and peer.
std::string format_connections(const JobData& job);
// The most threads a process ran at once, or "-" when no sample saw it alive (its record came from events).
std::string threads_text(const store::ProcessRecord& p);
// The efficiency notes (accounting_db/job_notes.hpp) as a list, or a line saying there are none.
std::string format_notes(const std::vector<job::Note>& notes);
// seff's summary (Job ID ... Memory Efficiency, seff's sizes and times), then the heaviest processes with
// their steps, ranks and threads, then the notes.
std::string format_seff(const JobData& job, const JobTotals& totals, const std::vector<job::Note>& notes,
                        int64_t now_ms);
// The exit status as sacct prints ExitCode, "code:signal" ("0:0", "3:0", "0:9"); "" when not known.
std::string exit_text(const store::ProcessRecord& p);

using job::format_size;
// Like sacct's Elapsed: "HH:MM:SS", or "D-HH:MM:SS" from one day. Negative counts as zero.
std::string format_duration(int64_t seconds);
// Local time like sacct, "2026-11-24T21:41:07"; "Unknown" for 0.
std::string local_time(int64_t epoch_ms);
// Valid UTF-8 without control characters (each becomes '?'): safe for a terminal and for '|'-separated rows.
std::string terminal_safe(std::string_view s);
// Like sacct's TotalCPU: "HH:MM:SS.mmm", or "D-HH:MM:SS.mmm" from one day.
std::string format_cpu_time(uint64_t ns);
std::string join_strings(const std::vector<std::string>& items, const char* sep);

}  // namespace bc::report
