#include "cgroup_monitor/bpf/aggregates.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>
#include <map>
#include <tuple>

namespace bc::events {

const std::string* NameTable::find(uint64_t hash) {
  if (auto it = cur_.find(hash); it != cur_.end()) return &it->second;
  if (auto it = prev_.find(hash); it != prev_.end()) {
    auto& moved = cur_[hash] = std::move(it->second);
    prev_.erase(it);
    return &moved;
  }
  return nullptr;
}

void NameTable::age() {
  if (cur_.size() < kNamesPerGeneration) return;
  prev_ = std::move(cur_);
  cur_ = {};
}

std::string normalize_path(const std::string& in) {
  if (in.empty()) return in;
  // Most paths are already clean: no "//", no "." or ".." component, no trailing '/'.
  bool clean = in.size() == 1 || in.back() != '/';
  for (size_t i = 0; clean && i < in.size(); ++i) {
    if (in[i] != '/' && i != 0) continue;
    size_t j = in[i] == '/' ? i + 1 : i;
    if (j < in.size() && in[j] == '/') clean = false;
    if (j < in.size() && in[j] == '.' &&
        (j + 1 == in.size() || in[j + 1] == '/' || (in[j + 1] == '.' && (j + 2 == in.size() || in[j + 2] == '/'))))
      clean = false;
  }
  if (clean) return in;
  bool absolute = in[0] == '/';
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= in.size()) {
    size_t j = in.find('/', i);
    if (j == std::string::npos) j = in.size();
    std::string part = in.substr(i, j - i);
    if (part.empty() || part == ".") {
    } else if (part == "..") {
      if (!parts.empty() && parts.back() != "..") parts.pop_back();
      else if (!absolute) parts.push_back(part);
    } else {
      parts.push_back(std::move(part));
    }
    i = j + 1;
  }
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty() || absolute) out += '/';
    out += p;
  }
  if (out.empty()) out = absolute ? "/" : ".";
  return out;
}

std::string connection_protocol(const bc_conn_key& key) {
  if (key.family == AF_UNIX) return "unix";
  switch (key.type) {
    case SOCK_STREAM: return "tcp";
    case SOCK_DGRAM: return "udp";
    case SOCK_RAW: return "raw";
    default: return "other";
  }
}

std::vector<FileAgg> merge_files(const FileRows& rows, NameTable& names, int64_t epoch_offset_ns) {
  std::vector<FileAgg> files;
  std::unordered_map<std::string, size_t> index;  // "<pid>/<path>" (or "<pid>#<hash>") -> files
  index.reserve(rows.size());
  std::string merge_key;
  for (const auto& [k, v] : rows) {
    const std::string* name = names.find(k.hash);
    merge_key = std::to_string(k.tgid);
    if (name) merge_key += "/" + *name;
    else merge_key += "#" + std::to_string(k.hash);  // name lost: counted when it was lost
    auto [it, fresh] = index.try_emplace(merge_key, files.size());
    if (fresh) {
      files.emplace_back();
      files.back().pid = k.tgid;
      if (name) files.back().path = *name;
    }
    FileAgg& f = files[it->second];
    f.flags |= v.flags;
    const uint64_t first =
        v.opens + v.failed ? static_cast<uint64_t>(static_cast<int64_t>(v.first_ns) + epoch_offset_ns) : 0;
    if (first && (f.first_ns == 0 || first < f.first_ns)) f.first_ns = first;
    f.opens += v.opens;
    f.failed += v.failed;
    f.read_bytes += v.read_bytes;
    f.write_bytes += v.write_bytes;
  }
  return files;
}

std::vector<ConnAgg> merge_connections(const ConnectionRows& rows, NameTable& unix_names) {
  std::map<std::tuple<uint32_t, std::string, uint16_t, std::string>, ConnAgg> merged;
  for (const auto& [k, v] : rows) {
    std::string address;
    if (k.family == AF_INET || k.family == AF_INET6) {
      char buf[INET6_ADDRSTRLEN] = {};
      inet_ntop(k.family, k.addr, buf, sizeof buf);
      address = buf;
    } else {
      uint64_t h;
      std::memcpy(&h, k.addr, sizeof h);
      if (const std::string* name = unix_names.find(h)) address = *name;
    }
    std::string protocol = connection_protocol(k);
    ConnAgg& c = merged[{k.tgid, address, k.port, protocol}];
    c.pid = k.tgid;
    c.address = address;
    c.port = k.port;
    c.protocol = protocol;
    c.count += v.count;
    c.failed += v.failed;
    c.in_progress += v.in_progress;
  }
  std::vector<ConnAgg> out;
  out.reserve(merged.size());
  for (auto& [_, c] : merged) out.push_back(std::move(c));
  return out;
}

}  // namespace bc::events
