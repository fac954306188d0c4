#include "docker_monitor/docker_client.hpp"

#include <curl/curl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace bc::docker {
namespace {

constexpr size_t kMaxBody = 64u << 20;  // a list of many thousand containers fits
constexpr size_t kMaxLine = 1u << 20;   // one event

struct Body {
  std::string text;
  bool too_big = false;
};

size_t append_body(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<Body*>(user);
  const size_t n = size * count;
  if (body->text.size() + n > kMaxBody) {
    body->too_big = true;
    return 0;  // aborts the transfer
  }
  body->text.append(data, n);
  return n;
}

void common_options(CURL* easy, const std::string& socket_path) {
  curl_easy_setopt(easy, CURLOPT_UNIX_SOCKET_PATH, socket_path.c_str());
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "bc-docker");
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http");
}

std::string url_for(const std::string& path) { return "http://localhost" + path; }

}  // namespace

void http_global_init() {
  if (!curl::global_init()) throw std::runtime_error("curl_global_init failed");
}

DockerClient::DockerClient(std::string socket_path) : socket_path_(std::move(socket_path)) {
  http_global_init();
  easy_.reset(curl_easy_init());
  if (!easy_) throw std::runtime_error("curl_easy_init failed");
}

DockerClient::~DockerClient() = default;

HttpResult DockerClient::get(const std::string& path, long timeout_ms) {
  HttpResult result;
  Body body;
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_reset(easy_.get());
  common_options(easy_.get(), socket_path_);
  const std::string url = url_for(path);
  curl_easy_setopt(easy_.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy_.get(), CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(easy_.get(), CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(easy_.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(easy_.get(), CURLOPT_ERRORBUFFER, error);
  const CURLcode rc = curl_easy_perform(easy_.get());
  curl_easy_setopt(easy_.get(), CURLOPT_ERRORBUFFER, nullptr);
  if (rc != CURLE_OK) {
    long os_errno = 0;
    curl_easy_getinfo(easy_.get(), CURLINFO_OS_ERRNO, &os_errno);
    result.os_errno = static_cast<int>(os_errno);
    result.error = body.too_big ? "response larger than " + std::to_string(kMaxBody >> 20) + " MiB"
                                : (error[0] ? std::string(error) : std::string(curl_easy_strerror(rc)));
    return result;
  }
  result.transport_ok = true;
  curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &result.status);
  result.body = std::move(body.text);
  return result;
}

std::string describe_connect_error(const HttpResult& result, const std::string& socket_path) {
  struct stat st {};
  int err = result.os_errno;
  if (::stat(socket_path.c_str(), &st) != 0) err = errno;
  else if (!S_ISSOCK(st.st_mode)) return "Docker socket " + socket_path + " is not a socket";
  switch (err) {
    case ENOENT:
      return "Docker socket " + socket_path + " does not exist (is dockerd running? set socket= to its path)";
    case EACCES:
    case EPERM:
      return "permission denied on Docker socket " + socket_path +
             " (bc-docker must run as root or as a member of the socket's group, usually 'docker')";
    case ECONNREFUSED:
      return "nobody is listening on Docker socket " + socket_path + " (dockerd is stopped or restarting)";
    default: break;
  }
  if (result.transport_ok)
    return "unexpected HTTP status " + std::to_string(result.status) + " from " + socket_path +
           " (is it the Docker Engine API?)";
  return "cannot reach the Docker API on " + socket_path + ": " + result.error +
         (err ? std::string(" (") + std::strerror(err) + ")" : std::string());
}

EventStream::EventStream(std::string socket_path) : socket_path_(std::move(socket_path)) {
  http_global_init();
  multi_.reset(curl_multi_init());
  if (!multi_) throw std::runtime_error("curl_multi_init failed");
}

EventStream::~EventStream() { close(); }

size_t EventStream::on_data(char* data, size_t size, size_t count, void* user) {
  auto* self = static_cast<EventStream*>(user);
  const size_t n = size * count;
  self->buffer_.append(data, n);
  return n;
}

void EventStream::open(const std::string& path) {
  close();
  easy_.reset(curl_easy_init());
  if (!easy_) throw std::runtime_error("curl_easy_init failed");
  common_options(easy_.get(), socket_path_);
  const std::string url = url_for(path);
  curl_easy_setopt(easy_.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy_.get(), CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(easy_.get(), CURLOPT_WRITEDATA, this);
  curl_easy_setopt(easy_.get(), CURLOPT_FAILONERROR, 1L);
  buffer_.clear();
  curl_multi_add_handle(multi_.get(), easy_.get());
}

void EventStream::close() {
  if (!easy_) return;
  curl_multi_remove_handle(multi_.get(), easy_.get());
  easy_.reset();
  buffer_.clear();
}

EventStream::PollResult EventStream::poll(int wake_fd, int timeout_ms) {
  PollResult out;
  curl_waitfd extra{};
  extra.fd = wake_fd;
  extra.events = CURL_WAIT_POLLIN;
  int numfds = 0;
  if (easy_) {
    curl_multi_poll(multi_.get(), wake_fd >= 0 ? &extra : nullptr, wake_fd >= 0 ? 1u : 0u, timeout_ms, &numfds);
  } else {
    pollfd p{wake_fd, POLLIN, 0};
    if (wake_fd >= 0) {
      ::poll(&p, 1, timeout_ms);
      extra.revents = (p.revents & POLLIN) ? CURL_WAIT_POLLIN : 0;
    } else {
      ::usleep(static_cast<useconds_t>(timeout_ms) * 1000);
    }
  }
  out.wake_fd_ready = wake_fd >= 0 && (extra.revents & CURL_WAIT_POLLIN) != 0;
  if (!easy_) return out;

  int running = 0;
  curl_multi_perform(multi_.get(), &running);
  // Whole lines only; a partial line waits for the rest.
  size_t start = 0;
  for (size_t nl = buffer_.find('\n'); nl != std::string::npos; nl = buffer_.find('\n', start)) {
    if (nl > start) out.lines.emplace_back(buffer_, start, nl - start);
    start = nl + 1;
  }
  buffer_.erase(0, start);
  if (buffer_.size() > kMaxLine) {
    buffer_.clear();  // not the event stream we know; drop rather than grow
    out.error = "an event line longer than 1 MiB was dropped";
  }
  int queued = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &queued)) {
    if (msg->msg != CURLMSG_DONE || msg->easy_handle != easy_.get()) continue;
    out.ended = true;
    const CURLcode rc = msg->data.result;
    long status = 0;
    curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK) out.error = "the daemon closed the event stream";
    else if (rc == CURLE_HTTP_RETURNED_ERROR)
      out.error = "the event stream was refused with HTTP " + std::to_string(status);
    else out.error = curl_easy_strerror(rc);
  }
  if (out.ended) close();
  return out;
}

}  // namespace bc::docker
