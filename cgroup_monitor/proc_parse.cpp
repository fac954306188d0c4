#include "cgroup_monitor/proc_parse.hpp"

#include <charconv>
#include <ctime>

#include "common/slurm_ids.hpp"

namespace bc::monitor {
namespace {

std::optional<uint64_t> to_u64(std::string_view s) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr == s.data()) return std::nullopt;
  return v;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Calls fn(line) for each line; stops early when fn returns false.
template <typename Fn>
void for_each_line(std::string_view text, Fn fn) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!fn(line)) return;
    if (nl == std::string_view::npos) return;
    text.remove_prefix(nl + 1);
  }
}

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// "VmHWM:	    1234 kB" -> bytes
std::optional<uint64_t> kb_field(std::string_view value) {
  auto parts = split_ws(value);
  if (parts.empty()) return std::nullopt;
  auto v = to_u64(parts[0]);
  if (!v) return std::nullopt;
  return *v * 1024;
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view text) {
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) return std::nullopt;
  ProcStat st;
  auto pid = to_u64(trim(text.substr(0, open)));
  if (!pid) return std::nullopt;
  st.pid = static_cast<uint32_t>(*pid);
  st.comm = std::string(text.substr(open + 1, close - open - 1));
  // Field 3 (state) is the first after ')'; field N is at index N-3.
  auto f = split_ws(trim(text.substr(close + 1)));
  if (f.size() < 22) return std::nullopt;
  auto field = [&](size_t n) { return to_u64(f[n - 3]); };
  st.state = f[0].empty() ? '?' : f[0][0];
  auto ppid = field(4), utime = field(14), stime = field(15), threads = field(20), start = field(22), rss = field(24);
  auto cutime = field(16), cstime = field(17);
  if (!ppid || !utime || !stime || !cutime || !cstime || !threads || !start || !rss) return std::nullopt;
  st.cutime_ticks = *cutime;
  st.cstime_ticks = *cstime;
  st.num_threads = *threads;
  st.ppid = static_cast<uint32_t>(*ppid);
  st.utime_ticks = *utime;
  st.stime_ticks = *stime;
  st.start_ticks = *start;
  st.rss_pages = *rss;
  return st;
}

std::optional<ProcStatus> parse_proc_status(std::string_view text) {
  ProcStatus st;
  bool saw_uid = false;
  for_each_line(text, [&](std::string_view line) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return true;
    std::string_view key = line.substr(0, colon), value = line.substr(colon + 1);
    if (key == "VmHWM") {
      st.vm_hwm_bytes = kb_field(value).value_or(0);
    } else if (key == "VmRSS") {
      st.vm_rss_bytes = kb_field(value).value_or(0);
    } else if (key == "Uid") {
      auto parts = split_ws(value);
      if (!parts.empty()) {
        if (auto uid = to_u64(parts[0])) {
          st.uid = static_cast<uint32_t>(*uid);
          saw_uid = true;
        }
      }
    }
    return true;
  });
  if (!saw_uid) return std::nullopt;
  return st;
}

std::optional<ProcIo> parse_proc_io(std::string_view text) {
  ProcIo io;
  int seen = 0;
  for_each_line(text, [&](std::string_view line) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return true;
    std::string_view key = line.substr(0, colon);
    auto value = to_u64(trim(line.substr(colon + 1)));
    if (!value) return true;
    if (key == "read_bytes") {
      io.read_bytes = *value;
      seen |= 1;
    } else if (key == "write_bytes") {
      io.write_bytes = *value;
      seen |= 2;
    } else if (key == "cancelled_write_bytes") {
      io.cancelled_write_bytes = *value;
    }
    return true;
  });
  if (seen != 3) return std::nullopt;
  return io;
}

std::vector<std::string> parse_cmdline(std::string_view text) {
  std::vector<std::string> args;
  while (!text.empty()) {
    size_t nul = text.find('\0');
    args.emplace_back(text.substr(0, nul));
    if (nul == std::string_view::npos) break;
    text.remove_prefix(nul + 1);
  }
  return args;
}

