// Unit tests of bc-docker's pure parts. No Docker needed: the JSON and /proc texts are captured from a real
// dockerd 20.10 (cgroupfs driver, cgroup v1 hybrid host) or written in the documented formats.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/container_key.hpp"
#include "docker_monitor/container_cgroup.hpp"
#include "docker_monitor/container_log.hpp"
#include "docker_monitor/discovery.hpp"
#include "docker_monitor/docker_api.hpp"
#include "docker_monitor/docker_config.hpp"
#include "docker_monitor/docker_launcher.hpp"

using namespace bc::docker;

namespace {

const std::string kId = "c4c4d0ac8d4e0799494b1616608c4c812450d8b390a518a59a377220f0e6fbe4";
const std::string kOtherId = "b62429632c5d95ace12e4af26daaff778e9186c745396dd05f5c40a2c81c327d";

const char kStartEvent[] =
    R"({"status":"start","id":"c4c4d0ac8d4e0799494b1616608c4c812450d8b390a518a59a377220f0e6fbe4","from":"bc-busybox:test",)"
    R"("Type":"container","Action":"start","Actor":{"ID":"c4c4d0ac8d4e0799494b1616608c4c812450d8b390a518a59a377220f0e6fbe4",)"
    R"("Attributes":{"bubble-chamber.monitor":"true","image":"bc-busybox:test","name":"bcsample2"}},"scope":"local",)"
    R"("time":1795555491,"timeNano":1795555491623759680})";
const char kDieEvent[] =
    R"({"status":"die","id":"c4c4d0ac8d4e0799494b1616608c4c812450d8b390a518a59a377220f0e6fbe4","from":"bc-busybox:test",)"
    R"("Type":"container","Action":"die","Actor":{"ID":"c4c4d0ac8d4e0799494b1616608c4c812450d8b390a518a59a377220f0e6fbe4",)"
    R"("Attributes":{"bubble-chamber.monitor":"true","exitCode":"3","image":"bc-busybox:test","name":"bcsample2"}},)"
    R"("scope":"local","time":1795555491,"timeNano":1795555491644840198})";

std::string inspect_json(const std::string& id, bool running, int pid, const std::string& started,
                         const std::string& finished, int exit_code, const std::string& labels = "{}") {
  return R"({"Id":")" + id +
         R"(","Created":"2026-11-24T21:24:41.787972446Z","Path":"sh","Args":["-c","sleep 2; exit 3"],)" +
         R"("State":{"Status":")" + (running ? "running" : "exited") + R"(","Running":)" +
         (running ? "true" : "false") + R"(,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":)" +
         std::to_string(pid) + R"(,"ExitCode":)" + std::to_string(exit_code) + R"(,"Error":"","StartedAt":")" +
         started + R"(","FinishedAt":")" + finished +
         R"("},"Image":"sha256:9d51a5620596a0a46ca2a47064aea98a6da0f79098cedd8cfcb7ff31142dd118",)" +
         R"("Name":"/bcsample","Config":{"Hostname":"b62429632c5d","Image":"bc-busybox:test","Labels":)" + labels +
         "}}";
}

std::string v1_cgroupfs(const std::string& id) {
  std::string t;
  for (const char* line : {"9:name=systemd", "8:pids", "7:blkio", "6:freezer", "5:devices", "4:memory", "3:cpuset",
                           "2:cpuacct", "1:cpu", "0:"})
    t += std::string(line) + ":/docker/" + id + "\n";
  return t;
}

}  // namespace

// ---- key mapping ----

TEST(ContainerKey, SetsTheTopBitAndKeepsTheShortIdInTheLow48Bits) {
  auto key = bc::container::container_key("c4c4d0ac8d4e");
  ASSERT_TRUE(key);
  EXPECT_EQ(*key, (1ULL << 63) | 0xc4c4d0ac8d4eULL);
  EXPECT_EQ(*key, 9223588386448379214ULL);
  EXPECT_EQ(bc::container::container_key(kId), key) << "a full id maps like its short id";
  EXPECT_EQ(bc::container::container_key("C4C4D0AC8D4E"), key);
}

TEST(ContainerKey, InverseGivesTheShortId) {
  EXPECT_EQ(bc::container::short_id_from_key(*bc::container::container_key(kId)), "c4c4d0ac8d4e");
  EXPECT_EQ(bc::container::short_id_from_key(*bc::container::container_key("000000000000")), "000000000000");
  EXPECT_EQ(bc::container::short_id_from_key(*bc::container::container_key("ffffffffffff")), "ffffffffffff");
}

