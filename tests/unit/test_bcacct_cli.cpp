// bcacct's sacct syntax (job lists, times, states, node lists), its -o/-P/-p rows, the timeline and --top,
// and the bcd JSON round trip, as library calls on fixed data.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <string>
#include <tuple>
#include <vector>

#include "accounting_db/store.hpp"
#include "sacct_ext/format.hpp"
#include "sacct_ext/job_source.hpp"
#include "sacct_ext/report.hpp"
#include "sacct_ext/selection.hpp"
#include "sacct_ext/timeline.hpp"

namespace {

using namespace bc::bcacct;
using bc::store::kStepBatch;

// Every time test runs in UTC with a fixed "now": Tuesday 2026-11-24 15:30:45 UTC.
constexpr int64_t kNow = 1795534245;

class Utc : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("TZ", "UTC", 1);
    tzset();
  }
};

int64_t at(const char* text) {
  std::string error;
  auto t = parse_sacct_time(text, kNow, error);
  EXPECT_TRUE(t.has_value()) << text << ": " << error;
  return t.value_or(-1);
}

std::string refused(const char* text) {
  std::string error;
  auto t = parse_sacct_time(text, kNow, error);
  EXPECT_FALSE(t.has_value()) << text << " gave " << t.value_or(0);
  return error;
}

TEST_F(Utc, SacctTimeFormats) {
  ASSERT_EQ(kNow % 86400, 15 * 3600 + 30 * 60 + 45);  // the fixture itself
  const int64_t midnight = kNow - kNow % 86400;
  EXPECT_EQ(at("10:20"), midnight + 10 * 3600 + 20 * 60);
  EXPECT_EQ(at("10:20:30"), midnight + 10 * 3600 + 20 * 60 + 30);
  EXPECT_EQ(at("23:59"), midnight + 23 * 3600 + 59 * 60);  // later today still means today (sacct looks back)
  EXPECT_EQ(at("midnight"), midnight);
  EXPECT_EQ(at("today"), midnight);
  EXPECT_EQ(at("noon"), midnight + 12 * 3600);
  EXPECT_EQ(at("tomorrow"), midnight + 86400);
  EXPECT_EQ(at("2026-11-01"), 1793491200);
  EXPECT_EQ(at("2026-11-01T08:09"), 1793491200 + 8 * 3600 + 9 * 60);
  EXPECT_EQ(at("2026-11-01T08:09:10"), 1793491200 + 8 * 3600 + 9 * 60 + 10);
  EXPECT_EQ(at("1101"), 1793491200);      // MMDD: this year
  EXPECT_EQ(at("110126"), 1793491200);    // MMDDYY
  EXPECT_EQ(at("11/01"), 1793491200);     // MM/DD
  EXPECT_EQ(at("11/01/26"), 1793491200);  // MM/DD/YY
  EXPECT_EQ(at("11.01.26"), 1793491200);  // MM.DD.YY
  EXPECT_EQ(at("11/01-08:09"), 1793491200 + 8 * 3600 + 9 * 60);
  EXPECT_EQ(at("12/25"), at("2025-12-25"));  // a later month without a year is last year's
  EXPECT_EQ(at("now"), kNow);
  EXPECT_EQ(at("now-30"), kNow - 30);  // seconds by default
  EXPECT_EQ(at("now-2minutes"), kNow - 120);
  EXPECT_EQ(at("now+1hour"), kNow + 3600);
  EXPECT_EQ(at("now-3days"), kNow - 3 * 86400);
  EXPECT_EQ(at("now-1weeks"), kNow - 7 * 86400);
  EXPECT_EQ(at("NOW-1H"), kNow - 3600);
  for (const char* bad : {"", "25:00", "10:61", "13/01", "02/30", "2026-02-29", "yesterday", "now-", "now-5years",
                          "1234567", "10:20:30:40", "2026-11-01T8"})
    EXPECT_NE(refused(bad).find("invalid time"), std::string::npos) << bad;
  // Long texts are refused before the regular expressions, which recurse per character (100,000 spaces
  // overflowed the stack).
  const std::string spaced = "now" + std::string(57, ' ') + "-1h";
  EXPECT_EQ(at(spaced.c_str()), kNow - 3600);
  const std::string huge = "now" + std::string(100000, ' ') + "-1h";
  EXPECT_NE(refused(huge.c_str()).find("longer than 64 characters"), std::string::npos);
}

