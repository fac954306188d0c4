// Rollups against a brute-force reference: random data with gaps across minute, hour and day
// boundaries, late and duplicate samples, idle series, counter resets.
#include <gtest/gtest.h>

#include <random>

#include "store_test_util.hpp"

using namespace bc::store;
using namespace bc::store::testing;

namespace {

constexpr Resolution kAll[] = {Resolution::Second, Resolution::Minute, Resolution::Hour, Resolution::Day};
constexpr int kProcs = 4;

ProcessRecord proc(uint32_t series) {
  ProcessRecord p;
  p.pid = 100 + series;
  p.start_ticks = 1000 + series;
  p.series_id = series;  // fixed ids keep the reference simple
  p.command = "p" + std::to_string(series);
  return p;
}

struct Delivery {
  uint32_t series;
  RefPoint point;
};

Batch batch_of(uint64_t job, const std::vector<Delivery>& items) {
  Batch b;
  b.job.job_id = job;
  b.job.node = "n1";
  for (const auto& d : items) {
    Sample s{d.series, d.point.t, d.point.cpu, d.point.rss, d.point.rd, d.point.wr, d.point.threads};
    if (d.series == 0 && !b.job_sample) {
      b.job_sample = s;
    } else if (d.series == 0) {
      // A second job-total sample in one batch: not something the monitor does; carry it in the next batch.
      continue;
    } else {
      ProcessUpdate u;
      u.record = proc(d.series);
      u.sample = s;
      b.processes.push_back(u);
    }
  }
  return b;
}

void expect_matches(Store& store, uint64_t job, const std::map<uint32_t, std::map<int64_t, RefPoint>>& ref,
                    const std::string& when) {
  for (const auto& [series, points] : ref) {
    std::vector<RefPoint> sorted;
    for (const auto& [t, p] : points) sorted.push_back(p);
    for (Resolution r : kAll) {
      SeriesQuery q;
      q.job_id = job;
      q.node = "n1";
      q.series_id = series;
      q.resolution = r;
      SeriesData got = store.query_series(q);
      ASSERT_EQ(got.resolution, r);
      std::vector<Rollup> want = reference_rollup(sorted, bucket_seconds(r));
      ASSERT_EQ(got.buckets.size(), want.size()) << when << " series " << series << " " << resolution_name(r);
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_EQ(got.buckets[i], want[i])
            << when << " series " << series << " " << resolution_name(r) << " bucket " << i << "\n got  "
            << describe(got.buckets[i]) << "\n want " << describe(want[i]);
    }
    auto raw = store.series(job, "n1", series, 0, INT64_MAX);
    ASSERT_EQ(raw.size(), sorted.size()) << when << " series " << series;
    for (size_t i = 0; i < raw.size(); ++i) {
      ASSERT_EQ(raw[i].time_s, sorted[i].t);
      ASSERT_EQ(raw[i].cpu_ns, sorted[i].cpu);
      ASSERT_EQ(raw[i].rss, sorted[i].rss);
      ASSERT_EQ(raw[i].threads, sorted[i].threads);
    }
  }
}

void random_run(uint64_t seed) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  std::mt19937_64 rng(seed);
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };

  const uint64_t job = 7;
  int64_t t = 1'799'996'400 - 1800;  // half an hour before an hour boundary, 1 h before a day boundary
  std::vector<RefPoint> current(kProcs + 1);
  for (auto& c : current) c = RefPoint{0, static_cast<uint64_t>(pick(0, 5)) * 10'000'000, 1 << 20, 0, 0};
  std::vector<int64_t> idle_until(kProcs + 1, 0);
  std::map<uint32_t, std::map<int64_t, RefPoint>> ref;
  std::multimap<int, Delivery> pending;  // by the batch index they are delivered with
  std::vector<Delivery> delivered;
  const int kBatches = 4000;
  for (int k = 0; k < kBatches; ++k) {
    t += chance(0.003) ? pick(120, 30000) : (chance(0.1) ? pick(2, 5) : 1);
    std::vector<Delivery> items;
    for (uint32_t s = 0; s <= kProcs; ++s) {
      if (s != 0 && t < idle_until[s]) continue;
      if (s != 0 && chance(0.002)) idle_until[s] = t + pick(200, 3000);  // goes idle: its minute gets sealed
      if (s != 0 && chance(0.1)) continue;
      RefPoint& c = current[s];
      c.t = t;
      c.cpu +=
          static_cast<uint64_t>(pick(0, 150)) * 10'000'000 + (chance(0.05) ? static_cast<uint64_t>(pick(1, 999)) : 0);
      if (chance(0.001)) c.cpu = static_cast<uint64_t>(pick(0, 100)) * 10'000'000;  // counter restarted
      if (chance(0.3))
        c.rss = static_cast<uint64_t>(std::max<int64_t>(4096, static_cast<int64_t>(c.rss) + pick(-64, 64) * 4096));
      if (chance(0.05)) c.rss += static_cast<uint64_t>(pick(1, 1000));  // not a page multiple
      if (chance(0.1)) c.rd += static_cast<uint64_t>(pick(1, 1 << 20));
      if (chance(0.1)) c.wr += static_cast<uint64_t>(pick(1, 1 << 20));
      if (chance(0.02)) c.threads = static_cast<uint32_t>(pick(0, chance(0.1) ? UINT32_MAX : 64));
      Delivery d{s, c};
      if (chance(0.05)) {
        pending.emplace(k + static_cast<int>(pick(1, 400)), d);  // arrives late
      } else {
        items.push_back(d);
      }
    }
    for (auto it = pending.begin(); it != pending.end() && it->first <= k;) {
      items.push_back(it->second);
      it = pending.erase(it);
    }
    if (!delivered.empty() && chance(0.05)) {
      Delivery dup = delivered[static_cast<size_t>(pick(0, static_cast<int64_t>(delivered.size()) - 1))];
      if (chance(0.2)) dup.point.rss += 4096;  // a changed duplicate replaces the earlier point
      if (chance(0.1)) dup.point.threads += 1;
      items.push_back(dup);
    }
    // At most one job-total sample per batch; any other waits for the next batch.
    bool have_job_sample = false;
    std::vector<Delivery> now;
    for (const auto& d : items) {
      if (d.series == 0 && have_job_sample) {
        pending.emplace(k + 1, d);
        continue;
      }
      if (d.series == 0) have_job_sample = true;
      now.push_back(d);
    }
    Batch b = batch_of(job, now);
    ASSERT_NO_THROW(store->write_batch(b)) << "batch " << k;
    for (const auto& d : now) {
      ref[d.series][d.point.t] = d.point;
      delivered.push_back(d);
    }
    if (k % 800 == 799)
      expect_matches(*store, job, ref, "seed " + std::to_string(seed) + " batch " + std::to_string(k));
  }
  // Deliver whatever is still late.
  while (!pending.empty()) {
    std::vector<Delivery> now;
    bool have_job_sample = false;
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->second.series == 0 && have_job_sample) {
        ++it;
        continue;
      }
      if (it->second.series == 0) have_job_sample = true;
      now.push_back(it->second);
      it = pending.erase(it);
    }
    Batch b = batch_of(job, now);
    store->write_batch(b);
    for (const auto& d : now) ref[d.series][d.point.t] = d.point;
  }
  expect_matches(*store, job, ref, "seed " + std::to_string(seed) + " end");
  CheckReport check = store->check();
  EXPECT_TRUE(check.ok()) << (check.problems.empty() ? "" : check.problems.front());
  EXPECT_GT(check.chunks, 100u);
  EXPECT_EQ(store->stats().dropped_late_samples, 0u);
  // The same data again changes nothing (idempotent on (series, time)).
  SeriesQuery q{job, "n1", 2, 0, INT64_MAX, Resolution::Hour};
  auto before = store->query_series(q).buckets;
  for (const auto& [series, points] : ref) {
    std::vector<Delivery> again;
    for (const auto& [pt, p] : points)
      if (series != 0 && again.size() < 300) again.push_back({series, p});
    Batch b = batch_of(job, again);
    store->write_batch(b);
  }
  EXPECT_EQ(store->query_series(q).buckets, before);
  expect_matches(*store, job, ref, "seed " + std::to_string(seed) + " after replay");
  EXPECT_TRUE(store->check().ok());
}

