// bcadm db check: every table decodable and consistent with the others.
#include "accounting_db/lmdb_store.hpp"

#include <algorithm>

namespace bc::store {

// One run of check(): its read transaction, what each table tells about the next, and the problems found.
struct LmdbStore::CheckRun {
  LmdbStore& s;
  Txn txn;
  CheckReport report;
  std::map<uint32_t, std::string> node_names;
  std::map<std::string, JobState> states;          // by (job, node) key
  std::map<std::string, OpenRecord> opens;         // by (job, node, series) key
  std::map<std::string, std::string> open_values;  // keeps the bytes opens[] points into
  std::map<std::string, Point> last_point;         // series -> last point of the previous sealed chunk

  void problem(const std::string& what) {
    ++report.problem_count;
    if (report.problems.size() < 100) report.problems.push_back(what);
  }
  template <typename Fn>
  void guarded(const std::string& where, Fn&& fn) {
    try {
      fn();
    } catch (const StoreError& e) {
      problem(where + ": " + e.what());
    }
  }
  std::string node_name(uint32_t id) const {
    auto it = node_names.find(id);
    return it == node_names.end() ? std::string("?") : it->second;
  }
  std::string where(uint64_t job, uint32_t node) const {
    return "job " + std::to_string(job) + " node " + node_name(node);
  }

  void schema_and_nodes();
  void jobs_and_processes();
  template <typename Record, typename Decode, typename Hash>
  void events(MDB_dbi dbi, const char* table, uint64_t& count, Decode decode, Hash hash);
  void job_states();
  void process_packs();
  void open_records();
  void sealed_seconds();
  void rollups();
};

CheckReport LmdbStore::check() {
  auto writing = write_lock();
  AccessHint hint = scans();
  CheckRun run{*this, begin(MDB_RDONLY), {}, {}, {}, {}, {}, {}};
  run.schema_and_nodes();
  run.jobs_and_processes();
  run.events<FileRecord>(files_, "files", run.report.files, codec::decode_file, file_hash);
  run.events<ConnectionRecord>(connections_, "connections", run.report.connections, codec::decode_connection,
                               connection_hash);
  run.job_states();
  run.process_packs();
  run.open_records();
  run.sealed_seconds();
  run.rollups();
  return std::move(run.report);
}

void LmdbStore::CheckRun::schema_and_nodes() {
  if (auto v = txn.get(s.meta_, kSchemaKey); !v || read_u32(*v) != kSchemaVersion)
    problem("schema version is not " + std::to_string(kSchemaVersion));
  // Nodes: unique ids below next_node_id.
  uint32_t next_node = 1;
  if (auto v = txn.get(s.meta_, "next_node_id")) next_node = read_u32(*v);
  {
    Cursor c(txn, s.nodes_);
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
}

// Jobs and processes match their keys.
void LmdbStore::CheckRun::jobs_and_processes() {
  {
    Cursor c(txn, s.jobs_);
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
    Cursor c(txn, s.processes_);
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
        auto counter = txn.get(s.series_alloc_, job_key(job, node).sv());
        if (p.series_id == 0 || !counter || p.series_id >= read_u32(*counter))
          problem(where(job, node) + ": process " + std::to_string(p.pid) + " has series id " +
                  std::to_string(p.series_id) + " outside the allocated range");
      });
    }
  }
}
// Files and connections: decodable, matching their key, under an existing process.
template <typename Record, typename Decode, typename Hash>
void LmdbStore::CheckRun::events(MDB_dbi dbi, const char* table, uint64_t& count, Decode decode, Hash hash) {
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
      if (!txn.get(s.jobs_, job_key(job, node).sv())) problem(where(job, node) + ": " + table + " record without job");
    });
  }
}

void LmdbStore::CheckRun::job_states() {
  {
    Cursor c(txn, s.job_state_);
    for (bool ok = c.first(); ok; ok = c.next())
      guarded("job_state table", [&] { states[std::string(c.key())] = codec::decode_job_state(c.value()); });
  }
}
// A current process pack is a copy of its job's process records on that node.
void LmdbStore::CheckRun::process_packs() {
  if (s.process_pack_) {
    Cursor c(txn, s.process_pack_);
    Cursor pc(txn, s.processes_);
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
}
// Open records: decodable, tail is the last point, inside its minute.
void LmdbStore::CheckRun::open_records() {
  {
    Cursor c(txn, s.open_);
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
          auto points = codec::open_points(o);
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
}
// Sealed seconds: decodable, inside their minute, bases chain, rolled up into the minute table.
void LmdbStore::CheckRun::sealed_seconds() {
  {
    Cursor c(txn, s.series_[0]);
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
        auto mv = txn.get(s.series_[1], chunk_key(k.job, k.node, hour, k.series).sv());
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
}
// Rollup chains: each hour is the merge of its minutes, each day of its hours.
void LmdbStore::CheckRun::rollups() {
  for (int r = 1; r < kResolutions; ++r) {
    Cursor c(txn, s.series_[r]);
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
        auto pv = txn.get(s.series_[r + 1], chunk_key(k.job, k.node, parent, k.series).sv());
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
}
}  // namespace bc::store
