// EventCollector against the real kernel: processes forked here are tracked, and what the collector reports
// must match what they really did. Needs root and BPF (label "bpf"). When BPF cannot load the tests are
// skipped with the reason, except under CI=true, where that is a failure.
//
// The binary has its own main: run as `test_events --bc-events-helper ...` it is the small program some
// tests exec, so its argv and its own getrusage() figures are known.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <bpf/bpf.h>

#include "cgroup_monitor/bpf/bc_events.h"
#include "cgroup_monitor/bpf/events.hpp"

using namespace bc::events;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string g_self;  // this binary, for exec

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

void quiet_log(LogLevel level, const std::string& text) {
  if (level >= LogLevel::Warn) std::fprintf(stderr, "bc-events: %s\n", text.c_str());
}

// A forked child that waits until the parent has tracked it, then runs body and exits with its result.
class Child {
 public:
  explicit Child(std::function<int()> body) {
    int p[2];
    if (pipe(p) != 0) std::abort();
    pid_ = fork();
    if (pid_ == 0) {
      close(p[1]);
      char c;
      if (read(p[0], &c, 1) != 1) _exit(120);
      close(p[0]);
      _exit(body());
    }
    close(p[0]);
    go_fd_ = p[1];
  }
  ~Child() {
    if (go_fd_ >= 0) close(go_fd_);
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  uint32_t pid() const { return static_cast<uint32_t>(pid_); }
  void start() {
    if (write(go_fd_, "g", 1) != 1) std::abort();
    close(go_fd_);
    go_fd_ = -1;
  }
  int wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  int go_fd_ = -1;
  bool reaped_ = false;
};

// Everything several drains returned, aggregates summed per (pid, path) and (pid, address, port, protocol).
struct Seen {
  std::vector<ForkInfo> forks;
  std::vector<ExecInfo> execs;
  std::vector<ExitInfo> exits;
  std::map<std::pair<uint32_t, std::string>, FileAgg> files;
  std::map<std::tuple<uint32_t, std::string, uint16_t, std::string>, ConnAgg> conns;
  LossCounts lost;
  uint64_t lost_events = 0;

  void add(Drained d) {
    forks.insert(forks.end(), d.forks.begin(), d.forks.end());
    execs.insert(execs.end(), d.execs.begin(), d.execs.end());
    exits.insert(exits.end(), d.exits.begin(), d.exits.end());
    for (auto& f : d.files) {
      FileAgg& a = files[{f.pid, f.path}];
      a.pid = f.pid;
      a.path = f.path;
      a.flags |= f.flags;
      if (f.first_ns && (!a.first_ns || f.first_ns < a.first_ns)) a.first_ns = f.first_ns;
      a.opens += f.opens;
      a.failed += f.failed;
      a.read_bytes += f.read_bytes;
      a.write_bytes += f.write_bytes;
    }
    for (auto& c : d.conns) {
      ConnAgg& a = conns[{c.pid, c.address, c.port, c.protocol}];
      a.pid = c.pid;
      a.address = c.address;
      a.port = c.port;
      a.protocol = c.protocol;
      a.count += c.count;
      a.failed += c.failed;
      a.in_progress += c.in_progress;
    }
    lost.ring += d.lost.ring;
    lost.files += d.lost.files;
    lost.conns += d.lost.conns;
    lost.tracked += d.lost.tracked;
    lost.read_failed += d.lost.read_failed;
    lost.user += d.lost.user;
    lost_events += d.lost_events;
  }
  const ExitInfo* exit_of(uint32_t pid) const {
    for (const auto& e : exits)
      if (e.pid == pid) return &e;
    return nullptr;
  }
  const FileAgg* file(uint32_t pid, const std::string& path) const {
    auto it = files.find({pid, path});
    return it == files.end() ? nullptr : &it->second;
  }
  bool any_pid(uint32_t pid) const {
    for (const auto& f : forks)
      if (f.parent == pid || f.child == pid) return true;
    for (const auto& e : execs)
      if (e.pid == pid) return true;
    for (const auto& e : exits)
      if (e.pid == pid) return true;
    for (const auto& [k, _] : files)
      if (k.first == pid) return true;
    for (const auto& [k, _] : conns)
      if (std::get<0>(k) == pid) return true;
    return false;
  }
};

// Drains until done(seen) holds (then once more, so late aggregates are in) or 5 s have passed.
Seen drain_until(EventCollector& c, const std::function<bool(const Seen&)>& done) {
  Seen seen;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    seen.add(c.drain());
    if (done(seen)) break;
    std::this_thread::sleep_for(20ms);
  }
  seen.add(c.drain());
  return seen;
}

