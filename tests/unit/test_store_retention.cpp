// Retention per resolution: from the config file and the environment, measured from each job's latest
// data, applied incrementally by writers and by the sweep.
#include <gtest/gtest.h>

#include <algorithm>

#include <cstdlib>
#include <fstream>

#include "store_test_util.hpp"

using namespace bc::store;
using namespace bc::store::testing;

namespace {

const char* const kEnvKeys[] = {"BC_RETENTION_SECONDS", "BC_RETENTION_MINUTES", "BC_RETENTION_HOURS",
                                "BC_RETENTION_DAYS"};

// Clears BC_RETENTION_* for the test and restores nothing: tests set what they need.
struct CleanEnv {
  CleanEnv() {
    for (const char* k : kEnvKeys) unsetenv(k);
  }
  ~CleanEnv() {
    for (const char* k : kEnvKeys) unsetenv(k);
  }
};

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const StoreError& e) {
    return e.what();
  }
  return "";
}

Batch tick(uint64_t job, int64_t t, uint64_t cpu, std::vector<uint32_t> series) {
  Batch b;
  b.job.job_id = job;
  b.job.node = "n1";
  for (uint32_t s : series) {
    Sample sample{s, t, cpu, 4096, 0, 0};
    if (s == 0) {
      b.job_sample = sample;
    } else {
      ProcessUpdate u;
      u.record.pid = 100 + s;
      u.record.start_ticks = s;
      u.record.series_id = s;
      u.sample = sample;
      b.processes.push_back(u);
    }
  }
  return b;
}

// Writes `hours` of a job, one tick every `step` seconds, series 0 and 1.
int64_t write_job(Store& store, uint64_t job, int64_t t0, int64_t hours, int64_t step) {
  int64_t t = t0;
  uint64_t cpu = 0;
  for (; t < t0 + hours * 3600; t += step) {
    cpu += static_cast<uint64_t>(step) * 500'000'000ULL;
    Batch b = tick(job, t, cpu, {0, 1});
    store.write_batch(b);
  }
  return t - step;  // the latest sample
}

SeriesData query(Store& store, uint64_t job, uint32_t series, std::optional<Resolution> r, int64_t from = 0) {
  SeriesQuery q;
  q.job_id = job;
  q.node = "n1";
  q.series_id = series;
  q.from_s = from;
  q.resolution = r;
  return store.query_series(q);
}

uint64_t entries(const StoreStats& s, const std::string& table) {
  for (const auto& t : s.tables)
    if (t.name == table) return t.entries;
  ADD_FAILURE() << "no table " << table;
  return 0;
}

// Everything older than each resolution's window is gone, everything newer is there.
void expect_windows(Store& store, uint64_t job, int64_t t0, int64_t latest, int64_t step, const Retention& ret) {
  for (int i = 0; i < kResolutions; ++i) {
    const auto r = static_cast<Resolution>(i);
    const int64_t w = bucket_seconds(r), keep = ret.of(r);
    auto got = query(store, job, 1, r).buckets;
    ASSERT_FALSE(got.empty()) << resolution_name(r);
    // The oldest bucket still overlaps the window; the one before it would not have.
    const int64_t window_start = keep ? latest - keep : t0;
    EXPECT_GT(got.front().start_s + w, window_start) << resolution_name(r);
    // Every bucket with data inside the window is present: count them.
    int64_t expected = 0;
    int64_t last_bucket = INT64_MIN;
    for (int64_t t = t0; t <= latest; t += step) {
      const int64_t b = t - t % w;
      if (b + w > window_start && b != last_bucket) {
        ++expected;
        last_bucket = b;
      }
    }
    EXPECT_EQ(static_cast<int64_t>(got.size()), expected) << resolution_name(r);
    EXPECT_EQ(got.back().start_s, latest - latest % w) << resolution_name(r);
  }
  // Physically: the tables hold no more than the windows plus one chunk of granularity.
  StoreStats s = store.stats();
  const uint64_t series = 2;
  EXPECT_LE(entries(s, "series_s"), (static_cast<uint64_t>(ret.seconds) / 60 + 2) * series);
  EXPECT_LE(entries(s, "series_m"), (static_cast<uint64_t>(ret.minutes) / 3600 + 2) * series);
  EXPECT_LE(entries(s, "series_h"), (static_cast<uint64_t>(ret.hours) / 86400 + 2) * series);
  CheckReport check = store.check();
  EXPECT_TRUE(check.ok()) << (check.problems.empty() ? "" : check.problems.front());
}

}  // namespace

