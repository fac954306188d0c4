// Maintenance: expiry and sealing as the data ages, the sweep, and the store's statistics.
#include "accounting_db/lmdb_store.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

namespace bc::store {

DroppedSamples LmdbStore::dropped_samples() {
  auto writing = write_lock();
  return {dropped_late_, rejected_};
}

StoreStats LmdbStore::stats() {
  StoreStats s;
  {
    // The writer's own state, read before the scan: the writer lock is never taken inside a transaction (a
    // writer that holds it may be waiting for every transaction to end, to grow the map).
    auto writing = write_lock();
    s.degraded = degraded_;
    s.dropped_late_samples = dropped_late_;
    s.rejected_samples = rejected_;
  }
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
      if (r.has_points) s.samples_second += codec::open_points(r).size();
    }
  }
  struct stat st {};
  if (::stat((path_ + "/data.mdb").c_str(), &st) == 0) s.file_bytes = static_cast<uint64_t>(st.st_blocks) * 512;
  s.retention = retention_;
  return s;
}

SweepReport LmdbStore::sweep(uint64_t max_work) {
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

uint64_t LmdbStore::seal_idle(WriteCtx& ctx, uint64_t budget) {
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

void LmdbStore::expire(WriteCtx& ctx, uint64_t budget) {
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

SweepReport LmdbStore::sweep_step(uint64_t budget, bool restart) {
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

void LmdbStore::periodic_sweep() {
  try {
    sweep_step(256);
  } catch (const std::exception& e) {
    log_line("%s: periodic sweep failed: %s", path_.c_str(), e.what());
  }
}

}  // namespace bc::store
