#include "cgroup_monitor/launch.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

namespace bc::monitor {
namespace {

void write_all(int fd, const char* text) {
  size_t n = std::strlen(text);
  while (n > 0) {
    const ssize_t w = ::write(fd, text, n);
    if (w <= 0) return;
    text += w;
    n -= static_cast<size_t>(w);
  }
}

void write_error(const char* prefix, const char* what, const char* name, const char* tail) {
  write_all(STDERR_FILENO, prefix);
  write_all(STDERR_FILENO, what);
  write_all(STDERR_FILENO, name);
  write_all(STDERR_FILENO, tail);
}

}  // namespace

std::string format_interval(double seconds) {
  std::ostringstream out;
  out << seconds;
  return out.str();
}

void exec_monitor(const char* log_prefix, const char* const* procs_files, size_t procs_count, int log_fd,
                  const char* path, char* const* argv, char* const* envp) {
  ::setsid();  // not killed with the launcher's process group
  // Handlers first, then the mask the launcher set (for signalfd): a pending signal meets the default action,
  // never a handler of the launcher running in this copy of it.
  for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  const int null_fd = ::open("/dev/null", O_RDWR);
  if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
  const int out = log_fd >= 0 ? log_fd : null_fd;
  if (out >= 0) {
    ::dup2(out, STDOUT_FILENO);
    ::dup2(out, STDERR_FILENO);
  }
  for (size_t i = 0; i < procs_count; ++i) {
    const int fd = ::open(procs_files[i], O_WRONLY);
    // "0" moves the writing process itself.
    if (fd < 0 || ::write(fd, "0", 1) != 1) {
      write_error(log_prefix, "cannot move the monitor out of the job into ", procs_files[i], "; not starting it\n");
      _exit(126);
    }
    ::close(fd);
  }
  ::syscall(SYS_close_range, 3U, ~0U, 0U);
  ::execve(path, argv, envp);
  write_error(log_prefix, "cannot exec ", path, "\n");
  _exit(127);
}

}  // namespace bc::monitor
