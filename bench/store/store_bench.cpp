// store_bench: the accounting store against the obvious alternative, SQLite in WAL mode with one row per
// sample. Driven by bench/suites/store.sh; every figure is printed as "BENCH <name> <value> <unit>".
//
//   store_bench ingest  lmdb|sqlite|sqlite_tm DIR PROCS TICKS DURABILITY [JOBS]   a fresh store, TICKS ticks
//                       of JOBS monitors (1) sharing PROCS processes, one batch per monitor per tick
//                       (sqlite_tm: samples keyed by time before series; faster to insert, slow to query)
//   store_bench build   lmdb|sqlite DIR PROCS HOURS              a whole job at 1 Hz, then its size
//   store_bench query   lmdb|sqlite DIR LABEL                    job header + processes, and every series rolled up
//   store_bench evict   PATH...                                  drop PATHs from the page cache
//
// DURABILITY: default (the store's: one fsync per commit / SQLite synchronous=NORMAL), full (every commit
// durable: LMDB fsyncs data and meta / SQLite synchronous=FULL), none (no fsync: the CPU cost).
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "accounting_db/store.hpp"
#include "synthetic.hpp"

namespace fs = std::filesystem;
using namespace bc;

namespace {

void bench(const std::string& name, double value, const char* unit) {
  std::printf("BENCH %s %.6g %s\n", name.c_str(), value, unit);
  std::fflush(stdout);
}

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}
double cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Bytes this process caused to be read from storage so far (/proc/self/io read_bytes): what a cold query
// really fetched, whether through mmap faults (LMDB) or read() (SQLite).
uint64_t storage_read_bytes() {
  FILE* f = std::fopen("/proc/self/io", "re");
  if (!f) return 0;
  char line[128];
  unsigned long long v = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "read_bytes: %llu", &v) == 1) break;
  std::fclose(f);
  return v;
}

uint64_t dir_bytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    struct stat st {};
    if (::stat(e.path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

// ------------------------------------------------------------------ the two stores behind one face

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void write(store::Batch& b) = 0;
};

class LmdbSink final : public Sink {
 public:
  LmdbSink(const std::string& dir, store::Durability d) {
    store::OpenOptions o;
    o.config_path = "";
    o.retention = store::Retention{};  // the defaults, whatever the machine's config says
    o.durability = d;
    store_ = store::Store::open(dir, o);
  }
  void write(store::Batch& b) override { store_->write_batch(b); }
  store::Store& store() { return *store_; }

 private:
  std::unique_ptr<store::Store> store_;
};

void sq_check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::fprintf(stderr, "store_bench: sqlite %s: %s\n", what, sqlite3_errmsg(db));
    std::exit(1);
  }
}

