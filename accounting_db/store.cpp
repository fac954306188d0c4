#include "accounting_db/store.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <span>
#include <unordered_map>

#include "accounting_db/codec.hpp"
#include "accounting_db/config.hpp"
#include "accounting_db/lmdb_raii.hpp"
#include "accounting_db/rollup.hpp"
#include "accounting_db/store_access.hpp"
#include "accounting_db/wire.hpp"

namespace bc::store {

std::string oversized_name(const Batch& batch) {
  const auto too_long = [](const char* what, size_t size) {
    return std::string(what) + " of " + std::to_string(size) + " bytes";
  };
  if (batch.job.node.size() > kMaxNodeNameBytes) return too_long("node name", batch.job.node.size());
  if (batch.job.job_name.size() > kMaxJobNameBytes) return too_long("job name", batch.job.job_name.size());
  for (const auto& f : batch.files)
    if (f.path.size() > kMaxPathBytes) return too_long("file path", f.path.size());
  for (const auto& c : batch.connections)
    if (c.address.size() > kMaxPathBytes) return too_long("peer address", c.address.size());
  return {};
}

namespace {
// One letter per FileFlags bit, from bit 0 up.
constexpr std::string_view kFileFlagLetters = "rwctad";
}  // namespace

std::string file_flags_text(uint32_t flags) {
  std::string out;
  for (size_t i = 0; i < kFileFlagLetters.size(); ++i)
    if (flags & (1U << i)) out.push_back(kFileFlagLetters[i]);
  return out.empty() ? "-" : out;
}

uint32_t file_flags_from_text(std::string_view text) {
  uint32_t flags = 0;
  for (char c : text) {
    const size_t bit = kFileFlagLetters.find(c);
    if (bit != std::string_view::npos) flags |= 1U << bit;
  }
  return flags;
}

namespace {

using codec::Buckets;
using codec::Chunk;
using codec::JobState;
using codec::Key;
using codec::OpenRecord;
using codec::Point;
using lmdb::Cursor;
using lmdb::Txn;
using rollup::floor_to;

// ---- Schema 2 layout ----
//   meta          "schema_version" -> be32, "next_node_id" -> be32, "sweep_cursor" -> (job, node)
//   nodes         node name -> be32 node id
//   jobs          (job u64, node u32) -> JobRecord
//   processes     (job, node, pid u32, start_ticks u64) -> ProcessRecord
//   series_alloc  (job, node) -> be32 next series id
//   job_state     (job, node) -> JobState (latest sample, floors, cursors)
//   process_pack  (job, node) -> ProcessPack: a finished job's process records in one value (a copy for
//                 cold reads; valid while its generation is the job state's process_generation)
//   open          (job, node, series u32) -> OpenRecord: the series' newest minute of seconds
//   series_s      (job, node, minute start u32, series) -> Chunk: one sealed minute of seconds
//   series_m      (job, node, hour start, series) -> Buckets: the minutes of an hour
//   series_h      (job, node, day start, series) -> Buckets: the hours of a day
//   series_d      (job, node, 32-day start, series) -> Buckets: the days of 32 days
//   files         (job, node, pid u32, start_ticks u64, path hash u64) -> FileRecord (totals)
//   connections   (job, node, pid, start_ticks, peer hash u64) -> ConnectionRecord (totals)
// The hash keys of files and connections are FNV-1a of the path / (address, port, protocol); on a
// collision the next hash value is used, so a key's hash is within kHashProbes above its record's own.
// Chunk keys put time before series, so a job's oldest data is at the start of its range (expiry is a
// cursor walk) and one tick's writes land on neighbouring pages.
constexpr int64_t kChunkSpan[kResolutions] = {60, 3600, 86400, 86400 * 32};
constexpr const char* kSeriesTable[kResolutions] = {"series_s", "series_m", "series_h", "series_d"};
constexpr int64_t kMaxTime = (int64_t{1} << 32) - 1 - 86400 * 64;
constexpr int64_t kSealGrace = 120;
constexpr int64_t kNoSamples = INT64_MAX;  // JobState::first_s of a job without samples yet  // an open minute this
                                           // much older than the job's latest data is sealed
constexpr uint32_t kSweepEveryBatches = 64;

const std::string kSchemaKey = "schema_version";
const std::string kSweepCursorKey = "sweep_cursor";

// Fixed-width big-endian key on the stack (the write path builds one per sample).
struct FixedKey {
  std::array<char, 24> b{};
  size_t n = 0;
  FixedKey& u32(uint32_t v) { return put(v, 4); }
  FixedKey& u64(uint64_t v) { return put(v, 8); }
  std::string_view sv() const { return {b.data(), n}; }

 private:
  FixedKey& put(uint64_t v, int width) {
    const uint64_t be = __builtin_bswap64(v << (64 - 8 * width));  // the low `width` bytes, most significant first
    std::memcpy(b.data() + n, &be, static_cast<size_t>(width));
    n += static_cast<size_t>(width);
    return *this;
  }
};

FixedKey job_key(uint64_t job, uint32_t node) { return FixedKey().u64(job).u32(node); }
FixedKey open_key(uint64_t job, uint32_t node, uint32_t series) { return FixedKey().u64(job).u32(node).u32(series); }
FixedKey chunk_key(uint64_t job, uint32_t node, int64_t start, uint32_t series) {
  return FixedKey().u64(job).u32(node).u32(static_cast<uint32_t>(start)).u32(series);
}
FixedKey process_key(uint64_t job, uint32_t node, uint32_t pid, uint64_t start_ticks) {
  return FixedKey().u64(job).u32(node).u32(pid).u64(start_ticks);
}

// Everything in a process record but the counters its series carries: series and end as numbers, the rest
// as its canonical encoding (codec::append_process_identity). Kept by the writer to see that a tick's record
// is the stored one; comparing bytes also serves bcd's records, whose identity arrives encoded.
struct ProcessIdentity {
  uint32_t series_id = 0;
  int64_t end_ms = 0;
  std::string encoded;

  ProcessIdentity(const ProcessRecord& p, std::string_view identity)
      : series_id(p.series_id), end_ms(p.end_ms), encoded(identity) {}
  bool same_as(const ProcessRecord& p, std::string_view identity) const {
    return series_id == p.series_id && end_ms == p.end_ms && encoded == identity;
  }
};

// ---- files and connections (eBPF events) ----
constexpr uint64_t kHashProbes = 16;

uint64_t fnv1a(std::initializer_list<std::string_view> parts) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (std::string_view part : parts) {
    for (char c : part) {
      h ^= static_cast<uint8_t>(c);
      h *= 0x100000001b3ULL;
    }
    h ^= 0xff;  // separator: ("ab", "c") and ("a", "bc") differ
    h *= 0x100000001b3ULL;
  }
  return h;
}
uint64_t file_hash(const FileRecord& f) { return fnv1a({f.path}); }
uint64_t connection_hash(const ConnectionRecord& c) {
  const char port[2] = {static_cast<char>(c.port >> 8), static_cast<char>(c.port & 0xff)};
  return fnv1a({c.address, std::string_view(port, 2), c.protocol});
}
bool same_file(const FileRecord& a, const FileRecord& b) { return a.path == b.path; }
bool same_connection(const ConnectionRecord& a, const ConnectionRecord& b) {
  return a.address == b.address && a.port == b.port && a.protocol == b.protocol;
}
void add_to(FileRecord& total, const FileRecord& inc) {
  total.flags |= inc.flags;
  if (inc.first_ms && (!total.first_ms || inc.first_ms < total.first_ms)) total.first_ms = inc.first_ms;
  total.opens += inc.opens;
  total.failed += inc.failed;
  total.read_bytes += inc.read_bytes;
  total.write_bytes += inc.write_bytes;
}
void add_to(ConnectionRecord& total, const ConnectionRecord& inc) {
  if (inc.first_ms && (!total.first_ms || inc.first_ms < total.first_ms)) total.first_ms = inc.first_ms;
  total.count += inc.count;
  total.failed += inc.failed;
}
std::string event_key(uint64_t job, uint32_t node, uint32_t pid, uint64_t start_ticks, uint64_t hash) {
  return Key().u64(job).u32(node).u32(pid).u64(start_ticks).u64(hash).bytes();
}

struct PidKey {
  uint32_t pid;
  uint64_t start_ticks;
  bool operator==(const PidKey&) const = default;
};
struct PidKeyHash {
  size_t operator()(const PidKey& k) const {
    return std::hash<uint64_t>()(k.start_ticks * 0x9E3779B97F4A7C15ULL ^ k.pid);
  }
};

// What this process last wrote of a job's process records, valid while the job's process generation is
// the one it saw: a record whose identity is unchanged and whose counters are in its series is not
// rewritten.
struct ProcessCache {
  uint64_t generation = 0;
  std::unordered_map<PidKey, ProcessIdentity, PidKeyHash> identity;
};

// A write transaction's changes to one job's process cache, seen by every batch it writes (bcd writes many
// ticks of a node in one transaction) and applied to the cache once it commits.
struct PendingCache {
  bool reset = false;       // the cache did not match the store when the transaction first looked
  uint64_t generation = 0;  // the job's process generation after the transaction's writes so far
  std::unordered_map<PidKey, std::optional<ProcessIdentity>, PidKeyHash> set;  // nullopt: forget
};
std::string be32(uint32_t v) { return Key().u32(v).bytes(); }
uint32_t read_u32(std::string_view v) { return static_cast<uint32_t>(codec::read_be(v, 0, 4)); }

struct ChunkKey {
  uint64_t job;
  uint32_t node;
  int64_t start;
  uint32_t series;
};
ChunkKey parse_chunk_key(std::string_view k) {
  if (k.size() != 20) throw StoreError("corrupt store: series key of " + std::to_string(k.size()) + " bytes");
  return {codec::read_be(k, 0, 8), static_cast<uint32_t>(codec::read_be(k, 8, 4)),
          static_cast<int64_t>(codec::read_be(k, 12, 4)), static_cast<uint32_t>(codec::read_be(k, 16, 4))};
}

int64_t minute_of(int64_t t) { return floor_to(t, 60); }

// Whether a bucket [start, start+width) is still within retention, measured from the job's latest data.
bool kept(int64_t start, int64_t width, int64_t latest, int64_t retention) {
  return retention == 0 || start + width > latest - retention;
}

void log_line(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log_line(const char* fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "bubble-chamber store: %s\n", msg);
  std::fflush(stderr);
}

int64_t monotonic_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Inserts p into time-ordered points, replacing a point with the same time. False if nothing changed.
bool upsert_point(std::vector<Point>& points, const Point& p) {
  auto it = std::lower_bound(points.begin(), points.end(), p.t, [](const Point& a, int64_t t) { return a.t < t; });
  if (it != points.end() && it->t == p.t) {
    if (*it == p) return false;
    *it = p;
    return true;
  }
  points.insert(it, p);
  return true;
}

enum class Mode { Normal, Init, Upgrade };

// Point lookups (a job's header and processes) touch a few pages that copy-on-write has spread over the
// file: on a cold cache the kernel's read-around would read up to the device's read_ahead_kb (8 MiB on
// some virtual disks) for each 4 KiB page. A read-only store is therefore opened without read-ahead
// (MDB_NORDAHEAD, before its first page is read), and scans (series queries, stats, check) turn it back
// on for their duration. A writer's map keeps read-ahead, and its point lookups turn it off. The hint goes
// on the memory map, which LMDB does not expose: it is found from a pointer into it.
struct MapRange {
  void* start = nullptr;
  size_t size = 0;
};

MapRange mapping_of(const void* p) {
  MapRange r;
  FILE* maps = std::fopen("/proc/self/maps", "re");
  if (!maps) return r;
  char line[512];
  const auto at = reinterpret_cast<uintptr_t>(p);
  while (std::fgets(line, sizeof line, maps)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line, "%lx-%lx", &lo, &hi) == 2 && at >= lo && at < hi) {
      r.start = reinterpret_cast<void*>(lo);
      r.size = hi - lo;
      break;
    }
  }
  std::fclose(maps);
  return r;
}

// Sets an madvise advice on the map for a scope, then restores the map's usual one.
class AccessHint {
 public:
  AccessHint(const MapRange& r, int advice, int usual) : range_(r), usual_(usual) {
    if (advice == usual || !range_.start || madvise(range_.start, range_.size, advice) != 0) range_.start = nullptr;
  }
  ~AccessHint() {
    if (range_.start) madvise(range_.start, range_.size, usual_);
  }
  AccessHint(const AccessHint&) = delete;
  AccessHint& operator=(const AccessHint&) = delete;

 private:
  MapRange range_;
  int usual_;
};

// The cursors and state of one write transaction on one job on one node.
struct WriteCtx {
  explicit WriteCtx(Txn& t) : txn(t) {}
  Txn& txn;
  uint64_t job = 0;
  uint32_t node = 0;
  JobState js;
  bool drop_seconds = false;  // degraded: sealed seconds are not kept
  bool try_append = true;
  std::optional<Cursor> open, tables[kResolutions];
  std::string buf, buf2, points, identity;  // scratch
  uint64_t dropped = 0;
  uint64_t rejected = 0;            // samples: a time out of range, or their process left out (below)
  uint64_t unstored_processes = 0;  // left out: no series id left for them
  uint64_t sealed = 0, deleted = 0;
  // LMDB frees a write transaction's cursors when it ends: close ours before that.
  void close_cursors() {
    open.reset();
    for (auto& t : tables) t.reset();
  }
};

// What one attempt of a write left out; added to the store's counts only once its transaction committed.
struct WriteCounts {
  uint64_t rejected = 0, unstored_processes = 0;
  static WriteCounts of(const WriteCtx& ctx) { return {ctx.rejected, ctx.unstored_processes}; }
  WriteCounts& operator+=(const WriteCounts& o) {
    rejected += o.rejected;
    unstored_processes += o.unstored_processes;
    return *this;
  }
};

// A process's series id is 1..kLastSeriesId; 0 and one past the last would be the job's own series.
bool has_series_id(const ProcessRecord& p) { return p.series_id != 0 && p.series_id <= kLastSeriesId; }

class LmdbStore final : public Store {
 public:
  LmdbStore(const std::string& path, const OpenOptions& options, Mode mode)
      : LmdbStore(path, options, mode, effective_config(options)) {}

