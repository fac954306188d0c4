// The node's outbox: batches spooled in the write's transaction, shipped to bcd, acknowledged.
#include "accounting_db/lmdb_store.hpp"
#include "accounting_db/wire.hpp"

#include <algorithm>

namespace bc::store {

namespace {

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

constexpr const char* kOutboxBytesKey = "outbox_bytes";

}  // namespace

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
        samples = wire::decode_batch(d.rest()).sample_count();
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
  uint64_t seq = 0;
  write_batch_with(batch, [&](Txn& txn, const Batch& written) { seq = spool(txn, written, monitor_id); });
  return seq;
}

uint64_t LmdbStore::spool(Txn& txn, const Batch& written, uint64_t monitor_id) {
  codec::Encoder head;
  head.u64(monitor_id);
  head.str(written.job.node);
  std::string value = head.bytes() + wire::encode_batch(written);
  drop_for_bound(txn, value.size());
  ShipCursor c = read_ship_cursor(txn, ship_cursor_, written.job.job_id);
  ++c.last_seq;
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
  txn.must_put(outbox_, Key().u64(written.job.job_id).u64(c.last_seq).bytes(), value);
  return c.last_seq;
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

}  // namespace bc::store