TEST_F(Utc, SacctTimeInAnotherZone) {
  setenv("TZ", "Europe/Berlin", 1);
  tzset();
  EXPECT_EQ(at("2026-07-01T02:00"), 1782864000);  // CEST, UTC+2
  EXPECT_EQ(at("2026-12-01T01:00"), 1796083200);  // CET, UTC+1
}

TEST(JobList, PlainStepHetAndArray) {
  auto parsed = parse_job_list("123,124.batch,125.3,126+2,127_4,128.extern");
  ASSERT_TRUE(std::holds_alternative<std::vector<JobSpec>>(parsed)) << std::get<std::string>(parsed);
  const auto& specs = std::get<std::vector<JobSpec>>(parsed);
  ASSERT_EQ(specs.size(), 6u);
  EXPECT_EQ(specs[0].id, 123u);
  EXPECT_FALSE(specs[0].step || specs[0].het_offset || specs[0].array_task);
  EXPECT_EQ(specs[1].id, 124u);
  EXPECT_EQ(specs[1].step, kStepBatch);
  EXPECT_EQ(specs[2].step, 3u);
  EXPECT_EQ(specs[3].id, 128u);  // het component 2 of 126 is job 126+2
  EXPECT_EQ(specs[3].het_offset, 2u);
  EXPECT_EQ(specs[4].array_task, 4u);
  EXPECT_EQ(specs[4].id, 0u);  // cannot be mapped without array fields in the store
  EXPECT_EQ(specs[5].step, bc::store::kStepExtern);
  EXPECT_EQ(specs[5].text, "128.extern");
}

TEST(JobList, Refused) {
  for (const char* bad : {"", ",", "1,", ",1", "abc", "0", "-5", "4294967296", "1.bogus", "1_", "1+", "1_x",
                          "4294967295+1", "1 2", "1.2.3"}) {
    auto parsed = parse_job_list(bad);
    EXPECT_TRUE(std::holds_alternative<std::string>(parsed)) << "'" << bad << "'";
  }
}

TEST(States, SacctNamesAndRefusals) {
  auto s = parse_states("r,CD,Running,completed");
  ASSERT_TRUE(std::holds_alternative<std::vector<JobState>>(s));
  EXPECT_EQ(std::get<std::vector<JobState>>(s),
            (std::vector<JobState>{JobState::Running, JobState::Completed, JobState::Running, JobState::Completed}));
  auto failed = parse_states("f");
  ASSERT_TRUE(std::holds_alternative<std::string>(failed));
  EXPECT_NE(std::get<std::string>(failed).find("final job state"), std::string::npos);
}

TEST(Filter, WindowUsersStatesNodes) {
  bc::report::JobTotals done;
  done.user = "alice";
  done.nodes = {"n01", "n02"};
  done.start_ms = 1000'000;
  done.end_ms = 2000'000;
  bc::report::JobTotals running = done;
  running.end_ms.reset();
  running.user = "bob";

  Filter f;
  EXPECT_TRUE(matches(f, done));
  f.from_ms = 2000'001;  // after the end
  EXPECT_FALSE(matches(f, done));
  EXPECT_TRUE(matches(f, running));  // still running, so running in the window
  f.from_ms = 1500'000;
  f.to_ms = 999'999;  // before the start
  EXPECT_FALSE(matches(f, done));
  f.to_ms = 1000'000;  // the start itself is in
  EXPECT_TRUE(matches(f, done));
  f = {};
  f.users = {"bob"};
  EXPECT_FALSE(matches(f, done));
  EXPECT_TRUE(matches(f, running));
  f = {};
  f.states = {JobState::Completed};
  EXPECT_TRUE(matches(f, done));
  EXPECT_FALSE(matches(f, running));
  f = {};
  f.nodes = {"n03", "n02"};
  EXPECT_TRUE(matches(f, done));
  f.nodes = {"n03"};
  EXPECT_FALSE(matches(f, done));
}

