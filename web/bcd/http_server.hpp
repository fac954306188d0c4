// bcd's HTTP layer over libmicrohttpd: a route table with a 404 sentinel, bounded request bodies that are
// complete before a handler runs, and static files that can never leave their root.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace bc::web {

struct Request {
  std::string method;
  std::string path;                          // decoded, without the query string
  std::map<std::string, std::string> query;  // decoded
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::vector<std::string> params;           // values of the route's {} segments, in order
  std::string peer;                          // client address

  std::optional<std::string> header(const std::string& lowercase_name) const;
  std::optional<std::string> arg(const std::string& name) const;
  // The query argument `name` as a whole number in [min, max] (decimal digits, a leading '-' only): out
  // stays unset when it is absent, and false is returned when it is there but not such a number, for a 400.
  bool int_arg(const std::string& name, int64_t min, int64_t max, std::optional<int64_t>& out) const;
};

// A body produced over time (Server-Sent Events). The server calls next() whenever the client can take
// more: it returns bytes to send now, an empty string for "nothing yet" (the connection is then parked
// without a thread and next() is called again one ServerOptions::stream_poll_ms later), or nullopt at the
// end. next() of one stream is never called concurrently.
class Stream {
 public:
  virtual ~Stream() = default;
  virtual std::optional<std::string> next() = 0;
};

struct Response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  // When set, the body is this buffer, shared with other answers and sent without a copy (a cached view).
  std::shared_ptr<const std::string> shared_body;
  std::vector<std::pair<std::string, std::string>> headers;
  int file_fd = -1;      // when >= 0, the body is this file (owned, closed by the server)
  uint64_t file_size = 0;
  std::shared_ptr<Stream> stream;  // when set, the body comes from it

  static Response json(unsigned status, std::string body);
  // {"error": message} with the status; every failure the API returns has this shape.
  static Response error(unsigned status, const std::string& message);
};

using Handler = std::function<Response(const Request&)>;

struct Route {
  std::string method;   // "GET", "POST", ...
  std::string pattern;  // "/api/v1/jobs/{}" : {} matches one non-empty segment
  Handler handler;
};

struct ServerOptions {
  std::string bind_address = "127.0.0.1";
  uint16_t port = 0;              // 0: the kernel picks one; read it back with port()
  unsigned threads = 2;
  size_t max_body_bytes = 8 << 20;
  unsigned connection_timeout_s = 30;
  unsigned stream_poll_ms = 1000;  // how often a parked stream is asked for more
  // Called with the request path when a body over max_body_bytes is refused with 413 (no handler runs then).
  std::function<void(const std::string& path)> on_body_too_large;
};

class HttpServer {
 public:
  // Throws std::runtime_error when the daemon cannot start (address in use, bad address).
  HttpServer(ServerOptions options, std::vector<Route> routes);
  ~HttpServer();  // stops accepting, finishes requests in flight, then returns
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  size_t open_streams() const;  // streaming responses not yet finished

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// A GET handler serving files below root for URL paths below url_prefix ("/static/"). Rejects "..",
// absolute paths, NUL, and anything whose real path (symlinks resolved) is outside root; serves regular
// files only.
Handler static_files(const std::string& root, const std::string& url_prefix);

}  // namespace bc::web
