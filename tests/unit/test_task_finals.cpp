// The final-figures file between the plugin (in slurmstepd) and the job's monitor: records appended are read
// once each, whole; nothing is written where no monitor made the file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "cgroup_monitor/task_finals.hpp"

using namespace bc::monitor;

namespace {
std::string temp_dir() {
  char pattern[] = "/tmp/bc-finals-XXXXXX";
  return ::mkdtemp(pattern) ? pattern : "";
}
}  // namespace

TEST(TaskFinals, RecordsAppendedAreTakenOnceAndWhole) {
  const std::string dir = temp_dir();
  ASSERT_FALSE(dir.empty());
  const std::string path = task_finals_path(dir, 42);
  FinalRecord none;
  EXPECT_FALSE(append_final(path, none)) << "no monitor made the file: nothing is written";
  EXPECT_FALSE(std::filesystem::exists(path));

  // The launcher makes the file before the monitor is up; what a task appends meanwhile is kept.
  ASSERT_TRUE(make_finals_file(path));
  FinalRecord early;
  early.pid = 5;
  ASSERT_TRUE(append_final(path, early));
  FinalsReader reader(path);
  auto first = reader.take_new();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].pid, 5u);
  EXPECT_TRUE(reader.take_new().empty());
  FinalRecord a;
  a.pid = 7;
  a.start_ticks = 123;
  a.cpu_ns = 456;
  std::strcpy(a.command, "task");
  FinalRecord b;
  b.kind = FinalRecord::kJobCgroupCpu;
  b.cpu_ns = 789;
  ASSERT_TRUE(append_final(path, a));
  ASSERT_TRUE(append_final(path, b));
  auto taken = reader.take_new();
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_EQ(taken[0].pid, 7u);
  EXPECT_EQ(taken[0].cpu_ns, 456u);
  EXPECT_STREQ(taken[0].command, "task");
  EXPECT_EQ(taken[1].kind, FinalRecord::kJobCgroupCpu);
  EXPECT_TRUE(reader.take_new().empty());

  // Half a record is left for the next call, and read whole once the rest is there.
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, &a, 10), 10);
  EXPECT_TRUE(reader.take_new().empty());
  ASSERT_EQ(::write(fd, reinterpret_cast<const char*>(&a) + 10, sizeof a - 10), static_cast<ssize_t>(sizeof a - 10));
  ::close(fd);
  taken = reader.take_new();
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].start_ticks, 123u);

  // The next monitor's launcher empties it: an earlier monitor's records never reach the next one.
  ASSERT_TRUE(make_finals_file(path));
  FinalsReader again(path);
  EXPECT_TRUE(again.take_new().empty());
  std::filesystem::remove_all(dir);
}
