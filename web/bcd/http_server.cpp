#include "web/bcd/http_server.hpp"

#include <cJSON.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "common/json.hpp"

namespace bc::web {
namespace {
// TLS 1.2 and 1.3 only, GnuTLS's usual ciphers otherwise.
constexpr char kTlsPriorities[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
}  // namespace

std::optional<std::string> Request::header(const std::string& lowercase_name) const {
  auto it = headers.find(lowercase_name);
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Request::arg(const std::string& name) const {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  return it->second;
}

bool Request::int_arg(const std::string& name, int64_t min, int64_t max, std::optional<int64_t>& out) const {
  const auto text = arg(name);
  if (!text) return true;
  int64_t value = 0;
  const char* end = text->data() + text->size();
  const auto [ptr, ec] = std::from_chars(text->data(), end, value);  // no '+', no spaces; overflow is an error
  if (text->empty() || ec != std::errc() || ptr != end || value < min || value > max) return false;
  out = value;
  return true;
}

Response Response::json(unsigned status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Response::json(unsigned status, const cJSON* document, bool pretty, size_t size_hint) {
  return json(status, bc::json::print(document, pretty, size_hint) + "\n");
}

Response Response::error(unsigned status, const std::string& message) {
  const bc::json::Ptr document(bc::json::checked(cJSON_CreateObject()));
  bc::json::add(document.get(), "error", bc::json::string(message));
  return json(status, document.get());
}

namespace {

// libmicrohttpd's messages, at most a few per second: a flood of hostile connections (each refused one is
// a line) must not fill the log. What is left out is counted in the next line that is written.
void log_mhd(void*, const char* format, va_list args) {
  static std::atomic<int64_t> second{0};
  static std::atomic<int> in_second{0};
  static std::atomic<uint64_t> suppressed{0};
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  if (second.exchange(now) != now) in_second = 0;
  if (++in_second > 5) {
    ++suppressed;
    return;
  }
  char text[512];
  std::vsnprintf(text, sizeof text, format, args);
  const uint64_t left_out = suppressed.exchange(0);
  if (left_out)
    std::fprintf(stderr, "bcd: http: %s (and %llu more messages left out)\n", text,
                 static_cast<unsigned long long>(left_out));
  else std::fprintf(stderr, "bcd: http: %s\n", text);
}

}  // namespace

struct HttpServer::Impl {
  ServerOptions options;
  std::vector<Route> routes;
  MHD_Daemon* daemon = nullptr;

  // Streams with nothing to send are parked (MHD-suspended, holding no thread); the ticker resumes them
  // all once per stream_poll_ms, so each asks its source once per period.
  std::mutex park_mutex;
  std::vector<MHD_Connection*> parked;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> live_streams{0};
  std::mutex tick_mutex;
  std::condition_variable tick_cv;
  std::thread ticker;

  struct StreamState {
    Impl* impl = nullptr;
    std::shared_ptr<Stream> stream;
    MHD_Connection* connection = nullptr;
    std::string pending;
    size_t offset = 0;
  };

  ServerCounters counters;

  // Per-request state, owned by MHD's request-closure pointer until the completion callback.
  struct Pending {
    std::string body;
    bool too_large = false;
    bool busy = false;    // the body would take the bodies in flight past max_inflight_bytes
    size_t reserved = 0;  // of inflight_bytes, given back on completion
    const Route* route = nullptr;
    std::any admission;
    bool headers_seen = false;   // the access handler's first call (headers only) is done
    bool query_too_big = false;  // measured in the raw URI, before MHD parsed it
  };
  std::atomic<size_t> inflight_bytes{0};

  // Each TCP connection, for the header and body deadlines: the ticker shuts down the socket of one that
  // is past its deadline, and MHD then closes it as it would a client's hang-up. An entry lives from
  // MHD's STARTED to its CLOSED notification, which comes before MHD closes the socket.
  enum class Phase { Headers, Body, Answering, Dropped };
  struct Connection {
    int fd = -1;
    Phase phase = Phase::Headers;
    std::chrono::steady_clock::time_point since;
  };
  std::mutex connections_mutex;
  std::list<Connection> connections;

  static Connection* connection_of(MHD_Connection* c) {
    const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? static_cast<Connection*>(info->socket_context) : nullptr;
  }
  void enter(MHD_Connection* c, Phase phase) {
    std::lock_guard lock(connections_mutex);
    if (Connection* conn = connection_of(c); conn && conn->phase != Phase::Dropped) {
      conn->phase = phase;
      conn->since = std::chrono::steady_clock::now();
    }
  }

  static void on_connection(void* cls, MHD_Connection* c, void** socket_context, MHD_ConnectionNotificationCode code) {
    auto* self = static_cast<Impl*>(cls);
    std::lock_guard lock(self->connections_mutex);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
      const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
      self->connections.push_front({info ? info->connect_fd : -1, Phase::Headers, std::chrono::steady_clock::now()});
      *socket_context = &self->connections.front();
    } else if (*socket_context) {
      auto* conn = static_cast<Connection*>(*socket_context);
      self->connections.remove_if([conn](const Connection& e) { return &e == conn; });
      *socket_context = nullptr;
    }
  }

  void drop_late_connections() {
    const auto now = std::chrono::steady_clock::now();
    const auto header_limit = std::chrono::seconds(options.header_timeout_s);
    const auto body_limit = std::chrono::seconds(options.body_timeout_s);
    std::lock_guard lock(connections_mutex);
    for (Connection& conn : connections) {
      const bool late = (conn.phase == Phase::Headers && now - conn.since > header_limit) ||
                        (conn.phase == Phase::Body && now - conn.since > body_limit);
      if (!late || conn.fd < 0) continue;
      ++(conn.phase == Phase::Headers ? counters.header_timeouts : counters.body_timeouts);
      conn.phase = Phase::Dropped;
      ::shutdown(conn.fd, SHUT_RDWR);
    }
  }

  bool match(const Route& route, const std::string& path, std::vector<std::string>& params) const {
    params.clear();
    size_t p = 0, u = 0;
    const std::string& pat = route.pattern;
    while (p < pat.size()) {
      if (pat.compare(p, 2, "{}") == 0) {
        size_t end = path.find('/', u);
        if (end == std::string::npos) end = path.size();
        if (end == u) return false;
        params.push_back(path.substr(u, end - u));
        u = end;
        p += 2;
      } else if (pat.compare(p, 2, "**") == 0) {  // the rest of the path, possibly empty
        params.push_back(path.substr(u));
        return true;
      } else {
        if (u >= path.size() || path[u] != pat[p]) return false;
        ++u;
        ++p;
      }
    }
    return u == path.size();
  }

  // route: the one found for the request's method and path when its headers arrived, or null.
  Response dispatch(Request& req, const Route* route) const {
    if (route) {
      match(*route, req.path, req.params);
      try {
        return route->handler(req);
      } catch (const std::exception& e) {
        return Response::error(500, std::string("internal error: ") + e.what());
      }
    }
    // No route for this method and path: is there one for the path alone?
    const bool path_matched =
        std::any_of(routes.begin(), routes.end(), [&](const Route& r) { return match(r, req.path, req.params); });
    if (path_matched) return Response::error(405, "method " + req.method + " is not allowed on " + req.path);
    return Response::error(404, "no such endpoint: " + req.path);
  }

  static MHD_Result collect(void* cls, MHD_ValueKind, const char* key, const char* value) {
    auto* into = static_cast<std::map<std::string, std::string>*>(cls);
    std::string k(key ? key : "");
    (*into)[k] = value ? value : "";
    return MHD_YES;
  }
  static MHD_Result collect_header(void* cls, MHD_ValueKind, const char* key, const char* value) {
    auto* into = static_cast<std::map<std::string, std::string>*>(cls);
    std::string k(key ? key : "");
    std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return std::tolower(c); });
    (*into)[k] = value ? value : "";
    return MHD_YES;
  }

