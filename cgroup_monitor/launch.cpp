#include "cgroup_monitor/launch.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include "common/fd.hpp"

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

bool monitor_running(const std::string& run_dir, uint64_t job_id) {
  return bc::exclusive_lock_held(monitor_lock_path(run_dir, job_id));
}

bool write_job_nodes(const std::string& run_dir, uint64_t job_id, const std::string& nodes) noexcept try {
  const std::string path = job_nodes_path(run_dir, job_id);
  const std::string partial = path + "." + std::to_string(::getpid());
  UniqueFd fd(::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return false;
  const bool written = ::write(fd.get(), nodes.data(), nodes.size()) == static_cast<ssize_t>(nodes.size());
  fd.reset();
  if (!written || ::rename(partial.c_str(), path.c_str()) != 0) {
    ::unlink(partial.c_str());
    return false;
  }
  return true;
} catch (...) {
  return false;
}

std::vector<std::string> monitor_argv(const MonitorCommand& c) {
  std::vector<std::string> args = {c.monitor,
                                   "--job",
                                   std::to_string(c.job_id),
                                   "--node",
                                   c.node,
                                   "--store",
                                   c.store,
                                   "--run-dir",
                                   c.run_dir,
                                   "--interval",
                                   format_interval(c.interval_s),
                                   "--cgroup-version",
                                   std::to_string(c.cgroup_version),
                                   "--cgroup-path",
                                   c.cgroup_path,
                                   "--uid",
                                   std::to_string(c.uid),
                                   "--bpf",
                                   c.bpf ? "on" : "off"};
  const auto add = [&args](const char* option, const std::string& value) {
    if (value.empty()) return;
    args.emplace_back(option);
    args.push_back(value);
  };
  const auto add_number = [&add](const char* option, uint64_t value) {
    if (value != 0) add(option, std::to_string(value));
  };
  add_number("--bpf-ring-kib", c.bpf_ring_kib);
  if (c.pass_file_bytes) add("--file-bytes", c.file_bytes ? "on" : "off");
  add("--bpf-object", c.bpf_object);
  add("--job-name", c.job_name);
  add("--job-nodes", c.job_nodes);
  add("--nvml", c.nvml);
  add("--gpus", c.gpus);
  if (c.array_job_id != 0) {
    add_number("--array-job", c.array_job_id);
    add("--array-task", std::to_string(c.array_task_id));
  }
  if (!c.central.empty()) {
    add("--central", c.central);
    add("--api-key-file", c.api_key_file);
    add_number("--outbox-max-mib", c.outbox_max_mib);
    add_number("--ship-every", c.ship_every_s);
    add("--ca-file", c.ca_file);
  }
  add("--munge-socket", c.munge_socket);
  add("--container-id", c.container_id);
  add("--container-name", c.container_name);
  add("--container-image", c.container_image);
  return args;
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
