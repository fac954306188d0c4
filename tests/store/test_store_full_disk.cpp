// A store on a small tmpfs that fills up: the writer keeps going, second-resolution data is dropped
// first (loudly), minute/hour/day rollups keep coming, nothing is corrupted, and once space is back the
// store keeps seconds again. Needs root to mount the tmpfs; without it the test is skipped (exit 77).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "../unit/store_test_util.hpp"
#include "crash_model.hpp"

using namespace bc::store;
using namespace bc::store::testing;
using namespace bc::store::crash_model;

namespace {

std::string g_mount;  // the tmpfs, set by main

// Sends this process's stderr to a file while alive, so the store's log lines can be checked.
struct CaptureStderr {
  std::string path;
  int saved = -1;
  explicit CaptureStderr(std::string p) : path(std::move(p)) {
    std::fflush(stderr);
    saved = dup(2);
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    dup2(fd, 2);
    close(fd);
  }
  ~CaptureStderr() {
    std::fflush(stderr);
    dup2(saved, 2);
    close(saved);
  }
  std::string text() const {
    std::fflush(stderr);
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
};

// Fills the filesystem with a file until writes fail; returns its size.
uint64_t fill(const std::string& file) {
  int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  EXPECT_GE(fd, 0);
  std::string block(64 << 10, 'b');
  uint64_t total = 0;
  for (size_t size = block.size(); size >= 512;) {
    ssize_t n = write(fd, block.data(), size);
    if (n > 0) {
      total += static_cast<uint64_t>(n);
    } else {
      size /= 2;
    }
  }
  close(fd);
  return total;
}

uint64_t entries(Store& store, const std::string& table) {
  for (const auto& t : store.stats().tables)
    if (t.name == table) return t.entries;
  return 0;
}

}  // namespace

TEST(StoreFullDisk, DropsSecondsFirstKeepsRollupsAndNeverCorrupts) {
  const std::string path = g_mount + "/store";
  const std::string log_path = "/tmp/bc-full-disk-" + std::to_string(getpid()) + ".log";
  OpenOptions o;
  o.config_path = "";
  o.retention = Retention{0, 0, 0, 0};  // keep everything: only the disk limits the store
  o.initial_map_bytes = 2 << 20;
  o.map_growth_step_bytes = 2 << 20;
  o.disk_reserve_bytes = 1 << 20;
  constexpr int kProcs = 100;
  uint64_t failures = 0;
  double slowest = 0;
  int k = 0;
  std::string log;
  {
    CaptureStderr capture(log_path);
    auto store = Store::open(path, o);
    auto tick = [&] {
      Batch b = tick_batch(1, "n1", k++, kProcs);
      auto start = std::chrono::steady_clock::now();
      try {
        store->write_batch(b);
      } catch (const StoreError& e) {
        ++failures;  // the monitor would log and go on; the test wants none
      }
      slowest = std::max(slowest, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    };
    // Ten minutes with room to spare.
    while (k < 600) tick();
    ASSERT_EQ(failures, 0u);
    ASSERT_FALSE(store->stats().degraded);
    const uint64_t seconds_before = entries(*store, "series_s");
    ASSERT_EQ(seconds_before, 9u * (kProcs + 1));  // sealed minutes 0..8; minute 9 is open

    // Now the disk is full.
    const uint64_t ballast = fill(g_mount + "/ballast");
    ASSERT_GT(ballast, 1u << 20);
    const int full_from = k;
    // Half an hour at least; then until the store has used up the disk reserve it had taken ahead of the
    // data when the disk filled (up to disk_reserve_bytes, which how many bytes a tick writes decides), and
    // must drop: at most three hours.
    while (k < full_from + 1800 || (entries(*store, "series_s") >= seconds_before && k < full_from + 3 * 3600)) tick();
    EXPECT_EQ(failures, 0u) << "write_batch threw on a full disk";
    EXPECT_LT(slowest, 5.0) << "a batch took " << slowest << " s";
    EXPECT_TRUE(store->stats().degraded);
    EXPECT_LT(entries(*store, "series_s"), seconds_before) << "second-resolution data should have been dropped";
    // Every minute since the disk filled still has its rollup, with every sample in it.
    const int64_t t_full = kT0 + full_from;
    auto minutes =
        store->query_series({1, "n1", 1, t_full - t_full % 60 + 60, kT0 + k - 1, Resolution::Minute}).buckets;
    ASSERT_GE(minutes.size(), 29u);
    for (size_t i = 0; i + 1 < minutes.size(); ++i) EXPECT_EQ(minutes[i].samples, 60u) << "minute " << i;
    auto hours = store->query_series({1, "n1", 0, 0, INT64_MAX, Resolution::Hour}).buckets;
    uint64_t samples = 0;
    for (const auto& h : hours) samples += h.samples;
    EXPECT_EQ(samples, static_cast<uint64_t>(k));
    CheckReport check = store->check();
    EXPECT_TRUE(check.ok()) << (check.problems.empty() ? "" : check.problems.front());

    // Space comes back: after the store's next look (every 10 s) it keeps seconds again.
    ASSERT_EQ(unlink((g_mount + "/ballast").c_str()), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(10500));
    const int back_from = k;
    while (k < back_from + 300) tick();
    EXPECT_EQ(failures, 0u);
    EXPECT_FALSE(store->stats().degraded);
    auto recent = store->series(1, "n1", 3, kT0 + back_from + 60, INT64_MAX);
    EXPECT_EQ(recent.size(), 240u);
    log = capture.text();
  }
  EXPECT_NE(log.find("bubble-chamber store: DISK FULL"), std::string::npos) << log;
  EXPECT_NE(log.find("dropped the"), std::string::npos) << log;
  EXPECT_NE(log.find("disk space is back"), std::string::npos) << log;
  unlink(log_path.c_str());
  // A fresh open finds a sound store with everything written.
  auto store = Store::open(path, o);
  EXPECT_TRUE(store->check().ok());
  EXPECT_EQ(store->job(1, "n1")->sample_count, static_cast<uint64_t>(k));
}

int main(int argc, char** argv) {
  if (geteuid() != 0) {
    std::fprintf(stderr, "SKIPPED: test_store_full_disk needs root to mount a size-limited tmpfs\n");
    return 77;
  }
  char dir[] = "/tmp/bc-full-disk-XXXXXX";
  if (!mkdtemp(dir)) {
    std::fprintf(stderr, "SKIPPED: cannot make a temporary directory: %s\n", std::strerror(errno));
    return 77;
  }
  if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=12m,mode=0755") != 0) {
    std::fprintf(stderr, "SKIPPED: cannot mount a tmpfs on %s: %s\n", dir, std::strerror(errno));
    rmdir(dir);
    return 77;
  }
  g_mount = dir;
  ::testing::InitGoogleTest(&argc, argv);
  int rc = RUN_ALL_TESTS();
  umount2(dir, MNT_DETACH);
  rmdir(dir);
  return rc;
}