TEST(ContainerKey, NeverCollidesWithSlurmJobIds) {
  EXPECT_FALSE(bc::container::is_container_key(42));
  EXPECT_FALSE(bc::container::is_container_key(0xffffffffULL));
  EXPECT_FALSE(bc::container::short_id_from_key(4294967295ULL));
  EXPECT_FALSE(bc::container::is_container_key((1ULL << 63) | (1ULL << 50))) << "bits 48-62 must be clear";
  EXPECT_TRUE(bc::container::is_container_key(*bc::container::container_key("000000000000")));
  EXPECT_GT(*bc::container::container_key("000000000000"), 0xffffffffULL);
}

TEST(ContainerKey, RejectsWhatIsNotAShortId) {
  EXPECT_FALSE(bc::container::container_key("c4c4d0ac8d4"));   // 11 digits
  EXPECT_FALSE(bc::container::container_key("c4c4d0ac8d4g"));  // not hex
  EXPECT_FALSE(bc::container::container_key(""));
  static_assert(bc::container::container_key("000000000001").value() == ((1ULL << 63) | 1));
}

// ---- events ----

TEST(DockerEvent, ParsesAStartEvent) {
  auto e = parse_event(kStartEvent);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->action, "start");
  EXPECT_EQ(e->id, kId);
  EXPECT_EQ(e->name, "bcsample2");
  EXPECT_EQ(e->image, "bc-busybox:test");
  EXPECT_EQ(e->time_ns, 1795555491623759680LL) << "nanoseconds exactly, beyond a double's precision";
  EXPECT_FALSE(e->exit_code);
  EXPECT_EQ(e->attributes.at("bubble-chamber.monitor"), "true");
}

TEST(DockerEvent, DieCarriesTheExitCode) {
  auto e = parse_event(kDieEvent);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->action, "die");
  ASSERT_TRUE(e->exit_code);
  EXPECT_EQ(*e->exit_code, 3);
  EXPECT_EQ(e->time_ns, 1795555491644840198LL);
}

TEST(DockerEvent, IgnoresOtherTypesAndJunk) {
  EXPECT_FALSE(parse_event(R"({"Type":"network","Action":"connect","Actor":{"ID":")" + kId + R"("}})"));
  EXPECT_FALSE(parse_event("not json"));
  EXPECT_FALSE(parse_event(R"({"Type":"container","Action":"start","Actor":{"ID":"short"}})"));
  EXPECT_FALSE(parse_event(""));
  EXPECT_FALSE(parse_event("[]"));
}

TEST(DockerEvent, ALabelNamedTimeNanoDoesNotFoolTheExactTime) {
  std::string line = kStartEvent;
  line.replace(line.find(R"("image")"), 0, R"("timeNano":"1",)");
  auto e = parse_event(line);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->time_ns, 1795555491623759680LL);
}

TEST(DockerEvent, EventsPathFiltersContainerLifecycle) {
  EXPECT_EQ(events_path(0).find("since"), std::string::npos);
  const std::string p = events_path(1795555491000000001LL);
  EXPECT_NE(p.find("&since=1795555491.000000001"), std::string::npos) << p;
  EXPECT_EQ(p.rfind("/events?filters=", 0), 0U);
}

// ---- inspect, list, time ----

TEST(DockerInspect, RunningContainer) {
  auto c = parse_inspect(inspect_json(kId, true, 4242, "2026-11-24T21:24:42.214462284Z", "0001-01-01T00:00:00Z", 0,
                                      R"({"bubble-chamber.monitor":"true"})"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->id, kId);
  EXPECT_EQ(c->name, "bcsample");
  EXPECT_EQ(c->image, "bc-busybox:test");
  EXPECT_EQ(c->image_id.rfind("sha256:", 0), 0U);
  EXPECT_EQ(c->command, (std::vector<std::string>{"sh", "-c", "sleep 2; exit 3"}));
  EXPECT_TRUE(c->running);
  EXPECT_EQ(c->pid, 4242);
  EXPECT_EQ(c->started_ns, 1795555482214462284LL);
  EXPECT_EQ(c->finished_ns, 0);
  EXPECT_FALSE(c->exit_code) << "no exit code while running";
  EXPECT_TRUE(has_monitor_label(c->labels));
}

TEST(DockerInspect, ExitedContainer) {
  auto c =
      parse_inspect(inspect_json(kId, false, 0, "2026-11-24T21:24:42.214462284Z", "2026-11-24T21:24:44.242754601Z", 3));
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->running);
  ASSERT_TRUE(c->exit_code);
  EXPECT_EQ(*c->exit_code, 3);
  EXPECT_EQ(c->finished_ns - c->started_ns, 2028292317LL);
  EXPECT_FALSE(has_monitor_label(c->labels));
}