TEST(StoreConfig, ParsesKeysCommentsAndBlanks) {
  Retention r = parse_store_config(
                    "# bubble-chamber store\n\nBC_RETENTION_SECONDS = 600  # ten minutes\nBC_RETENTION_DAYS=0\r\n"
                    "BC_RETENTION_HOURS=345600\n",
                    "test.conf")
                    .retention;
  EXPECT_EQ(r.seconds, 600);
  EXPECT_EQ(r.minutes, 172800);  // default kept
  EXPECT_EQ(r.hours, 345600);
  EXPECT_EQ(r.days, 0);
}

TEST(StoreConfig, RejectsUnknownKeysAndBadValuesClearly) {
  std::string e = error_of([] { parse_store_config("BC_RETENTION_SECONDS=60\nretention_weeks=3\n", "/etc/x.conf"); });
  EXPECT_NE(e.find("/etc/x.conf:2"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key 'retention_weeks'"), std::string::npos) << e;
  e = error_of([] { parse_store_config("BC_RETENTION_MINUTES=2d\n", "f"); });
  EXPECT_NE(e.find("f:1: BC_RETENTION_MINUTES: '2d' is not a whole number of seconds"), std::string::npos) << e;
  e = error_of([] { parse_store_config("BC_RETENTION_HOURS=-5\n", "f"); });
  EXPECT_NE(e.find("not a whole number"), std::string::npos) << e;
  e = error_of([] { parse_store_config("BC_RETENTION_SECONDS\n", "f"); });
  EXPECT_NE(e.find("expected KEY=VALUE"), std::string::npos) << e;
  e = error_of([] { parse_store_config("BC_RETENTION_SECONDS=\n", "f"); });
  EXPECT_NE(e.find("empty value"), std::string::npos) << e;
  // A coarser resolution kept for less time than a finer one cannot be rolled up correctly.
  e = error_of([] { parse_store_config("BC_RETENTION_MINUTES=600\n", "f"); });
  EXPECT_NE(e.find("BC_RETENTION_MINUTES=600 is shorter than BC_RETENTION_SECONDS=3600"), std::string::npos) << e;
  e = error_of([] { parse_store_config("BC_RETENTION_HOURS=0\nBC_RETENTION_DAYS=864000\n", "f"); });
  EXPECT_NE(e.find("BC_RETENTION_DAYS=864000 is shorter than BC_RETENTION_HOURS=0"), std::string::npos) << e;
  e = error_of([] { parse_store_config("BC_RETENTION_SECONDS=30\n", "f"); });
  EXPECT_NE(e.find("under a minute"), std::string::npos) << e;
}

TEST(StoreConfig, EnvironmentOverridesTheFileAndOptionsOverrideBoth) {
  CleanEnv env;
  TempDir dir;
  { std::ofstream(dir.file("store.conf")) << "BC_RETENTION_SECONDS=600\nBC_RETENTION_MINUTES=7200\n"; }
  OpenOptions o = test_options();
  o.retention.reset();
  o.config_path = dir.file("store.conf");
  EXPECT_EQ(Store::open(dir.store(), o)->retention(), (Retention{600, 7200, 10368000, 0}));
  setenv("BC_RETENTION_SECONDS", "300", 1);
  EXPECT_EQ(Store::open(dir.store(), o)->retention(), (Retention{300, 7200, 10368000, 0}));
  o.retention = Retention{120, 120, 120, 0};
  EXPECT_EQ(Store::open(dir.store(), o)->retention(), (Retention{120, 120, 120, 0}));
  // A missing file is the defaults; a bad environment value is an error naming the variable.
  o.retention.reset();
  o.config_path = dir.file("absent.conf");
  unsetenv("BC_RETENTION_SECONDS");
  EXPECT_EQ(Store::open(dir.store(), o)->retention(), Retention{});
  setenv("BC_RETENTION_HOURS", "ten", 1);
  std::string e = error_of([&] { Store::open(dir.store(), o); });
  EXPECT_NE(e.find("environment: BC_RETENTION_HOURS: 'ten'"), std::string::npos) << e;
  unsetenv("BC_RETENTION_HOURS");
  { std::ofstream(dir.file("bad.conf")) << "BC_RETENTION_SECOND=600\n"; }
  o.config_path = dir.file("bad.conf");
  e = error_of([&] { Store::open(dir.store(), o); });
  EXPECT_NE(e.find("bad.conf:1: unknown key 'BC_RETENTION_SECOND'"), std::string::npos) << e;
}

TEST(StoreRetention, WindowsFromEnvironmentVariables) {
  CleanEnv env;
  setenv("BC_RETENTION_SECONDS", "120", 1);
  setenv("BC_RETENTION_MINUTES", "7200", 1);
  setenv("BC_RETENTION_HOURS", "86400", 1);
  setenv("BC_RETENTION_DAYS", "0", 1);
  TempDir dir;
  OpenOptions o = test_options();
  o.retention.reset();
  auto store = Store::open(dir.store(), o);
  const Retention ret{120, 7200, 86400, 0};
  ASSERT_EQ(store->retention(), ret);
  const int64_t t0 = 1'800'000'000 - 1'800'000'000 % 86400 - 3 * 3600;  // 3 h before midnight
  const int64_t latest = write_job(*store, 1, t0, 30, 10);
  expect_windows(*store, 1, t0, latest, 10, ret);
}

TEST(StoreRetention, WindowsFromTheConfigFile) {
  CleanEnv env;
  TempDir dir;
  {
    std::ofstream(dir.file("store.conf")) << "BC_RETENTION_SECONDS=300\nBC_RETENTION_MINUTES=3600\n"
                                             "BC_RETENTION_HOURS=21600\nBC_RETENTION_DAYS=172800\n";
  }
  OpenOptions o = test_options();
  o.retention.reset();
  o.config_path = dir.file("store.conf");
  auto store = Store::open(dir.store(), o);
  const Retention ret{300, 3600, 21600, 172800};
  ASSERT_EQ(store->retention(), ret);
  const int64_t t0 = 1'800'000'000 - 1'800'000'000 % 86400 - 3600;
  const int64_t latest = write_job(*store, 1, t0, 4 * 24, 30);
  expect_windows(*store, 1, t0, latest, 30, ret);
  // Days too have a window now.
  auto days = query(*store, 1, 1, Resolution::Day).buckets;
  EXPECT_LE(days.size(), 3u);
  EXPECT_GT(days.front().start_s + 86400, latest - 172800);
}

TEST(StoreRetention, AgeIsMeasuredAgainstTheJobsOwnLatestData) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options(Retention{}));  // the defaults: 1 h of seconds
  const int64_t t0 = 1'800'000'000;
  const int64_t a_latest = write_job(*store, 1, t0, 2, 1);  // job 1: two hours, then it ends
  // Job 2 runs for five more hours on the same node.
  write_job(*store, 2, a_latest + 1, 5, 5);
  store->sweep(UINT64_MAX);
  auto seconds = query(*store, 1, 1, Resolution::Second).buckets;
  ASSERT_EQ(seconds.size(), 3601u);  // its last hour, both ends included
  EXPECT_EQ(seconds.front().start_s, a_latest - 3600);
  EXPECT_EQ(seconds.back().start_s, a_latest);
  // The last hour of job 2 is also there, and nothing older.
  auto b = query(*store, 2, 1, Resolution::Second).buckets;
  ASSERT_FALSE(b.empty());
  EXPECT_GE(b.front().start_s, b.back().start_s - 3600);
  EXPECT_TRUE(store->check().ok());
}

