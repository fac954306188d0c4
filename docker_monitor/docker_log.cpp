#include "docker_monitor/docker_log.hpp"

#include <unistd.h>

#include <cstdio>
#include <ctime>

namespace bc::docker {

void log_to_stderr(Level level, const std::string& text) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm t{};
  gmtime_r(&now.tv_sec, &t);
  char when[40];
  const size_t n = std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &t);
  std::snprintf(when + n, sizeof when - n, ".%03ldZ", now.tv_nsec / 1000000L);
  const char* kind = level == Level::Error ? "error: " : level == Level::Warning ? "warning: " : "";
  std::fprintf(stderr, "%s bc-docker[%d]: %s%s\n", when, static_cast<int>(getpid()), kind, text.c_str());
  std::fflush(stderr);
}

}  // namespace bc::docker
