// The node's pinned program set: loading (the verifier), pinning, attaching, and the slot table's
// bookkeeping. Design notes in events.hpp; interface in program_set.hpp.
#include "cgroup_monitor/bpf/program_set.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Woverlength-strings"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "bc_events.skel.h"
#include "cgroup_monitor/proc_parse.hpp"
#pragma GCC diagnostic pop

namespace bc::events::detail {
namespace {

void default_log(LogLevel level, const std::string& text) {
  static const char* const names[] = {"debug", "info", "warning", "error"};
  std::fprintf(stderr, "bc-events: %s: %s\n", names[static_cast<int>(level)], text.c_str());
}

uint64_t fnv1a(const void* data, size_t size, uint64_t h = 0xcbf29ce484222325ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

// A monitor that died and waits to be reaped (a zombie) holds its pid but no longer its slot.
bool owner_alive(const bc_slot_owner& o) {
  if (o.pid == 0) return false;
  char state = 0;
  return proc_start_ticks(o.pid, &state) == o.start_ticks && !has_ended(state);
}

// What one object's load left: the refused program (from libbpf's messages) and the end of its verifier log.
struct LoadCapture {
  static constexpr size_t kTailLines = 12;
  std::string program;
  std::deque<std::string> tail;

  // libbpf's message "prog 'NAME': BPF program load failed: ..." names the refused program.
  void take_message(const std::string& text) {
    if (text.find("BPF program load failed") == std::string::npos) return;
    const size_t quote = text.find("prog '");
    if (quote == std::string::npos) return;
    const size_t end = text.find('\'', quote + 6);
    if (end != std::string::npos) program = text.substr(quote + 6, end - quote - 6);
  }

  // The verifier's log of the refused program: its last lines are kept.
  void take_log(std::string_view log) {
    tail.clear();
    size_t pos = 0;
    while (pos < log.size()) {
      const size_t nl = std::min(log.find('\n', pos), log.size());
      if (nl > pos) tail.emplace_back(log.substr(pos, nl - pos));
      if (tail.size() > kTailLines) tail.pop_front();
      pos = nl + 1;
    }
  }

  // The verifier's own word: the first line after the last instruction it printed that is not one of its
  // closing statistics ("invalid access to map value, ...", "BPF program is too large. ...").
  std::string verdict() const {
    auto is_stats = [](const std::string& l) {
      return l.rfind("processed ", 0) == 0 || l.rfind("verification time", 0) == 0 || l.rfind("stack depth", 0) == 0;
    };
    auto is_listing = [](const std::string& l) {
      return l.rfind("; ", 0) == 0 ||
             (!l.empty() && std::isdigit(static_cast<unsigned char>(l[0])) && l.find(": ") != std::string::npos);
    };
    size_t first = 0;
    for (size_t i = 0; i < tail.size(); ++i)
      if (is_listing(tail[i])) first = i + 1;
    for (size_t i = first; i < tail.size(); ++i)
      if (!is_stats(tail[i])) return tail[i];
    return {};
  }
};

// libbpf's messages go to the log of the collector being opened. libbpf's printer is process-wide, so it is
// set around each load under a mutex and restored afterwards.
std::mutex g_print_mutex;
const Logger* g_print_logger = nullptr;
bool g_print_verbose = false;
LoadCapture* g_print_capture = nullptr;

// Called by libbpf (C): nothing may throw out of it.
int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (!g_print_logger) return 0;
  if (level == LIBBPF_DEBUG && !g_print_verbose) return 0;
  va_list again;
  va_copy(again, args);
  const int n = std::vsnprintf(nullptr, 0, fmt, args);
  std::string text;
  bool formatted = false;
  if (n > 0) {
    try {
      text.assign(static_cast<size_t>(n) + 1, '\0');
      formatted = true;
    } catch (...) {
    }
    if (formatted) std::vsnprintf(text.data(), text.size(), fmt, again);
  }
  va_end(again);
  if (!formatted) return 0;
  try {
    text.resize(static_cast<size_t>(n));
    if (g_print_capture && level == LIBBPF_WARN) g_print_capture->take_message(text);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    LogLevel l = level == LIBBPF_WARN ? LogLevel::Warn : level == LIBBPF_INFO ? LogLevel::Info : LogLevel::Debug;
    if (text.rfind("libbpf: ", 0) != 0) text = "libbpf: " + text;
    (*g_print_logger)(l, text);
  } catch (...) {
    return 0;  // out of memory: the line is lost, the load goes on
  }
  return n;
}

class PrintScope {
 public:
  PrintScope(const Logger& log, bool verbose, LoadCapture* capture = nullptr) : lock_(g_print_mutex) {
    g_print_logger = &log;
    g_print_verbose = verbose;
    g_print_capture = capture;
    previous_ = libbpf_set_print(libbpf_print);
  }
  ~PrintScope() {
    libbpf_set_print(previous_);
    g_print_logger = nullptr;
    g_print_capture = nullptr;
  }
  PrintScope(const PrintScope&) = delete;
  PrintScope& operator=(const PrintScope&) = delete;

