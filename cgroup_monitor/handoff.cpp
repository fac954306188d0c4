#include "cgroup_monitor/handoff.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

namespace bc::monitor {
namespace {

double now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1000.0 + static_cast<double>(ts.tv_nsec) / 1e6;
}

bool make_address(const std::string& path, sockaddr_un& addr) {
  addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return true;
}

// A task that connected writes its step at once; this bounds the wait for it.
constexpr int kRequestWaitMs = 50;

}  // namespace

HandoffResult hand_off_self(const std::string& socket_path, uint32_t step, int timeout_ms,
                            const std::string& lock_path) {
  HandoffResult r;
  const double start = now_ms();
  const double deadline = start + timeout_ms;
  auto finish = [&](HandoffResult::Outcome outcome, std::string message) {
    r.outcome = outcome;
    r.message = std::move(message);
    r.waited_ms = now_ms() - start;
    return r;
  };
  sockaddr_un addr{};
  if (!make_address(socket_path, addr)) return finish(HandoffResult::Outcome::Failed, "socket path too long");
  UniqueFd fd;
  // The monitor may still be starting (it was forked at step start): retry while its socket is not there.
  for (;;) {
    fd = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return finish(HandoffResult::Outcome::Failed, std::string("socket: ") + std::strerror(errno));
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) break;
    const int err = errno;
    if (err != ENOENT && err != ECONNREFUSED && err != EAGAIN && err != EINTR)
      return finish(HandoffResult::Outcome::Failed, "connect " + socket_path + ": " + std::strerror(err));
    if (now_ms() >= deadline)
      return finish(HandoffResult::Outcome::TimedOut,
                    "the monitor's socket " + socket_path + " did not answer (" + std::strerror(err) + ")");
    if (!lock_path.empty() && now_ms() - start >= kNoMonitorGiveUpMs && !bc::exclusive_lock_held(lock_path))
      return finish(HandoffResult::Outcome::Failed, "no monitor runs for the job (" + lock_path + " is not held)");
    timespec pause{0, 2'000'000};
    ::nanosleep(&pause, nullptr);
  }
  if (::send(fd.get(), &step, sizeof step, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof step))
    return finish(HandoffResult::Outcome::Failed, std::string("send: ") + std::strerror(errno));
  for (;;) {
    const double left_ms = deadline - now_ms();
    if (left_ms <= 0) return finish(HandoffResult::Outcome::TimedOut, "the monitor was not tracking in time");
    pollfd p{fd.get(), POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::ceil(left_ms)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    char answer = 0;
    const ssize_t got = ::recv(fd.get(), &answer, 1, 0);
    if (got == 1 && answer == kHandoffTracked) return finish(HandoffResult::Outcome::Tracked, {});
    if (got == 1 && answer == kHandoffNoEvents) return finish(HandoffResult::Outcome::NoEvents, {});
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    return finish(HandoffResult::Outcome::Failed, "the monitor closed the connection");
  }
}

HandoffServer::HandoffServer(const std::string& socket_path) : path_(socket_path) {
  sockaddr_un addr{};
  if (!make_address(socket_path, addr)) {
    error_ = "socket path too long: " + socket_path;
    return;
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) {
    error_ = std::string("socket: ") + std::strerror(errno);
    return;
  }
  ::unlink(socket_path.c_str());  // a dead monitor's; the job lock says no live one uses it
  // Root only: the peer's pid is trusted to be a task of this job's step.
  const mode_t old_mask = ::umask(0077);
  const int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int bind_errno = errno;
  ::umask(old_mask);
  if (bound != 0) {
    error_ = "bind " + socket_path + ": " + std::strerror(bind_errno);
    return;
  }
  if (::listen(fd.get(), 128) != 0) {
    error_ = "listen " + socket_path + ": " + std::strerror(errno);
    ::unlink(socket_path.c_str());
    return;
  }
  listen_fd_ = std::move(fd);
}

HandoffServer::~HandoffServer() {
  if (listen_fd_) ::unlink(path_.c_str());
}

uint64_t HandoffServer::serve(const std::function<char(uint32_t pid, uint32_t step)>& take) {
  uint64_t late = 0;
  if (!listen_fd_) return 0;
  std::vector<Held> still_held;
  for (auto& h : held_) {
    const char a = take(h.pid, h.step);
    if (a == kHandoffNotYet) {
      still_held.push_back(std::move(h));
    } else if (::send(h.conn.get(), &a, 1, MSG_NOSIGNAL) != 1) {
      ++late;  // the task stopped waiting
    }
  }
  held_ = std::move(still_held);
  for (;;) {
    UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!conn) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return late;  // EAGAIN: nobody else waits
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    // The socket is the monitor's user's only (root under Slurm); check the peer anyway.
    if (::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != ::geteuid() || cred.pid <= 0)
      continue;
    uint32_t step = 0;
    pollfd p{conn.get(), POLLIN, 0};
    if (::poll(&p, 1, kRequestWaitMs) <= 0 || ::recv(conn.get(), &step, sizeof step, 0) != sizeof step) continue;
    const auto pid = static_cast<uint32_t>(cred.pid);
    char a = take(pid, step);
    if (a == kHandoffNotYet && held_.size() < kMaxHeld) {
      held_.push_back({std::move(conn), pid, step});
      continue;
    }
    if (a == kHandoffNotYet) a = kHandoffNoEvents;
    if (::send(conn.get(), &a, 1, MSG_NOSIGNAL) != 1) ++late;  // the task stopped waiting
  }
}

}  // namespace bc::monitor
