// bcacct's output of the eBPF events: exit codes, files and connections tables and JSON, lost events and the
// events-unavailable reason in the header.
#include <gtest/gtest.h>

#include <cJSON.h>

#include <memory>

#include "sacct_ext/report.hpp"

using namespace bc;

namespace {

report::JobData job_with_events() {
  report::JobData d;
  store::JobRecord j;
  j.job_id = 7;
  j.node = "n1";
  j.user = "ann";
  j.start_ms = 1'800'000'000'000;
  j.end_ms = j.start_ms + 5000;
  j.lost = {3, 0, 1, 0, 0, 0};
  j.lost_events = 4;
  d.nodes.push_back(j);
  store::ProcessRecord sh;
  sh.job_id = 7;
  sh.node = "n1";
  sh.pid = 100;
  sh.start_ticks = 10;
  sh.command = "sh";
  sh.argv = {"sh", "-c", "exit 3"};
  sh.start_ms = j.start_ms;
  sh.end_ms = j.start_ms + 5;
  sh.exited = true;
  sh.exit_code = 3;
  sh.exact = true;
  d.processes.push_back(sh);
  store::ProcessRecord killed = sh;
  killed.pid = 101;
  killed.argv = {"sleep", "9"};
  killed.command = "sleep";
  killed.exit_code = -1;
  killed.exit_signal = 9;
  killed.core_dumped = true;
  d.processes.push_back(killed);
  store::ProcessRecord sampled = sh;
  sampled.pid = 102;
  sampled.exited = false;
  sampled.exact = false;
  d.processes.push_back(sampled);
  for (auto [path, opens, failed] : {std::tuple{"/data/often", 10000, 0}, std::tuple{"/missing", 0, 1}}) {
    store::FileRecord f;
    f.job_id = 7;
    f.node = "n1";
    f.pid = 100;
    f.start_ticks = 10;
    f.path = path;
    f.flags = store::kFileRead;
    f.opens = static_cast<uint64_t>(opens);
    f.failed = static_cast<uint64_t>(failed);
    d.files.push_back(f);
  }
  store::FileRecord other = d.files[0];
  other.pid = 101;
  other.opens = 5;
  other.flags = store::kFileWrite;
  d.files.push_back(other);
  store::ConnectionRecord c;
  c.job_id = 7;
  c.node = "n1";
  c.pid = 100;
  c.start_ticks = 10;
  c.address = "127.0.0.1";
  c.port = 4242;
  c.protocol = "tcp";
  c.count = 2;
  c.failed = 2;
  d.connections.push_back(c);
  return d;
}

struct JsonDelete {
  void operator()(cJSON* j) const { cJSON_Delete(j); }
};

}  // namespace

TEST(ReportEvents, ExitText) {
  auto d = job_with_events();
  EXPECT_EQ(report::exit_text(d.processes[0]), "3:0");
  EXPECT_EQ(report::exit_text(d.processes[1]), "0:9+core");
  EXPECT_EQ(report::exit_text(d.processes[2]), "");
}

TEST(ReportEvents, TableHeaderShowsEventsAndLoss) {
  auto d = job_with_events();
  std::string text = report::format_table(d, d.nodes[0].end_ms);
  EXPECT_NE(text.find("Events:        on"), std::string::npos) << text;
  EXPECT_NE(text.find("LostEvents:    4 (ring 3, connections 1)"), std::string::npos) << text;
  EXPECT_NE(text.find("ExitCode"), std::string::npos) << text;
  EXPECT_NE(text.find("0:9+core"), std::string::npos) << text;
  d.nodes[0].events_unavailable = "events unavailable: disabled by configuration (bpf=off)";
  text = report::format_table(d, d.nodes[0].end_ms);
  EXPECT_NE(text.find("Events:        n1: events unavailable: disabled by configuration (bpf=off)"), std::string::npos)
      << text;
}

