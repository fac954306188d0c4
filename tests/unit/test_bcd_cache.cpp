// bcd's cached views: gzip that zlib's own inflate reads back, Accept-Encoding as browsers and curl send
// it, and the cache's bound.
#include <gtest/gtest.h>
#include <zlib.h>

#include "web/bcd/gzip.hpp"
#include "web/bcd/response_cache.hpp"

using namespace bc::bcd;

namespace {

std::string gunzip(const std::string& packed) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) throw std::runtime_error("inflateInit2");
  std::string out;
  char buf[65536];
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data()));
  z.avail_in = static_cast<uInt>(packed.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("not a complete gzip stream");
  return out;
}

std::string numbers(size_t bytes) {
  std::string s = "{\"t\":[";
  for (long t = 1800000000; s.size() < bytes; ++t) s += std::to_string(t) + ",";
  return s + "0]}";
}

}  // namespace

TEST(Gzip, RoundTripsAndShrinksJsonColumns) {
  const std::string json = numbers(200000);
  const std::string packed = gzip(json);
  EXPECT_EQ(packed.substr(0, 2), std::string("\x1f\x8b"));  // the gzip magic, as browsers expect
  EXPECT_EQ(gunzip(packed), json);
  EXPECT_LT(packed.size(), json.size() / 3);
  EXPECT_EQ(gunzip(gzip("")), "");
}

TEST(Gzip, AcceptEncodingAsClientsSendIt) {
  EXPECT_TRUE(accepts_gzip("gzip, deflate, br"));  // Chromium
  EXPECT_TRUE(accepts_gzip("br;q=1.0, gzip;q=0.8, *;q=0.1"));
  EXPECT_TRUE(accepts_gzip("GZIP"));
  EXPECT_TRUE(accepts_gzip("*"));
  EXPECT_FALSE(accepts_gzip(std::nullopt));  // curl, bcacct
  EXPECT_FALSE(accepts_gzip("identity"));
  EXPECT_FALSE(accepts_gzip("deflate, br"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0"));
  EXPECT_FALSE(accepts_gzip("gzip; q=0.000, identity"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0, *"));  // an explicit refusal wins over the wildcard
  EXPECT_FALSE(accepts_gzip("*;q=0"));
  EXPECT_FALSE(accepts_gzip("x-gzip2"));
}

TEST(ResponseCache, KeepsViewsReadyAsIsAndGzipped) {
  ResponseCache cache(1 << 20);
  const std::string big = numbers(50000);
  auto view = cache.put("a", big);
  ASSERT_TRUE(view->gzipped);
  EXPECT_EQ(*view->body, big);
  EXPECT_EQ(gunzip(*view->gzipped), big);
  auto again = cache.get("a");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body.get(), view->body.get());  // the same buffer, not a copy
  auto small = cache.put("b", "{\"ok\":true}");
  EXPECT_FALSE(small->gzipped);  // too small to pay
  EXPECT_EQ(cache.get("missing"), nullptr);
}

TEST(ResponseCache, BoundedByBytesLeastRecentlyUsedFirst) {
  const std::string body(100000, 'x');  // gzips to a few hundred bytes
  const size_t each = ResponseCache(1 << 20).put("probe", body)->bytes();
  ResponseCache cache(each * 4 + each / 2);  // room for four
  for (const char* key : {"1", "2", "3", "4"}) cache.put(key, body);
  ASSERT_TRUE(cache.get("1"));  // now the most recent
  cache.put("5", body);         // over the bound: "2", the least recently used, goes
  EXPECT_TRUE(cache.get("1"));
  EXPECT_FALSE(cache.get("2"));
  for (const char* key : {"3", "4", "5"}) EXPECT_TRUE(cache.get(key)) << key;
  // An answer over a quarter of the cache is served but not kept.
  ResponseCache tiny(1000);
  auto view = tiny.put("big", numbers(5000));
  EXPECT_GT(view->body->size(), 1000u);
  EXPECT_FALSE(tiny.get("big"));
}
