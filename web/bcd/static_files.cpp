// static_files (http_server.hpp): files below a root, never outside it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>

#include "web/bcd/http_server.hpp"

namespace bc::web {

namespace {

std::string content_type_for(const std::string& path) {
  static const std::pair<const char*, const char*> types[] = {{".html", "text/html; charset=utf-8"},
                                                              {".js", "text/javascript; charset=utf-8"},
                                                              {".mjs", "text/javascript; charset=utf-8"},
                                                              {".css", "text/css; charset=utf-8"},
                                                              {".json", "application/json"},
                                                              {".svg", "image/svg+xml"},
                                                              {".png", "image/png"},
                                                              {".ico", "image/x-icon"},
                                                              {".txt", "text/plain; charset=utf-8"}};
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
    if (resolved->compare(0, real_root.size() + 1, real_root + "/") != 0) return Response::error(403, "forbidden path");
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