// ---- Rows ----

bc::report::JobData small_job() {
  bc::report::JobData data;
  bc::store::JobRecord r;
  r.job_id = 77;
  r.node = "n01";
  r.uid = 1000;
  r.user = "alice";
  r.steps = {kStepBatch};
  r.start_ms = 1700000000000;
  r.end_ms = 1700000090000;
  r.has_cgroup_cpu = true;
  r.cgroup_cpu_ns = 3'500'000'000;
  r.max_rss_sum = 3 << 20;
  r.sample_count = 90;
  data.nodes.push_back(r);
  bc::store::ProcessRecord p;
  p.job_id = 77;
  p.node = "n01";
  p.pid = 10;
  p.ppid = 1;
  p.step = kStepBatch;
  p.start_ms = 1700000000000;
  p.end_ms = 1700000090000;
  p.command = "bash";
  p.argv = {"bash", "job.sh"};
  p.cpu_ns = 500'000'000;
  p.max_rss = 1 << 20;
  p.write_bytes = 4096;
  data.processes.push_back(p);
  p.pid = 11;
  p.ppid = 10;
  p.start_ms = 1700000001000;
  p.command = "a_rather_long_command";
  p.argv = {"sim", "--in", "x|y"};
  p.cpu_ns = 3'000'000'000;
  p.max_rss = 2 << 20;
  p.read_bytes = 1536;
  p.write_bytes = 0;
  data.processes.push_back(p);
  return data;
}

JobView view_of(bc::report::JobData data) {
  JobView v;
  v.totals = bc::report::compute_totals(data);
  v.data = std::move(data);
  v.display_id = std::to_string(v.totals.job_id);
  return v;
}

Format format_of(const char* text) {
  auto f = parse_format(text);
  EXPECT_TRUE(std::holds_alternative<Format>(f))
      << (std::holds_alternative<std::string>(f) ? std::get<std::string>(f) : "");
  return std::get<Format>(f);
}

TEST_F(Utc, FixedRowsWithWidthsAndTruncation) {
  const std::vector<JobView> jobs = {view_of(small_job())};
  EXPECT_EQ(render_rows(format_of("jobid,user%8,totalcpu,maxrss"), jobs, Layout::Fixed, true, 0),
            "JobID            User     TotalCPU     MaxRSS\n"
            "------------ -------- ------------ ----------\n"
            "77              alice 00:00:03.500         3M\n");
  // A process field gives one row per process; %-N left-justifies; too long ends in '+'.
  EXPECT_EQ(render_rows(format_of("JobID%5,PID%4,Command%-10,CPUSeconds%6"), jobs, Layout::Fixed, true, 0),
            "JobID  PID Command    CPUSe+\n"
            "----- ---- ---------- ------\n"
            "   77   10 bash         0.50\n"
            "   77   11 a_rather_+   3.00\n");
  EXPECT_EQ(render_rows(format_of("JobID%5,PID%4"), jobs, Layout::Fixed, false, 0), "   77   10\n   77   11\n");
}

TEST_F(Utc, ParsableRows) {
  const std::vector<JobView> jobs = {view_of(small_job())};
  const Format f = format_of("JobID,State,Start,End,Elapsed,ElapsedRaw,NodeList,Steps,ReadBytes,WriteBytes");
  EXPECT_EQ(render_rows(f, jobs, Layout::Parsable2, true, 0),
            "JobID|State|Start|End|Elapsed|ElapsedRaw|NodeList|Steps|ReadBytes|WriteBytes\n"
            "77|COMPLETED|2023-11-14T22:13:20|2023-11-14T22:14:50|00:01:30|90|n01|batch|1.50K|4K\n");
  EXPECT_EQ(render_rows(format_of("PID,Argv,ReadBytes"), jobs, Layout::Parsable, false, 0),
            "10|bash job.sh|0|\n11|sim --in x|y|1.50K|\n");
}

