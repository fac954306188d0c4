// Thread counts in series: stored with each point, rolled up as a gauge, and a store written before them
// (open records of format 2, chunks and buckets of format 1) keeps working, its old points read as 0 threads.
#include <gtest/gtest.h>
#include <lmdb.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "store_test_util.hpp"

using namespace bc::store;
using namespace bc::store::testing;

namespace {

constexpr uint64_t kJob = 9;
constexpr int64_t kStart = 1'800'000'000;  // a minute boundary

Batch tick(const std::map<uint32_t, RefPoint>& points) {
  Batch b;
  b.job.job_id = kJob;
  b.job.node = "n1";
  for (const auto& [series, p] : points) {
    Sample s{series, p.t, p.cpu, p.rss, p.rd, p.wr, p.threads};
    if (series == 0) {
      b.job_sample = s;
      continue;
    }
    ProcessUpdate u;
    u.record.pid = 100 + series;
    u.record.start_ticks = 1000 + series;
    u.record.series_id = series;
    u.record.command = "p" + std::to_string(series);
    u.sample = s;
    b.processes.push_back(u);
  }
  return b;
}

// ---- The formats before thread counts, made from the current ones by moving bytes (values of 0 threads,
// written with steps of one second, encode their points alike in both point formats).

size_t skip_varint(std::string_view v, size_t at) {
  while (static_cast<uint8_t>(v.at(at)) & 0x80) ++at;
  return at + 1;
}

// Open record 3 -> 2: the fixed tail and base lose their 4-byte thread count.
std::string open_format2(std::string_view v3) {
  EXPECT_EQ(v3.at(0), 3);
  EXPECT_EQ(v3.substr(44, 4), std::string(4, '\0')) << "the tail has threads";
  EXPECT_EQ(v3.substr(84, 4), std::string(4, '\0')) << "the base has threads";
  return std::string(1, '\2') + std::string(v3.substr(1, 43)) + std::string(v3.substr(48, 36)) +
         std::string(v3.substr(88));
}

// Chunk 2 -> 1: the base loses its trailing thread count.
std::string chunk_format1(std::string_view v2) {
  EXPECT_EQ(v2.at(0), 2);
  std::string out(1, '\1');
  out += v2.substr(1, 1);
  size_t at = 2;
  if (v2.at(1) == 1) {
    size_t end = at;
    for (int i = 0; i < 5; ++i) end = skip_varint(v2, end);  // time back, cpu, rss, read, write
    out += v2.substr(at, end - at);
    EXPECT_EQ(v2.at(end), 0) << "the base has threads";
    at = end + 1;
  }
  return out + std::string(v2.substr(at));
}

// Buckets 2 -> 1: each bucket loses its two trailing thread figures.
std::string buckets_format1(std::string_view v2) {
  EXPECT_EQ(v2.at(0), 2);
  std::string out(1, '\1');
  size_t at = 1;
  while (at < v2.size()) {
    size_t end = skip_varint(v2, at) + 1;                    // index gap, flags
    for (int i = 0; i < 9; ++i) end = skip_varint(v2, end);  // samples .. write bytes
    out += v2.substr(at, end - at);
    EXPECT_EQ(v2.substr(end, 2), std::string(2, '\0')) << "a bucket has threads";
    at = end + 2;
  }
  return out;
}

// Rewrites every value of `table` with `convert`, as a store of the earlier version would hold it.
void rewrite_table(const std::string& path, const char* table, std::string (*convert)(std::string_view)) {
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 32);
  ASSERT_EQ(mdb_env_open(env, path.c_str(), 0, 0600), 0);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  MDB_dbi dbi;
  ASSERT_EQ(mdb_dbi_open(txn, table, 0, &dbi), 0);
  // Read first, then write: a value of another size moves the page that a cursor's key points into.
  std::vector<std::pair<std::string, std::string>> values;
  MDB_cursor* cursor = nullptr;
  ASSERT_EQ(mdb_cursor_open(txn, dbi, &cursor), 0);
  MDB_val k, v;
  for (int rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT))
    values.emplace_back(std::string(static_cast<const char*>(k.mv_data), k.mv_size),
                        convert(std::string_view(static_cast<const char*>(v.mv_data), v.mv_size)));
  mdb_cursor_close(cursor);
  for (auto& [key, value] : values) {
    MDB_val nk{key.size(), key.data()}, nv{value.size(), value.data()};
    ASSERT_EQ(mdb_put(txn, dbi, &nk, &nv, 0), 0);
  }
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
  EXPECT_FALSE(values.empty()) << table;
}

}  // namespace