TEST(DockerInspect, RejectsNonsense) {
  EXPECT_FALSE(parse_inspect(R"({"message":"No such container: x"})"));
  EXPECT_FALSE(parse_inspect("{"));
}

TEST(DockerList, ParsesNamesStatesAndLabels) {
  const std::string json = R"([{"Id":")" + kId +
                           R"(","Names":["/bcsample"],"Image":"bc-busybox:test","State":"running",)"
                           R"("Labels":{"a":"b"}},{"Id":")" +
                           kOtherId +
                           R"(","Names":["/x"],"State":"exited","Labels":null},)"
                           R"({"Id":"bogus"}])";
  auto list = parse_container_list(json);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2U);
  EXPECT_EQ((*list)[0].name, "bcsample");
  EXPECT_EQ((*list)[0].state, "running");
  EXPECT_EQ((*list)[0].labels.at("a"), "b");
  EXPECT_EQ((*list)[1].state, "exited");
  EXPECT_FALSE(parse_container_list("{}"));
}

TEST(DockerTime, Rfc3339Variants) {
  EXPECT_EQ(parse_docker_time_ns("1970-01-01T00:00:01Z"), 1000000000LL);
  EXPECT_EQ(parse_docker_time_ns("1970-01-01T00:00:01.5Z"), 1500000000LL);
  EXPECT_EQ(parse_docker_time_ns("1970-01-01T01:00:01+01:00"), 1000000000LL);
  EXPECT_EQ(parse_docker_time_ns("1970-01-01T00:00:00.000000001-00:00"), 1LL);
  EXPECT_EQ(parse_docker_time_ns("0001-01-01T00:00:00Z"), 0) << "Docker's zero time";
  EXPECT_FALSE(parse_docker_time_ns("2026-11-24 nonsense"));
  EXPECT_FALSE(parse_docker_time_ns("2026-11-24T21:24:42"));  // no zone
  EXPECT_FALSE(parse_docker_time_ns("2026-13-24T21:24:42Z"));
}

// ---- cgroup location ----

TEST(ContainerCgroup, CgroupfsDriverOnV1) {
  auto cg = container_cgroup_from_proc_cgroup(v1_cgroupfs(kId), kId);
  ASSERT_TRUE(cg);
  EXPECT_EQ(cg->version, 1) << "v1 wins on a hybrid host even though the unified line holds it too";
  EXPECT_EQ(cg->relative_path, "/docker/" + kId);
}

TEST(ContainerCgroup, SystemdDriverOnV1) {
  const std::string scope = "/system.slice/docker-" + kId + ".scope";
  const std::string text = "12:pids:" + scope + "\n11:memory:" + scope + "\n4:cpu,cpuacct:" + scope +
                           "\n1:name=systemd:" + scope + "\n0::" + scope + "\n";
  auto cg = container_cgroup_from_proc_cgroup(text, kId);
  ASSERT_TRUE(cg);
  EXPECT_EQ(cg->version, 1);
  EXPECT_EQ(cg->relative_path, scope);
}

TEST(ContainerCgroup, SystemdDriverOnV2) {
  auto cg = container_cgroup_from_proc_cgroup("0::/system.slice/docker-" + kId + ".scope\n", kId);
  ASSERT_TRUE(cg);
  EXPECT_EQ(cg->version, 2);
  EXPECT_EQ(cg->relative_path, "/system.slice/docker-" + kId + ".scope");
}

TEST(ContainerCgroup, CgroupfsDriverOnV2AndCustomParent) {
  auto cg = container_cgroup_from_proc_cgroup("0::/docker/" + kId + "\n", kId);
  ASSERT_TRUE(cg);
  EXPECT_EQ(cg->version, 2);
  EXPECT_EQ(cg->relative_path, "/docker/" + kId);
  auto nested = container_cgroup_from_proc_cgroup("4:memory:/batch/team-a/" + kId + "\n", kId);
  ASSERT_TRUE(nested);
  EXPECT_EQ(nested->relative_path, "/batch/team-a/" + kId);
}

TEST(ContainerCgroup, ProcessInASubCgroupYieldsTheContainerDirectory) {
  // systemd inside the container: its processes sit below the container's cgroup.
  auto cg = container_cgroup_from_proc_cgroup("0::/system.slice/docker-" + kId + ".scope/init.scope\n", kId);
  ASSERT_TRUE(cg);
  EXPECT_EQ(cg->relative_path, "/system.slice/docker-" + kId + ".scope");
}

