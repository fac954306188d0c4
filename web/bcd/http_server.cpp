#include "http_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace bc::web {

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

Response Response::error(unsigned status, const std::string& message) {
  std::string escaped;
  for (char c : message) {
    if (c == '"' || c == '\\') escaped.push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) continue;
    escaped.push_back(c);
  }
  return json(status, "{\"error\": \"" + escaped + "\"}\n");
}

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

  // Per-request state, owned by MHD's request-closure pointer until the completion callback.
  struct Pending {
    std::string body;
    bool too_large = false;
  };

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

  Response dispatch(Request& req) const {
    bool path_matched = false;
    for (const auto& route : routes) {
      if (!match(route, req.path, req.params)) continue;
      path_matched = true;
      if (route.method != req.method) continue;
      try {
        return route.handler(req);
      } catch (const std::exception& e) {
        return Response::error(500, std::string("internal error: ") + e.what());
      }
    }
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
    std::unique_lock lock(tick_mutex);
    while (!stopping) {
      tick_cv.wait_for(lock, std::chrono::milliseconds(options.stream_poll_ms));
      resume_parked();
    }
  }

  MHD_Result queue(MHD_Connection* connection, Response& r) {
    MHD_Response* response = nullptr;
    if (r.stream) {
      auto* state = new StreamState{this, r.stream, connection, {}, 0};
      ++live_streams;
      response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, &Impl::read_stream, state,
                                                   &Impl::free_stream);
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

  static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url, const char* method,
                               const char* /*version*/, const char* upload_data, size_t* upload_size,
                               void** req_cls) {
    auto* self = static_cast<Impl*>(cls);
    auto* pending = static_cast<Pending*>(*req_cls);
    if (!pending) {
      // First call: headers only. A body whose length is ambiguous (Content-Length twice, or with
      // Transfer-Encoding) is refused at once, before any of it is read: a proxy in front may have cut it
      // elsewhere (request smuggling), and the connection is closed after the answer.
      LengthHeaders lengths;
      MHD_get_connection_values(connection, MHD_HEADER_KIND, &Impl::count_length_headers, &lengths);
      if (lengths.content_length > 1 || (lengths.content_length > 0 && lengths.transfer_encoding)) {
        Response r = Response::error(400, "ambiguous body length: Content-Length twice, or with Transfer-Encoding");
        return self->queue(connection, r);
      }
      // Otherwise never answer before the body has arrived. A declared length within the limit is reserved at
      // once, so a big ingest body is not copied again each time the string grows.
      pending = new Pending();
      *req_cls = pending;
      if (const char* length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        const unsigned long long n = std::strtoull(length, nullptr, 10);
        if (n > 0 && n <= self->options.max_body_bytes) pending->body.reserve(static_cast<size_t>(n));
      }
      return MHD_YES;
    }
    if (*upload_size > 0) {
      if (pending->body.size() + *upload_size > self->options.max_body_bytes) pending->too_large = true;
      else pending->body.append(upload_data, *upload_size);
      *upload_size = 0;
      return MHD_YES;
    }
    if (pending->too_large) {
      if (self->options.on_body_too_large) self->options.on_body_too_large(url);
      Response r = Response::error(413, "request body larger than " + std::to_string(self->options.max_body_bytes) +
                                            " bytes");
      return self->queue(connection, r);
    }
    Request req;
    req.method = method;
    req.path = url;
    req.body = std::move(pending->body);
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
    Response r = self->dispatch(req);
    MHD_Result rc = self->queue(connection, r);
    if (r.file_fd >= 0) ::close(r.file_fd);
    return rc;
  }

  static void on_completed(void* /*cls*/, MHD_Connection*, void** req_cls, MHD_RequestTerminationCode) {
    delete static_cast<Pending*>(*req_cls);
    *req_cls = nullptr;
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
  impl_->daemon = MHD_start_daemon(
      flags, impl_->options.port, nullptr, nullptr, &Impl::on_request, impl_.get(), MHD_OPTION_SOCK_ADDR,
      reinterpret_cast<const sockaddr*>(&addr), MHD_OPTION_THREAD_POOL_SIZE,
      static_cast<unsigned>(std::max(1U, impl_->options.threads)), MHD_OPTION_CONNECTION_TIMEOUT,
      impl_->options.connection_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, &Impl::on_completed, nullptr,
      MHD_OPTION_END);
  if (!impl_->daemon)
    throw std::runtime_error("cannot listen on " + impl_->options.bind_address + ":" +
                             std::to_string(impl_->options.port) + " (in use, or no permission)");
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

uint16_t HttpServer::port() const {
  const MHD_DaemonInfo* info = MHD_get_daemon_info(impl_->daemon, MHD_DAEMON_INFO_BIND_PORT);
  return info ? info->port : 0;
}

namespace {

std::string content_type_for(const std::string& path) {
  static const std::pair<const char*, const char*> types[] = {
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
      {".json", "application/json"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
      {".ico", "image/x-icon"}, {".txt", "text/plain; charset=utf-8"}};
  for (auto [ext, type] : types) {
    size_t n = std::strlen(ext);
    if (path.size() >= n && path.compare(path.size() - n, n, ext) == 0) return type;
  }
  return "application/octet-stream";
}

std::optional<std::string> real_path(const std::string& path) {
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf)) return std::nullopt;
  return std::string(buf);
}

}  // namespace

Handler static_files(const std::string& root, const std::string& url_prefix) {
  const std::string real_root = real_path(root).value_or(root);
  return [real_root, url_prefix](const Request& req) -> Response {
    if (req.path.compare(0, url_prefix.size(), url_prefix) != 0) return Response::error(404, "not found");
    std::string rel = req.path.substr(url_prefix.size());
    // MHD has already percent-decoded the path, so "%2e%2e" arrives here as "..".
    if (rel.empty() || rel[0] == '/' || rel.find('\0') != std::string::npos)
      return Response::error(403, "forbidden path");
    size_t start = 0;
    while (start <= rel.size()) {
      size_t end = rel.find('/', start);
      if (end == std::string::npos) end = rel.size();
      std::string segment = rel.substr(start, end - start);
      if (segment == ".." || segment == ".") return Response::error(403, "forbidden path");
      start = end + 1;
    }
    auto resolved = real_path(real_root + "/" + rel);
    if (!resolved) return Response::error(404, "not found: " + req.path);
    if (resolved->compare(0, real_root.size() + 1, real_root + "/") != 0)
      return Response::error(403, "forbidden path");
    int fd = ::open(resolved->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Response::error(404, "not found: " + req.path);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return Response::error(404, "not found: " + req.path);
    }
    Response r;
    r.content_type = content_type_for(*resolved);
    r.file_fd = fd;
    r.file_size = static_cast<uint64_t>(st.st_size);
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
  };
}

}  // namespace bc::web
