// bcadm db upgrade: schema 1 and 2 stores to schema 3.
#include "accounting_db/lmdb_store.hpp"

#include <algorithm>

namespace bc::store {

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
      std::unique_ptr<WriteCtx> ctx;  // one job at a time (a pointer: GCC 12 misreads an optional of it)
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
            ctx = std::make_unique<WriteCtx>(txn);
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
          apply(*ctx, series, Point{t, s.cpu_ns, s.rss, s.read_bytes, s.write_bytes, 0});
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

}  // namespace bc::store
