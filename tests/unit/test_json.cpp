// common/json.hpp: the one way bc writes JSON. Integers stay exact where cJSON's printer would round them, strings come
// out valid UTF-8 with cJSON's escapes, and what is printed parses back to what was put in.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "common/json.hpp"
#include "web/bcd/http_server.hpp"

namespace {

using bc::json::Ptr;

std::string printed(cJSON* item) {
  const Ptr owned(item);
  return bc::json::print(owned.get());
}

TEST(Json, IntegersAreExactPastTenToThe15) {
  EXPECT_EQ(printed(bc::json::count(0)), "0");
  EXPECT_EQ(printed(bc::json::count(999'999'999'999'999ULL)), "999999999999999");  // 15 digits: cJSON's own
  EXPECT_EQ(printed(bc::json::count(1'000'000'000'000'001ULL)), "1000000000000001");
  EXPECT_EQ(printed(bc::json::count(9007199254740993ULL)), "9007199254740993");  // a double would round it
  EXPECT_EQ(printed(bc::json::count(std::numeric_limits<uint64_t>::max())), "18446744073709551615");
  EXPECT_EQ(printed(bc::json::integer(-5)), "-5");
  EXPECT_EQ(printed(bc::json::integer(std::numeric_limits<int64_t>::min())), "-9223372036854775808");
  EXPECT_EQ(printed(bc::json::integer(1'800'000'000)), "1800000000");
}

TEST(Json, StringsAreValidUtf8WithCJsonsEscapes) {
  EXPECT_EQ(printed(bc::json::string("plain")), "\"plain\"");
  EXPECT_EQ(printed(bc::json::string("a\"b\\c\nd\x01")), "\"a\\\"b\\\\c\\nd\\u0001\"");
  EXPECT_EQ(printed(bc::json::string("caf\xc3\xa9 \xff")), "\"caf\xc3\xa9 \xef\xbf\xbd\"");  // 0xff: U+FFFD
}

TEST(Json, PrintedTreesParseBack) {
  const Ptr root(bc::json::checked(cJSON_CreateObject()));
  bc::json::add(root.get(), "name", bc::json::string("x\ty"));
  bc::json::add(root.get(), "column", bc::json::raw("[1,2.5,3]"));
  const std::string compact = bc::json::print(root.get());
  EXPECT_EQ(compact, "{\"name\":\"x\\ty\",\"column\":[1,2.5,3]}");
  EXPECT_EQ(bc::json::print(root.get(), false, 4096), compact);  // printed straight into the string
  bc::json::add(root.get(), "long", bc::json::string(std::string(300, 'a')));
  const std::string longer = bc::json::print(root.get());
  EXPECT_EQ(bc::json::print(root.get(), false, 1), longer);  // a hint too small: printed again, the usual way
  EXPECT_EQ(bc::json::print(root.get(), false, longer.size()), longer);  // just enough
  const Ptr back(cJSON_Parse(bc::json::print(root.get(), true).c_str()));
  ASSERT_TRUE(back);
  EXPECT_EQ(bc::json::print(back.get()), longer);
}

// Every failure bcd answers is {"error": message}, whatever the message holds (it can quote a request's path).
TEST(Json, ErrorAnswersAreJsonWhateverTheMessage) {
  const std::string message = "no job \"x\\y\"\n\x02 \xc3";
  const bc::web::Response r = bc::web::Response::error(404, message);
  EXPECT_EQ(r.status, 404u);
  ASSERT_FALSE(r.body.empty());
  EXPECT_EQ(r.body.back(), '\n');
  const Ptr parsed(cJSON_Parse(r.body.c_str()));
  ASSERT_TRUE(cJSON_IsObject(parsed.get())) << r.body;
  const cJSON* error = cJSON_GetObjectItemCaseSensitive(parsed.get(), "error");
  ASSERT_TRUE(cJSON_IsString(error));
  EXPECT_EQ(std::string(error->valuestring), bc::json::valid_utf8(message));
}

}  // namespace
