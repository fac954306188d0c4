// The GPU sampler against the fake NVML (tests/gpu/fake_nvml.cpp), loaded through the same dlopen path as
// libnvidia-ml.so.1: devices by minor number, per-process memory and SM use, NVML's quirks (NOT_SUPPORTED,
// no processes on a MIG parent, INSUFFICIENT_SIZE, a GPU lost mid-run), and what happens without NVML.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "cgroup_monitor/gpu_sampler.hpp"

using namespace bc::gpu;

namespace {

constexpr unsigned long long kGiB = 1ULL << 30;

// Writes the script, points the fake at it, and opens the sampler on `library`.
class GpuSamplerTest : public ::testing::Test {
 protected:
  std::unique_ptr<Sampler> open(const std::string& script, const std::string& library = FAKE_NVML) {
    std::ofstream(path_) << script;
    setenv("BC_FAKE_NVML_SCRIPT", path_.c_str(), 1);
    step(0);
    return Sampler::open(library, why_);
  }
  // The fake's sampling step (its own function, found in the library the sampler loaded).
  void step(unsigned int n) {
    void* lib = dlopen(FAKE_NVML, RTLD_NOW | RTLD_NOLOAD);
    if (!lib) lib = dlopen(FAKE_NVML, RTLD_NOW);
    ASSERT_TRUE(lib);
    auto* set = reinterpret_cast<void (*)(unsigned int)>(dlsym(lib, "bc_fake_nvml_step"));
    ASSERT_TRUE(set);
    set(n);
    dlclose(lib);
  }
  void TearDown() override { unlink(path_.c_str()); }

  std::string path_ = "/tmp/bc-fake-nvml-" + std::to_string(getpid()) + ".script";
  std::string why_;
};

const ProcessSample* process(const Sample& s, uint32_t pid) {
  for (const auto& p : s.processes)
    if (p.pid == pid) return &p;
  return nullptr;
}

// Two GPUs whose NVML index and minor number differ, the trap that had jobstats report the wrong GPU.
const char* kTwoGpus = R"(
gpu 0 3 GPU-aaaa 85899345920
gpu 1 0 GPU-bbbb 85899345920
util 0 10
util 1 97
used 0 1073741824
used 1 34359738368
power 0 70000
power 1 310000
proc 1 4242 34359738368 95
proc 0 777 1073741824 4
step 1
util 1 50
proc 1 4242 17179869184 45
proc 1 4243 1073741824 2
)";

}  // namespace

TEST_F(GpuSamplerTest, AJobsGpusAreFoundByMinorNumberNotByIndex) {
  auto s = open(kTwoGpus);
  ASSERT_TRUE(s) << why_;
  ASSERT_EQ(s->devices().size(), 2U);
  EXPECT_EQ(s->devices()[0].uuid, "GPU-aaaa");
  EXPECT_EQ(s->devices()[0].minor, 3U);
  EXPECT_EQ(s->devices()[1].minor, 0U);
  EXPECT_EQ(s->devices()[1].memory_total, 80 * kGiB);
  // Slurm gave the job /dev/nvidia0: NVML's GPU 1.
  const auto mine = s->devices_of({0});
  ASSERT_EQ(mine, std::vector<size_t>{1});
  Sample first = s->sample(mine);
  ASSERT_EQ(first.devices.size(), 1U);
  EXPECT_EQ(first.devices[0].device, 1U);
  EXPECT_EQ(first.devices[0].util_percent, 97U);
  EXPECT_EQ(first.devices[0].memory_used, 32 * kGiB);
  EXPECT_EQ(first.devices[0].power_mw, 310000U);
  ASSERT_EQ(first.processes.size(), 1U) << "only the processes of the job's GPU";
  EXPECT_EQ(first.processes[0].pid, 4242U);
  EXPECT_EQ(first.processes[0].memory_used, 32 * kGiB);
  EXPECT_EQ(first.processes[0].sm_percent, 95U);

  step(1);
  Sample second = s->sample(mine);
  EXPECT_EQ(second.devices.at(0).util_percent, 50U);
  ASSERT_TRUE(process(second, 4242));
  EXPECT_EQ(process(second, 4242)->memory_used, 16 * kGiB);
  EXPECT_EQ(process(second, 4242)->sm_percent, 45U) << "the newest sample since the last call";
  ASSERT_TRUE(process(second, 4243));
  EXPECT_EQ(process(second, 4243)->sm_percent, 2U);
  // Nothing newer since: the figures are there, the SM shares are not (NVML answers NOT_FOUND).
  Sample third = s->sample(mine);
  ASSERT_TRUE(process(third, 4242));
  EXPECT_FALSE(process(third, 4242)->sm_percent);
  EXPECT_EQ(s->lost_devices(), 0U);
}

TEST_F(GpuSamplerTest, CallsADeviceDoesNotSupportLeaveOnlyThatFigureOut) {
  auto s = open(std::string(kTwoGpus) + "step 0\npower 1 unsupported\nputil 1 unsupported\nutil 1 unsupported\n");
  ASSERT_TRUE(s) << why_;
  Sample got = s->sample({1});
  ASSERT_EQ(got.devices.size(), 1U);
  EXPECT_FALSE(got.devices[0].power_mw);
  EXPECT_FALSE(got.devices[0].util_percent);
  EXPECT_EQ(got.devices[0].memory_used, 32 * kGiB);
  ASSERT_TRUE(process(got, 4242));
  EXPECT_EQ(process(got, 4242)->memory_used, 32 * kGiB);
  EXPECT_FALSE(process(got, 4242)->sm_percent);
}