std::string make_temp_dir() {
  char templ[] = "/tmp/bc-events-test.XXXXXX";
  char* d = mkdtemp(templ);
  if (!d) std::abort();
  return fs::canonical(d).string();
}

class EventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = make_temp_dir();
    opt_.run_dir = tmp_ + "/run";
    // A pin dir of our own: the node's real one (if any) is left alone, and each test process loads its copy.
    opt_.pin_dir = "/sys/fs/bpf/bc-events-test-" + std::to_string(getpid());
    opt_.log = quiet_log;
    std::string reason;
    collector_ = EventCollector::open(opt_, reason);
    if (!collector_) {
      if (in_ci()) FAIL() << reason << " (CI=true: BPF must work here)";
      GTEST_SKIP() << "\n\n*** SKIPPED: " << reason << " ***\n";
    }
  }
  void TearDown() override {
    collector_.reset();
    EventCollector::reclaim_stale(opt_);  // the last collector only detaches; unload this test's programs
    std::error_code ec;
    fs::remove_all(tmp_, ec);
    rmdir(opt_.pin_dir.c_str());
  }

  std::string tmp_;
  Options opt_;
  std::unique_ptr<EventCollector> collector_;
};

TEST(EventsUnavailable, DisabledByConfigurationSaysWhy) {
  Options opt;
  opt.enabled = false;
  std::string reason;
  EXPECT_EQ(EventCollector::open(opt, reason), nullptr);
  EXPECT_EQ(reason, "events unavailable: disabled by configuration (bpf=off)");
}

TEST(EventsUnavailable, PinDirOffBpffsSaysWhy) {
  Options opt;
  opt.pin_dir = "/tmp/bc-events-not-bpffs/pins";
  opt.run_dir = "/tmp/bc-events-not-bpffs";
  opt.log = quiet_log;
  std::string reason;
  EXPECT_EQ(EventCollector::open(opt, reason), nullptr);
  EXPECT_EQ(reason.rfind("events unavailable: ", 0), 0u) << reason;
  EXPECT_NE(reason.find("not on a BPF filesystem"), std::string::npos) << reason;
  std::error_code ec;
  fs::remove_all("/tmp/bc-events-not-bpffs", ec);
}