TEST(StoreRetention, StoreChoosesTheFinestResolutionThatHoldsTheWindow) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options(Retention{3600, 7200, 86400, 0}));
  const int64_t t0 = 1'800'000'000;
  const int64_t latest = write_job(*store, 1, t0, 30, 20);
  EXPECT_EQ(query(*store, 1, 1, std::nullopt, latest - 600).resolution, Resolution::Second);
  EXPECT_EQ(query(*store, 1, 1, std::nullopt, latest - 3500).resolution, Resolution::Second);
  EXPECT_EQ(query(*store, 1, 1, std::nullopt, latest - 5000).resolution, Resolution::Minute);
  EXPECT_EQ(query(*store, 1, 1, std::nullopt, latest - 20000).resolution, Resolution::Hour);
  EXPECT_EQ(query(*store, 1, 1, std::nullopt, t0).resolution, Resolution::Day);
  EXPECT_EQ(query(*store, 1, 1, std::nullopt, 0).resolution, Resolution::Day);  // the whole job
  // Asked for, a resolution is used even when it holds less.
  auto s = query(*store, 1, 1, Resolution::Second, t0);
  EXPECT_EQ(s.resolution, Resolution::Second);
  EXPECT_GE(s.buckets.front().start_s, latest - 3600);
  // A job known for less than the window: the finest resolution that holds all of it.
  const int64_t t1 = latest + 100000;
  write_job(*store, 2, t1, 1, 10);
  EXPECT_EQ(query(*store, 2, 1, std::nullopt, 0).resolution, Resolution::Second);
}

