#include "docker_monitor/container_log.hpp"

#include "common/fd.hpp"
#include "common/json.hpp"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <stdexcept>

namespace bc::docker {
namespace {

using JsonPtr = json::Ptr;

using json::add;
using json::checked;

std::string iso_ns(int64_t ns) {
  const time_t secs = static_cast<time_t>(ns / 1000000000LL);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[64];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  std::snprintf(buf + n, sizeof buf - n, ".%09lldZ", static_cast<long long>(ns % 1000000000LL));
  return buf;
}

cJSON* time_or_null(int64_t ns) { return ns > 0 ? cJSON_CreateString(iso_ns(ns).c_str()) : cJSON_CreateNull(); }

std::string str(const cJSON* object, const char* name) {
  const cJSON* item = cJSON_GetObjectItemCaseSensitive(object, name);
  return cJSON_IsString(item) && item->valuestring ? item->valuestring : "";
}

int64_t i64_from_string(const std::string& text) {
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  return text.empty() || *end ? 0 : static_cast<int64_t>(v);
}

}  // namespace

std::optional<double> ContainerRecord::duration_s() const {
  if (start_ns <= 0 || end_ns <= 0) return std::nullopt;
  return end_ns > start_ns ? static_cast<double>(end_ns - start_ns) / 1e9 : 0.0;
}

std::string record_to_json(const ContainerRecord& r, int64_t recorded_ns) {
  JsonPtr root(checked(cJSON_CreateObject()));
  cJSON* o = root.get();
  add(o, "id", cJSON_CreateString(r.id.c_str()));
  add(o, "short_id", cJSON_CreateString(r.short_id.c_str()));
  add(o, "key", cJSON_CreateString(std::to_string(r.key).c_str()));
  add(o, "node", cJSON_CreateString(r.node.c_str()));
  add(o, "name", cJSON_CreateString(r.name.c_str()));
  add(o, "image", cJSON_CreateString(r.image.c_str()));
  cJSON* command = checked(cJSON_CreateArray());
  add(o, "command", command);
  for (const auto& a : r.command) json::append(command, cJSON_CreateString(a.c_str()));
  add(o, "state", cJSON_CreateString(r.running ? "running" : "exited"));
  add(o, "start", time_or_null(r.start_ns));
  add(o, "end", time_or_null(r.end_ns));
  add(o, "start_ns", cJSON_CreateString(std::to_string(r.start_ns).c_str()));
  add(o, "end_ns", cJSON_CreateString(std::to_string(r.end_ns).c_str()));
  auto duration = r.duration_s();
  add(o, "duration_s", duration ? cJSON_CreateNumber(*duration) : cJSON_CreateNull());
  add(o, "times",
      cJSON_CreateString(r.start_from_docker && (r.end_from_docker || r.end_ns == 0) ? "docker" : "events"));
  add(o, "exit_code", r.exit_code ? cJSON_CreateNumber(*r.exit_code) : cJSON_CreateNull());
  add(o, "monitored", cJSON_CreateBool(r.monitored));
  add(o, "reason", cJSON_CreateString(r.reason.c_str()));
  add(o, "cgroup_version", cJSON_CreateNumber(r.cgroup_version));
  add(o, "cgroup_path", cJSON_CreateString(r.cgroup_path.c_str()));
  add(o, "init_pid", cJSON_CreateNumber(r.init_pid));
  add(o, "uid", r.uid ? cJSON_CreateNumber(*r.uid) : cJSON_CreateNull());
  add(o, "recorded", cJSON_CreateString(iso_ns(recorded_ns).c_str()));
  std::unique_ptr<char, decltype(&cJSON_free)> text(cJSON_PrintUnformatted(o), &cJSON_free);
  if (!text) throw std::bad_alloc();
  return text.get();
}

std::optional<ContainerRecord> record_from_json(const std::string& line) {
  JsonPtr root(cJSON_ParseWithLength(line.data(), line.size()));
  if (!root || !cJSON_IsObject(root.get())) return std::nullopt;
  const cJSON* o = root.get();
  ContainerRecord r;
  r.id = str(o, "id");
  if (r.id.empty()) return std::nullopt;
  r.short_id = str(o, "short_id");
  const std::string key = str(o, "key");
  r.key = key.empty() ? 0 : std::strtoull(key.c_str(), nullptr, 10);
  r.node = str(o, "node");
  r.name = str(o, "name");
  r.image = str(o, "image");
  const cJSON* command = cJSON_GetObjectItemCaseSensitive(o, "command");
  if (cJSON_IsArray(command))
    for (const cJSON* a = command->child; a; a = a->next)
      if (cJSON_IsString(a)) r.command.emplace_back(a->valuestring);
  r.running = str(o, "state") == "running";
  r.start_ns = i64_from_string(str(o, "start_ns"));
  r.end_ns = i64_from_string(str(o, "end_ns"));
  r.start_from_docker = r.end_from_docker = str(o, "times") == "docker";
  const cJSON* exit_code = cJSON_GetObjectItemCaseSensitive(o, "exit_code");
  if (cJSON_IsNumber(exit_code)) r.exit_code = static_cast<int>(exit_code->valuedouble);
  r.monitored = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "monitored"));
  r.reason = str(o, "reason");
  const cJSON* version = cJSON_GetObjectItemCaseSensitive(o, "cgroup_version");
  if (cJSON_IsNumber(version)) r.cgroup_version = static_cast<int>(version->valuedouble);
  r.cgroup_path = str(o, "cgroup_path");
  const cJSON* pid = cJSON_GetObjectItemCaseSensitive(o, "init_pid");
  if (cJSON_IsNumber(pid)) r.init_pid = static_cast<int>(pid->valuedouble);
  const cJSON* uid = cJSON_GetObjectItemCaseSensitive(o, "uid");
  if (cJSON_IsNumber(uid)) r.uid = static_cast<uint32_t>(uid->valuedouble);
  return r;
}

ContainerLog::ContainerLog(std::string path) : path_(std::move(path)) {
  const size_t slash = path_.rfind('/');
  if (slash != std::string::npos && slash > 0 && !bc::make_directories(path_.substr(0, slash), 0755))
    throw std::runtime_error("cannot create directory for " + path_ + ": " + std::strerror(errno));
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open container log " + path_ + ": " + std::strerror(errno));
  ::close(fd);
}

void ContainerLog::write(const ContainerRecord& record) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  const std::string line = record_to_json(record, static_cast<int64_t>(now.tv_sec) * 1000000000LL + now.tv_nsec) + "\n";
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open container log " + path_ + ": " + std::strerror(errno));
  const ssize_t n = ::write(fd, line.data(), line.size());
  const int write_errno = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(line.size()))
    throw std::runtime_error("cannot write container log " + path_ + ": " +
                             (n < 0 ? std::strerror(write_errno) : "short write"));
}

std::vector<ContainerRecord> ContainerLog::load_all() const {
  std::vector<ContainerRecord> out;
  std::ifstream in(path_);
  std::string line;
  while (std::getline(in, line))
    if (auto r = record_from_json(line)) out.push_back(std::move(*r));
  return out;
}

std::map<std::string, ContainerRecord> ContainerLog::load_running() const {
  std::map<std::string, ContainerRecord> last;
  for (auto& r : load_all()) last[r.id] = std::move(r);
  std::map<std::string, ContainerRecord> running;
  for (auto& [id, r] : last)
    if (r.running) running.emplace(id, std::move(r));
  return running;
}

}  // namespace bc::docker