TEST(Format, FieldErrorsAndHelp) {
  for (const char* bad : {"", "JobID,", "Nope", "JobID%", "JobID%x", "JobID%-", "JobID%12345", "Partition"})
    EXPECT_TRUE(std::holds_alternative<std::string>(parse_format(bad))) << bad;
  EXPECT_NE(std::get<std::string>(parse_format("Nope")).find("invalid field requested: \"Nope\""), std::string::npos);
  const std::string help = help_format();
  for (const char* name : {"JobID", "User", "State", "Start", "End", "Elapsed", "NodeList", "TotalCPU", "MaxRSS", "PID",
                           "PPID", "Command", "Argv", "Step"})
    EXPECT_NE(help.find(std::string("  ") + name + " "), std::string::npos) << name;
  EXPECT_FALSE(default_format(false).per_process);
  EXPECT_TRUE(default_format(true).per_process);
}

// ---- Timeline and top ----

TEST_F(Utc, TimelineScalesColumnsAndMarksGaps) {
  // Ten second-buckets: CPU 0%, 25%, 50%, ... of one core, none at t=5 (a gap), at 40 columns.
  bc::report::LabelledSeries n{"node n01", {}};
  n.data.resolution = bc::store::Resolution::Second;
  const int64_t t0 = 1700000000;
  for (int i = 0; i < 10; ++i) {
    if (i == 5) continue;
    bc::store::Rollup r;
    r.start_s = t0 + i;
    r.width_s = 1;
    r.samples = 1;
    r.wall_s = i == 0 ? 0 : 1;
    r.timed_cpu_ns = static_cast<uint64_t>(i) * 250'000'000;
    r.cpu_ns = r.timed_cpu_ns;
    r.rss_max = static_cast<uint64_t>(i + 1) << 20;
    n.data.buckets.push_back(r);
  }
  const std::string cpu = render_timeline({n}, Metric::Cpu, t0, t0 + 9, 40, 2);
  EXPECT_EQ(cpu,
            "node n01: CPU % (CPU time over wall time; 100% = one core), second resolution, 1 column = 00:00:01\n"
            // 16 eighths over two rows: 25% is 1.8 -> 2 eighths, 100% is 7.1 -> 7, 150% is 10.7 -> 11 ...
            "     225% \u2524      \u2583\u2584\u2586\u2588\n"
            "       0% \u2524 \u2582\u2584\u2585\u2587\u00b7\u2588\u2588\u2588\u2588\n"
            "           2023-11-14T22:13:20\n");
  // 20 buckets in a chart of 10 columns (the narrowest): two buckets per column, RSS the largest of the two
  // (2M 4M 5M 8M 10M of 10M in 8 eighths: 2 3 4 6 8); the last 10 s have no samples.
  const std::string rss = render_timeline({n}, Metric::Rss, t0, t0 + 19, 17, 1);
  EXPECT_EQ(rss,
            "node n01: RSS (largest in each column), second resolution, 1 column = 00:00:02\n"
            "      10M \u2524\u2582\u2583\u2584\u2586\u2588\u00b7\u00b7\u00b7\u00b7\u00b7\n"
            "           2023-11-14T22:13:20\n");
}

TEST(Top, HeaviestFirstTiesByPid) {
  auto procs = small_job().processes;
  procs.push_back(procs[0]);
  procs.back().pid = 5;  // same weights as pid 10
  auto top = top_processes(procs, Metric::Cpu, 2);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].pid, 11u);
  EXPECT_EQ(top[1].pid, 5u);
  top = top_processes(procs, Metric::Io, 1);
  EXPECT_EQ(top[0].pid, 5u);  // 4096 written; ties with 10, lower pid first
  top = top_processes(procs, Metric::Rss, 10);
  EXPECT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].pid, 11u);
}

// ---- bcd JSON back into records ----

