#include <gtest/gtest.h>

#include "common/key_value.hpp"
#include "spank/config.hpp"

using bc::spank::Config;
using bc::spank::parse_config;

TEST(SpankConfig, DefaultsWhenEmpty) {
  std::vector<std::string> errors;
  Config c = parse_config({}, errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_TRUE(c.enable);
  EXPECT_EQ(c.store, BC_STORE_DEFAULT);
  EXPECT_EQ(c.monitor, BC_MONITOR_DEFAULT);
  EXPECT_DOUBLE_EQ(c.interval_s, 1.0);
}

TEST(SpankConfig, AllKeys) {
  std::vector<std::string> errors;
  Config c = parse_config({"enable=no", "store=/s", "monitor=/m", "interval=0.25", "rundir=/r", "log=/l"}, errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_FALSE(c.enable);
  EXPECT_EQ(c.store, "/s");
  EXPECT_EQ(c.monitor, "/m");
  EXPECT_DOUBLE_EQ(c.interval_s, 0.25);
  EXPECT_EQ(c.run_dir, "/r");
  EXPECT_EQ(c.log, "/l");
}

TEST(SpankConfig, RejectsUnknownKeysAndBadValues) {
  std::vector<std::string> errors;
  parse_config({"stroe=/x", "interval=fast", "interval=0", "enable=maybe", "store=relative", "novalue", "=x",
                "log=/" + std::string(2000, 'a')},
               errors);
  ASSERT_EQ(errors.size(), 8u);
  EXPECT_NE(errors[0].find("unknown key 'stroe'"), std::string::npos);
  EXPECT_NE(errors[1].find("interval="), std::string::npos);
  EXPECT_NE(errors[3].find("enable="), std::string::npos);
  EXPECT_NE(errors[4].find("absolute path"), std::string::npos);
  EXPECT_NE(errors[5].find("not key=value"), std::string::npos);
  EXPECT_NE(errors[7].find("longer than"), std::string::npos);
}

TEST(SpankConfig, EventKeys) {
  std::vector<std::string> errors;
  Config d = parse_config({}, errors);
  EXPECT_TRUE(d.bpf);
  EXPECT_EQ(d.bpf_ring_kib, 1024u);
  EXPECT_FALSE(d.file_bytes);
  Config c = parse_config({"bpf=off", "bpf_ring_kib=4", "file_bytes=on"}, errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_FALSE(c.bpf);
  EXPECT_EQ(c.bpf_ring_kib, 4u);
  EXPECT_TRUE(c.file_bytes);
  parse_config(
      {"bpf=maybe", "bpf_ring_kib=3", "bpf_ring_kib=-8", "bpf_ring_kib=2000000", "bpf_ring_kib=", "file_bytes=2"},
      errors);
  ASSERT_EQ(errors.size(), 6u);
  EXPECT_NE(errors[0].find("bpf="), std::string::npos);
  for (int i = 1; i < 5; ++i) EXPECT_NE(errors[i].find("bpf_ring_kib="), std::string::npos) << errors[i];
  EXPECT_NE(errors[5].find("file_bytes="), std::string::npos);
  // bpf_object=: another BPF object for the monitors (--bpf-object), an absolute path.
  errors.clear();
  EXPECT_EQ(d.bpf_object, "");
  EXPECT_EQ(parse_config({"bpf_object=/opt/bc/events.bpf.o"}, errors).bpf_object, "/opt/bc/events.bpf.o");
  EXPECT_TRUE(errors.empty());
  parse_config({"bpf_object=events.bpf.o"}, errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("bpf_object= needs an absolute path"), std::string::npos) << errors[0];
}

TEST(SpankConfig, TaskWait) {
  std::vector<std::string> errors;
  EXPECT_EQ(parse_config({}, errors).bpf_task_wait_ms, 2000);
  EXPECT_EQ(parse_config({"bpf_task_wait_ms=0"}, errors).bpf_task_wait_ms, 0);
  EXPECT_EQ(parse_config({"bpf_task_wait_ms=10000"}, errors).bpf_task_wait_ms, 10000);
  EXPECT_TRUE(errors.empty());
  parse_config({"bpf_task_wait_ms=10001", "bpf_task_wait_ms=-1", "bpf_task_wait_ms=x"}, errors);
  ASSERT_EQ(errors.size(), 3u);
  for (const auto& e : errors) EXPECT_NE(e.find("bpf_task_wait_ms="), std::string::npos) << e;
}

TEST(SpankConfig, BoolSpellings) {
  bool v = false;
  for (const char* yes : {"yes", "1", "true", "on"}) {
    EXPECT_TRUE(bc::kv::parse_bool(yes, v));
    EXPECT_TRUE(v);
  }
  for (const char* no : {"no", "0", "false", "off"}) {
    EXPECT_TRUE(bc::kv::parse_bool(no, v));
    EXPECT_FALSE(v);
  }
  EXPECT_FALSE(bc::kv::parse_bool("Y", v));
  EXPECT_FALSE(bc::kv::parse_bool("", v));
}

TEST(SpankConfig, NvmlKey) {
  std::vector<std::string> errors;
  EXPECT_EQ(parse_config({}, errors).nvml, "") << "bc-monitor's default (libnvidia-ml.so.1)";
  EXPECT_EQ(parse_config({"nvml=off"}, errors).nvml, "off");
  EXPECT_EQ(parse_config({"nvml=/opt/nvidia/libnvidia-ml.so.1"}, errors).nvml, "/opt/nvidia/libnvidia-ml.so.1");
  EXPECT_TRUE(errors.empty());
  parse_config({"nvml=libnvidia-ml.so.1"}, errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("nvml= needs an absolute path"), std::string::npos) << errors[0];
}