TEST(StoreRetention, IdleSeriesAreSealedAndExpiredToo) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options(Retention{}));
  const int64_t t0 = 1'800'000'000 - 1'800'000'000 % 60;
  uint64_t cpu = 0;
  // Series 1 runs for 10 minutes and 30 s, then goes quiet; series 0 goes on for two hours.
  for (int64_t t = t0; t < t0 + 7200; ++t) {
    cpu += 10'000'000;
    Batch b = tick(1, t, cpu, t < t0 + 630 ? std::vector<uint32_t>{0, 1} : std::vector<uint32_t>{0});
    store->write_batch(b);
  }
  const int64_t latest = t0 + 7199;
  // Physically left at second resolution: series 0's chunks that still reach into the last hour, and
  // nothing of series 1 (its open half minute was sealed, then expired).
  uint64_t expected = 0;
  for (int64_t t = t0; t <= latest; ++t)
    if (t - t % 60 + 60 > latest - 3600) ++expected;
  EXPECT_EQ(store->stats().samples_second, expected);
  EXPECT_TRUE(query(*store, 1, 1, Resolution::Second).buckets.empty());
  auto minutes = query(*store, 1, 1, Resolution::Minute).buckets;
  ASSERT_EQ(minutes.size(), 11u);
  EXPECT_EQ(minutes.back().samples, 30u);
  EXPECT_TRUE(store->check().ok());
}