// The obvious SQLite design: a job table, a process table, one row per sample keyed by (job, node,
// series, time). One transaction per tick, like the monitor.
class SqliteSink final : public Sink {
 public:
  // time_major: key samples by (job, node, time, series) instead: cheaper inserts, but a series is then
  // scattered over the whole table.
  SqliteSink(const std::string& dir, const char* synchronous, bool time_major) {
    fs::create_directories(dir);
    sq_check(sqlite3_open((dir + "/bench.sqlite").c_str(), &db_), db_, "open");
    exec("PRAGMA journal_mode=WAL");
    exec(std::string("PRAGMA synchronous=") + synchronous);
    exec("PRAGMA cache_size=-65536");  // 64 MiB instead of 2 MiB: a fair chance for the baseline
    exec(
        "CREATE TABLE IF NOT EXISTS job(job_id INTEGER, node TEXT, uid INTEGER, user TEXT, start_ms INTEGER, "
        "end_ms INTEGER, last_sample_ms INTEGER, sample_count INTEGER, cgroup_cpu_ns INTEGER, mem_peak INTEGER, "
        "max_rss_sum INTEGER, PRIMARY KEY(job_id, node))");
    exec(
        "CREATE TABLE IF NOT EXISTS process(job_id INTEGER, node TEXT, pid INTEGER, start_ticks INTEGER, ppid INTEGER, "
        "step INTEGER, start_ms INTEGER, end_ms INTEGER, series_id INTEGER, command TEXT, exe TEXT, argv TEXT, "
        "cpu_ns INTEGER, max_rss INTEGER, rss INTEGER, read_bytes INTEGER, write_bytes INTEGER, "
        "PRIMARY KEY(job_id, node, pid, start_ticks))");
    exec(std::string("CREATE TABLE IF NOT EXISTS sample(job_id INTEGER, node TEXT, series INTEGER, t INTEGER, "
                     "cpu_ns INTEGER, rss INTEGER, read_bytes INTEGER, write_bytes INTEGER, PRIMARY KEY") +
         (time_major ? "(job_id, node, t, series)" : "(job_id, node, series, t)") + ") WITHOUT ROWID");
    prepare(&job_, "INSERT OR REPLACE INTO job VALUES(?,?,?,?,?,?,?,?,?,?,?)");
    prepare(&proc_, "INSERT OR REPLACE INTO process VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    prepare(&sample_, "INSERT OR REPLACE INTO sample VALUES(?,?,?,?,?,?,?,?)");
  }
  ~SqliteSink() override {
    for (auto* s : {job_, proc_, sample_}) sqlite3_finalize(s);
    sqlite3_close(db_);
  }
  void write(store::Batch& b) override {
    exec("BEGIN");
    const auto& j = b.job;
    bind_all(job_, static_cast<int64_t>(j.job_id), j.node, j.uid, j.user, j.start_ms, j.end_ms, j.last_sample_ms,
             j.sample_count, j.cgroup_cpu_ns, j.cgroup_mem_peak, j.max_rss_sum);
    step(job_);
    if (b.job_sample) put_sample(j, 0, *b.job_sample);
    for (auto& u : b.processes) {
      auto& p = u.record;
      if (p.series_id == 0) p.series_id = static_cast<uint32_t>(&u - b.processes.data()) + 1;
      std::string argv;
      for (const auto& a : p.argv) argv += a + '\0';
      bind_all(proc_, static_cast<int64_t>(j.job_id), j.node, p.pid, p.start_ticks, p.ppid, p.step, p.start_ms,
               p.end_ms, p.series_id, p.command, p.exe, argv, p.cpu_ns, p.max_rss, p.rss, p.read_bytes, p.write_bytes);
      step(proc_);
      if (u.sample) put_sample(j, p.series_id, *u.sample);
    }
    exec("COMMIT");
  }
  // Bulk load for the query benchmark: one transaction per call, samples in key order.
  struct Row {
    uint32_t series;
    int64_t t;
    uint64_t cpu, rss, rd, wr;
  };
  void bulk(const store::Batch& last, std::vector<Row>& rows) {
    std::sort(rows.begin(), rows.end(),
              [](const Row& a, const Row& b) { return a.series != b.series ? a.series < b.series : a.t < b.t; });
    exec("BEGIN");
    const auto& j = last.job;
    bind_all(job_, static_cast<int64_t>(j.job_id), j.node, j.uid, j.user, j.start_ms, j.end_ms, j.last_sample_ms,
             j.sample_count, j.cgroup_cpu_ns, j.cgroup_mem_peak, j.max_rss_sum);
    step(job_);
    for (const auto& u : last.processes) {
      const auto& p = u.record;
      std::string argv;
      for (const auto& a : p.argv) argv += a + '\0';
      bind_all(proc_, static_cast<int64_t>(j.job_id), j.node, p.pid, p.start_ticks, p.ppid, p.step, p.start_ms,
               p.end_ms, p.series_id, p.command, p.exe, argv, p.cpu_ns, p.max_rss, p.rss, p.read_bytes, p.write_bytes);
      step(proc_);
    }
    for (const auto& r : rows) {
      bind_all(sample_, static_cast<int64_t>(j.job_id), j.node, r.series, r.t, r.cpu, r.rss, r.rd, r.wr);
      step(sample_);
    }
    exec("COMMIT");
  }
  sqlite3* db() { return db_; }

 private:
  void exec(const std::string& sql) {
    sq_check(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr), db_, sql.c_str());
  }
  void prepare(sqlite3_stmt** s, const char* sql) { sq_check(sqlite3_prepare_v2(db_, sql, -1, s, nullptr), db_, sql); }
  void step(sqlite3_stmt* s) {
    sq_check(sqlite3_step(s), db_, "step");
    sqlite3_reset(s);
  }
  void put_sample(const store::JobRecord& j, uint32_t series, const store::Sample& s) {
    bind_all(sample_, static_cast<int64_t>(j.job_id), j.node, series, s.time_s, s.cpu_ns, s.rss, s.read_bytes,
             s.write_bytes);
    step(sample_);
  }
  void bind(sqlite3_stmt* s, int i, const std::string& v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  template <typename T>
  void bind(sqlite3_stmt* s, int i, T v) {
    sqlite3_bind_int64(s, i, static_cast<sqlite3_int64>(v));
  }
  template <typename... Args>
  void bind_all(sqlite3_stmt* s, Args&&... args) {
    int i = 0;
    (bind(s, ++i, args), ...);
  }
  sqlite3* db_ = nullptr;
  sqlite3_stmt *job_ = nullptr, *proc_ = nullptr, *sample_ = nullptr;
};

std::unique_ptr<Sink> make_sink(const std::string& kind, const std::string& dir, const std::string& durability) {
  if (kind == "lmdb") {
    store::Durability d = durability == "full"   ? store::Durability::Full
                          : durability == "none" ? store::Durability::NoSync
                                                 : store::Durability::NoMetaSync;
    return std::make_unique<LmdbSink>(dir, d);
  }
  const char* sync = durability == "full" ? "FULL" : durability == "none" ? "OFF" : "NORMAL";
  return std::make_unique<SqliteSink>(dir, sync, kind == "sqlite_tm");
}

// Writes `ticks` batches; only the writes are timed (wall and this process's CPU).
void ingest(Sink& sink, bench::SyntheticJob& job, int64_t first, int64_t ticks, double* wall, double* cpu,
            bool progress) {
  double w = 0, c = 0;
  for (int64_t k = first; k < first + ticks; ++k) {
    if (progress && k == first + ticks - 1) job.job.end_ms = (job.start_s + k) * 1000;  // the final tick
    store::Batch b = job.tick(k);
    const double w0 = now_s(), c0 = cpu_s();
    sink.write(b);
    w += now_s() - w0;
    c += cpu_s() - c0;
    job.commit(b);
    if (progress && k % 3600 == 3599)
      std::fprintf(stderr, "  ... %lld h of %lld written\n", static_cast<long long>((k + 1) / 3600),
                   static_cast<long long>((first + ticks) / 3600));
  }
  *wall = w;
  *cpu = c;
}

// `jobs` monitors share the node's `procs` processes; each tick every monitor commits its own batch, one
// after the other, as separate monitor processes writing one node store would.
int cmd_ingest(const std::string& kind, const std::string& dir, int procs, int64_t ticks, const std::string& durability,
               int jobs) {
  fs::remove_all(dir);
  auto sink = make_sink(kind, dir, durability);
  std::vector<bench::SyntheticJob> monitors(static_cast<size_t>(jobs));
  for (int j = 0; j < jobs; ++j) {
    auto& m = monitors[static_cast<size_t>(j)];
    m.job_id = 1000 + static_cast<uint64_t>(j);
    m.seed = 42 + static_cast<uint64_t>(j);
    m.processes = procs / jobs + (j < procs % jobs ? 1 : 0);
    m.init();
  }
  double wall = 0, cpu = 0;
  for (int64_t k = 0; k < ticks; ++k) {
    for (auto& m : monitors) {
      double w = 0, c = 0;
      ingest(*sink, m, k, 1, &w, &c, false);
      wall += w;
      cpu += c;
    }
  }
  const double samples = static_cast<double>(ticks) * (procs + jobs);
  const std::string prefix =
      (kind == "lmdb" ? std::string("store") : kind) + (jobs > 1 ? "_node" : "") + "_ingest_" + durability;
  bench(prefix + "_samples_per_s", samples / wall, "samples/s");
  bench(prefix + "_cpu_samples_per_s", samples / cpu, "samples/cpu-s");
  bench(prefix + "_commit_ms", wall / static_cast<double>(ticks * jobs) * 1e3, "ms");
  sink.reset();
  fs::remove_all(dir);
  return 0;
}

int cmd_build(const std::string& kind, const std::string& dir, int procs, int64_t hours) {
  fs::remove_all(dir);
  bench::SyntheticJob job;
  job.processes = procs;
  job.init();
  const int64_t ticks = hours * 3600;
  const double samples = static_cast<double>(ticks) * (procs + 1);
  if (kind == "lmdb") {
    auto sink =
        make_sink(kind, dir, std::getenv("BENCH_BUILD_DURABILITY") ? std::getenv("BENCH_BUILD_DURABILITY") : "default");
    double wall = 0, cpu = 0;
    ingest(*sink, job, 0, ticks, &wall, &cpu, true);
    bench("store_build_samples_per_s", samples / wall, "samples/s");
    bench("store_build_cpu_samples_per_s", samples / cpu, "samples/cpu-s");
    auto& s = static_cast<LmdbSink&>(*sink).store();
    s.sweep(UINT64_MAX);  // settle: seal idle minutes, expire everything out of retention
    store::StoreStats st = s.stats();
    uint64_t second_bytes = 0;
    for (const auto& t : st.tables)
      if (t.name == "series_s" || t.name == "open") second_bytes += t.bytes;
    bench("store_size_second_res_bytes_per_sample",
          static_cast<double>(second_bytes) / static_cast<double>(st.samples_second), "B");
    bench("store_size_in_use_bytes_per_ingested_sample", static_cast<double>(st.in_use_bytes) / samples, "B");
    bench("store_size_in_use_bytes", static_cast<double>(st.in_use_bytes), "B");
    bench("store_size_file_bytes", static_cast<double>(dir_bytes(dir)), "B");
    bench("store_second_res_samples_kept", static_cast<double>(st.samples_second), "samples");
    for (const auto& t : st.tables)
      if (t.resolution) bench("store_size_table_" + t.name + "_bytes", static_cast<double>(t.bytes), "B");
    return 0;
  }
  // SQLite: bulk-loaded an hour at a time in key order (the monitor-style ingest is measured by `ingest`;
  // at its speed a day would take most of an hour).
  SqliteSink sink(dir, "NORMAL", false);
  std::vector<SqliteSink::Row> rows;
  const double w0 = now_s();
  for (int64_t h = 0; h < hours; ++h) {
    rows.clear();
    store::Batch last;
    for (int64_t k = h * 3600; k < (h + 1) * 3600; ++k) {
      if (k == ticks - 1) job.job.end_ms = (job.start_s + k) * 1000;
      store::Batch b = job.tick(k);
      for (size_t i = 0; i < b.processes.size(); ++i) {
        b.processes[i].record.series_id = static_cast<uint32_t>(i) + 1;
        const auto& sm = *b.processes[i].sample;
        rows.push_back({static_cast<uint32_t>(i) + 1, sm.time_s, sm.cpu_ns, sm.rss, sm.read_bytes, sm.write_bytes});
      }
      const auto& js = *b.job_sample;
      rows.push_back({0, js.time_s, js.cpu_ns, js.rss, js.read_bytes, js.write_bytes});
      job.commit(b);
      if (k == (h + 1) * 3600 - 1) last = std::move(b);
    }
    sink.bulk(last, rows);
    std::fprintf(stderr, "  ... %lld h of %lld loaded into SQLite\n", static_cast<long long>(h + 1),
                 static_cast<long long>(hours));
  }
  bench("sqlite_bulk_load_samples_per_s", samples / (now_s() - w0), "samples/s");
  sqlite3* db = sink.db();
  sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  const double bytes = static_cast<double>(dir_bytes(dir));
  bench("sqlite_size_bytes_per_sample", bytes / samples, "B");
  bench("sqlite_size_file_bytes", bytes, "B");
  return 0;
}

// A job's header and process list (what `bcacct -j` reads), and every series of the job rolled up over its
// whole life at the finest resolution that holds it (what a job page shows).
int cmd_query(const std::string& kind, const std::string& dir, const std::string& label) {
  const uint64_t job_id = bench::SyntheticJob{}.job_id;
  const std::string node = bench::SyntheticJob{}.node;
  const std::string prefix = (kind == "lmdb" ? "store_" : "sqlite_") + label;
  if (kind == "lmdb") {
    store::OpenOptions o;
    o.read_only = true;
    o.create = false;
    o.config_path = "";
    o.retention = store::Retention{};
    const uint64_t io0 = storage_read_bytes();
    double t0 = now_s();
    auto s = store::Store::open(dir, o);
    store::JobSnapshot snap = s->load_job(job_id);
    const double header = now_s() - t0;
    const uint64_t header_io = storage_read_bytes() - io0;
    if (snap.processes.empty()) return 1;
    t0 = now_s();
    uint64_t buckets = 0;
    store::Resolution res = store::Resolution::Second;
    for (uint32_t series = 0; series <= snap.processes.size(); ++series) {
      store::SeriesData d = s->query_series({job_id, node, series, 0, INT64_MAX, std::nullopt});
      buckets += d.buckets.size();
      res = d.resolution;
    }
    const double all = now_s() - t0;
    bench(prefix + "_job_processes_ms", header * 1e3, "ms");
    bench(prefix + "_job_processes_read_kib", static_cast<double>(header_io) / 1024, "KiB");
    bench(prefix + "_job_series_rollup_ms", all * 1e3, "ms");
    std::fprintf(stderr, "  %zu processes, %llu %s buckets over %zu series\n", snap.processes.size(),
                 static_cast<unsigned long long>(buckets), store::resolution_name(res), snap.processes.size() + 1);
    return 0;
  }
  const uint64_t io0 = storage_read_bytes();
  double t0 = now_s();
  sqlite3* db = nullptr;
  sq_check(sqlite3_open_v2((dir + "/bench.sqlite").c_str(), &db, SQLITE_OPEN_READONLY, nullptr), db, "open");
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT * FROM job WHERE job_id = ?", -1, &st, nullptr);
  sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(job_id));
  int cols = 0;
  while (sqlite3_step(st) == SQLITE_ROW) cols += sqlite3_column_count(st);
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db, "SELECT * FROM process WHERE job_id = ?", -1, &st, nullptr);
  sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(job_id));
  // The same work as the store's load_job: full process records.
  std::vector<store::ProcessRecord> procs;
  auto text = [&](int col) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, col));
    return std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st, col)));
  };
  auto num = [&](int col) { return static_cast<uint64_t>(sqlite3_column_int64(st, col)); };
  while (sqlite3_step(st) == SQLITE_ROW) {
    store::ProcessRecord p;
    p.job_id = num(0);
    p.node = text(1);
    p.pid = static_cast<uint32_t>(num(2));
    p.start_ticks = num(3);
    p.ppid = static_cast<uint32_t>(num(4));
    p.step = static_cast<uint32_t>(num(5));
    p.start_ms = static_cast<int64_t>(num(6));
    p.end_ms = static_cast<int64_t>(num(7));
    p.series_id = static_cast<uint32_t>(num(8));
    p.command = text(9);
    p.exe = text(10);
    const std::string argv = text(11);
    for (size_t b = 0, e; b < argv.size(); b = e + 1) {
      e = argv.find('\0', b);
      if (e == std::string::npos) e = argv.size();
      p.argv.push_back(argv.substr(b, e - b));
    }
    p.cpu_ns = num(12);
    p.max_rss = num(13);
    p.rss = num(14);
    p.read_bytes = num(15);
    p.write_bytes = num(16);
    procs.push_back(std::move(p));
  }
  sqlite3_finalize(st);
  std::vector<uint32_t> series = {0};
  for (const auto& p : procs) series.push_back(p.series_id);
  const double header = now_s() - t0;
  const uint64_t header_io = storage_read_bytes() - io0;
  // The same rollup as the store's minute buckets, computed from the raw rows: samples, CPU increase,
  // peak and mean RSS, I/O per minute.
  t0 = now_s();
  sqlite3_prepare_v2(db,
                     "SELECT t / 60, count(*), max(cpu_ns) - min(cpu_ns), max(rss), avg(rss), "
                     "max(read_bytes) - min(read_bytes), max(write_bytes) - min(write_bytes) "
                     "FROM sample WHERE job_id = ? AND node = ? AND series = ? GROUP BY t / 60",
                     -1, &st, nullptr);
  uint64_t buckets = 0;
  for (uint32_t s : series) {
    sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(job_id));
    sqlite3_bind_text(st, 2, node.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, s);
    while (sqlite3_step(st) == SQLITE_ROW) ++buckets;
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  const double all = now_s() - t0;
  sqlite3_close(db);
  bench(prefix + "_job_processes_ms", header * 1e3, "ms");
  bench(prefix + "_job_processes_read_kib", static_cast<double>(header_io) / 1024, "KiB");
  bench(prefix + "_job_series_rollup_ms", all * 1e3, "ms");
  std::fprintf(stderr, "  %zu processes, %llu minute buckets over %zu series (%d job columns)\n", series.size() - 1,
               static_cast<unsigned long long>(buckets), series.size(), cols);
  return 0;
}