// sh -c with three children (one living 5 ms), distinct exit codes: every exec with its parent and argv.
TEST_F(EventsTest, ShellTreeExecsParentsArgvAndExitCodes) {
  const std::string script =
      "/bin/sh -c 'exit 11'; /usr/bin/perl -e 'select(undef, undef, undef, 0.005); exit 12'; "
      "/bin/sh -c 'exit 13'; exit 17";
  Child child([&] {
    execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
    return 99;
  });
  ASSERT_TRUE(collector_->track(child.pid()));
  child.start();
  EXPECT_EQ(child.wait(), 17);
  uint32_t sh = child.pid();
  Seen seen = drain_until(*collector_, [&](const Seen& s) { return s.exits.size() >= 4; });

  ASSERT_EQ(seen.exits.size(), 4u);
  ASSERT_EQ(seen.execs.size(), 4u);
  ASSERT_EQ(seen.forks.size(), 3u);
  // The tracked child itself: exec of sh with the test process as parent.
  EXPECT_EQ(seen.execs[0].pid, sh);
  EXPECT_EQ(seen.execs[0].ppid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(seen.execs[0].argv, (std::vector<std::string>{"sh", "-c", script}));
  EXPECT_EQ(seen.execs[0].filename, "/bin/sh");
  EXPECT_EQ(seen.execs[0].exe, fs::canonical("/bin/sh").string());
  EXPECT_FALSE(seen.execs[0].argv_truncated);

  const std::vector<std::vector<std::string>> argvs = {
      {"/bin/sh", "-c", "exit 11"},
      {"/usr/bin/perl", "-e", "select(undef, undef, undef, 0.005); exit 12"},
      {"/bin/sh", "-c", "exit 13"}};
  const int codes[] = {11, 12, 13};
  for (size_t i = 0; i < 3; ++i) {
    const ExecInfo& e = seen.execs[i + 1];
    SCOPED_TRACE(e.filename);
    EXPECT_EQ(e.ppid, sh);
    EXPECT_EQ(e.argv, argvs[i]);
    EXPECT_EQ(seen.forks[i].parent, sh);
    EXPECT_EQ(seen.forks[i].child, e.pid);
    const ExitInfo* x = seen.exit_of(e.pid);
    ASSERT_NE(x, nullptr);
    EXPECT_EQ(x->exit_code, codes[i]);
    EXPECT_EQ(x->signal, 0);
    EXPECT_GT(x->cpu_ns, 0u);
    EXPECT_GT(x->max_rss_bytes, 0u);
    EXPECT_GE(x->time_ns, e.time_ns);
    if (i == 1) {
      EXPECT_GE(x->time_ns - e.time_ns, 5'000'000u) << "perl sleeps 5 ms";
    }
  }
  const ExitInfo* shx = seen.exit_of(sh);
  ASSERT_NE(shx, nullptr);
  EXPECT_EQ(shx->exit_code, 17);
  // Times are Unix epoch nanoseconds: within a minute of now.
  auto now = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  EXPECT_LT(now - shx->time_ns, 60'000'000'000u);
  EXPECT_EQ(seen.lost_events, 0u);
}

TEST_F(EventsTest, SignalDeathIsReportedAsSignal) {
  Child child([] {
    raise(SIGKILL);
    return 0;
  });
  ASSERT_TRUE(collector_->track(child.pid()));
  child.start();
  child.wait();
  Seen seen = drain_until(*collector_, [&](const Seen& s) { return s.exit_of(child.pid()) != nullptr; });
  const ExitInfo* x = seen.exit_of(child.pid());
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->signal, SIGKILL);
  EXPECT_EQ(x->exit_code, -1);
}

// 3 known files, one opened 10 000 times by a relative path after chdir (and once as ./sub/../a), one by
// openat on a directory fd, one missing: exact absolute paths, counts, flags and failures, aggregated in the kernel.
TEST_F(EventsTest, FileOpensAreExactAndAbsolute) {
  const std::string dir = tmp_ + "/files";
  fs::create_directories(dir + "/sub");
  for (const char* n : {"a", "b", "c"}) {
    int fd = ::open((dir + "/" + n).c_str(), O_WRONLY | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    close(fd);
  }
  Child child([&] {
    if (chdir(dir.c_str()) != 0) return 90;
    for (int i = 0; i < 10000; ++i) {
      int fd = ::open("a", O_RDONLY);
      if (fd < 0) return 91;
      close(fd);
    }
    int fd = ::open("./sub/../a", O_RDONLY);  // another spelling: normalized and merged with "a"
    if (fd < 0) return 96;
    close(fd);
    fd = ::open((dir + "/b").c_str(), O_RDWR);
    if (fd < 0) return 92;
    close(fd);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (chdir("/") != 0) return 93;  // openat must use the directory fd, not the cwd
    fd = ::openat(dfd, "c", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return 94;
    close(fd);
    close(dfd);
    if (::open((dir + "/missing").c_str(), O_RDONLY) >= 0) return 95;
    return 0;
  });
  ASSERT_TRUE(collector_->track(child.pid()));
  child.start();
  ASSERT_EQ(child.wait(), 0);
  uint32_t pid = child.pid();
  Seen seen = drain_until(*collector_, [&](const Seen& s) { return s.exit_of(pid) != nullptr; });

  const FileAgg* a = seen.file(pid, dir + "/a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->opens, 10001u);
  EXPECT_EQ(a->failed, 0u);
  EXPECT_EQ(a->flags, kRead);
  EXPECT_GT(a->first_ns, 0u);
  const FileAgg* b = seen.file(pid, dir + "/b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->opens, 1u);
  EXPECT_EQ(b->flags, kRead | kWrite);
  const FileAgg* c = seen.file(pid, dir + "/c");
  ASSERT_NE(c, nullptr) << "openat(dirfd, \"c\") must resolve against the directory fd";
  EXPECT_EQ(c->opens, 1u);
  EXPECT_EQ(c->flags, kWrite | kCreate | kTrunc);
  const FileAgg* m = seen.file(pid, dir + "/missing");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->opens, 0u);
  EXPECT_EQ(m->failed, 1u);
  const FileAgg* d = seen.file(pid, dir);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->flags, kRead | kDirectory);
  for (const auto& [key, f] : seen.files) {
    EXPECT_FALSE(f.path.empty()) << "a name was lost";
    EXPECT_EQ(f.path[0], '/') << f.path;
  }
  EXPECT_EQ(seen.lost_events, 0u);
}

TEST_F(EventsTest, FileBytesWhenAsked) {
  collector_.reset();
  opt_.file_io_bytes = true;
  std::string reason;
  collector_ = EventCollector::open(opt_, reason);
  ASSERT_NE(collector_, nullptr) << reason;
  const std::string path = tmp_ + "/io";
  Child child([&] {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0600);
    char buf[4096] = {};
    for (int i = 0; i < 10; ++i)
      if (write(fd, buf, sizeof buf) != sizeof buf) return 90;
    lseek(fd, 0, SEEK_SET);
    if (read(fd, buf, 1000) != 1000) return 91;
    close(fd);
    return 0;
  });
  ASSERT_TRUE(collector_->track(child.pid()));
  child.start();
  ASSERT_EQ(child.wait(), 0);
  Seen seen = drain_until(*collector_, [&](const Seen& s) { return s.exit_of(child.pid()) != nullptr; });
  const FileAgg* f = seen.file(child.pid(), path);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->write_bytes, 40960u);
  EXPECT_EQ(f->read_bytes, 1000u);
}

int listener(int family, int type, uint16_t& port, bool listen_too = true) {
  int fd = socket(family, type | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *sin;
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    len = sizeof *sin6;
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return -1;
  if (listen_too && type == SOCK_STREAM && listen(fd, 16) != 0) return -1;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                 : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return fd;
}

int connect_to(int family, int type, uint16_t port) {
  int fd = socket(family, type, 0);
  int rc;
  if (family == AF_INET) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
  } else {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    sin6.sin6_addr = in6addr_loopback;
    rc = connect(fd, reinterpret_cast<sockaddr*>(&sin6), sizeof sin6);
  }
  close(fd);
  return rc;
}

// TCP to a listener and to a closed port, IPv4 and IPv6, UDP, a unix socket path: each with its outcome.
TEST_F(EventsTest, ConnectsTcpUdpUnixIpv4Ipv6) {
  uint16_t tcp4 = 0, closed4 = 0, tcp6 = 0, closed6 = 0, udp4 = 0;
  int l4 = listener(AF_INET, SOCK_STREAM, tcp4);
  int c4 = listener(AF_INET, SOCK_STREAM, closed4, false);  // bound, not listening: refused
  int l6 = listener(AF_INET6, SOCK_STREAM, tcp6);
  int c6 = listener(AF_INET6, SOCK_STREAM, closed6, false);
  int u4 = listener(AF_INET, SOCK_DGRAM, udp4);
  ASSERT_TRUE(l4 >= 0 && c4 >= 0 && l6 >= 0 && c6 >= 0 && u4 >= 0);
  const std::string upath = tmp_ + "/sock";
  int ul = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::snprintf(sun.sun_path, sizeof sun.sun_path, "%s", upath.c_str());
  ASSERT_EQ(bind(ul, reinterpret_cast<sockaddr*>(&sun), sizeof sun), 0);
  ASSERT_EQ(listen(ul, 4), 0);

  Child child([&] {
    if (connect_to(AF_INET, SOCK_STREAM, tcp4) != 0) return 90;
    if (connect_to(AF_INET, SOCK_STREAM, closed4) == 0) return 91;
    if (connect_to(AF_INET6, SOCK_STREAM, tcp6) != 0) return 92;
    if (connect_to(AF_INET6, SOCK_STREAM, closed6) == 0) return 93;
    if (connect_to(AF_INET, SOCK_DGRAM, udp4) != 0) return 94;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&sun), sizeof sun) != 0) return 95;
    close(fd);
    return 0;
  });
  ASSERT_TRUE(collector_->track(child.pid()));
  child.start();
  ASSERT_EQ(child.wait(), 0);
  uint32_t pid = child.pid();
  Seen seen = drain_until(*collector_, [&](const Seen& s) { return s.exit_of(pid) != nullptr; });
  for (int fd : {l4, c4, l6, c6, u4, ul}) close(fd);

  auto expect = [&](const std::string& addr, uint16_t port, const std::string& proto, uint64_t failed) {
    SCOPED_TRACE(proto + " " + addr + " " + std::to_string(port));
    auto it = seen.conns.find({pid, addr, port, proto});
    ASSERT_NE(it, seen.conns.end());
    EXPECT_EQ(it->second.count, 1u);
    EXPECT_EQ(it->second.failed, failed);
    EXPECT_EQ(it->second.in_progress, 0u);
  };
  expect("127.0.0.1", tcp4, "tcp", 0);
  expect("127.0.0.1", closed4, "tcp", 1);
  expect("::1", tcp6, "tcp", 0);
  expect("::1", closed6, "tcp", 1);
  expect("127.0.0.1", udp4, "udp", 0);
  expect(upath, 0, "unix", 0);
  EXPECT_EQ(seen.conns.size(), 6u);
  EXPECT_EQ(seen.lost_events, 0u);
}

