// The HTTP layer over real loopback connections, with libcurl as the client.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "web/bcd/http_server.hpp"

using namespace bc::web;
namespace fs = std::filesystem;

namespace {

struct Reply {
  long status = 0;
  std::string body;
  std::string content_type;
};

size_t append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

Reply fetch(uint16_t port, const std::string& path, const std::string& method = "GET", const std::string& body = "") {
  Reply reply;
  CURL* curl = curl_easy_init();
  std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);  // send "..", do not normalise it away
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  if (method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  } else if (method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
    char* type = nullptr;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
    if (type) reply.content_type = type;
  }
  curl_easy_cleanup(curl);
  return reply;
}

// Sends raw bytes (what curl would never send) and returns what the server answers before it closes or within
// 5 s.
std::string raw_exchange(uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
      answer.append(buf, static_cast<size_t>(n));
      if (answer.find("\r\n\r\n") != std::string::npos) break;  // the status line and headers are enough
    }
  }
  ::close(fd);
  return answer;
}

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char t[] = "/tmp/bc-http-XXXXXX";
    dir_ = mkdtemp(t);
    root_ = dir_ / "static";
    fs::create_directories(root_ / "sub");
    std::ofstream(root_ / "index.html") << "<h1>hi</h1>";
    std::ofstream(root_ / "sub" / "app.js") << "export const x = 1;";
    std::ofstream(dir_ / "secret.txt") << "top secret";
    fs::create_symlink(dir_ / "secret.txt", root_ / "link_out");
    fs::create_symlink(root_ / "index.html", root_ / "link_in");
    ServerOptions options;
    options.max_body_bytes = 1024;
    server_ = std::make_unique<HttpServer>(
        options,
        std::vector<Route>{
            {"GET", "/api/v1/ping", [](const Request&) { return Response::json(200, "{\"ok\": true}"); }},
            {"GET", "/api/v1/jobs/{}/processes",
             [](const Request& r) { return Response::json(200, "{\"job\": \"" + r.params[0] + "\"}"); }},
            {"POST", "/api/v1/echo",
             [](const Request& r) {
               Response resp = Response::json(201, r.body);
               resp.content_type = r.header("content-type").value_or("none");
               return resp;
             }},
            {"GET", "/api/v1/query", [](const Request& r) { return Response::json(200, r.arg("q").value_or("-")); }},
            {"GET", "/api/v1/boom", [](const Request&) -> Response { throw std::runtime_error("kaboom"); }},
            {"GET", "/static/**", static_files(root_.string(), "/static/")},
        });
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }
  uint16_t port() const { return server_->port(); }

  fs::path dir_, root_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace

TEST_F(HttpTest, BindsAnEphemeralPort) { EXPECT_GT(port(), 0); }

TEST_F(HttpTest, RoutesAndParameters) {
  auto r = fetch(port(), "/api/v1/ping");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"ok\": true}");
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(fetch(port(), "/api/v1/jobs/42/processes").body, "{\"job\": \"42\"}");
  EXPECT_EQ(fetch(port(), "/api/v1/query?q=a%20b").body, "a b");
}

TEST_F(HttpTest, ErrorsAreJsonWithTheRightStatus) {
  auto missing = fetch(port(), "/api/v1/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("\"error\""), std::string::npos);
  EXPECT_EQ(fetch(port(), "/api/v1/jobs//processes").status, 404);
  EXPECT_EQ(fetch(port(), "/api/v1/ping", "DELETE").status, 405);
  auto boom = fetch(port(), "/api/v1/boom");
  EXPECT_EQ(boom.status, 500);
  EXPECT_NE(boom.body.find("kaboom"), std::string::npos);
  // The server keeps serving after all of that.
  EXPECT_EQ(fetch(port(), "/api/v1/ping").status, 200);
}

TEST_F(HttpTest, PostBodiesAreWholeAndBounded) {
  std::string body(1000, 'x');
  auto r = fetch(port(), "/api/v1/echo", "POST", body);
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, body);
  auto big = fetch(port(), "/api/v1/echo", "POST", std::string(5000, 'y'));
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(fetch(port(), "/api/v1/ping").status, 200);
}

