// What the kernel's aggregate maps and name events become in user space, without libbpf: the table of names
// by hash, paths made lexical, and the rows of one drain merged into the FileAgg and ConnAgg of events.hpp.
// Internal to cgroup_monitor/bpf (events.cpp and its tests).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cgroup_monitor/bpf/bc_events.h"
#include "cgroup_monitor/bpf/events.hpp"

namespace bc::events {

// hash -> name. Names are sent again in every interval a path is opened in, so only byte counting without an
// open in the interval needs an old one. Two generations keep memory bounded at O(1) cost per drain: when
// the current one passes kNamesPerGeneration at age(), it becomes the previous one and the older is dropped.
class NameTable {
 public:
  static constexpr size_t kNamesPerGeneration = 100000;
  void put(uint64_t hash, std::string text) { cur_[hash] = std::move(text); }
  const std::string* find(uint64_t hash);  // a name found in the previous generation moves to the current
  void age();

 private:
  std::unordered_map<uint64_t, std::string> cur_, prev_;
};

// "." and ".." removed and slashes collapsed, lexically. A leading "?" (unknown directory) is kept.
std::string normalize_path(const std::string& in);

using FileRows = std::vector<std::pair<bc_file_key, bc_file_val>>;
using ConnectionRows = std::vector<std::pair<bc_conn_key, bc_conn_val>>;

// Rows of one process and one path merge (the same file reached by two relative spellings); a row whose name
// was lost stays apart under its hash, with an empty path. Kernel times (boot clock) move by epoch_offset_ns.
std::vector<FileAgg> merge_files(const FileRows& rows, NameTable& names, int64_t epoch_offset_ns);

// Rows of one process, address, port and protocol merge; unix sockets are named from unix_names.
std::vector<ConnAgg> merge_connections(const ConnectionRows& rows, NameTable& unix_names);

// "tcp", "udp", "raw", "unix" or "other".
std::string connection_protocol(const bc_conn_key& key);

}  // namespace bc::events