 private:
  std::lock_guard<std::mutex> lock_;
  libbpf_print_fn_t previous_ = nullptr;
};

// Move-only owner of the generated skeleton, opened on the source's bytes (the built-in object's, or a
// file's: the skeleton then finds the same maps and programs by name in it).
class Skeleton {
 public:
  explicit Skeleton(const ObjectSource& source) {
    auto* s = static_cast<bc_events_bpf*>(std::calloc(1, sizeof(bc_events_bpf)));
    if (!s) return;
    int err = bc_events_bpf__create_skeleton(s);
    if (err == 0) {
      s->skeleton->data = const_cast<void*>(source.data());
      s->skeleton->data_sz = source.size();
      err = bpf_object__open_skeleton(s->skeleton, nullptr);
    }
    if (err != 0) {
      bc_events_bpf__destroy(s);
      errno = err < 0 ? -err : err;
      return;
    }
    skel_ = s;
  }
  ~Skeleton() {
    if (skel_) bc_events_bpf__destroy(skel_);
  }
  Skeleton(Skeleton&& o) noexcept : skel_(std::exchange(o.skel_, nullptr)) {}
  Skeleton& operator=(Skeleton&& o) noexcept {
    if (this != &o) {
      if (skel_) bc_events_bpf__destroy(skel_);
      skel_ = std::exchange(o.skel_, nullptr);
    }
    return *this;
  }
  Skeleton(const Skeleton&) = delete;
  Skeleton& operator=(const Skeleton&) = delete;
  bc_events_bpf* operator->() const { return skel_; }
  bc_events_bpf* get() const { return skel_; }
  explicit operator bool() const { return skel_ != nullptr; }