// Request smuggling: a body whose length two headers disagree on (or one header twice) is refused, whatever
// the server in front would have made of it.
TEST_F(HttpTest, AmbiguousBodyLengthsAreRefused) {
  const std::string head = "POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n";
  const std::string cl_and_te = head + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
  const std::string two_cl = head + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
  const std::string same_cl_twice = head + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello";
  for (const std::string& request : {cl_and_te, two_cl, same_cl_twice}) {
    const std::string answer = raw_exchange(port(), request);
    EXPECT_EQ(answer.rfind("HTTP/1.1 400 ", 0), 0u) << request << "\n---\n" << answer;
  }
  // One length, or chunked alone, is fine.
  EXPECT_EQ(raw_exchange(port(), head + "Content-Length: 5\r\n\r\nhello").rfind("HTTP/1.1 201 ", 0), 0u);
  EXPECT_EQ(raw_exchange(port(), head + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
                .rfind("HTTP/1.1 201 ", 0),
            0u);
  EXPECT_EQ(fetch(port(), "/api/v1/ping").status, 200);  // and the server goes on
}

TEST_F(HttpTest, StaticFilesServed) {
  auto r = fetch(port(), "/static/index.html");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "<h1>hi</h1>");
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  auto js = fetch(port(), "/static/sub/app.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(fetch(port(), "/static/link_in").status, 200);  // a symlink that stays inside is fine
}

TEST_F(HttpTest, StaticFilesNeverLeaveTheRoot) {
  for (const char* path : {"/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/%2E%2E/secret.txt",
                           "/static/sub/../../secret.txt", "/static//etc/passwd", "/static/link_out",
                           "/static/sub/%2e%2e/%2e%2e/secret.txt"}) {
    auto r = fetch(port(), path);
    EXPECT_TRUE(r.status == 403 || r.status == 404) << path << " -> " << r.status;
    EXPECT_EQ(r.body.find("top secret"), std::string::npos) << path;
  }
  EXPECT_EQ(fetch(port(), "/static/sub").status, 404);  // a directory is not a file
  EXPECT_EQ(fetch(port(), "/static/missing.js").status, 404);
  EXPECT_EQ(fetch(port(), "/static/").status, 403);
}

namespace {

// Sends "tick N" after every `idle` empty answers, `total` times, then ends.
class TickStream : public Stream {
 public:
  TickStream(int idle, int total, std::atomic<int>& polls) : idle_(idle), total_(total), polls_(polls) {}
  std::optional<std::string> next() override {
    ++polls_;
    if (sent_ == total_) return std::nullopt;
    if (waited_++ < idle_) return std::string();
    waited_ = 0;
    return "data: tick " + std::to_string(sent_++) + "\n\n";
  }

 private:
  int idle_, total_, sent_ = 0, waited_ = 0;
  std::atomic<int>& polls_;
};

}  // namespace

TEST(HttpStream, ParkedStreamIsPolledOncePerPeriodAndEnds) {
  std::atomic<int> polls{0};
  ServerOptions options;
  options.stream_poll_ms = 50;
  HttpServer server(options, {{"GET", "/s", [&](const Request&) {
                                 Response r;
                                 r.content_type = "text/event-stream";
                                 r.stream = std::make_shared<TickStream>(2, 3, polls);
                                 return r;
                               }}});
  auto start = std::chrono::steady_clock::now();
  Reply r = fetch(server.port(), "/s");
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "data: tick 0\n\ndata: tick 1\n\ndata: tick 2\n\n");
  EXPECT_EQ(r.content_type, "text/event-stream");
  // Two empty answers before each tick, each followed by one poll period parked: no busy loop.
  EXPECT_GE(ms, 6 * 50 - 20);
  EXPECT_LE(polls.load(), 3 * 3 + 2);
  // The server counts the stream closed when it has finished the connection, which may be just after the
  // client read the last byte.
  for (int i = 0; i < 200 && server.open_streams() != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server.open_streams(), 0u);
}

TEST(HttpStream, ServerStopsWithAParkedStream) {
  std::atomic<int> polls{0};
  auto server = std::make_unique<HttpServer>(
      ServerOptions{}, std::vector<Route>{{"GET", "/s", [&](const Request&) {
                                             Response r;
                                             r.stream = std::make_shared<TickStream>(1000000, 1, polls);
                                             return r;
                                           }}});
  std::thread client([port = server->port()] { fetch(port, "/s"); });
  for (int i = 0; i < 200 && polls.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_GT(polls.load(), 0);
  EXPECT_EQ(server->open_streams(), 1u);
  auto start = std::chrono::steady_clock::now();
  server.reset();  // must not hang on, or crash over, the suspended connection
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  client.join();
}

TEST(HttpSharedBody, OneBufferServesManyAnswersAndOutlivesItsOwner) {
  // A large body shared by every answer (as bcd's cached views are): each client gets all of it, and the
  // server keeps it alive while sending even after the handler's owner has dropped it.
  auto body = std::make_shared<std::string>();
  for (int i = 0; body->size() < (1 << 20); ++i) *body += std::to_string(i) + ",";
  std::shared_ptr<const std::string> shared = body;
  std::mutex m;
  HttpServer server(ServerOptions{}, {{"GET", "/big", [&](const Request&) {
                                         Response r;
                                         std::lock_guard lock(m);
                                         r.shared_body = shared;
                                         return r;
                                       }}});
  const std::string expected = *body;
  Reply first = fetch(server.port(), "/big");
  {
    std::lock_guard lock(m);
    shared = std::make_shared<const std::string>("replaced");
  }
  body.reset();
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body, expected);
  EXPECT_EQ(fetch(server.port(), "/big").body, "replaced");
}

// Numeric query arguments: whole decimal numbers in range, or a 400 for the caller; never an exception.
TEST(HttpRequest, IntArgIsCheckedNeverThrown) {
  Request req;
  std::optional<int64_t> out;
  EXPECT_TRUE(req.int_arg("n", 0, 10, out));  // absent
  EXPECT_FALSE(out);
  for (const char* bad :
       {"", "-", "+5", " 5", "5 ", "5x", "0x10", "1e3", "9223372036854775808", "-9223372036854775809", "11", "-1"}) {
    req.query["n"] = bad;
    out.reset();
    EXPECT_FALSE(req.int_arg("n", 0, 10, out)) << "'" << bad << "'";
    EXPECT_FALSE(out) << bad;
  }
  for (const auto& [text, value] : {std::pair{"0", 0}, std::pair{"10", 10}, std::pair{"007", 7}}) {
    req.query["n"] = text;
    ASSERT_TRUE(req.int_arg("n", 0, 10, out)) << text;
    EXPECT_EQ(out, value);
  }
  req.query["n"] = "-9223372036854775808";
  EXPECT_TRUE(req.int_arg("n", INT64_MIN, INT64_MAX, out));
  EXPECT_EQ(out, INT64_MIN);
}