  LmdbStore(const std::string& path, const OpenOptions& options, Mode mode, const StoreConfig& config)
      : path_(path), options_(options), retention_(config.retention), group_(config.group), mode_(mode) {
    if (!options.read_only && options.create) {
      if (mkdir(path.c_str(), store_dir_mode(group_)) != 0 && errno != EEXIST)
        throw StoreError("cannot create store directory " + path + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (stat(path.c_str(), &st) != 0)
      throw StoreError("store " + path + " does not exist (" + std::strerror(errno) + ")");
    open_env();
    if (!options.read_only) make_store_private(path_, group_);
    open_tables();
  }

  // ---------------------------------------------------------------- writes

  void write_batch(Batch& batch) override {
    auto writing = write_lock();
    if (options_.read_only) throw StoreError("store " + path_ + " is open read-only");
    if (const std::string name = oversized_name(batch); !name.empty())
      throw StoreError("batch of job " + std::to_string(batch.job.job_id) + " refused: its " + name +
                       " is past the store's bound");
    std::vector<uint32_t> given_series;
    given_series.reserve(batch.processes.size());
    for (const auto& u : batch.processes) given_series.push_back(u.record.series_id);
    auto restore_series = [&] {
      for (size_t i = 0; i < batch.processes.size(); ++i) batch.processes[i].record.series_id = given_series[i];
    };
    prepare_batch();
    int drop_rounds = 0;
    for (int attempt = 0;; ++attempt) {
      int rc = MDB_SUCCESS;
      uint64_t dropped = 0;
      WriteCounts counts;
      try {
        Txn txn = begin(0);
        pending_caches_.clear();
        WriteCtx ctx(txn);
        ctx.drop_seconds = degraded_;
        write_in(ctx, batch);
        if (in_txn_) in_txn_(txn, batch);
        ctx.close_cursors();
        dropped = ctx.dropped;
        counts = WriteCounts::of(ctx);
        rc = txn.commit();
        if (rc == MDB_SUCCESS) apply_pending_caches();
        pending_caches_.clear();
      } catch (const lmdb::LmdbError& e) {
        rc = e.rc();
        if (!retriable(rc)) {
          restore_series();
          throw;
        }
      } catch (...) {
        restore_series();
        throw;
      }
      if (rc == MDB_SUCCESS) {
        count_late(dropped);
        count_rejected(counts);
        break;
      }
      restore_series();
      if (!retriable(rc)) lmdb::fail("store commit failed in " + path_, rc);
      if (attempt >= 8)
        lmdb::fail("store write failed in " + path_ + " after " + std::to_string(attempt + 1) + " attempts", rc);
      if (rc == MDB_MAP_RESIZED) {
        adopt_map_size();
        continue;
      }
      if (rc == MDB_PANIC) {
        log_line("%s: LMDB reported a fatal error; reopening the environment", path_.c_str());
        reopen_env();
        continue;
      }
      if (rc == MDB_MAP_FULL && grow_map()) continue;
      // MDB_MAP_FULL without room to grow, ENOSPC, EDQUOT: the disk is full.
      enter_degraded(rc == MDB_MAP_FULL ? "the map is full and the disk has no room to grow it" : mdb_strerror(rc));
      if (drop_rounds++ >= 6 || !free_space_round())
        lmdb::fail("store " + path_ + " is full and nothing is left to drop", rc);
    }
    if (++batches_ % kSweepEveryBatches == 0) periodic_sweep();
  }

  // ---------------------------------------------------------------- reads

  std::optional<JobRecord> job(uint64_t job_id, const std::string& node) override {
    AccessHint hint = point_lookups();
    Txn txn = begin(MDB_RDONLY);
    auto node_id = find_node(txn, node);
    if (!node_id) return std::nullopt;
    auto v = txn.get(jobs_, job_key(job_id, *node_id).sv());
    if (!v) return std::nullopt;
    return codec::decode_job(*v);
  }

  std::vector<JobRecord> job_nodes(uint64_t job_id) override {
    AccessHint hint = point_lookups();
    Txn txn = begin(MDB_RDONLY);
    return job_nodes_in(txn, job_id);
  }

  std::vector<uint64_t> job_ids() override {
    Txn txn = begin(MDB_RDONLY);
    std::vector<uint64_t> out;
    Cursor c(txn, jobs_);
    for (bool ok = c.first(); ok; ok = c.next()) {
      uint64_t id = codec::read_be(c.key(), 0, 8);
      if (out.empty() || out.back() != id) out.push_back(id);
    }
    return out;
  }

  std::vector<ProcessRecord> processes(uint64_t job_id) override {
    AccessHint hint = point_lookups();
    Txn txn = begin(MDB_RDONLY);
    return processes_in(txn, job_id);
  }

  std::vector<FileRecord> files(uint64_t job_id) override {
    Txn txn = begin(MDB_RDONLY);
    return event_records_in<FileRecord>(txn, files_, job_id, codec::decode_file);
  }

  std::vector<ConnectionRecord> connections(uint64_t job_id) override {
    Txn txn = begin(MDB_RDONLY);
    return event_records_in<ConnectionRecord>(txn, connections_, job_id, codec::decode_connection);
  }

  JobSnapshot load_job(uint64_t job_id) override {
    AccessHint hint = point_lookups();
    Txn txn = begin(MDB_RDONLY);
    JobSnapshot s;
    s.nodes = job_nodes_in(txn, job_id);
    if (!s.nodes.empty()) s.processes = processes_in(txn, job_id);
    return s;
  }

  std::vector<Sample> series(uint64_t job_id, const std::string& node, uint32_t series_id, int64_t from_s,
                             int64_t to_s) override {
    AccessHint hint = scans();
    Txn txn = begin(MDB_RDONLY);
    std::vector<Sample> out;
    auto node_id = find_node(txn, node);
    if (!node_id) return out;
    auto js = job_state(txn, job_id, *node_id);
    if (!js) return out;
    for_each_point(txn, job_id, *node_id, series_id, *js, from_s, to_s, [&](const Point& p, const Point*) {
      out.push_back(Sample{series_id, p.t, p.cpu, p.rss, p.rd, p.wr});
    });
    return out;
  }

  SeriesData query_series(const SeriesQuery& q) override {
    AccessHint hint = scans();
    Txn txn = begin(MDB_RDONLY);
    SeriesData out;
    out.resolution = q.resolution.value_or(Resolution::Second);
    auto node_id = find_node(txn, q.node);
    if (!node_id) return out;
    auto js = job_state(txn, q.job_id, *node_id);
    if (!js) return out;
    out.resolution = q.resolution ? *q.resolution : choose_resolution(*js, q.from_s);
    const Resolution r = out.resolution;
    if (r == Resolution::Second) {
      for_each_point(txn, q.job_id, *node_id, q.series_id, *js, q.from_s, q.to_s,
                     [&](const Point& p, const Point* prev) {
                       Rollup b;
                       b.start_s = p.t;
                       b.width_s = 1;
                       rollup::add_point(b, p, prev);
                       out.buckets.push_back(b);
                     });
      return out;
    }
    const int64_t w = bucket_seconds(r), span = kChunkSpan[static_cast<int>(r)], ret = retention_.of(r);
    int64_t lo = std::max({q.from_s, js->first_s, int64_t{0}});
    if (ret) lo = std::max(lo, js->latest_s - ret - span);  // nothing older is kept
    const int64_t hi = std::min(q.to_s, js->latest_s);
    if (lo > hi) return out;
    auto want = [&](int64_t start) {
      return start + w > q.from_s && start <= q.to_s && kept(start, w, js->latest_s, ret);
    };
    Cursor c(txn, series_dbi(r));
    for (int64_t chunk = floor_to(floor_to(lo, w), span); chunk <= hi; chunk += span) {
      if (!c.find(chunk_key(q.job_id, *node_id, chunk, q.series_id).sv())) continue;
      for (auto& [index, b] : codec::decode_buckets(c.value())) {
        const int64_t start = chunk + static_cast<int64_t>(index) * w;
        if (!want(start)) continue;
        b.start_s = start;
        b.width_s = w;
        out.buckets.push_back(b);
      }
    }
    // The open minute is not rolled up yet: add it on the fly.
    if (auto v = txn.get(open_, open_key(q.job_id, *node_id, q.series_id).sv())) {
      OpenRecord o = codec::decode_open(*v);
      if (o.has_points && want(floor_to(o.chunk_start, w))) {
        auto points = codec::decode_points(o.points, o.origin(), !o.has_base);
        Rollup agg = rollup::of_points(points, o.has_base ? &o.base : nullptr);
        const int64_t start = floor_to(o.chunk_start, w);
        auto it =
            std::find_if(out.buckets.begin(), out.buckets.end(), [&](const Rollup& b) { return b.start_s == start; });
        if (it == out.buckets.end()) {
          agg.start_s = start;
          agg.width_s = w;
          out.buckets.push_back(agg);
        } else {
          rollup::merge(*it, agg);
        }
      }
    }
    std::sort(out.buckets.begin(), out.buckets.end(),
              [](const Rollup& a, const Rollup& b) { return a.start_s < b.start_s; });
    return out;
  }

  uint32_t schema_version() override {
    Txn txn = begin(MDB_RDONLY);
    auto v = txn.get(meta_, kSchemaKey);
    return v ? read_u32(*v) : 0;
  }

  const Retention& retention() const override { return retention_; }

  // ---------------------------------------------------------------- administration

  DroppedSamples dropped_samples() override {
    auto writing = write_lock();
    return {dropped_late_, rejected_};
  }

  StoreStats stats() override {
    auto writing = write_lock();
    StoreStats s;
    AccessHint hint = scans();
    Txn txn = begin(MDB_RDONLY);
    MDB_envinfo info{};
    lmdb::check(mdb_env_info(env_->get(), &info), "mdb_env_info");
    MDB_stat envst{};
    lmdb::check(mdb_env_stat(env_->get(), &envst), "mdb_env_stat");
    s.page_size = envst.ms_psize;
    s.map_bytes = info.me_mapsize;
    s.last_page_bytes = (info.me_last_pgno + 1) * s.page_size;
    s.fill_ratio = s.map_bytes ? static_cast<double>(s.last_page_bytes) / static_cast<double>(s.map_bytes) : 0;
    auto v = txn.get(meta_, kSchemaKey);
    s.schema_version = v ? read_u32(*v) : 0;
    for (auto [name, dbi] : tables()) {
      if (*dbi == 0) continue;  // an optional table this store does not have
      MDB_stat st{};
      lmdb::check(mdb_stat(txn.get(), *dbi, &st), "mdb_stat");
      TableStats t;
      t.name = name;
      for (int r = 0; r < kResolutions; ++r)
        if (std::string(name) == kSeriesTable[r]) t.resolution = static_cast<Resolution>(r);
      t.entries = st.ms_entries;
      t.depth = st.ms_depth;
      t.pages = st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
      t.bytes = t.pages * s.page_size;
      s.in_use_bytes += t.bytes;
      s.tables.push_back(t);
    }
    // LMDB's free list: each value is a list of page numbers, its first word the count.
    {
      Cursor c(txn, 0);
      for (bool ok = c.first(); ok; ok = c.next()) {
        if (c.value().size() >= sizeof(size_t)) {
          size_t n = 0;
          std::memcpy(&n, c.value().data(), sizeof n);
          s.free_pages += n;
        }
      }
    }
    {
      Cursor c(txn, series_[0]);
      for (bool ok = c.first(); ok; ok = c.next()) {
        ChunkKey k = parse_chunk_key(c.key());
        s.samples_second += codec::decode_chunk(k.start, c.value()).points.size();
      }
      Cursor o(txn, open_);
      for (bool ok = o.first(); ok; ok = o.next()) {
        OpenRecord r = codec::decode_open(o.value());
        if (r.has_points) s.samples_second += codec::decode_points(r.points, r.origin(), !r.has_base).size();
      }
    }
    struct stat st {};
    if (::stat((path_ + "/data.mdb").c_str(), &st) == 0) s.file_bytes = static_cast<uint64_t>(st.st_blocks) * 512;
    s.retention = retention_;
    s.degraded = degraded_;
    s.dropped_late_samples = dropped_late_;
    s.rejected_samples = rejected_;
    return s;
  }

  CheckReport check() override;

  // Files and connections: decodable, matching their key, under an existing process.
  template <typename Record, typename Decode, typename Hash, typename Problem, typename Guarded, typename Where>
  void check_events(const Txn& txn, MDB_dbi dbi, const char* table, uint64_t& count, Decode decode, Hash hash,
                    Problem& problem, Guarded& guarded, Where& where) {
    Cursor c(txn, dbi);
    for (bool ok = c.first(); ok; ok = c.next()) {
      ++count;
      guarded(std::string(table) + " table", [&] {
        const std::string_view k = c.key();
        if (k.size() != 32) throw StoreError("key size");
        Record r = decode(c.value());
        const uint64_t job = codec::read_be(k, 0, 8);
        const auto node = static_cast<uint32_t>(codec::read_be(k, 8, 4));
        const uint64_t h = codec::read_be(k, 24, 8);
        if (r.job_id != job || r.pid != codec::read_be(k, 12, 4) || r.start_ticks != codec::read_be(k, 16, 8) ||
            h - hash(r) >= kHashProbes)
          problem(where(job, node) + ": " + table + " record does not match its key");
        if (!txn.get(jobs_, job_key(job, node).sv())) problem(where(job, node) + ": " + table + " record without job");
      });
    }
  }

  SweepReport sweep(uint64_t max_work) override {
    auto writing = write_lock();
    // A whole pass from the first job, in transactions of at most 512 units of work.
    SweepReport total;
    bool restart = true;
    while (max_work > 0) {
      const uint64_t step = std::min<uint64_t>(max_work, 512);
      SweepReport r = sweep_step(step, restart);
      restart = false;
      total.jobs_visited += r.jobs_visited;
      total.chunks_sealed += r.chunks_sealed;
      total.chunks_deleted += r.chunks_deleted;
      max_work -= step;
      if (r.complete) {
        total.complete = true;
        break;
      }
    }
    return total;
  }

  UpgradeReport migrate();

  // Shipping (defined at the end of this file).
  uint64_t write_batch_spooled(Batch& batch, uint64_t monitor_id) override;
  std::vector<SpooledBatch> pending_batches(size_t max_batches, size_t max_bytes) override;
  void acknowledge_batches(uint64_t job_id, uint64_t up_to_seq) override;
  std::vector<ShipState> ship_states() override;
  bool write_batch_once(Batch& batch, const BatchId& id) override;
  std::vector<bool> write_batches_once(std::vector<Batch>& batches, const std::vector<BatchId>& ids) override;
  uint64_t applied_batch_count() override;
  DedupStats dedup_stats() override;
  uint64_t expire_dedup(int64_t applied_before_s, uint64_t max_work) override;
  void put_api_key(const ApiKeyRecord& key) override;
  bool delete_api_key(const std::string& hash) override;
  std::optional<ApiKeyRecord> api_key(const std::string& hash) override;
  std::vector<ApiKeyRecord> api_keys() override;
  bool created() const { return created_; }

 private:
  // ---------------------------------------------------------------- environment

  // Every transaction holds the environment's gate (env_gate.hpp) until it ends.
  Txn begin(unsigned flags) {
    for (int attempt = 0;; ++attempt) {
      int rc = MDB_SUCCESS;
      {
        lmdb::EnvGate::Pass pass = gate_.enter();  // before env_ is read: a reopen replaces it
        Txn txn(env_->get(), flags, std::move(pass));
        rc = txn.begin_rc();
        if (rc == MDB_SUCCESS) return txn;
      }
      // Another process grew the map: adopt its size and retry.
      if (rc == MDB_MAP_RESIZED && attempt < 3) {
        adopt_map_size();
        continue;
      }
      lmdb::fail("cannot begin transaction on " + path_, rc);
    }
  }

  void adopt_map_size() {
    gate_.exclusively([&] { lmdb::check(mdb_env_set_mapsize(env_->get(), 0), "mdb_env_set_mapsize"); });
  }

  MDB_envinfo env_info() {
    lmdb::EnvGate::Pass pass = gate_.enter();
    MDB_envinfo info{};
    lmdb::check(mdb_env_info(env_->get(), &info), "mdb_env_info");
    return info;
  }

  // Writes, and reads of the writer's own state, one at a time; reads of the data need only a transaction.
  // Recursive: write_batch_spooled and write_batch_once write through write_batch.
  std::unique_lock<std::recursive_mutex> write_lock() { return std::unique_lock(write_mutex_); }

  // The memory map (found once per map size: a grown map may move).
  MapRange map_range() {
    const MDB_envinfo info = env_info();
    std::lock_guard lock(map_mutex_);
    if (map_size_seen_ != info.me_mapsize) {
      map_size_seen_ = info.me_mapsize;
      map_ = {};
      try {
        Txn txn = begin(MDB_RDONLY);
        if (auto v = txn.get(meta_, kSchemaKey)) map_ = mapping_of(v->data());
      } catch (const StoreError&) {
      }
    }
    return map_;
  }

  int usual_advice() const { return options_.read_only ? MADV_RANDOM : MADV_NORMAL; }
  AccessHint point_lookups() { return AccessHint(map_range(), MADV_RANDOM, usual_advice()); }
  AccessHint scans() { return AccessHint(map_range(), MADV_NORMAL, usual_advice()); }

  static bool retriable(int rc) {
    return rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT || rc == MDB_MAP_RESIZED || rc == MDB_PANIC;
  }

  void open_env() {
    env_ = std::make_unique<lmdb::Env>();
    lmdb::check(mdb_env_set_maxdbs(env_->get(), 32), "mdb_env_set_maxdbs");
    if (!options_.read_only)
      lmdb::check(mdb_env_set_mapsize(env_->get(), options_.initial_map_bytes), "mdb_env_set_mapsize");
    unsigned flags = MDB_NOTLS | (options_.read_only ? MDB_RDONLY | MDB_NORDAHEAD : 0U);
    if (options_.durability == Durability::NoMetaSync) flags |= MDB_NOMETASYNC;
    if (options_.durability == Durability::NoSync) flags |= MDB_NOSYNC;
    int rc = mdb_env_open(env_->get(), path_.c_str(), flags, store_file_mode(group_));
    if (rc != MDB_SUCCESS) lmdb::fail("cannot open store " + path_, rc);
    if (!options_.read_only) {
      int dead = 0;
      mdb_reader_check(env_->get(), &dead);  // slots of killed readers would pin old pages forever
    }
    prealloc_end_ = 0;
  }

  void reopen_env() {
    gate_.exclusively([&] {
      env_.reset();
      open_env();
      open_tables();
    });
  }

  std::vector<std::pair<const char*, MDB_dbi*>> tables() {
    return {{"meta", &meta_},
            {"nodes", &nodes_},
            {"jobs", &jobs_},
            {"processes", &processes_},
            {"process_pack", &process_pack_},
            {"series_alloc", &series_alloc_},
            {"job_state", &job_state_},
            {"open", &open_},
            {kSeriesTable[0], &series_[0]},
            {kSeriesTable[1], &series_[1]},
            {kSeriesTable[2], &series_[2]},
            {kSeriesTable[3], &series_[3]},
            {"files", &files_},
            {"connections", &connections_}};
  }

  void open_tables() {
    if (options_.read_only) {
      Txn txn = begin(MDB_RDONLY);
      MDB_dbi meta = 0;
      int rc = mdb_dbi_open(txn.get(), "meta", 0, &meta);
      if (rc == MDB_NOTFOUND)
        throw StoreError("store " + path_ + " is not initialised (no table meta); run 'bcadm db init'");
      lmdb::check(rc, "mdb_dbi_open");
      meta_ = meta;
      check_schema(stored_version(txn), false);
      for (auto [name, dbi] : tables()) {
        rc = mdb_dbi_open(txn.get(), name, 0, dbi);
        if (rc == MDB_NOTFOUND && dbi == &process_pack_) {  // added after schema 2: absent until a writer opens it
          process_pack_ = 0;
          continue;
        }
        if (rc == MDB_NOTFOUND) throw StoreError("store " + path_ + " is not initialised (no table " + name + ")");
        lmdb::check(rc, "mdb_dbi_open");
      }
      open_shipping_tables(txn);
      lmdb::check(txn.commit(), "mdb_txn_commit");
      return;
    }
    Txn txn = begin(0);
    lmdb::check(mdb_dbi_open(txn.get(), "meta", MDB_CREATE, &meta_), "mdb_dbi_open");
    uint32_t version = stored_version(txn);
    if (version == 0) {
      if (!options_.create) throw StoreError("store " + path_ + " is not initialised; run 'bcadm db init'");
      lmdb::check(txn.put(meta_, kSchemaKey, be32(kSchemaVersion)), "mdb_put schema");
      version = kSchemaVersion;
      created_ = true;
    }
    check_schema(version, mode_ == Mode::Upgrade);
    stored_version_ = version;
    for (auto [name, dbi] : tables()) lmdb::check(mdb_dbi_open(txn.get(), name, MDB_CREATE, dbi), "mdb_dbi_open");
    open_shipping_tables(txn);
    lmdb::check(txn.commit(), "mdb_txn_commit");
  }

  uint32_t stored_version(const Txn& txn) {
    auto v = txn.get(meta_, kSchemaKey);
    return v ? read_u32(*v) : 0;
  }

  void check_schema(uint32_t version, bool allow_older) {
    if (version > kSchemaVersion)
      throw StoreError("store " + path_ + " has schema version " + std::to_string(version) +
                       ", newer than this program's " + std::to_string(kSchemaVersion) + "; upgrade bubble-chamber");
    if (version == 0)
      throw StoreError("store " + path_ + " is not initialised (no schema version); run 'bcadm db init'");
    if (version < kSchemaVersion && !allow_older)
      throw StoreError("store " + path_ + " has schema version " + std::to_string(version) +
                       ", older than this program's " + std::to_string(kSchemaVersion) +
                       "; run 'bcadm db upgrade --store " + path_ + "'");
  }

  MDB_dbi series_dbi(Resolution r) const { return series_[static_cast<int>(r)]; }

  // ---------------------------------------------------------------- reads (helpers)

  std::optional<uint32_t> find_node(const Txn& txn, const std::string& node) {
    auto v = txn.get(nodes_, node);
    if (!v) return std::nullopt;
    return read_u32(*v);
  }

  std::optional<JobState> job_state(const Txn& txn, uint64_t job, uint32_t node) {
    auto v = txn.get(job_state_, job_key(job, node).sv());
    if (!v) return std::nullopt;
    return codec::decode_job_state(*v);
  }

  std::vector<JobRecord> job_nodes_in(const Txn& txn, uint64_t job_id) {
    std::vector<JobRecord> out;
    std::string prefix = Key().u64(job_id).bytes();
    Cursor c(txn, jobs_);
    for (bool ok = c.seek(prefix); ok && c.key().substr(0, 8) == prefix; ok = c.next())
      out.push_back(codec::decode_job(c.value()));
    return out;
  }

  template <typename Record, typename Decode>
  std::vector<Record> event_records_in(const Txn& txn, MDB_dbi dbi, uint64_t job_id, Decode decode) {
    std::vector<Record> out;
    std::string prefix = Key().u64(job_id).bytes();
    Cursor c(txn, dbi);
    for (bool ok = c.seek(prefix); ok && c.key().substr(0, 8) == prefix; ok = c.next())
      out.push_back(decode(c.value()));
    return out;
  }

  std::vector<ProcessRecord> processes_in(const Txn& txn, uint64_t job_id) {
    std::vector<ProcessRecord> out;
    Cursor oc(txn, open_);
    auto add = [&](uint32_t node, std::string_view value) {
      bool in_series = false;
      out.push_back(codec::decode_process(value, &in_series));
      if (!in_series) return;
      // The counters are the series' last point.
      ProcessRecord& p = out.back();
      if (!oc.find(open_key(job_id, node, p.series_id).sv())) return;
      const Point last = codec::decode_open(oc.value()).last();
      p.cpu_ns = last.cpu;
      p.rss = last.rss;
      p.read_bytes = last.rd;
      p.write_bytes = last.wr;
    };
    // By node (the job record and its processes are written together): the node's pack if it is current,
    // else its records one by one.
    const std::string prefix = Key().u64(job_id).bytes();
    Cursor jc(txn, jobs_);
    Cursor pc(txn, processes_);
    for (bool ok = jc.seek(prefix); ok && jc.key().substr(0, 8) == prefix; ok = jc.next()) {
      const auto node = static_cast<uint32_t>(codec::read_be(jc.key(), 8, 4));
      const FixedKey nk = job_key(job_id, node);
      if (auto pack = current_pack(txn, nk)) {
        for (std::string_view record : pack->records) add(node, record);
        continue;
      }
      for (bool more = pc.seek(nk.sv()); more && pc.key().substr(0, 12) == nk.sv(); more = pc.next())
        add(node, pc.value());
    }
    return out;
  }

  // The pack of (job, node) if it exists and is current, its pages asked for in one read.
  std::optional<codec::ProcessPack> current_pack(const Txn& txn, const FixedKey& job_node) {
    if (!process_pack_) return std::nullopt;
    auto v = txn.get(process_pack_, job_node.sv());
    if (!v) return std::nullopt;
    static const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const auto at = reinterpret_cast<uintptr_t>(v->data());
    madvise(reinterpret_cast<void*>(at & ~(page - 1)), v->size() + (at & (page - 1)), MADV_WILLNEED);
    auto js =
        job_state(txn, codec::read_be(job_node.sv(), 0, 8), static_cast<uint32_t>(codec::read_be(job_node.sv(), 8, 4)));
    codec::ProcessPack pack = codec::decode_process_pack(*v);
    if (!js || js->process_generation != pack.generation) return std::nullopt;
    return pack;
  }

  Resolution choose_resolution(const JobState& js, int64_t from_s) const {
    if (js.first_s > js.latest_s) return Resolution::Second;  // no samples yet
    const int64_t from = std::min(std::max(from_s, js.first_s), js.latest_s);
    for (int i = 0; i < kResolutions; ++i) {
      auto r = static_cast<Resolution>(i);
      const int64_t w = bucket_seconds(r);
      if (!kept(floor_to(std::max<int64_t>(from, 0), w), w, js.latest_s, retention_.of(r))) continue;
      if (from < js.floor[i]) continue;
      return r;
    }
    return Resolution::Day;
  }

  // Calls fn(point, previous point or null) for each retained second-resolution point in [from, to].
  template <typename Fn>
  void for_each_point(const Txn& txn, uint64_t job, uint32_t node, uint32_t series, const JobState& js, int64_t from,
                      int64_t to, Fn&& fn) {
    const int64_t ret = retention_.seconds;
    int64_t lo = std::max({from, js.first_s, int64_t{0}});
    if (ret) lo = std::max(lo, js.latest_s - ret);
    const int64_t hi = std::min(to, js.latest_s);
    if (lo > hi) return;
    auto emit = [&](const std::vector<Point>& points, const Point* base) {
      const Point* prev = base;
      for (const auto& p : points) {
        if (p.t >= lo && p.t <= hi) fn(p, prev);
        prev = &p;
      }
    };
    std::optional<OpenRecord> open;
    if (auto v = txn.get(open_, open_key(job, node, series).sv())) open = codec::decode_open(*v);
    // Sealed minutes are never at or after the open minute.
    const int64_t sealed_hi = open && open->has_points ? std::min(hi, open->chunk_start - 1) : hi;
    Cursor c(txn, series_[0]);
    for (int64_t m = minute_of(lo); m <= sealed_hi; m += 60) {
      if (!c.find(chunk_key(job, node, m, series).sv())) continue;
      Chunk chunk = codec::decode_chunk(m, c.value());
      emit(chunk.points, chunk.has_base ? &chunk.base : nullptr);
    }
    if (open && open->has_points && open->tail.t >= lo && open->chunk_start <= hi) {
      auto points = codec::decode_points(open->points, open->origin(), !open->has_base);
      emit(points, open->has_base ? &open->base : nullptr);
    }
  }

  // ---------------------------------------------------------------- the write path

  void write_in(WriteCtx& ctx, Batch& batch) {
    Batch* one[] = {&batch};
    write_run(ctx, one);
  }

  // A job's owner is the user of its first record, on any node: a later batch never changes it (a pusher
  // naming another user's job cannot take it over; bcd refuses such pushes before they get here).
  void keep_owner(const Txn& txn, const FixedKey& jk, JobRecord& job) {
    std::string owner;
    if (auto same_node = txn.get(jobs_, jk.sv())) {
      owner = codec::decode_job(*same_node).user;
    } else {
      const std::string prefix = Key().u64(job.job_id).bytes();
      Cursor c(txn, jobs_);
      if (c.seek(prefix) && c.key().substr(0, 8) == prefix) owner = codec::decode_job(c.value()).user;
    }
    if (!owner.empty()) job.user = std::move(owner);
  }

  // Consecutive ticks of one job on one node, in order (bcd applies a node's bundle so): each tick's
  // records as write_in would, then all their samples together, so that a series' points go into its open
  // minute with one read and one write of that record, and the job's upkeep runs once.
  void write_run(WriteCtx& ctx, std::span<Batch* const> run) {
    Txn& txn = ctx.txn;
    Batch& last = *run.back();
    const std::string& node = last.job.node;
    uint32_t node_id = 0;
    if (auto id = find_node(txn, node)) {
      node_id = *id;
    } else {
      auto next = txn.get(meta_, "next_node_id");
      node_id = next ? read_u32(*next) : 1;
      txn.must_put(meta_, "next_node_id", be32(node_id + 1));
      txn.must_put(nodes_, node, be32(node_id));
    }
    const uint64_t job = last.job.job_id;
    ctx.job = job;
    ctx.node = node_id;
    const FixedKey jk = job_key(job, node_id);
    keep_owner(txn, jk, last.job);
    txn.must_put(jobs_, jk.sv(), codec::encode_job(last.job));  // each tick's job record replaces the one before

    bool fresh = true;
    if (auto v = txn.get(job_state_, jk.sv())) {
      ctx.js = codec::decode_job_state(*v);
      fresh = false;
    }

    auto counter = txn.get(series_alloc_, jk.sv());
    uint32_t next_series = counter ? read_u32(*counter) : 1;
    const uint32_t first_series = next_series;
    for (Batch* tick : run) {
      Batch& batch = *tick;
      if (batch.processes.empty()) {
        write_events(ctx, batch);
        continue;
      }
      const ProcessCache& cache = caches_[{job, node_id}];
      auto [pending_it, first_look] = pending_caches_.try_emplace({job, node_id});
      PendingCache& pending = pending_it->second;
      if (first_look || pending.generation != ctx.js.process_generation) {
        pending.reset = cache.generation != ctx.js.process_generation;
        pending.set.clear();
      }
      bool wrote = false;
      Cursor pc(txn, processes_);
      for (auto& update : batch.processes) {
        ProcessRecord& p = update.record;
        p.job_id = job;
        if (p.node != node) p.node = node;
        const FixedKey key = process_key(job, node_id, p.pid, p.start_ticks);
        if (p.series_id == 0) {
          if (pc.find(key.sv())) p.series_id = codec::decode_process(pc.value()).series_id;
          if (p.series_id == 0 && next_series <= kLastSeriesId) p.series_id = next_series++;
        } else if (has_series_id(p) && p.series_id >= next_series) {
          next_series = p.series_id + 1;
        }
        if (!has_series_id(p)) {
          // No id left (a node named the last one), or one past it: the process is left out, counted and
          // logged. A throw would fail every request sharing bcd's commit; wrapping would write into series 0.
          ++ctx.unstored_processes;
          if (update.sample) ++ctx.rejected;
          continue;
        }
        // A running process's counters are its sample's: readers take them from the series, so an
        // unchanged identity needs no rewrite. An ended process's record keeps its final counters, so
        // listing a finished job reads no series.
        const bool in_series = p.end_ms == 0 && update.sample && update.sample->cpu_ns == p.cpu_ns &&
                               update.sample->rss == p.rss && update.sample->read_bytes == p.read_bytes &&
                               update.sample->write_bytes == p.write_bytes;
        const PidKey pk{p.pid, p.start_ticks};
        std::string_view identity = update.encoded_identity;
        if (in_series) {
          if (identity.empty()) {
            ctx.identity.clear();
            codec::append_process_identity(ctx.identity, p);
            identity = ctx.identity;
          }
          const ProcessIdentity* known = nullptr;
          if (auto written = pending.set.find(pk); written != pending.set.end()) {
            if (written->second) known = &*written->second;
          } else if (!pending.reset) {
            if (auto cached = cache.identity.find(pk); cached != cache.identity.end()) known = &cached->second;
          }
          if (known && known->same_as(p, identity)) continue;
        }
        if (!update.encoded_identity.empty()) {
          // Checked when the wire was decoded; `identity` still points at the same bytes.
          codec::decode_process_identity(update.encoded_identity, p);
          update.encoded_identity = {};
        }
        pc.put(key.sv(), codec::encode_process(p, in_series));
        wrote = true;
        if (in_series) {
          pending.set.insert_or_assign(pk, ProcessIdentity(p, identity));
        } else {
          pending.set.insert_or_assign(pk, std::nullopt);
        }
      }
      if (wrote) ++ctx.js.process_generation;
      pending.generation = ctx.js.process_generation;
      write_events(ctx, batch);
    }
    if (next_series != first_series) txn.must_put(series_alloc_, jk.sv(), be32(next_series));

    // The samples, by series then time.
    struct Item {
      uint32_t series;
      Point p;
    };
    std::vector<Item> items;
    size_t expected = 0;
    for (const Batch* b : run) expected += b->processes.size() + 1;
    items.reserve(expected);
    auto add = [&](uint32_t series, const Sample& s) {
      if (s.time_s < 0 || s.time_s > kMaxTime) {
        ++ctx.rejected;
        return;
      }
      items.push_back({series, Point{s.time_s, s.cpu_ns, s.rss, s.read_bytes, s.write_bytes}});
    };
    int64_t latest = 0;
    for (const Batch* b : run) {
      if (b->job_sample) add(0, *b->job_sample);
      for (const auto& u : b->processes)
        if (u.sample && has_series_id(u.record)) add(u.record.series_id, *u.sample);
      if (b->job.last_sample_ms > 0) latest = std::max(latest, b->job.last_sample_ms / 1000);
    }
    auto by_series_time = [](const Item& a, const Item& b) {
      return a.series != b.series ? a.series < b.series : a.p.t < b.p.t;
    };
    // A monitor's processes keep their order from tick to tick, so one tick is usually sorted already; a run
    // of ticks is sorted into each series' points in time order.
    if (!std::is_sorted(items.begin(), items.end(), by_series_time))
      std::stable_sort(items.begin(), items.end(), by_series_time);

    int64_t first = INT64_MAX;
    for (const auto& it : items) {
      latest = std::max(latest, it.p.t);
      first = std::min(first, it.p.t);
    }
    if (fresh) {
      ctx.js.first_s = kNoSamples;  // until the job's first sample
      ctx.js.latest_s = 0;
    }
    ctx.js.latest_s = std::max(ctx.js.latest_s, std::min(latest, kMaxTime));
    if (first != INT64_MAX) ctx.js.first_s = std::min(ctx.js.first_s, first);

    for (size_t i = 0; i < items.size();) i = apply_run(ctx, items, i);

    if (last.job.end_ms != 0) pack_processes(ctx, jk);

    // Bounded upkeep of this job: seal idle minutes, expire old chunks.
    const uint64_t n = items.size();
    seal_idle(ctx, 16 + n / 16);
    expire(ctx, 64 + n / 8);
    txn.must_put(job_state_, jk.sv(), codec::encode_job_state(ctx.js));
  }

  // Adds this tick's file and connection increments to their totals.
  void write_events(WriteCtx& ctx, Batch& batch) {
    if (!batch.files.empty()) {
      Cursor c(ctx.txn, files_);
      for (auto& f : batch.files)
        add_event(ctx, c, f, batch.job, file_hash(f), codec::encode_file, codec::decode_file, same_file);
    }
    if (!batch.connections.empty()) {
      Cursor c(ctx.txn, connections_);
      for (auto& conn : batch.connections)
        add_event(ctx, c, conn, batch.job, connection_hash(conn), codec::encode_connection, codec::decode_connection,
                  same_connection);
    }
  }

  template <typename Record, typename Encode, typename Decode, typename Same>
  void add_event(WriteCtx& ctx, Cursor& c, Record& inc, const JobRecord& job, uint64_t hash, Encode encode,
                 Decode decode, Same same) {
    inc.job_id = job.job_id;
    if (inc.node != job.node) inc.node = job.node;
    for (uint64_t probe = 0; probe < kHashProbes; ++probe) {
      const std::string key = event_key(ctx.job, ctx.node, inc.pid, inc.start_ticks, hash + probe);
      if (!c.find(key)) {
        c.put(key, encode(inc));
        return;
      }
      Record total = decode(c.value());
      if (!same(total, inc)) continue;
      add_to(total, inc);
      c.put(key, encode(total));
      return;
    }
    throw StoreError("store " + path_ + ": more than " + std::to_string(kHashProbes) +
                     " event keys of one process collide");
  }

  // A finished job's process records, copied into one value for cold readers (rebuilt when they change).
  void pack_processes(WriteCtx& ctx, const FixedKey& jk) {
    Txn& txn = ctx.txn;
    if (auto v = txn.get(process_pack_, jk.sv());
        v && codec::decode_process_pack(*v).generation == ctx.js.process_generation)
      return;
    ctx.buf2.clear();
    uint64_t count = 0;
    Cursor pc(txn, processes_);
    for (bool ok = pc.seek(jk.sv()); ok && pc.key().substr(0, 12) == jk.sv(); ok = pc.next(), ++count)
      codec::append_packed_record(ctx.buf2, pc.value());
    if (count == 0) return;
    ctx.buf.clear();
    codec::encode_process_pack_header(ctx.buf, ctx.js.process_generation, count);
    ctx.buf += ctx.buf2;
    txn.must_put(process_pack_, jk.sv(), ctx.buf);
  }

  Cursor& open_cursor(WriteCtx& ctx) {
    if (!ctx.open) ctx.open.emplace(ctx.txn, open_);
    return *ctx.open;
  }
  Cursor& table(WriteCtx& ctx, int r) {
    if (!ctx.tables[r]) ctx.tables[r].emplace(ctx.txn, series_[r]);
    return *ctx.tables[r];
  }

  void put_open(WriteCtx& ctx, const FixedKey& key, const OpenRecord& o) {
    ctx.buf.clear();
    codec::encode_open(ctx.buf, o);
    open_cursor(ctx).put(key.sv(), ctx.buf);
  }

  // Applies items[from] and the points after it of the same series that follow its open minute's tail in
  // that minute: those are appended to the record in memory and written once. Returns the next item's index.
  template <typename Item>
  size_t apply_run(WriteCtx& ctx, const std::vector<Item>& items, size_t from) {
    const uint32_t series = items[from].series;
    const Point& first = items[from].p;
    if (first.t >= ctx.js.floor[0] && from + 1 < items.size() && items[from + 1].series == series) {
      const FixedKey key = open_key(ctx.job, ctx.node, series);
      Cursor& oc = open_cursor(ctx);
      const bool found = (oc.next() && oc.key() == key.sv()) || oc.find(key.sv());
      if (found && codec::append_open(ctx.buf, oc.value(), first)) {
        size_t next = from + 1;
        while (next < items.size() && items[next].series == series &&
               codec::append_open_in_place(ctx.buf, items[next].p))
          ++next;
        oc.put(key.sv(), ctx.buf, MDB_CURRENT);  // the same size: LMDB overwrites it in place
        return next;
      }
    }
    apply(ctx, series, first);
    return from + 1;
  }

  // One sample of one series.
  void apply(WriteCtx& ctx, uint32_t series, const Point& p) {
    if (p.t < ctx.js.floor[0]) {
      ++ctx.dropped;  // that minute's seconds are gone: the sample could not be rolled up correctly
      return;
    }
    const FixedKey key = open_key(ctx.job, ctx.node, series);
    Cursor& oc = open_cursor(ctx);
    // A tick's samples come by series: the record wanted is usually the one after the cursor's.
    const bool found = (oc.next() && oc.key() == key.sv()) || oc.find(key.sv());
    if (found && codec::append_open(ctx.buf, oc.value(), p)) {
      oc.put(key.sv(), ctx.buf, MDB_CURRENT);  // the same size: LMDB overwrites it in place
      return;
    }
    if (!found) {
      OpenRecord o;
      o.has_points = true;
      o.chunk_start = minute_of(p.t);
      o.tail = p;
      ctx.points.clear();
      codec::put_point(ctx.points, o.origin(), p);
      o.points = ctx.points;
      put_open(ctx, key, o);
      return;
    }
    OpenRecord o = codec::decode_open(oc.value());
    if (p.t > o.last().t && o.has_points && minute_of(p.t) == o.chunk_start) {
      // Appending to the open minute, whose free room is used up (or an old format): rewrite it larger.
      // o.points is copied out before the put.
      ctx.points.assign(o.points);
      codec::put_point(ctx.points, o.tail, p);
      o.tail = p;
      o.points = ctx.points;
      put_open(ctx, key, o);
      return;
    }
    // The other paths write elsewhere before rewriting this record: work on a copy of its value.
    std::string record(oc.value());
    o = codec::decode_open(record);
    const Point last = o.last();
    if (p.t > last.t) {
      if (o.has_points) {
        seal(ctx, series, o);
        o.has_base = true;
        o.base = o.tail;
      } else if (minute_of(p.t) == minute_of(o.base.t)) {
        // The series' last minute is sealed already (idle seal): the point belongs in it.
        upsert_sealed(ctx, series, p);
        return;
      }
      o.has_points = true;
      o.chunk_start = minute_of(p.t);
      o.tail = p;
      ctx.points.clear();
      codec::put_point(ctx.points, o.base, p);
      o.points = ctx.points;
      put_open(ctx, key, o);
      return;
    }
    if (o.has_points && p.t >= o.chunk_start) {
      // A late or duplicate point inside the open minute.
      auto points = codec::decode_points(o.points, o.origin(), !o.has_base);
      if (!upsert_point(points, p)) return;
      ctx.points.clear();
      codec::encode_points(ctx.points, o.origin(), points);
      o.points = ctx.points;
      o.tail = points.back();
      put_open(ctx, key, o);
      return;
    }
    // Older than the open minute: a sealed minute changes, and the rollups above it.
    if (retention_.seconds && p.t < ctx.js.latest_s - retention_.seconds) {
      ++ctx.dropped;
      return;
    }
    upsert_sealed(ctx, series, p);
  }

  // Moves the open minute of `series` into the sealed table and rolls it up. The caller rewrites the
  // open record.
  void seal(WriteCtx& ctx, uint32_t series, const OpenRecord& o) {
    const int64_t m = o.chunk_start;
    auto points = codec::decode_points(o.points, o.origin(), !o.has_base);
    if (ctx.drop_seconds) {
      ctx.js.floor[0] = std::max(ctx.js.floor[0], m + 60);
    } else {
      ctx.buf2.clear();
      codec::encode_chunk_raw(ctx.buf2, m, o.has_base, o.base, o.points);
      const FixedKey key = chunk_key(ctx.job, ctx.node, m, series);
      Cursor& sc = table(ctx, 0);
      if (!(ctx.try_append && sc.try_append(key.sv(), ctx.buf2))) {
        ctx.try_append = false;  // not the newest data in the store; stop trying this transaction
        sc.put(key.sv(), ctx.buf2);
      }
    }
    Chunk c{o.has_base, o.base, std::move(points)};
    materialize(ctx, series, m, c);
    ++ctx.sealed;
  }

  // Stores the minute rollup of chunk `m`, then recomputes its hour from the stored minutes of that hour and
  // its day from the stored hours of that day. Recomputing from stored buckets keeps this idempotent.
  void materialize(WriteCtx& ctx, uint32_t series, int64_t m, const Chunk& c) {
    Rollup value = rollup::of_points(c.points, c.has_base ? &c.base : nullptr);
    int64_t start = m;  // start of the bucket `value` describes, at resolution r
    for (int r = 1; r < kResolutions; ++r) {
      const int64_t chunk = floor_to(start, kChunkSpan[r]);
      const auto index = static_cast<uint32_t>((start - chunk) / bucket_seconds(static_cast<Resolution>(r)));
      const FixedKey key = chunk_key(ctx.job, ctx.node, chunk, series);
      Cursor& tc = table(ctx, r);
      Buckets buckets;
      if (tc.find(key.sv())) buckets = codec::decode_buckets(tc.value());
      rollup::set_bucket(buckets, index, value);
      tc.put(key.sv(), codec::encode_buckets(buckets));
      // A chunk of resolution r spans exactly one bucket of resolution r + 1.
      value = rollup::merge_all(buckets);
      start = chunk;
    }
  }

  struct Successor {
    enum Kind { None, Sealed, Open } kind = None;
    int64_t start = 0;  // sealed chunk start
    bool has_base = false;
    Point base;
  };

  // The chunk that holds the first point after minute m of the series: a later sealed minute, or the open
  // record (which, without points, holds the series' last point as its base).
  Successor find_successor(WriteCtx& ctx, uint32_t series, int64_t m) {
    Successor s;
    const FixedKey okey = open_key(ctx.job, ctx.node, series);
    Cursor& oc = open_cursor(ctx);
    if (!oc.find(okey.sv())) return s;
    std::string record(oc.value());
    OpenRecord o = codec::decode_open(record);
    const int64_t limit = o.has_points ? o.chunk_start : minute_of(o.base.t) + 60;
    Cursor& sc = table(ctx, 0);
    for (int64_t next = m + 60; next < limit; next += 60) {
      if (!sc.find(chunk_key(ctx.job, ctx.node, next, series).sv())) continue;
      Chunk c = codec::decode_chunk(next, sc.value());
      s.kind = Successor::Sealed;
      s.start = next;
      s.has_base = c.has_base;
      s.base = c.base;
      return s;
    }
    s.kind = Successor::Open;
    s.has_base = o.has_base;
    s.base = o.base;
    return s;
  }

  // A point into a sealed minute (late, duplicate, or after an idle seal).
  void upsert_sealed(WriteCtx& ctx, uint32_t series, const Point& p) {
    const int64_t m = minute_of(p.t);
    const FixedKey key = chunk_key(ctx.job, ctx.node, m, series);
    Cursor& sc = table(ctx, 0);
    Chunk c;
    std::optional<Point> old_last;
    if (sc.find(key.sv())) {
      c = codec::decode_chunk(m, sc.value());
      old_last = c.points.back();
    } else {
      Successor s = find_successor(ctx, series, m);
      if (s.kind == Successor::None || (s.has_base && s.base.t >= p.t && s.kind == Successor::Sealed)) {
        ++ctx.dropped;  // cannot place it consistently
        return;
      }
      if (s.kind == Successor::Open && s.has_base && s.base.t >= p.t) {
        ++ctx.dropped;
        return;
      }
      c.has_base = s.has_base;
      c.base = s.base;
    }
    if (!upsert_point(c.points, p)) return;
    if (c.has_base && c.points.front().t <= c.base.t) {
      ++ctx.dropped;
      return;
    }
    sc.put(key.sv(), codec::encode_chunk(m, c));
    materialize(ctx, series, m, c);
    if (!old_last || c.points.back() != *old_last) set_successor_base(ctx, series, m, c.points.back());
  }

  // The last point of minute m changed: the next chunk's base follows.
  void set_successor_base(WriteCtx& ctx, uint32_t series, int64_t m, const Point& base) {
    Successor s = find_successor(ctx, series, m);
    if (s.kind == Successor::Sealed) {
      const FixedKey key = chunk_key(ctx.job, ctx.node, s.start, series);
      Cursor& sc = table(ctx, 0);
      if (!sc.find(key.sv())) return;
      Chunk c = codec::decode_chunk(s.start, sc.value());
      c.has_base = true;
      c.base = base;
      sc.put(key.sv(), codec::encode_chunk(s.start, c));
      materialize(ctx, series, s.start, c);
    } else if (s.kind == Successor::Open) {
      const FixedKey key = open_key(ctx.job, ctx.node, series);
      Cursor& oc = open_cursor(ctx);
      if (!oc.find(key.sv())) return;
      std::string record(oc.value());
      OpenRecord o = codec::decode_open(record);
      std::vector<Point> points;
      if (o.has_points) points = codec::decode_points(o.points, o.origin(), !o.has_base);
      o.has_base = true;
      o.base = base;
      ctx.points.clear();
      if (o.has_points) codec::encode_points(ctx.points, o.origin(), points);
      o.points = ctx.points;
      put_open(ctx, key, o);
    }
  }

  // Seals open minutes of this job that are older than its latest data (idle series), looking at `budget`
  // records per call and resuming where the last call stopped. Returns the records looked at; the job's
  // seal cursor is 0 again after the last one.
  uint64_t seal_idle(WriteCtx& ctx, uint64_t budget) {
    Cursor& oc = open_cursor(ctx);
    const FixedKey prefix = job_key(ctx.job, ctx.node);
    bool ok = oc.seek(open_key(ctx.job, ctx.node, ctx.js.seal_cursor).sv());
    uint64_t visited = 0;
    for (; visited < budget; ++visited) {
      if (!ok || oc.key().substr(0, 12) != prefix.sv()) {
        ctx.js.seal_cursor = 0;
        return visited;
      }
      const uint32_t series = static_cast<uint32_t>(codec::read_be(oc.key(), 12, 4));
      std::string record(oc.value());
      OpenRecord o = codec::decode_open(record);
      if (o.has_points && o.chunk_start + 60 + kSealGrace <= ctx.js.latest_s) {
        seal(ctx, series, o);
        OpenRecord after;
        after.has_base = true;
        after.base = o.tail;
        ctx.buf.clear();
        codec::encode_open(ctx.buf, after);
        oc.put(open_key(ctx.job, ctx.node, series).sv(), ctx.buf, MDB_CURRENT);
      }
      if (series == UINT32_MAX) {
        ctx.js.seal_cursor = 0;
        return visited + 1;
      }
      ctx.js.seal_cursor = series + 1;
      ok = oc.next();
    }
    return visited;
  }

  // Deletes this job's chunks that fell out of retention, oldest first, at most `budget`.
  void expire(WriteCtx& ctx, uint64_t budget) {
    const FixedKey prefix = job_key(ctx.job, ctx.node);
    for (int r = 0; r < kResolutions && budget > 0; ++r) {
      const int64_t ret = retention_.of(static_cast<Resolution>(r));
      if (ret == 0) continue;
      const int64_t cut = ctx.js.latest_s - ret;
      Cursor& tc = table(ctx, r);
      for (bool ok = tc.seek(chunk_key(ctx.job, ctx.node, 0, 0).sv()); ok && budget > 0; ok = tc.next()) {
        if (tc.key().substr(0, 12) != prefix.sv()) break;
        const int64_t start = static_cast<int64_t>(codec::read_be(tc.key(), 12, 4));
        if (start + kChunkSpan[r] > cut) break;
        tc.del();
        ctx.js.floor[r] = std::max(ctx.js.floor[r], start + kChunkSpan[r]);
        ++ctx.deleted;
        --budget;
      }
    }
  }

  // ---------------------------------------------------------------- sweep

  // One transaction of sweeping: visits jobs from the saved cursor, sealing idle minutes and expiring old
  // chunks, until `budget` units of work are spent (a record looked at, a chunk deleted, a job visited).
  SweepReport sweep_step(uint64_t budget, bool restart = false) {
    SweepReport report;
    Txn txn = begin(0);
    std::string cursor_key;
    if (auto v = txn.get(meta_, kSweepCursorKey); v && !restart) cursor_key = std::string(*v);
    std::vector<std::pair<std::string, JobState>> updates;
    {
      Cursor jc(txn, job_state_);
      bool ok = cursor_key.empty() ? jc.first() : jc.seek(cursor_key);
      while (budget > 0) {
        if (!ok) {
          report.complete = true;
          cursor_key.clear();
          break;
        }
        const std::string key(jc.key());
        WriteCtx ctx(txn);
        ctx.job = codec::read_be(key, 0, 8);
        ctx.node = static_cast<uint32_t>(codec::read_be(key, 8, 4));
        ctx.js = codec::decode_job_state(jc.value());
        ctx.drop_seconds = degraded_;
        budget -= 1;
        const uint64_t looked = seal_idle(ctx, budget);
        budget -= std::min(budget, looked);
        const bool sealed_all = ctx.js.seal_cursor == 0;
        const uint64_t expire_budget = budget;
        expire(ctx, expire_budget);
        budget -= std::min(budget, ctx.deleted);
        report.chunks_sealed += ctx.sealed;
        report.chunks_deleted += ctx.deleted;
        updates.emplace_back(key, ctx.js);
        if (!sealed_all || ctx.deleted >= expire_budget) {
          cursor_key = key;  // not finished with this job: come back to it
          break;
        }
        ++report.jobs_visited;
        ok = jc.next();
        cursor_key = ok ? std::string(jc.key()) : std::string();
        if (!ok) {
          report.complete = true;
          break;
        }
      }
    }
    for (auto& [key, js] : updates) txn.must_put(job_state_, key, codec::encode_job_state(js));
    txn.must_put(meta_, kSweepCursorKey, cursor_key);
    int rc = txn.commit();
    if (rc != MDB_SUCCESS) lmdb::fail("sweep commit", rc);
    return report;
  }

  void periodic_sweep() {
    try {
      sweep_step(256);
    } catch (const std::exception& e) {
      log_line("%s: periodic sweep failed: %s", path_.c_str(), e.what());
    }
  }

  // ---------------------------------------------------------------- growth and full disk

  // Called with no transaction open in this process, as mdb_env_set_mapsize requires. False when the
  // disk has no room for a larger map.
  bool grow_map() {
    bool grown = false;
    gate_.exclusively([&] {
      lmdb::check(mdb_env_set_mapsize(env_->get(), 0), "mdb_env_set_mapsize");  // adopt another process's growth
      MDB_envinfo info{};
      lmdb::check(mdb_env_info(env_->get(), &info), "mdb_env_info");
      struct statvfs fs {};
      if (statvfs(path_.c_str(), &fs) == 0) {
        uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
        // The map file is sparse; ask for room for a quarter of the step, which is what the next
        // batches can realistically fill before the next check.
        if (free_bytes < options_.map_growth_step_bytes / 4) return;
      }
      lmdb::check(mdb_env_set_mapsize(env_->get(), info.me_mapsize + options_.map_growth_step_bytes), "grow map");
      grown = true;
    });
    return grown;
  }

  // Before a batch: grow a map that is getting full, keep disk blocks reserved ahead of the data, and
  // check whether a degraded store may recover.
  void prepare_batch() {
    MDB_envinfo info{};
    MDB_stat st{};
    {
      lmdb::EnvGate::Pass pass = gate_.enter();
      if (mdb_env_info(env_->get(), &info) != 0 || mdb_env_stat(env_->get(), &st) != 0) return;
    }
    const uint64_t used = (info.me_last_pgno + 1) * st.ms_psize;
    if (static_cast<double>(used) > options_.grow_at_fill * static_cast<double>(info.me_mapsize)) {
      if (!grow_map()) enter_degraded("the map is nearly full and the disk has no room to grow it");
    }
    const uint64_t reserve = options_.disk_reserve_bytes;
    if (reserve && reserve_supported_ && used + reserve / 2 > prealloc_end_) {
      int fd = -1;
      if (mdb_env_get_fd(env_->get(), &fd) == 0) {
        int rc = ::fallocate(fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(used), static_cast<off_t>(reserve));
        if (rc == 0) {
          prealloc_end_ = used + reserve;
        } else if (errno == EOPNOTSUPP || errno == ENOSYS) {
          reserve_supported_ = false;
        } else if (errno == ENOSPC || errno == EDQUOT) {
          enter_degraded("cannot reserve disk blocks ahead of the data");
          // The file cannot grow: make room inside it before its reserve runs out.
          if (used + reserve / 4 > prealloc_end_) drop_pending_ = true;
        }
      }
    }
    if (degraded_ && drop_pending_) {
      drop_pending_ = false;
      free_space_round();
    }
    if (degraded_ && monotonic_s() - last_recovery_check_ >= 10) {
      last_recovery_check_ = monotonic_s();
      struct statvfs fs {};
      if (statvfs(path_.c_str(), &fs) == 0) {
        const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
        if (free_bytes >= 2 * reserve + options_.map_growth_step_bytes / 4) {
          degraded_ = false;
          log_line("%s: disk space is back (%llu bytes free); keeping second-resolution data again", path_.c_str(),
                   static_cast<unsigned long long>(free_bytes));
        }
      }
    }
  }

  void enter_degraded(const char* why) {
    const int64_t now = monotonic_s();
    if (!degraded_ || now - last_degraded_log_ >= 60) {
      struct statvfs fs {};
      unsigned long long free_bytes = 0;
      if (statvfs(path_.c_str(), &fs) == 0) free_bytes = static_cast<unsigned long long>(fs.f_bavail) * fs.f_frsize;
      log_line(
          "DISK FULL: %s: %s (%llu bytes free); dropping second-resolution data, oldest first, and keeping "
          "minute, hour and day rollups",
          path_.c_str(), why, free_bytes);
      last_degraded_log_ = now;
    }
    if (!degraded_) drop_pending_ = true;  // free pages inside the file for the rollups to come
    degraded_ = true;
    last_recovery_check_ = now;
  }

  // Deletes the oldest sealed seconds (then, once none are left, the oldest minute rollups) in one small
  // transaction, so the pages are free for the next batch. False when nothing could be dropped.
  bool free_space_round() {
    for (int r = 0; r < 2; ++r) {
      Txn txn = begin(0);
      MDB_stat st{};
      lmdb::check(mdb_stat(txn.get(), series_[r], &st), "mdb_stat");
      if (st.ms_entries == 0) continue;
      const uint64_t quota = std::max<uint64_t>(256, st.ms_entries / 8);
      std::map<std::string, int64_t> floors;  // (job, node) -> new floor
      uint64_t deleted = 0;
      {
        Cursor c(txn, series_[r]);
        for (bool ok = c.first(); ok && deleted < quota; ok = c.next()) {
          ChunkKey k = parse_chunk_key(c.key());
          auto& f = floors[std::string(job_key(k.job, k.node).sv())];
          f = std::max(f, k.start + kChunkSpan[r]);
          c.del();
          ++deleted;
        }
      }
      for (const auto& [key, floor] : floors) {
        auto v = txn.get(job_state_, key);
        if (!v) continue;
        JobState js = codec::decode_job_state(*v);
        for (int i = 0; i <= r; ++i) js.floor[i] = std::max(js.floor[i], floor);
        txn.must_put(job_state_, key, codec::encode_job_state(js));
      }
      int rc = txn.commit();
      if (rc != MDB_SUCCESS) {
        log_line("%s: DISK FULL: could not commit the deletion of %llu %s chunks: %s", path_.c_str(),
                 static_cast<unsigned long long>(deleted), resolution_name(static_cast<Resolution>(r)),
                 mdb_strerror(rc));
        return false;
      }
      log_line("%s: DISK FULL: dropped the %llu oldest %s-resolution chunks of %zu job(s) to make room", path_.c_str(),
               static_cast<unsigned long long>(deleted), resolution_name(static_cast<Resolution>(r)), floors.size());
      return true;
    }
    return false;
  }

  std::string path_;
  OpenOptions options_;
  Retention retention_;
  std::string group_;  // BC_STORE_GROUP: may read the store; empty: its owner only
  Mode mode_;
  std::unique_ptr<lmdb::Env> env_;
  MDB_dbi meta_ = 0, nodes_ = 0, jobs_ = 0, processes_ = 0, series_alloc_ = 0, job_state_ = 0, open_ = 0;
  MDB_dbi process_pack_ = 0;  // 0 in a read-only store that has none yet
  MDB_dbi series_[kResolutions] = {0, 0, 0, 0};
  MDB_dbi files_ = 0, connections_ = 0;
  uint32_t stored_version_ = 0;
  bool created_ = false;
  // Growth and the full-disk state, per process.
  uint64_t prealloc_end_ = 0;
  bool reserve_supported_ = true;
  bool degraded_ = false;
  bool drop_pending_ = false;
  int64_t last_degraded_log_ = 0, last_recovery_check_ = 0;
  uint64_t batches_ = 0;
  uint64_t dropped_late_ = 0, rejected_ = 0, unstored_processes_ = 0;

  // A count's first step, then every 10 000th: a steady stream of drops logs now and then, not per write.
  static bool worth_logging(uint64_t before, uint64_t after) { return before == 0 || before / 10000 != after / 10000; }

  void count_rejected(const WriteCounts& counts) {
    if (counts.rejected == 0 && counts.unstored_processes == 0) return;
    const uint64_t before = rejected_ + unstored_processes_;
    rejected_ += counts.rejected;
    unstored_processes_ += counts.unstored_processes;
    if (worth_logging(before, rejected_ + unstored_processes_))
      log_line(
          "%s: %llu sample(s) rejected (a time out of range, or their process left out) and %llu process(es) "
          "left out for want of a series id (%llu and %llu so far)",
          path_.c_str(), static_cast<unsigned long long>(counts.rejected),
          static_cast<unsigned long long>(counts.unstored_processes), static_cast<unsigned long long>(rejected_),
          static_cast<unsigned long long>(unstored_processes_));
  }

  void count_late(uint64_t dropped) {
    if (dropped == 0) return;
    const uint64_t before = dropped_late_;
    dropped_late_ += dropped;
    if (worth_logging(before, dropped_late_))
      log_line("%s: %llu sample(s) came too late to place and were dropped (%llu so far)", path_.c_str(),
               static_cast<unsigned long long>(dropped), static_cast<unsigned long long>(dropped_late_));
  }
  lmdb::EnvGate gate_;
  std::recursive_mutex write_mutex_;
  std::mutex map_mutex_;  // map_ and map_size_seen_, which any reader may refresh
  MapRange map_;
  size_t map_size_seen_ = 0;
  std::map<std::pair<uint64_t, uint32_t>, ProcessCache> caches_;          // by (job, node id)
  std::map<std::pair<uint64_t, uint32_t>, PendingCache> pending_caches_;  // the open write transaction's

  void apply_pending_caches() {
    for (auto& [key, pending] : pending_caches_) {
      ProcessCache& cache = caches_[key];
      if (pending.reset) cache.identity.clear();
      for (auto& [pk, identity] : pending.set) {
        if (identity) cache.identity.insert_or_assign(pk, std::move(*identity));
        else cache.identity.erase(pk);
      }
      cache.generation = pending.generation;
      if (cache.identity.size() > 200'000) cache = ProcessCache{};  // bounded memory; only costs rewrites
    }
  }

  // Shipping tables (see the end of this file). A read-only open of a store made before them has none.
  void open_shipping_tables(Txn& txn);
  template <typename Fn>
  void write_small(const char* what, Fn fn);
  bool have_shipping_ = false;
  MDB_dbi outbox_ = 0, ship_cursor_ = 0, ingested_ = 0, api_keys_ = 0;
  uint64_t outbox_bytes(Txn& txn);
  void set_outbox_bytes(Txn& txn, uint64_t bytes);
  void drop_for_bound(Txn& txn, uint64_t incoming);
  std::string dedup_cursor_;  // where expire_dedup goes on
  // Runs inside write_batch's transaction, after the batch is written (series ids are filled in then).
  std::function<void(Txn&, const Batch&)> in_txn_;
};

// ---------------------------------------------------------------- check

CheckReport LmdbStore::check() {
  auto writing = write_lock();
  CheckReport report;
  auto problem = [&](const std::string& what) {
    ++report.problem_count;
    if (report.problems.size() < 100) report.problems.push_back(what);
  };
  auto guarded = [&](const std::string& where, auto&& fn) {
    try {
      fn();
    } catch (const StoreError& e) {
      problem(where + ": " + e.what());
    }
  };
  AccessHint hint = scans();
  Txn txn = begin(MDB_RDONLY);
  if (auto v = txn.get(meta_, kSchemaKey); !v || read_u32(*v) != kSchemaVersion)
    problem("schema version is not " + std::to_string(kSchemaVersion));

  // Nodes: unique ids below next_node_id.
  std::map<uint32_t, std::string> node_names;
  uint32_t next_node = 1;
  if (auto v = txn.get(meta_, "next_node_id")) next_node = read_u32(*v);
  {
    Cursor c(txn, nodes_);
    for (bool ok = c.first(); ok; ok = c.next()) {
      if (c.value().size() != 4) {
        problem("node '" + std::string(c.key()) + "': bad id");
        continue;
      }
      uint32_t id = read_u32(c.value());
      if (id == 0 || id >= next_node) problem("node '" + std::string(c.key()) + "': id out of range");
      if (!node_names.emplace(id, std::string(c.key())).second)
        problem("node id " + std::to_string(id) + " used twice");
    }
  }
  auto node_name = [&](uint32_t id) {
    auto it = node_names.find(id);
    return it == node_names.end() ? std::string("?") : it->second;
  };
  auto where = [&](uint64_t job, uint32_t node) { return "job " + std::to_string(job) + " node " + node_name(node); };

  // Jobs and processes match their keys.
  {
    Cursor c(txn, jobs_);
    for (bool ok = c.first(); ok; ok = c.next()) {
      ++report.jobs;
      guarded("jobs table", [&] {
        if (c.key().size() != 12) throw StoreError("key size");
        JobRecord j = codec::decode_job(c.value());
        const uint64_t job = codec::read_be(c.key(), 0, 8);
        const uint32_t node = static_cast<uint32_t>(codec::read_be(c.key(), 8, 4));
        if (j.job_id != job || j.node != node_name(node))
          problem(where(job, node) + ": job record does not match its key");
      });
    }
  }
  {
    Cursor c(txn, processes_);
    for (bool ok = c.first(); ok; ok = c.next()) {
      ++report.processes;
      guarded("processes table", [&] {
        if (c.key().size() != 24) throw StoreError("key size");
        ProcessRecord p = codec::decode_process(c.value());
        const uint64_t job = codec::read_be(c.key(), 0, 8);
        const uint32_t node = static_cast<uint32_t>(codec::read_be(c.key(), 8, 4));
        if (p.job_id != job || p.pid != codec::read_be(c.key(), 12, 4) ||
            p.start_ticks != codec::read_be(c.key(), 16, 8))
          problem(where(job, node) + ": process record does not match its key");
        auto counter = txn.get(series_alloc_, job_key(job, node).sv());
        if (p.series_id == 0 || !counter || p.series_id >= read_u32(*counter))
          problem(where(job, node) + ": process " + std::to_string(p.pid) + " has series id " +
                  std::to_string(p.series_id) + " outside the allocated range");
      });
    }
  }
  check_events<FileRecord>(txn, files_, "files", report.files, codec::decode_file, file_hash, problem, guarded, where);
  check_events<ConnectionRecord>(txn, connections_, "connections", report.connections, codec::decode_connection,
                                 connection_hash, problem, guarded, where);
  std::map<std::string, JobState> states;
  {
    Cursor c(txn, job_state_);
    for (bool ok = c.first(); ok; ok = c.next())
      guarded("job_state table", [&] { states[std::string(c.key())] = codec::decode_job_state(c.value()); });
  }

  // A current process pack is a copy of its job's process records on that node.
  if (process_pack_) {
    Cursor c(txn, process_pack_);
    Cursor pc(txn, processes_);
    for (bool ok = c.first(); ok; ok = c.next()) {
      guarded("process_pack table", [&] {
        if (c.key().size() != 12) throw StoreError("key size");
        const uint64_t job = codec::read_be(c.key(), 0, 8);
        const auto node = static_cast<uint32_t>(codec::read_be(c.key(), 8, 4));
        codec::ProcessPack pack = codec::decode_process_pack(c.value());
        auto state = states.find(std::string(c.key()));
        if (state == states.end() || state->second.process_generation != pack.generation) return;  // stale: unused
        size_t i = 0;
        for (bool more = pc.seek(c.key()); more && pc.key().substr(0, 12) == c.key(); more = pc.next(), ++i) {
          if (i >= pack.records.size() || pack.records[i] != pc.value()) {
            problem(where(job, node) + ": process pack differs from the process records");
            return;
          }
        }
        if (i != pack.records.size()) problem(where(job, node) + ": process pack has more records than the table");
      });
    }
  }

  // Open records: decodable, tail is the last point, inside its minute.
  std::map<std::string, OpenRecord> opens;
  std::map<std::string, std::string> open_values;  // keeps the bytes opens[] points into
  {
    Cursor c(txn, open_);
    for (bool ok = c.first(); ok; ok = c.next()) {
      const std::string key(c.key());
      guarded("open table", [&] {
        if (key.size() != 16) throw StoreError("key size");
        const uint64_t job = codec::read_be(key, 0, 8);
        const uint32_t node = static_cast<uint32_t>(codec::read_be(key, 8, 4));
        const std::string w = where(job, node) + " series " + std::to_string(codec::read_be(key, 12, 4));
        std::string& bytes = open_values[key] = std::string(c.value());
        OpenRecord o = codec::decode_open(bytes);
        if (!states.count(key.substr(0, 12))) problem(w + ": series without job state");
        if (o.has_points) {
          auto points = codec::decode_points(o.points, o.origin(), !o.has_base);
          report.points += points.size();
          if (o.chunk_start % 60 != 0) problem(w + ": open minute not aligned");
          if (points.back() != o.tail) problem(w + ": open record's tail is not its last point");
          if (points.front().t < o.chunk_start || points.back().t >= o.chunk_start + 60)
            problem(w + ": open point outside its minute");
          if (o.has_base && o.base.t >= o.chunk_start) problem(w + ": open base not before its minute");
        }
        opens[key] = o;
      });
    }
  }

  // Sealed seconds: decodable, inside their minute, bases chain, rolled up into the minute table.
  std::map<std::string, Point> last_point;  // series -> last point of the previous sealed chunk
  {
    Cursor c(txn, series_[0]);
    for (bool ok = c.first(); ok; ok = c.next()) {
      ++report.chunks;
      guarded("series_s table", [&] {
        ChunkKey k = parse_chunk_key(c.key());
        const std::string w =
            where(k.job, k.node) + " series " + std::to_string(k.series) + " minute " + std::to_string(k.start);
        if (k.start % 60 != 0) problem(w + ": chunk not aligned");
        Chunk chunk = codec::decode_chunk(k.start, c.value());
        report.points += chunk.points.size();
        if (chunk.points.empty()) problem(w + ": empty chunk");
        if (!chunk.points.empty() && (chunk.points.front().t < k.start || chunk.points.back().t >= k.start + 60))
          problem(w + ": point outside its minute");
        const std::string skey(open_key(k.job, k.node, k.series).sv());
        // Below the job's floor minutes were dropped (full disk): the chain restarts above it.
        auto state = states.find(skey.substr(0, 12));
        const int64_t floor = state == states.end() ? 0 : state->second.floor[0];
        if (auto it = last_point.find(skey); it != last_point.end() && it->second.t >= floor) {
          if (!chunk.has_base || chunk.base != it->second) problem(w + ": base is not the previous chunk's last point");
        }
        if (!chunk.points.empty()) last_point[skey] = chunk.points.back();
        auto o = opens.find(skey);
        if (o == opens.end()) {
          problem(w + ": sealed chunk of a series without open record");
        } else if (o->second.has_points && k.start >= o->second.chunk_start) {
          problem(w + ": sealed chunk at or after the open minute");
        }
        const int64_t hour = floor_to(k.start, 3600);
        auto mv = txn.get(series_[1], chunk_key(k.job, k.node, hour, k.series).sv());
        if (!mv) {
          problem(w + ": no minute rollup for the hour");
          return;
        }
        Buckets b = codec::decode_buckets(*mv);
        const auto index = static_cast<uint32_t>((k.start - hour) / 60);
        auto it = std::find_if(b.begin(), b.end(), [&](const auto& e) { return e.first == index; });
        if (it == b.end() || !(it->second == rollup::of_points(chunk.points, chunk.has_base ? &chunk.base : nullptr)))
          problem(w + ": minute rollup does not match the seconds");
      });
    }
    // The open record's base is the last sealed point.
    for (const auto& [skey, point] : last_point) {
      auto o = opens.find(skey);
      auto state = states.find(skey.substr(0, 12));
      if (state != states.end() && point.t < state->second.floor[0]) continue;  // dropped minutes after it
      if (o != opens.end() && (!o->second.has_base || o->second.base != point))
        problem(where(codec::read_be(skey, 0, 8), static_cast<uint32_t>(codec::read_be(skey, 8, 4))) + " series " +
                std::to_string(codec::read_be(skey, 12, 4)) + ": open base is not the last sealed point");
    }
  }

  // Rollup chains: each hour is the merge of its minutes, each day of its hours.
  for (int r = 1; r < kResolutions; ++r) {
    Cursor c(txn, series_[r]);
    for (bool ok = c.first(); ok; ok = c.next()) {
      guarded(kSeriesTable[r], [&] {
        ChunkKey k = parse_chunk_key(c.key());
        const std::string w = where(k.job, k.node) + " series " + std::to_string(k.series) + " " + kSeriesTable[r] +
                              " chunk " + std::to_string(k.start);
        if (k.start % kChunkSpan[r] != 0) problem(w + ": chunk not aligned");
        Buckets b = codec::decode_buckets(c.value());
        report.buckets += b.size();
        const int64_t width = bucket_seconds(static_cast<Resolution>(r));
        for (const auto& [index, bucket] : b)
          if (static_cast<int64_t>(index) * width >= kChunkSpan[r]) problem(w + ": bucket index out of range");
        if (r == kResolutions - 1) return;
        const int64_t parent = floor_to(k.start, kChunkSpan[r + 1]);
        auto pv = txn.get(series_[r + 1], chunk_key(k.job, k.node, parent, k.series).sv());
        if (!pv) {
          problem(w + ": no rollup at the next resolution");
          return;
        }
        Buckets pb = codec::decode_buckets(*pv);
        const auto index = static_cast<uint32_t>((k.start - parent) / bucket_seconds(static_cast<Resolution>(r + 1)));
        auto it = std::find_if(pb.begin(), pb.end(), [&](const auto& e) { return e.first == index; });
        if (it == pb.end() || !(it->second == rollup::merge_all(b)))
          problem(w + ": the next resolution's bucket is not the merge of this chunk");
      });
    }
  }
  return report;
}

// ---------------------------------------------------------------- migration

UpgradeReport LmdbStore::migrate() {
  auto writing = write_lock();
  UpgradeReport report;
  report.from_version = stored_version_;
  report.to_version = kSchemaVersion;
  if (stored_version_ == kSchemaVersion) return report;
  if (stored_version_ != 1 && stored_version_ != 2)
    throw StoreError("store " + path_ + ": no migration from schema version " + std::to_string(stored_version_));
  if (stored_version_ == 2) {
    // 2 -> 3 adds the files and connections tables (open_tables made them); old records decode as they are.
    Txn txn = begin(0);
    lmdb::check(txn.put(meta_, kSchemaKey, be32(kSchemaVersion)), "mdb_put schema");
    lmdb::check(txn.commit(), "mdb_txn_commit");
    stored_version_ = kSchemaVersion;
    return report;
  }
  MDB_dbi samples = 0;
  {
    Txn txn = begin(0);
    int rc = mdb_dbi_open(txn.get(), "samples", 0, &samples);
    if (rc == MDB_NOTFOUND) {
      lmdb::check(txn.put(meta_, kSchemaKey, be32(kSchemaVersion)), "mdb_put schema");
      lmdb::check(txn.commit(), "mdb_txn_commit");
      return report;
    }
    lmdb::check(rc, "mdb_dbi_open samples");
    // A migration that was interrupted starts again from nothing.
    for (MDB_dbi dbi : {job_state_, open_, series_[0], series_[1], series_[2], series_[3]})
      lmdb::check(mdb_drop(txn.get(), dbi, 0), "mdb_drop");
    lmdb::check(txn.commit(), "mdb_txn_commit");
  }
  // Schema 1 keys: (job u64, node u32, series u32, resolution u8, time u32), one sample each, in order.
  std::string resume;
  for (;;) {
    for (int attempt = 0;; ++attempt) {
      Txn txn = begin(0);
      std::optional<Cursor> cursor;  // closed before the transaction ends, which would free it
      cursor.emplace(txn, samples);
      Cursor& c = *cursor;
      bool ok = resume.empty() ? c.first() : c.seek(resume);
      uint64_t n = 0;
      std::string next_resume;
      std::optional<WriteCtx> ctx;
      std::string ctx_job;
      auto flush_state = [&] {
        if (ctx) txn.must_put(job_state_, ctx_job, codec::encode_job_state(ctx->js));
      };
      try {
        for (; ok; ok = c.next()) {
          if (n >= 200000) {
            next_resume = std::string(c.key());
            break;
          }
          const std::string_view k = c.key();
          if (k.size() != 21) throw StoreError("schema 1 sample key of " + std::to_string(k.size()) + " bytes");
          if (k[16] != 0) continue;
          const std::string jk(k.substr(0, 12));
          if (!ctx || jk != ctx_job) {
            flush_state();
            ctx.reset();
            ctx.emplace(txn);
            ctx_job = jk;
            ctx->job = codec::read_be(k, 0, 8);
            ctx->node = static_cast<uint32_t>(codec::read_be(k, 8, 4));
            if (auto v = txn.get(job_state_, jk)) {
              ctx->js = codec::decode_job_state(*v);
            } else {
              ctx->js.first_s = INT64_MAX;
            }
          }
          const uint32_t series = static_cast<uint32_t>(codec::read_be(k, 12, 4));
          const auto t = static_cast<int64_t>(codec::read_be(k, 17, 4));
          Sample s = codec::decode_sample(c.value());
          ctx->js.latest_s = std::max(ctx->js.latest_s, t);
          ctx->js.first_s = std::min(ctx->js.first_s, t);
          apply(*ctx, series, Point{t, s.cpu_ns, s.rss, s.read_bytes, s.write_bytes});
          ++n;
        }
        flush_state();
        if (ctx) ctx->close_cursors();
        ctx.reset();
        cursor.reset();
        int rc = txn.commit();
        if (rc == MDB_SUCCESS) {
          report.samples_migrated += n;
          resume = next_resume;
          break;
        }
        if (rc != MDB_MAP_FULL || attempt > 8 || !grow_map()) lmdb::fail("upgrade commit", rc);
      } catch (const lmdb::LmdbError& e) {
        if (ctx) ctx->close_cursors();
        ctx.reset();
        cursor.reset();
        txn.abort();
        if (e.rc() != MDB_MAP_FULL || attempt > 8 || !grow_map()) throw;
      }
    }
    if (resume.empty()) break;
  }
  // Apply the same retention as a writer would, then retire the old table.
  sweep(UINT64_MAX);
  Txn txn = begin(0);
  lmdb::check(mdb_drop(txn.get(), samples, 1), "mdb_drop samples");
  lmdb::check(txn.put(meta_, kSchemaKey, be32(kSchemaVersion)), "mdb_put schema");
  lmdb::check(txn.commit(), "mdb_txn_commit");
  stored_version_ = kSchemaVersion;
  return report;
}

// ---------------------------------------------------------------- shipping to a central bcd
//   outbox       (job u64, seq u64) -> varint monitor id, string node, then the wire-encoded batch
//   ship_cursor  job u64 -> varint last seq spooled, varint shipped up to[, varint batches and samples
//                dropped unshipped at the outbox bound]
//   ingested     (job u64, monitor u64, seq u64, node bytes) -> be64 epoch seconds applied (central dedup);
//                with seq 0 (never a batch's): be64 the monitor's "applied up to" mark, see expire_dedup
//   api_keys     SHA-256 hex -> varint created, string owner, string node (absent in older keys)
//   meta "outbox_bytes" -> be64 bytes of the outbox values (computed once when missing)

struct ShipCursor {
  uint64_t last_seq = 0, shipped_up_to = 0;
  uint64_t dropped_batches = 0, dropped_samples = 0;
};

ShipCursor read_ship_cursor(const Txn& txn, MDB_dbi dbi, uint64_t job) {
  ShipCursor c;
  if (auto v = txn.get(dbi, Key().u64(job).bytes())) {
    codec::Decoder d(*v);
    c.last_seq = d.u64();
    c.shipped_up_to = d.u64();
    if (!d.done()) {  // written before the outbox had a bound: nothing dropped
      c.dropped_batches = d.u64();
      c.dropped_samples = d.u64();
    }
  }
  return c;
}

void put_ship_cursor(Txn& txn, MDB_dbi dbi, uint64_t job, const ShipCursor& c) {
  codec::Encoder e;
  e.u64(c.last_seq);
  e.u64(c.shipped_up_to);
  e.u64(c.dropped_batches);
  e.u64(c.dropped_samples);
  txn.must_put(dbi, Key().u64(job).bytes(), e.bytes());
}

std::string ingested_key(const BatchId& id) {
  return Key().u64(id.job_id).u64(id.monitor_id).u64(id.seq).bytes() + id.node;
}
std::string dedup_mark_key(const BatchId& id) {
  return Key().u64(id.job_id).u64(id.monitor_id).u64(0).bytes() + id.node;
}

// Whether a batch was applied: its own entry, or a seq at or below its monitor's mark (entries folded by
// expire_dedup).
bool already_applied(const Txn& txn, MDB_dbi ingested, const BatchId& id, const std::string& key) {
  if (txn.get(ingested, key)) return true;
  auto mark = txn.get(ingested, dedup_mark_key(id));
  return mark && id.seq <= codec::read_be(*mark, 0, 8);
}

constexpr const char* kOutboxBytesKey = "outbox_bytes";

uint64_t samples_in(const Batch& b) {
  uint64_t n = b.job_sample ? 1 : 0;
  for (const auto& u : b.processes) n += u.sample ? 1 : 0;
  return n;
}

// Thrown inside write_batch's transaction to abort it: the batch was applied before.
struct DuplicateBatch {};

// Clears the in-transaction hook however write_batch ends.
using TxnHook = std::function<void(Txn&, const Batch&)>;
class HookScope {
  using Hook = TxnHook;

 public:
  HookScope(Hook& hook, Hook value) : hook_(hook) { hook_ = std::move(value); }
  ~HookScope() { hook_ = nullptr; }
  HookScope(const HookScope&) = delete;
  HookScope& operator=(const HookScope&) = delete;

 private:
  Hook& hook_;
};

void LmdbStore::open_shipping_tables(Txn& txn) {
  const unsigned flags = options_.read_only ? 0U : MDB_CREATE;
  have_shipping_ = true;
  for (auto [name, dbi] : std::initializer_list<std::pair<const char*, MDB_dbi*>>{
           {"outbox", &outbox_}, {"ship_cursor", &ship_cursor_}, {"ingested", &ingested_}, {"api_keys", &api_keys_}}) {
    int rc = mdb_dbi_open(txn.get(), name, flags, dbi);
    if (rc == MDB_NOTFOUND && options_.read_only) {
      have_shipping_ = false;
      return;
    }
    lmdb::check(rc, "mdb_dbi_open");
  }
}

// A small write transaction outside the batch path (acknowledgements, API keys), grown and retried on a
// full map like a batch.
template <typename Fn>
void LmdbStore::write_small(const char* what, Fn fn) {
  if (options_.read_only) throw StoreError("store " + path_ + " is open read-only");
  for (int attempt = 0;; ++attempt) {
    Txn txn = begin(0);
    fn(txn);
    int rc = txn.commit();
    if (rc == MDB_SUCCESS) return;
    if (rc == MDB_MAP_FULL && attempt < 8 && grow_map()) continue;
    lmdb::fail(std::string(what) + " in " + path_, rc);
  }
}

uint64_t LmdbStore::outbox_bytes(Txn& txn) {
  if (auto v = txn.get(meta_, kOutboxBytesKey)) return codec::read_be(*v, 0, 8);
  uint64_t total = 0;  // an outbox from before the counter: count it once
  Cursor c(txn, outbox_);
  for (bool ok = c.first(); ok; ok = c.next()) total += c.value().size();
  return total;
}

void LmdbStore::set_outbox_bytes(Txn& txn, uint64_t bytes) {
  txn.must_put(meta_, kOutboxBytesKey, Key().u64(bytes).bytes());
}

// Gives up shipping the oldest outbox entries until `incoming` more bytes fit under the bound. The data stays
// in the node store; what was given up is counted per job (ship cursor and the job's record), and the job's
// newest batch still waiting is re-encoded with those counts, so bcd learns them when it arrives.
void LmdbStore::drop_for_bound(Txn& txn, uint64_t incoming) {
  const uint64_t bound = options_.outbox_max_bytes;
  uint64_t total = outbox_bytes(txn);
  if (bound == 0 || total + incoming <= bound) {
    set_outbox_bytes(txn, total + incoming);
    return;
  }
  std::map<std::pair<uint64_t, std::string>, std::pair<uint64_t, uint64_t>> dropped;  // (job, node) -> batches, samples
  {
    Cursor c(txn, outbox_);
    for (bool ok = c.first(); ok && total + incoming > bound;) {
      const uint64_t job = codec::read_be(c.key(), 0, 8);
      codec::Decoder d(c.value());
      d.u64();
      const std::string node = d.str();
      uint64_t samples = 0;
      try {
        samples = samples_in(wire::decode_batch(d.rest()));
      } catch (const std::exception&) {
        // counted as a batch with an unknown number of samples
      }
      auto& n = dropped[{job, node}];
      ++n.first;
      n.second += samples;
      total -= std::min<uint64_t>(total, c.value().size());
      c.del();
      ok = c.next();
    }
  }
  set_outbox_bytes(txn, total + incoming);
  for (const auto& [where, n] : dropped) {
    const auto& [job, node] = where;
    ShipCursor cur = read_ship_cursor(txn, ship_cursor_, job);
    cur.dropped_batches += n.first;
    cur.dropped_samples += n.second;
    put_ship_cursor(txn, ship_cursor_, job, cur);
    if (auto node_id = find_node(txn, node)) {
      const FixedKey jk = job_key(job, *node_id);
      if (auto v = txn.get(jobs_, jk.sv())) {
        JobRecord record = codec::decode_job(*v);
        record.unshipped_batches = cur.dropped_batches;
        record.unshipped_samples = cur.dropped_samples;
        txn.must_put(jobs_, jk.sv(), codec::encode_job(record));
      }
    }
    Cursor newest(txn, outbox_);
    const bool found = newest.seek(Key().u64(job + 1).bytes()) ? newest.prev() : newest.last();
    if (!found || codec::read_be(newest.key(), 0, 8) != job) continue;
    codec::Decoder d(newest.value());
    codec::Encoder head;
    head.u64(d.u64());
    head.str(d.str());
    try {
      Batch b = wire::decode_batch(d.rest());
      b.job.unshipped_batches = cur.dropped_batches;
      b.job.unshipped_samples = cur.dropped_samples;
      const std::string key(newest.key());
      const uint64_t old_size = newest.value().size();
      const std::string value = head.bytes() + wire::encode_batch(b);
      txn.must_put(outbox_, key, value);
      set_outbox_bytes(txn, outbox_bytes(txn) - std::min(outbox_bytes(txn), old_size) + value.size());
    } catch (const std::exception&) {
      // left as it is: the node store and the ship cursor still have the counts
    }
  }
}

uint64_t LmdbStore::write_batch_spooled(Batch& batch, uint64_t monitor_id) {
  auto writing = write_lock();
  uint64_t seq = 0;
  HookScope scope(in_txn_, [&](Txn& txn, const Batch& written) {
    codec::Encoder head;
    head.u64(monitor_id);
    head.str(written.job.node);
    std::string value = head.bytes() + wire::encode_batch(written);
    drop_for_bound(txn, value.size());
    ShipCursor c = read_ship_cursor(txn, ship_cursor_, written.job.job_id);
    seq = ++c.last_seq;
    put_ship_cursor(txn, ship_cursor_, written.job.job_id, c);
    if (c.dropped_batches > written.job.unshipped_batches) {
      // The monitor's record does not know what its node gave up: the stored record and bcd's copy must.
      Batch counted = written;
      counted.job.unshipped_batches = c.dropped_batches;
      counted.job.unshipped_samples = c.dropped_samples;
      if (auto node_id = find_node(txn, written.job.node))
        txn.must_put(jobs_, job_key(written.job.job_id, *node_id).sv(), codec::encode_job(counted.job));
      const uint64_t before = value.size();
      value = head.bytes() + wire::encode_batch(counted);
      set_outbox_bytes(txn, outbox_bytes(txn) - before + value.size());
    }
    txn.must_put(outbox_, Key().u64(written.job.job_id).u64(seq).bytes(), value);
  });
  write_batch(batch);
  return seq;
}

std::vector<SpooledBatch> LmdbStore::pending_batches(size_t max_batches, size_t max_bytes) {
  std::vector<SpooledBatch> out;
  if (!have_shipping_) return out;
  Txn txn = begin(MDB_RDONLY);
  Cursor c(txn, outbox_);
  size_t bytes = 0;
  for (bool ok = c.first(); ok && out.size() < max_batches; ok = c.next()) {
    if (!out.empty() && bytes + c.value().size() > max_bytes) break;
    SpooledBatch b;
    b.id.job_id = codec::read_be(c.key(), 0, 8);
    b.id.seq = codec::read_be(c.key(), 8, 8);
    codec::Decoder d(c.value());
    b.id.monitor_id = d.u64();
    b.id.node = d.str();
    b.wire = std::string(d.rest());
    bytes += c.value().size();
    out.push_back(std::move(b));
  }
  return out;
}

void LmdbStore::acknowledge_batches(uint64_t job_id, uint64_t up_to_seq) {
  auto writing = write_lock();
  write_small("acknowledging shipped batches", [&](Txn& txn) {
    uint64_t freed = 0;
    {
      Cursor c(txn, outbox_);
      for (bool ok = c.seek(Key().u64(job_id).bytes()); ok;) {
        if (codec::read_be(c.key(), 0, 8) != job_id || codec::read_be(c.key(), 8, 8) > up_to_seq) break;
        freed += c.value().size();
        c.del();
        ok = c.next();
      }
    }
    if (txn.get(meta_, kOutboxBytesKey)) {
      const uint64_t total = outbox_bytes(txn);
      set_outbox_bytes(txn, total - std::min(total, freed));
    }
    ShipCursor cur = read_ship_cursor(txn, ship_cursor_, job_id);
    cur.shipped_up_to = std::max(cur.shipped_up_to, up_to_seq);
    put_ship_cursor(txn, ship_cursor_, job_id, cur);
  });
}

std::vector<ShipState> LmdbStore::ship_states() {
  std::vector<ShipState> out;
  if (!have_shipping_) return out;
  Txn txn = begin(MDB_RDONLY);
  Cursor c(txn, ship_cursor_);
  for (bool ok = c.first(); ok; ok = c.next()) {
    ShipState s;
    s.job_id = codec::read_be(c.key(), 0, 8);
    codec::Decoder d(c.value());
    s.last_seq = d.u64();
    s.shipped_up_to = d.u64();
    if (!d.done()) {
      s.dropped_batches = d.u64();
      s.dropped_samples = d.u64();
    }
    Cursor o(txn, outbox_);
    for (bool more = o.seek(Key().u64(s.job_id).bytes()); more && codec::read_be(o.key(), 0, 8) == s.job_id;
         more = o.next()) {
      ++s.pending;
      s.pending_bytes += o.value().size();
    }
    out.push_back(s);
  }
  return out;
}

bool LmdbStore::write_batch_once(Batch& batch, const BatchId& id) {
  auto writing = write_lock();
  const std::string key = ingested_key(id);
  {
    Txn txn = begin(MDB_RDONLY);  // the common duplicate costs no write
    if (already_applied(txn, ingested_, id, key)) return false;
  }
  HookScope scope(in_txn_, [&](Txn& txn, const Batch&) {
    if (already_applied(txn, ingested_, id, key)) throw DuplicateBatch{};
    txn.must_put(ingested_, key, Key().u64(static_cast<uint64_t>(time(nullptr))).bytes());
  });
  try {
    write_batch(batch);
  } catch (const DuplicateBatch&) {
    return false;
  }
  return true;
}

std::vector<bool> LmdbStore::write_batches_once(std::vector<Batch>& batches, const std::vector<BatchId>& ids) {
  auto writing = write_lock();
  if (batches.size() != ids.size()) throw StoreError("write_batches_once: one id per batch");
  std::vector<bool> applied(batches.size(), false);
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (const auto& id : ids) keys.push_back(ingested_key(id));
  size_t first = 0;
  {
    Txn txn = begin(MDB_RDONLY);
    while (first < batches.size() && already_applied(txn, ingested_, ids[first], keys[first])) ++first;
  }
  if (first == batches.size()) return applied;
  // The first new batch goes through write_batch (growth, retries, the full-disk rules); the others are
  // written by the hook inside the same transaction, sharing the transaction's pending process-cache
  // changes (so a node's later ticks do not rewrite unchanged records). Consecutive batches of one job on
  // one node (a node's bundle) are written as one run.
  const std::string ingested_at = Key().u64(static_cast<uint64_t>(time(nullptr))).bytes();
  uint64_t dropped_by_hook = 0;  // of the attempt that committed: the hook runs once per attempt
  WriteCounts counts_by_hook;
  HookScope scope(in_txn_, [&](Txn& txn, const Batch&) {
    if (already_applied(txn, ingested_, ids[first], keys[first])) throw DuplicateBatch{};
    txn.must_put(ingested_, keys[first], ingested_at);
    std::fill(applied.begin(), applied.end(), false);
    applied[first] = true;
    dropped_by_hook = 0;
    counts_by_hook = {};
    std::vector<Batch*> run;
    auto write_pending_run = [&] {
      if (run.empty()) return;
      WriteCtx ctx(txn);
      ctx.drop_seconds = degraded_;
      write_run(ctx, run);
      ctx.close_cursors();
      dropped_by_hook += ctx.dropped;
      counts_by_hook += WriteCounts::of(ctx);
      run.clear();
    };
    for (size_t i = first + 1; i < batches.size(); ++i) {
      if (already_applied(txn, ingested_, ids[i], keys[i])) continue;
      if (!run.empty() &&
          (run.back()->job.job_id != batches[i].job.job_id || run.back()->job.node != batches[i].job.node))
        write_pending_run();
      run.push_back(&batches[i]);
      txn.must_put(ingested_, keys[i], ingested_at);
      applied[i] = true;
    }
    write_pending_run();
  });
  try {
    write_batch(batches[first]);
    count_late(dropped_by_hook);
    count_rejected(counts_by_hook);
  } catch (const DuplicateBatch&) {
    // Another writer applied it meanwhile: fall back to one at a time.
    for (size_t i = first; i < batches.size(); ++i) applied[i] = write_batch_once(batches[i], ids[i]);
  }
  return applied;
}

uint64_t LmdbStore::applied_batch_count() { return dedup_stats().entries; }

DedupStats LmdbStore::dedup_stats() {
  DedupStats out;
  if (!have_shipping_) return out;
  Txn txn = begin(MDB_RDONLY);
  Cursor c(txn, ingested_);
  for (bool ok = c.first(); ok; ok = c.next()) {
    if (codec::read_be(c.key(), 16, 8) == 0) ++out.marks;
    else ++out.entries;
  }
  return out;
}

// Folds entries applied before `applied_before_s` into their monitor's mark. Exact, not a guess: a monitor
// spools seqs in increasing order, a shipper sends each job's outbox oldest first (so a bundle that holds seq
// s holds every lower seq still waiting, before s), and bcd applies a bundle in order and acknowledges only
// what it stored. So once seq s of a monitor is applied, no lower seq of it can arrive that was not applied
// too, or dropped by the node for good; a resend is always at or below the mark.
uint64_t LmdbStore::expire_dedup(int64_t applied_before_s, uint64_t max_work) {
  auto writing = write_lock();
  if (!have_shipping_ || options_.read_only) return 0;
  uint64_t folded = 0;
  const std::string resume = dedup_cursor_;
  write_small("expiring dedup entries", [&](Txn& txn) {
    folded = 0;
    uint64_t visited = 0;
    std::vector<std::string> fold;
    {
      Cursor c(txn, ingested_);
      bool ok = resume.empty() ? c.first() : c.seek(resume);
      for (; ok && visited < max_work; ok = c.next(), ++visited) {
        if (codec::read_be(c.key(), 16, 8) == 0) continue;  // a mark
        if (static_cast<int64_t>(codec::read_be(c.value(), 0, 8)) >= applied_before_s) continue;
        fold.emplace_back(c.key());
      }
      dedup_cursor_ = ok ? std::string(c.key()) : std::string();
    }
    for (const std::string& key : fold) {
      BatchId id;
      id.job_id = codec::read_be(key, 0, 8);
      id.monitor_id = codec::read_be(key, 8, 8);
      id.seq = codec::read_be(key, 16, 8);
      id.node = key.substr(24);
      const std::string mark_key = dedup_mark_key(id);
      uint64_t mark = 0;
      if (auto v = txn.get(ingested_, mark_key)) mark = codec::read_be(*v, 0, 8);
      if (id.seq > mark) txn.must_put(ingested_, mark_key, Key().u64(id.seq).bytes());
      txn.del(ingested_, key);
      ++folded;
    }
  });
  return folded;
}

void LmdbStore::put_api_key(const ApiKeyRecord& key) {
  auto writing = write_lock();
  write_small("storing an API key", [&](Txn& txn) {
    codec::Encoder e;
    e.i64(key.created_s);
    e.str(key.owner);
    e.str(key.node);
    txn.must_put(api_keys_, key.hash, e.bytes());
  });
}

bool LmdbStore::delete_api_key(const std::string& hash) {
  auto writing = write_lock();
  bool found = false;
  write_small("deleting an API key", [&](Txn& txn) { found = txn.del(api_keys_, hash); });
  return found;
}

std::optional<ApiKeyRecord> LmdbStore::api_key(const std::string& hash) {
  if (!have_shipping_) return std::nullopt;
  Txn txn = begin(MDB_RDONLY);
  auto v = txn.get(api_keys_, hash);
  if (!v) return std::nullopt;
  codec::Decoder d(*v);
  ApiKeyRecord r;
  r.hash = hash;
  r.created_s = d.i64();
  r.owner = d.str();
  if (!d.done()) r.node = d.str();
  return r;
}

std::vector<ApiKeyRecord> LmdbStore::api_keys() {
  std::vector<ApiKeyRecord> out;
  if (!have_shipping_) return out;
  Txn txn = begin(MDB_RDONLY);
  Cursor c(txn, api_keys_);
  for (bool ok = c.first(); ok; ok = c.next()) {
    codec::Decoder d(c.value());
    ApiKeyRecord r;
    r.hash = std::string(c.key());
    r.created_s = d.i64();
    r.owner = d.str();
    if (!d.done()) r.node = d.str();
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

std::unique_ptr<Store> Store::open(const std::string& path, const OpenOptions& options) {
  return std::make_unique<LmdbStore>(path, options, Mode::Normal);
}

bool Store::init(const std::string& path, const OpenOptions& options) {
  OpenOptions o = options;
  o.read_only = false;
  o.create = true;
  LmdbStore store(path, o, Mode::Init);
  return store.created();
}

UpgradeReport Store::upgrade(const std::string& path, const OpenOptions& options) {
  OpenOptions o = options;
  o.read_only = false;
  o.create = false;
  LmdbStore store(path, o, Mode::Upgrade);
  return store.migrate();
}

}  // namespace bc::store
