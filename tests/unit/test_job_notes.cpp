// The efficiency notes (accounting_db/job_notes.hpp): each on a job made to call for it, none on a job that
// used what it asked for, and the thresholds file.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "accounting_db/job_notes.hpp"

using namespace bc;

namespace {

constexpr int64_t kStart = 1'800'000'000'000;

// A job of `cpus` CPUs and `mem` bytes that ran `seconds` and used `cpu_s` seconds of CPU in one process
// with `threads` threads.
job::JobData job_of(uint32_t cpus, uint64_t mem, int64_t seconds, double cpu_s, uint32_t threads, uint64_t rss) {
  job::JobData d;
  store::JobRecord j;
  j.job_id = 9;
  j.node = "n1";
  j.user = "ann";
  j.start_ms = kStart;
  j.end_ms = kStart + seconds * 1000;
  j.alloc_cpus = cpus;
  j.mem_limit_bytes = mem;
  j.has_cgroup_cpu = true;
  j.cgroup_cpu_ns = static_cast<uint64_t>(cpu_s * 1e9);
  j.max_rss_sum = rss;
  d.nodes.push_back(j);
  store::ProcessRecord p;
  p.job_id = 9;
  p.node = "n1";
  p.pid = 100;
  p.start_ticks = 1;
  p.command = "solver";
  p.start_ms = kStart;
  p.end_ms = j.end_ms;
  p.cpu_ns = j.cgroup_cpu_ns;
  p.max_threads = threads;
  p.max_rss = rss;
  d.processes.push_back(p);
  return d;
}

std::vector<job::Note> notes_of(const job::JobData& d, const job::NoteThresholds& limits = {},
                                const job::TotalSeries& series = {}) {
  return job::job_notes(d, job::compute_totals(d), series, limits, kStart + 86'400'000);
}

std::vector<std::string> ids(const std::vector<job::Note>& notes) {
  std::vector<std::string> out;
  for (const auto& n : notes) out.push_back(n.id);
  return out;
}

const job::Note* find(const std::vector<job::Note>& notes, const std::string& id) {
  for (const auto& n : notes)
    if (n.id == id) return &n;
  return nullptr;
}

constexpr uint64_t kGiB = 1ULL << 30;

}  // namespace

TEST(JobNotes, AWellBehavedJobGetsNone) {
  // 8 CPUs busy for the whole hour with 8 threads, using 6 of 8 GiB.
  const auto d = job_of(8, 8 * kGiB, 3600, 8 * 3600 * 0.95, 8, 6 * kGiB);
  EXPECT_TRUE(notes_of(d).empty()) << notes_of(d).front().text;
}

TEST(JobNotes, CpuEfficiencyAgainstTheAllocation) {
  const auto d = job_of(32, 0, 600, 600 * 1.0, 32, kGiB);  // 1 CPU's worth of 32
  const auto notes = notes_of(d);
  const job::Note* n = find(notes, "cpu_efficiency");
  ASSERT_TRUE(n) << ::testing::PrintToString(ids(notes));
  EXPECT_NE(n->text.find("used 1.0 of its 32 allocated CPUs"), std::string::npos) << n->text;
  EXPECT_NE(n->text.find("3.1%"), std::string::npos) << n->text;
  // Too short to judge below the threshold's minimum run time.
  EXPECT_FALSE(find(notes_of(job_of(32, 0, 30, 30, 32, kGiB)), "cpu_efficiency"));
}

