// HTTP to the Docker Engine API over its unix socket, with libcurl. Two parts: DockerClient for short
// requests (list, inspect), EventStream for the long-lived GET /events. Single-threaded, no callbacks into
// the caller from inside libcurl: the stream hands back whole lines.
#pragma once

#include <string>
#include <vector>

#include "common/curl.hpp"

typedef void CURL;
typedef void CURLM;

namespace bc::docker {

struct HttpResult {
  bool transport_ok = false;  // an HTTP response arrived
  long status = 0;            // HTTP status when transport_ok
  std::string body;
  std::string error;  // libcurl's text when !transport_ok
  int os_errno = 0;   // errno of a failed connect, when libcurl knows it
  bool ok() const { return transport_ok && status >= 200 && status < 300; }
};

// Calls curl_global_init once; call before any other thread exists.
void http_global_init();

class DockerClient {
 public:
  explicit DockerClient(std::string socket_path);
  ~DockerClient();
  DockerClient(const DockerClient&) = delete;
  DockerClient& operator=(const DockerClient&) = delete;

  // GET path (e.g. "/containers/json"); never throws for transport or HTTP errors.
  HttpResult get(const std::string& path, long timeout_ms = 10000);
  const std::string& socket_path() const { return socket_path_; }

 private:
  std::string socket_path_;
  curl::Easy easy_;
};

// Why the API could not be reached, in words for an operator: a missing socket, a permission problem,
// nobody listening, or something else on the socket.
std::string describe_connect_error(const HttpResult& result, const std::string& socket_path);

class EventStream {
 public:
  explicit EventStream(std::string socket_path);
  ~EventStream();
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  void open(const std::string& path);  // GET path, streamed
  void close();
  bool is_open() const { return easy_ != nullptr; }

  struct PollResult {
    bool wake_fd_ready = false;  // wake_fd became readable
    bool ended = false;          // the stream was open and has ended (error says why)
    std::string error;
    std::vector<std::string> lines;  // complete lines received, in order
  };
  // Waits at most timeout_ms for stream data or for wake_fd (e.g. a signalfd) to become readable, then moves
  // the transfer forward. Works while closed too (then it only waits on wake_fd).
  PollResult poll(int wake_fd, int timeout_ms);

 private:
  static size_t on_data(char* data, size_t size, size_t count, void* self);
  std::string socket_path_;
  curl::Multi multi_;
  curl::Easy easy_;
  std::string buffer_;
};

}  // namespace bc::docker