Batch one(uint64_t job, uint32_t series, int64_t t, uint64_t cpu, uint64_t rss, uint64_t rd = 0, uint64_t wr = 0) {
  return batch_of(job, {{series, RefPoint{t, cpu, rss, rd, wr}}});
}

}  // namespace

TEST(StoreRollup, RandomLateAndDuplicateSamplesMatchBruteForce1) { random_run(1); }
TEST(StoreRollup, RandomLateAndDuplicateSamplesMatchBruteForce2) { random_run(2); }
TEST(StoreRollup, RandomLateAndDuplicateSamplesMatchBruteForce3) { random_run(3); }

TEST(StoreRollup, PartlyFilledBucketsAreCorrectAndGrow) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  const int64_t t0 = 1'800'000'000 - 1'800'000'000 % 86400;  // midnight
  uint64_t cpu = 0;
  for (int i = 0; i < 30; ++i) {
    cpu += 500'000'000;  // 50 %
    Batch b = one(1, 1, t0 + i, cpu, 1 << 20);
    store->write_batch(b);
  }
  for (Resolution r : {Resolution::Minute, Resolution::Hour, Resolution::Day}) {
    auto got = store->query_series({1, "n1", 1, 0, INT64_MAX, r}).buckets;
    ASSERT_EQ(got.size(), 1u) << resolution_name(r);
    EXPECT_EQ(got[0].samples, 30u);
    EXPECT_EQ(got[0].start_s, t0);
    EXPECT_EQ(got[0].cpu_ns, 30 * 500'000'000ULL);  // the first point counts from zero
    EXPECT_DOUBLE_EQ(got[0].cpu_percent_mean(), 50.0);
    EXPECT_DOUBLE_EQ(got[0].cpu_percent_max(), 50.0);
  }
  // The minute fills up and the next one starts: both still add up.
  for (int i = 30; i < 90; ++i) {
    cpu += 1'000'000'000;  // 100 %
    Batch b = one(1, 1, t0 + i, cpu, 2 << 20);
    store->write_batch(b);
  }
  auto minutes = store->query_series({1, "n1", 1, 0, INT64_MAX, Resolution::Minute}).buckets;
  ASSERT_EQ(minutes.size(), 2u);
  EXPECT_EQ(minutes[0].samples, 60u);
  EXPECT_EQ(minutes[1].samples, 30u);
  EXPECT_EQ(minutes[0].rss_max, 2u << 20);
  EXPECT_EQ(minutes[0].rss_mean(), (30 * (1ULL << 20) + 30 * (2ULL << 20)) / 60);
  auto hour = store->query_series({1, "n1", 1, 0, INT64_MAX, Resolution::Hour}).buckets;
  ASSERT_EQ(hour.size(), 1u);
  EXPECT_EQ(hour[0].samples, 90u);
  EXPECT_EQ(hour[0].cpu_ns, 30 * 500'000'000ULL + 60 * 1'000'000'000ULL);
  EXPECT_DOUBLE_EQ(hour[0].cpu_percent_max(), 100.0);
  EXPECT_TRUE(store->check().ok());
}