 private:
  bc_events_bpf* skel_ = nullptr;
};

// Pinned names, one file each under <pin_dir>/<tag>/.
const char* const kMapNames[] = {"tracked",     "slot_cfg",      "slot_stats",  "slot_owner", "node_cfg",
                                 "gen_counter", "file_ids",      "rings",       "files",      "conns",
                                 "exiting",     "exiting_count", "tracked_bits"};
// Programs stay loaded (pinned) while the node has no monitored job: loading means the verifier, which every
// job's tasks would wait for (they wait until their monitor tracks them). Only the links are removed then,
// which detaches the programs, so an idle node runs nothing.
struct Hook {
  const char* function;    // the program's function in bc_events.bpf.c
  const char* prog;        // pinned program
  const char* link;        // pinned link: present while attached
  const char* tracepoint;  // raw tracepoint
};
const Hook kHooks[] = {{"bc_sys_exit", "prog_sys_exit", "link_sys_exit", "sys_exit"},
                       {"bc_fork", "prog_fork", "link_fork", "sched_process_fork"},
                       {"bc_exec", "prog_exec", "link_exec", "sched_process_exec"},
                       {"bc_exit", "prog_exit", "link_exit", "sched_process_exit"},
                       {"bc_switch", "prog_switch", "link_switch", "sched_switch"}};
const char kMetaName[] = "meta";  // pinned last: its presence marks a complete set

constexpr size_t kVerifierLogBytes = 64 << 10;
constexpr uint32_t kVerifierLogStats = 4;  // the kernel's BPF_LOG_STATS (since 5.2), not in its UAPI headers

// The skeleton's programs, in kHooks' order.
std::array<bpf_program*, std::size(kHooks)> skeleton_programs(const Skeleton& skel) {
  return {skel->progs.bc_sys_exit, skel->progs.bc_fork, skel->progs.bc_exec, skel->progs.bc_exit,
          skel->progs.bc_switch};
}

uint32_t verified_insns(int prog_fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return 0;
  return info.verified_insns;  // 0 before 5.16: the kernel leaves the field as we gave it
}

std::string load_reason(int err, const LoadCapture& capture) {
  const int e = err < 0 ? -err : err;
  if (e == EPERM) return "no privilege to load BPF programs (needs root, or CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN)";
  if (capture.program.empty()) return "cannot load the BPF programs: " + errno_text(e);
  std::string text = "cannot load the BPF programs: the verifier refused " + capture.program;
  const std::string verdict = capture.verdict();
  return text + " (" + (verdict.empty() ? errno_text(e) : verdict) + ")";
}

double ms_since(const timespec& start) {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec - start.tv_sec) * 1e3 + static_cast<double>(now.tv_nsec - start.tv_nsec) / 1e6;
}

// Opens and loads the object (the verifier runs here). Nothing on failure, with result.error set.
std::optional<Skeleton> load_object(const ObjectSource& object, const Logger& log, bool verbose, LoadResult& result) {
  LoadCapture capture;
  PrintScope print(log, verbose, &capture);
  Skeleton skel(object);
  if (!skel) {
    const int e = errno;
    result.error = "cannot open the BPF object (" + object.describe() + "): " + errno_text(e);
    result.remember = e != ENOMEM;  // a malformed object stays malformed
    return std::nullopt;
  }
  skel->rodata->page_size = static_cast<__u32>(::sysconf(_SC_PAGESIZE));
  // The verifier's log at its statistics level: a refused program's reason and figures, a few lines, in one
  // load. Without it libbpf loads a refused program again with the whole instruction trace, into a buffer it
  // doubles and loads again while the trace does not fit: for a program refused at the instruction limit that
  // was seconds more of the verifier and hundreds of MiB. Programs load one after the other: one buffer.
  std::vector<char> verifier_log(kVerifierLogBytes);
  for (bpf_program* prog : skeleton_programs(skel)) {
    bpf_program__set_log_level(prog, kVerifierLogStats);
    bpf_program__set_log_buf(prog, verifier_log.data(), verifier_log.size());
  }
  timespec start{};
  clock_gettime(CLOCK_MONOTONIC, &start);
  const int err = bc_events_bpf__load(skel.get());
  result.load_ms = ms_since(start);
  if (err != 0) {
    verifier_log.back() = '\0';
    capture.take_log(std::string_view(verifier_log.data()));
    result.error = load_reason(err, capture);
    result.verifier_log.assign(capture.tail.begin(), capture.tail.end());
    // The kernel refused the object; privilege and memory may differ next time.
    const int e = err < 0 ? -err : err;
    result.remember = e != EPERM && e != ENOMEM;
    return std::nullopt;
  }
  const auto progs = skeleton_programs(skel);
  result.programs.clear();
  for (size_t i = 0; i < progs.size(); ++i)
    result.programs.push_back({kHooks[i].function, verified_insns(bpf_program__fd(progs[i]))});
  return skel;
}

}  // namespace