TEST(ContainerCgroup, AnotherContainerOrTheHostIsNotIt) {
  EXPECT_FALSE(container_cgroup_from_proc_cgroup(v1_cgroupfs(kOtherId), kId));
  EXPECT_FALSE(container_cgroup_from_proc_cgroup("4:memory:/user.slice\n0::/init.scope\n", kId));
  // A component that merely contains the id is not the container's.
  EXPECT_FALSE(container_cgroup_from_proc_cgroup("4:memory:/docker/" + kId + "x\n", kId));
  EXPECT_FALSE(container_cgroup_from_proc_cgroup("4:memory:/docker/x" + kId + ".scope\n", kId));
  // Only a named hierarchy (no controller) holds it: nothing to read there.
  EXPECT_FALSE(container_cgroup_from_proc_cgroup("1:name=systemd:/docker/" + kId + "\n", kId));
  EXPECT_FALSE(container_cgroup_from_proc_cgroup("", kId));
}

// ---- config ----

TEST(DockerConfig, DefaultsThenFileValues) {
  Config c;
  EXPECT_EQ(c.socket, "/var/run/docker.sock");
  EXPECT_FALSE(c.label_only);
  EXPECT_FALSE(c.retry);
  EXPECT_DOUBLE_EQ(c.interval_s, 1.0);
  std::vector<std::string> errors;
  parse_config_text(c,
                    "# comment\n\n socket = /run/docker.sock\nstore=/s/node.lmdb\nmonitor=/m/bc-monitor\n"
                    "rundir=/r\nlog=/l/monitor.log\nstate=/st\ninterval=0.5\nlabel_only=yes\nretry=true\nnode=n1\n",
                    "docker.conf", errors);
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(c.socket, "/run/docker.sock");
  EXPECT_EQ(c.store, "/s/node.lmdb");
  EXPECT_EQ(c.monitor, "/m/bc-monitor");
  EXPECT_EQ(c.run_dir, "/r");
  EXPECT_EQ(c.log, "/l/monitor.log");
  EXPECT_EQ(c.container_log_path(), "/st/containers.jsonl");
  EXPECT_DOUBLE_EQ(c.interval_s, 0.5);
  EXPECT_TRUE(c.label_only);
  EXPECT_TRUE(c.retry);
  EXPECT_EQ(c.node, "n1");
}

