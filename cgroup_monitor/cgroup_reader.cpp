#include "cgroup_monitor/cgroup_reader.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <charconv>

#include "cgroup_monitor/cgroup_paths.hpp"
#include "common/fd.hpp"

namespace bc::monitor {
namespace {

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// One cgroup file read every tick through a kept fd (pread from 0 makes kernfs show it afresh), so an idle
// tick costs a read, not an open, a read and a close. A failed read drops the fd and opens the path again:
// after Slurm removed the cgroup and made a new one under the same name, the old fd answers ENODEV.
class CgroupFile {
 public:
  explicit CgroupFile(std::string path = {}) : path_(std::move(path)) {}
  std::optional<std::string> read() {
    if (path_.empty()) return std::nullopt;
    if (fd_) {
      if (auto text = pread_all(fd_.get())) return text;
      fd_.reset();
    }
    fd_ = open_read(path_);
    if (!fd_) return std::nullopt;
    auto text = pread_all(fd_.get());
    if (!text) fd_.reset();
    return text;
  }
  std::optional<uint64_t> read_u64() {
    auto text = read();
    return text ? parse_single_u64(*text) : std::nullopt;
  }
  void close() { fd_.reset(); }

 private:
  std::string path_;
  UniqueFd fd_;
};

// Collects the pids of the directory's cgroup.procs and of every sub-cgroup. relative is the path below the
// job dir, from which the step is known. Lookups go from directory fds, so a tick walks no long paths.
// cgroup.procs is opened for every read: on v1 a kept fd would keep answering from the pid list the kernel
// cached for it, and a job's new processes would go unseen.
void collect_members(int dir_fd, const std::string& relative, std::vector<MemberPid>& out) {
  if (UniqueFd procs{::openat(dir_fd, "cgroup.procs", O_RDONLY | O_CLOEXEC)}) {
    if (auto text_read = pread_all(procs.get())) {
      auto step = step_from_relative_path(relative);
      std::string_view text = *text_read;
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
  }
  int listing_fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (listing_fd < 0) return;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(listing_fd), ::closedir);
  if (!d) {
    ::close(listing_fd);
    return;
  }
  while (dirent* e = ::readdir(d.get())) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
    if (UniqueFd child{::openat(dir_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)})
      collect_members(child.get(), relative + "/" + e->d_name, out);
  }
}

// The job's directory, kept open. A removed directory is dead: nothing can be looked up in it any more, so
// finding its cgroup.procs (one lookup from the fd) tells that the directory still exists, without walking
// the whole path again each tick.
class CgroupDir {
 public:
  bool still_there() const {
    struct stat st {};
    return fd_ && ::fstatat(fd_.get(), "cgroup.procs", &st, 0) == 0;
  }
  bool open(const std::string& path) {
    fd_ = UniqueFd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    return bool(fd_);
  }
  void close() { fd_.reset(); }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
};

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
    const std::string blkio = dir("blkio"), pids = dir("pids");
    auto file = [](const std::string& d, const char* name) { return CgroupFile(d.empty() ? d : d + "/" + name); };
    cpu_usage_ = file(cpuacct_, "cpuacct.usage");
    mem_usage_ = file(memory_, "memory.usage_in_bytes");
    mem_max_usage_ = file(memory_, "memory.max_usage_in_bytes");
    mem_limit_ = file(memory_, "memory.limit_in_bytes");
    io_bytes_ = file(blkio, "blkio.throttle.io_service_bytes");
    pids_current_ = file(pids, "pids.current");
    cpus_ = file(cpuset_, "cpuset.cpus");
  }
  int version() const override { return 1; }

  bool exists() override {
    if (dir_.still_there()) return true;
    dir_.close();
    // A directory made anew under the same name has new files too.
    for (CgroupFile* f : {&cpu_usage_, &mem_usage_, &mem_max_usage_, &mem_limit_, &io_bytes_, &pids_current_, &cpus_})
      f->close();
    const std::string path = find_process_dir();
    return !path.empty() && dir_.open(path);
  }

  CgroupTotals totals() override {
    CgroupTotals t;
    if (auto cpu = cpu_usage_.read_u64()) {
      t.has_cpu = true;
      t.cpu_ns = *cpu;
    }
    if (auto current = mem_usage_.read_u64()) {
      t.has_memory = true;
      t.mem_current = *current;
      t.mem_peak = mem_max_usage_.read_u64().value_or(*current);
    }
    if (auto blkio = io_bytes_.read()) {
      t.has_io = true;
      t.io = parse_blkio_service_bytes(*blkio);
    }
    if (auto pids = pids_current_.read_u64()) {
      t.has_pids = true;
      t.pids = *pids;
    }
    if (auto cpus = cpus_.read()) t.cpus = count_cpu_list(*cpus).value_or(0);
    if (auto limit = mem_limit_.read()) t.mem_limit = parse_memory_limit(*limit).value_or(0);
    return t;
  }

  // Walks the directory the last exists() found.
  std::vector<MemberPid> members() override {
    std::vector<MemberPid> out;
    if (dir_.fd() >= 0 || exists()) collect_members(dir_.fd(), "", out);
    return out;
  }

 private:
  // proctrack/cgroup puts every process of the job (slurmstepd included) in the freezer tree; the
  // others are fallbacks for sites that track differently.
  std::string find_process_dir() const {
    for (const std::string* d : {&freezer_, &memory_, &cpuset_, &cpuacct_})
      if (!d->empty() && is_dir(*d)) return *d;
    return {};
  }
  std::string freezer_, memory_, cpuacct_, cpuset_;
  CgroupDir dir_;
  CgroupFile cpu_usage_, mem_usage_, mem_max_usage_, mem_limit_, io_bytes_, pids_current_, cpus_;
};

