// The v1 and v2 readers on fixture trees. v1 files were copied from a real Slurm job on this host; a pure
// v2 host with controllers cannot be reproduced here, so the v2 tree holds the kernel's documented formats.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "accounting_db/store.hpp"
#include "cgroup_monitor/cgroup_paths.hpp"
#include "cgroup_monitor/cgroup_reader.hpp"
#include "common/fd.hpp"

using namespace bc::monitor;

TEST(JobCgroup, FromHybridSlurmstepd) {
  const char* text =
      "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/slurm_n1/uid_1000/job_42/step_0\n5:devices:/\n"
      "4:memory:/slurm_n1/uid_1000/job_42/step_0\n3:cpuset:/slurm_n1/uid_1000/job_42/step_0\n2:cpuacct:/\n"
      "1:cpu:/\n0::/\n";
  auto job = job_cgroup_from_proc_cgroup(text, 42);
  ASSERT_TRUE(job);
  EXPECT_EQ(job->version, 1);
  EXPECT_EQ(job->relative_path, "/slurm_n1/uid_1000/job_42");
  ASSERT_EQ(job->hierarchies.size(), 3u);
  EXPECT_EQ(job->hierarchies[0].controllers, "freezer");
}

TEST(JobCgroup, WholeComponentOnly) {
  EXPECT_FALSE(job_cgroup_from_proc_cgroup("4:memory:/slurm_n1/uid_0/job_420/step_0\n", 42));
  EXPECT_FALSE(job_cgroup_from_proc_cgroup("4:memory:/slurm_n1/uid_0/job_4\n", 42));
  EXPECT_TRUE(job_cgroup_from_proc_cgroup("4:memory:/slurm_n1/uid_0/job_42\n", 42));
}

TEST(JobCgroup, FromV2Task) {
  auto text = bc::read_file(std::string(BC_FIXTURES) + "/proc/cgroup_v2_task");
  ASSERT_TRUE(text);
  auto job = job_cgroup_from_proc_cgroup(*text, 42);
  ASSERT_TRUE(job);
  EXPECT_EQ(job->version, 2);
  EXPECT_EQ(job->relative_path, "/system.slice/slurmstepd.scope/job_42");
}

TEST(JobCgroup, NotInJob) { EXPECT_FALSE(job_cgroup_from_proc_cgroup("0::/user.slice\n4:memory:/\n", 7)); }

TEST(V1Reader, RealJobTree) {
  auto reader = make_cgroup_reader(1, "/slurm_n1/uid_1000/job_42", std::string(BC_FIXTURES) + "/cgroup_v1");
  ASSERT_TRUE(reader->exists());
  auto members = reader->members();
  // freezer holds slurmstepd at job level (no step) and the batch script's processes in step_batch.
  ASSERT_EQ(members.size(), 3u);
  std::sort(members.begin(), members.end(), [](auto& a, auto& b) { return a.pid < b.pid; });
  EXPECT_EQ(members[0].pid, 5409u);
  EXPECT_FALSE(members[0].step);
  EXPECT_EQ(members[1].step, bc::store::kStepBatch);
  auto t = reader->totals();
  EXPECT_TRUE(t.has_memory);
  EXPECT_EQ(t.mem_current, 1388544u);
  EXPECT_GE(t.mem_peak, t.mem_current);
  EXPECT_TRUE(t.has_cpu);
  EXPECT_GT(t.cpu_ns, 0u);
  EXPECT_TRUE(t.has_io);
  EXPECT_EQ(t.io.write_bytes, 67108864u);
  EXPECT_FALSE(t.has_pids);
  EXPECT_EQ(t.cpus, 2u);
  EXPECT_EQ(t.mem_limit, 2147483648u);
}

TEST(V1Reader, GoneJob) {
  auto reader = make_cgroup_reader(1, "/slurm_n1/uid_1000/job_43", std::string(BC_FIXTURES) + "/cgroup_v1");
  EXPECT_FALSE(reader->exists());
  EXPECT_TRUE(reader->members().empty());
  auto t = reader->totals();
  EXPECT_FALSE(t.has_cpu || t.has_memory || t.has_io);
}

TEST(V2Reader, FixtureTree) {
  auto reader = make_cgroup_reader(2, "/system.slice/slurmstepd.scope/job_42", std::string(BC_FIXTURES) + "/cgroup_v2");
  ASSERT_TRUE(reader->exists());
  auto members = reader->members();
  ASSERT_EQ(members.size(), 5u);
  std::sort(members.begin(), members.end(), [](auto& a, auto& b) { return a.pid < b.pid; });
  EXPECT_EQ(members[0].pid, 101u);
  EXPECT_EQ(members[0].step, bc::store::kStepBatch);
  EXPECT_EQ(members[1].step, 0u);
  EXPECT_EQ(members[3].pid, 104u);
  EXPECT_EQ(members[3].step, 0u);
  EXPECT_EQ(members[4].step, bc::store::kStepExtern);
  auto t = reader->totals();
  EXPECT_EQ(t.cpu_ns, 5123456000u);
  EXPECT_EQ(t.mem_current, 104857600u);
  EXPECT_EQ(t.mem_peak, 209715200u);
  EXPECT_EQ(t.io.read_bytes, 1052672u);
  EXPECT_EQ(t.pids, 5u);
  EXPECT_EQ(t.cpus, 4u);
  EXPECT_EQ(t.mem_limit, 4294967296u);
}