TEST(JobNotes, MemoryPeakAgainstTheRequestAndTheLimit) {
  auto notes = notes_of(job_of(4, 32 * kGiB, 600, 2300, 4, kGiB + kGiB / 5));
  const job::Note* low = find(notes, "memory_low");
  ASSERT_TRUE(low) << ::testing::PrintToString(ids(notes));
  EXPECT_NE(low->text.find("1.20G, 3.7% of the 32G requested"), std::string::npos) << low->text;
  notes = notes_of(job_of(4, 4 * kGiB, 600, 2300, 4, 4 * kGiB - kGiB / 10));
  const job::Note* high = find(notes, "memory_high");
  ASSERT_TRUE(high) << ::testing::PrintToString(ids(notes));
  EXPECT_NE(high->text.find("98% of the 4G limit"), std::string::npos) << high->text;
  // A small limit is no waste worth a note.
  EXPECT_FALSE(find(notes_of(job_of(4, kGiB / 2, 600, 2300, 4, kGiB / 100)), "memory_low"));
}

TEST(JobNotes, OneThreadOnAMultiCpuAllocation) {
  const auto notes = notes_of(job_of(16, 0, 600, 600, 1, kGiB));
  const job::Note* n = find(notes, "single_thread");
  ASSERT_TRUE(n) << ::testing::PrintToString(ids(notes));
  EXPECT_NE(n->text.find("1 thread, on 16 allocated CPUs for 1 task"), std::string::npos) << n->text;
  // Threads seen: no note, though the CPU note stays.
  EXPECT_FALSE(find(notes_of(job_of(16, 0, 600, 600, 4, kGiB)), "single_thread"));
  // One process doing everything on one thread of 16 CPUs, among others that waited.
  auto d = job_of(16, 0, 600, 600, 1, kGiB);
  store::ProcessRecord waiting = d.processes.front();
  waiting.pid = 101;
  waiting.cpu_ns = 1'000'000'000;
  waiting.command = "mpirun";
  d.processes.push_back(waiting);
  d.nodes.front().cgroup_cpu_ns += waiting.cpu_ns;
  const auto with_waiting = notes_of(d);
  const job::Note* one = find(with_waiting, "one_process");
  ASSERT_TRUE(one);
  EXPECT_NE(one->text.find("PID 100 (solver) used 100%"), std::string::npos) << one->text;
}

TEST(JobNotes, ARankTheOthersWaitedFor) {
  auto d = job_of(4, 0, 600, 0, 1, kGiB);
  d.processes.clear();
  const double cpu_s[] = {100, 110, 90, 400};
  uint64_t sum = 0;
  for (uint32_t rank = 0; rank < 4; ++rank) {
    store::ProcessRecord p;
    p.node = "n1";
    p.pid = 200 + rank;
    p.step = 0;
    p.task = rank;
    p.command = "a.out";
    p.start_ms = kStart;
    p.end_ms = kStart + 600'000;
    p.cpu_ns = static_cast<uint64_t>(cpu_s[rank] * 1e9);
    p.max_threads = 1;
    sum += p.cpu_ns;
    d.processes.push_back(p);
  }
  d.nodes.front().cgroup_cpu_ns = sum;
  const auto notes = notes_of(d);
  const job::Note* n = find(notes, "rank_imbalance");
  ASSERT_TRUE(n) << ::testing::PrintToString(ids(notes));
  EXPECT_NE(n->text.find("rank 3 of step 0 used 2.3x the CPU of the average rank (400.0 s against 175.0 s)"),
            std::string::npos)
      << n->text;
  d.processes[3].cpu_ns = d.processes[1].cpu_ns;  // balanced
  EXPECT_FALSE(find(notes_of(d), "rank_imbalance"));
}

TEST(JobNotes, AForkStorm) {
  auto d = job_of(2, 0, 600, 1000, 2, kGiB);
  for (uint32_t i = 0; i < 600; ++i) {
    store::ProcessRecord p;
    p.node = "n1";
    p.pid = 1000 + i;
    p.command = "grep";
    p.start_ms = kStart + i * 900;
    p.end_ms = p.start_ms + 20;
    p.cpu_ns = 10'000'000;
    d.processes.push_back(p);
  }
  const auto notes = notes_of(d);
  const job::Note* n = find(notes, "fork_storm");
  ASSERT_TRUE(n) << ::testing::PrintToString(ids(notes));
  EXPECT_NE(n->text.find("600 of 601 lived less than 1 s and used 6.0 s of CPU"), std::string::npos) << n->text;
  d.processes.resize(400);  // fewer than fork_storm_min
  EXPECT_FALSE(find(notes_of(d), "fork_storm"));
}

