// bc-testload: workloads with known figures for the integration tests. Each one reports what it really
// did (its own getrusage and VmHWM, bytes written) to a JSON file, the independent truth the monitor's
// numbers are checked against.
//   bc-testload busy SECONDS REPORT             burn CPU for SECONDS of wall time
//   bc-testload threads N SECONDS REPORT        N threads burn CPU for SECONDS of wall time; exits at once, so
//                                               sampling cannot have seen its last moments
//   bc-testload alloc MIB HOLD_SECONDS REPORT   touch MIB of memory, hold it
//   bc-testload write PATH BYTES HOLD_SECONDS REPORT   write BYTES with fsync, then stay alive
//   bc-testload files DIR REPORT                opens DIR/once (1), DIR/often (10000), DIR/twice (2), DIR/missing
//                                               (absent: 1 failed open); reports the counts its opens returned
//   bc-testload connect OPEN_PORT CLOSED_PORT REPORT   TCP connects to 127.0.0.1: one to OPEN_PORT (a listener),
//                                               two to CLOSED_PORT (refused); reports the outcomes
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

unsigned long long vm_hwm_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  return 0;
}

void report(const char* path, const std::string& extra) {
  std::ofstream out(path);
  out << "{\"pid\": " << getpid() << ", \"ppid\": " << getppid() << ", \"cpu_seconds\": " << cpu_seconds()
      << ", \"vm_hwm_bytes\": " << vm_hwm_bytes() << extra << "}\n";
}

void hold(double seconds) { std::this_thread::sleep_for(std::chrono::duration<double>(seconds)); }

int usage() {
  std::fputs(
      "usage: bc-testload busy SECONDS REPORT | threads N SECONDS REPORT | alloc MIB HOLD REPORT |\n"
      "       write PATH BYTES HOLD REPORT |\n"
      "       files DIR REPORT | connect OPEN_PORT CLOSED_PORT REPORT\n",
      stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  std::string mode = argv[1];
  if (mode == "busy" && argc == 4) {
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(std::atof(argv[2]));
    volatile unsigned long spin = 0;
    while (std::chrono::steady_clock::now() < end) spin = spin + 1;
    // Stay alive one moment so the sampler sees the final CPU figure: sampling cannot see past exit.
    hold(0.6);
    report(argv[3], "");
    return 0;
  }
  if (mode == "threads" && argc == 5) {
    const int n = std::atoi(argv[2]);
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(std::atof(argv[3]));
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i)
      threads.emplace_back([end] {
        volatile unsigned long spin = 0;
        while (std::chrono::steady_clock::now() < end) spin = spin + 1;
      });
    for (auto& t : threads) t.join();
    report(argv[4], "");
    return 0;
  }
  if (mode == "alloc" && argc == 5) {
    size_t bytes = static_cast<size_t>(std::atof(argv[2]) * 1024 * 1024);
    void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return 1;
    std::memset(mem, 7, bytes);
    hold(std::atof(argv[3]));
    report(argv[4], "");
    return 0;
  }
  if (mode == "write" && argc == 6) {
    unsigned long long total = std::strtoull(argv[3], nullptr, 10);
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 1;
    std::vector<char> block(1 << 20, 'b');
    unsigned long long written = 0;
    while (written < total) {
      size_t n = static_cast<size_t>(std::min<unsigned long long>(block.size(), total - written));
      ssize_t w = write(fd, block.data(), n);
      if (w <= 0) return 1;
      written += static_cast<unsigned long long>(w);
    }
    fsync(fd);
    close(fd);
    hold(std::atof(argv[4]));
    std::ostringstream extra;
    extra << ", \"bytes_written\": " << written;
    report(argv[5], extra.str());
    return 0;
  }
  if (mode == "files" && argc == 4) {
    const std::string dir = argv[2];
    struct Target {
      const char* name;
      int times;
      int ok = 0, failed = 0;
    } targets[] = {{"once", 1}, {"often", 10000}, {"twice", 2}, {"missing", 1}};
    for (auto& t : targets) {
      const std::string path = dir + "/" + t.name;
      for (int i = 0; i < t.times; ++i) {
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
          ++t.ok;
          close(fd);
        } else {
          ++t.failed;
        }
      }
    }
    std::ostringstream extra;
    extra << ", \"files\": {";
    for (size_t i = 0; i < 4; ++i)
      extra << (i ? ", " : "") << "\"" << dir << "/" << targets[i].name << "\": {\"opens\": " << targets[i].ok
            << ", \"failed\": " << targets[i].failed << "}";
    extra << "}";
    report(argv[3], extra.str());
    return 0;
  }
  if (mode == "connect" && argc == 5) {
    auto attempt = [](int port) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return false;
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      close(fd);
      return ok;
    };
    const int open_port = std::atoi(argv[2]), closed_port = std::atoi(argv[3]);
    const int open_ok = attempt(open_port) ? 1 : 0;
    int closed_ok = 0;
    for (int i = 0; i < 2; ++i) closed_ok += attempt(closed_port) ? 1 : 0;
    std::ostringstream extra;
    extra << ", \"open_port\": " << open_port << ", \"open_ok\": " << open_ok << ", \"closed_port\": " << closed_port
          << ", \"closed_ok\": " << closed_ok;
    report(argv[4], extra.str());
    return 0;
  }
  return usage();
}