class V2Reader final : public CgroupReader {
 public:
  V2Reader(const std::string& relative, const std::string& root_override) {
    std::string mount = mount_or_override("", root_override);
    if (!mount.empty()) dir_ = mount + relative;
    auto file = [&](const char* name) { return CgroupFile(dir_.empty() ? dir_ : dir_ + "/" + name); };
    cpu_stat_ = file("cpu.stat");
    mem_current_ = file("memory.current");
    mem_peak_ = file("memory.peak");
    mem_max_ = file("memory.max");
    io_stat_ = file("io.stat");
    pids_current_ = file("pids.current");
    cpus_ = file("cpuset.cpus.effective");
  }
  int version() const override { return 2; }
  bool exists() override {
    if (job_dir_.still_there()) return true;
    job_dir_.close();
    // A directory made anew under the same name has new files too.
    for (CgroupFile* f : {&cpu_stat_, &mem_current_, &mem_peak_, &mem_max_, &io_stat_, &pids_current_, &cpus_})
      f->close();
    return !dir_.empty() && job_dir_.open(dir_);
  }

  CgroupTotals totals() override {
    CgroupTotals t;
    if (auto stat = cpu_stat_.read()) {
      if (auto usec = flat_keyed_value(*stat, "usage_usec")) {
        t.has_cpu = true;
        t.cpu_ns = *usec * 1000;
      }
    }
    if (auto current = mem_current_.read_u64()) {
      t.has_memory = true;
      t.mem_current = *current;
      t.mem_peak = mem_peak_.read_u64().value_or(*current);
    }
    if (auto io = io_stat_.read()) {
      t.has_io = true;
      t.io = parse_io_stat(*io);
    }
    if (auto pids = pids_current_.read_u64()) {
      t.has_pids = true;
      t.pids = *pids;
    }
    if (auto cpus = cpus_.read()) t.cpus = count_cpu_list(*cpus).value_or(0);
    if (auto limit = mem_max_.read()) t.mem_limit = parse_memory_limit(*limit).value_or(0);
    return t;
  }

  // Walks the directory the last exists() found.
  std::vector<MemberPid> members() override {
    std::vector<MemberPid> out;
    if (job_dir_.fd() >= 0 || exists()) collect_members(job_dir_.fd(), "", out);
    return out;
  }

 private:
  std::string dir_;
  CgroupDir job_dir_;
  CgroupFile cpu_stat_, mem_current_, mem_peak_, mem_max_, io_stat_, pids_current_, cpus_;
};

}  // namespace

std::unique_ptr<CgroupReader> make_cgroup_reader(int version, const std::string& relative_path,
                                                 const std::string& root_override) {
  if (version == 2) return std::make_unique<V2Reader>(relative_path, root_override);
  return std::make_unique<V1Reader>(relative_path, root_override);
}

}  // namespace bc::monitor