TEST(DockerConfig, UnknownKeysAndBadValuesAreErrorsWithTheirLine) {
  Config c;
  std::vector<std::string> errors;
  parse_config_text(c, "socket=/ok\nsokcet=/typo\ninterval=0\nlabel_only=maybe\nstore=relative\nnoequals\n", "f.conf",
                    errors);
  ASSERT_EQ(errors.size(), 5U);
  EXPECT_NE(errors[0].find("f.conf:2: unknown key 'sokcet'"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("f.conf:3: interval="), std::string::npos) << errors[1];
  EXPECT_NE(errors[2].find("f.conf:4: label_only="), std::string::npos) << errors[2];
  EXPECT_NE(errors[3].find("absolute path"), std::string::npos) << errors[3];
  EXPECT_NE(errors[4].find("f.conf:6:"), std::string::npos) << errors[4];
  EXPECT_EQ(c.socket, "/ok");
}

TEST(DockerConfig, ApplySettingIsWhatTheCommandLineUses) {
  Config c;
  EXPECT_EQ(apply_setting(c, "interval", "2"), "");
  EXPECT_DOUBLE_EQ(c.interval_s, 2.0);
  EXPECT_NE(apply_setting(c, "interval", "abc"), "");
  EXPECT_NE(apply_setting(c, "node", "a b"), "");
  EXPECT_NE(apply_setting(c, "bogus", "1").find("known:"), std::string::npos);
}

TEST(DockerLauncher, MonitorArgumentsAreTheIssueContract) {
  Config c;
  c.monitor = "/usr/sbin/bc-monitor";
  c.store = "/s";
  c.run_dir = "/r";
  c.interval_s = 0.5;
  MonitorRequest request{*bc::container::container_key(kId), 1000, 1, "/docker/" + kId, "x", kId, "web-1", ""};
  auto argv = monitor_argv(c, "node1", request);
  const std::vector<std::string> expected = {"/usr/sbin/bc-monitor",
                                             "--job",
                                             std::to_string(*bc::container::container_key(kId)),
                                             "--node",
                                             "node1",
                                             "--store",
                                             "/s",
                                             "--run-dir",
                                             "/r",
                                             "--interval",
                                             "0.5",
                                             "--cgroup-version",
                                             "1",
                                             "--cgroup-path",
                                             "/docker/" + kId,
                                             "--uid",
                                             "1000",
                                             "--bpf",
                                             "on",
                                             "--container-id",
                                             kId,
                                             "--container-name",
                                             "web-1"};
  EXPECT_EQ(argv, expected);  // an unknown image is left out

  // bpf= reaches the monitors, as the plugin's bpf= does on Slurm nodes.
  EXPECT_EQ(apply_setting(c, "bpf", "off"), "");
  argv = monitor_argv(c, "node1", request);
  const std::vector<std::string> bpf_off = {"--bpf", "off"};
  EXPECT_NE(std::search(argv.begin(), argv.end(), bpf_off.begin(), bpf_off.end()), argv.end());
  EXPECT_NE(apply_setting(c, "bpf", "maybe").find("bpf= takes on or off"), std::string::npos);
  EXPECT_EQ(apply_setting(c, "bpf", "on"), "");

  // Pushing to bcd: the key goes by file, never in argv (readable by every user in /proc).
  EXPECT_EQ(apply_setting(c, "central", "http://bcd:8470"), "");
  EXPECT_EQ(apply_setting(c, "api_key_file", "/etc/bubble-chamber/bc-docker.key"), "");
  EXPECT_NE(apply_setting(c, "central", "bcd:8470"), "");
  argv = monitor_argv(c, "node1", request);
  const std::vector<std::string> push = {
      "--central", "http://bcd:8470", "--api-key-file", "/etc/bubble-chamber/bc-docker.key", "--outbox-max-mib", "256"};
  EXPECT_NE(std::search(argv.begin(), argv.end(), push.begin(), push.end()), argv.end());
  // The outbox bound reaches the monitors, as the plugin's outbox_max_mib= does on Slurm nodes.
  EXPECT_EQ(apply_setting(c, "outbox_max_mib", "64"), "");
  EXPECT_EQ(c.outbox_max_mib, 64u);
  for (const char* bad : {"0", "-1", "1048577", "12MiB", ""})
    EXPECT_NE(apply_setting(c, "outbox_max_mib", bad), "") << bad;
  EXPECT_EQ(c.outbox_max_mib, 64u);
  argv = monitor_argv(c, "node1", request);
  const std::vector<std::string> bounded = {"--outbox-max-mib", "64"};
  EXPECT_NE(std::search(argv.begin(), argv.end(), bounded.begin(), bounded.end()), argv.end());
  // So does ship_every= when set (0, the default, every tick, is not passed: an older bc-monitor still starts).
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "--ship-every"), argv.end());
  EXPECT_EQ(apply_setting(c, "ship_every", "10"), "");
  for (const char* bad : {"-1", "3601", "10s", "1.5", ""})
    EXPECT_NE(apply_setting(c, "ship_every", bad).find("ship_every= takes whole seconds"), std::string::npos) << bad;
  argv = monitor_argv(c, "node1", request);
  const std::vector<std::string> every_10 = {"--ship-every", "10"};
  EXPECT_NE(std::search(argv.begin(), argv.end(), every_10.begin(), every_10.end()), argv.end());
  // ca_file= verifies an https bcd; it reaches the monitors only when set.
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "--ca-file"), argv.end());
  EXPECT_EQ(apply_setting(c, "ca_file", "ca.pem"), "ca_file= needs an absolute path, got 'ca.pem'");
  EXPECT_EQ(apply_setting(c, "central", "https://bcd:8470"), "");
  EXPECT_EQ(apply_setting(c, "ca_file", "/etc/bubble-chamber/ca.pem"), "");
  argv = monitor_argv(c, "node1", request);
  const std::vector<std::string> https = {"--central", "https://bcd:8470"},
                                 ca = {"--ca-file", "/etc/bubble-chamber/ca.pem"};
  EXPECT_NE(std::search(argv.begin(), argv.end(), https.begin(), https.end()), argv.end());
  EXPECT_NE(std::search(argv.begin(), argv.end(), ca.begin(), ca.end()), argv.end());
}

// ---- container log ----

class ContainerLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bc-docker-unit-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(ContainerLogTest, RoundTripsAndTheLastLineOfAContainerWins) {
  ContainerLog log(dir_ + "/state/containers.jsonl");  // creates the directory
  ContainerRecord r;
  r.id = kId;
  r.short_id = kId.substr(0, 12);
  r.key = *bc::container::container_key(kId);
  r.name = "bcsample";
  r.image = "bc-busybox:test";
  r.command = {"sh", "-c", "exit 3"};
  r.start_ns = 1795555491623759680LL;
  r.monitored = false;
  r.reason = "exited before a monitor could start";
  log.write(r);
  ContainerRecord other = r;
  other.id = kOtherId;
  log.write(other);
  r.running = false;
  r.end_ns = r.start_ns + 21080518;
  r.exit_code = 3;
  log.write(r);

  auto all = log.load_all();
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(all[2].key, r.key) << "the key survives as a decimal string";
  EXPECT_EQ(all[2].exit_code, 3);
  EXPECT_EQ(all[2].start_ns, r.start_ns);
  EXPECT_NEAR(*all[2].duration_s(), 0.021080518, 1e-9);
  EXPECT_EQ(all[2].command, r.command);
  auto running = log.load_running();
  ASSERT_EQ(running.size(), 1U) << "the first container has ended";
  EXPECT_EQ(running.begin()->first, kOtherId);

  std::ifstream in(log.path());
  std::string last, line;
  while (std::getline(in, line)) last = line;
  EXPECT_NE(last.find(R"("exit_code":3)"), std::string::npos) << last;
  EXPECT_NE(last.find(R"("state":"exited")"), std::string::npos) << last;
  EXPECT_NE(last.find(R"("key":"9223588386448379214")"), std::string::npos) << last;
  EXPECT_NE(last.find(R"("monitored":false)"), std::string::npos) << last;
  EXPECT_NE(last.find(R"("times":"events")"), std::string::npos) << last;
}

TEST_F(ContainerLogTest, UnwritablePlaceIsAClearError) {
  EXPECT_THROW(ContainerLog("/proc/no/such/containers.jsonl"), std::runtime_error);
}

// ---- discovery, with fakes ----

namespace {

struct FakeDocker : DockerQueries {
  std::map<std::string, InspectResult> answers;
  int calls = 0;
  InspectResult inspect(const std::string& id) override {
    ++calls;
    auto it = answers.find(id);
    if (it != answers.end()) return it->second;
    InspectResult r;
    r.status = InspectResult::Status::NotFound;
    return r;
  }
  void running(const std::string& id, int pid, const std::string& labels = "{}") {
    InspectResult r;
    r.status = InspectResult::Status::Ok;
    r.info = *parse_inspect(
        inspect_json(id, true, pid, "2026-11-24T21:24:42.214462284Z", "0001-01-01T00:00:00Z", 0, labels));
    answers[id] = r;
  }
  void exited(const std::string& id, int code) {
    InspectResult r;
    r.status = InspectResult::Status::Ok;
    r.info = *parse_inspect(
        inspect_json(id, false, 0, "2026-11-24T21:24:42.214462284Z", "2026-11-24T21:24:42.254462284Z", code));
    answers[id] = r;
  }
};

struct FakeLauncher : MonitorLauncher {
  std::vector<MonitorRequest> started;
  bool fail = false;
  Result ensure(const MonitorRequest& request) override {
    Result r;
    if (fail) {
      r.message = "no binary";
      return r;
    }
    for (const auto& s : started)
      if (s.key == request.key) {
        r.outcome = Outcome::AlreadyRunning;
        return r;
      }
    started.push_back(request);
    r.outcome = Outcome::Started;
    r.pid = 777;
    return r;
  }
};

class DockerDiscovery : public ContainerLogTest {
 protected:
  void SetUp() override {
    ContainerLogTest::SetUp();
    log_ = std::make_unique<ContainerLog>(dir_ + "/containers.jsonl");
    proc_["/proc/4242/cgroup"] = v1_cgroupfs(kId);
    proc_["/proc/4242/status"] = "Name:\tsh\nUid:\t1000\t1000\t1000\t1000\nVmRSS:\t100 kB\n";
  }
  Discovery make(Config config = {}) {
    return Discovery(
        config, "node1", docker_, launcher_, *log_, [this](Level, const std::string& t) { logged_.push_back(t); },
        [this](const std::string& p) -> std::optional<std::string> {
          auto it = proc_.find(p);
          if (it == proc_.end()) return std::nullopt;
          return it->second;
        },
        [] { return int64_t{1795555482314462284LL}; });
  }
  ContainerEvent event(const char* json) { return *parse_event(json); }

