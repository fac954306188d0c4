// The memory of failed BPF loads (cgroup_monitor/bpf/load_failure.hpp): its file and its key. No BPF needed.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cgroup_monitor/bpf/load_failure.hpp"

using namespace bc::events;
namespace fs = std::filesystem;

namespace {

class LoadFailureFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/bc-load-failure-XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    dir_ = templ;
    binary_ = dir_ + "/bc-monitor";
    object_ = dir_ + "/events.bpf.o";
    std::ofstream(binary_) << "a monitor binary";
    std::ofstream(object_) << "an object file";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir_, binary_, object_;
};

}  // namespace

TEST_F(LoadFailureFile, WrittenAndReadBack) {
  const std::string path = load_failure_path(dir_, binary_, "");
  ASSERT_FALSE(path.empty());
  EXPECT_EQ(path.rfind(dir_ + "/bpf-load-failed.", 0), 0u) << path;
  EXPECT_FALSE(read_load_failure(path));
  std::string error;
  ASSERT_TRUE(
      write_load_failure(path, {running_kernel(), "00000000000000aa", 1700000000, "refused\nby the verifier"}, error))
      << error;
  auto f = read_load_failure(path);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kernel, running_kernel());
  EXPECT_EQ(f->object_tag, "00000000000000aa");
  EXPECT_EQ(f->since, 1700000000);
  EXPECT_EQ(f->reason, "refused by the verifier");  // one line
  EXPECT_TRUE(load_known_to_fail(dir_, binary_, ""));
  EXPECT_EQ(utc_time_text(f->since), "2023-11-14T22:13:20Z");

  // The same refusal again keeps the time it was first seen; another object's starts anew.
  ASSERT_TRUE(write_load_failure(path, {running_kernel(), "00000000000000aa", 1800000000, "refused"}, error));
  EXPECT_EQ(read_load_failure(path)->since, 1700000000);
  ASSERT_TRUE(write_load_failure(path, {running_kernel(), "00000000000000bb", 1800000000, "refused"}, error));
  EXPECT_EQ(read_load_failure(path)->since, 1800000000);

  forget_load_failure(path);
  EXPECT_FALSE(read_load_failure(path));
  EXPECT_FALSE(load_known_to_fail(dir_, binary_, ""));
}

TEST_F(LoadFailureFile, KeyedByTheMonitorBinaryAndTheObjectFile) {
  const std::string builtin = load_failure_path(dir_, binary_, "");
  const std::string with_object = load_failure_path(dir_, binary_, object_);
  EXPECT_NE(builtin, with_object);
  // A new binary (an upgrade writes a new file) has another memory.
  std::string error;
  ASSERT_TRUE(write_load_failure(builtin, {running_kernel(), "00000000000000aa", 1, "refused"}, error));
  ASSERT_EQ(::unlink(binary_.c_str()), 0);
  std::ofstream(binary_) << "the upgraded monitor binary";
  EXPECT_NE(load_failure_path(dir_, binary_, ""), builtin);
  EXPECT_FALSE(load_known_to_fail(dir_, binary_, ""));
  // Files that cannot be looked at have no memory, and the plugin then waits as it always did.
  EXPECT_EQ(load_failure_path(dir_, dir_ + "/missing", ""), "");
  EXPECT_EQ(load_failure_path(dir_, binary_, dir_ + "/missing.o"), "");
  EXPECT_FALSE(load_known_to_fail(dir_, dir_ + "/missing", ""));
  EXPECT_FALSE(write_load_failure("", {running_kernel(), "aa", 1, "x"}, error));
}

TEST_F(LoadFailureFile, AnotherKernelOrACutFileIsNoMemory) {
  const std::string path = load_failure_path(dir_, binary_, "");
  std::string error;
  ASSERT_TRUE(write_load_failure(path, {"4.19.0 #1 SMP", "00000000000000aa", 1, "refused"}, error));
  EXPECT_TRUE(read_load_failure(path));
  EXPECT_FALSE(load_known_to_fail(dir_, binary_, "")) << "a memory of another kernel";
  std::ofstream(path) << "kernel=" << running_kernel() << "\nobject=00000000000000aa\n";  // cut before since=
  EXPECT_FALSE(read_load_failure(path));
  EXPECT_FALSE(load_known_to_fail(dir_, binary_, ""));
}
