// sacct_ext: which jobs the user asked for, in sacct's own syntax: job lists (-j), times (-S/-E), states
// (-s), users (-u) and node lists (-N). Parsing and matching only; no storage, no output.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sacct_ext/report.hpp"

namespace bc::bcacct {

// One element of -j. The store keys jobs by Slurm's numeric job id (the one in SLURM_JOB_ID):
//   "123"        job 123
//   "123.batch"  job 123, only the processes of that step (batch, extern, interactive or a number)
//   "123+2"      heterogeneous job 123, component 2. Slurm gives the components of a het job consecutive
//                job ids (HetJobId + HetJobOffset), so this is stored job 125.
//   "123_4"      job array 123, task 4. A task has its own job id (Slurm picks it when the task starts);
//                the store records each task's ArrayJobID and ArrayTaskID, so the source looks it up.
//   "123" also selects every task of job array 123 when 123 is an array's job id, as sacct does.
struct JobSpec {
  std::string text;         // as given, for messages
  uint64_t id = 0;          // the stored job id (for "123+2": 125); 0 for an array task
  uint64_t array_base = 0;  // for "123_4": 123
  std::optional<uint32_t> array_task;
  std::optional<uint32_t> het_offset;
  std::optional<uint32_t> step;  // store step id (store::kStepBatch ...)
};

// A comma-separated -j list. Returns the specs, or the reason the text is not a job list.
std::variant<std::vector<JobSpec>, std::string> parse_job_list(std::string_view text);

// A step name as bcacct prints it: "batch", "extern", "interactive" or a number.
std::optional<uint32_t> parse_step(std::string_view text);

// sacct's time formats (parse_time with "past" set), in the local time zone:
//   HH:MM[:SS]                    today at that time
//   MMDD[YY], MM/DD[/YY], MM.DD[.YY]   that day at 00:00 (without a year: this year, or last year when
//                                 the month is later than this month)
//   MM/DD[/YY]-HH:MM[:SS], YYYY-MM-DD[THH:MM[:SS]]
//   today, midnight, noon, tomorrow
//   now[{+|-}COUNT[seconds|minutes|hours|days|weeks]]   (seconds by default)
// At most 64 characters. Returns epoch seconds, or nullopt with the reason in error.
std::optional<int64_t> parse_sacct_time(std::string_view text, int64_t now_s, std::string& error);

// What the store can tell: a job is running until every node has ended. Slurm's final states (FAILED,
// CANCELLED, TIMEOUT ...) are not recorded, so they are refused rather than matching nothing.
enum class JobState { Running, Completed };
const char* state_name(JobState s);  // "RUNNING", "COMPLETED"
std::variant<std::vector<JobState>, std::string> parse_states(std::string_view text);

// Comma-separated names; empty items are an error.
std::variant<std::vector<std::string>, std::string> split_list(std::string_view text, const char* what);

// The filters of a listing (-u, -s, -S/-E, -N). Empty vectors match everything.
struct Filter {
  std::vector<std::string> users;  // user names (numeric uids are turned into names by the caller)
  std::vector<JobState> states;
  std::optional<int64_t> from_ms;  // jobs running at some point in [from, to], as sacct's -S/-E
  std::optional<int64_t> to_ms;
  std::vector<std::string> nodes;  // jobs that ran on any of these
};

bool matches(const Filter& filter, const report::JobTotals& job);

}  // namespace bc::bcacct
