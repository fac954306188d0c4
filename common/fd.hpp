// Move-only owner of a file descriptor, plus whole-file reads that keep fds for repeated sampling.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <utility>

namespace bc {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }

 private:
  int fd_ = -1;
};

inline UniqueFd open_read(const std::string& path) { return UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)); }

// Reads the whole file from offset 0 with pread, so one fd serves every sample. Meant for the /proc and
// cgroup files a monitor samples: the kernel makes their text afresh on a read from 0 and hands out as much
// as fits, so a first read that comes back well short of the buffer has it all, and an idle tick is spared
// a second read for the end of file.
inline std::optional<std::string> pread_all(int fd) {
  std::string out;
  char buf[4096];
  off_t offset = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (offset == 0 && static_cast<size_t>(n) < sizeof buf / 2) return out;
    offset += n;
  }
}

// Creates path and any missing parents, like mkdir -p; false (errno set) when one cannot be made.
inline bool make_directories(const std::string& path, mode_t mode) {
  size_t at = 0;
  while (at < path.size()) {
    size_t next = path.find('/', at + 1);
    if (next == std::string::npos) next = path.size();
    const std::string partial = path.substr(0, next);
    if (partial != "/" && ::mkdir(partial.c_str(), mode) != 0 && errno != EEXIST) return false;
    at = next;
  }
  return true;
}

// True while some process holds an exclusive flock on path; probing never blocks, and closing our fd
// releases the shared lock a free file gives us.
inline bool exclusive_lock_held(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return false;
  return errno == EWOULDBLOCK;
}

inline std::optional<std::string> read_file(const std::string& path) {
  UniqueFd fd = open_read(path);
  if (!fd) return std::nullopt;
  return pread_all(fd.get());
}

}  // namespace bc
