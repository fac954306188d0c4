// sacct_ext: --timeline, a compact chart of a job's series in the terminal (Unicode block characters,
// sized to the terminal width), and --top, the heaviest processes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "accounting_db/store.hpp"
#include "sacct_ext/job_source.hpp"
#include "sacct_ext/report.hpp"

namespace bc::bcacct {

enum class Metric { Cpu, Rss, Io, Threads };
std::optional<Metric> parse_metric(std::string_view text);            // cpu, rss, io, threads
std::optional<store::Resolution> parse_resolution(std::string_view);  // s, m, h, d (or second ... day)

// One chart per series (per node, or the nodes summed) over [from_s, to_s]: `height` rows of block characters, one
// column per bucket or per group of buckets when there are more buckets than columns fit in `columns` characters. Each
// column shows the group's CPU % (CPU time over wall time), its largest RSS, or its read+write bytes per second. A
// column without samples shows '·' on the base line.
std::string render_timeline(const std::vector<report::LabelledSeries>& series, Metric metric, int64_t from_s,
                            int64_t to_s, size_t columns, size_t height = 6);

// The terminal's width: stdout's window size when it is a terminal, else $COLUMNS, else 80.
size_t terminal_columns();

// The n processes with the most CPU time, peak RSS or read+write bytes, heaviest first (ties by pid).
std::vector<store::ProcessRecord> top_processes(std::vector<store::ProcessRecord> processes, Metric by, size_t n);

}  // namespace bc::bcacct
