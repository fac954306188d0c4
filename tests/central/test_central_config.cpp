// The plugin's central= and munge_socket= keys (passed to bc-monitor as --central and --munge-socket).
#include <gtest/gtest.h>

#include "config.hpp"

namespace bc::spank {
namespace {

TEST(CentralConfig, UrlAndSocket) {
  std::vector<std::string> errors;
  Config c = parse_config({"central=http://bcd.example.org:8470", "munge_socket=/run/munge/munge.socket.2"}, errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(c.central, "http://bcd.example.org:8470");
  EXPECT_EQ(c.munge_socket, "/run/munge/munge.socket.2");
  Config none = parse_config({}, errors);
  EXPECT_EQ(none.central, "");
}

TEST(CentralConfig, BadValuesAreRefused) {
  std::vector<std::string> errors;
  parse_config({"central=bcd:8470", "munge_socket=relative"}, errors);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].find("central= takes an http"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("absolute path"), std::string::npos) << errors[1];
}

}  // namespace
}  // namespace bc::spank