  FakeDocker docker_;
  FakeLauncher launcher_;
  std::unique_ptr<ContainerLog> log_;
  std::map<std::string, std::string> proc_;
  std::vector<std::string> logged_;
};

}  // namespace

TEST_F(DockerDiscovery, StartLaunchesAMonitorOnTheContainersCgroup) {
  docker_.running(kId, 4242);
  auto d = make();
  d.on_event(event(kStartEvent));
  ASSERT_EQ(launcher_.started.size(), 1U);
  EXPECT_EQ(launcher_.started[0].key, *bc::container::container_key(kId));
  EXPECT_EQ(launcher_.started[0].cgroup_path, "/docker/" + kId);
  EXPECT_EQ(launcher_.started[0].cgroup_version, 1);
  EXPECT_EQ(launcher_.started[0].uid, 1000U);
  auto all = log_->load_all();
  ASSERT_EQ(all.size(), 1U);
  EXPECT_TRUE(all[0].monitored);
  EXPECT_TRUE(all[0].running);
  EXPECT_EQ(all[0].name, "bcsample");

  // The same start again (replay after reconnect, or the list overlapping the stream): nothing new.
  d.on_event(event(kStartEvent));
  d.resync({ListedContainer{kId, "bcsample", "bc-busybox:test", "running", {}}});
  EXPECT_EQ(launcher_.started.size(), 1U);
  EXPECT_EQ(log_->load_all().size(), 1U);

  docker_.exited(kId, 3);
  d.on_event(event(kDieEvent));
  all = log_->load_all();
  ASSERT_EQ(all.size(), 2U);
  EXPECT_FALSE(all[1].running);
  EXPECT_EQ(all[1].exit_code, 3);
  EXPECT_NEAR(*all[1].duration_s(), 0.040, 1e-9) << "from State.StartedAt/FinishedAt";
}

TEST_F(DockerDiscovery, GoneBeforeInspectIsRecordedFromTheEvents) {
  // docker run --rm sh -c 'exit 3': by the time the start event is handled, inspect answers 404.
  auto d = make();
  d.on_event(event(kStartEvent));
  d.on_event(event(kDieEvent));
  EXPECT_TRUE(launcher_.started.empty());
  auto all = log_->load_all();
  ASSERT_EQ(all.size(), 2U);
  EXPECT_FALSE(all[1].monitored);
  EXPECT_NE(all[1].reason.find("exited before a monitor could start"), std::string::npos) << all[1].reason;
  EXPECT_EQ(all[1].name, "bcsample2");
  EXPECT_EQ(all[1].exit_code, 3);
  EXPECT_EQ(all[1].end_ns - all[1].start_ns, 1795555491644840198LL - 1795555491623759680LL);
  EXPECT_TRUE(d.runs().count(kId));
  ContainerEvent destroy = event(kDieEvent);
  destroy.action = "destroy";
  d.on_event(destroy);
  EXPECT_FALSE(d.runs().count(kId)) << "destroy forgets the container";
}

TEST_F(DockerDiscovery, ExitedBeforeInspectKeepsDockersExitCode) {
  docker_.exited(kId, 3);
  auto d = make();
  d.on_event(event(kStartEvent));
  d.on_event(event(kDieEvent));
  auto all = log_->load_all();
  ASSERT_EQ(all.size(), 1U) << "the die adds nothing: the end was known at the start";
  EXPECT_FALSE(all[0].running);
  EXPECT_EQ(all[0].exit_code, 3);
  EXPECT_FALSE(all[0].monitored);
}

TEST_F(DockerDiscovery, InitProcessGoneBetweenInspectAndProc) {
  docker_.running(kId, 999);  // no /proc/999
  auto d = make();
  d.on_event(event(kStartEvent));
  EXPECT_TRUE(launcher_.started.empty());
  auto all = log_->load_all();
  ASSERT_EQ(all.size(), 1U);
  EXPECT_FALSE(all[0].monitored);
  EXPECT_NE(all[0].reason.find("exited before a monitor could start"), std::string::npos);
}

TEST_F(DockerDiscovery, LabelOnlySkipsUnlabelledButRecordsThem) {
  docker_.running(kId, 4242);
  Config config;
  config.label_only = true;
  auto d = make(config);
  d.on_event(event(kStartEvent));
  EXPECT_TRUE(launcher_.started.empty());
  auto all = log_->load_all();
  ASSERT_EQ(all.size(), 1U);
  EXPECT_NE(all[0].reason.find("not labelled"), std::string::npos);

  docker_.running(kOtherId, 4242, R"({"bubble-chamber.monitor":"true"})");
  proc_["/proc/4242/cgroup"] = v1_cgroupfs(kOtherId);
  d.resync({ListedContainer{kOtherId, "x", "i", "running", {}}});
  ASSERT_EQ(launcher_.started.size(), 1U);
  EXPECT_EQ(launcher_.started[0].key, *bc::container::container_key(kOtherId));
}

