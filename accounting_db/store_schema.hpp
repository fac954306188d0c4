// Internal to accounting_db: the store's tables, keys and constants. Only the store's own files include it.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>

#include "accounting_db/codec.hpp"
#include "accounting_db/rollup.hpp"
#include "accounting_db/store.hpp"
#include "common/hash.hpp"

namespace bc::store {

// ---- Schema 3 layout ----
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
// Shipping (node side) and ingest (bcd's side):
//   outbox       (job u64, seq u64) -> varint monitor id, string node, then the wire-encoded batch
//   ship_cursor  job u64 -> varint last seq spooled, varint shipped up to[, varint batches and samples
//                dropped unshipped at the outbox bound]
//   ingested     (job u64, monitor u64, seq u64, node bytes) -> be64 epoch seconds applied (central dedup);
//                with seq 0 (never a batch's): be64 the monitor's "applied up to" mark, see expire_dedup
//   api_keys     SHA-256 hex -> varint created, string owner, string node (absent in older keys)
//   meta "outbox_bytes" -> be64 bytes of the outbox values (computed once when missing)
// The hash keys of files and connections are FNV-1a of the path / (address, port, protocol); on a
// collision the next hash value is used, so a key's hash is within kHashProbes above its record's own.
// Chunk keys put time before series, so a job's oldest data is at the start of its range (expiry is a
// cursor walk) and one tick's writes land on neighbouring pages.
constexpr int64_t kChunkSpan[kResolutions] = {60, 3600, 86400, 86400 * 32};
constexpr const char* kSeriesTable[kResolutions] = {"series_s", "series_m", "series_h", "series_d"};
constexpr int64_t kMaxTime = (int64_t{1} << 32) - 1 - 86400 * 64;
constexpr int64_t kSealGrace = 120;        // an open minute this much older than the job's latest data is sealed
constexpr int64_t kNoSamples = INT64_MAX;  // JobState::first_s of a job without samples yet
constexpr uint32_t kSweepEveryBatches = 64;
constexpr uint64_t kHashProbes = 16;  // see the layout: how far above its own hash a record's key may be

inline const std::string kSchemaKey = "schema_version";
inline const std::string kSweepCursorKey = "sweep_cursor";

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

inline FixedKey job_key(uint64_t job, uint32_t node) { return FixedKey().u64(job).u32(node); }
inline FixedKey open_key(uint64_t job, uint32_t node, uint32_t series) {
  return FixedKey().u64(job).u32(node).u32(series);
}
inline FixedKey chunk_key(uint64_t job, uint32_t node, int64_t start, uint32_t series) {
  return FixedKey().u64(job).u32(node).u32(static_cast<uint32_t>(start)).u32(series);
}
inline FixedKey process_key(uint64_t job, uint32_t node, uint32_t pid, uint64_t start_ticks) {
  return FixedKey().u64(job).u32(node).u32(pid).u64(start_ticks);
}

// FNV-1a over the parts, each followed by a 0xff byte, so ("ab", "c") and ("a", "bc") differ.
inline uint64_t fnv1a(std::initializer_list<std::string_view> parts) {
  uint64_t h = hash::kFnvOffset;
  for (std::string_view part : parts) h = hash::fnv1a("\xff", hash::fnv1a(part, h));
  return h;
}
inline uint64_t file_hash(const FileRecord& f) { return fnv1a({f.path}); }
inline uint64_t connection_hash(const ConnectionRecord& c) {
  const char port[2] = {static_cast<char>(c.port >> 8), static_cast<char>(c.port & 0xff)};
  return fnv1a({c.address, std::string_view(port, 2), c.protocol});
}
inline std::string event_key(uint64_t job, uint32_t node, uint32_t pid, uint64_t start_ticks, uint64_t hash) {
  return codec::Key().u64(job).u32(node).u32(pid).u64(start_ticks).u64(hash).bytes();
}

inline std::string be32(uint32_t v) { return codec::Key().u32(v).bytes(); }
inline uint32_t read_u32(std::string_view v) { return static_cast<uint32_t>(codec::read_be(v, 0, 4)); }

struct ChunkKey {
  uint64_t job;
  uint32_t node;
  int64_t start;
  uint32_t series;
};
inline ChunkKey parse_chunk_key(std::string_view k) {
  if (k.size() != 20) throw StoreError("corrupt store: series key of " + std::to_string(k.size()) + " bytes");
  return {codec::read_be(k, 0, 8), static_cast<uint32_t>(codec::read_be(k, 8, 4)),
          static_cast<int64_t>(codec::read_be(k, 12, 4)), static_cast<uint32_t>(codec::read_be(k, 16, 4))};
}

inline int64_t minute_of(int64_t t) { return rollup::floor_to(t, 60); }

// Whether a bucket [start, start+width) is still within retention, measured from the job's latest data.
inline bool kept(int64_t start, int64_t width, int64_t latest, int64_t retention) {
  return retention == 0 || start + width > latest - retention;
}

}  // namespace bc::store