// A busy open loop in a process nobody tracks never shows up; the tracked one beside it does.
TEST_F(EventsTest, UntrackedProcessesNeverAppear) {
  const std::string theirs = tmp_ + "/untracked-marker", ours = tmp_ + "/tracked-marker";
  for (const auto& p : {theirs, ours}) close(::open(p.c_str(), O_WRONLY | O_CREAT, 0600));
  auto loop = [](const std::string& path) {
    return [path] {
      for (int i = 0; i < 20000; ++i) {
        int fd = ::open(path.c_str(), O_RDONLY);
        if (fd >= 0) close(fd);
      }
      return 0;
    };
  };
  Child stranger(loop(theirs));
  Child tracked(loop(ours));
  ASSERT_TRUE(collector_->track(tracked.pid()));
  stranger.start();
  tracked.start();
  stranger.wait();
  tracked.wait();
  Seen seen = drain_until(*collector_, [&](const Seen& s) { return s.exit_of(tracked.pid()) != nullptr; });
  ASSERT_NE(seen.file(tracked.pid(), ours), nullptr);
  EXPECT_EQ(seen.file(tracked.pid(), ours)->opens, 20000u);
  EXPECT_FALSE(seen.any_pid(stranger.pid()));
  for (const auto& [key, f] : seen.files) EXPECT_NE(f.path, theirs);
  EXPECT_FALSE(seen.any_pid(static_cast<uint32_t>(getpid())));
}

