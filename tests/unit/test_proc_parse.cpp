// Parsers on fixtures copied from a real host (/proc, cgroup v1) and in the kernel's documented v2 formats.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "accounting_db/store.hpp"
#include "cgroup_monitor/proc_parse.hpp"

using namespace bc::monitor;

namespace {
std::string fixture(const std::string& name) {
  std::ifstream in(std::string(BC_FIXTURES) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

TEST(ProcStat, ParsesRealSleepProcess) {
  auto st = parse_proc_stat(fixture("proc/stat_sleep"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->comm, "sleep");
  EXPECT_EQ(st->state, 'S');
  EXPECT_GT(st->pid, 0u);
  EXPECT_GT(st->ppid, 0u);
  EXPECT_GT(st->start_ticks, 0u);
  EXPECT_GT(st->rss_pages, 0u);
}

TEST(ProcStat, CommWithSpacesAndParentheses) {
  auto st = parse_proc_stat(fixture("proc/stat_weird_comm"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->comm, "we(ir d) )x");
  EXPECT_EQ(st->pid, 5375u);
  EXPECT_EQ(st->ppid, 5363u);
  EXPECT_EQ(st->start_ticks, 64572u);
  EXPECT_EQ(st->rss_pages, 426u);
}

TEST(ProcStat, KnownFieldPositions) {
  // pid (comm) state ppid ... utime(14) stime(15) ... starttime(22) vsize(23) rss(24)
  auto st = parse_proc_stat("77 (busy) R 5 77 77 0 -1 0 0 0 0 0 1234 56 7 8 20 0 1 0 999 1000 321 0");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->utime_ticks, 1234u);
  EXPECT_EQ(st->stime_ticks, 56u);
  EXPECT_EQ(st->cutime_ticks, 7u);
  EXPECT_EQ(st->cstime_ticks, 8u);
  EXPECT_EQ(st->start_ticks, 999u);
  EXPECT_EQ(st->rss_pages, 321u);
  EXPECT_EQ(st->num_threads, 1u);
}

TEST(ProcStat, RejectsTruncatedAndGarbage) {
  EXPECT_FALSE(parse_proc_stat(""));
  EXPECT_FALSE(parse_proc_stat("12 (x) S 1 2 3"));
  EXPECT_FALSE(parse_proc_stat("no parens here"));
  EXPECT_FALSE(parse_proc_stat("abc (x) R 5 77 77 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 9 1 3 0"));
}

TEST(ProcStatus, ReadsPeakRssAndUid) {
  auto st = parse_proc_status(fixture("proc/status_sleep"));
  ASSERT_TRUE(st);
  EXPECT_GT(st->vm_hwm_bytes, 0u);
  EXPECT_GE(st->vm_hwm_bytes, st->vm_rss_bytes);
  EXPECT_EQ(st->vm_hwm_bytes % 1024, 0u);
  auto k = parse_proc_status("Name:\tx\nUid:\t1000\t1000\t1000\t1000\nVmHWM:\t    2048 kB\nVmRSS:\t 1024 kB\n");
  ASSERT_TRUE(k);
  EXPECT_EQ(k->uid, 1000u);
  EXPECT_EQ(k->vm_hwm_bytes, 2048u * 1024);
  EXPECT_EQ(k->vm_rss_bytes, 1024u * 1024);
}

TEST(ProcStatus, KernelThreadHasNoMemoryLines) {
  auto st = parse_proc_status(fixture("proc/status_kthread"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->vm_hwm_bytes, 0u);
  EXPECT_EQ(st->uid, 0u);
}

TEST(ProcIo, ParsesRealFile) {
  auto io = parse_proc_io(fixture("proc/io_sleep"));
  ASSERT_TRUE(io);
  auto k = parse_proc_io(
      "rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\nwrite_bytes: 67108864\ncancelled_write_bytes: 8192\n");
  ASSERT_TRUE(k);
  EXPECT_EQ(k->read_bytes, 4096u);
  EXPECT_EQ(k->write_bytes, 67108864u);
  EXPECT_EQ(k->cancelled_write_bytes, 8192u);
  EXPECT_FALSE(parse_proc_io("rchar: 1\n"));
}

TEST(Cmdline, SplitsOnNul) {
  auto args = parse_cmdline(fixture("proc/cmdline_bash"));
  ASSERT_EQ(args.size(), 3u);
  EXPECT_EQ(args[0], "bash");
  EXPECT_EQ(args[2], "echo hi");
  EXPECT_TRUE(parse_cmdline("").empty());
}

TEST(ProcCgroup, HybridHostLines) {
  auto lines = parse_proc_cgroup(fixture("proc/cgroup_hybrid"));
  ASSERT_GE(lines.size(), 10u);
  EXPECT_EQ(lines.back().hierarchy_id, "0");
  EXPECT_EQ(lines.back().controllers, "");
  bool saw_systemd = false;
  for (auto& l : lines) saw_systemd |= l.controllers == "name=systemd";
  EXPECT_TRUE(saw_systemd);
}

TEST(CgroupFiles, FlatKeyedAndSingleValues) {
  std::string cpu = fixture("cgroup_v2/system.slice/slurmstepd.scope/job_42/cpu.stat");
  EXPECT_EQ(flat_keyed_value(cpu, "usage_usec"), 5123456u);
  EXPECT_EQ(flat_keyed_value(cpu, "system_usec"), 1123456u);
  EXPECT_FALSE(flat_keyed_value(cpu, "usage"));
  std::string mem = fixture("cgroup_v1/memory/slurm_n1/uid_1000/job_42/memory.stat");
  EXPECT_TRUE(flat_keyed_value(mem, "total_rss"));
  EXPECT_EQ(parse_single_u64("1388544\n"), 1388544u);
  EXPECT_FALSE(parse_single_u64("max\n"));
  EXPECT_FALSE(parse_single_u64(""));
}

TEST(CgroupFiles, BlkioServiceBytesSumsDevicesAndSkipsTotals) {
  auto io =
      parse_blkio_service_bytes(fixture("cgroup_v1/blkio/slurm_n1/uid_1000/job_42/blkio.throttle.io_service_bytes"));
  EXPECT_EQ(io.read_bytes, 4096u + 512u);
  EXPECT_EQ(io.write_bytes, 67108864u);
  auto empty = parse_blkio_service_bytes("Total 0\n");
  EXPECT_EQ(empty.read_bytes + empty.write_bytes, 0u);
}

TEST(CgroupFiles, IoStatSumsDevices) {
  auto io = parse_io_stat(fixture("cgroup_v2/system.slice/slurmstepd.scope/job_42/io.stat"));
  EXPECT_EQ(io.read_bytes, 1048576u + 4096u);
  EXPECT_EQ(io.write_bytes, 67108864u);
}

TEST(Steps, FromRelativePath) {
  EXPECT_EQ(step_from_relative_path("/step_0/task_1"), 0u);
  EXPECT_EQ(step_from_relative_path("step_12"), 12u);
  EXPECT_EQ(step_from_relative_path("/step_batch/task_0"), bc::store::kStepBatch);
  EXPECT_EQ(step_from_relative_path("/step_extern"), bc::store::kStepExtern);
  EXPECT_EQ(step_from_relative_path("/step_interactive"), bc::store::kStepInteractive);
  EXPECT_FALSE(step_from_relative_path(""));
  EXPECT_FALSE(step_from_relative_path("/task_0"));
  EXPECT_FALSE(step_from_relative_path("/step_x1"));
}

TEST(CgroupFiles, CpuListCount) {
  EXPECT_EQ(count_cpu_list("0-1\n"), 2u);
  EXPECT_EQ(count_cpu_list("0-3,8,10-11\n"), 7u);
  EXPECT_EQ(count_cpu_list("5"), 1u);
  EXPECT_EQ(count_cpu_list("\n"), 0u);
  EXPECT_FALSE(count_cpu_list("3-1"));
  EXPECT_FALSE(count_cpu_list("a-b"));
  EXPECT_FALSE(count_cpu_list("1,,2"));
}

TEST(CgroupFiles, MemoryLimit) {
  EXPECT_EQ(parse_memory_limit("2147483648\n"), 2147483648u);
  EXPECT_EQ(parse_memory_limit("9223372036854771712\n"), 0u);  // v1 "no limit"
  EXPECT_EQ(parse_memory_limit("max\n"), 0u);                  // v2 "no limit"
  EXPECT_FALSE(parse_memory_limit("lots"));
}
