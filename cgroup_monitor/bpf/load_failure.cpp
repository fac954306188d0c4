#include "cgroup_monitor/bpf/load_failure.hpp"

#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>

#include "common/hash.hpp"

namespace bc::events {
namespace {

// The identity of a file as a replacement changes it: a package upgrade writes a new inode, a rebuild a new
// mtime and usually a new size.
std::optional<std::string> file_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  char buf[128];
  std::snprintf(buf, sizeof buf, "%llx:%llx:%llx:%lld.%09ld", static_cast<unsigned long long>(st.st_dev),
                static_cast<unsigned long long>(st.st_ino), static_cast<unsigned long long>(st.st_size),
                static_cast<long long>(st.st_mtim.tv_sec), st.st_mtim.tv_nsec);
  return std::string(buf);
}

// One line of text: newlines would break the file's format.
std::string one_line(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

}  // namespace

std::string running_kernel() {
  utsname u{};
  if (::uname(&u) != 0) return "unknown";
  return std::string(u.release) + " " + u.version;
}

std::string load_failure_path(const std::string& run_dir, const std::string& monitor_binary,
                              const std::string& object_file) {
  auto binary = file_identity(monitor_binary);
  if (!binary) return {};
  std::string key = *binary;
  if (!object_file.empty()) {
    auto object = file_identity(object_file);
    if (!object) return {};
    key += "\n" + object_file + "\n" + *object;
  }
  char name[64];
  std::snprintf(name, sizeof name, "/bpf-load-failed.%016llx", static_cast<unsigned long long>(hash::fnv1a(key)));
  return run_dir + name;
}

std::optional<LoadFailure> read_load_failure(const std::string& path) {
  if (path.empty()) return std::nullopt;
  std::ifstream in(path);
  if (!in) return std::nullopt;
  LoadFailure f;
  bool has_since = false;
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "kernel") {
      f.kernel = value;
    } else if (key == "object") {
      f.object_tag = value;
    } else if (key == "since") {
      char* end = nullptr;
      f.since = std::strtoll(value.c_str(), &end, 10);
      has_since = !value.empty() && *end == '\0';
    } else if (key == "reason") {
      f.reason = value;
    }
  }
  if (f.kernel.empty() || f.object_tag.empty() || !has_since) return std::nullopt;  // not ours, or cut short
  return f;
}

bool write_load_failure(const std::string& path, const LoadFailure& failure, std::string& error) {
  if (path.empty()) {
    error = "no place to remember it (the monitor binary or object file cannot be looked at)";
    return false;
  }
  // The same refusal again keeps the time it was first seen.
  int64_t since = failure.since;
  if (auto earlier = read_load_failure(path);
      earlier && earlier->kernel == failure.kernel && earlier->object_tag == failure.object_tag)
    since = earlier->since;
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "kernel=" << one_line(failure.kernel) << "\nobject=" << one_line(failure.object_tag) << "\nsince=" << since
        << "\nreason=" << one_line(failure.reason) << "\n";
    out.flush();
    if (!out) {
      error = "cannot write " + tmp + ": " + std::strerror(errno);
      ::unlink(tmp.c_str());
      return false;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    error = "cannot rename " + tmp + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

void forget_load_failure(const std::string& path) {
  if (!path.empty()) ::unlink(path.c_str());
}

bool load_known_to_fail(const std::string& run_dir, const std::string& monitor_binary,
                        const std::string& object_file) noexcept {
  try {
    auto failure = read_load_failure(load_failure_path(run_dir, monitor_binary, object_file));
    return failure && failure->kernel == running_kernel();
  } catch (...) {
    return false;  // when in doubt the task waits, bounded, as it always did
  }
}

std::string utc_time_text(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  tm utc{};
  gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

}  // namespace bc::events