// Two job slots at once: each collector sees only its own processes.
TEST_F(EventsTest, TwoJobsSeeOnlyTheirOwn) {
  std::string reason;
  auto second = EventCollector::open(opt_, reason);
  ASSERT_NE(second, nullptr) << reason;
  EXPECT_NE(second->slot(), collector_->slot());
  EXPECT_EQ(second->pin_path(), collector_->pin_path()) << "the second job reuses the pinned programs";
  const std::string pa = tmp_ + "/job-a", pb = tmp_ + "/job-b";
  auto job = [](const std::string& path, const char* arg) {
    return [path, arg] {
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0600);
      close(fd);
      execl("/bin/true", "true", arg, static_cast<char*>(nullptr));
      return 99;
    };
  };
  Child a(job(pa, "job-a")), b(job(pb, "job-b"));
  ASSERT_TRUE(collector_->track(a.pid()));
  ASSERT_TRUE(second->track(b.pid()));
  EXPECT_FALSE(second->track(a.pid())) << "a process belongs to one job";
  a.start();
  b.start();
  a.wait();
  b.wait();
  Seen sa = drain_until(*collector_, [&](const Seen& s) { return s.exit_of(a.pid()) != nullptr; });
  Seen sb = drain_until(*second, [&](const Seen& s) { return s.exit_of(b.pid()) != nullptr; });
  EXPECT_NE(sa.file(a.pid(), pa), nullptr);
  EXPECT_NE(sb.file(b.pid(), pb), nullptr);
  EXPECT_FALSE(sa.any_pid(b.pid()));
  EXPECT_FALSE(sb.any_pid(a.pid()));
  ASSERT_EQ(sa.execs.size(), 1u);
  ASSERT_EQ(sb.execs.size(), 1u);
  EXPECT_EQ(sa.execs[0].argv, (std::vector<std::string>{"true", "job-a"}));
  EXPECT_EQ(sb.execs[0].argv, (std::vector<std::string>{"true", "job-b"}));
}