TEST(ReportEvents, FilesPerProcessAndForTheWholeJob) {
  auto d = job_with_events();
  const std::string per = report::format_files(d, false);
  EXPECT_NE(per.find("Path"), std::string::npos);
  int rows = 0;
  for (size_t at = per.find("/data/often"); at != std::string::npos; at = per.find("/data/often", at + 1)) ++rows;
  EXPECT_EQ(rows, 2) << per;
  EXPECT_NE(per.find("10000"), std::string::npos) << per;
  const std::string all = report::format_files(d, true);
  EXPECT_NE(all.find("/data/often  rw     10005       0      2"), std::string::npos) << all;
  EXPECT_NE(all.find("/missing     r          0       1      1"), std::string::npos) << all;
  report::JobData none = d;
  none.files.clear();
  none.nodes[0].events_unavailable = "events unavailable: no BTF";
  EXPECT_EQ(report::format_files(none, false), "No files recorded: n1: events unavailable: no BTF\n");
  none.nodes[0].events_unavailable.clear();
  EXPECT_EQ(report::format_files(none, true), "No files recorded.\n");
}

TEST(ReportEvents, Connections) {
  auto d = job_with_events();
  const std::string net = report::format_connections(d);
  EXPECT_NE(net.find("tcp    127.0.0.1  4242      2       2"), std::string::npos) << net;
  d.connections.clear();
  EXPECT_EQ(report::format_connections(d), "No connections recorded.\n");
}

TEST(ReportEvents, JsonFields) {
  auto d = job_with_events();
  std::unique_ptr<cJSON, JsonDelete> root(cJSON_Parse(report::format_json(d).c_str()));
  ASSERT_TRUE(root);
  cJSON* job = cJSON_GetObjectItem(root.get(), "job");
  EXPECT_EQ(cJSON_GetObjectItem(job, "lost_events")->valuedouble, 4);
  EXPECT_EQ(cJSON_GetObjectItem(cJSON_GetObjectItem(job, "lost_events_by_cause"), "ring")->valuedouble, 3);
  EXPECT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(job, "events_unavailable")));
  cJSON* procs = cJSON_GetObjectItem(root.get(), "processes");
  ASSERT_EQ(cJSON_GetArraySize(procs), 3);
  int exit3 = 0, nulls = 0;
  for (cJSON* p = procs->child; p; p = p->next) {
    cJSON* code = cJSON_GetObjectItem(p, "exit_code");
    if (cJSON_IsNull(code)) ++nulls;
    else if (code->valuedouble == 3) ++exit3;
  }
  EXPECT_EQ(exit3, 1);
  EXPECT_EQ(nulls, 1);
  cJSON* files = cJSON_GetObjectItem(root.get(), "files");
  ASSERT_EQ(cJSON_GetArraySize(files), 3);
  cJSON* f = cJSON_GetArrayItem(files, 0);
  for (const char* key : {"pid", "path", "flags", "opens", "failed", "read_bytes", "write_bytes"})
    EXPECT_NE(cJSON_GetObjectItem(f, key), nullptr) << key;
  EXPECT_STREQ(cJSON_GetObjectItem(f, "flags")->valuestring, "r");
  cJSON* conns = cJSON_GetObjectItem(root.get(), "connections");
  ASSERT_EQ(cJSON_GetArraySize(conns), 1);
  cJSON* c = cJSON_GetArrayItem(conns, 0);
  EXPECT_STREQ(cJSON_GetObjectItem(c, "address")->valuestring, "127.0.0.1");
  EXPECT_EQ(cJSON_GetObjectItem(c, "port")->valuedouble, 4242);
  EXPECT_STREQ(cJSON_GetObjectItem(c, "protocol")->valuestring, "tcp");
  EXPECT_EQ(cJSON_GetObjectItem(c, "count")->valuedouble, 2);
  EXPECT_EQ(cJSON_GetObjectItem(c, "failed")->valuedouble, 2);
}
