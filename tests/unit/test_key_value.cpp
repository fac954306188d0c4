// common/key_value: the reader every config file and the plugin's arguments go through.
#include <gtest/gtest.h>

#include "common/key_value.hpp"

namespace bc::kv {
namespace {

TEST(KeyValue, SettingsWithTheirLines) {
  const auto s =
      read_settings("# a comment\n\n  listen = 0.0.0.0:9000 \r\nstore=/s # trailing\n\tlog=syslog", "f.conf");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].key, "listen");
  EXPECT_EQ(s[0].value, "0.0.0.0:9000");
  EXPECT_EQ(s[0].where, "f.conf:3");
  EXPECT_EQ(s[1].key, "store");
  EXPECT_EQ(s[1].value, "/s");
  EXPECT_EQ(s[1].where, "f.conf:4");
  EXPECT_EQ(s[2].key, "log");
  EXPECT_EQ(s[2].where, "f.conf:5");
  for (const auto& setting : s) EXPECT_FALSE(setting.malformed);
}

// A '#' inside a value (a URL's fragment, a secret) is kept; one after a blank starts a comment.
TEST(KeyValue, HashInsideAValueIsKept) {
  const auto s = read_settings("auth_secret=abc#def\ncentral=http://h/#x #note\n", "f");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].value, "abc#def");
  EXPECT_EQ(s[1].value, "http://h/#x");
}

TEST(KeyValue, MalformedLinesAreReportedInOrder) {
  const auto s = read_settings("just words\n=value\n  = x\nok=1\nempty=\n", "g");
  ASSERT_EQ(s.size(), 5u);
  EXPECT_TRUE(s[0].malformed);
  EXPECT_EQ(s[0].value, "just words");
  EXPECT_EQ(s[0].where, "g:1");
  EXPECT_TRUE(s[1].malformed);
  EXPECT_TRUE(s[2].malformed);
  EXPECT_EQ(s[2].where, "g:3");
  EXPECT_FALSE(s[3].malformed);
  EXPECT_FALSE(s[4].malformed);
  EXPECT_EQ(s[4].key, "empty");
  EXPECT_EQ(s[4].value, "");
}

TEST(KeyValue, Arguments) {
  const auto a = split_argument("store=/var/lib/x=y");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->key, "store");
  EXPECT_EQ(a->value, "/var/lib/x=y");
  EXPECT_FALSE(split_argument("novalue"));
  EXPECT_FALSE(split_argument("=x"));
  ASSERT_TRUE(split_argument("bpf="));
}

TEST(KeyValue, Booleans) {
  for (const char* yes : {"yes", "on", "true", "1"}) {
    bool v = false;
    EXPECT_TRUE(parse_bool(yes, v)) << yes;
    EXPECT_TRUE(v) << yes;
  }
  for (const char* no : {"no", "off", "false", "0"}) {
    bool v = true;
    EXPECT_TRUE(parse_bool(no, v)) << no;
    EXPECT_FALSE(v) << no;
  }
  bool v = true;
  EXPECT_FALSE(parse_bool("Y", v));
  EXPECT_FALSE(parse_bool("", v));
  EXPECT_TRUE(v);
}

}  // namespace
}  // namespace bc::kv
