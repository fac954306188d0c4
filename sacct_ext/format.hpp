// sacct_ext: sacct-style rows. -o/--format field lists with %N widths, the fixed-width table, -p/-P
// parsable output and -n. One row per job, or one per process when the format names a process field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sacct_ext/report.hpp"

namespace bc::bcacct {

// A job as shown: its records, totals, the id to print and the processes to list (in order).
struct JobView {
  report::JobData data;  // data.processes: the rows of a per-process format, in the order given
  report::JobTotals totals;
  std::string display_id;  // the Slurm job id, or a container's short id
};

struct FieldDef;  // format.cpp

struct Column {
  const FieldDef* field = nullptr;
  int width = 0;      // characters in the fixed-width table
  bool left = false;  // left-justified
};

struct Format {
  std::vector<Column> columns;
  bool per_process = false;  // a process field is present: one row per process
};

// "JobID,User%12,Command%-30": sacct's field names (case-insensitive) with an optional width; a negative
// width left-justifies. Returns the format, or the reason the text is not one.
std::variant<Format, std::string> parse_format(std::string_view text);

// Job rows: JobID,User,State,Start,End,Elapsed,NodeList,TotalCPU,MaxRSS.
// Process rows: JobID,Step,PID,PPID,NodeList,Command,Start,End,TotalCPU,MaxRSS,ReadBytes,WriteBytes.
Format default_format(bool per_process);

// Every field with its level and meaning, for -e/--helpformat.
std::string help_format();

enum class Layout {
  Fixed,      // columns padded to their width, values too long end in '+', like sacct
  Parsable,   // -p: every field followed by '|'
  Parsable2,  // -P: fields separated by '|'
};

// now_ms: the elapsed time of what is still running.
std::string render_rows(const Format& format, const std::vector<JobView>& jobs, Layout layout, bool header,
                        int64_t now_ms);

}  // namespace bc::bcacct
