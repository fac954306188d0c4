#include "sacct_ext/timeline.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <tuple>

namespace bc::bcacct {
namespace {

// U+2581 .. U+2588: one to eight eighths of a cell.
constexpr const char* kBlocks[] = {"\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"};

struct Column {
  bool has_data = false;
  uint64_t timed_cpu_ns = 0, wall_s = 0, rss_max = 0, io_bytes = 0, threads_max = 0;
  int64_t seconds = 0;  // the width of the time the column covers
};

double value_of(const Column& c, Metric metric) {
  switch (metric) {
    case Metric::Cpu:
      return c.wall_s ? static_cast<double>(c.timed_cpu_ns) / (static_cast<double>(c.wall_s) * 1e7) : 0.0;
    case Metric::Rss: return static_cast<double>(c.rss_max);
    case Metric::Io: return c.seconds ? static_cast<double>(c.io_bytes) / static_cast<double>(c.seconds) : 0.0;
    case Metric::Threads: return static_cast<double>(c.threads_max);
  }
  return 0.0;
}

std::string label(double v, Metric metric) {
  char buf[32];
  if (metric == Metric::Cpu) {
    std::snprintf(buf, sizeof buf, "%.0f%%", v);
    return buf;
  }
  if (metric == Metric::Threads) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  std::string size = report::format_size(static_cast<uint64_t>(std::llround(v)));
  return metric == Metric::Io ? size + "/s" : size;
}

const char* metric_title(Metric metric) {
  switch (metric) {
    case Metric::Cpu: return "CPU % (CPU time over wall time; 100% = one core)";
    case Metric::Rss: return "RSS (largest in each column)";
    case Metric::Io: return "I/O (read+write bytes per second)";
    case Metric::Threads: return "threads (most at once in each column)";
  }
  return "";
}

std::string pad_left(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

}  // namespace

std::optional<Metric> parse_metric(std::string_view text) {
  if (text == "cpu") return Metric::Cpu;
  if (text == "rss") return Metric::Rss;
  if (text == "io") return Metric::Io;
  if (text == "threads") return Metric::Threads;
  return std::nullopt;
}

std::optional<store::Resolution> parse_resolution(std::string_view text) {
  if (text == "s" || text == "second") return store::Resolution::Second;
  if (text == "m" || text == "minute") return store::Resolution::Minute;
  if (text == "h" || text == "hour") return store::Resolution::Hour;
  if (text == "d" || text == "day") return store::Resolution::Day;
  return std::nullopt;
}

size_t terminal_columns() {
  struct winsize ws {};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* env = std::getenv("COLUMNS"); env && *env) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (*end == '\0' && v > 0 && v < 10000) return static_cast<size_t>(v);
  }
  return 80;
}

std::string render_timeline(const std::vector<report::LabelledSeries>& series, Metric metric, int64_t from_s,
                            int64_t to_s, size_t columns, size_t height) {
  constexpr size_t kAxis = 11;  // "  123.45K ┤"
  const size_t chart_width = std::max<size_t>(columns > kAxis + 1 ? columns - kAxis - 1 : 0, 10);
  height = std::max<size_t>(height, 1);
  std::string out;
  for (const report::LabelledSeries& node : series) {
    const int64_t bucket = store::bucket_seconds(node.data.resolution);
    const int64_t first = from_s - from_s % bucket;
    const int64_t buckets = std::max<int64_t>((to_s - first) / bucket + 1, 1);
    const int64_t per_column = (buckets + static_cast<int64_t>(chart_width) - 1) / static_cast<int64_t>(chart_width);
    const size_t used = static_cast<size_t>((buckets + per_column - 1) / per_column);
    std::vector<Column> cols(used);
    for (Column& c : cols) c.seconds = per_column * bucket;
    for (const store::Rollup& r : node.data.buckets) {
      if (r.samples == 0 || r.start_s < first) continue;
      const size_t index = static_cast<size_t>((r.start_s - first) / bucket / per_column);
      if (index >= cols.size()) continue;
      Column& c = cols[index];
      c.has_data = true;
      c.timed_cpu_ns += r.timed_cpu_ns;
      c.wall_s += r.wall_s;
      c.rss_max = std::max(c.rss_max, r.rss_max);
      c.io_bytes += r.read_bytes + r.write_bytes;
      c.threads_max = std::max<uint64_t>(c.threads_max, r.threads_max);
    }
    double max = 0;
    for (const Column& c : cols) max = std::max(max, value_of(c, metric));

    char title[256];
    std::snprintf(title, sizeof title, "%s: %s, %s resolution, 1 column = %s\n", node.label.c_str(),
                  metric_title(metric), store::resolution_name(node.data.resolution),
                  report::format_duration(per_column * bucket).c_str());
    out += title;
    const size_t levels = height * 8;
    for (size_t row = height; row-- > 0;) {
      std::string axis = row + 1 == height ? label(max, metric) : row == 0 ? label(0, metric) : "";
      out += pad_left(axis, kAxis - 2) + (row + 1 == height || row == 0 ? " \u2524" : " \u2502");
      std::string line;
      for (const Column& c : cols) {
        if (!c.has_data) {
          line += row == 0 ? "\u00b7" : " ";
          continue;
        }
        const double v = value_of(c, metric);
        const size_t eighths = max > 0 ? static_cast<size_t>(std::llround(v / max * static_cast<double>(levels))) : 0;
        if (eighths >= (row + 1) * 8) line += kBlocks[7];
        else if (eighths > row * 8) line += kBlocks[eighths - row * 8 - 1];
        else line += " ";
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n";
    }
    // Time axis: start under the first column, end under the last when there is room for both.
    const std::string start = report::local_time(first * 1000);
    const std::string end = report::local_time((first + static_cast<int64_t>(used) * per_column * bucket) * 1000);
    std::string axis(kAxis, ' ');
    axis += start;
    if (used >= start.size() + end.size() + 2) axis += std::string(used - start.size() - end.size(), ' ') + end;
    out += axis + "\n";
  }
  return out;
}

std::vector<store::ProcessRecord> top_processes(std::vector<store::ProcessRecord> processes, Metric by, size_t n) {
  const auto weight = [by](const store::ProcessRecord& p) -> uint64_t {
    switch (by) {
      case Metric::Cpu: return p.cpu_ns;
      case Metric::Rss: return p.max_rss;
      case Metric::Io: return p.read_bytes + p.write_bytes;
      case Metric::Threads: return p.max_threads;
    }
    return 0;
  };
  std::stable_sort(processes.begin(), processes.end(), [&](const auto& a, const auto& b) {
    return std::make_tuple(weight(b), a.pid, a.node) < std::make_tuple(weight(a), b.pid, b.node);
  });
  if (processes.size() > n) processes.resize(n);
  return processes;
}

}  // namespace bc::bcacct
