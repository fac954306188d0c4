// common/hostlist: Slurm's node lists, as -N takes them and as SLURM_JOB_NODELIST names a job's nodes.
#include "common/hostlist.hpp"

#include <gtest/gtest.h>

TEST(Hostlist, RangesAndPadding) {
  auto h = bc::expand_hostlist("n[01-03,10],login1,gpu[8-9]x");
  ASSERT_TRUE(std::holds_alternative<std::vector<std::string>>(h)) << std::get<std::string>(h);
  EXPECT_EQ(std::get<std::vector<std::string>>(h),
            (std::vector<std::string>{"n01", "n02", "n03", "n10", "login1", "gpu8x", "gpu9x"}));
  for (const char* bad : {"", "n[1-", "n]1[", "n[3-1]", "n[[1]]", "a,,b", "a,", "n[1-2][3-4]", "n[1-99999]"})
    EXPECT_TRUE(std::holds_alternative<std::string>(bc::expand_hostlist(bad))) << bad;
}

// Small ranges that add up: the whole list is bounded too (the fuzzer's n[0-60000,0-60000,...] took bcacct
// past its 10 s per input, as millions of names).
TEST(Hostlist, TheWholeListIsBounded) {
  const auto most = bc::expand_hostlist("n[0-32767],m[0-32767]");
  ASSERT_TRUE(std::holds_alternative<std::vector<std::string>>(most));
  EXPECT_EQ(std::get<std::vector<std::string>>(most).size(), 65536u);
  std::string many = "n[0-60000";
  for (int i = 0; i < 200; ++i) many += ",0-60000";
  const auto refused = bc::expand_hostlist(many + "]");
  ASSERT_TRUE(std::holds_alternative<std::string>(refused));
  EXPECT_NE(std::get<std::string>(refused).find("more than 65536 nodes"), std::string::npos);
  EXPECT_TRUE(std::holds_alternative<std::string>(bc::expand_hostlist("n[0-32767],m[0-32767],x1")));
}
