// bcd's static file handler (web/bcd/http_server.cpp, static_files) on request paths, as libmicrohttpd hands
// them over (percent-decoded, so any byte but NUL can arrive). The root holds a page, a file in a
// subdirectory, a symlink inside the root, and symlinks that lead out of it (to a directory and to a file).
// Whatever the path, a file that is served must be one of the regular files below the root.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#include "web/bcd/http_server.hpp"

namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "%s\n", what.c_str());
  std::abort();
}

struct Site {
  fs::path root;
  fs::path outside;  // a sibling of the root that no request may reach
  std::set<std::pair<dev_t, ino_t>> servable;
  bc::web::Handler handler;

  Site() {
    char pattern[] = "/tmp/bc-fuzz-static-XXXXXX";
    if (!mkdtemp(pattern)) fail("cannot make a temporary directory");
    const fs::path base = pattern;
    root = base / "static";
    outside = base / "secret";
    fs::create_directories(root / "sub");
    fs::create_directories(outside);
    std::ofstream(root / "index.html") << "<!doctype html><title>bc</title>\n";
    std::ofstream(root / "sub" / "app.js") << "console.log('bc');\n";
    std::ofstream(outside / "key") << "not for the web\n";
    fs::create_symlink("index.html", root / "home.html");   // inside: fine to serve
    fs::create_symlink(outside, root / "out");              // a directory outside
    fs::create_symlink(outside / "key", root / "key.txt");  // a file outside
    fs::create_symlink("/etc/passwd", root / "passwd");     // a system file
    for (const fs::path& p : {root / "index.html", root / "sub" / "app.js"}) {
      struct stat st {};
      if (::stat(p.c_str(), &st) != 0) fail("cannot stat " + p.string());
      servable.emplace(st.st_dev, st.st_ino);
    }
    handler = bc::web::static_files(root.string(), "/static/");
  }
  ~Site() { fs::remove_all(root.parent_path()); }
};

Site* g_site = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_site = new Site();
  std::atexit([] { delete g_site; });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bc::web::Request req;
  req.method = "GET";
  req.path.assign(reinterpret_cast<const char*>(data), size);
  bc::web::Response r = g_site->handler(req);
  if (r.file_fd < 0) {
    if (r.status == 200) fail("a 200 without a file for '" + req.path + "'");
    return 0;
  }
  struct stat st {};
  const bool stat_ok = ::fstat(r.file_fd, &st) == 0;
  ::close(r.file_fd);
  if (!stat_ok) fail("the served fd cannot be stat'ed");
  if (!g_site->servable.count({st.st_dev, st.st_ino}))
    fail("'" + req.path + "' served a file that is not below the root");
  if (r.file_size != static_cast<uint64_t>(st.st_size)) fail("the served size is not the file's");
  return 0;
}