std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }

bool remember_load_failure(const std::string& memory, const std::string& object_tag, const std::string& reason,
                           const Logger& log) {
  std::string why;
  if (write_load_failure(memory, {running_kernel(), object_tag, static_cast<int64_t>(::time(nullptr)), reason}, why))
    return true;
  log(LogLevel::Warn, "cannot remember the failed load: " + why);
  return false;
}

Logger::Logger(std::function<void(LogLevel, const std::string&)> sink, bool verbose)
    : sink_(sink ? std::move(sink) : default_log), verbose_(verbose) {}

void Logger::operator()(LogLevel level, const std::string& text) const noexcept {
  if (level == LogLevel::Debug && !verbose_) return;
  try {
    sink_(level, text);
  } catch (...) {
  }
}

std::optional<SlotLock> SlotLock::take(const std::string& run_dir, std::string& error) {
  if (::mkdir(run_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    error = "cannot create run dir " + run_dir + ": " + errno_text(errno);
    return std::nullopt;
  }
  std::string path = run_dir + "/bpf-events.lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) {
    error = "cannot open " + path + ": " + errno_text(errno);
    return std::nullopt;
  }
  // The holder may be loading the programs: wait up to 30 s.
  for (int i = 0; i < 3000; ++i) {
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return SlotLock(std::move(fd));
    if (errno != EWOULDBLOCK && errno != EINTR) break;
    ::usleep(10000);
  }
  error = "cannot lock " + path + ": " + errno_text(errno);
  return std::nullopt;
}

uint64_t proc_start_ticks(uint32_t pid, char* state) {
  const auto text = bc::read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto stat = text ? monitor::parse_proc_stat(*text) : std::nullopt;
  if (!stat) return 0;
  if (state) *state = stat->state;
  return stat->start_ticks;
}

TrackedBits::TrackedBits(int map_fd) {
  void* p = ::mmap(nullptr, BC_TGID_LIMIT / 8, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
  if (p != MAP_FAILED) words_ = static_cast<uint64_t*>(p);
}

TrackedBits::TrackedBits(TrackedBits&& o) noexcept : words_(std::exchange(o.words_, nullptr)) {}

TrackedBits& TrackedBits::operator=(TrackedBits&& o) noexcept {
  if (this != &o) {
    reset();
    words_ = std::exchange(o.words_, nullptr);
  }
  return *this;
}

TrackedBits::~TrackedBits() { reset(); }

void TrackedBits::mark(uint32_t tgid) noexcept {
  if (!words_ || tgid >= BC_TGID_LIMIT) return;
  std::atomic_ref<uint64_t>(words_[tgid / 64]).fetch_or(uint64_t{1} << (tgid % 64));
}

void TrackedBits::reset() noexcept {
  if (words_) ::munmap(words_, BC_TGID_LIMIT / 8);
  words_ = nullptr;
}

std::optional<ObjectSource> ObjectSource::open(const std::string& file, std::string& error) {
  ObjectSource s;
  s.file_ = file;
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    s.bytes_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      error = "cannot read the BPF object " + file + ": " + errno_text(errno);
      return std::nullopt;
    }
    if (s.bytes_.empty()) {
      error = "cannot read the BPF object " + file + (in ? ": it is empty" : ": " + errno_text(errno));
      return std::nullopt;
    }
  }
  uint32_t layout = BC_LAYOUT_VERSION;
  s.tag_ = fnv1a(&layout, sizeof layout, fnv1a(s.data(), s.size()));
  return s;
}

const void* ObjectSource::data() const noexcept {
  if (!bytes_.empty()) return bytes_.data();
  size_t size = 0;
  return bc_events_bpf__elf_bytes(&size);
}

size_t ObjectSource::size() const noexcept {
  if (!bytes_.empty()) return bytes_.size();
  size_t size = 0;
  bc_events_bpf__elf_bytes(&size);
  return size;
}

