// The HTTP layer against hostile clients, over real loopback connections from several source addresses
// (127.0.0.0/8 is all loopback): slowloris, trickled headers, one address taking every connection, bodies
// sent to be refused, bodies that would take memory past the bound, and URLs with too many parameters.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "web/bcd/http_server.hpp"

using namespace bc::web;
using Clock = std::chrono::steady_clock;

namespace {

// A connected socket from source address `from` (127.0.0.N), or -1.
int connect_from(uint16_t port, const char* from) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  inet_pton(AF_INET, from, &src.sin_addr);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void send_all(int fd, const std::string& bytes) { (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL); }

// What the server answers within timeout_ms: the status line and headers (and the start of the body), or
// "" when it closed without an answer or said nothing.
std::string answer_of(int fd, int timeout_ms) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
    out.append(buf, static_cast<size_t>(n));
    if (out.find("\r\n\r\n") != std::string::npos) break;
  }
  return out;
}

// True when the server closed the connection (EOF or reset) within timeout_ms.
bool closed_by_server(int fd, int timeout_ms) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char c;
  const ssize_t n = ::recv(fd, &c, 1, 0);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

void raise_fd_limit() {
  rlimit l{};
  getrlimit(RLIMIT_NOFILE, &l);
  l.rlim_cur = l.rlim_max;
  setrlimit(RLIMIT_NOFILE, &l);
}

struct Server {
  explicit Server(ServerOptions o, Admit admit = {}) {
    o.bind_address = "0.0.0.0";  // every 127.x source reaches it over loopback
    o.stream_poll_ms = 100;
    handled = std::make_shared<std::atomic<int>>(0);
    auto count = handled;
    server = std::make_unique<HttpServer>(o, std::vector<Route>{{"GET", "/hello",
                                                                 [count](const Request&) {
                                                                   ++*count;
                                                                   return Response::json(200, "{}\n");
                                                                 }},
                                                                {"POST", "/push",
                                                                 [count](const Request& r) {
                                                                   ++*count;
                                                                   return Response::json(
                                                                       200, std::to_string(r.body.size()) + "\n");
                                                                 },
                                                                 admit}});
  }
  uint16_t port() const { return server->port(); }
  std::shared_ptr<std::atomic<int>> handled;
  std::unique_ptr<HttpServer> server;
};

}  // namespace