TEST(StoreRetention, SweepExpiresFinishedJobsInBoundedSteps) {
  TempDir dir;
  const int64_t t0 = 1'800'000'000;
  {
    auto store = Store::open(dir.store(), test_options(Retention{0, 0, 0, 0}));  // keep everything
    write_job(*store, 1, t0, 3, 1);
    write_job(*store, 2, t0, 1, 1);
  }
  // The retention is shortened: nothing writes job 1 or 2 again, the sweep catches up.
  auto store = Store::open(dir.store(), test_options(Retention{600, 3600, 86400, 0}));
  auto chunks = [&] {
    StoreStats st = store->stats();
    return entries(st, "series_s") + entries(st, "series_m") + entries(st, "series_h") + entries(st, "series_d");
  };
  const uint64_t before = chunks();
  SweepReport first = store->sweep(100);
  EXPECT_LE(first.chunks_deleted, 100u);
  EXPECT_GT(first.chunks_deleted, 0u);
  EXPECT_FALSE(first.complete);
  SweepReport rest = store->sweep(UINT64_MAX);
  EXPECT_TRUE(rest.complete);
  const uint64_t after = chunks();
  EXPECT_EQ(before - after, first.chunks_deleted + rest.chunks_deleted);
  EXPECT_LE(entries(store->stats(), "series_s"), 2 * 2 * (600 / 60 + 2));
  auto seconds = query(*store, 1, 1, Resolution::Second).buckets;
  ASSERT_FALSE(seconds.empty());
  EXPECT_EQ(seconds.back().start_s - seconds.front().start_s, 600);
  EXPECT_TRUE(store->check().ok());
  EXPECT_EQ(store->sweep(UINT64_MAX).chunks_deleted, 0u);
}

// bcd writes a request's batches in one transaction, all but the first through the store's hook: a late
// sample dropped in one of those is counted as well.
TEST(StoreRetention, LateSamplesDroppedInAGroupedWriteAreCounted) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options(Retention{}));
  const int64_t t0 = 1'800'000'000;
  const int64_t latest = write_job(*store, 1, t0, 2, 10);
  std::vector<Batch> group = {tick(1, latest + 10, 1, {1}), tick(1, latest - 5000, 1, {1}),
                              tick(1, latest - 5001, 1, {1})};
  auto applied = store->write_batches_once(group, {{"n1", 1, 5, 1}, {"n1", 1, 5, 2}, {"n1", 1, 5, 3}});
  EXPECT_EQ(std::count(applied.begin(), applied.end(), true), 3);
  EXPECT_EQ(store->stats().dropped_late_samples, 2u);
}

TEST(StoreRetention, LateSamplesOlderThanTheWindowAreDropped) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options(Retention{}));
  const int64_t t0 = 1'800'000'000;
  const int64_t latest = write_job(*store, 1, t0, 2, 10);
  Batch late = tick(1, latest - 5000, 1, {1});
  store->write_batch(late);
  EXPECT_EQ(store->stats().dropped_late_samples, 1u);
  Batch ok = tick(1, latest - 1000, 1, {1});  // inside the window: put in place
  store->write_batch(ok);
  EXPECT_EQ(store->stats().dropped_late_samples, 1u);
  auto raw = store->series(1, "n1", 1, latest - 1001, latest - 999);
  ASSERT_EQ(raw.size(), 1u);
  EXPECT_EQ(raw[0].cpu_ns, 1u);
  EXPECT_TRUE(store->check().ok());
}

TEST(StoreRetention, AJobRecordBeforeAnySampleDoesNotConfuseQueries) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options(Retention{}));
  Batch empty;
  empty.job.job_id = 1;
  empty.job.node = "n1";  // a monitor's first record, before it could read anything
  store->write_batch(empty);
  EXPECT_EQ(query(*store, 1, 0, std::nullopt).resolution, Resolution::Second);
  EXPECT_TRUE(query(*store, 1, 0, std::nullopt).buckets.empty());
  const int64_t t0 = 1'800'000'000;
  write_job(*store, 1, t0, 1, 10);
  // The job's data starts at t0, not at the empty record: the whole job still fits in the seconds.
  auto all = query(*store, 1, 0, std::nullopt);
  EXPECT_EQ(all.resolution, Resolution::Second);
  EXPECT_EQ(all.buckets.size(), 360u);
  EXPECT_EQ(query(*store, 1, 0, Resolution::Day).buckets.size(), 1u);
}
