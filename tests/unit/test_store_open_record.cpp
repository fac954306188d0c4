// The open minute's record: format 3 (fixed header and free room, appended in place), and formats 1 (varints)
// and 2 (without thread counts), written by earlier versions and still read.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "accounting_db/codec.hpp"
#include "accounting_db/store.hpp"

using namespace bc::store;
using codec::OpenRecord;
using codec::Point;

namespace {

// Format 1 as earlier versions wrote it, from the field list of that format (independent of the codec).
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
std::string open_v1(int64_t chunk_start, const Point& base, const Point& tail, const std::string& points) {
  std::string out;
  out.push_back(1);
  out.push_back(3);  // base and points
  varint(out, static_cast<uint64_t>(chunk_start));
  for (uint64_t v : {static_cast<uint64_t>(base.t), base.cpu, base.rss, base.rd, base.wr}) varint(out, v);
  for (uint64_t v : {static_cast<uint64_t>(tail.t - chunk_start), tail.cpu, tail.rss, tail.rd, tail.wr}) varint(out, v);
  out += points;
  return out;
}

}  // namespace

TEST(OpenRecord, AppendingInPlaceMatchesRewriting) {
  std::mt19937_64 rng(7);
  const int64_t minute = 1'800'000'020;
  Point base{minute - 3, 5'000'000'000ULL, 1ULL << 30, 4096, 0};
  std::vector<Point> points;
  Point prev = base;
  for (int i = 0; i < 60; ++i) {
    Point p = prev;
    p.t = minute + i;
    p.cpu += (rng() % 100) * 10'000'000ULL;
    if (rng() % 3 == 0) p.rss += (rng() % 50) * 4096;
    if (rng() % 7 == 0) p.rd += rng() % 100000;  // not a multiple of anything
    if (i == 30) p.cpu -= 1;                     // a counter that went down
    points.push_back(p);
    prev = p;
  }
  OpenRecord first;
  first.has_base = true;
  first.has_points = true;
  first.base = base;
  first.chunk_start = minute;
  first.tail = points[0];
  std::string encoded;
  codec::put_point(encoded, base, points[0]);
  first.points = encoded;
  std::string value;
  codec::encode_open(value, first);
  size_t in_place = 0;
  for (size_t i = 1; i < points.size(); ++i) {
    std::string next;
    if (codec::append_open(next, value, points[i])) {
      EXPECT_EQ(next.size(), value.size());
      ++in_place;
    } else {
      OpenRecord o = codec::decode_open(value);
      std::string grown(o.points);
      codec::put_point(grown, o.tail, points[i]);
      o.points = grown;
      o.tail = points[i];
      next.clear();
      codec::encode_open(next, o);
      EXPECT_GT(next.size(), value.size());
    }
    value = next;
    OpenRecord o = codec::decode_open(value);
    ASSERT_TRUE(o.has_points && o.has_base);
    EXPECT_EQ(o.tail, points[i]);
    EXPECT_EQ(o.base, base);
    EXPECT_EQ(o.chunk_start, minute);
    auto decoded = codec::decode_points(o.points, o.origin(), false);
    EXPECT_EQ(decoded, std::vector<Point>(points.begin(), points.begin() + static_cast<long>(i) + 1));
  }
  EXPECT_GT(in_place, 40U) << "most ticks should fit the free room";
  // Not appended: a point of the next minute, a late point, a duplicate.
  std::string out;
  EXPECT_FALSE(codec::append_open(out, value, Point{minute + 60, points.back().cpu, 0, 0, 0}));
  EXPECT_FALSE(codec::append_open(out, value, points[10]));
  EXPECT_FALSE(codec::append_open(out, value, points.back()));
}

TEST(OpenRecord, Format1IsStillRead) {
  const int64_t minute = 1'800'000'000;
  Point base{minute - 1, 100, 200, 300, 400};
  Point a{minute, 10'000'100, 200, 300, 400}, b{minute + 2, 20'000'100, 4296, 300, 500};
  // Points of format 1, by hand: a is one second on with one CPU tick more (flags: cpu, in ticks); b two
  // seconds on (flag 0x01 and dt 2), one tick, one page of RSS, 100 bytes written.
  std::string points = {0x06, 0x01, 0x5f, 0x02, 0x01, 0x02, 0x64};
  const std::string v1 = open_v1(minute, base, b, points);
  OpenRecord o = codec::decode_open(v1);
  EXPECT_TRUE(o.has_base && o.has_points);
  EXPECT_EQ(o.point_format, codec::PointFormat::WithoutThreads);
  EXPECT_EQ(o.base, base);
  EXPECT_EQ(o.tail, b);
  EXPECT_EQ(codec::open_points(o), (std::vector<Point>{a, b}));
  std::string out;
  EXPECT_FALSE(codec::append_open(out, v1, Point{minute + 3, b.cpu, b.rss, b.rd, b.wr, 0}))
      << "format 1 has no free room: the writer rewrites it in the current format";
  EXPECT_THROW(codec::encode_open(out, o), StoreError) << "its points are of the old format";
  std::string storage;
  codec::upgrade_open_points(o, storage);
  EXPECT_EQ(o.point_format, codec::kPointFormat);
  EXPECT_EQ(codec::open_points(o), (std::vector<Point>{a, b}));
  out.clear();
  codec::encode_open(out, o);
  EXPECT_EQ(codec::open_points(codec::decode_open(out)), (std::vector<Point>{a, b}));
}

TEST(SeriesPoints, ThreadCountsCostBytesOnlyWhenTheyChange) {
  const int64_t t = 1'800'000'000;
  const Point one{t, 0, 4096, 0, 0, 1};
  std::string steady;
  codec::put_point(steady, one, Point{t + 1, 0, 4096, 0, 0, 1});
  EXPECT_EQ(steady.size(), 1U) << "a second with nothing changed is its flag byte";
  std::string more;
  codec::put_point(more, one, Point{t + 1, 0, 4096, 0, 0, 8});
  EXPECT_EQ(more, std::string({0x01, 0x03, 0x0e})) << "flag, dt 1 with the threads bit, zigzag of +7";
  std::vector<Point> points;
  Point p = one;
  for (uint32_t threads : {1U, 32U, 32U, 0U, UINT32_MAX, 5U, 5U}) {
    p.t += threads == 5U ? 3 : 1;
    p.threads = threads;
    points.push_back(p);
  }
  std::string bytes;
  codec::encode_points(bytes, one, points);
  EXPECT_EQ(codec::decode_points(bytes, one, false), points);
  codec::Chunk chunk{true, Point{t - 5, 7, 8, 9, 10, 12}, points};
  EXPECT_EQ(codec::decode_chunk(t, codec::encode_chunk(t, chunk)).base.threads, 12U);
  // A step below zero threads, or past 32 bits, is corrupt.
  const Point none{t, 0, 0, 0, 0, 0};
  EXPECT_THROW(codec::decode_points(std::string({0x01, 0x03, 0x01}), none, false), StoreError);
  const Point most{t, 0, 0, 0, 0, UINT32_MAX};
  EXPECT_THROW(codec::decode_points(std::string({0x01, 0x03, 0x02}), most, false), StoreError);
  // Chunk format 1 (no threads): the base's values end after the write counter, the points are format 1.
  std::string v1 = {0x01, 0x01, 0x01, 0x07, 0x08, 0x09, 0x0a, 0x01, 0x02};
  const codec::Chunk old = codec::decode_chunk(t, v1);
  EXPECT_EQ(old.base, (Point{t - 1, 7, 8, 9, 10, 0}));
  EXPECT_EQ(old.points, (std::vector<Point>{Point{t + 1, 7, 8, 9, 10, 0}})) << "dt 2, in format 1";
}

TEST(OpenRecord, CorruptValuesAreErrors) {
  OpenRecord o;
  o.has_base = true;
  o.base = Point{1'800'000'000, 1, 2, 3, 4};
  std::string v;
  codec::encode_open(v, o);
  EXPECT_EQ(codec::decode_open(v).base, o.base);
  for (size_t cut = 0; cut < v.size(); ++cut)
    EXPECT_THROW(codec::decode_open(std::string_view(v).substr(0, cut)), StoreError) << cut;
  std::string bad = v;
  bad[3] = 9;  // points without a minute
  EXPECT_THROW(codec::decode_open(bad), StoreError);
}

// A stored step no 64-bit counter can hold is corrupt data, never arithmetic overflow (undefined behaviour,
// which UBSan stops at in the sanitizer run).
TEST(SeriesPoints, StepsPastSixtyFourBitsAreCorrupt) {
  const auto zigzag = [](int64_t x) { return (static_cast<uint64_t>(x) << 1) ^ static_cast<uint64_t>(x >> 63); };
  const Point origin{1'800'000'000, 0, 0, 0, 0};
  for (int64_t pages : {INT64_MAX / 1000, INT64_MIN / 1000, INT64_MAX}) {
    std::string bytes(1, static_cast<char>(0x18));  // rss changed, in 4 KiB pages
    codec::append_varint(bytes, zigzag(pages));
    EXPECT_THROW(codec::decode_points(bytes, origin, false), StoreError) << pages;
  }
  std::string fine(1, static_cast<char>(0x18));
  codec::append_varint(fine, zigzag(-3));
  const Point rss_origin{1'800'000'000, 0, 1 << 20, 0, 0};
  EXPECT_EQ(codec::decode_points(fine, rss_origin, false).at(0).rss, (1u << 20) - 3 * 4096);
  // A time step that would pass INT64_MAX.
  std::string late(1, static_cast<char>(0x01));
  codec::append_varint(late, 1);
  EXPECT_THROW(codec::decode_points(late, Point{INT64_MAX, 0, 0, 0, 0}, false), StoreError);
}