// 1,100 slowloris connections from 20 addresses (each under the per-address bound), every one trickling a
// header line: an honest client from another address still gets its answer within 1 s, and the slow ones
// are all dropped at the header deadline.
TEST(HttpLimits, SlowlorisCannotStarveAnHonestClient) {
  raise_fd_limit();
  ServerOptions o;
  o.header_timeout_s = 3;
  Server s(o);
  std::vector<int> slow;
  for (int a = 1; a <= 20; ++a) {
    const std::string from = "127.0.1." + std::to_string(a);
    for (int i = 0; i < 55; ++i) {
      const int fd = connect_from(s.port(), from.c_str());
      ASSERT_GE(fd, 0) << "connection " << slow.size();
      send_all(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n");
      slow.push_back(fd);
    }
  }
  ASSERT_EQ(slow.size(), 1100u);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (int fd : slow) send_all(fd, "X-Slow: 1\r\n");  // still sending, so never idle
  const auto start = Clock::now();
  const int honest = connect_from(s.port(), "127.0.2.1");
  ASSERT_GE(honest, 0);
  send_all(honest, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string answer = answer_of(honest, 1000);
  const double took = std::chrono::duration<double>(Clock::now() - start).count();
  ::close(honest);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << "no answer in " << took << " s: " << answer;
  EXPECT_LT(took, 1.0);
  // The header deadline drops every slow one, however steadily it trickles.
  size_t dropped = 0;
  for (int fd : slow) {
    if (closed_by_server(fd, 6000)) ++dropped;
    ::close(fd);
  }
  EXPECT_EQ(dropped, slow.size());
  EXPECT_GE(s.server->counters().header_timeouts.load(), 1100u);
}

// One address gets max_connections_per_ip connections; the rest are closed at once.
TEST(HttpLimits, OneAddressGetsItsShareOnly) {
  raise_fd_limit();
  ServerOptions o;
  o.max_connections_per_ip = 16;
  Server s(o);
  std::vector<int> fds;
  for (int i = 0; i < 200; ++i) fds.push_back(connect_from(s.port(), "127.0.3.1"));
  size_t closed = 0;
  for (int fd : fds) {
    if (fd >= 0 && closed_by_server(fd, 200)) ++closed;
  }
  EXPECT_EQ(closed, 200u - 16u);
  for (int fd : fds) ::close(fd);
  // Another address is not affected.
  const int other = connect_from(s.port(), "127.0.3.2");
  send_all(other, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(answer_of(other, 2000).rfind("HTTP/1.1 200", 0), 0u);
  ::close(other);
}

// A route's admission refuses from the headers: answered at once, while the client has sent none of its
// declared 16 MiB, and the handler never runs.
TEST(HttpLimits, AdmissionRefusesBeforeTheBody) {
  ServerOptions o;
  o.max_body_bytes = 32 << 20;
  o.max_inflight_bytes = 64 << 20;
  Server s(o, [](const Request& r) {
    Admission a;
    if (r.header("authorization") != "Bearer ok") a.refusal = Response::error(401, "who are you");
    return a;
  });
  const int fd = connect_from(s.port(), "127.0.4.1");
  send_all(fd, "POST /push HTTP/1.1\r\nHost: x\r\nContent-Length: 16777216\r\n\r\n");
  const std::string answer = answer_of(fd, 2000);
  ::close(fd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 401", 0), 0u) << answer;
  EXPECT_EQ(s.handled->load(), 0);
  EXPECT_EQ(s.server->counters().admission_refused.load(), 1u);
  // An admitted push is read whole and handled.
  const int ok = connect_from(s.port(), "127.0.4.1");
  send_all(ok,
           "POST /push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ok\r\nContent-Length: 5\r\nConnection: "
           "close\r\n\r\nhello");
  EXPECT_NE(answer_of(ok, 2000).find("HTTP/1.1 200"), std::string::npos);
  ::close(ok);
}

// Bodies in flight are bounded across requests: a second big body while the first is still arriving gets
// 503 at once; once the first is done, the second goes through.
TEST(HttpLimits, InflightBytesAreBounded) {
  ServerOptions o;
  o.max_body_bytes = 1 << 20;
  o.max_inflight_bytes = 1 << 20;
  Server s(o);
  const std::string declared = "POST /push HTTP/1.1\r\nHost: x\r\nContent-Length: 819200\r\nConnection: close\r\n\r\n";
  const int first = connect_from(s.port(), "127.0.5.1");
  send_all(first, declared + std::string(1000, 'a'));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const int second = connect_from(s.port(), "127.0.5.2");
  send_all(second, declared);
  const std::string busy = answer_of(second, 2000);
  ::close(second);
  EXPECT_EQ(busy.rfind("HTTP/1.1 503", 0), 0u) << busy;
  EXPECT_NE(busy.find("Retry-After"), std::string::npos) << busy;
  send_all(first, std::string(819200 - 1000, 'a'));
  EXPECT_NE(answer_of(first, 5000).find("HTTP/1.1 200"), std::string::npos);
  ::close(first);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the first request's completion gives its bytes back
  const int again = connect_from(s.port(), "127.0.5.2");
  send_all(again, declared + std::string(819200, 'b'));
  EXPECT_NE(answer_of(again, 5000).find("HTTP/1.1 200"), std::string::npos);
  ::close(again);
  EXPECT_EQ(s.server->counters().busy.load(), 1u);
}

// A body that trickles past its deadline is dropped, as headers are.
TEST(HttpLimits, TrickledBodyIsDroppedAtTheDeadline) {
  ServerOptions o;
  o.body_timeout_s = 1;
  Server s(o);
  const int fd = connect_from(s.port(), "127.0.6.1");
  send_all(fd, "POST /push HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n");
  bool closed = false;
  for (int i = 0; i < 30 && !closed; ++i) {
    send_all(fd, "a");
    closed = closed_by_server(fd, 200);
  }
  ::close(fd);
  EXPECT_TRUE(closed);
  EXPECT_EQ(s.server->counters().body_timeouts.load(), 1u);
  EXPECT_EQ(s.handled->load(), 0);
}

// Too many query parameters, one too long, or a long query: 400 at once (500 parameters once got no answer
// at all, and 60 of 500 bytes none until the header deadline: both fill MHD's connection pool).
TEST(HttpLimits, QueryParametersAreBounded) {
  Server s(ServerOptions{});
  std::string many = "/hello?", long_ones = "/hello?";
  for (int i = 0; i < 500; ++i) many += "p" + std::to_string(i) + "=x&";
  for (int i = 0; i < 60; ++i) long_ones += "p" + std::to_string(i) + "=" + std::string(500, 'x') + "&";
  for (const std::string& path : {many, "/hello?v=" + std::string(5000, 'x'), long_ones}) {
    const int fd = connect_from(s.port(), "127.0.7.1");
    const auto start = Clock::now();
    send_all(fd, "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const std::string answer = answer_of(fd, 3000);
    ::close(fd);
    EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer.substr(0, 200);
    EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 2.0);
  }
  EXPECT_EQ(s.server->counters().bad_query.load(), 3u);
  const int fd = connect_from(s.port(), "127.0.7.1");
  send_all(fd, "GET /hello?a=1&b=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(answer_of(fd, 2000).rfind("HTTP/1.1 200", 0), 0u);
  ::close(fd);
}