// A tiny ring and a burst of distinct names: the overflow is counted, never silent.
TEST_F(EventsTest, LossIsCountedWithATinyRing) {
  collector_.reset();
  opt_.ring_bytes = 4096;
  std::string reason;
  collector_ = EventCollector::open(opt_, reason);
  ASSERT_NE(collector_, nullptr) << reason;
  EXPECT_EQ(collector_->ring_bytes(), 4096u);
  const std::string base = tmp_ + "/no-such-file-with-a-rather-long-name-";
  Child child([&] {
    for (int i = 0; i < 3000; ++i) ::open((base + std::to_string(i)).c_str(), O_RDONLY);
    return 0;
  });
  ASSERT_TRUE(collector_->track(child.pid()));
  child.start();
  child.wait();
  Seen seen = drain_until(*collector_, [&](const Seen&) { return true; });
  EXPECT_GT(seen.lost.ring, 0u);
  EXPECT_EQ(seen.lost_events, seen.lost.total());
  // Counts are still exact; only names were lost.
  uint64_t failed = 0;
  for (const auto& [key, f] : seen.files) failed += f.failed;
  EXPECT_EQ(failed, 3000u);
}

struct Rusage {
  uint64_t cpu_ns;
  uint64_t maxrss_kb;
};

Rusage self_rusage() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval& tv) {
    return static_cast<uint64_t>(tv.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(tv.tv_usec) * 1000u;
  };
  return {ns(ru.ru_utime) + ns(ru.ru_stime), static_cast<uint64_t>(ru.ru_maxrss)};
}

// Touches memory, burns CPU, reports its own getrusage() on fd, and exits with 9.
int short_lived_work(int fd, size_t bytes, uint64_t spin_ns) {
  std::vector<char> mem(bytes);
  for (size_t i = 0; i < bytes; i += 4096) mem[i] = static_cast<char>(i);
  auto t0 = std::chrono::steady_clock::now();
  volatile uint64_t x = 0;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::nanoseconds(spin_ns)) x = x + 1;
  Rusage r = self_rusage();
  if (write(fd, &r, sizeof r) != sizeof r) return 98;
  return 9;
}

