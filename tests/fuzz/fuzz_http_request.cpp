// bcd's HTTP layer (web/bcd/http_server.cpp over libmicrohttpd) on raw bytes from a client. One HttpServer
// runs for the whole process on 127.0.0.1 with routes like bcd's (a JSON answer, query numbers, a path
// parameter, a bounded POST body, a live stream, static files, a handler that throws); each input is sent
// over a new TCP connection, which is half-closed once the server has read it, and the answer is read
// until the server closes.
// The server must answer or close within a few seconds, never hand a handler a body over its bound, and
// keep serving.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "web/bcd/http_server.hpp"

namespace {

namespace fs = std::filesystem;
using namespace bc::web;

constexpr size_t kMaxBody = 4096;
constexpr int kAnswerTimeoutMs = 5000;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "%s\n", what.c_str());
  std::abort();
}

// A live view: two events with a pause between them (the connection is parked, then resumed).
class TwoEvents final : public Stream {
 public:
  std::optional<std::string> next() override {
    switch (step_++) {
      case 0: return std::string("event: point\ndata: 1\n\n");
      case 1: return std::string();
      case 2: return std::string("event: end\ndata: 2\n\n");
      default: return std::nullopt;
    }
  }

 private:
  int step_ = 0;
};

std::vector<Route> routes(const std::string& static_root) {
  return {
      {"GET", "/api/v1/health", [](const Request&) { return Response::json(200, "{\"status\": \"ok\"}\n"); }},
      {"GET", "/api/v1/jobs",
       [](const Request& req) {
         std::optional<int64_t> from, to;
         if (!req.int_arg("from", 0, int64_t{1} << 40, from) || !req.int_arg("to", 0, int64_t{1} << 40, to))
           return Response::error(400, "from and to are epoch seconds");
         return Response::json(200, "{\"jobs\": []}\n");
       }},
      {"GET", "/api/v1/jobs/{}",
       [](const Request& req) {
         return Response::json(200, "{\"id_bytes\": " + std::to_string(req.params.at(0).size()) + "}\n");
       }},
      {"GET", "/api/v1/jobs/{}/stream",
       [](const Request&) {
         Response r;
         r.content_type = "text/event-stream";
         r.stream = std::make_shared<TwoEvents>();
         return r;
       }},
      {"POST", "/api/v1/ingest",
       [](const Request& req) {
         if (req.body.size() > kMaxBody) fail("a handler got a body over max_body_bytes");
         return Response::json(200, "{\"bytes\": " + std::to_string(req.body.size()) + "}\n");
       }},
      {"GET", "/api/v1/fail", [](const Request&) -> Response { throw std::runtime_error("a handler failed"); }},
      {"GET", "/static/**", static_files(static_root, "/static/")},
  };
}

struct Server {
  fs::path root;
  std::unique_ptr<HttpServer> http;

  Server() {
    char pattern[] = "/tmp/bc-fuzz-http-XXXXXX";
    if (!mkdtemp(pattern)) fail("cannot make a temporary directory");
    root = pattern;
    std::ofstream(root / "index.html") << "<!doctype html><title>bc</title>\n";
    fs::create_symlink("/etc", root / "etc");
    ServerOptions options;
    options.threads = 2;
    options.max_body_bytes = kMaxBody;
    options.connection_timeout_s = 2;
    options.stream_poll_ms = 1;
    http = std::make_unique<HttpServer>(options, routes(root.string()));
  }
  ~Server() {
    http.reset();
    fs::remove_all(root);
  }
};

Server* g_server = nullptr;

// The server's end of our connection `client`: the socket in this process whose peer is our end (-1 until
// libmicrohttpd has accepted it). It takes the lowest free fd, so it is found close to ours.
int server_end(int client, const sockaddr_in& ours) {
  for (int fd = 3; fd < client + 16; ++fd) {
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    if (fd != client && ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0 && len == sizeof peer &&
        peer.sin_port == ours.sin_port && peer.sin_addr.s_addr == ours.sin_addr.s_addr)
      return fd;
  }
  return -1;
}

// Waits (a bounded time) until the server has read everything we sent, or has answered. libmicrohttpd's
// epoll loop is edge-triggered and reads once per wake-up: when our end of input arrives together with the
// request, it notices only at its connection timeout. Sent after it has read, the end of input wakes it.
void wait_until_read(int client, const sockaddr_in& ours) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
  int server = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd answered{client, POLLIN, 0};
    if (::poll(&answered, 1, 0) > 0) return;
    if (server < 0) server = server_end(client, ours);
    int unread = 0;
    if (server >= 0 && (::ioctl(server, FIONREAD, &unread) != 0 || unread == 0)) return;
    std::this_thread::yield();
  }
}

// One connection: send everything, half-close once the server has read it, read the answer to the end.
std::string exchange(uint16_t port, const uint8_t* data, size_t size) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // libFuzzer's timer signal may interrupt us: a connect then goes on in the background, the rest is retried.
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    int error = errno;
    if (error == EINTR) {
      pollfd p{fd, POLLOUT, 0};
      while (::poll(&p, 1, kAnswerTimeoutMs) < 0 && errno == EINTR) {
      }
      socklen_t len = sizeof error;
      if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
    }
    if (error != 0) fail(std::string("the server no longer accepts connections: ") + std::strerror(error));
  }
  sockaddr_in ours{};
  socklen_t len = sizeof ours;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ours), &len);
  // The server may answer and close before it has read everything: sending then fails, which is fine.
  for (size_t sent = 0; sent < size;) {
    const ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  wait_until_read(fd, ours);
  ::shutdown(fd, SHUT_WR);
  std::string answer;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kAnswerTimeoutMs);
  for (;;) {
    using std::chrono::milliseconds;
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) fail("the server neither answered nor closed the connection within 5 s");
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[16384];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // closed (or reset, when it closed with input unread)
    answer.append(buf, static_cast<size_t>(n));
  }
  // Closed with a reset: neither side keeps the connection in TIME_WAIT, so millions of them do not use up
  // the ports.
  const linger reset{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  ::close(fd);
  return answer;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_server = new Server();
  std::atexit([] { delete g_server; });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string answer = exchange(g_server->http->port(), data, size);
  if (!answer.empty() && answer.rfind("HTTP/1.", 0) != 0) fail("an answer that is not HTTP/1.x");
  return 0;
}