TEST_F(Utc, JsonRoundTripKeepsEveryTotal) {
  bc::report::JobData data = small_job();
  data.nodes.push_back(data.nodes[0]);
  data.nodes[1].node = "n02";
  data.nodes[1].end_ms = 0;  // still running there
  data.nodes[1].cgroup_cpu_ns = 1'234'567'891;
  data.nodes[1].monitor_cpu_ns = 7'000'000;
  data.nodes[0].has_cgroup_memory = data.nodes[1].has_cgroup_memory = true;
  data.nodes[0].cgroup_mem_peak = 5 << 20;
  data.processes[1].node = "n02";
  // What the eBPF events and the allocation add (report.cpp prints them; bcd sends them back).
  data.nodes[0].job_name = "sim run";
  data.nodes[0].alloc_cpus = 4;
  data.nodes[1].alloc_cpus = 2;
  data.nodes[0].mem_limit_bytes = 8ULL << 30;
  data.nodes[0].lost.ring = 3;
  data.nodes[0].lost_events = 3;
  data.nodes[1].events_unavailable = "events unavailable: no BTF";
  data.processes[0].exited = true;
  data.processes[0].exit_code = -1;
  data.processes[0].exit_signal = 9;
  data.processes[0].core_dumped = true;
  data.processes[0].exact = true;
  bc::store::FileRecord f;
  f.node = "n01";
  f.pid = 10;
  f.path = "/etc/hosts";
  f.flags = bc::store::kFileRead | bc::store::kFileCreate;
  f.first_ms = 1700000000500;
  f.opens = 2;
  f.read_bytes = 100;
  data.files.push_back(f);
  bc::store::ConnectionRecord c;
  c.node = "n02";
  c.pid = 11;
  c.address = "127.0.0.1";
  c.port = 8470;
  c.protocol = "tcp";
  c.first_ms = 1700000002000;
  c.count = 1;
  data.connections.push_back(c);
  // What only the node records carry, not the job's totals.
  data.nodes[0].cgroup_version = 2;
  data.nodes[0].cgroup_mem_current = 3 << 20;
  data.nodes[0].last_sample_ms = 1700000009000;
  data.nodes[1].has_cgroup_io = true;
  data.nodes[1].cgroup_write_bytes = 77;
  data.nodes[1].uid = 4242;
  const std::string json = bc::report::format_json(data);
  const bc::report::JobData back = bc::report::job_data_from_json(json);
  EXPECT_EQ(bc::report::format_json(back), json);
  ASSERT_EQ(back.nodes.size(), 2u);
  const auto fields = [](const bc::store::JobRecord& r) {
    return std::make_tuple(r.node, r.uid, r.user, r.steps, r.start_ms, r.end_ms, r.last_sample_ms, r.cgroup_version,
                           r.has_cgroup_cpu, r.cgroup_cpu_ns, r.has_cgroup_memory, r.cgroup_mem_current,
                           r.cgroup_mem_peak, r.has_cgroup_io, r.cgroup_read_bytes, r.cgroup_write_bytes, r.max_rss_sum,
                           r.sample_count, r.monitor_cpu_ns, r.monitor_max_rss, r.events_unavailable, r.lost_events,
                           r.lost.ring, r.job_name, r.alloc_cpus, r.mem_limit_bytes);
  };
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(fields(back.nodes[i]), fields(data.nodes[i])) << data.nodes[i].node;
  EXPECT_EQ(bc::report::format_table(back, 1700000100000), bc::report::format_table(data, 1700000100000));
  EXPECT_EQ(bc::report::format_tree(back), bc::report::format_tree(data));
  EXPECT_EQ(bc::report::format_files(back, false), bc::report::format_files(data, false));
  EXPECT_EQ(bc::report::format_connections(back), bc::report::format_connections(data));
  for (const char* bad : {"", "[]", "{}", "{\"job\": {}, \"processes\": []}", "not json"})
    EXPECT_THROW(bc::report::job_data_from_json(bad), bc::report::SourceError) << bad;
}