TEST(V2Reader, UnifiedMountOfThisHost) {
  // The hybrid host's cgroup2 mount has cpu.stat even without controllers: read its root for real.
  auto mount = cgroup_mount_point("");
  if (!mount) GTEST_SKIP() << "no cgroup2 mount on this host";
  auto reader = make_cgroup_reader(2, "/");
  ASSERT_TRUE(reader->exists());
  auto t = reader->totals();
  EXPECT_TRUE(t.has_cpu);
  EXPECT_GT(t.cpu_ns, 0u);
  EXPECT_FALSE(reader->members().empty());
}

// The reader keeps the job directory and its files open between ticks. A directory removed and made again
// under the same name (Slurm does so between steps of an allocation) must be read afresh, not through the
// old fds; a file rewritten in place is read anew through the kept fd.
TEST(V2Reader, KeptFdsFollowRewriteRemovalAndRecreation) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("bc-cgroup-reader-" + std::to_string(::getpid()));
  const fs::path job = root / "job_7";
  auto make = [&](const char* procs, const char* mem) {
    fs::create_directories(job);
    std::ofstream(job / "cgroup.procs") << procs;
    std::ofstream(job / "memory.current") << mem;
  };
  fs::remove_all(root);
  make("11\n", "5\n");
  auto reader = make_cgroup_reader(2, "/job_7", root.string());
  ASSERT_TRUE(reader->exists());
  ASSERT_EQ(reader->members().size(), 1u);
  EXPECT_EQ(reader->members()[0].pid, 11u);
  EXPECT_EQ(reader->totals().mem_current, 5u);

  std::ofstream(job / "memory.current", std::ios::trunc) << "7\n";
  std::ofstream(job / "cgroup.procs", std::ios::trunc) << "11\n13\n";
  EXPECT_TRUE(reader->exists());
  EXPECT_EQ(reader->totals().mem_current, 7u);
  EXPECT_EQ(reader->members().size(), 2u);

  fs::remove_all(job);
  EXPECT_FALSE(reader->exists());
  EXPECT_TRUE(reader->members().empty());
  EXPECT_FALSE(reader->totals().has_memory);

  make("12\n", "9\n");
  ASSERT_TRUE(reader->exists());
  auto members = reader->members();
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(members[0].pid, 12u);
  EXPECT_EQ(reader->totals().mem_current, 9u);
  fs::remove_all(root);
}

// The job cgroup's CPU counter that slurmstepd passes on at a task's and a step's end, from the real formats.
TEST(JobCgroupCpu, ReadsTheCounterAndItsDirectorysInodeOnV1AndV2) {
  const std::string v1 = std::string(BC_FIXTURES) + "/cgroup_v1";
  EXPECT_EQ(job_cgroup_cpu_dir(1, "/slurm_n1/uid_1000/job_42", v1), v1 + "/cpuacct/slurm_n1/uid_1000/job_42");
  const auto a = read_job_cgroup_cpu(1, job_cgroup_cpu_dir(1, "/slurm_n1/uid_1000/job_42", v1));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->cpu_ns, std::stoull(*bc::read_file(v1 + "/cpuacct/slurm_n1/uid_1000/job_42/cpuacct.usage")));
  struct stat st {};
  ASSERT_EQ(::stat((v1 + "/cpuacct/slurm_n1/uid_1000/job_42").c_str(), &st), 0);
  EXPECT_EQ(a->dir_inode, static_cast<uint64_t>(st.st_ino));
  const auto b = read_job_cgroup_cpu(
      2, job_cgroup_cpu_dir(2, "/system.slice/slurmstepd.scope/job_42", std::string(BC_FIXTURES) + "/cgroup_v2"));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->cpu_ns, 5'123'456'000u);  // cpu.stat's usage_usec, in ns
  EXPECT_NE(a->dir_inode, b->dir_inode);
  EXPECT_EQ(cgroup_dir_inode(v1 + "/cpuacct/slurm_n1/uid_1000/job_42"), a->dir_inode);
  EXPECT_FALSE(read_job_cgroup_cpu(1, job_cgroup_cpu_dir(1, "/slurm_n1/uid_1000/job_999", v1)));  // removed
  EXPECT_FALSE(cgroup_dir_inode(v1 + "/cpuacct/slurm_n1/uid_1000/job_999"));
}
