// A job's GPU figures as the monitor records them, through the fake NVML: the GPUs Slurm gave the job by minor
// number, their utilisation, memory and energy over the sampled time, and each of the job's processes' GPU
// memory and SM time. The process is a real child this test tracks in a ProcessTable.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "cgroup_monitor/job_gpus.hpp"
#include "cgroup_monitor/process_table.hpp"

using namespace bc;

namespace {

constexpr uint64_t kGiB = 1ULL << 30;

void fake_step(unsigned int n) {
  void* lib = dlopen(FAKE_NVML, RTLD_NOW);
  ASSERT_TRUE(lib);
  auto* set = reinterpret_cast<void (*)(unsigned int)>(dlsym(lib, "bc_fake_nvml_step"));
  ASSERT_TRUE(set);
  set(n);
  dlclose(lib);
}

const store::ProcessUpdate* update_of(const store::Batch& b, uint32_t pid) {
  for (const auto& u : b.processes)
    if (u.record.pid == pid) return &u;
  return nullptr;
}

const store::ProcessRecord* find(const store::Batch& b, uint32_t pid) {
  const store::ProcessUpdate* u = update_of(b, pid);
  return u ? &u->record : nullptr;
}

}  // namespace

TEST(JobGpus, TheJobsGpusAndItsProcessesFiguresAreRecorded) {
  const pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  const auto pid = static_cast<uint32_t>(child);
  // GPU 0 (minor 1) is another job's, busy with a stranger; GPU 1 (minor 0) is this job's: the child holds
  // 8 GiB on it at 50% of its SMs, then 12 GiB at 100%; the GPU is 60% then 90% busy at 200 W, then 300 W.
  const std::string script = "/tmp/bc-job-gpus-" + std::to_string(getpid()) + ".script";
  std::ofstream(script) << "gpu 0 1 GPU-other 85899345920\ngpu 1 0 GPU-mine 85899345920\n"
                        << "util 0 100\nused 0 4294967296\npower 0 250000\nproc 0 999999 4294967296 100\n"
                        << "util 1 60\nused 1 8589934592\npower 1 200000\nproc 1 " << pid << " 8589934592 50\n"
                        << "step 1\nutil 1 90\nused 1 12884901888\npower 1 300000\nproc 1 " << pid
                        << " 12884901888 100\nstep 2\nlost 0\nstep 3\nlost 1\n";
  setenv("BC_FAKE_NVML_SCRIPT", script.c_str(), 1);
  fake_step(0);
  std::vector<std::string> logged;
  monitor::JobGpus gpus(FAKE_NVML, "0", [&](const std::string& s) { logged.push_back(s); });
  gpus.finish_loading();
  ASSERT_TRUE(gpus.active()) << (logged.empty() ? "" : logged[0]);

  monitor::ProcessTable table;
  store::JobRecord job;
  const int64_t t0 = 1'800'000'000'000;
  store::Batch first;
  table.sample({{pid, 0U}}, t0, first);  // tracked from now on
  table.commit(first);
  store::Batch b0;
  gpus.sample(t0, table, job, b0.gpu_samples);  // the first sample: memory, no interval yet
  table.sample({{pid, 0U}}, t0, b0);
  table.commit(b0);
  ASSERT_TRUE(find(b0, pid));
  EXPECT_EQ(find(b0, pid)->gpu_memory_max, 8 * kGiB);
  EXPECT_EQ(find(b0, pid)->gpu_sm_ns, 0U);
  // Points of the job's GPU (its series is that of its place in the job record) and of the process.
  const int64_t s0 = t0 / 1000;
  EXPECT_EQ(b0.gpu_samples, (std::vector<store::GpuSample>{{store::gpu_device_series(0), s0, 0, 8 * kGiB, 0}}));
  EXPECT_EQ(update_of(b0, pid)->gpu_sample, (store::GpuSample{0, s0, 0, 8 * kGiB, 0}));

  fake_step(1);
  store::Batch b1;
  gpus.sample(t0 + 2000, table, job, b1.gpu_samples);  // 2 s later: 100% of the SMs, 12 GiB
  table.sample({{pid, 0U}}, t0 + 2000, b1);
  table.commit(b1);
  ASSERT_TRUE(find(b1, pid));
  EXPECT_EQ(find(b1, pid)->gpu_memory_max, 12 * kGiB);
  EXPECT_EQ(find(b1, pid)->gpu_sm_ns, 2'000'000'000U) << "2 s at 100%";
  EXPECT_EQ(b1.gpu_samples,
            (std::vector<store::GpuSample>{{store::gpu_device_series(0), s0 + 2, 1'800'000'000, 12 * kGiB, 600'000}}))
      << "cumulative busy time and energy, the memory used now";
  EXPECT_EQ(update_of(b1, pid)->gpu_sample, (store::GpuSample{0, s0 + 2, 2'000'000'000, 12 * kGiB, 0}));

  ASSERT_EQ(job.gpus.size(), 1U) << "not the other job's GPU, which none of this job's processes used";
  const store::JobGpu& g = job.gpus[0];
  EXPECT_EQ(g.uuid, "GPU-mine");
  EXPECT_EQ(g.minor, 0U);
  EXPECT_TRUE(g.allocated);
  EXPECT_EQ(g.memory_total, 80 * kGiB);
  EXPECT_EQ(g.memory_max, 12 * kGiB);
  EXPECT_EQ(g.util_ns, 2'000'000'000U);
  EXPECT_EQ(g.busy_ns, 1'800'000'000U) << "90% of 2 s";
  EXPECT_DOUBLE_EQ(g.util_percent(), 90.0);
  EXPECT_EQ(g.energy_mj, 600'000U) << "300 W for 2 s";
  EXPECT_DOUBLE_EQ(g.power_watts(), 300.0);
  EXPECT_EQ(job.gpus_lost, 0U);
  EXPECT_TRUE(logged.empty());
  fake_step(2);  // the other job's GPU falls off the bus: not this job's loss
  store::Batch b2;
  gpus.sample(t0 + 3000, table, job, b2.gpu_samples);
  table.sample({{pid, 0U}}, t0 + 3000, b2);
  table.commit(b2);
  EXPECT_EQ(job.gpus_lost, 0U);
  EXPECT_EQ(b2.gpu_samples.size(), 1U);
  fake_step(3);  // this job's does
  store::Batch b3;
  gpus.sample(t0 + 4000, table, job, b3.gpu_samples);
  table.sample({{pid, 0U}}, t0 + 4000, b3);
  table.commit(b3);
  EXPECT_EQ(job.gpus_lost, 1U);
  EXPECT_EQ(job.gpus[0].util_ns, 3'000'000'000U) << "sampled until it was lost, not after";
  EXPECT_TRUE(b3.gpu_samples.empty()) << "no point of a lost GPU";
  ASSERT_TRUE(update_of(b3, pid));
  EXPECT_EQ(update_of(b3, pid)->gpu_sample, (store::GpuSample{0, s0 + 4, find(b3, pid)->gpu_sm_ns, 0, 0}))
      << "the tick it is no longer on a GPU: a point of no memory, its SM time kept";
  store::Batch b4;
  gpus.sample(t0 + 5000, table, job, b4.gpu_samples);
  table.sample({{pid, 0U}}, t0 + 5000, b4);
  const store::ProcessUpdate* after = update_of(b4, pid);
  EXPECT_TRUE(!after || !after->gpu_sample) << "and none after it";

  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  unlink(script.c_str());
}

TEST(JobGpus, WithoutNvmlNothingIsDoneAndACpuNodeLogsNothing) {
  std::vector<std::string> logged;
  const auto log = [&](const std::string& s) { logged.push_back(s); };
  monitor::JobGpus none("/nonexistent/libnvidia-ml.so.1", "", log);
  none.finish_loading();
  EXPECT_FALSE(none.active());
  EXPECT_TRUE(logged.empty()) << logged[0];
  monitor::JobGpus off("off", "0", log);
  EXPECT_FALSE(off.active());
  EXPECT_TRUE(logged.empty());
  // A job given GPUs where NVML is missing: said, once.
  monitor::JobGpus missing("/nonexistent/libnvidia-ml.so.1", "0", log);
  EXPECT_TRUE(logged.empty()) << "NVML is loaded on a thread of its own";
  store::JobRecord before;
  monitor::ProcessTable no_processes;
  for (int i = 0; i < 1000 && logged.empty(); ++i) {  // the sample that finds it failed says so
    std::vector<store::GpuSample> points;
    missing.sample(1'800'000'000'000, no_processes, before, points);
    usleep(1000);
  }
  ASSERT_EQ(logged.size(), 1U);
  EXPECT_NE(logged[0].find("no GPU figures"), std::string::npos) << logged[0];
  store::JobRecord job;
  monitor::ProcessTable table;
  std::vector<store::GpuSample> points;
  missing.sample(1'800'000'000'000, table, job, points);
  EXPECT_TRUE(job.gpus.empty());
  EXPECT_TRUE(points.empty());
  EXPECT_EQ(logged.size(), 1U);
}

TEST(JobGpus, AnUnreadableGpuListIsSaidAndTheProcessesDecide) {
  setenv("BC_FAKE_NVML_SCRIPT", "/dev/null", 1);
  std::vector<std::string> logged;
  monitor::JobGpus gpus(FAKE_NVML, "gpu:0", [&](const std::string& s) { logged.push_back(s); });
  ASSERT_FALSE(logged.empty()) << "said at once";
  EXPECT_NE(logged[0].find("SLURM_JOB_GPUS 'gpu:0' is not a list"), std::string::npos) << logged[0];
}
