#include <gtest/gtest.h>

#include <cstdlib>

#include "web/bcd/config.hpp"

using namespace bc::bcd;

TEST(BcdConfig, Defaults) {
  Config c = parse_config("", "t");
  EXPECT_EQ(c.listen_address, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 8470);
  EXPECT_FALSE(c.auth_disable);
  EXPECT_TRUE(c.ingest_auth);
  EXPECT_EQ(c.dedup_window_s, 3600);
  EXPECT_EQ(c.pushers, (std::vector<std::string>{"root", "slurm"}));
}

TEST(BcdConfig, EveryKey) {
  Config c = parse_config(
      "# comment\nlisten = 0.0.0.0:9000\nstore=/s\nstatic_dir=/w\nauth_secret=abcdefghijklmnopq # trailing\n"
      "auth_disable=no\nadmins=root, alice\nadmin_group=hpcadm\npushers=root\nmunge_socket=/run/m\n"
      "max_body_bytes=2048\nthreads=8\nlog=syslog\ningest_auth=off\ndedup_window=600\n",
      "t");
  EXPECT_FALSE(c.ingest_auth);
  EXPECT_EQ(c.dedup_window_s, 600);
  EXPECT_EQ(c.listen_address, "0.0.0.0");
  EXPECT_EQ(c.listen_port, 9000);
  EXPECT_EQ(c.store, "/s");
  EXPECT_EQ(c.static_dir, "/w");
  EXPECT_EQ(c.auth_secret, "abcdefghijklmnopq");
  EXPECT_EQ(c.admins, (std::vector<std::string>{"root", "alice"}));
  EXPECT_EQ(c.admin_group, "hpcadm");
  EXPECT_EQ(c.pushers, (std::vector<std::string>{"root"}));
  EXPECT_EQ(c.munge_socket, "/run/m");
  EXPECT_EQ(c.max_body_bytes, 2048u);
  EXPECT_EQ(c.threads, 8u);
  EXPECT_EQ(c.log, "syslog");
}

TEST(BcdConfig, ErrorsNameTheLine) {
  auto message = [](const char* text) {
    try {
      parse_config(text, "bcd.conf");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("\n\nlistne=1:2\n").find("bcd.conf:3: unknown key 'listne'"), std::string::npos);
  EXPECT_NE(message("listen=8080").find("ADDRESS:PORT"), std::string::npos);
  EXPECT_NE(message("listen=a:70000").find("ADDRESS:PORT"), std::string::npos);
  EXPECT_NE(message("store=relative").find("absolute"), std::string::npos);
  EXPECT_NE(message("threads=0").find("threads="), std::string::npos);
  EXPECT_NE(message("max_body_bytes=-5").find("max_body_bytes="), std::string::npos);
  EXPECT_NE(message("auth_disable=maybe").find("auth_disable="), std::string::npos);
  EXPECT_NE(message("just words").find("key=value"), std::string::npos);
  EXPECT_NE(message("log=file").find("log="), std::string::npos);
  EXPECT_NE(message("ingest_auth=maybe").find("ingest_auth= takes on or off"), std::string::npos);
  EXPECT_NE(message("dedup_window=0").find("dedup_window="), std::string::npos);
}

TEST(BcdConfig, EnvironmentOverridesAndValidation) {
  Config c = parse_config("auth_secret=short\n", "t");
  EXPECT_THROW(validate(c), ConfigError);
  setenv("AUTH_SECRET", "0123456789abcdef0123", 1);
  setenv("AUTH_DISABLE", "no", 1);
  apply_environment(c);
  EXPECT_EQ(c.auth_secret, "0123456789abcdef0123");
  EXPECT_NO_THROW(validate(c));
  setenv("AUTH_DISABLE", "yes", 1);
  apply_environment(c);
  EXPECT_TRUE(c.auth_disable);
  EXPECT_TRUE(c.ingest_auth);  // AUTH_DISABLE opens reads only; pushes stay authenticated
  setenv("AUTH_DISABLE", "perhaps", 1);
  EXPECT_THROW(apply_environment(c), ConfigError);
  unsetenv("AUTH_SECRET");
  unsetenv("AUTH_DISABLE");
  Config open = parse_config("auth_disable=yes\n", "t");
  EXPECT_NO_THROW(validate(open));
}

TEST(BcdConfig, LimitsAndMetricsKeys) {
  Config d = parse_config("", "t");
  EXPECT_EQ(d.max_connections, 2048u);
  EXPECT_EQ(d.max_connections_per_ip, 64u);
  EXPECT_EQ(d.header_timeout_s, 10u);
  EXPECT_EQ(d.body_timeout_s, 60u);
  EXPECT_EQ(d.max_inflight_bytes, size_t{256} << 20);
  EXPECT_FALSE(d.metrics_jobs);
  Config c = parse_config(
      "max_connections=4096\nmax_connections_per_ip=8\nheader_timeout=5\nbody_timeout=30\n"
      "max_inflight_bytes=1073741824\nmetrics_jobs=on\nmetrics_token=0123456789abcdef\n",
      "t");
  EXPECT_EQ(c.max_connections, 4096u);
  EXPECT_EQ(c.max_connections_per_ip, 8u);
  EXPECT_EQ(c.header_timeout_s, 5u);
  EXPECT_EQ(c.body_timeout_s, 30u);
  EXPECT_EQ(c.max_inflight_bytes, size_t{1} << 30);
  EXPECT_TRUE(c.metrics_jobs);
  EXPECT_EQ(c.metrics_token, "0123456789abcdef");
  for (const char* bad : {"max_connections=0\n", "header_timeout=0\n", "body_timeout=7200\n", "max_inflight_bytes=10\n",
                          "metrics_jobs=maybe\n", "metrics_token=short\n", "max_connections_per_ip=-1\n"})
    EXPECT_THROW(parse_config(bad, "t"), ConfigError) << bad;
  Config small = parse_config("auth_secret=0123456789abcdef0\nmax_body_bytes=2048\nmax_inflight_bytes=1024\n", "t");
  EXPECT_THROW(validate(small), ConfigError);
}

TEST(BcdConfig, TlsCertificateAndKeyGoTogether) {
  Config plain = parse_config("auth_disable=yes\n", "t");
  EXPECT_EQ(plain.tls_cert, "");
  EXPECT_EQ(plain.tls_key, "");
  Config tls = parse_config("auth_disable=yes\ntls_cert=/etc/bc/bcd.pem\ntls_key=/etc/bc/bcd.key\n", "t");
  EXPECT_EQ(tls.tls_cert, "/etc/bc/bcd.pem");
  EXPECT_EQ(tls.tls_key, "/etc/bc/bcd.key");
  EXPECT_NO_THROW(validate(tls));
  for (const char* half : {"tls_cert=/etc/bc/bcd.pem\n", "tls_key=/etc/bc/bcd.key\n"}) {
    try {
      validate(parse_config(std::string("auth_disable=yes\n") + half, "t"));
      ADD_FAILURE() << half << " alone was accepted";
    } catch (const ConfigError& e) {
      EXPECT_STREQ(e.what(), "tls_cert= and tls_key= go together: set both for HTTPS, or neither for plain HTTP");
    }
  }
  try {
    parse_config("tls_cert=bcd.pem\n", "bcd.conf");
    ADD_FAILURE() << "a relative tls_cert was accepted";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "bcd.conf:1: tls_cert= needs an absolute path");
  }
}