TEST_F(GpuSamplerTest, AGpuInMigModeIsReportedAsItsInstances) {
  auto s = open(R"(
gpu 0 0 GPU-mmmm 85899345920 mig
mig 0 1 MIG-1111 10737418240
mig 0 2 MIG-2222 21474836480
used 0/1 1073741824
used 0/2 2147483648
proc 0/1 100 1073741824
proc 0/2 200 2147483648
)");
  ASSERT_TRUE(s) << why_;
  ASSERT_EQ(s->devices().size(), 3U);
  EXPECT_TRUE(s->devices()[0].mig_parent);
  EXPECT_EQ(s->devices()[1].uuid, "MIG-1111");
  EXPECT_EQ(s->devices()[1].parent_uuid, "GPU-mmmm");
  EXPECT_EQ(s->devices()[2].memory_total, 20 * kGiB);
  const auto mine = s->devices_of({0});
  EXPECT_EQ(mine, (std::vector<size_t>{1, 2})) << "the instances, not the parent";
  EXPECT_EQ(s->all_devices(), mine);
  Sample got = s->sample(mine);
  ASSERT_EQ(got.devices.size(), 2U);
  EXPECT_FALSE(got.devices[0].util_percent) << "NVML has no utilisation for an instance";
  EXPECT_EQ(got.devices[1].memory_used, 2 * kGiB);
  ASSERT_TRUE(process(got, 100) && process(got, 200));
  EXPECT_EQ(process(got, 100)->device, 1U);
  EXPECT_EQ(process(got, 200)->device, 2U);
  // The parent itself lists no process: asked for it, the sampler finds none there.
  EXPECT_TRUE(s->sample({0}).processes.empty());
}

TEST_F(GpuSamplerTest, AGpuLostMidRunIsLeftOutAndCountedOnce) {
  auto s = open(std::string(kTwoGpus) + "step 2\nlost 1\n");
  ASSERT_TRUE(s) << why_;
  EXPECT_EQ(s->sample({0, 1}).devices.size(), 2U);
  step(2);
  Sample after = s->sample({0, 1});
  ASSERT_EQ(after.devices.size(), 1U);
  EXPECT_EQ(after.devices[0].device, 0U);
  EXPECT_FALSE(process(after, 4242));
  EXPECT_TRUE(process(after, 777)) << "the other GPU goes on";
  EXPECT_EQ(s->lost_devices(), 1U);
  s->sample({0, 1});
  EXPECT_EQ(s->lost_devices(), 1U) << "not asked again, not counted again";
}

TEST_F(GpuSamplerTest, MoreProcessesThanTheFirstBufferAreAllListed) {
  std::string script = "gpu 0 0 GPU-aaaa 85899345920\n";
  for (int pid = 1000; pid < 1150; ++pid) script += "proc 0 " + std::to_string(pid) + " 1048576 1\n";
  auto s = open(script);
  ASSERT_TRUE(s) << why_;
  Sample got = s->sample({0});
  EXPECT_EQ(got.processes.size(), 150U) << "NVML answers INSUFFICIENT_SIZE with the count it needs";
  EXPECT_TRUE(process(got, 1149) && process(got, 1149)->sm_percent == 1U);
}

TEST_F(GpuSamplerTest, OlderDriversProcessListIsReadWithItsOwnLayout) {
  auto s = open(kTwoGpus, FAKE_NVML_V1);
  ASSERT_TRUE(s) << why_;
  Sample got = s->sample({0, 1});
  ASSERT_TRUE(process(got, 4242) && process(got, 777));
  EXPECT_EQ(process(got, 4242)->memory_used, 32 * kGiB);
  EXPECT_EQ(process(got, 777)->memory_used, kGiB);
}

TEST_F(GpuSamplerTest, WithoutNvmlOrWithoutADriverThereIsNoSamplerAndAReason) {
  EXPECT_FALSE(open(kTwoGpus, "/nonexistent/libnvidia-ml.so.1"));
  EXPECT_NE(why_.find("/nonexistent/libnvidia-ml.so.1"), std::string::npos) << why_;
  EXPECT_FALSE(open(kTwoGpus, "libc.so.6"));
  EXPECT_NE(why_.find("has no nvmlInit_v2"), std::string::npos) << why_;
  EXPECT_FALSE(open("init 9\n"));
  EXPECT_EQ(why_, "NVML did not start: Driver Not Loaded (9)");
  EXPECT_FALSE(open("# a node without GPUs\n"));
  EXPECT_EQ(why_, "NVML lists no GPU");
}

TEST(GpuMinorList, SlurmsListsAreRead) {
  EXPECT_EQ(parse_minor_list("0"), std::vector<uint32_t>{0});
  EXPECT_EQ(parse_minor_list("3,0-2,2"), (std::vector<uint32_t>{0, 1, 2, 3}));
  for (const char* bad : {"", ",", "1,", "a", "2-1", "0-5000", "1 2", "-1"}) EXPECT_FALSE(parse_minor_list(bad)) << bad;
}