int cmd_evict(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) {
    std::vector<fs::path> files;
    if (fs::is_directory(argv[i])) {
      for (const auto& e : fs::directory_iterator(argv[i])) files.push_back(e.path());
    } else {
      files.emplace_back(argv[i]);
    }
    for (const auto& f : files) {
      int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      fdatasync(fd);
      posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      ::close(fd);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  try {
    if (cmd == "ingest" && (argc == 7 || argc == 8))
      return cmd_ingest(argv[2], argv[3], std::atoi(argv[4]), std::atoll(argv[5]), argv[6],
                        argc == 8 ? std::max(1, std::atoi(argv[7])) : 1);
    if (cmd == "build" && argc == 6) return cmd_build(argv[2], argv[3], std::atoi(argv[4]), std::atoll(argv[5]));
    if (cmd == "query" && argc == 5) return cmd_query(argv[2], argv[3], argv[4]);
    if (cmd == "evict") return cmd_evict(argc - 2, argv + 2);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "store_bench: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr,
               "usage: store_bench ingest lmdb|sqlite|sqlite_tm DIR PROCS TICKS default|full|none [JOBS]\n"
               "       store_bench build lmdb|sqlite DIR PROCS HOURS\n"
               "       store_bench query lmdb|sqlite DIR LABEL\n"
               "       store_bench evict PATH...\n");
  return 2;
}
