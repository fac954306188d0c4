// Internal to accounting_db: the LMDB store, one class whose parts live in one file per concern:
//   store_env.cpp          the environment, its tables and schema check
//   store_space.cpp        map growth and the full disk
//   series_writer.cpp      the write path: records, the series engine (open minutes, sealing, rollups)
//   store_events.cpp       files and connections (eBPF events)
//   store_reads.cpp        reads
//   store_maintenance.cpp  expiry, the sweep, statistics
//   store_check.cpp        bcadm db check; store_migrate.cpp: bcadm db upgrade
//   outbox.cpp             the node's outbox (shipping); ingest_ledger.cpp: bcd's dedup and API keys
#pragma once

#include <lmdb.h>
#include <sys/mman.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "accounting_db/codec.hpp"
#include "accounting_db/config.hpp"
#include "accounting_db/lmdb_raii.hpp"
#include "accounting_db/rollup.hpp"
#include "accounting_db/store.hpp"
#include "accounting_db/store_schema.hpp"

namespace bc::store {

using codec::Buckets;
using codec::Chunk;
using codec::JobState;
using codec::Key;
using codec::OpenRecord;
using codec::Point;
using lmdb::Cursor;
using lmdb::Txn;
using rollup::floor_to;

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

enum class Mode { Normal, Init, Upgrade };

// Point lookups (a job's header and processes) touch a few pages that copy-on-write has spread over the
// file: on a cold cache the kernel's read-around would read up to the device's read_ahead_kb (8 MiB on
// some virtual disks) for each 4 KiB page. A read-only store is therefore opened without read-ahead
// (MDB_NORDAHEAD, before its first page is read), and scans (series queries, stats, check) turn it back
// on for their duration. The hint goes on the memory map, which LMDB does not expose: it is found from a
// pointer into it. A writable store takes no hints: its threads (bcd's) would toggle one map's advice under
// each other, and each madvise takes the kernel's mmap lock, which stalls every reader's page faults; its
// cache is warm from its own writes.
struct MapRange {
  void* start = nullptr;
  size_t size = 0;
};

MapRange mapping_of(const void* p);

// Sets an madvise advice on the map for a scope, then restores the map's usual one.
class AccessHint {
 public:
  AccessHint() = default;  // none
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
  int usual_ = 0;
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

// A process's series id is 1..kLastSeriesId; past it are the GPU series (store.hpp).
inline bool has_series_id(const ProcessRecord& p) { return p.series_id != 0 && p.series_id <= kLastSeriesId; }

void log_line(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
int64_t monotonic_s();

class LmdbStore final : public Store {
 public:
  LmdbStore(const std::string& path, const OpenOptions& options, Mode mode)
      : LmdbStore(path, options, mode, effective_config(options)) {}

  LmdbStore(const std::string& path, const OpenOptions& options, Mode mode, const StoreConfig& config);

  // ---------------------------------------------------------------- writes (series_writer.cpp)

  void write_batch(Batch& batch) override;
  // What else a write transaction carries, written by the part that owns it (the outbox's spool, the ingest
  // ledger's marks) into the same transaction as the batch, so both commit or neither. Called once per
  // attempt, after the batch is written (its series ids are filled in then).
  using AlsoInTxn = std::function<void(Txn&, const Batch&)>;
  void write_batch_with(Batch& batch, const AlsoInTxn& also);

  // ---------------------------------------------------------------- reads (store_reads.cpp, store_events.cpp)

  std::optional<JobRecord> job(uint64_t job_id, const std::string& node) override;
  std::vector<JobRecord> job_nodes(uint64_t job_id) override;
  std::vector<uint64_t> job_ids() override;
  std::vector<std::pair<uint64_t, std::vector<JobRecord>>> all_job_records() override;
  std::vector<ProcessRecord> processes(uint64_t job_id) override;
  std::vector<FileRecord> files(uint64_t job_id) override;
  std::vector<ConnectionRecord> connections(uint64_t job_id) override;
  JobSnapshot load_job(uint64_t job_id) override;

  std::vector<Sample> series(uint64_t job_id, const std::string& node, uint32_t series_id, int64_t from_s,
                             int64_t to_s) override;
  SeriesData query_series(const SeriesQuery& q) override;
  uint32_t schema_version() override;

  const Retention& retention() const override { return retention_; }

  // ---------------------------------------------------------------- administration
  // store_maintenance.cpp, store_check.cpp, store_migrate.cpp

  DroppedSamples dropped_samples() override;
  StoreStats stats() override;
  CheckReport check() override;

  struct CheckRun;  // store_check.cpp

  SweepReport sweep(uint64_t max_work) override;
  UpgradeReport migrate();

  // Shipping (outbox.cpp) and ingest (ingest_ledger.cpp).
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
  // ---------------------------------------------------------------- environment (store_env.cpp)

  // Every transaction holds the environment's gate (env_gate.hpp) until it ends.
  Txn begin(unsigned flags);

  void adopt_map_size() {
    gate_.exclusively([&] { lmdb::check(mdb_env_set_mapsize(env_->get(), 0), "mdb_env_set_mapsize"); });
  }

  MDB_envinfo env_info();

  // Writes, and reads of the writer's own state, one at a time; reads of the data need only a transaction.
  // Recursive: write_batch_spooled and write_batch_once write through write_batch_with.
  std::unique_lock<std::recursive_mutex> write_lock() { return std::unique_lock(write_mutex_); }

  // The memory map (found once per map size: a grown map may move).
  MapRange map_range();

  // Read-ahead back on for a scan of a read-only map (opened MDB_NORDAHEAD: random, for its point lookups).
  AccessHint scans() { return options_.read_only ? AccessHint(map_range(), MADV_NORMAL, MADV_RANDOM) : AccessHint(); }

  static bool retriable(int rc) {
    return rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT || rc == MDB_MAP_RESIZED || rc == MDB_PANIC;
  }

  void open_env();
  void reopen_env();
  std::vector<std::pair<const char*, MDB_dbi*>> tables();
  void open_tables();
  uint32_t stored_version(const Txn& txn);
  void check_schema(uint32_t version, bool allow_older);

  MDB_dbi series_dbi(Resolution r) const { return series_[static_cast<int>(r)]; }

  // ---------------------------------------------------------------- reads (helpers)

  std::optional<uint32_t> find_node(const Txn& txn, const std::string& node);
  std::optional<JobState> job_state(const Txn& txn, uint64_t job, uint32_t node);
  std::vector<JobRecord> job_nodes_in(const Txn& txn, uint64_t job_id);

  template <typename Record, typename Decode>
  std::vector<Record> event_records_in(const Txn& txn, MDB_dbi dbi, uint64_t job_id, Decode decode);
  std::vector<ProcessRecord> processes_in(const Txn& txn, uint64_t job_id);

  // The pack of (job, node) if it exists and is current, its pages asked for in one read.
  std::optional<codec::ProcessPack> current_pack(const Txn& txn, const FixedKey& job_node);
  Resolution choose_resolution(const JobState& js, int64_t from_s) const;

  // Calls fn(point, previous point or null) for each retained second-resolution point in [from, to].
  template <typename Fn>
  void for_each_point(const Txn& txn, uint64_t job, uint32_t node, uint32_t series, const JobState& js, int64_t from,
                      int64_t to, Fn&& fn);

  // ---------------------------------------------------------------- the write path (series_writer.cpp)

  void write_in(WriteCtx& ctx, Batch& batch);

  // A job's owner is the user of its first record, on any node: a later batch never changes it (a pusher
  // naming another user's job cannot take it over; bcd refuses such pushes before they get here).
  void keep_owner(const Txn& txn, const FixedKey& jk, JobRecord& job);

  // Consecutive ticks of one job on one node, in order (bcd applies a node's bundle so): each tick's
  // records as write_in would, then all their samples together, so that a series' points go into its open
  // minute with one read and one write of that record, and the job's upkeep runs once.
  void write_run(WriteCtx& ctx, std::span<Batch* const> run);
  uint32_t node_id_for(Txn& txn, const std::string& node);  // a new node gets the next id
  void write_process_records(WriteCtx& ctx, Batch& batch, uint32_t& next_series);
  uint64_t write_samples(WriteCtx& ctx, std::span<Batch* const> run, bool fresh);

  // Adds this tick's file and connection increments to their totals.
  void write_events(WriteCtx& ctx, Batch& batch);

  template <typename Record, typename Encode, typename Decode, typename Same>
  void add_event(WriteCtx& ctx, Cursor& c, Record& inc, const JobRecord& job, uint64_t hash, Encode encode,
                 Decode decode, Same same);

  // A finished job's process records, copied into one value for cold readers (rebuilt when they change).
  void pack_processes(WriteCtx& ctx, const FixedKey& jk);

  Cursor& open_cursor(WriteCtx& ctx) {
    if (!ctx.open) ctx.open.emplace(ctx.txn, open_);
    return *ctx.open;
  }
  Cursor& table(WriteCtx& ctx, int r) {
    if (!ctx.tables[r]) ctx.tables[r].emplace(ctx.txn, series_[r]);
    return *ctx.tables[r];
  }

  void put_open(WriteCtx& ctx, const FixedKey& key, const OpenRecord& o);

  // Applies items[from] and the points after it of the same series that follow its open minute's tail in
  // that minute: those are appended to the record in memory and written once. Returns the next item's index.
  template <typename Item>
  size_t apply_run(WriteCtx& ctx, const std::vector<Item>& items, size_t from);

  // One sample of one series.
  void apply(WriteCtx& ctx, uint32_t series, const Point& p);

  // Moves the open minute of `series` into the sealed table and rolls it up. The caller rewrites the
  // open record.
  void seal(WriteCtx& ctx, uint32_t series, const OpenRecord& o);

  // Stores the minute rollup of chunk `m`, then recomputes its hour from the stored minutes of that hour and
  // its day from the stored hours of that day. Recomputing from stored buckets keeps this idempotent.
  void materialize(WriteCtx& ctx, uint32_t series, int64_t m, const Chunk& c);

  struct Successor {
    enum Kind { None, Sealed, Open } kind = None;
    int64_t start = 0;  // sealed chunk start
    bool has_base = false;
    Point base;
  };

  // The chunk that holds the first point after minute m of the series: a later sealed minute, or the open
  // record (which, without points, holds the series' last point as its base).
  Successor find_successor(WriteCtx& ctx, uint32_t series, int64_t m);

  // A point into a sealed minute (late, duplicate, or after an idle seal).
  void upsert_sealed(WriteCtx& ctx, uint32_t series, const Point& p);

  // The last point of minute m changed: the next chunk's base follows.
  void set_successor_base(WriteCtx& ctx, uint32_t series, int64_t m, const Point& base);

  // Seals open minutes of this job that are older than its latest data (idle series), looking at `budget`
  // records per call and resuming where the last call stopped. Returns the records looked at; the job's
  // seal cursor is 0 again after the last one.
  uint64_t seal_idle(WriteCtx& ctx, uint64_t budget);

  // Deletes this job's chunks that fell out of retention, oldest first, at most `budget`.
  void expire(WriteCtx& ctx, uint64_t budget);

  // ---------------------------------------------------------------- expiry and the sweep (store_maintenance.cpp)

  // One transaction of sweeping: visits jobs from the saved cursor, sealing idle minutes and expiring old
  // chunks, until `budget` units of work are spent (a record looked at, a chunk deleted, a job visited).
  SweepReport sweep_step(uint64_t budget, bool restart = false);
  void periodic_sweep();

  // ---------------------------------------------------------------- growth and full disk (store_space.cpp)

  // Called with no transaction open in this process, as mdb_env_set_mapsize requires. False when the
  // disk has no room for a larger map.
  bool grow_map();

  // Before a batch: grow a map that is getting full, keep disk blocks reserved ahead of the data, and
  // check whether a degraded store may recover.
  void prepare_batch();
  void enter_degraded(const char* why);

  // Deletes the oldest sealed seconds (then, once none are left, the oldest minute rollups) in one small
  // transaction, so the pages are free for the next batch. False when nothing could be dropped.
  bool free_space_round();

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

  void count_rejected(const WriteCounts& counts);
  void count_late(uint64_t dropped);

  // Threads (see store.hpp): readers share the environment; a resize waits for them; writers take turns.
  lmdb::EnvGate gate_;
  std::recursive_mutex write_mutex_;
  std::mutex map_mutex_;  // map_ and map_size_seen_, which any reader may refresh
  MapRange map_;
  size_t map_size_seen_ = 0;
  std::map<std::pair<uint64_t, uint32_t>, ProcessCache> caches_;          // by (job, node id)
  std::map<std::pair<uint64_t, uint32_t>, PendingCache> pending_caches_;  // the open write transaction's

  void apply_pending_caches();

  // Shipping and ingest tables (store_schema.hpp). A read-only open of a store made before them has none.
  void open_shipping_tables(Txn& txn);
  template <typename Fn>
  void write_small(const char* what, Fn fn);
  bool have_shipping_ = false;
  MDB_dbi outbox_ = 0, ship_cursor_ = 0, ingested_ = 0, api_keys_ = 0;

  // ---------------------------------------------------------------- outbox (outbox.cpp)

  // Spools a batch just written into the outbox, in the batch's transaction; returns its seq.
  uint64_t spool(Txn& txn, const Batch& written, uint64_t monitor_id);
  uint64_t outbox_bytes(Txn& txn);
  void set_outbox_bytes(Txn& txn, uint64_t bytes);
  void drop_for_bound(Txn& txn, uint64_t incoming);

  // ---------------------------------------------------------------- ingest ledger (ingest_ledger.cpp)

  std::string dedup_cursor_;  // where expire_dedup goes on
};

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

}  // namespace bc::store