TEST(ThreadCounts, PointsCarryThemAndRollupsKeepTheirMeanAndMaximum) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  std::map<uint32_t, std::vector<RefPoint>> ref;
  for (int64_t i = 0; i < 150; ++i) {
    const int64_t t = kStart + i;
    const uint32_t threads = i < 40 ? 1 : (i < 100 ? 8 : 2);  // 1 thread, then 8, then 2
    RefPoint p{t, static_cast<uint64_t>(i) * 10'000'000, 1 << 20, 0, 0, threads};
    ref[1].push_back(p);
    Batch b = tick({{1, p}});
    store->write_batch(b);
  }
  for (Resolution r : {Resolution::Second, Resolution::Minute, Resolution::Hour}) {
    SeriesData got = store->query_series({kJob, "n1", 1, 0, INT64_MAX, r});
    std::vector<Rollup> want = reference_rollup(ref[1], bucket_seconds(r));
    ASSERT_EQ(got.buckets.size(), want.size()) << resolution_name(r);
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_EQ(got.buckets[i], want[i]) << resolution_name(r) << " " << describe(got.buckets[i]);
  }
  SeriesData minutes = store->query_series({kJob, "n1", 1, 0, INT64_MAX, Resolution::Minute});
  ASSERT_EQ(minutes.buckets.size(), 3U);
  EXPECT_EQ(minutes.buckets[0].threads_max, 8U);
  EXPECT_DOUBLE_EQ(minutes.buckets[0].threads_mean(), (40 * 1 + 20 * 8) / 60.0);
  EXPECT_EQ(minutes.buckets[2].threads_max, 2U);
  EXPECT_TRUE(store->check().ok());
}

TEST(ThreadCounts, AStoreWrittenBeforeThemGoesOnWithTheOldPointsAtZero) {
  TempDir dir;
  std::map<uint32_t, std::vector<RefPoint>> ref;
  std::map<uint32_t, RefPoint> current;
  auto write = [&](Store& store, int64_t t, std::initializer_list<uint32_t> series, uint32_t threads) {
    std::map<uint32_t, RefPoint> points;
    for (uint32_t s : series) {
      RefPoint& c = current[s];
      c = RefPoint{
          t, c.cpu + 10'000'000 * (s + 1), (1 << 20) + 4096 * static_cast<uint64_t>(t % 7), c.rd + 512, c.wr, threads};
      points[s] = c;
      ref[s].push_back(c);
    }
    Batch b = tick(points);
    store.write_batch(b);
  };
  // Two and a half minutes of the earlier version: no thread counts, a point every second.
  {
    auto store = Store::open(dir.store(), test_options());
    for (int64_t i = 0; i < 150; ++i) write(*store, kStart + i, {0, 1, 2, 3}, 0);
  }
  rewrite_table(dir.store(), "open", open_format2);
  rewrite_table(dir.store(), "series_s", chunk_format1);
  rewrite_table(dir.store(), "series_m", buckets_format1);
  rewrite_table(dir.store(), "series_h", buckets_format1);
  rewrite_table(dir.store(), "series_d", buckets_format1);

  auto store = Store::open(dir.store(), test_options());
  ASSERT_TRUE(store->check().ok()) << store->check().problems.at(0);
  // Series 1 goes on in its open minute (the record is rewritten in the new format), series 2 starts the
  // next minute (the old record is sealed) and then gets the seconds before it, late; series 3 gets a late
  // point inside its open minute first, and the job total (series 0) comes back after a gap.
  const int64_t t = kStart + 150;
  write(*store, t, {1}, 4);
  write(*store, kStart + 180, {2}, 6);
  {
    RefPoint late = current[3];
    late.rss += 4096;
    late.threads = 0;
    ref[3].push_back(late);  // a duplicate of its last point, changed: it replaces it
    current[3] = late;
    Batch b = tick({{3, late}});
    store->write_batch(b);
  }
  for (int64_t i = 1; i < 100; ++i) write(*store, t + 2 * i, {0, 1, 2, 3}, static_cast<uint32_t>(1 + i % 5));

  for (const auto& [series, written] : ref) {
    std::map<int64_t, RefPoint> by_time;  // series 2's minute came before the seconds that follow
    for (const RefPoint& p : written) by_time[p.t] = p;
    std::vector<RefPoint> points;
    for (const auto& [time, p] : by_time) points.push_back(p);
    for (Resolution r : {Resolution::Second, Resolution::Minute, Resolution::Hour, Resolution::Day}) {
      SeriesData got = store->query_series({kJob, "n1", series, 0, INT64_MAX, r});
      std::vector<Rollup> want = reference_rollup(points, bucket_seconds(r));
      ASSERT_EQ(got.buckets.size(), want.size()) << "series " << series << " " << resolution_name(r);
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_EQ(got.buckets[i], want[i]) << "series " << series << " " << resolution_name(r) << " bucket " << i
                                           << "\n got  " << describe(got.buckets[i]) << "\n want " << describe(want[i]);
    }
    const auto raw = store->series(kJob, "n1", series, 0, INT64_MAX);
    ASSERT_EQ(raw.size(), points.size()) << series;
    for (size_t i = 0; i < raw.size(); ++i) {
      EXPECT_EQ(raw[i].time_s, points[i].t);
      EXPECT_EQ(raw[i].cpu_ns, points[i].cpu);
      EXPECT_EQ(raw[i].rss, points[i].rss);
      EXPECT_EQ(raw[i].read_bytes, points[i].rd);
      EXPECT_EQ(raw[i].threads, points[i].threads) << "series " << series << " point " << i;
    }
  }
  const CheckReport report = store->check();
  EXPECT_TRUE(report.ok()) << (report.problems.empty() ? "" : report.problems[0]);
}
