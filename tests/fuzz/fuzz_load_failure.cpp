// The node's memory of a failed BPF load (cgroup_monitor/bpf/load_failure.cpp): a key=value file in the
// run dir that every monitor and the plugin (in slurmstepd) read before loading or waiting for events. The
// input is the file's text; what reads as a memory is written back as a monitor writes it, and must read
// back the same, again and again.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "cgroup_monitor/bpf/load_failure.hpp"

namespace {

using bc::events::LoadFailure;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "%s\n", what.c_str());
  std::abort();
}

bool same(const LoadFailure& a, const LoadFailure& b) {
  return a.kernel == b.kernel && a.object_tag == b.object_tag && a.since == b.since && a.reason == b.reason;
}

std::string* g_dir = nullptr;

// Written as a monitor writes it, then read back.
LoadFailure rewrite(const LoadFailure& f) {
  const std::string path = *g_dir + "/rewritten";
  bc::events::forget_load_failure(path);  // else the earlier since would be kept
  std::string error;
  if (!bc::events::write_load_failure(path, f, error)) fail("cannot write the memory: " + error);
  const auto back = bc::events::read_load_failure(path);
  if (!back) fail("a memory the monitor wrote does not read back");
  return *back;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string pattern = (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") + std::string("/bc-fuzz-memory-XXXXXX");
  if (!mkdtemp(pattern.data())) fail("cannot make a temporary directory");
  g_dir = new std::string(pattern);
  std::atexit([] {
    std::filesystem::remove_all(*g_dir);
    delete g_dir;
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = *g_dir + "/read";
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  const auto memory = bc::events::read_load_failure(path);
  if (!memory) return 0;
  (void)bc::events::utc_time_text(memory->since);
  const LoadFailure once = rewrite(*memory);
  if (!same(rewrite(once), once)) fail("a memory written twice reads back differently");
  return 0;
}
