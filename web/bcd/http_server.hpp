// bcd's HTTP layer over libmicrohttpd: a route table with a 404 sentinel, bounded request bodies that are
// complete before a handler runs, admission from the headers before any body is read, limits and deadlines
// that hostile clients cannot hold open, and static files that can never leave their root.
#pragma once

#include <any>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct cJSON;

namespace bc::web {

struct Request {
  std::string method;
  std::string path;                            // decoded, without the query string
  std::map<std::string, std::string> query;    // decoded
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::vector<std::string> params;  // values of the route's {} segments, in order
  std::string peer;                 // client address
  std::any admission;               // what the route's admit() returned as its context

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
  int file_fd = -1;  // when >= 0, the body is this file (owned, closed by the server)
  uint64_t file_size = 0;
  std::shared_ptr<Stream> stream;  // when set, the body comes from it

  static Response json(unsigned status, std::string body);
  // document as cJSON prints it (compact, or pretty with tabs), with a trailing newline; size_hint as for
  // json::print.
  static Response json(unsigned status, const cJSON* document, bool pretty = false, size_t size_hint = 0);
  // {"error": message} with the status; every failure the API returns has this shape.
  static Response error(unsigned status, const std::string& message);
};

using Handler = std::function<Response(const Request&)>;

// A route's decision from the request line and headers alone, before any of the body is read: a refusal is
// answered at once and the body is never buffered (the connection is then closed).
struct Admission {
  std::optional<Response> refusal;
  std::any context;  // handed to the handler as Request::admission
};
using Admit = std::function<Admission(const Request&)>;

struct Route {
  std::string method;   // "GET", "POST", ...
  std::string pattern;  // "/api/v1/jobs/{}" : {} matches one non-empty segment
  Handler handler;
  Admit admit = {};  // optional
};

// What the server refused or dropped on its own, by cause (for /metrics).
struct ServerCounters {
  std::atomic<uint64_t> header_timeouts{0};    // connections closed: headers not complete within header_timeout_s
  std::atomic<uint64_t> body_timeouts{0};      // connections closed: body not complete within body_timeout_s
  std::atomic<uint64_t> busy{0};               // 503: bodies in flight at max_inflight_bytes
  std::atomic<uint64_t> bad_query{0};          // 400: too many query parameters, or one too long
  std::atomic<uint64_t> admission_refused{0};  // answered by a route's admit() before the body
};

struct ServerOptions {
  std::string bind_address = "127.0.0.1";
  uint16_t port = 0;  // 0: the kernel picks one; read it back with port()
  unsigned threads = 2;
  size_t max_body_bytes = 8 << 20;
  unsigned connection_timeout_s = 30;
  unsigned stream_poll_ms = 1000;  // how often a parked stream is asked for more
  // Against clients that hold connections or memory: connections in total and per client address; a
  // request's headers must be complete within header_timeout_s of its connection opening (or of the
  // previous answer on it), and its body within body_timeout_s after the headers, however slowly but
  // steadily they trickle in; request bodies buffered at once, across all requests.
  unsigned max_connections = 2048;
  unsigned max_connections_per_ip = 64;
  unsigned header_timeout_s = 10;
  unsigned body_timeout_s = 60;
  size_t max_inflight_bytes = 256 << 20;
  size_t max_query_params = 64;
  size_t max_query_value_bytes = 4096;
  size_t max_query_bytes = 8192;  // the whole query, raw; it must fit MHD's 32 KiB pool with its parameters
  // Called with the request path when a body over max_body_bytes is refused with 413 (no handler runs then).
  std::function<void(const std::string& path)> on_body_too_large;
  // HTTPS when both are set: the certificate (chain) and its unencrypted private key, PEM text. Empty: plain HTTP.
  std::string tls_cert_pem;
  std::string tls_key_pem;
};

class HttpServer {
 public:
  // Throws std::runtime_error when the daemon cannot start (address in use, bad address, a certificate or key
  // that does not load).
  HttpServer(ServerOptions options, std::vector<Route> routes);
  ~HttpServer();  // stops accepting, finishes requests in flight, then returns
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  size_t open_streams() const;  // streaming responses not yet finished
  const ServerCounters& counters() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// A GET handler serving files below root for URL paths below url_prefix ("/static/"). Rejects "..",
// absolute paths, NUL, and anything whose real path (symlinks resolved) is outside root; serves regular
// files only.
Handler static_files(const std::string& root, const std::string& url_prefix);

}  // namespace bc::web