std::string ObjectSource::describe() const { return file_.empty() ? "built in" : file_; }

std::string tag_hex(uint64_t tag) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(tag));
  return buf;
}

namespace {

bool is_bpffs(const std::string& path) {
  struct statfs st {};
  return ::statfs(path.c_str(), &st) == 0 && static_cast<unsigned long>(st.f_type) == 0xcafe4a11ul;
}

}  // namespace

bool ensure_bpffs(const std::string& pin_dir, const Logger& log, std::string& error) {
  std::string parent = pin_dir.substr(0, pin_dir.find_last_of('/'));
  if (parent.empty()) parent = "/";
  if (is_bpffs(parent)) return true;
  if (parent.rfind("/sys/fs/bpf", 0) == 0 && !is_bpffs("/sys/fs/bpf")) {
    ::mkdir("/sys/fs/bpf", 0700);
    if (::mount("bpffs", "/sys/fs/bpf", "bpf", 0, "mode=0700") == 0) {
      log(LogLevel::Info, "mounted the BPF filesystem on /sys/fs/bpf");
      if (is_bpffs(parent)) return true;
    } else {
      error = "cannot mount the BPF filesystem on /sys/fs/bpf: " + errno_text(errno);
      return false;
    }
  }
  if (is_bpffs(parent)) return true;
  error = parent + " is not on a BPF filesystem (pin_dir must be under a bpffs mount)";
  return false;
}

void remove_pin_dir(const std::string& dir) {
  if (DIR* d = ::opendir(dir.c_str())) {
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
    }
    ::closedir(d);
    // meta first, so a half-removed set is never taken for a complete one
    std::stable_partition(names.begin(), names.end(), [](const std::string& n) { return n == kMetaName; });
    for (const auto& n : names) ::unlink((dir + "/" + n).c_str());
  }
  ::rmdir(dir.c_str());
}

std::optional<bc_meta> read_meta(const std::string& dir) {
  UniqueFd fd(bpf_obj_get((dir + "/" + kMetaName).c_str()));
  if (!fd) return std::nullopt;
  uint32_t zero = 0;
  bc_meta m{};
  if (bpf_map_lookup_elem(fd.get(), &zero, &m) != 0) return std::nullopt;
  return m;
}

bool open_pins(const std::string& dir, Pins& pins) {
  auto get = [&](const char* name) { return UniqueFd(bpf_obj_get((dir + "/" + name).c_str())); };
  pins.tracked = get("tracked");
  pins.slot_cfg = get("slot_cfg");
  pins.slot_stats = get("slot_stats");
  pins.slot_owner = get("slot_owner");
  pins.node_cfg = get("node_cfg");
  pins.rings = get("rings");
  pins.files = get("files");
  pins.conns = get("conns");
  if (UniqueFd bits = get("tracked_bits")) pins.tracked_bits = TrackedBits(bits.get());
  // tracked_bits is not required here: the sets of older builds (looked at by remove_unused_sets while
  // their monitors may still run) have none. A monitor's own set must have it (open_own_pins).
  return pins.tracked && pins.slot_cfg && pins.slot_stats && pins.slot_owner && pins.node_cfg && pins.rings &&
         pins.files && pins.conns;
}

bool open_own_pins(const std::string& dir, Pins& pins) { return open_pins(dir, pins) && pins.tracked_bits; }

