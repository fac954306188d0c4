// cgroup_monitor/bpf/aggregates.hpp without the kernel: the rows a drain reads from the aggregate maps, as
// the kernel writes them (bc_events.h), merged into files and connections.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "cgroup_monitor/bpf/aggregates.hpp"

namespace {

using bc::events::NameTable;

bc_file_key file_key(uint32_t tgid, uint64_t hash) {
  bc_file_key k{};
  k.tgid = tgid;
  k.hash = hash;
  return k;
}

bc_file_val file_val(uint64_t opens, uint64_t first_ns, uint32_t flags) {
  bc_file_val v{};
  v.opens = opens;
  v.first_ns = first_ns;
  v.flags = flags;
  return v;
}

TEST(EventAggregates, PathsAreMadeLexical) {
  using bc::events::normalize_path;
  EXPECT_EQ(normalize_path("/etc/passwd"), "/etc/passwd");
  EXPECT_EQ(normalize_path("/a//b/./c/../d/"), "/a/b/d");
  EXPECT_EQ(normalize_path("/.."), "/");
  EXPECT_EQ(normalize_path("../x/./y"), "../x/y");
  EXPECT_EQ(normalize_path("a/.."), ".");
  EXPECT_EQ(normalize_path("?/data/../out"), "?/out");  // unknown directory kept
}

TEST(EventAggregates, OneProcessAndPathMergeAcrossSpellings) {
  NameTable names;
  names.put(1, "/scratch/out");
  names.put(2, "/scratch/out");  // the same file opened by another relative spelling
  names.put(3, "/etc/hosts");
  bc::events::FileRows rows = {{file_key(10, 1), file_val(2, 5'000, 1)},
                               {file_key(10, 2), file_val(1, 3'000, 2)},
                               {file_key(11, 1), file_val(1, 9'000, 1)},
                               {file_key(10, 3), file_val(1, 4'000, 1)},
                               {file_key(10, 99), file_val(1, 1'000, 1)}};  // its name event was lost
  rows[0].second.write_bytes = 100;
  rows[1].second.write_bytes = 20;
  const auto files = bc::events::merge_files(rows, names, 1'000'000);
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[0].pid, 10u);
  EXPECT_EQ(files[0].path, "/scratch/out");
  EXPECT_EQ(files[0].opens, 3u);
  EXPECT_EQ(files[0].flags, 3u);
  EXPECT_EQ(files[0].write_bytes, 120u);
  EXPECT_EQ(files[0].first_ns, 1'003'000u);  // the earlier open, moved to the epoch clock
  EXPECT_EQ(files[1].pid, 11u);              // another process's open of the same path stays its own
  EXPECT_EQ(files[2].path, "/etc/hosts");
  EXPECT_EQ(files[3].path, "");  // no name: kept apart, not merged into a named row
  EXPECT_EQ(files[3].opens, 1u);
}

TEST(EventAggregates, BytesWithoutAnOpenHaveNoFirstOpen) {
  NameTable names;
  names.put(7, "/data/in");
  bc_file_val bytes_only{};
  bytes_only.read_bytes = 4096;
  bytes_only.first_ns = 123;
  const auto files = bc::events::merge_files({{file_key(5, 7), bytes_only}}, names, 1'000);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].first_ns, 0u);
  EXPECT_EQ(files[0].read_bytes, 4096u);
}

TEST(EventAggregates, ConnectionsMergeByPeerAndNameUnixSockets) {
  NameTable unix_names;
  unix_names.put(0xabcdefULL, "/run/munge/munge.socket.2");
  bc_conn_key tcp{};
  tcp.tgid = 20;
  tcp.family = AF_INET;
  tcp.type = SOCK_STREAM;
  tcp.port = 6817;
  inet_pton(AF_INET, "10.1.2.3", tcp.addr);
  bc_conn_key udp6 = tcp;
  udp6.family = AF_INET6;
  udp6.type = SOCK_DGRAM;
  std::memset(udp6.addr, 0, sizeof udp6.addr);
  inet_pton(AF_INET6, "::1", udp6.addr);
  bc_conn_key unix_socket{};
  unix_socket.tgid = 20;
  unix_socket.family = AF_UNIX;
  unix_socket.type = SOCK_STREAM;
  const uint64_t hash = 0xabcdefULL;
  std::memcpy(unix_socket.addr, &hash, sizeof hash);
  bc_conn_val once{};
  once.count = 1;
  bc_conn_val failed{};
  failed.count = 2;
  failed.failed = 2;
  const auto conns =
      bc::events::merge_connections({{tcp, once}, {tcp, failed}, {udp6, once}, {unix_socket, once}}, unix_names);
  ASSERT_EQ(conns.size(), 3u);
  EXPECT_EQ(conns[0].address, "/run/munge/munge.socket.2");
  EXPECT_EQ(conns[0].protocol, "unix");
  EXPECT_EQ(conns[1].address, "10.1.2.3");
  EXPECT_EQ(conns[1].protocol, "tcp");
  EXPECT_EQ(conns[1].port, 6817);
  EXPECT_EQ(conns[1].count, 3u);
  EXPECT_EQ(conns[1].failed, 2u);
  EXPECT_EQ(conns[2].address, "::1");
  EXPECT_EQ(conns[2].protocol, "udp");
}

TEST(EventAggregates, NamesLiveTwoGenerations) {
  NameTable names;
  names.put(1, "/old");
  for (uint64_t h = 100; h < 100 + NameTable::kNamesPerGeneration; ++h) names.put(h, "x");
  names.age();                        // the current generation becomes the previous one
  ASSERT_NE(names.find(1), nullptr);  // found in the previous: moved to the current
  names.put(2, "/new");
  names.age();  // not full: nothing moves
  for (uint64_t h = 200'000; h < 200'000 + NameTable::kNamesPerGeneration; ++h) names.put(h, "y");
  names.age();
  names.age();                          // cur is empty: nothing moves
  EXPECT_EQ(names.find(100), nullptr);  // its generation was dropped at the second full age()
  EXPECT_NE(names.find(2), nullptr);
}

}  // namespace
