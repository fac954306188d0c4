// check_events(): a load of the programs on purpose, for an administrator or a node health check.
#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <exception>

#include "cgroup_monitor/bpf/events.hpp"
#include "cgroup_monitor/bpf/program_set.hpp"

namespace bc::events {
namespace {

using namespace detail;

std::vector<std::string> describe_pinned_sets(const std::string& pin_dir, const std::string& own_tag) {
  std::vector<std::string> sets;
  DIR* d = ::opendir(pin_dir.c_str());
  if (!d) return sets;
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  ::closedir(d);
  for (const auto& name : names) {
    const std::string dir = pin_dir + "/" + name;
    Pins pins;
    std::string text = name + (name == own_tag ? " (this object)" : "");
    if (!read_meta(dir) || !open_pins(dir, pins)) {
      text += ": incomplete";
    } else {
      const int jobs = live_slots(pins);
      text += ": " + std::to_string(jobs) + (jobs == 1 ? " monitored job, " : " monitored jobs, ") +
              (set_attached(dir) ? "attached" : "detached (loaded, idle)");
    }
    sets.push_back(std::move(text));
  }
  return sets;
}

}  // namespace

CheckReport check_events(const Options& options) noexcept {
  CheckReport r;
  try {
    r.kernel = running_kernel();
    r.btf = ::access("/sys/kernel/btf/vmlinux", R_OK) == 0;
    const std::string run_dir = options.run_dir.empty() ? std::string(kNodeRunDir) : options.run_dir;
    std::string error;
    auto object = ObjectSource::open(options.object_file, error);
    if (!object) {
      r.reason = error;
      return r;
    }
    r.object = object->describe();
    r.object_tag = tag_hex(object->tag());
    r.memory_path = load_failure_path(run_dir, options.monitor_binary, options.object_file);
    r.remembered_before = read_load_failure(r.memory_path);
    r.pinned_sets = describe_pinned_sets(options.pin_dir, r.object_tag);
    if (!r.btf) {
      r.reason = "the kernel has no BTF (/sys/kernel/btf/vmlinux: " + errno_text(errno) + ")";
      return r;
    }
    Logger log(options.log, options.verbose);
    LoadResult result;
    std::string attach_error;
    const bool loaded = load_and_try_attach(*object, log, options.verbose, result, attach_error);
    r.load_ms = result.load_ms;
    r.programs = result.programs;
    r.verifier_log = result.verifier_log;
    if (!loaded) {
      r.reason = result.error;
      if (result.remember) r.remembered_now = remember_load_failure(r.memory_path, r.object_tag, result.error, log);
      return r;
    }
    r.attached = attach_error.empty();
    if (!r.attached) {
      r.reason = attach_error;  // not remembered: attaching costs no verifier run, monitors may try
      return r;
    }
    forget_load_failure(r.memory_path);
    r.works = true;
  } catch (const std::exception& e) {
    r.works = false;
    r.reason = std::string("internal error: ") + e.what();
  }
  return r;
}

}  // namespace bc::events