  static ssize_t read_stream(void* cls, uint64_t /*pos*/, char* buf, size_t max) {
    auto* s = static_cast<StreamState*>(cls);
    if (s->offset >= s->pending.size()) {
      s->pending.clear();
      s->offset = 0;
      if (s->impl->stopping) return MHD_CONTENT_READER_END_OF_STREAM;
      std::optional<std::string> more;
      try {
        more = s->stream->next();
      } catch (const std::exception&) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
      }
      if (!more) return MHD_CONTENT_READER_END_OF_STREAM;
      if (more->empty()) {
        // MHD allows suspending from the content reader; returning 0 without it would spin.
        std::lock_guard lock(s->impl->park_mutex);
        if (!s->impl->stopping) {
          s->impl->parked.push_back(s->connection);
          MHD_suspend_connection(s->connection);
        }
        return 0;
      }
      s->pending = std::move(*more);
    }
    const size_t n = std::min(max, s->pending.size() - s->offset);
    // NOLINTNEXTLINE(bugprone-not-null-terminated-result): buf is a byte buffer of n, not a C string
    std::memcpy(buf, s->pending.data() + s->offset, n);
    s->offset += n;
    return static_cast<ssize_t>(n);
  }

  static void free_stream(void* cls) {
    auto* s = static_cast<StreamState*>(cls);
    --s->impl->live_streams;
    delete s;
  }