TEST(StoreRollup, CpuPercentUsesTheTimeStep) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  const int64_t t0 = 1'800'000'040;
  Batch a = one(1, 0, t0, 0, 0), b = one(1, 0, t0 + 1, 1'000'000'000, 0), c = one(1, 0, t0 + 5, 2'000'000'000, 0);
  store->write_batch(a);
  store->write_batch(b);
  store->write_batch(c);
  auto seconds = store->query_series({1, "n1", 0, 0, INT64_MAX, Resolution::Second}).buckets;
  ASSERT_EQ(seconds.size(), 3u);
  EXPECT_DOUBLE_EQ(seconds[1].cpu_percent_max(), 100.0);
  EXPECT_DOUBLE_EQ(seconds[2].cpu_percent_max(), 25.0);  // 1 s of CPU over 4 s
  auto minute = store->query_series({1, "n1", 0, 0, INT64_MAX, Resolution::Minute}).buckets;
  ASSERT_EQ(minute.size(), 1u);
  EXPECT_DOUBLE_EQ(minute[0].cpu_percent_mean(), 40.0);  // 2 s of CPU over 5 s
  EXPECT_DOUBLE_EQ(minute[0].cpu_percent_max(), 100.0);
  EXPECT_DOUBLE_EQ(minute[0].cpu_seconds(), 2.0);
}