std::vector<ProcCgroupLine> parse_proc_cgroup(std::string_view text) {
  std::vector<ProcCgroupLine> out;
  for_each_line(text, [&](std::string_view line) {
    size_t first = line.find(':');
    if (first == std::string_view::npos) return true;
    size_t second = line.find(':', first + 1);
    if (second == std::string_view::npos) return true;
    out.push_back({std::string(line.substr(0, first)), std::string(line.substr(first + 1, second - first - 1)),
                   std::string(trim(line.substr(second + 1)))});
    return true;
  });
  return out;
}

std::optional<uint64_t> flat_keyed_value(std::string_view text, std::string_view key) {
  std::optional<uint64_t> found;
  for_each_line(text, [&](std::string_view line) {
    auto parts = split_ws(line);
    if (parts.size() >= 2 && parts[0] == key) {
      found = to_u64(parts[1]);
      return false;
    }
    return true;
  });
  return found;
}

std::optional<uint64_t> parse_single_u64(std::string_view text) {
  text = trim(text);
  // v2 uses "max" for unlimited values; the caller decides what an absent number means.
  if (text.empty() || text == "max") return std::nullopt;
  return to_u64(text);
}

IoBytes parse_blkio_service_bytes(std::string_view text) {
  IoBytes io;
  for_each_line(text, [&](std::string_view line) {
    auto parts = split_ws(line);
    if (parts.size() != 3) return true;  // skips "Total N"
    auto v = to_u64(parts[2]);
    if (!v) return true;
    if (parts[1] == "Read") io.read_bytes += *v;
    else if (parts[1] == "Write") io.write_bytes += *v;
    return true;
  });
  return io;
}

IoBytes parse_io_stat(std::string_view text) {
  IoBytes io;
  for_each_line(text, [&](std::string_view line) {
    auto parts = split_ws(line);
    for (size_t i = 1; i < parts.size(); ++i) {
      size_t eq = parts[i].find('=');
      if (eq == std::string_view::npos) continue;
      auto key = parts[i].substr(0, eq);
      auto v = to_u64(parts[i].substr(eq + 1));
      if (!v) continue;
      if (key == "rbytes") io.read_bytes += *v;
      else if (key == "wbytes") io.write_bytes += *v;
    }
    return true;
  });
  return io;
}

std::optional<uint32_t> step_from_relative_path(std::string_view relative) {
  while (!relative.empty() && relative.front() == '/') relative.remove_prefix(1);
  std::string_view first = relative.substr(0, relative.find('/'));
  if (first.substr(0, 5) != "step_") return std::nullopt;
  std::string_view name = first.substr(5);
  if (name == "batch") return bc::slurm::kStepBatch;
  if (name == "extern") return bc::slurm::kStepExtern;
  if (name == "interactive") return bc::slurm::kStepInteractive;
  auto v = to_u64(name);
  if (!v || *v >= bc::slurm::kStepInteractive) return std::nullopt;
  return static_cast<uint32_t>(*v);
}

std::optional<uint32_t> count_cpu_list(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  uint32_t count = 0;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view range = text.substr(0, comma);
    uint32_t first = 0, last = 0;
    auto [p, ec] = std::from_chars(range.data(), range.data() + range.size(), first);
    if (ec != std::errc() || p == range.data()) return std::nullopt;
    last = first;
    if (p != range.data() + range.size()) {
      if (*p != '-') return std::nullopt;
      auto [q, ec2] = std::from_chars(p + 1, range.data() + range.size(), last);
      if (ec2 != std::errc() || q != range.data() + range.size() || last < first) return std::nullopt;
    }
    count += last - first + 1;
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return count;
}

std::optional<uint64_t> parse_memory_limit(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text == "max") return 0;
  auto value = parse_single_u64(text);
  // v1 reports "no limit" as LONG_MAX rounded down to a page; anything that large is no limit.
  if (value && *value >= (1ULL << 62)) return 0;
  return value;
}

int64_t boot_epoch_ns() {
  timespec real{}, boot{};
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_BOOTTIME, &boot);
  return (real.tv_sec - boot.tv_sec) * 1'000'000'000LL + (real.tv_nsec - boot.tv_nsec);
}

}  // namespace bc::monitor