// Processes living about a millisecond (one forked, one exec'd) are accounted exactly: CPU and max RSS from
// the exit event match the process's own getrusage() (taken just before it exits) within a tick, and the
// CPU matches what its parent's wait4() says about it once it is dead, with the right parent and argv.
TEST_F(EventsTest, MillisecondProcessIsExact) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  const std::string fd_arg = std::to_string(p[1]);
  Child child([&] {
    auto reap = [&](pid_t pid) {
      rusage ru{};
      int status = 0;
      wait4(pid, &status, 0, &ru);
      uint64_t cpu = static_cast<uint64_t>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1'000'000'000u +
                     static_cast<uint64_t>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
      return write(p[1], &cpu, sizeof cpu) == sizeof cpu;
    };
    pid_t g = fork();
    if (g == 0) _exit(short_lived_work(p[1], 1 << 20, 200'000));
    if (!reap(g)) return 1;
    pid_t h = fork();
    if (h == 0) {
      execl(g_self.c_str(), "test_events", "--bc-events-helper", fd_arg.c_str(), static_cast<char*>(nullptr));
      _exit(97);
    }
    if (!reap(h)) return 1;
    return 0;
  });
  close(p[1]);
  ASSERT_TRUE(collector_->track(child.pid()));
  child.start();
  ASSERT_EQ(child.wait(), 0);
  Rusage reported[2];
  uint64_t reaped_cpu[2];
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(read(p[0], &reported[i], sizeof reported[i]), static_cast<ssize_t>(sizeof reported[i]));
    ASSERT_EQ(read(p[0], &reaped_cpu[i], sizeof reaped_cpu[i]), static_cast<ssize_t>(sizeof reaped_cpu[i]));
  }
  close(p[0]);
  Seen seen = drain_until(*collector_, [&](const Seen& s) { return s.exit_of(child.pid()) != nullptr; });
  std::vector<ForkInfo> forks;  // the child's; an instrumented (sanitizer) helper may fork helpers of its own
  for (const auto& f : seen.forks)
    if (f.parent == child.pid()) forks.push_back(f);
  ASSERT_EQ(forks.size(), 2u);
  ASSERT_GE(seen.execs.size(), 1u);
  const ExecInfo& e = seen.execs[0];
  EXPECT_EQ(e.ppid, child.pid());
  EXPECT_EQ(e.argv, (std::vector<std::string>{"test_events", "--bc-events-helper", fd_arg}));
  EXPECT_EQ(e.exe, fs::canonical(g_self).string());

  [[maybe_unused]] const uint64_t tick_ns = 4'000'000;  // CONFIG_HZ=250 here
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(i == 0 ? "forked" : "exec'd");
    const ExitInfo* x = seen.exit_of(forks[static_cast<size_t>(i)].child);
    ASSERT_NE(x, nullptr);
    EXPECT_EQ(x->exit_code, 9);
    // Its own getrusage() was taken before it freed its memory and exited: that costs CPU too.
    EXPECT_GE(x->cpu_ns + 1000, reported[i].cpu_ns);  // getrusage rounds to microseconds
    EXPECT_EQ(x->user_ns + x->sys_ns, x->cpu_ns);
#ifndef __SANITIZE_ADDRESS__  // ASan's exit (shadow memory, LeakSanitizer's tracer process) costs milliseconds
    EXPECT_LE(x->cpu_ns, reported[i].cpu_ns + tick_ns);
    // wait4() in the parent sees the whole life: the exit event must agree to the microsecond.
    EXPECT_NEAR(static_cast<double>(x->cpu_ns), static_cast<double>(reaped_cpu[i]), 2000.0);
    EXPECT_EQ(x->max_rss_bytes, reported[i].maxrss_kb * 1024) << "the peak was reached before getrusage";
#endif
    EXPECT_GE(x->max_rss_bytes, 1u << 20);
    EXPECT_LT(x->time_ns - (i == 0 ? forks[0].time_ns : seen.execs[0].time_ns), 50'000'000u);
    std::printf(
        "%s process: lived %.2f ms, cpu %llu ns (own getrusage before exit %llu, parent's wait4 %llu), "
        "max rss %llu bytes (own getrusage %llu)\n",
        i == 0 ? "forked" : "exec'd", static_cast<double>(x->time_ns - forks[static_cast<size_t>(i)].time_ns) / 1e6,
        static_cast<unsigned long long>(x->cpu_ns), static_cast<unsigned long long>(reported[i].cpu_ns),
        static_cast<unsigned long long>(reaped_cpu[i]), static_cast<unsigned long long>(x->max_rss_bytes),
        static_cast<unsigned long long>(reported[i].maxrss_kb * 1024));
  }
  EXPECT_EQ(seen.lost_events, 0u);
}