// bcd's other answers as bcacct reads them. Numbers outside the type they are cast to are malformed, not cast
// (undefined behaviour; found with fuzz_bcd_answers).
TEST(BcdJson, ListViewsAndSeries) {
  const auto ids = bc::report::job_list_from_json(
      R"({"jobs": [{"id": 5, "container": "job_5"}, {"id": 1, "container": "0c0ffee0c0de"}]})");
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], 5u);
  EXPECT_EQ(ids[1], 0x8000'0c0f'fee0'c0deULL);
  const auto files = bc::report::files_view_from_json(
      R"({"files": [{"node": "n01", "pid": 7, "path": "/x", "flags": "rw", "first_open": null, "opens": 2,
                     "failed": 0, "read_bytes": 1, "write_bytes": 2}]})",
      42);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].job_id, 42u);
  EXPECT_EQ(files[0].flags, bc::store::kFileRead | bc::store::kFileWrite);
  EXPECT_THROW(bc::report::connections_view_from_json(R"({"files": []})", 42), bc::report::SourceError);
  const auto series = [](const std::string& t) {
    return bc::report::series_from_json(R"({"resolution": "minute", "series": [{"key": "total", "t": [)" + t +
                                        R"(], "samples": [5], "cpu_percent_mean": [50], "rss_max_bytes": [4096],
                                        "read_bytes": [1], "write_bytes": [2]}]})");
  };
  const bc::store::SeriesData data = series("1800000000");
  EXPECT_EQ(data.resolution, bc::store::Resolution::Minute);
  ASSERT_EQ(data.buckets.size(), 1u);
  EXPECT_EQ(data.buckets[0].start_s, 1800000000);
  EXPECT_EQ(data.buckets[0].width_s, 60);
  EXPECT_EQ(data.buckets[0].cpu_ns, 30'000'000'000u);  // 50% of a minute
  for (const char* bad : {"18000004294967296000", "-1e300", "1e19"})
    EXPECT_THROW(series(bad), bc::report::SourceError) << bad;
  // A uid or exit signal outside its type is malformed too.
  const auto job = [](const std::string& uid, const std::string& signal) {
    return bc::report::job_data_from_json(R"({"job": {"id": 1}, "node_records": [{"node": "n", "uid": )" + uid +
                                          R"(, "user": "u", "steps": [], "start": null, "end": null,
            "last_sample": null, "cgroup_version": 2, "cgroup_cpu_seconds": null, "cgroup_mem_current_bytes": null,
            "cgroup_mem_peak_bytes": null, "cgroup_read_bytes": null, "cgroup_write_bytes": null,
            "max_rss_sum_bytes": 0, "samples": 0, "monitor_cpu_seconds": 0, "monitor_max_rss_bytes": 0,
            "events_unavailable": "", "lost_events": 0, "lost_events_by_cause": {"ring": 0, "files": 0,
            "connections": 0, "tracked": 0, "unreadable": 0, "monitor": 0, "late": 0}, "job_name": "",
            "alloc_cpus": 0, "mem_limit_bytes": 0, "container_id": "", "container_name": "", "container_image": "",
            "array_job_id": 0, "array_task_id": 0, "unshipped_batches": 0, "unshipped_samples": 0}],
            "processes": [{"node": "n", "pid": 2, "ppid": 1, "step": "0", "command": "c", "exe": "/c", "argv": [],
                           "start": null, "end": null, "cpu_seconds": 0, "max_rss_bytes": 0, "read_bytes": 0,
                           "write_bytes": 0, "exit_code": -1, "exit_signal": )" +
                                          signal + "}]}");
  };
  const bc::report::JobData fine = job("1000", "9");
  EXPECT_EQ(fine.nodes.at(0).uid, 1000u);
  EXPECT_EQ(fine.processes.at(0).exit_signal, 9);
  for (const auto& [uid, signal] : {std::pair{"-1", "9"}, {"4294967296", "9"}, {"1000", "1e10"}, {"1000", "-2"}})
    EXPECT_THROW(job(uid, signal), bc::report::SourceError) << uid << " " << signal;
}

}  // namespace