  static void release_body(void* cls) { delete static_cast<std::shared_ptr<const std::string>*>(cls); }

  void resume_parked() {
    std::lock_guard lock(park_mutex);
    for (MHD_Connection* c : parked) MHD_resume_connection(c);
    parked.clear();
  }

  void tick_loop() {
    // Deadlines are checked at least once a second, parked streams resumed once per stream_poll_ms.
    std::unique_lock lock(tick_mutex);
    auto resumed = std::chrono::steady_clock::now();
    while (!stopping) {
      tick_cv.wait_for(lock, std::chrono::milliseconds(std::min(options.stream_poll_ms, 1000U)));
      if (std::chrono::steady_clock::now() - resumed >= std::chrono::milliseconds(options.stream_poll_ms)) {
        resume_parked();
        resumed = std::chrono::steady_clock::now();
      }
      drop_late_connections();
    }
  }

  MHD_Result queue(MHD_Connection* connection, Response& r) {
    MHD_Response* response = nullptr;
    if (r.stream) {
      auto* state = new StreamState{this, r.stream, connection, {}, 0};
      ++live_streams;
      response =
          MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, &Impl::read_stream, state, &Impl::free_stream);
      if (!response) free_stream(state);
    } else if (r.file_fd >= 0) {
      response = MHD_create_response_from_fd(r.file_size, r.file_fd);  // takes the fd
      r.file_fd = -1;
    } else {
      // MHD sends straight from the string, which this reference keeps alive until the response is done.
      auto* body = new std::shared_ptr<const std::string>(
          r.shared_body ? std::move(r.shared_body) : std::make_shared<const std::string>(std::move(r.body)));
      response = MHD_create_response_from_buffer_with_free_callback_cls(
          (*body)->size(), const_cast<char*>((*body)->data()), &Impl::release_body, body);
      if (!response) release_body(body);
    }
    if (!response) return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type.c_str());
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    for (const auto& [k, v] : r.headers) MHD_add_response_header(response, k.c_str(), v.c_str());
    MHD_Result rc = MHD_queue_response(connection, r.status, response);
    MHD_destroy_response(response);
    return rc;
  }

  struct LengthHeaders {
    int content_length = 0;
    bool transfer_encoding = false;
  };
  static MHD_Result count_length_headers(void* cls, MHD_ValueKind, const char* key, const char*) {
    auto* h = static_cast<LengthHeaders*>(cls);
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) ++h->content_length;
    else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) h->transfer_encoding = true;
    return MHD_YES;
  }

  struct QueryBounds {
    size_t count = 0, max_count = 0, max_bytes = 0;
    bool exceeded = false;
  };
  static MHD_Result check_query(void* cls, MHD_ValueKind, const char* key, const char* value) {
    auto* q = static_cast<QueryBounds*>(cls);
    if (++q->count > q->max_count || std::strlen(key) > q->max_bytes || (value && std::strlen(value) > q->max_bytes))
      q->exceeded = true;
    return MHD_YES;
  }

  // MHD calls this with the raw URI, in its read buffer, before it parses the query into the connection's
  // 32 KiB memory pool. A query of more parameters than max_query_params, or longer than max_query_bytes,
  // is cut off here, in that buffer: hundreds of parameters, or dozens of long ones, would fill the pool,
  // and MHD then neither answers nor closes. admit() answers 400.
  static void* on_uri(void* cls, const char* uri, MHD_Connection*) {
    auto* self = static_cast<Impl*>(cls);
    auto* pending = new Pending();
    if (char* query = const_cast<char*>(std::strchr(uri, '?'))) {
      const size_t bytes = std::strlen(query + 1);
      const size_t params = 1 + static_cast<size_t>(std::count(query, query + bytes + 1, '&'));
      if (params > self->options.max_query_params || bytes > self->options.max_query_bytes) {
        pending->query_too_big = true;
        query[1] = '\0';
      }
    }
    return pending;
  }

  const Route* route_for(const std::string& method, const std::string& path) const {
    std::vector<std::string> params;
    for (const auto& route : routes)
      if (route.method == method && match(route, path, params)) return &route;
    return nullptr;
  }

  // The request line and headers have arrived, no body yet. Returns a response to send at once (the body
  // then is never read, and MHD closes the connection after it), or nothing to go on reading.
  std::optional<Response> admit(MHD_Connection* connection, const char* url, const char* method, Pending& pending) {
    // A body whose length is ambiguous (Content-Length twice, or with Transfer-Encoding) is refused: a proxy
    // in front may have cut it elsewhere (request smuggling).
    LengthHeaders lengths;
    MHD_get_connection_values(connection, MHD_HEADER_KIND, &Impl::count_length_headers, &lengths);
    if (lengths.content_length > 1 || (lengths.content_length > 0 && lengths.transfer_encoding))
      return Response::error(400, "ambiguous body length: Content-Length twice, or with Transfer-Encoding");
    QueryBounds query{0, options.max_query_params, options.max_query_value_bytes, false};
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, &Impl::check_query, &query);
    if (query.exceeded || pending.query_too_big) {
      ++counters.bad_query;
      return Response::error(
          400, "more than " + std::to_string(options.max_query_params) + " query parameters, one longer than " +
                   std::to_string(options.max_query_value_bytes) + " bytes, or a query longer than " +
                   std::to_string(options.max_query_bytes) + " bytes");
    }
    unsigned long long declared = 0;
    if (const char* length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
      declared = std::strtoull(length, nullptr, 10);
      if (declared > options.max_body_bytes) {
        if (options.on_body_too_large) options.on_body_too_large(url);
        return Response::error(413, "request body larger than " + std::to_string(options.max_body_bytes) + " bytes");
      }
    }
    pending.route = route_for(method, url);
    if (pending.route && pending.route->admit) {
      Request head;
      fill_request(connection, url, method, head);
      Admission a;
      try {
        a = pending.route->admit(head);
      } catch (const std::exception& e) {
        a.refusal = Response::error(500, std::string("internal error: ") + e.what());
      }
      if (a.refusal) {
        ++counters.admission_refused;
        return std::move(a.refusal);
      }
      pending.admission = std::move(a.context);
    }
    // A declared length is reserved against max_inflight_bytes at once (and the string reserved, so a big
    // ingest body is not copied again each time it grows); a body without one is counted as it arrives.
    if (declared > 0) {
      if (!reserve(pending, static_cast<size_t>(declared))) return busy_response();
      pending.body.reserve(static_cast<size_t>(declared));
    }
    return std::nullopt;
  }

  bool reserve(Pending& pending, size_t bytes) {
    size_t now = inflight_bytes.load();
    do {
      if (now + bytes > options.max_inflight_bytes) {
        ++counters.busy;
        return false;
      }
    } while (!inflight_bytes.compare_exchange_weak(now, now + bytes));
    pending.reserved += bytes;
    return true;
  }
  Response busy_response() const {
    Response r = Response::error(503, "busy: request bodies in flight at max_inflight_bytes (" +
                                          std::to_string(options.max_inflight_bytes) + "); try again");
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }

  void fill_request(MHD_Connection* connection, const char* url, const char* method, Request& req) const {
    req.method = method;
    req.path = url;
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, &Impl::collect, &req.query);
    MHD_get_connection_values(connection, MHD_HEADER_KIND, &Impl::collect_header, &req.headers);
    if (const MHD_ConnectionInfo* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS)) {
      char text[INET6_ADDRSTRLEN] = {};
      const sockaddr* sa = info->client_addr;
      if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, text, sizeof text);
      else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, text, sizeof text);
      req.peer = text;
    }
  }

  static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url, const char* method,
                               const char* /*version*/, const char* upload_data, size_t* upload_size, void** req_cls) {
    auto* self = static_cast<Impl*>(cls);
    auto* pending = static_cast<Pending*>(*req_cls);   // made by on_uri
    if (!pending) *req_cls = pending = new Pending();  // not through on_uri: no query was measured raw
    if (!pending->headers_seen) {
      // First call: headers only. Never answer a request that was admitted before its body has arrived.
      pending->headers_seen = true;
      if (std::optional<Response> refusal = self->admit(connection, url, method, *pending)) {
        self->enter(connection, Phase::Answering);
        return self->queue(connection, *refusal);
      }
      self->enter(connection, Phase::Body);
      return MHD_YES;
    }
    if (*upload_size > 0) {
      if (pending->body.size() + *upload_size > self->options.max_body_bytes) {
        pending->too_large = true;
      } else if (!pending->busy) {
        const size_t after = pending->body.size() + *upload_size;
        if (after > pending->reserved && !self->reserve(*pending, after - pending->reserved)) pending->busy = true;
        else pending->body.append(upload_data, *upload_size);
      }
      *upload_size = 0;
      return MHD_YES;
    }
    self->enter(connection, Phase::Answering);
    if (pending->too_large) {
      if (self->options.on_body_too_large) self->options.on_body_too_large(url);
      Response r =
          Response::error(413, "request body larger than " + std::to_string(self->options.max_body_bytes) + " bytes");
      return self->queue(connection, r);
    }
    if (pending->busy) {
      Response r = self->busy_response();
      return self->queue(connection, r);
    }
    Request req;
    self->fill_request(connection, url, method, req);
    req.body = std::move(pending->body);
    req.admission = std::move(pending->admission);
    Response r = self->dispatch(req, pending->route);
    MHD_Result rc = self->queue(connection, r);
    if (r.file_fd >= 0) ::close(r.file_fd);
    return rc;
  }

  static void on_completed(void* cls, MHD_Connection* connection, void** req_cls, MHD_RequestTerminationCode) {
    auto* self = static_cast<Impl*>(cls);
    if (auto* pending = static_cast<Pending*>(*req_cls)) {
      self->inflight_bytes -= pending->reserved;
      delete pending;
    }
    *req_cls = nullptr;
    self->enter(connection, Phase::Headers);  // a kept-alive connection waits for its next request
  }
};