bool load_and_pin(const std::string& dir, const ObjectSource& object, const Logger& log, bool verbose,
                  LoadResult& result) {
  auto skel = load_object(object, log, verbose, result);
  if (!skel) return false;
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    result.error = "cannot create " + dir + ": " + errno_text(errno);
    return false;
  }
  auto fail = [&](const std::string& what, int err) {
    result.error = what + ": " + errno_text(err);
    remove_pin_dir(dir);
    return false;
  };
  bpf_map* maps[] = {(*skel)->maps.tracked,     (*skel)->maps.slot_cfg, (*skel)->maps.slot_stats,
                     (*skel)->maps.slot_owner,  (*skel)->maps.node_cfg, (*skel)->maps.gen_counter,
                     (*skel)->maps.file_ids,    (*skel)->maps.rings,    (*skel)->maps.files,
                     (*skel)->maps.conns,       (*skel)->maps.exiting,  (*skel)->maps.exiting_count,
                     (*skel)->maps.tracked_bits};
  static_assert(std::size(maps) == std::size(kMapNames));
  for (size_t i = 0; i < std::size(maps); ++i) {
    std::string path = dir + "/" + kMapNames[i];
    if (int err = bpf_map__pin(maps[i], path.c_str()); err != 0) return fail("cannot pin " + path, err);
  }
  const auto progs = skeleton_programs(*skel);
  for (size_t i = 0; i < progs.size(); ++i) {
    std::string path = dir + "/" + kHooks[i].prog;
    if (int err = bpf_program__pin(progs[i], path.c_str()); err != 0) return fail("cannot pin " + path, err);
  }
  bc_meta m{object.tag(), BC_LAYOUT_VERSION, BC_MAX_SLOTS};
  uint32_t zero = 0;
  if (bpf_map__update_elem((*skel)->maps.meta, &zero, sizeof zero, &m, sizeof m, BPF_ANY) != 0)
    return fail("cannot write meta", errno);
  std::string meta_path = dir + "/" + kMetaName;
  if (int err = bpf_map__pin((*skel)->maps.meta, meta_path.c_str()); err != 0) return fail("cannot pin meta", err);
  log(LogLevel::Info, "loaded and pinned the node's BPF programs in " + dir);
  return true;
}

bool load_and_try_attach(const ObjectSource& object, const Logger& log, bool verbose, LoadResult& result,
                         std::string& attach_error) {
  auto skel = load_object(object, log, verbose, result);
  if (!skel) return false;
  const auto progs = skeleton_programs(*skel);
  for (size_t i = 0; i < progs.size(); ++i) {
    // Closing the link detaches the program again.
    UniqueFd link(bpf_raw_tracepoint_open(kHooks[i].tracepoint, bpf_program__fd(progs[i])));
    if (!link) {
      attach_error = std::string("cannot attach ") + kHooks[i].function + " to raw tracepoint " + kHooks[i].tracepoint +
                     ": " + errno_text(errno);
      break;
    }
  }
  return true;
}

std::vector<ProgramCost> pinned_costs(const std::string& dir) {
  std::vector<ProgramCost> costs;
  for (const Hook& h : kHooks) {
    UniqueFd prog(bpf_obj_get((dir + "/" + h.prog).c_str()));
    costs.push_back({h.function, prog ? verified_insns(prog.get()) : 0});
  }
  return costs;
}

bool attach_programs(const std::string& dir, std::string& error) {
  for (const Hook& h : kHooks) {
    const std::string link_path = dir + "/" + h.link;
    if (::access(link_path.c_str(), F_OK) == 0) continue;
    UniqueFd prog(bpf_obj_get((dir + "/" + h.prog).c_str()));
    if (!prog) {
      error = std::string("cannot open the pinned program ") + h.prog + ": " + errno_text(errno);
      return false;
    }
    UniqueFd link(bpf_raw_tracepoint_open(h.tracepoint, prog.get()));
    if (!link) {
      error = std::string("cannot attach to raw tracepoint ") + h.tracepoint + ": " + errno_text(errno);
      return false;
    }
    if (bpf_obj_pin(link.get(), link_path.c_str()) != 0) {
      error = "cannot pin " + link_path + ": " + errno_text(errno);
      return false;
    }
  }
  return true;
}

void detach_programs(const std::string& dir) {
  for (const Hook& h : kHooks) ::unlink((dir + "/" + h.link).c_str());
}

