// Reads: each in its own read transaction, beside the writes.
#include "accounting_db/lmdb_store.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

namespace bc::store {

std::optional<JobRecord> LmdbStore::job(uint64_t job_id, const std::string& node) {
  Txn txn = begin(MDB_RDONLY);
  auto node_id = find_node(txn, node);
  if (!node_id) return std::nullopt;
  auto v = txn.get(jobs_, job_key(job_id, *node_id).sv());
  if (!v) return std::nullopt;
  return codec::decode_job(*v);
}

std::vector<JobRecord> LmdbStore::job_nodes(uint64_t job_id) {
  Txn txn = begin(MDB_RDONLY);
  return job_nodes_in(txn, job_id);
}

std::vector<uint64_t> LmdbStore::job_ids() {
  Txn txn = begin(MDB_RDONLY);
  std::vector<uint64_t> out;
  Cursor c(txn, jobs_);
  for (bool ok = c.first(); ok; ok = c.next()) {
    uint64_t id = codec::read_be(c.key(), 0, 8);
    if (out.empty() || out.back() != id) out.push_back(id);
  }
  return out;
}

std::vector<std::pair<uint64_t, std::vector<JobRecord>>> LmdbStore::all_job_records() {
  AccessHint hint = scans();
  Txn txn = begin(MDB_RDONLY);
  std::vector<std::pair<uint64_t, std::vector<JobRecord>>> out;
  Cursor c(txn, jobs_);
  for (bool ok = c.first(); ok; ok = c.next()) {
    const uint64_t id = codec::read_be(c.key(), 0, 8);
    if (out.empty() || out.back().first != id) out.emplace_back(id, std::vector<JobRecord>{});
    out.back().second.push_back(codec::decode_job(c.value()));
  }
  return out;
}

std::vector<ProcessRecord> LmdbStore::processes(uint64_t job_id) {
  Txn txn = begin(MDB_RDONLY);
  return processes_in(txn, job_id);
}

JobSnapshot LmdbStore::load_job(uint64_t job_id) {
  Txn txn = begin(MDB_RDONLY);
  JobSnapshot s;
  s.nodes = job_nodes_in(txn, job_id);
  if (!s.nodes.empty()) s.processes = processes_in(txn, job_id);
  return s;
}

std::vector<Sample> LmdbStore::series(uint64_t job_id, const std::string& node, uint32_t series_id, int64_t from_s,
                                      int64_t to_s) {
  AccessHint hint = scans();
  Txn txn = begin(MDB_RDONLY);
  std::vector<Sample> out;
  auto node_id = find_node(txn, node);
  if (!node_id) return out;
  auto js = job_state(txn, job_id, *node_id);
  if (!js) return out;
  for_each_point(txn, job_id, *node_id, series_id, *js, from_s, to_s, [&](const Point& p, const Point*) {
    out.push_back(Sample{series_id, p.t, p.cpu, p.rss, p.rd, p.wr, p.threads});
  });
  return out;
}

SeriesData LmdbStore::query_series(const SeriesQuery& q) {
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
    for_each_point(txn, q.job_id, *node_id, q.series_id, *js, q.from_s, q.to_s, [&](const Point& p, const Point* prev) {
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
      auto points = codec::open_points(o);
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

uint32_t LmdbStore::schema_version() {
  Txn txn = begin(MDB_RDONLY);
  auto v = txn.get(meta_, kSchemaKey);
  return v ? read_u32(*v) : 0;
}

std::optional<uint32_t> LmdbStore::find_node(const Txn& txn, const std::string& node) {
  auto v = txn.get(nodes_, node);
  if (!v) return std::nullopt;
  return read_u32(*v);
}

std::optional<JobState> LmdbStore::job_state(const Txn& txn, uint64_t job, uint32_t node) {
  auto v = txn.get(job_state_, job_key(job, node).sv());
  if (!v) return std::nullopt;
  return codec::decode_job_state(*v);
}

std::vector<JobRecord> LmdbStore::job_nodes_in(const Txn& txn, uint64_t job_id) {
  std::vector<JobRecord> out;
  std::string prefix = Key().u64(job_id).bytes();
  Cursor c(txn, jobs_);
  for (bool ok = c.seek(prefix); ok && c.key().substr(0, 8) == prefix; ok = c.next())
    out.push_back(codec::decode_job(c.value()));
  return out;
}

std::vector<ProcessRecord> LmdbStore::processes_in(const Txn& txn, uint64_t job_id) {
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

std::optional<codec::ProcessPack> LmdbStore::current_pack(const Txn& txn, const FixedKey& job_node) {
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

Resolution LmdbStore::choose_resolution(const JobState& js, int64_t from_s) const {
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

template <typename Fn>
void LmdbStore::for_each_point(const Txn& txn, uint64_t job, uint32_t node, uint32_t series, const JobState& js,
                               int64_t from, int64_t to, Fn&& fn) {
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
    auto points = codec::open_points(*open);
    emit(points, open->has_base ? &open->base : nullptr);
  }
}

}  // namespace bc::store