TEST(StoreRollup, ACounterThatGoesDownAddsNothing) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  const int64_t t0 = 1'800'000'040;
  for (auto [dt, cpu, rd] : {std::tuple{0, 5'000'000'000ULL, 100ULL},
                             {1, 6'000'000'000ULL, 200ULL},
                             {2, 1'000'000'000ULL, 50ULL},
                             {3, 1'500'000'000ULL, 80ULL}}) {
    Batch b = one(1, 3, t0 + dt, cpu, 0, rd, 0);
    store->write_batch(b);
  }
  auto minute = store->query_series({1, "n1", 3, 0, INT64_MAX, Resolution::Minute}).buckets;
  ASSERT_EQ(minute.size(), 1u);
  EXPECT_EQ(minute[0].cpu_ns, 5'000'000'000ULL + 1'000'000'000ULL + 0 + 500'000'000ULL);
  EXPECT_EQ(minute[0].read_bytes, 100u + 100u + 0u + 30u);
  // The stored points keep the real values.
  auto raw = store->series(1, "n1", 3, 0, INT64_MAX);
  ASSERT_EQ(raw.size(), 4u);
  EXPECT_EQ(raw[2].cpu_ns, 1'000'000'000ULL);
}

TEST(StoreRollup, LateSampleIntoASealedMinuteRecomputesItsRollups) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  const int64_t t0 = 1'800'003'600 - 1'800'003'600 % 3600;  // an hour boundary
  // Minute 0 gets t0 and t0+2; minute 1 seals minute 0. Then t0+1 arrives late.
  for (auto [dt, cpu] : {std::pair{0, 0ULL}, {2, 2'000'000'000ULL}, {61, 3'000'000'000ULL}, {62, 3'500'000'000ULL}}) {
    Batch b = one(1, 1, t0 + dt, cpu, 4096);
    store->write_batch(b);
  }
  // Seal minute 1 too, with series 0 moving the job's clock on.
  Batch later = one(1, 0, t0 + 400, 0, 0);
  store->write_batch(later);
  Batch late = one(1, 1, t0 + 1, 1'500'000'000ULL, 8192);
  store->write_batch(late);
  std::vector<RefPoint> points = {{t0, 0, 4096, 0, 0},
                                  {t0 + 1, 1'500'000'000ULL, 8192, 0, 0},
                                  {t0 + 2, 2'000'000'000ULL, 4096, 0, 0},
                                  {t0 + 61, 3'000'000'000ULL, 4096, 0, 0},
                                  {t0 + 62, 3'500'000'000ULL, 4096, 0, 0}};
  for (Resolution r : kAll) {
    auto got = store->query_series({1, "n1", 1, 0, INT64_MAX, r}).buckets;
    auto want = reference_rollup(points, bucket_seconds(r));
    ASSERT_EQ(got, want) << resolution_name(r);
  }
  CheckReport check = store->check();
  EXPECT_TRUE(check.ok()) << (check.problems.empty() ? "" : check.problems.front());
  // Delivering it again is a no-op.
  Batch again = one(1, 1, t0 + 1, 1'500'000'000ULL, 8192);
  store->write_batch(again);
  EXPECT_EQ(store->query_series({1, "n1", 1, 0, INT64_MAX, Resolution::Minute}).buckets, reference_rollup(points, 60));
}