void clear_slot(const Pins& pins, uint32_t slot) {
  bc_slot_cfg cfg{};
  bool had_io = false;
  if (bpf_map_lookup_elem(pins.slot_cfg.get(), &slot, &cfg) == 0) had_io = (cfg.flags & BC_SLOT_IO_BYTES) != 0;
  bc_slot_cfg off{};
  bpf_map_update_elem(pins.slot_cfg.get(), &slot, &off, BPF_ANY);
  std::vector<uint32_t> doomed;
  uint32_t key = 0, next = 0;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(pins.tracked.get(), prev, &next) == 0) {
    bc_tracked t{};
    if (bpf_map_lookup_elem(pins.tracked.get(), &next, &t) == 0 && t.slot == slot) doomed.push_back(next);
    key = next;
    prev = &key;
  }
  for (uint32_t tgid : doomed) bpf_map_delete_elem(pins.tracked.get(), &tgid);
  if (had_io) {
    uint32_t zero = 0;
    bc_node_cfg n{};
    if (bpf_map_lookup_elem(pins.node_cfg.get(), &zero, &n) == 0 && n.io_slots > 0) {
      --n.io_slots;
      bpf_map_update_elem(pins.node_cfg.get(), &zero, &n, BPF_ANY);
    }
  }
}

UniqueFd installed_inner(int outer, uint32_t index, uint32_t type, uint32_t key_size, uint32_t value_size,
                         uint32_t max_entries) {
  uint32_t id = 0;
  if (bpf_map_lookup_elem(outer, &index, &id) != 0 || id == 0) return {};
  UniqueFd fd(bpf_map_get_fd_by_id(id));
  if (!fd) return {};
  bpf_map_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0 || info.type != type || info.key_size != key_size ||
      info.value_size != value_size || info.max_entries != max_entries)
    return {};
  return fd;
}

int reclaim_dead_slots(const Pins& pins, const Logger& log) {
  int live = 0;
  for (uint32_t slot = 0; slot < BC_MAX_SLOTS; ++slot) {
    bc_slot_owner o{};
    if (bpf_map_lookup_elem(pins.slot_owner.get(), &slot, &o) != 0 || o.pid == 0) continue;
    if (owner_alive(o)) {
      ++live;
      continue;
    }
    log(LogLevel::Warn, "job slot " + std::to_string(slot) + " was held by monitor pid " + std::to_string(o.pid) +
                            ", which is gone: taking it back");
    clear_slot(pins, slot);
    o.pid = 0;
    o.start_ticks = 0;
    bpf_map_update_elem(pins.slot_owner.get(), &slot, &o, BPF_ANY);
  }
  return live;
}

int live_slots(const Pins& pins) {
  int live = 0;
  for (uint32_t slot = 0; slot < BC_MAX_SLOTS; ++slot) {
    bc_slot_owner o{};
    if (bpf_map_lookup_elem(pins.slot_owner.get(), &slot, &o) == 0 && owner_alive(o)) ++live;
  }
  return live;
}

bool set_attached(const std::string& dir) {
  return std::all_of(std::begin(kHooks), std::end(kHooks),
                     [&](const Hook& h) { return ::access((dir + "/" + h.link).c_str(), F_OK) == 0; });
}

void remove_unused_sets(const std::string& pin_dir, const std::string& keep, const Logger& log) {
  DIR* d = ::opendir(pin_dir.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.' && keep != e->d_name) names.emplace_back(e->d_name);
  }
  ::closedir(d);
  for (const auto& name : names) {
    std::string dir = pin_dir + "/" + name;
    Pins pins;
    bool complete = read_meta(dir).has_value() && open_pins(dir, pins);
    if (complete && reclaim_dead_slots(pins, log) > 0) continue;
    log(LogLevel::Info, "removing unused pinned BPF set " + dir);
    remove_pin_dir(dir);
  }
}

}  // namespace bc::events::detail