HttpServer::HttpServer(ServerOptions options, std::vector<Route> routes) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->routes = std::move(routes);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(impl_->options.port);
  if (inet_pton(AF_INET, impl_->options.bind_address.c_str(), &addr.sin_addr) != 1)
    throw std::runtime_error("bind address '" + impl_->options.bind_address + "' is not an IPv4 address");
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
  // TLS through libmicrohttpd's GnuTLS; the PEM strings stay in options for the daemon's lifetime.
  const bool tls = !impl_->options.tls_cert_pem.empty() || !impl_->options.tls_key_pem.empty();
  std::vector<MHD_OptionItem> tls_options;
  if (tls) {
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
      throw std::runtime_error("this libmicrohttpd was built without TLS; HTTPS cannot be served");
    flags |= MHD_USE_TLS;
    tls_options = {{MHD_OPTION_HTTPS_MEM_CERT, 0, const_cast<char*>(impl_->options.tls_cert_pem.c_str())},
                   {MHD_OPTION_HTTPS_MEM_KEY, 0, const_cast<char*>(impl_->options.tls_key_pem.c_str())},
                   {MHD_OPTION_HTTPS_PRIORITIES, 0, const_cast<char*>(kTlsPriorities)}};
  }
  tls_options.push_back({MHD_OPTION_END, 0, nullptr});
  impl_->daemon = MHD_start_daemon(
      flags, impl_->options.port, nullptr, nullptr, &Impl::on_request, impl_.get(), MHD_OPTION_SOCK_ADDR,
      reinterpret_cast<const sockaddr*>(&addr), MHD_OPTION_THREAD_POOL_SIZE,
      static_cast<unsigned>(std::max(1U, impl_->options.threads)), MHD_OPTION_CONNECTION_TIMEOUT,
      impl_->options.connection_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, &Impl::on_completed, impl_.get(),
      MHD_OPTION_NOTIFY_CONNECTION, &Impl::on_connection, impl_.get(), MHD_OPTION_CONNECTION_LIMIT,
      std::max(1U, impl_->options.max_connections), MHD_OPTION_PER_IP_CONNECTION_LIMIT,
      std::max(1U, impl_->options.max_connections_per_ip),
      // MHD's default pool. A larger one is mmap'ed, zeroed and unmapped for every connection, which made
      // refusing an anonymous request cost 0.5 ms of CPU (bench abuse); on_uri keeps long queries out of it.
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<size_t>(32 << 10), MHD_OPTION_URI_LOG_CALLBACK, &Impl::on_uri,
      impl_.get(), MHD_OPTION_EXTERNAL_LOGGER, &log_mhd, nullptr, MHD_OPTION_ARRAY, tls_options.data(), MHD_OPTION_END);
  if (!impl_->daemon)
    throw std::runtime_error("cannot listen on " + impl_->options.bind_address + ":" +
                             std::to_string(impl_->options.port) +
                             (tls ? " with TLS (in use, no permission, or a certificate or key GnuTLS refuses)"
                                  : " (in use, or no permission)"));
  impl_->ticker = std::thread([impl = impl_.get()] { impl->tick_loop(); });
}

HttpServer::~HttpServer() {
  if (!impl_ || !impl_->daemon) return;
  {
    std::lock_guard lock(impl_->tick_mutex);
    impl_->stopping = true;
  }
  impl_->tick_cv.notify_all();
  impl_->ticker.join();
  // MHD must not be stopped with suspended connections: wake every parked stream so it ends, and give
  // them a moment to finish.
  impl_->resume_parked();
  for (int i = 0; i < 200 && impl_->live_streams > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    impl_->resume_parked();
  }
  MHD_stop_daemon(impl_->daemon);
}

size_t HttpServer::open_streams() const { return impl_->live_streams; }
const ServerCounters& HttpServer::counters() const { return impl_->counters; }

uint16_t HttpServer::port() const {
  const MHD_DaemonInfo* info = MHD_get_daemon_info(impl_->daemon, MHD_DAEMON_INFO_BIND_PORT);
  return info ? info->port : 0;
}

}  // namespace bc::web
