#include "cgroup_reader.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <charconv>

#include "cgroup_paths.hpp"
#include "fd.hpp"

namespace bc::monitor {
namespace {

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::optional<uint64_t> read_u64(const std::string& path) {
  auto text = read_file(path);
  return text ? parse_single_u64(*text) : std::nullopt;
}

// Collects the pids of dir/cgroup.procs and of every sub-cgroup. relative is the path below the job dir,
// from which the step is known.
void collect_members(const std::string& dir, const std::string& relative, std::vector<MemberPid>& out) {
  if (auto procs = read_file(dir + "/cgroup.procs")) {
    auto step = step_from_relative_path(relative);
    std::string_view text = *procs;
    while (!text.empty()) {
      size_t nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      uint32_t pid = 0;
      auto [ptr, ec] = std::from_chars(line.data(), line.data() + line.size(), pid);
      if (ec == std::errc() && ptr != line.data()) out.push_back({pid, step});
      if (nl == std::string_view::npos) break;
      text.remove_prefix(nl + 1);
    }
  }
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return;
  while (dirent* e = ::readdir(d.get())) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
    collect_members(dir + "/" + e->d_name, relative + "/" + e->d_name, out);
  }
}

std::string mount_or_override(const std::string& controller, const std::string& root_override) {
  if (!root_override.empty()) return controller.empty() ? root_override : root_override + "/" + controller;
  return cgroup_mount_point(controller).value_or("");
}

class V1Reader final : public CgroupReader {
 public:
  V1Reader(const std::string& relative, const std::string& root_override) {
    auto dir = [&](const char* controller) {
      std::string mount = mount_or_override(controller, root_override);
      return mount.empty() ? std::string() : mount + relative;
    };
    freezer_ = dir("freezer");
    memory_ = dir("memory");
    cpuacct_ = dir("cpuacct");
    cpuset_ = dir("cpuset");
    blkio_ = dir("blkio");
    pids_ = dir("pids");
  }
  int version() const override { return 1; }

  bool exists() override { return !process_dir().empty(); }

  CgroupTotals totals() override {
    CgroupTotals t;
    if (auto cpu = read_u64(cpuacct_ + "/cpuacct.usage")) {
      t.has_cpu = true;
      t.cpu_ns = *cpu;
    }
    if (auto current = read_u64(memory_ + "/memory.usage_in_bytes")) {
      t.has_memory = true;
      t.mem_current = *current;
      t.mem_peak = read_u64(memory_ + "/memory.max_usage_in_bytes").value_or(*current);
    }
    if (auto blkio = read_file(blkio_ + "/blkio.throttle.io_service_bytes")) {
      t.has_io = true;
      t.io = parse_blkio_service_bytes(*blkio);
    }
    if (auto pids = read_u64(pids_ + "/pids.current")) {
      t.has_pids = true;
      t.pids = *pids;
    }
    if (auto cpus = read_file(cpuset_ + "/cpuset.cpus")) t.cpus = count_cpu_list(*cpus).value_or(0);
    if (auto limit = read_file(memory_ + "/memory.limit_in_bytes")) t.mem_limit = parse_memory_limit(*limit).value_or(0);
    return t;
  }

  std::vector<MemberPid> members() override {
    std::vector<MemberPid> out;
    std::string dir = process_dir();
    if (!dir.empty()) collect_members(dir, "", out);
    return out;
  }

 private:
  // proctrack/cgroup puts every process of the job (slurmstepd included) in the freezer tree; the
  // others are fallbacks for sites that track differently.
  std::string process_dir() {
    for (const std::string* d : {&freezer_, &memory_, &cpuset_, &cpuacct_})
      if (!d->empty() && is_dir(*d)) return *d;
    return {};
  }
  std::string freezer_, memory_, cpuacct_, cpuset_, blkio_, pids_;
};

class V2Reader final : public CgroupReader {
 public:
  V2Reader(const std::string& relative, const std::string& root_override) {
    std::string mount = mount_or_override("", root_override);
    if (!mount.empty()) dir_ = mount + relative;
  }
  int version() const override { return 2; }
  bool exists() override { return !dir_.empty() && is_dir(dir_); }

  CgroupTotals totals() override {
    CgroupTotals t;
    if (auto stat = read_file(dir_ + "/cpu.stat")) {
      if (auto usec = flat_keyed_value(*stat, "usage_usec")) {
        t.has_cpu = true;
        t.cpu_ns = *usec * 1000;
      }
    }
    if (auto current = read_u64(dir_ + "/memory.current")) {
      t.has_memory = true;
      t.mem_current = *current;
      t.mem_peak = read_u64(dir_ + "/memory.peak").value_or(*current);
    }
    if (auto io = read_file(dir_ + "/io.stat")) {
      t.has_io = true;
      t.io = parse_io_stat(*io);
    }
    if (auto pids = read_u64(dir_ + "/pids.current")) {
      t.has_pids = true;
      t.pids = *pids;
    }
    if (auto cpus = read_file(dir_ + "/cpuset.cpus.effective")) t.cpus = count_cpu_list(*cpus).value_or(0);
    if (auto limit = read_file(dir_ + "/memory.max")) t.mem_limit = parse_memory_limit(*limit).value_or(0);
    return t;
  }

  std::vector<MemberPid> members() override {
    std::vector<MemberPid> out;
    if (exists()) collect_members(dir_, "", out);
    return out;
  }

 private:
  std::string dir_;
};

}  // namespace

std::unique_ptr<CgroupReader> make_cgroup_reader(int version, const std::string& relative_path,
                                                 const std::string& root_override) {
  if (version == 2) return std::make_unique<V2Reader>(relative_path, root_override);
  return std::make_unique<V1Reader>(relative_path, root_override);
}

}  // namespace bc::monitor
