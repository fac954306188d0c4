// The launch contract's command line: what the SPANK plugin and bc-docker build (monitor_argv) is what
// bc-monitor parses (parse_monitor_args), field by field.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "cgroup_monitor/launch.hpp"
#include "cgroup_monitor/monitor_args.hpp"
#include "common/fd.hpp"

namespace bc::monitor {
namespace {

std::optional<MonitorArgs> parse(std::vector<std::string> args, std::string& error) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  MonitorOptions defaults;
  defaults.node = "default-node";
  return parse_monitor_args(static_cast<int>(args.size()), argv.data(), defaults, error);
}

MonitorCommand everything() {
  MonitorCommand c;
  c.monitor = "/usr/sbin/bc-monitor";
  c.job_id = 4242;
  c.uid = 1001;
  c.node = "node7";
  c.store = "/var/lib/bc/node.lmdb";
  c.run_dir = "/run/bc";
  c.interval_s = 0.25;
  c.cgroup_version = 2;
  c.cgroup_path = "/system.slice/slurmstepd.scope/job_4242";
  c.bpf = false;
  c.bpf_ring_kib = 2048;
  c.pass_file_bytes = true;
  c.file_bytes = true;
  c.bpf_object = "/usr/lib/bc/events.bpf.o";
  c.job_name = "a job name with spaces";
  c.job_nodes = "n[01-04,17],login1";
  c.nvml = "/opt/nvidia/lib64/libnvidia-ml.so.1";
  c.gpus = "0,2-3";
  c.array_job_id = 4000;
  c.array_task_id = 0;
  c.central = "https://bcd.example:8470";
  c.outbox_max_mib = 64;
  c.ship_every_s = 5;
  c.ca_file = BC_TLS_DIR "/ca.pem";
  c.munge_socket = "/run/munge/other.socket";
  c.container_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  c.container_name = "web-1";
  c.container_image = "nginx:1.25";
  return c;
}

TEST(MonitorCommandLine, EveryFieldRoundTrips) {
  char key_path[] = "/tmp/bc-test-key-XXXXXX";
  const int fd = mkstemp(key_path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(key_path) << "bck_example-key\n";
  MonitorCommand c = everything();
  c.api_key_file = key_path;

  std::string error;
  const std::vector<std::string> argv = monitor_argv(c);
  EXPECT_EQ(argv.front(), c.monitor);
  const auto parsed = parse(argv, error);
  std::remove(key_path);
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(parsed->action, MonitorArgs::Action::Run);
  const MonitorOptions& o = parsed->options;
  EXPECT_EQ(o.job_id, c.job_id);
  EXPECT_EQ(o.uid, c.uid);
  EXPECT_EQ(o.node, c.node);
  EXPECT_EQ(o.store_path, c.store);
  EXPECT_EQ(o.run_dir, c.run_dir);
  EXPECT_DOUBLE_EQ(o.interval_s, c.interval_s);
  EXPECT_EQ(o.cgroup_version, c.cgroup_version);
  EXPECT_EQ(o.cgroup_relative, c.cgroup_path);
  EXPECT_EQ(o.events.enabled, c.bpf);
  EXPECT_EQ(o.events.ring_bytes, size_t{c.bpf_ring_kib} * 1024);
  EXPECT_EQ(o.events.file_bytes, c.file_bytes);
  EXPECT_EQ(o.events.object_file, c.bpf_object);
  EXPECT_EQ(o.job_name, c.job_name);
  EXPECT_EQ(o.job_nodes, c.job_nodes);
  EXPECT_EQ(o.nvml_library, c.nvml);
  EXPECT_EQ(o.gpus, c.gpus);
  EXPECT_EQ(o.array_job_id, c.array_job_id);
  EXPECT_EQ(o.array_task_id, c.array_task_id);
  EXPECT_EQ(o.central_url, c.central);
  EXPECT_EQ(o.api_key, "bck_example-key");
  EXPECT_EQ(o.outbox_max_bytes, c.outbox_max_mib << 20);
  EXPECT_DOUBLE_EQ(o.ship_every_s, static_cast<double>(c.ship_every_s));
  EXPECT_EQ(o.ca_file, c.ca_file);
  EXPECT_EQ(o.munge_socket, c.munge_socket);
  EXPECT_EQ(o.container_id, c.container_id);
  EXPECT_EQ(o.container_name, c.container_name);
  EXPECT_EQ(o.container_image, c.container_image);
}

// What a launcher leaves empty is not on the command line, and the monitor keeps its defaults.
TEST(MonitorCommandLine, UnsetFieldsKeepTheMonitorsDefaults) {
  MonitorCommand c;
  c.monitor = "bc-monitor";
  c.job_id = 7;
  c.node = "n1";
  c.store = "/s";
  c.run_dir = "/r";
  c.cgroup_path = "/slurm/uid_0/job_7";
  c.ship_every_s = 9;  // ignored without central
  const std::vector<std::string> argv = monitor_argv(c);
  for (const char* absent : {"--file-bytes", "--bpf-ring-kib", "--central", "--ship-every", "--job-name", "--array-job",
                             "--container-id", "--munge-socket", "--ca-file"})
    EXPECT_EQ(std::find(argv.begin(), argv.end(), absent), argv.end()) << absent;
  std::string error;
  const auto parsed = parse(argv, error);
  ASSERT_TRUE(parsed) << error;
  const MonitorOptions defaults;
  EXPECT_EQ(parsed->options.events.ring_bytes, defaults.events.ring_bytes);
  EXPECT_EQ(parsed->options.events.file_bytes, defaults.events.file_bytes);
  EXPECT_EQ(parsed->options.outbox_max_bytes, defaults.outbox_max_bytes);
  EXPECT_EQ(parsed->options.central_url, "");
  EXPECT_DOUBLE_EQ(parsed->options.ship_every_s, 0);
}

TEST(MonitorCommandLine, UsageErrorsSaySo) {
  std::string error;
  EXPECT_FALSE(parse({"bc-monitor", "--job", "0", "--cgroup-path", "/x"}, error));
  EXPECT_EQ(error, "--job needs a positive job id");
  EXPECT_FALSE(parse({"bc-monitor", "--job", "3"}, error));
  EXPECT_EQ(error, "--cgroup-path is required and must start with '/'");
  EXPECT_FALSE(parse({"bc-monitor", "--check-events", "--job", "3"}, error));
  EXPECT_EQ(error, "--check-events takes no job");
  EXPECT_FALSE(parse({"bc-monitor", "--json"}, error));
  EXPECT_EQ(error, "--json and --verbose go with --check-events");
  const auto help = parse({"bc-monitor", "--help"}, error);
  ASSERT_TRUE(help);
  EXPECT_EQ(help->action, MonitorArgs::Action::Help);
}

}  // namespace
}  // namespace bc::monitor

// A later step passes the job's node list to a monitor started without it (the extern step's): the file
// holds the whole list, the last one written.
TEST(JobNodesFile, HoldsTheWholeLastList) {
  char dir[] = "/tmp/bc-test-run-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir));
  EXPECT_TRUE(bc::monitor::write_job_nodes(dir, 42, "n[01-99],login1"));
  EXPECT_EQ(bc::read_file(bc::monitor::job_nodes_path(dir, 42)), "n[01-99],login1");
  EXPECT_TRUE(bc::monitor::write_job_nodes(dir, 42, "n1"));
  EXPECT_EQ(bc::read_file(bc::monitor::job_nodes_path(dir, 42)), "n1");
  EXPECT_FALSE(bc::monitor::write_job_nodes(std::string(dir) + "/missing", 42, "n1"));
  std::remove(bc::monitor::job_nodes_path(dir, 42).c_str());
  EXPECT_EQ(::rmdir(dir), 0) << "no partial file is left behind";
}