TEST(JobNotes, IoBoundTime) {
  const auto d = job_of(4, 0, 600, 1800, 4, kGiB);
  job::TotalSeries series;
  for (int minute = 0; minute < 10; ++minute) {
    store::Rollup b;
    b.start_s = kStart / 1000 + minute * 60;
    b.width_s = 60;
    b.samples = 60;
    b.wall_s = 60;
    const bool io = minute < 3;  // 3 minutes writing 100 MB/s on 5% of the CPUs, then computing
    b.timed_cpu_ns = b.cpu_ns = io ? 12'000'000'000ULL : 240'000'000'000ULL;
    b.write_bytes = io ? 6'000'000'000ULL : 0;
    series.buckets.push_back(b);
  }
  const auto notes = notes_of(d, {}, series);
  const job::Note* n = find(notes, "io_bound");
  ASSERT_TRUE(n) << ::testing::PrintToString(ids(notes));
  EXPECT_NE(n->text.find("for 30% of the run (180 s) the job read and wrote 95.37M/s while its CPUs were 5.0% busy"),
            std::string::npos)
      << n->text;
  job::NoteThresholds strict;
  strict.io_bound_time_fraction = 0.5;
  EXPECT_FALSE(find(notes_of(d, strict, series), "io_bound"));
}

TEST(JobNotes, ThresholdsFile) {
  std::vector<std::string> errors;
  auto t =
      job::parse_note_thresholds("# site policy\nmin_elapsed_s = 300\ncpu_efficiency_low=0.3\n", "notes.conf", errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(t.min_elapsed_s, 300);
  EXPECT_DOUBLE_EQ(t.cpu_efficiency_low, 0.3);
  EXPECT_EQ(t.fork_storm_min, job::NoteThresholds{}.fork_storm_min);  // the default stands
  t = job::parse_note_thresholds("cpu_efficency_low=0.3\nmemory_low_fraction=2\nfork_storm_min=1.5\nnonsense\n",
                                 "notes.conf", errors);
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_EQ(errors[0], "notes.conf:1: unknown key 'cpu_efficency_low'");
  EXPECT_EQ(errors[1], "notes.conf:2: memory_low_fraction takes a number from 0 to 1, not '2'");
  EXPECT_NE(errors[2].find("fork_storm_min takes a whole number"), std::string::npos) << errors[2];
  EXPECT_NE(errors[3].find("not key=value"), std::string::npos) << errors[3];
  EXPECT_DOUBLE_EQ(t.memory_low_fraction, job::NoteThresholds{}.memory_low_fraction);
}

TEST(JobNotes, TheTotalSeriesMergesTheNodesBucketsOfTheSameStart) {
  auto bucket = [](int64_t start, uint64_t cpu_ns, uint64_t rss_max) {
    store::Rollup b;
    b.start_s = start;
    b.width_s = 60;
    b.samples = 60;
    b.cpu_ns = cpu_ns;
    b.rss_max = rss_max;
    return b;
  };
  job::TotalSeries series;
  series.add_node({bucket(0, 1, 10), bucket(120, 2, 20)});
  series.add_node({bucket(60, 4, 5), bucket(120, 8, 30)});
  ASSERT_EQ(series.buckets.size(), 3u);
  EXPECT_EQ(series.buckets[0].start_s, 0);
  EXPECT_EQ(series.buckets[1].start_s, 60);
  EXPECT_EQ(series.buckets[2].start_s, 120);
  EXPECT_EQ(series.buckets[2].cpu_ns, 10u);
  EXPECT_EQ(series.buckets[2].samples, 120u);
  EXPECT_EQ(series.buckets[2].rss_max, 30u);
}