// A monitor that dies without releasing its slot (kill -9) leaves it to the next one, which takes it back:
// its tracked processes no longer count for anybody.
TEST_F(EventsTest, DeadMonitorSlotIsTakenBack) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  Child victim([] {
    pause();
    return 0;
  });
  pid_t monitor = fork();
  if (monitor == 0) {
    std::string reason;
    auto c = EventCollector::open(opt_, reason);
    uint32_t slot = c ? c->slot() : 999;
    if (c) c->track(victim.pid());
    if (write(p[1], &slot, sizeof slot) != sizeof slot) _exit(1);
    _exit(0);  // no destructor: the slot stays taken by a dead process
  }
  close(p[1]);
  uint32_t dead_slot = 999;
  ASSERT_EQ(read(p[0], &dead_slot, sizeof dead_slot), static_cast<ssize_t>(sizeof dead_slot));
  close(p[0]);
  ASSERT_NE(dead_slot, 999u);
  ASSERT_NE(dead_slot, collector_->slot());
  // Not reaped yet: a zombie still holds its pid (and start time) but no longer its slot.
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, static_cast<id_t>(monitor), &info, WEXITED | WNOWAIT), 0);

  std::vector<std::string> logged;
  Options opt = opt_;
  opt.log = [&](LogLevel, const std::string& text) { logged.push_back(text); };
  std::string reason;
  auto next = EventCollector::open(opt, reason);
  ASSERT_NE(next, nullptr) << reason;
  EXPECT_EQ(next->slot(), dead_slot) << "the lowest free slot is the one taken back";
  bool said = false;
  for (const auto& l : logged) said = said || l.find("which is gone: taking it back") != std::string::npos;
  EXPECT_TRUE(said);
  EXPECT_TRUE(next->track(victim.pid())) << "the dead job's process is free to be tracked again";
  waitpid(monitor, nullptr, 0);
}

// Pins one map under dir/name; the value written at key 0, if any.
bool pin_map(const std::string& dir, const char* name, uint32_t value_size, uint32_t entries, const void* first) {
  int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, nullptr, 4, value_size, entries, nullptr);
  if (fd < 0) return false;
  uint32_t zero = 0;
  bool ok = (!first || bpf_map_update_elem(fd, &zero, first, BPF_ANY) == 0) &&
            bpf_obj_pin(fd, (dir + "/" + name).c_str()) == 0;
  close(fd);
  return ok;
}

uint64_t own_start_ticks() {
  std::ifstream f("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
  }
  return std::stoull(field);
}

// A node upgraded while jobs run: the set pinned by the older build (made before the tgid bitmap, so it has
// none) is kept while a monitor of that build holds a slot in it, and removed once none does.
TEST_F(EventsTest, AnOlderBuildsSetIsKeptWhileItsMonitorRuns) {
  const std::string older = opt_.pin_dir + "/0000000000000001";
  ASSERT_EQ(mkdir(older.c_str(), 0700), 0);
  for (const char* name : {"tracked", "slot_cfg", "slot_stats", "node_cfg", "rings", "files", "conns"})
    ASSERT_TRUE(pin_map(older, name, 8, 1, nullptr)) << name;
  bc_slot_owner owner{static_cast<uint32_t>(getpid()), 1, own_start_ticks()};  // this process: alive
  ASSERT_TRUE(pin_map(older, "slot_owner", sizeof owner, BC_MAX_SLOTS, &owner));
  bc_meta meta{1, 2, BC_MAX_SLOTS};
  ASSERT_TRUE(pin_map(older, "meta", sizeof meta, 1, &meta));

  std::string reason;
  auto next = EventCollector::open(opt_, reason);
  ASSERT_NE(next, nullptr) << reason;
  next.reset();
  EXPECT_TRUE(fs::exists(older + "/slot_owner")) << "the older build's set was removed under its running monitor";

  int fd = bpf_obj_get((older + "/slot_owner").c_str());
  ASSERT_GE(fd, 0);
  bc_slot_owner gone{};
  uint32_t zero = 0;
  ASSERT_EQ(bpf_map_update_elem(fd, &zero, &gone, BPF_ANY), 0);
  close(fd);
  next = EventCollector::open(opt_, reason);
  ASSERT_NE(next, nullptr) << reason;
  EXPECT_FALSE(fs::exists(older)) << "an older build's set nobody uses stays pinned";
}

// track() is idempotent and refuses processes that are gone.
TEST_F(EventsTest, TrackIsIdempotentAndRefusesTheDead) {
  Child child([] { return 0; });
  EXPECT_TRUE(collector_->track(child.pid()));
  EXPECT_TRUE(collector_->track(child.pid()));
  child.start();
  child.wait();
  EXPECT_FALSE(collector_->track(child.pid()));
  EXPECT_FALSE(collector_->track(0));
}

}  // namespace

int main(int argc, char** argv) {
  g_self = fs::canonical("/proc/self/exe").string();
  if (argc == 3 && std::strcmp(argv[1], "--bc-events-helper") == 0)
    return short_lived_work(std::atoi(argv[2]), 1 << 20, 200'000);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
