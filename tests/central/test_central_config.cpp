// The plugin's central=, ca_file=, munge_socket=, outbox_max_mib= and ship_every= keys (passed to bc-monitor
// as --central, --ca-file, --munge-socket, --outbox-max-mib and --ship-every).
#include <gtest/gtest.h>

#include "spank/config.hpp"

namespace bc::spank {
namespace {

TEST(CentralConfig, UrlAndSocket) {
  std::vector<std::string> errors;
  Config c = parse_config({"central=https://bcd.example.org:8470", "munge_socket=/run/munge/munge.socket.2",
                           "ca_file=/etc/bubble-chamber/ca.pem"},
                          errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(c.central, "https://bcd.example.org:8470");
  EXPECT_EQ(c.munge_socket, "/run/munge/munge.socket.2");
  EXPECT_EQ(c.ca_file, "/etc/bubble-chamber/ca.pem");
  Config none = parse_config({}, errors);
  EXPECT_EQ(none.central, "");
  EXPECT_EQ(none.ca_file, "");
  EXPECT_EQ(none.outbox_max_mib, 256u);
  EXPECT_EQ(parse_config({"outbox_max_mib=1"}, errors).outbox_max_mib, 1u);
  EXPECT_EQ(none.ship_every_s, 0u);
  EXPECT_EQ(parse_config({"ship_every=30"}, errors).ship_every_s, 30u);
  EXPECT_EQ(parse_config({"ship_every=3600"}, errors).ship_every_s, 3600u);
  EXPECT_TRUE(errors.empty());
}

TEST(CentralConfig, ShipEveryTakesWholeSecondsUpToAnHour) {
  for (const char* bad : {"ship_every=3601", "ship_every=-1", "ship_every=2.5", "ship_every=10s", "ship_every="}) {
    std::vector<std::string> errors;
    parse_config({bad}, errors);
    ASSERT_EQ(errors.size(), 1u) << bad;
    EXPECT_NE(errors[0].find("ship_every= takes whole seconds between 0 and 3600"), std::string::npos) << errors[0];
  }
}

TEST(CentralConfig, BadValuesAreRefused) {
  std::vector<std::string> errors;
  parse_config({"central=bcd:8470", "munge_socket=relative", "outbox_max_mib=0", "outbox_max_mib=-3", "ca_file=ca.pem"},
               errors);
  ASSERT_EQ(errors.size(), 5u);
  EXPECT_EQ(errors[4], "ca_file= needs an absolute path, got 'ca.pem'");
  EXPECT_NE(errors[2].find("outbox_max_mib= takes MiB between 1 and 1048576"), std::string::npos) << errors[2];
  EXPECT_NE(errors[0].find("central= takes an http"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("absolute path"), std::string::npos) << errors[1];
}

}  // namespace
}  // namespace bc::spank
