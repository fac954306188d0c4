// The write path: job and process records, and the series engine (open minutes, sealing, rollups).
#include "accounting_db/lmdb_store.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace bc::store {

namespace {

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

}  // namespace

void LmdbStore::write_batch(Batch& batch) { write_batch_with(batch, {}); }

void LmdbStore::write_batch_with(Batch& batch, const AlsoInTxn& also) {
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
      if (also) also(txn, batch);
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

void LmdbStore::write_in(WriteCtx& ctx, Batch& batch) {
  Batch* one[] = {&batch};
  write_run(ctx, one);
}

void LmdbStore::keep_owner(const Txn& txn, const FixedKey& jk, JobRecord& job) {
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

uint32_t LmdbStore::node_id_for(Txn& txn, const std::string& node) {
  if (auto id = find_node(txn, node)) return *id;
  auto next = txn.get(meta_, "next_node_id");
  const uint32_t node_id = next ? read_u32(*next) : 1;
  txn.must_put(meta_, "next_node_id", be32(node_id + 1));
  txn.must_put(nodes_, node, be32(node_id));
  return node_id;
}

void LmdbStore::write_run(WriteCtx& ctx, std::span<Batch* const> run) {
  Txn& txn = ctx.txn;
  Batch& last = *run.back();
  const uint32_t node_id = node_id_for(txn, last.job.node);
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
    if (!tick->processes.empty()) write_process_records(ctx, *tick, next_series);
    write_events(ctx, *tick);
  }
  if (next_series != first_series) txn.must_put(series_alloc_, jk.sv(), be32(next_series));
  const uint64_t samples = write_samples(ctx, run, fresh);
  if (last.job.end_ms != 0) pack_processes(ctx, jk);

  // Bounded upkeep of this job: seal idle minutes, expire old chunks.
  seal_idle(ctx, 16 + samples / 16);
  expire(ctx, 64 + samples / 8);
  txn.must_put(job_state_, jk.sv(), codec::encode_job_state(ctx.js));
}

// One tick's process records: a series id for each new process, and a write only where a record changed
// (the process cache knows what this store last wrote).
void LmdbStore::write_process_records(WriteCtx& ctx, Batch& batch, uint32_t& next_series) {
  Txn& txn = ctx.txn;
  const uint64_t job = ctx.job;
  const uint32_t node_id = ctx.node;
  const std::string& node = batch.job.node;
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
      // logged. A throw would fail every request sharing bcd's commit; an id past the last is a GPU series.
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
}

// The run's samples, by series then time, into the series; returns how many.
uint64_t LmdbStore::write_samples(WriteCtx& ctx, std::span<Batch* const> run, bool fresh) {
  struct Item {
    uint32_t series;
    Point p;
  };
  std::vector<Item> items;
  size_t expected = 0;
  for (const Batch* b : run) expected += b->processes.size() + 1 + b->gpu_samples.size();
  items.reserve(expected);
  auto add = [&](uint32_t series, const Sample& s) {
    if (s.time_s < 0 || s.time_s > kMaxTime) {
      ++ctx.rejected;
      return;
    }
    items.push_back({series, Point{s.time_s, s.cpu_ns, s.rss, s.read_bytes, s.write_bytes, s.threads}});
  };
  int64_t latest = 0;
  for (const Batch* b : run) {
    if (b->job_sample) add(0, *b->job_sample);
    for (const auto& u : b->processes) {
      if (!has_series_id(u.record)) continue;
      if (u.sample) add(u.record.series_id, *u.sample);
      if (u.gpu_sample) add(gpu_series_of_process(u.record.series_id), u.gpu_sample->as_sample());
    }
    for (const GpuSample& g : b->gpu_samples) {
      if (!gpu_device_position(g.series_id)) {
        ++ctx.rejected;
        continue;
      }
      add(g.series_id, g.as_sample());
    }
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
  return items.size();
}

void LmdbStore::pack_processes(WriteCtx& ctx, const FixedKey& jk) {
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

void LmdbStore::put_open(WriteCtx& ctx, const FixedKey& key, const OpenRecord& o) {
  ctx.buf.clear();
  codec::encode_open(ctx.buf, o);
  open_cursor(ctx).put(key.sv(), ctx.buf);
}

template <typename Item>
size_t LmdbStore::apply_run(WriteCtx& ctx, const std::vector<Item>& items, size_t from) {
  const uint32_t series = items[from].series;
  const Point& first = items[from].p;
  if (first.t >= ctx.js.floor[0] && from + 1 < items.size() && items[from + 1].series == series) {
    const FixedKey key = open_key(ctx.job, ctx.node, series);
    Cursor& oc = open_cursor(ctx);
    const bool found = (oc.next() && oc.key() == key.sv()) || oc.find(key.sv());
    if (found && codec::append_open(ctx.buf, oc.value(), first)) {
      size_t next = from + 1;
      while (next < items.size() && items[next].series == series && codec::append_open_in_place(ctx.buf, items[next].p))
        ++next;
      oc.put(key.sv(), ctx.buf, MDB_CURRENT);  // the same size: LMDB overwrites it in place
      return next;
    }
  }
  apply(ctx, series, first);
  return from + 1;
}

void LmdbStore::apply(WriteCtx& ctx, uint32_t series, const Point& p) {
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
    if (o.point_format == codec::kPointFormat) {
      ctx.points.assign(o.points);
    } else {
      codec::upgrade_open_points(o, ctx.points);
    }
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
    o.point_format = codec::kPointFormat;
    put_open(ctx, key, o);
    return;
  }
  if (o.has_points && p.t >= o.chunk_start) {
    // A late or duplicate point inside the open minute.
    auto points = codec::open_points(o);
    if (!upsert_point(points, p)) return;
    ctx.points.clear();
    codec::encode_points(ctx.points, o.origin(), points);
    o.points = ctx.points;
    o.point_format = codec::kPointFormat;
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

void LmdbStore::seal(WriteCtx& ctx, uint32_t series, const OpenRecord& o) {
  const int64_t m = o.chunk_start;
  auto points = codec::open_points(o);
  if (ctx.drop_seconds) {
    ctx.js.floor[0] = std::max(ctx.js.floor[0], m + 60);
  } else {
    ctx.buf2.clear();
    if (o.point_format == codec::kPointFormat) {
      codec::encode_chunk_raw(ctx.buf2, m, o.has_base, o.base, o.points);
    } else {
      ctx.buf2 = codec::encode_chunk(m, Chunk{o.has_base, o.base, points});
    }
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

void LmdbStore::materialize(WriteCtx& ctx, uint32_t series, int64_t m, const Chunk& c) {
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

LmdbStore::Successor LmdbStore::find_successor(WriteCtx& ctx, uint32_t series, int64_t m) {
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

void LmdbStore::upsert_sealed(WriteCtx& ctx, uint32_t series, const Point& p) {
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

void LmdbStore::set_successor_base(WriteCtx& ctx, uint32_t series, int64_t m, const Point& base) {
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
    if (o.has_points) points = codec::open_points(o);
    o.has_base = true;
    o.base = base;
    ctx.points.clear();
    if (o.has_points) codec::encode_points(ctx.points, o.origin(), points);
    o.points = ctx.points;
    o.point_format = codec::kPointFormat;
    put_open(ctx, key, o);
  }
}

void LmdbStore::apply_pending_caches() {
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

}  // namespace bc::store
