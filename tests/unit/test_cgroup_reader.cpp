// The v1 and v2 readers on fixture trees. v1 files were copied from a real Slurm job on this host; a pure
// v2 host with controllers cannot be reproduced here, so the v2 tree holds the kernel's documented formats.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "accounting_db/store.hpp"
#include "cgroup_monitor/cgroup_paths.hpp"
#include "cgroup_monitor/cgroup_reader.hpp"
#include "common/fd.hpp"
#include "common/slurm_ids.hpp"

using namespace bc::monitor;

std::string stepd_cgroup(const char* layout) {
  auto text = bc::read_file(std::string(BC_FIXTURES) + "/slurmstepd_cgroup/" + layout);
  EXPECT_TRUE(text) << layout;
  return text.value_or("");
}

// A temporary cgroup root, removed at the end of the scope.
struct TempRoot {
  std::filesystem::path path;
  explicit TempRoot(const std::string& name)
      : path(std::filesystem::temp_directory_path() / ("bc-" + name + "-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempRoot() { std::filesystem::remove_all(path); }
};

// The job directory is found from where slurmstepd sits, on every layout Slurm makes
// (tests/fixtures/slurmstepd_cgroup/README.md), whatever the job directory is called. v1's freezer holds
// slurmstepd at the job's level: the tree has the step's directory under it, as Slurm makes it.
TEST(JobCgroup, FromSlurmstepdsPositionOnEveryLayout) {
  struct Case {
    const char* layout;
    uint32_t step;
    int version;
    const char* job;
  };
  const Case cases[] = {
      {"v1_hybrid_multiple_slurmd", bc::slurm::kStepBatch, 1, "/slurm_n1/uid_1000/job_42"},
      {"v1", 0, 1, "/slurm/uid_1000/job_42"},
      {"v2", 0, 2, "/system.slice/slurmstepd.scope/job_42"},
      {"v2_multiple_slurmd", bc::slurm::kStepExtern, 2, "/system.slice/n1_slurmstepd.scope/job_42"},
      {"v2_sluid", 0, 2, "/system.slice/slurmstepd.scope/sBR1JB8J1YM400"},
      {"v2_cgroup_namespace", bc::slurm::kStepBatch, 2, "/job_42"},
  };
  for (const Case& c : cases) {
    const TempRoot root(c.layout);
    const std::string step_dir = std::string(c.job) + "/" + step_cgroup_name(c.step);
    std::filesystem::create_directories(root.path / (c.version == 1 ? "freezer" + step_dir : step_dir.substr(1)));
    const std::string text = stepd_cgroup(c.layout);
    const auto job = job_cgroup_from_stepd_cgroup(text, c.step, root.path.string());
    ASSERT_TRUE(job) << c.layout;
    EXPECT_EQ(job->version, c.version) << c.layout;
    EXPECT_EQ(job->relative_path, c.job) << c.layout;
    ASSERT_EQ(job->hierarchies.size(), 1u) << c.layout;
    EXPECT_EQ(job->hierarchies[0].controllers, c.version == 1 ? "freezer" : "") << c.layout;
    // Another step's slurmstepd is elsewhere: the step is part of the position.
    EXPECT_FALSE(job_cgroup_from_stepd_cgroup(text, 7, root.path.string())) << c.layout;
  }
}

TEST(JobCgroup, StepDirectoryNames) {
  EXPECT_EQ(step_cgroup_name(0), "step_0");
  EXPECT_EQ(step_cgroup_name(12), "step_12");
  EXPECT_EQ(step_cgroup_name(bc::slurm::kStepBatch), "step_batch");
  EXPECT_EQ(step_cgroup_name(bc::slurm::kStepExtern), "step_extern");
  EXPECT_EQ(step_cgroup_name(bc::slurm::kStepInteractive), "step_interactive");
}

TEST(JobCgroup, NotAtAStepsLevel) {
  EXPECT_FALSE(job_cgroup_from_stepd_cgroup("0::/user.slice\n4:memory:/\n", 0));
  EXPECT_FALSE(job_cgroup_from_stepd_cgroup("0::/step_0/slurm\n", 0)) << "a step at the root is no job's";
  EXPECT_FALSE(job_cgroup_from_stepd_cgroup("4:memory:/slurm/uid_0/job_42/step_0/task_0\n", 0))
      << "a task's cgroup is not slurmstepd's";
  EXPECT_FALSE(job_cgroup_from_stepd_cgroup("4:memory:/slurm/uid_0/job_42/step_0/slurm\n", 0))
      << "v1 has no slurm leaf";
  EXPECT_FALSE(job_cgroup_from_stepd_cgroup("4:memory:/slurm/uid_0/job_42/step_00\n", 0));
  EXPECT_FALSE(job_cgroup_from_stepd_cgroup("4:freezer:/slurm/uid_0/job_42\n", 0, "/nonexistent"))
      << "a job's level is known by its step's directory";
}

// Each v2 layout's job tree, laid out as Slurm makes it, is read like the one of today's layout.
TEST(JobCgroup, EveryV2LayoutsTreeIsRead) {
  const std::filesystem::path source =
      std::filesystem::path(BC_FIXTURES) / "cgroup_v2/system.slice/slurmstepd.scope/job_42";
  const std::pair<const char*, uint32_t> layouts[] = {
      {"v2_multiple_slurmd", bc::slurm::kStepExtern}, {"v2_sluid", 0}, {"v2_cgroup_namespace", bc::slurm::kStepBatch}};
  for (const auto& [layout, step] : layouts) {
    const auto job = job_cgroup_from_stepd_cgroup(stepd_cgroup(layout), step);
    ASSERT_TRUE(job) << layout;
    const TempRoot tree(layout);
    const std::filesystem::path root = tree.path;
    std::filesystem::create_directories((root / job->relative_path.substr(1)).parent_path());
    std::filesystem::copy(source, root / job->relative_path.substr(1), std::filesystem::copy_options::recursive);
    auto reader = make_cgroup_reader(2, job->relative_path, root.string());
    ASSERT_TRUE(reader->exists()) << layout;
    EXPECT_EQ(reader->members().size(), 5u) << layout;
    EXPECT_EQ(reader->totals().cpu_ns, 5123456000u) << layout;
    const auto cpu = read_job_cgroup_cpu(2, job_cgroup_cpu_dir(2, job->relative_path, root.string()));
    ASSERT_TRUE(cpu) << layout;
    EXPECT_EQ(cpu->cpu_ns, 5123456000u) << layout;
  }
}

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
