// A shared library opened at run time (dlopen), closed once, and its functions looked up by name.
#pragma once

#include <dlfcn.h>

#include <cstring>
#include <string>
#include <utility>

namespace bc {

class SharedLibrary {
 public:
  SharedLibrary() = default;
  // `path` with a slash is that file; a bare name is searched as the dynamic linker does. Empty when it cannot
  // be loaded, with dlerror()'s text in `error`.
  static SharedLibrary open(const std::string& path, std::string& error) {
    SharedLibrary lib;
    lib.handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib.handle_) {
      const char* why = ::dlerror();
      error = why ? why : ("cannot load " + path);
    }
    return lib;
  }
  SharedLibrary(SharedLibrary&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
  SharedLibrary& operator=(SharedLibrary&& o) noexcept {
    if (this != &o) {
      close();
      handle_ = std::exchange(o.handle_, nullptr);
    }
    return *this;
  }
  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;
  ~SharedLibrary() { close(); }

  explicit operator bool() const { return handle_ != nullptr; }
  // The function `name` as type F (a function pointer type), or null when the library has none.
  template <typename F>
  F function(const char* name) const {
    void* address = handle_ ? ::dlsym(handle_, name) : nullptr;
    F f = nullptr;
    static_assert(sizeof f == sizeof address);
    std::memcpy(&f, &address, sizeof f);  // POSIX guarantees the conversion; the cast itself is not ISO C++
    return f;
  }

 private:
  void close() {
    if (handle_) ::dlclose(handle_);
    handle_ = nullptr;
  }
  void* handle_ = nullptr;
};

}  // namespace bc
