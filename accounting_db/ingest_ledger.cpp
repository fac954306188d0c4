// bcd's ingest ledger: which batches were applied (dedup), and the API keys.
#include "accounting_db/lmdb_store.hpp"

#include <algorithm>

namespace bc::store {

namespace {

// Thrown inside a batch's transaction to abort it: the batch was applied before.
struct DuplicateBatch {};

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

}  // namespace

bool LmdbStore::write_batch_once(Batch& batch, const BatchId& id) {
  auto writing = write_lock();
  const std::string key = ingested_key(id);
  {
    Txn txn = begin(MDB_RDONLY);  // the common duplicate costs no write
    if (already_applied(txn, ingested_, id, key)) return false;
  }
  try {
    write_batch_with(batch, [&](Txn& txn, const Batch&) {
      if (already_applied(txn, ingested_, id, key)) throw DuplicateBatch{};
      txn.must_put(ingested_, key, Key().u64(static_cast<uint64_t>(time(nullptr))).bytes());
    });
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
  // The first new batch goes through write_batch_with (growth, retries, the full-disk rules); the others are
  // written inside the same transaction, sharing the transaction's pending process-cache
  // changes (so a node's later ticks do not rewrite unchanged records). Consecutive batches of one job on
  // one node (a node's bundle) are written as one run.
  const std::string ingested_at = Key().u64(static_cast<uint64_t>(time(nullptr))).bytes();
  uint64_t dropped_by_rest = 0;  // of the attempt that committed: write_rest runs once per attempt
  WriteCounts counts_by_rest;
  auto write_rest = [&](Txn& txn, const Batch&) {
    if (already_applied(txn, ingested_, ids[first], keys[first])) throw DuplicateBatch{};
    txn.must_put(ingested_, keys[first], ingested_at);
    std::fill(applied.begin(), applied.end(), false);
    applied[first] = true;
    dropped_by_rest = 0;
    counts_by_rest = {};
    std::vector<Batch*> run;
    auto write_pending_run = [&] {
      if (run.empty()) return;
      WriteCtx ctx(txn);
      ctx.drop_seconds = degraded_;
      write_run(ctx, run);
      ctx.close_cursors();
      dropped_by_rest += ctx.dropped;
      counts_by_rest += WriteCounts::of(ctx);
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
  };
  try {
    write_batch_with(batches[first], write_rest);
    count_late(dropped_by_rest);
    count_rejected(counts_by_rest);
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

}  // namespace bc::store