TEST_F(DockerDiscovery, ResyncClosesRunsThatEndedUnwatchedAndRestartsMissingMonitors) {
  // A previous bc-docker left two runs open: one container still runs, the other was removed meanwhile.
  docker_.running(kId, 4242);
  ContainerRecord open;
  open.id = kId;
  open.short_id = kId.substr(0, 12);
  open.key = *bc::container::container_key(kId);
  open.start_ns = *parse_docker_time_ns("2026-11-24T21:24:42.214462284Z");
  open.monitored = true;
  open.cgroup_version = 1;
  open.cgroup_path = "/docker/" + kId;
  open.uid = 1000;
  ContainerRecord removed = open;
  removed.id = kOtherId;
  removed.short_id = kOtherId.substr(0, 12);
  auto d = make();
  d.adopt({{kId, open}, {kOtherId, removed}});
  d.resync({ListedContainer{kId, "bcsample", "bc-busybox:test", "running", {}}});
  ASSERT_EQ(launcher_.started.size(), 1U) << "ensured again: the fake has none running";
  EXPECT_EQ(launcher_.started[0].cgroup_path, "/docker/" + kId);
  auto all = log_->load_all();
  ASSERT_EQ(all.size(), 1U) << "only the removed run gets a line";
  EXPECT_EQ(all[0].id, kOtherId);
  EXPECT_FALSE(all[0].running);
  EXPECT_NE(all[0].reason.find("removed while bc-docker was not watching"), std::string::npos);
}

TEST_F(DockerDiscovery, InspectFailureIsRetriedAtResync) {
  InspectResult broken;
  broken.error = "Connection refused";
  docker_.answers[kId] = broken;
  auto d = make();
  d.on_event(event(kStartEvent));
  EXPECT_TRUE(log_->load_all().empty());
  docker_.exited(kId, 3);  // it ended while dockerd was away
  d.resync({ListedContainer{kId, "bcsample", "bc-busybox:test", "exited", {}}});
  auto all = log_->load_all();
  ASSERT_EQ(all.size(), 1U);
  EXPECT_EQ(all[0].exit_code, 3);
}

TEST_F(DockerDiscovery, MonitorLaunchFailureIsLoggedAndRecorded) {
  docker_.running(kId, 4242);
  launcher_.fail = true;
  auto d = make();
  d.on_event(event(kStartEvent));
  auto all = log_->load_all();
  ASSERT_EQ(all.size(), 1U);
  EXPECT_FALSE(all[0].monitored);
  EXPECT_NE(all[0].reason.find("no binary"), std::string::npos);
}

TEST_F(DockerDiscovery, DieBeforeStartEventOfAVeryShortRunIsOneRun) {
  // Docker publishes "start" after its bookkeeping; a run shorter than that has its die published first.
  auto d = make();
  d.on_event(event(kDieEvent));
  ContainerEvent late_start = event(kStartEvent);
  late_start.time_ns = event(kDieEvent).time_ns + 1000000;
  d.on_event(late_start);
  auto all = log_->load_all();
  ASSERT_EQ(all.size(), 2U);
  EXPECT_FALSE(all[1].running) << "the late start must not reopen the run";
  EXPECT_EQ(all[1].exit_code, 3);
  ASSERT_TRUE(all[1].duration_s());
  EXPECT_EQ(*all[1].duration_s(), 0.0);
  EXPECT_NE(all[1].reason.find("removed before it could be inspected"), std::string::npos) << all[1].reason;
  EXPECT_FALSE(d.runs().at(kId).running);
}

TEST_F(DockerDiscovery, DockerTimesReplaceEventTimesWhenInspectWinsAtTheDie) {
  auto d = make();
  d.on_event(event(kStartEvent));  // inspect lost the race with the removal (404): event times for now
  // ...but at the die it answers (State "removing"), with Docker's own times.
  docker_.exited(kId, 3);
  d.on_event(event(kDieEvent));
  auto all = log_->load_all();
  ASSERT_EQ(all.size(), 2U);
  EXPECT_TRUE(all[1].start_from_docker);
  EXPECT_NEAR(*all[1].duration_s(), 0.040, 1e-9);
}
