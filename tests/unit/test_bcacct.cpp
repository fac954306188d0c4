// bcacct: totals, table and JSON from a real store, and the real binary run on it.
#include <cJSON.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "accounting_db/store.hpp"
#include "common/json.hpp"
#include "sacct_ext/job_source.hpp"
#include "sacct_ext/report.hpp"

namespace {

namespace fs = std::filesystem;
using bc::report::JobData;
using bc::store::JobRecord;
using bc::store::ProcessRecord;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr int64_t kT0 = 1700000000123;  // 2023-11-14T22:13:20.123Z
constexpr uint64_t kJob = 4242;         // two nodes, n02 still running
constexpr uint64_t kDoneJob = 4343;     // one node, finished, every cgroup controller
constexpr uint64_t kMissingJob = 999;
constexpr uint64_t kContainerKey = (1ULL << 63) | 0x0c0ffee0c0deULL;  // bc-docker's key for 0c0ffee0c0de
constexpr uint64_t kSeriesJob = 4545;  // bob's, on n03, with a job series of 120 one-second samples

// ---------------------------------------------------------------------------------------------
// The fixture store

JobRecord job_record(uint64_t job_id, const std::string& node) {
  JobRecord r;
  r.job_id = job_id;
  r.node = node;
  r.uid = 1000;
  r.user = "alice";
  r.cgroup_version = 2;
  return r;
}

ProcessRecord process(uint32_t pid, uint32_t ppid, uint32_t step, const std::string& comm, int64_t start_ms,
                      int64_t end_ms, uint64_t cpu_ns, uint64_t max_rss, uint64_t read, uint64_t write) {
  ProcessRecord p;
  p.pid = pid;
  p.ppid = ppid;
  p.step = step;
  p.start_ticks = static_cast<uint64_t>(start_ms / 10);
  p.start_ms = start_ms;
  p.end_ms = end_ms;
  p.command = comm;
  p.exe = "/usr/bin/" + comm;
  p.argv = {comm, "--pid=" + std::to_string(pid), "two words"};
  p.cpu_ns = cpu_ns;
  p.max_rss = max_rss;
  p.rss = max_rss / 2;
  p.read_bytes = read;
  p.write_bytes = write;
  return p;
}

// Everything written to the store, so tests derive their expectations from the same numbers.
struct Fixture {
  JobRecord n01, n02, done;
  std::vector<ProcessRecord> n01_procs, n02_procs, done_procs;
};

Fixture make_fixture() {
  Fixture f;
  f.n01 = job_record(kJob, "n01");
  f.n01.steps = {0, bc::store::kStepBatch};
  f.n01.start_ms = kT0;
  f.n01.end_ms = kT0 + 3'723'000;
  f.n01.has_cgroup_cpu = true;
  f.n01.cgroup_cpu_ns = 7'250'000'000;
  f.n01.has_cgroup_memory = true;
  f.n01.cgroup_mem_peak = 300 * kMiB;
  f.n01.has_cgroup_io = true;
  f.n01.cgroup_read_bytes = 10 * kMiB;
  f.n01.cgroup_write_bytes = 20 * kMiB;
  f.n01.max_rss_sum = 200 * kMiB;  // above its largest process
  f.n01.sample_count = 120;
  f.n01.monitor_cpu_ns = 150'000'000;
  f.n01.monitor_max_rss = 8 * kMiB;
  f.n01_procs = {
      process(500, 1, bc::store::kStepBatch, "bash", kT0 + 100, kT0 + 3'700'000, 1'000'000'000, 5 * kMiB, kMiB,
              2 * kMiB),
      process(501, 500, 0, "python3", kT0 + 2000, kT0 + 3'600'000, 6'000'000'000, 150 * kMiB, 4 * kMiB + 512, 3 * kMiB),
  };

  f.n02 = job_record(kJob, "n02");
  f.n02.steps = {0};
  f.n02.start_ms = kT0 + 500;
  f.n02.end_ms = 0;                        // still running:
  f.n02.last_sample_ms = kT0 + 3'730'000;  // sampled after n01's end
  f.n02.has_cgroup_cpu = false;
  f.n02.cgroup_cpu_ns = 999;       // must be ignored: the controller did not exist
  f.n02.max_rss_sum = 100 * kMiB;  // below its largest process
  f.n02.sample_count = 60;
  f.n02.monitor_cpu_ns = 50'000'000;
  f.n02.monitor_max_rss = 12 * kMiB;
  f.n02_procs = {
      // Starts with 501 on n01: the tie goes to the lower pid.
      process(700, 1, 0, "python3", kT0 + 2000, 0, 2'500'000'000, 400 * kMiB, 7 * kMiB, 0),
      // Lowest pid, started last: sorted by start time first.
      process(42, 700, 0, "worker", kT0 + 5000, kT0 + 9000, 250'000'000, kMiB, 0, 1),
  };

  f.done = job_record(kDoneJob, "n01");
  f.done.steps = {bc::store::kStepExtern, bc::store::kStepBatch};
  f.done.start_ms = kT0;
  f.done.end_ms = kT0 + 61'000;
  f.done.has_cgroup_cpu = true;
  f.done.cgroup_cpu_ns = 3'000'000'000;
  f.done.has_cgroup_memory = true;
  f.done.cgroup_mem_peak = 64 * kMiB;
  f.done.has_cgroup_io = true;
  f.done.cgroup_read_bytes = 5 * kMiB;
  f.done.cgroup_write_bytes = 6 * kMiB;
  f.done.max_rss_sum = 32 * kMiB;
  f.done.sample_count = 61;
  f.done_procs = {process(800, 1, bc::store::kStepBatch, "sleep", kT0 + 10, kT0 + 60'000, 1'000'000, kMiB, 0, 0)};
  return f;
}

void write_node(bc::store::Store& store, const JobRecord& record, const std::vector<ProcessRecord>& procs) {
  // First tick: everything still running, so the final tick has to overwrite it.
  bc::store::Batch first;
  first.job = record;
  first.job.end_ms = 0;
  for (ProcessRecord p : procs) {
    p.end_ms = 0;
    p.cpu_ns /= 2;
    first.processes.push_back({p, bc::store::Sample{0, p.start_ms / 1000, p.cpu_ns, p.rss, 0, 0}});
  }
  store.write_batch(first);

  bc::store::Batch last;
  last.job = record;
  for (const ProcessRecord& p : procs) last.processes.push_back({p, std::nullopt});
  store.write_batch(last);
}

// Job 4545: 120 s from kT0/1000 on n03. The job used half a core for 60 s, then a whole core for 60 s;
// RSS grows by 1 MiB a second; it wrote 1 MiB a second in the second half. It ran 1 thread, then 8.
void write_series_job(bc::store::Store& store) {
  const int64_t t0 = kT0 / 1000;
  for (int64_t i = 0; i < 120; ++i) {
    bc::store::Batch b;
    b.job = job_record(kSeriesJob, "n03");
    b.job.user = "bob";
    b.job.uid = 1001;
    b.job.steps = {bc::store::kStepBatch};
    b.job.start_ms = t0 * 1000;
    b.job.end_ms = i == 119 ? (t0 + 119) * 1000 : 0;
    b.job.sample_count = static_cast<uint64_t>(i + 1);
    const uint64_t cpu = i <= 60 ? static_cast<uint64_t>(i) * 500'000'000
                                 : 30'000'000'000 + static_cast<uint64_t>(i - 60) * 1'000'000'000;
    b.job.has_cgroup_cpu = true;
    b.job.cgroup_cpu_ns = cpu;
    const uint64_t written = i <= 60 ? 0 : static_cast<uint64_t>(i - 60) * kMiB;
    b.job_sample = bc::store::Sample{0, t0 + i, cpu, static_cast<uint64_t>(i + 1) * kMiB, 0, written, i < 60 ? 1U : 8U};
    ProcessRecord p = process(900, 1, bc::store::kStepBatch, "sim", t0 * 1000, b.job.end_ms, cpu,
                              static_cast<uint64_t>(i + 1) * kMiB, 0, written);
    b.processes.push_back({p, std::nullopt});
    store.write_batch(b);
  }
}

// A container as bc-docker records it: keyed by its short id, with its full id and name.
void write_container(bc::store::Store& store) {
  bc::store::Batch b;
  b.job = job_record(kContainerKey, "dockerhost");
  b.job.user = "root";
  b.job.uid = 0;
  b.job.start_ms = kT0;
  b.job.end_ms = kT0 + 5000;
  b.job.container_id = "0c0ffee0c0de" + std::string(52, 'a');
  b.job.container_name = "web-1";
  b.job.container_image = "busybox:local";
  b.processes.push_back(
      {process(1200, 0, bc::store::kStepUnknown, "httpd", kT0, kT0 + 5000, 1, 1, 0, 0), std::nullopt});
  store.write_batch(b);
}

// Job array 5000 as Slurm numbers it: task 1 is job 5001, task 2 job 5002, and the array's own id 5000 is its
// last task (3), as `squeue -t all -o %i|%A` shows (5000_3|5000, 5000_1|5001, 5000_2|5002). A year before
// the other jobs, so listings of their window leave it out.
constexpr int64_t kArrayT0 = kT0 - 365LL * 86400 * 1000;
void write_array(bc::store::Store& store) {
  for (auto [id, task] : {std::pair{5000u, 3u}, std::pair{5001u, 1u}, std::pair{5002u, 2u}}) {
    bc::store::Batch b;
    b.job = job_record(id, "n01");
    b.job.array_job_id = 5000;
    b.job.array_task_id = task;
    b.job.start_ms = kArrayT0;
    b.job.end_ms = kArrayT0 + 2000;
    b.processes.push_back(
        {process(100 + task, 1, bc::store::kStepBatch, "task", kArrayT0, kArrayT0 + 2000, 1, 1, 0, 0), std::nullopt});
    store.write_batch(b);
  }
}

class BcacctTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/bcacct-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
    dir_ = pattern;
    store_path_ = dir_ + "/node.lmdb";
    fixture_ = make_fixture();
    auto store = bc::store::Store::open(store_path_);  // closed again before anything reads
    write_node(*store, fixture_.n01, fixture_.n01_procs);
    write_node(*store, fixture_.n02, fixture_.n02_procs);
    write_node(*store, fixture_.done, fixture_.done_procs);
    write_series_job(*store);
    write_container(*store);
    write_array(*store);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  static JobData load(uint64_t job_id) {
    auto source = bc::report::open_store_source(store_path_);
    auto job = source->load(job_id);
    if (!job) throw std::runtime_error("fixture job missing");
    return *job;
  }

  static inline std::string dir_;
  static inline std::string store_path_;
  static inline Fixture fixture_;
};

// ---------------------------------------------------------------------------------------------
// JSON helpers

using Json = bc::json::Ptr;

Json parse(const std::string& text) { return Json(cJSON_Parse(text.c_str())); }

const cJSON* field(const cJSON* object, const char* name) {
  const cJSON* item = cJSON_GetObjectItemCaseSensitive(object, name);
  EXPECT_NE(item, nullptr) << "missing field " << name;
  return item;
}
double num(const cJSON* object, const char* name) {
  const cJSON* item = field(object, name);
  EXPECT_TRUE(cJSON_IsNumber(item)) << name;
  return item ? item->valuedouble : -1;
}
std::string str(const cJSON* object, const char* name) {
  const cJSON* item = field(object, name);
  EXPECT_TRUE(cJSON_IsString(item)) << name;
  return cJSON_IsString(item) ? item->valuestring : "";
}
std::vector<std::string> strings(const cJSON* object, const char* name) {
  const cJSON* array = field(object, name);
  EXPECT_TRUE(cJSON_IsArray(array)) << name;
  std::vector<std::string> out;
  const cJSON* item = nullptr;
  cJSON_ArrayForEach(item, array) {
    EXPECT_TRUE(cJSON_IsString(item));
    if (cJSON_IsString(item)) out.emplace_back(item->valuestring);
  }
  return out;
}
double bytes(uint64_t v) { return static_cast<double>(v); }
double seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

bool is_iso_utc_ms(const std::string& s) {
  static const std::regex re(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$)");
  return std::regex_match(s, re);
}

// ---------------------------------------------------------------------------------------------
// Running the real binary

struct Outcome {
  int status = -1;  // exit code, or -1 if it did not exit normally
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// stdout goes to stdout_path when given (e.g. /dev/full), else it is captured.
Outcome run_bcacct(const std::vector<std::string>& args, const std::vector<std::string>& env,
                   const char* stdout_path = nullptr) {
  char out_path[] = "/tmp/bcacct-out-XXXXXX";
  char err_path[] = "/tmp/bcacct-err-XXXXXX";
  const int out_fd = stdout_path ? open(stdout_path, O_WRONLY | O_CLOEXEC) : mkstemp(out_path);
  const int err_fd = mkstemp(err_path);
  EXPECT_GE(out_fd, 0);
  EXPECT_GE(err_fd, 0);
  std::vector<std::string> argv_storage = {BCACCT_BINARY};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv, envp;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage = env;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  Outcome result;
  const pid_t pid = fork();
  if (pid == 0) {
    if (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(err_fd, STDERR_FILENO) < 0) _exit(126);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  EXPECT_GT(pid, 0);
  int status = 0;
  if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)) result.status = WEXITSTATUS(status);
  close(out_fd);
  close(err_fd);
  if (!stdout_path) {
    result.out = slurp(out_path);
    unlink(out_path);
  }
  result.err = slurp(err_path);
  unlink(err_path);
  return result;
}

// A child environment without the caller's BC_STORE, in UTC so table times are predictable.
std::vector<std::string> clean_env(std::vector<std::string> extra = {}) {
  extra.push_back("TZ=UTC");
  extra.push_back("PATH=/usr/bin:/bin");
  extra.push_back("BC_BCACCT_CONFIG=/nonexistent/bcacct.conf");  // no site config: no bcd
  return extra;
}

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

// The process rows of a table (the lines after the column titles and dashes), in order.
std::vector<std::string> table_rows(const std::string& table) {
  std::vector<std::string> rows;
  std::istringstream in(table);
  std::string line;
  bool in_rows = false;
  while (std::getline(in, line)) {
    if (!in_rows && line.find("PID") != std::string::npos && line.find("Command") != std::string::npos) {
      in_rows = true;
      std::getline(in, line);  // the dashes
      continue;
    }
    if (in_rows && !line.empty()) rows.push_back(line);
  }
  return rows;
}

std::vector<std::string> split(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Small formatters

TEST(Format, SizeIsSacctLike) {
  EXPECT_EQ(bc::report::format_size(0), "0");
  EXPECT_EQ(bc::report::format_size(1023), "1023");
  EXPECT_EQ(bc::report::format_size(1024), "1K");
  EXPECT_EQ(bc::report::format_size(1536), "1.50K");
  EXPECT_EQ(bc::report::format_size(400 * kMiB), "400M");
  EXPECT_EQ(bc::report::format_size(3 * 1024 * kMiB), "3G");
  EXPECT_EQ(bc::report::format_size(kMiB - 1), "1.00M");  // not "1024.00K"
  EXPECT_EQ(bc::report::format_size(UINT64_MAX), "16.00E");
}

TEST(Format, DurationIsSacctLike) {
  EXPECT_EQ(bc::report::format_duration(0), "00:00:00");
  EXPECT_EQ(bc::report::format_duration(3661), "01:01:01");
  EXPECT_EQ(bc::report::format_duration(86399), "23:59:59");
  EXPECT_EQ(bc::report::format_duration(90061), "1-01:01:01");
  EXPECT_EQ(bc::report::format_duration(-5), "00:00:00");
}

TEST(Format, IsoUtcMilliseconds) {
  EXPECT_EQ(bc::report::iso_utc_ms(kT0), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(bc::report::iso_utc_ms(5), "1970-01-01T00:00:00.005Z");
  EXPECT_EQ(bc::report::iso_utc_ms(-1), "1969-12-31T23:59:59.999Z");
}

TEST(Format, LocalTimeFollowsTz) {
  const char* old = std::getenv("TZ");
  const std::string saved = old ? old : "";
  setenv("TZ", "UTC", 1);
  tzset();
  EXPECT_EQ(bc::report::local_time(kT0), "2023-11-14T22:13:20");
  setenv("TZ", "UTC-2", 1);  // POSIX sign: two hours east
  tzset();
  EXPECT_EQ(bc::report::local_time(kT0), "2023-11-15T00:13:20");
  EXPECT_EQ(bc::report::local_time(0), "Unknown");
  if (old) setenv("TZ", saved.c_str(), 1);
  else unsetenv("TZ");
  tzset();
}

TEST(Format, Utf8IsRepaired) {
  EXPECT_EQ(bc::report::valid_utf8("plain"), "plain");
  EXPECT_EQ(bc::report::valid_utf8("caf\xc3\xa9 \xf0\x9f\x90\x8d"), "caf\xc3\xa9 \xf0\x9f\x90\x8d");
  EXPECT_EQ(bc::report::valid_utf8("a\xff"
                                   "b"),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(bc::report::valid_utf8("\xc3"), "\xef\xbf\xbd");                                  // truncated sequence
  EXPECT_EQ(bc::report::valid_utf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
  EXPECT_EQ(bc::report::valid_utf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");                  // overlong
}

TEST(Format, StepsInSacctOrder) {
  std::vector<uint32_t> steps = {2, bc::store::kStepUnknown, 0, bc::store::kStepExtern, bc::store::kStepBatch, 0};
  bc::report::sort_steps(steps);
  std::vector<std::string> names;
  for (uint32_t s : steps) names.push_back(bc::store::step_name(s));
  EXPECT_EQ(names, (std::vector<std::string>{"batch", "extern", "0", "2", "?"}));
}

TEST(Json, InvalidUtf8InArgvStillParses) {
  JobData job;
  job.nodes.push_back(job_record(7, "n1"));
  job.processes.push_back(process(9, 1, 0, "bad\xff", kT0, 0, 0, 0, 0, 0));
  job.processes.back().argv = {"x\xfe", "quote\" and \\ and \n newline"};
  job.processes.back().node = "n1";
  Json root = parse(bc::report::format_json(job));
  ASSERT_NE(root, nullptr);
  const cJSON* p = cJSON_GetArrayItem(field(root.get(), "processes"), 0);
  EXPECT_EQ(str(p, "command"), "bad\xef\xbf\xbd");
  EXPECT_EQ(strings(p, "argv"), (std::vector<std::string>{"x\xef\xbf\xbd", "quote\" and \\ and \n newline"}));
}

// ---------------------------------------------------------------------------------------------
// Totals, table and JSON over the store

TEST_F(BcacctTest, SourceLoadsEveryNodeAndProcess) {
  const JobData job = load(kJob);
  EXPECT_EQ(job.nodes.size(), 2u);
  EXPECT_EQ(job.processes.size(), fixture_.n01_procs.size() + fixture_.n02_procs.size());
  auto source = bc::report::open_store_source(store_path_);
  EXPECT_FALSE(source->load(kMissingJob).has_value());
  EXPECT_EQ(source->describe(), "store " + store_path_);
  EXPECT_THROW(bc::report::open_store_source(dir_ + "/absent.lmdb"), bc::report::SourceError);
}

TEST_F(BcacctTest, TotalsAcrossNodes) {
  const auto& f = fixture_;
  const auto t = bc::report::compute_totals(load(kJob));
  EXPECT_EQ(t.job_id, kJob);
  EXPECT_EQ(t.user, "alice");
  EXPECT_EQ(t.nodes, (std::vector<std::string>{"n01", "n02"}));
  EXPECT_EQ(t.steps, (std::vector<uint32_t>{bc::store::kStepBatch, 0}));
  // n01 has a cgroup CPU counter; n02 does not, so its processes are summed (its 999 ignored).
  EXPECT_EQ(t.cpu_ns, f.n01.cgroup_cpu_ns + f.n02_procs[0].cpu_ns + f.n02_procs[1].cpu_ns);
  EXPECT_DOUBLE_EQ(t.cpu_seconds(), 10.0);
  // n01: max(200M summed, 150M process) = 200M; n02: max(100M summed, 400M process) = 400M.
  EXPECT_EQ(t.max_rss_bytes, f.n02_procs[0].max_rss);
  uint64_t read = 0, write = 0;
  for (const auto* procs : {&f.n01_procs, &f.n02_procs})
    for (const auto& p : *procs) {
      read += p.read_bytes;
      write += p.write_bytes;
    }
  EXPECT_EQ(t.read_bytes, read);
  EXPECT_EQ(t.write_bytes, write);
  ASSERT_TRUE(t.start_ms.has_value());
  EXPECT_EQ(*t.start_ms, f.n01.start_ms);  // the earlier node
  EXPECT_FALSE(t.end_ms.has_value());      // n02 still running
  EXPECT_EQ(t.samples, f.n01.sample_count + f.n02.sample_count);
  EXPECT_EQ(t.monitor_cpu_ns, f.n01.monitor_cpu_ns + f.n02.monitor_cpu_ns);
  EXPECT_EQ(t.monitor_max_rss_bytes, f.n02.monitor_max_rss);
  // n02 had no memory or io controller: no job-wide cgroup figures.
  EXPECT_FALSE(t.cgroup_mem_peak_bytes.has_value());
  EXPECT_FALSE(t.cgroup_read_bytes.has_value());
  EXPECT_FALSE(t.cgroup_write_bytes.has_value());
}

TEST_F(BcacctTest, TotalsOfFinishedJobWithCgroups) {
  const auto& f = fixture_;
  const auto t = bc::report::compute_totals(load(kDoneJob));
  EXPECT_EQ(t.cpu_ns, f.done.cgroup_cpu_ns);
  EXPECT_EQ(t.max_rss_bytes, f.done.max_rss_sum);
  ASSERT_TRUE(t.end_ms.has_value());
  EXPECT_EQ(*t.end_ms, f.done.end_ms);
  EXPECT_EQ(t.cgroup_mem_peak_bytes, f.done.cgroup_mem_peak);
  EXPECT_EQ(t.cgroup_read_bytes, f.done.cgroup_read_bytes);
  EXPECT_EQ(t.cgroup_write_bytes, f.done.cgroup_write_bytes);
  EXPECT_EQ(t.steps, (std::vector<uint32_t>{bc::store::kStepBatch, bc::store::kStepExtern}));
}

void expect_job_json(const cJSON* root, const Fixture& f) {
  const cJSON* job = field(root, "job");
  ASSERT_TRUE(cJSON_IsObject(job));
  EXPECT_EQ(num(job, "id"), static_cast<double>(kJob));
  EXPECT_EQ(str(job, "user"), "alice");
  EXPECT_EQ(strings(job, "nodes"), (std::vector<std::string>{"n01", "n02"}));
  EXPECT_EQ(str(job, "start"), "2023-11-14T22:13:20.123Z");
  EXPECT_TRUE(cJSON_IsNull(field(job, "end")));
  EXPECT_DOUBLE_EQ(num(job, "cpu_seconds"),
                   seconds(f.n01.cgroup_cpu_ns + f.n02_procs[0].cpu_ns + f.n02_procs[1].cpu_ns));
  EXPECT_EQ(num(job, "max_rss_bytes"), bytes(400 * kMiB));
  EXPECT_EQ(num(job, "read_bytes"), bytes(kMiB + 4 * kMiB + 512 + 7 * kMiB));
  EXPECT_EQ(num(job, "write_bytes"), bytes(2 * kMiB + 3 * kMiB + 1));
  EXPECT_EQ(strings(job, "steps"), (std::vector<std::string>{"batch", "0"}));
  EXPECT_EQ(num(job, "samples"), static_cast<double>(f.n01.sample_count + f.n02.sample_count));
  EXPECT_DOUBLE_EQ(num(job, "monitor_cpu_seconds"), seconds(f.n01.monitor_cpu_ns + f.n02.monitor_cpu_ns));
  EXPECT_EQ(num(job, "monitor_max_rss_bytes"), bytes(f.n02.monitor_max_rss));
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(job, "cgroup_mem_peak_bytes"), nullptr);
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(job, "cgroup_read_bytes"), nullptr);

  const cJSON* procs = field(root, "processes");
  ASSERT_TRUE(cJSON_IsArray(procs));
  ASSERT_EQ(cJSON_GetArraySize(procs), 4);
  std::vector<double> pids;
  const cJSON* p = nullptr;
  cJSON_ArrayForEach(p, procs) {
    pids.push_back(num(p, "pid"));
    EXPECT_TRUE(is_iso_utc_ms(str(p, "start"))) << str(p, "start");
    const cJSON* end = field(p, "end");
    EXPECT_TRUE(cJSON_IsNull(end) || (cJSON_IsString(end) && is_iso_utc_ms(end->valuestring)));
  }
  EXPECT_EQ(pids, (std::vector<double>{500, 501, 700, 42}));  // start time, then pid

  const ProcessRecord& want = f.n02_procs[0];  // pid 700, running
  const cJSON* running = cJSON_GetArrayItem(procs, 2);
  EXPECT_EQ(num(running, "ppid"), want.ppid);
  EXPECT_EQ(str(running, "node"), "n02");
  EXPECT_EQ(str(running, "step"), "0");
  EXPECT_EQ(str(running, "command"), want.command);
  EXPECT_EQ(str(running, "exe"), want.exe);
  EXPECT_EQ(strings(running, "argv"), want.argv);
  EXPECT_EQ(str(running, "start"), bc::report::iso_utc_ms(want.start_ms));
  EXPECT_TRUE(cJSON_IsNull(field(running, "end")));
  EXPECT_DOUBLE_EQ(num(running, "cpu_seconds"), seconds(want.cpu_ns));
  EXPECT_EQ(num(running, "max_rss_bytes"), bytes(want.max_rss));
  EXPECT_EQ(num(running, "read_bytes"), bytes(want.read_bytes));
  EXPECT_EQ(num(running, "write_bytes"), bytes(want.write_bytes));

  const cJSON* batch = cJSON_GetArrayItem(procs, 0);
  EXPECT_EQ(str(batch, "step"), "batch");
  EXPECT_EQ(str(batch, "end"), "2023-11-14T23:15:00.123Z");  // kT0 + 3'700'000 ms
}

TEST_F(BcacctTest, JsonOfRunningTwoNodeJob) {
  const std::string text = bc::report::format_json(load(kJob));
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  Json root = parse(text);
  ASSERT_NE(root, nullptr) << text;
  expect_job_json(root.get(), fixture_);
}

TEST_F(BcacctTest, JsonOfFinishedJobHasCgroupFields) {
  Json root = parse(bc::report::format_json(load(kDoneJob)));
  ASSERT_NE(root, nullptr);
  const cJSON* job = field(root.get(), "job");
  EXPECT_EQ(str(job, "end"), bc::report::iso_utc_ms(fixture_.done.end_ms));
  EXPECT_EQ(num(job, "cgroup_mem_peak_bytes"), bytes(fixture_.done.cgroup_mem_peak));
  EXPECT_EQ(num(job, "cgroup_read_bytes"), bytes(fixture_.done.cgroup_read_bytes));
  EXPECT_EQ(num(job, "cgroup_write_bytes"), bytes(fixture_.done.cgroup_write_bytes));
  EXPECT_EQ(strings(job, "steps"), (std::vector<std::string>{"batch", "extern"}));
}

TEST_F(BcacctTest, TableOfRunningTwoNodeJob) {
  setenv("TZ", "UTC", 1);
  tzset();
  const int64_t now = kT0 + 90'061'000;  // 1 day 1:01:01 after the start
  const std::string table = bc::report::format_table(load(kJob), now);
  EXPECT_NE(table.find("JobID:         4242\n"), std::string::npos) << table;
  EXPECT_NE(table.find("User:          alice\n"), std::string::npos) << table;
  EXPECT_NE(table.find("NodeList:      n01,n02\n"), std::string::npos) << table;
  EXPECT_NE(table.find("Steps:         batch,0\n"), std::string::npos) << table;
  EXPECT_NE(table.find("Start:         2023-11-14T22:13:20\n"), std::string::npos) << table;
  EXPECT_NE(table.find("End:           Running\n"), std::string::npos) << table;
  EXPECT_NE(table.find("Elapsed:       1-01:01:01\n"), std::string::npos) << table;
  EXPECT_NE(table.find("TotalCPU:      00:00:10.000\n"), std::string::npos) << table;
  EXPECT_NE(table.find("MaxRSS:        400M\n"), std::string::npos) << table;
  EXPECT_NE(table.find("Read:          " + bc::report::format_size(12 * kMiB + 512) + "\n"), std::string::npos);
  EXPECT_NE(table.find("Samples:       180\n"), std::string::npos) << table;
  EXPECT_NE(table.find("MonitorCPU:    0.200s\n"), std::string::npos) << table;
  EXPECT_NE(table.find("MonitorMaxRSS: 12M\n"), std::string::npos) << table;
  EXPECT_EQ(table.find("CgroupMemPeak"), std::string::npos) << table;

  const auto rows = table_rows(table);
  ASSERT_EQ(rows.size(), 4u) << table;
  const std::vector<std::vector<std::string>> want = {
      // Threads (after CPU) is "-": these records were written without thread counts.
      {"500", "1", "n01", "batch", "bash", "2023-11-14T22:13:20", "2023-11-14T23:15:00", "1.00", "-", "5M", "1M", "2M"},
      {"501", "500", "n01", "0", "python3", "2023-11-14T22:13:22", "2023-11-14T23:13:20", "6.00", "-", "150M",
       bc::report::format_size(4 * kMiB + 512), "3M"},
      {"700", "1", "n02", "0", "python3", "2023-11-14T22:13:22", "Running", "2.50", "-", "400M", "7M", "0"},
      {"42", "700", "n02", "0", "worker", "2023-11-14T22:13:25", "2023-11-14T22:13:29", "0.25", "-", "1M", "0", "1"},
  };
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(split(rows[i]), want[i]) << rows[i];
}

TEST_F(BcacctTest, TableOfFinishedJob) {
  setenv("TZ", "UTC", 1);
  tzset();
  const std::string table = bc::report::format_table(load(kDoneJob), kT0 + 999'999'999);
  EXPECT_NE(table.find("End:           2023-11-14T22:14:21\n"), std::string::npos) << table;
  EXPECT_NE(table.find("Elapsed:       00:01:01\n"), std::string::npos) << table;  // not "now"
  EXPECT_NE(table.find("CgroupMemPeak: 64M\n"), std::string::npos) << table;
  EXPECT_NE(table.find("CgroupRead:    5M\n"), std::string::npos) << table;
  EXPECT_NE(table.find("CgroupWrite:   6M\n"), std::string::npos) << table;
  EXPECT_EQ(table_rows(table).size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// The binary

TEST_F(BcacctTest, CliJsonMatchesLibrary) {
  const Outcome r = run_bcacct({"-j", std::to_string(kJob), "--store", store_path_, "--json"}, clean_env());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  Json root = parse(r.out);
  ASSERT_NE(root, nullptr) << r.out;
  expect_job_json(root.get(), fixture_);
  EXPECT_EQ(r.out, bc::report::format_json(load(kJob)));
}

TEST_F(BcacctTest, CliTableIsDefaultAndStoreComesFromEnv) {
  const Outcome r = run_bcacct({"--jobs=" + std::to_string(kDoneJob)}, clean_env({"BC_STORE=" + store_path_}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("JobID:         4343\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Start:         2023-11-14T22:13:20\n"), std::string::npos) << r.out;  // TZ=UTC
  ASSERT_EQ(table_rows(r.out).size(), 1u) << r.out;
  EXPECT_EQ(split(table_rows(r.out)[0])[0], "800");
}

TEST_F(BcacctTest, CliStoreOptionOverridesEnv) {
  const Outcome r = run_bcacct({"-j", std::to_string(kJob), "--store", store_path_, "--json"},
                               clean_env({"BC_STORE=" + dir_ + "/absent.lmdb"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(parse(r.out), nullptr);
}

TEST_F(BcacctTest, CliUnknownJobExits1) {
  const Outcome r = run_bcacct({"-j", std::to_string(kMissingJob), "--store", store_path_}, clean_env());
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "bcacct: job " + std::to_string(kMissingJob) + " not found in store " + store_path_ + "\n");
}

TEST_F(BcacctTest, CliUsageErrorsExit2) {
  const std::vector<std::vector<std::string>> bad = {
      {"-j", "abc", "--store", store_path_},
      {"-j", "12abc"},
      {"-j", "-5"},
      {"-j", "4242.bogus"},
      {"-j", "1,,2"},
      {"-j", "0"},
      {"-j", "99999999999"},
      {"-j", ""},
      {"-j", "1_x"},
      {"-j", "1+"},
      {"-j"},
      {"--bogus"},
      {"-S", "25:00"},
      {"-j", "1", "stray"},
      {"--json=yes", "-j", "1"},
      {"-j", "1", "--store="},
      {"-s", "failed"},
      {"-o", "JobID,Nope"},
      {"-o", "JobID%x"},
      {"-N", "n[1-"},
      {"--timeline"},
      {"-j", "1", "--metric", "io"},
      {"-j", "1", "--top", "0"},
      {"-j", "1", "--sort", "rss"},
      {"-j", "1", "--json", "--tree"},
      {"-j", "1,2", "--timeline"},
      {"-S", "now", "-E", "now-1hour"},
      {"--container", "abcdef012345", "-j", "1"},
      {"--store", "x", "--central", "http://x"},
  };
  for (const auto& args : bad) {
    std::string shown;
    for (const auto& a : args) shown += "'" + a + "' ";
    const Outcome r = run_bcacct(args, clean_env({"BC_STORE=" + store_path_}));
    EXPECT_EQ(r.status, 2) << shown << r.err;
    EXPECT_EQ(r.out, "") << shown;
    EXPECT_EQ(count_lines(r.err), 2) << shown << r.err;
    EXPECT_NE(r.err.find("Try 'bcacct --help'"), std::string::npos) << shown << r.err;
  }
}

TEST_F(BcacctTest, CliMissingStoreExits3) {
  const std::string absent = dir_ + "/absent.lmdb";
  const Outcome r = run_bcacct({"-j", std::to_string(kJob), "--store", absent}, clean_env());
  EXPECT_EQ(r.status, 3);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("bcacct: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(absent), std::string::npos) << r.err;  // the StoreError text names the path
}

TEST_F(BcacctTest, CliNotAStoreExits3) {
  const std::string empty = dir_ + "/empty";
  fs::create_directories(empty);
  const Outcome r = run_bcacct({"-j", std::to_string(kJob), "--store", empty}, clean_env());
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_EQ(fs::exists(empty + "/data.mdb"), false);  // read-only: nothing created
}

TEST_F(BcacctTest, CliHelpAndVersionExit0) {
  const Outcome help = run_bcacct({"--help"}, clean_env());
  EXPECT_EQ(help.status, 0);
  EXPECT_EQ(help.err, "");
  EXPECT_EQ(help.out.rfind("Usage: bcacct -j JOBID", 0), 0u) << help.out;
  for (const char* code : {"  0  ", "  1  ", "  2  ", "  3  ", "  4  ", "  5  ", "  6  "})
    EXPECT_NE(help.out.find(code), std::string::npos) << code;
  EXPECT_NE(help.out.find("BC_STORE"), std::string::npos);
  EXPECT_EQ(run_bcacct({"-h"}, clean_env()).out, help.out);

  const Outcome version = run_bcacct({"--version"}, clean_env());
  EXPECT_EQ(version.status, 0);
  EXPECT_EQ(version.out.rfind("bcacct ", 0), 0u) << version.out;
}

TEST_F(BcacctTest, CliWriteErrorExits4) {
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"-j", std::to_string(kJob), "--store", store_path_},
        std::vector<std::string>{"-j", std::to_string(kJob), "--store", store_path_, "--json"},
        std::vector<std::string>{"--help"}}) {
    const Outcome r = run_bcacct(args, clean_env(), "/dev/full");
    EXPECT_EQ(r.status, 4) << args.back();
    EXPECT_NE(r.err.find("bcacct: cannot write output"), std::string::npos) << r.err;
  }
}

// ---------------------------------------------------------------------------------------------
// sacct's options on the fixed store, expected text

TEST_F(BcacctTest, CliParsable2ProcessRowsByDefaultWithJ) {
  const Outcome r = run_bcacct({"-j", std::to_string(kDoneJob), "--store", store_path_, "-P"}, clean_env());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "JobID|Step|PID|PPID|NodeList|Command|Start|End|TotalCPU|MaxRSS|ReadBytes|WriteBytes\n"
            "4343|batch|800|1|n01|sleep|2023-11-14T22:13:20|2023-11-14T22:14:20|00:00:00.001|1M|0|0\n");
}

TEST_F(BcacctTest, CliParsableJobRowWithoutHeader) {
  // Job CPU: n01's cgroup 7.25 s + n02's processes 2.75 s; MaxRSS: n02's 400M process.
  const Outcome r = run_bcacct({"-j", std::to_string(kJob), "--store", store_path_, "-o",
                                "JobID,User,State,NodeList,TotalCPU,MaxRSS", "-p", "-n"},
                               clean_env());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "4242|alice|RUNNING|n01,n02|00:00:10.000|400M|\n");
}

TEST_F(BcacctTest, CliFormatWidthsFixed) {
  const Outcome r =
      run_bcacct({"-j", "4242,4343", "--store", store_path_, "--format=JobID%6,State%-9,NNodes%3"}, clean_env());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            " JobID State     NN+\n"
            "------ --------- ---\n"
            "  4242 RUNNING     2\n"
            "  4343 COMPLETED   1\n");
}

TEST_F(BcacctTest, CliStepSelectionAndTop) {
  Outcome r = run_bcacct({"-j", "4242.batch", "--store", store_path_, "-P", "-o", "PID,Step,Command"}, clean_env());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "PID|Step|Command\n500|batch|bash\n");
  r = run_bcacct(
      {"-j", "4242", "--store", store_path_, "--top", "2", "--sort", "rss", "-P", "-o", "PID,NodeList,MaxRSS"},
      clean_env());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "PID|NodeList|MaxRSS\n700|n02|400M\n501|n01|150M\n");
  r = run_bcacct({"-j", "4242", "--store", store_path_, "--top", "1", "-n", "-P"}, clean_env());  // by CPU
  EXPECT_EQ(r.out.rfind("4242|0|501|500|n01|python3|", 0), 0u) << r.out;
  r = run_bcacct({"-j", "4242", "--store", store_path_, "--top", "1", "--sort", "io", "-P", "-n", "-o", "PID"},
                 clean_env());
  EXPECT_EQ(r.out, "501\n");  // 4M+512 read and 3M written, above 700's 7M read
}

TEST_F(BcacctTest, CliJsonOfSeveralJobs) {
  const Outcome r = run_bcacct({"-j", "4343,4242", "--store", store_path_, "--json"}, clean_env());
  EXPECT_EQ(r.status, 0) << r.err;
  Json root = parse(r.out);
  ASSERT_NE(root, nullptr) << r.out;
  const cJSON* jobs = field(root.get(), "jobs");
  ASSERT_EQ(cJSON_GetArraySize(jobs), 2);
  EXPECT_EQ(num(field(cJSON_GetArrayItem(jobs, 0), "job"), "id"), 4343);
  EXPECT_EQ(num(field(cJSON_GetArrayItem(jobs, 1), "job"), "id"), 4242);
  EXPECT_EQ(cJSON_GetArraySize(field(cJSON_GetArrayItem(jobs, 1), "processes")), 4);
}

TEST_F(BcacctTest, CliListingWindowUsersStatesNodes) {
  const auto ids = [&](std::vector<std::string> args) {
    args.insert(args.end(), {"--store", store_path_, "-o", "JobID", "-P", "-n"});
    const Outcome r = run_bcacct(args, clean_env());
    EXPECT_EQ(r.status, 0) << r.err;
    return r.out;
  };
  EXPECT_EQ(ids({"-S", "2023-11-14", "-E", "2023-11-15"}), "4242\n4343\n4545\n");
  EXPECT_EQ(ids({"-S", "11/14/23-22:15", "-E", "2023-11-15"}), "4242\n4545\n");  // 4343 ended 22:14:21
  EXPECT_EQ(ids({"-S", "2023-11-14", "-E", "2023-11-14T22:13:19"}), "");         // before every start
  EXPECT_EQ(ids({"-S", "2023-11-14", "-s", "r"}), "4242\n");
  EXPECT_EQ(ids({"-S", "2023-11-14", "-u", "bob"}), "4545\n");
  EXPECT_EQ(ids({"-S", "2023-11-14", "-u", "bob,alice"}), "4242\n4343\n4545\n");
  EXPECT_EQ(ids({"-S", "2023-11-14", "-N", "n[02-03]"}), "4242\n4545\n");
  EXPECT_EQ(ids({}), "4242\n");  // since midnight today: only 4242, still running on n02
}

TEST_F(BcacctTest, CliTimelineExpectedChart) {
  // 120 one-second buckets in 48 columns (60 minus the axis): three per column, 40 columns. The job used 50%
  // of a core for its first 60 s, then 100%: 24 of 48 eighths, then all 48. Column 20 holds one 50% second
  // and two 100% ones (83%: 40 eighths, five rows).
  const std::string full = "\u2588";
  const auto bar = [&](int blank, int filled) {
    std::string s(static_cast<size_t>(blank), ' ');
    for (int i = 0; i < filled; ++i) s += full;
    return s;
  };
  Outcome r = run_bcacct({"-j", std::to_string(kSeriesJob), "--store", store_path_, "--timeline", "--resolution", "s"},
                         clean_env({"COLUMNS=60"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "node n03: CPU % (CPU time over wall time; 100% = one core), second resolution, 1 column = 00:00:03\n"
            "     100% \u2524" +
                bar(21, 19) + "\n" + "          \u2502" + bar(20, 20) + "\n" + "          \u2502" + bar(20, 20) + "\n" +
                "          \u2502" + bar(0, 40) + "\n" + "          \u2502" + bar(0, 40) + "\n" + "       0% \u2524" +
                bar(0, 40) + "\n" + "           2023-11-14T22:13:20  2023-11-14T22:15:20\n");

  // Minute buckets 22:13 (no writes), 22:14 (39 MiB: 665.60K/s, the top) and 22:15 (20 MiB: 25 of 48 eighths).
  r = run_bcacct(
      {"-j", std::to_string(kSeriesJob), "--store", store_path_, "--timeline", "--metric", "io", "--resolution", "m"},
      clean_env({"COLUMNS=60"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "node n03: I/O (read+write bytes per second), minute resolution, 1 column = 00:01:00\n"
            "665.60K/s \u2524" +
                bar(1, 1) + "\n" + "          \u2502" + bar(1, 1) + "\n" + "          \u2502" + bar(1, 1) + "\u2581\n" +
                "          \u2502" + bar(1, 2) + "\n" + "          \u2502" + bar(1, 2) + "\n" + "      0/s \u2524" +
                bar(1, 2) + "\n" + "           2023-11-14T22:13:00\n");

  // The most threads at once: 1 in 22:13 (6 of 48 eighths), 8 in the minutes after.
  r = run_bcacct({"-j", std::to_string(kSeriesJob), "--store", store_path_, "--timeline", "--metric", "threads",
                  "--resolution", "m"},
                 clean_env({"COLUMNS=60"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "node n03: threads (most at once in each column), minute resolution, 1 column = 00:01:00\n"
            "        8 \u2524" +
                bar(1, 2) + "\n" + "          \u2502" + bar(1, 2) + "\n" + "          \u2502" + bar(1, 2) + "\n" +
                "          \u2502" + bar(1, 2) + "\n" + "          \u2502" + bar(1, 2) + "\n" +
                "        0 \u2524\u2586" + bar(0, 2) + "\n" + "           2023-11-14T22:13:00\n");
}

TEST_F(BcacctTest, CliContainerAndArrayIds) {
  Outcome r = run_bcacct({"--container", "0123456789ab", "--store", store_path_}, clean_env());
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "bcacct: container 0123456789ab not found in store " + store_path_ + "\n");
  r = run_bcacct({"--container", "my-service", "--store", store_path_}, clean_env());
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "bcacct: no container named 'my-service' in store " + store_path_ +
                       " (give its id, or a name bc-docker recorded)\n");
  // By id and by name: the record bc-docker wrote, shown like a job with its short id and name.
  for (const std::string& which : {std::string("0c0ffee0c0de"), std::string("0C0FFEE0C0DE0123456789"),
                                   std::string("web-1"), std::string("/web-1")}) {
    r = run_bcacct({"--container", which, "--store", store_path_, "-P", "-o", "JobID,JobIDRaw,Container,JobName,PID"},
                   clean_env());
    EXPECT_EQ(r.status, 0) << which << r.err;
    EXPECT_EQ(r.out, "JobID|JobIDRaw|Container|JobName|PID\n0c0ffee0c0de|" + std::to_string(kContainerKey) +
                         "|0c0ffee0c0de|web-1|1200\n")
        << which;
  }
  // The report is headed by the container's name, short id and image, not its key in the store.
  r = run_bcacct({"--container", "web-1", "--store", store_path_}, clean_env());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind("Container:     web-1\nContainerID:   0c0ffee0c0de\nImage:         busybox:local\nUser:", 0),
            0u)
      << r.out;
  EXPECT_EQ(r.out.find("JobID"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(std::to_string(kContainerKey)), std::string::npos) << r.out;
  // Its key is above 2^53: --json writes it out exactly, not rounded through a double.
  r = run_bcacct({"--container", "web-1", "--store", store_path_, "--json"}, clean_env());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\"id\":\t" + std::to_string(kContainerKey) + ","), std::string::npos) << r.out.substr(0, 300);
  // A container is not a Slurm job: listings leave it out.
  r = run_bcacct({"--store", store_path_, "-S", "2023-01-01", "-P", "-n", "-o", "JobID"}, clean_env());
  EXPECT_EQ(r.out.find("0c0ffee0c0de"), std::string::npos) << r.out;
  r = run_bcacct({"-j", "4242_1", "--store", store_path_}, clean_env());
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "bcacct: job 4242_1 not found in store " + store_path_ + "\n");
  // sacct's array ids: ARRAY_TASK is that task, the array's id is every task, JobID prints ARRAY_TASK.
  r = run_bcacct({"-j", "5000_2", "--store", store_path_, "-P", "-o", "JobID,JobIDRaw,PID"}, clean_env());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "JobID|JobIDRaw|PID\n5000_2|5002|102\n");
  r = run_bcacct({"-j", "5000", "--store", store_path_, "-P", "-n", "-o", "JobID,JobIDRaw"}, clean_env());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "5000_3|5000\n5000_1|5001\n5000_2|5002\n");
  r = run_bcacct({"-j", "5001,5000_1", "--store", store_path_, "-P", "-n", "-o", "JobID"}, clean_env());
  EXPECT_EQ(r.out, "5000_1\n");  // a task by its own id, once however it was named
  r = run_bcacct({"-j", "5000_9,5000_3", "--store", store_path_, "-P", "-n", "-o", "JobID"}, clean_env());
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "5000_3\n");
  EXPECT_EQ(r.err, "bcacct: job 5000_9 not found in store " + store_path_ + "\n");
  r = run_bcacct({"-j", "5000_1", "--store", store_path_, "--json"}, clean_env());
  EXPECT_EQ(r.status, 0) << r.err;
  Json doc = parse(r.out);
  ASSERT_TRUE(doc);
  const cJSON* job = field(doc.get(), "job");
  EXPECT_EQ(num(job, "id"), 5001);
  EXPECT_EQ(str(job, "job_id"), "5000_1");
  EXPECT_EQ(num(field(job, "array"), "job_id"), 5000);
  EXPECT_EQ(num(field(job, "array"), "task_id"), 1);
  r = run_bcacct({"-j", "5000_1", "--store", store_path_}, clean_env());
  EXPECT_EQ(r.out.rfind("JobID:         5000_1\nJobIDRaw:      5001\n", 0), 0u) << r.out;
  r = run_bcacct({"-j", "4241+1", "--store", store_path_, "-P", "-n", "-o", "JobID"}, clean_env());
  EXPECT_EQ(r.status, 0) << r.err;  // het component 1 of 4241 is job 4242
  EXPECT_EQ(r.out, "4242\n");
}

TEST_F(BcacctTest, CliBcdUnreachableFallsBackOrExits6) {
  // Port 1 on loopback refuses at once (or munge is not running here: either way bcd cannot be used).
  Outcome r = run_bcacct({"-j", std::to_string(kDoneJob), "-P", "-n", "-o", "JobID"},
                         clean_env({"BC_CENTRAL=http://127.0.0.1:1", "BC_STORE=" + store_path_}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "4343\n");
  EXPECT_EQ(r.err.rfind("bcacct: warning: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("showing the local node store " + store_path_), std::string::npos) << r.err;
  r = run_bcacct({"-j", std::to_string(kDoneJob)},
                 clean_env({"BC_CENTRAL=http://127.0.0.1:1", "BC_STORE=" + dir_ + "/absent.lmdb"}));
  EXPECT_EQ(r.status, 6) << r.err;
  EXPECT_NE(r.err.find("no local node store at " + dir_ + "/absent.lmdb"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  // --store never asks bcd.
  r = run_bcacct({"-j", std::to_string(kDoneJob), "--store", store_path_, "-P", "-n", "-o", "JobID"},
                 clean_env({"BC_CENTRAL=http://127.0.0.1:1"}));
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.err, "");
}

TEST_F(BcacctTest, CliConfigFile) {
  const std::string conf = dir_ + "/bcacct.conf";
  std::ofstream(conf) << "# site\ncentral = http://127.0.0.1:1\nstore=" << store_path_ << "\ntimeout=2\n";
  Outcome r =
      run_bcacct({"-j", std::to_string(kDoneJob), "-P", "-n", "-o", "JobID"}, {"TZ=UTC", "BC_BCACCT_CONFIG=" + conf});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "4343\n");
  EXPECT_EQ(r.err.rfind("bcacct: warning: ", 0), 0u) << r.err;  // bcd from the file, then the store from it
  std::ofstream(conf) << "central=http://x\nbogus=1\n";
  r = run_bcacct({"-j", "1"}, {"TZ=UTC", "BC_BCACCT_CONFIG=" + conf});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err,
            "bcacct: " + conf + ":2: unknown key 'bogus' (known: central, ca_file, munge_socket, store, timeout)\n");
}

TEST_F(BcacctTest, CliCaFileIsCheckedBeforeAskingBcd) {
  const std::string conf = dir_ + "/bcacct.conf";
  std::ofstream(conf) << "central=https://127.0.0.1:1\nca_file=" << dir_ << "/missing-ca.pem\n";
  Outcome r = run_bcacct({"-j", "1"}, {"TZ=UTC", "BC_BCACCT_CONFIG=" + conf});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "bcacct: cannot read ca_file " + dir_ + "/missing-ca.pem: No such file or directory\n");
  std::ofstream(dir_ + "/not-a-ca.pem") << "hello\n";
  r = run_bcacct({"-j", "1", "--ca-file", dir_ + "/not-a-ca.pem"}, {"TZ=UTC", "BC_BCACCT_CONFIG=" + conf});
  EXPECT_EQ(r.status, 2);  // --ca-file wins over the config file's
  EXPECT_EQ(r.err,
            "bcacct: --ca-file " + dir_ + "/not-a-ca.pem holds no PEM certificate (-----BEGIN CERTIFICATE-----)\n");
  r = run_bcacct({"-j", "1"}, {"TZ=UTC", "BC_BCACCT_CONFIG=" + conf, "BC_CA_FILE=" + dir_ + "/absent.pem"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "bcacct: cannot read BC_CA_FILE " + dir_ + "/absent.pem: No such file or directory\n");
  r = run_bcacct({"-j", "1", "--store", store_path_, "--ca-file", dir_ + "/not-a-ca.pem"}, {"TZ=UTC"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--ca-file verifies bcd; it does not go with --store"), std::string::npos) << r.err;
}

TEST_F(BcacctTest, CliHelpFormat) {
  const Outcome r = run_bcacct({"--helpformat"}, clean_env());
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("  MaxRSS "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  Command "), std::string::npos) << r.out;
}

}  // namespace

TEST(Totals, AllocationEfficiencyAndContainerIdentity) {
  JobData job;
  JobRecord a;
  a.job_id = 7;
  a.node = "n1";
  a.job_name = "train";
  a.start_ms = 1'000'000;
  a.end_ms = 1'010'000;  // 10 s
  a.has_cgroup_cpu = true;
  a.cgroup_cpu_ns = 15'000'000'000;  // 15 s of CPU on 2 CPUs over 10 s: 75%
  a.alloc_cpus = 2;
  a.mem_limit_bytes = 1 << 30;
  JobRecord b = a;
  b.node = "n2";
  b.cgroup_cpu_ns = 5'000'000'000;  // 5 s on 2 CPUs
  b.mem_limit_bytes = 2ULL << 30;
  job.nodes = {a, b};
  auto t = bc::report::compute_totals(job);
  EXPECT_EQ(t.name, "train");
  EXPECT_EQ(t.alloc_cpus, 4u);
  EXPECT_EQ(t.mem_limit_bytes, 2ULL << 30);
  ASSERT_TRUE(t.cpu_efficiency);
  EXPECT_NEAR(*t.cpu_efficiency, 20.0 / (10.0 * 4), 1e-9);

  std::unique_ptr<cJSON, void (*)(cJSON*)> json(cJSON_Parse(bc::report::format_json(job).c_str()), cJSON_Delete);
  ASSERT_TRUE(json);
  cJSON* j = cJSON_GetObjectItem(json.get(), "job");
  EXPECT_STREQ(cJSON_GetObjectItem(j, "name")->valuestring, "train");
  EXPECT_DOUBLE_EQ(cJSON_GetObjectItem(j, "cpu_efficiency")->valuedouble, 0.5);
  EXPECT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(j, "container")));

  job.nodes = {a};
  job.nodes[0].container_id = std::string(64, 'c');
  job.nodes[0].container_name = "web-1";
  job.nodes[0].container_image = "bc-busybox:test";
  json.reset(cJSON_Parse(bc::report::format_json(job).c_str()));
  cJSON* c = cJSON_GetObjectItem(cJSON_GetObjectItem(json.get(), "job"), "container");
  ASSERT_TRUE(cJSON_IsObject(c));
  EXPECT_STREQ(cJSON_GetObjectItem(c, "short_id")->valuestring, "cccccccccccc");
  EXPECT_STREQ(cJSON_GetObjectItem(c, "name")->valuestring, "web-1");
  EXPECT_STREQ(cJSON_GetObjectItem(c, "image")->valuestring, "bc-busybox:test");

  job.nodes[0].end_ms = 0;  // running, no sample yet: no elapsed time to divide by
  job.nodes[0].last_sample_ms = 0;
  EXPECT_FALSE(bc::report::compute_totals(job).cpu_efficiency);
}

// A node of the allocation with no data, or with no end while another node ended and it sent nothing since,
// is named once the job has ended; a node that is only late keeps the job running.
TEST(Totals, NodesWhoseDataIsMissingAreNamed) {
  JobData job;
  JobRecord a;
  a.job_id = 8;
  a.node = "n1";
  a.job_nodes = "n[1-3]";
  a.start_ms = 1'000'000;
  a.last_sample_ms = 1'020'000;
  a.end_ms = 1'020'500;
  JobRecord b = a;
  b.node = "n2";
  b.end_ms = 0;
  b.last_sample_ms = 1'021'000;  // sampled after n1's end: still running
  job.nodes = {a, b};
  auto t = bc::report::compute_totals(job);
  EXPECT_EQ(t.allocated_nodes, (std::vector<std::string>{"n1", "n2", "n3"}));
  EXPECT_FALSE(t.end_ms);
  EXPECT_TRUE(t.missing_nodes.empty()) << "a running job has no missing nodes yet";

  job.nodes[1].last_sample_ms = 1'012'000;  // nothing since n1 ended: n2 stopped reporting at 1'012'000
  t = bc::report::compute_totals(job);
  ASSERT_TRUE(t.end_ms);
  EXPECT_EQ(*t.end_ms, 1'020'500);
  ASSERT_EQ(t.missing_nodes.size(), 2u);
  EXPECT_EQ(t.missing_nodes[0].node, "n2");
  EXPECT_EQ(t.missing_nodes[0].last_data_ms, 1'012'000);
  EXPECT_EQ(t.missing_nodes[1].node, "n3");
  EXPECT_EQ(t.missing_nodes[1].last_data_ms, 0);

  std::unique_ptr<cJSON, void (*)(cJSON*)> json(cJSON_Parse(bc::report::format_json(job).c_str()), cJSON_Delete);
  ASSERT_TRUE(json);
  cJSON* missing = cJSON_GetObjectItem(cJSON_GetObjectItem(json.get(), "job"), "missing_nodes");
  ASSERT_EQ(cJSON_GetArraySize(missing), 2);
  EXPECT_STREQ(cJSON_GetObjectItem(cJSON_GetArrayItem(missing, 0), "node")->valuestring, "n2");
  EXPECT_TRUE(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetArrayItem(missing, 0), "last_data")));
  EXPECT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(missing, 1), "last_data")));
  const std::string table = bc::report::format_table(job, 1'030'000);
  EXPECT_NE(table.find("MissingNodes:"), std::string::npos) << table;
  EXPECT_NE(table.find("n3 (no data here)"), std::string::npos) << table;

  // n2's data lands after all: the job ends at n2's end and nothing is missing but n3.
  job.nodes[1].last_sample_ms = 1'022'000;
  job.nodes[1].end_ms = 1'022'400;
  t = bc::report::compute_totals(job);
  ASSERT_TRUE(t.end_ms);
  EXPECT_EQ(*t.end_ms, 1'022'400);
  ASSERT_EQ(t.missing_nodes.size(), 1u);
  EXPECT_EQ(t.missing_nodes[0].node, "n3");

  // A node list that is no hostlist is left out, not fatal.
  job.nodes[0].job_nodes = job.nodes[1].job_nodes = "n[1-";
  t = bc::report::compute_totals(job);
  EXPECT_TRUE(t.allocated_nodes.empty());
  EXPECT_TRUE(t.missing_nodes.empty());
}
