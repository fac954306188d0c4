#include "cgroup_monitor/task_finals.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace bc::monitor {

bool make_finals_file(const std::string& path) noexcept {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

bool append_final(const std::string& path, const FinalRecord& record) noexcept {
  // O_NOFOLLOW: the run dir is root's, but a link planted there must not redirect a root write.
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  ssize_t n;
  do {
    n = ::write(fd, &record, sizeof record);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  return n == static_cast<ssize_t>(sizeof record);
}

ReapedTotals reaped_children_totals() noexcept {
  rusage usage{};
  if (::getrusage(RUSAGE_CHILDREN, &usage) != 0) return {};
  auto ns = [](const timeval& t) {
    return static_cast<uint64_t>(t.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(t.tv_usec) * 1000ULL;
  };
  return {ns(usage.ru_utime) + ns(usage.ru_stime), static_cast<uint64_t>(usage.ru_inblock) * 512,
          static_cast<uint64_t>(usage.ru_oublock) * 512};
}

FinalsReader::FinalsReader(std::string path) : path_(std::move(path)) {
  fd_ = UniqueFd(::open(path_.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
}

std::vector<FinalRecord> FinalsReader::take_new() {
  std::vector<FinalRecord> out;
  if (!fd_) return out;  // the run dir refused the file: no final figures, as before they existed
  FinalRecord buffer[64];
  for (;;) {
    const ssize_t n = ::pread(fd_.get(), buffer, sizeof buffer, static_cast<off_t>(offset_));
    if (n <= 0) break;
    const size_t whole = static_cast<size_t>(n) / sizeof(FinalRecord);  // a record half written is read next time
    out.insert(out.end(), buffer, buffer + whole);
    offset_ += whole * sizeof(FinalRecord);
    if (whole < sizeof buffer / sizeof buffer[0]) break;
  }
  return out;
}

}  // namespace bc::monitor
