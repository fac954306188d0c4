// Internal to accounting_db: value and key encoding. Not part of the public header.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "accounting_db/store.hpp"

namespace bc::store::codec {

// Appends LEB128 varints and length-prefixed strings; values stay small because most fields are
// small numbers.
// An unsigned LEB128 varint (7 bits a byte, low first), built in a small buffer and appended once: a
// push_back per byte pays a capacity check and a terminator each, and this is the store's hottest loop.
inline void append_varint(std::string& out, uint64_t v) {
  char buf[10];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out.append(buf, n);
}

class Encoder {
 public:
  void u64(uint64_t v) { append_varint(bytes_, v); }
  void i64(int64_t v) { u64((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); }
  void str(std::string_view s) {
    u64(s.size());
    bytes_.append(s);
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

class Decoder {
 public:
  explicit Decoder(std::string_view bytes) : bytes_(bytes) {}
  uint64_t u64() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= bytes_.size()) throw StoreError("corrupt record: truncated varint");
      auto b = static_cast<uint8_t>(bytes_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw StoreError("corrupt record: varint too long");
  }
  uint32_t u32() {
    uint64_t v = u64();
    if (v > UINT32_MAX) throw StoreError("corrupt record: value out of range");
    return static_cast<uint32_t>(v);
  }
  int64_t i64() {
    uint64_t v = u64();
    return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
  }
  std::string str() { return std::string(str_view()); }
  // Points into the decoded bytes.
  std::string_view str_view() {
    uint64_t n = u64();
    if (n > bytes_.size() - pos_) throw StoreError("corrupt record: string overruns value");
    std::string_view s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  uint8_t raw_byte() {
    if (pos_ >= bytes_.size()) throw StoreError("corrupt record: truncated");
    return static_cast<uint8_t>(bytes_[pos_++]);
  }
  std::string_view rest() {
    std::string_view r = bytes_.substr(pos_);
    pos_ = bytes_.size();
    return r;
  }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

// Fixed-width big-endian key builder.
class Key {
 public:
  Key& u8(uint8_t v) { return put(v, 1); }
  Key& u32(uint32_t v) { return put(v, 4); }
  Key& u64(uint64_t v) { return put(v, 8); }
  const std::string& bytes() const { return bytes_; }

 private:
  Key& put(uint64_t v, int width) {
    for (int i = width - 1; i >= 0; --i) bytes_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  std::string bytes_;
};

inline uint64_t read_be(std::string_view bytes, size_t offset, int width) {
  if (offset + static_cast<size_t>(width) > bytes.size()) throw StoreError("corrupt key: too short");
  uint64_t v = 0;
  for (int i = 0; i < width; ++i) v = (v << 8) | static_cast<uint8_t>(bytes[offset + static_cast<size_t>(i)]);
  return v;
}

std::string encode_job(const JobRecord& job);
JobRecord decode_job(std::string_view value);
// counters_in_series: the record's cpu_ns, rss, read_bytes and write_bytes are those of its series' last
// point, which readers use instead (the writer then skips rewriting a record whose other fields are unchanged).
std::string encode_process(const ProcessRecord& p, bool counters_in_series = false);
ProcessRecord decode_process(std::string_view value, bool* counters_in_series = nullptr);
// A process record's identity: every field but job_id, node, pid, start_ticks, series_id, end_ms and the
// counters, in one canonical encoding (equal fields give equal bytes). The wire carries a process's identity
// so, and the writer compares identities as bytes, decoding one only when the record must be rewritten.
void append_process_identity(std::string& out, const ProcessRecord& p);
// Reads it as decode_process_identity would, without allocating; throws StoreError naming the fault.
void check_process_identity(std::string_view bytes);
// Sets p's identity fields. Throws StoreError.
void decode_process_identity(std::string_view bytes, ProcessRecord& p);
// eBPF events (schema 3): one record per process and path / peer, with its totals.
std::string encode_file(const FileRecord& f);
FileRecord decode_file(std::string_view value);
std::string encode_connection(const ConnectionRecord& c);
ConnectionRecord decode_connection(std::string_view value);
// Schema 1 only: one value per sample. Kept to read old stores during `bcadm db upgrade`.
std::string encode_sample(const Sample& s);
Sample decode_sample(std::string_view value);

// ---- Schema 2: series points, chunks and rollup buckets ----

// One second-resolution point with cumulative counters (rss and threads are gauges).
struct Point {
  int64_t t = 0;
  uint64_t cpu = 0, rss = 0, rd = 0, wr = 0;
  uint32_t threads = 0;  // 0: not known (points of format 1, the job total of an old monitor)
  bool operator==(const Point&) const = default;
};

// A point is encoded against the one before it: a flag byte, then only the fields that changed.
//   bit 0: a varint follows (below)         bit 1: cpu changed        bit 2: cpu delta in 10 ms units
//   bit 3: rss changed (zigzag)             bit 4: rss delta in 4 KiB  bit 5: read changed
//   bit 6: write changed                    bit 7: counter deltas are zigzag (a counter went down)
// Format 1 (chunks of format 1, open records of formats 1 and 2): the varint of bit 0 is dt, set when
// dt != 1, and there is no thread count. Format 2: the varint is dt << 1 | (threads changed), set when
// dt != 1 or the thread count changed; the zigzag thread delta then ends the point. Thread counts change
// rarely, so a point of a steady process costs what it cost in format 1.
enum class PointFormat : uint8_t { WithoutThreads = 1, WithThreads = 2 };
inline constexpr PointFormat kPointFormat = PointFormat::WithThreads;  // what the encoders write
void put_point(std::string& out, const Point& prev, const Point& p);
Point get_point(Decoder& d, const Point& prev, PointFormat format = kPointFormat);
// Decodes a run of points; the first is relative to origin. Throws on corrupt or unordered points.
std::vector<Point> decode_points(std::string_view bytes, const Point& origin, bool first_may_equal_origin,
                                 PointFormat format = kPointFormat);
void encode_points(std::string& out, const Point& origin, const std::vector<Point>& points);

// A sealed minute of one series: the point before the chunk (its base, if the series had one) and the
// chunk's points. The first point of a series with no base is encoded against {chunk start, zeros}.
struct Chunk {
  bool has_base = false;
  Point base;
  std::vector<Point> points;
  Point origin(int64_t start) const { return has_base ? base : Point{start, 0, 0, 0, 0, 0}; }
};
// Chunk format 1 holds points of format 1; format 2 (written now) points of format 2 and a base with threads.
std::string encode_chunk(int64_t start, const Chunk& c);
Chunk decode_chunk(int64_t start, std::string_view value);
// A sealed chunk's header followed by already encoded points of kPointFormat (sealing moves the open
// record's bytes).
void encode_chunk_raw(std::string& out, int64_t start, bool has_base, const Point& base, std::string_view points);

// The open (newest) minute of a series, with its tail (last point) so a point is appended without decoding
// the others. Without points it only carries the base: the series' last point, already sealed.
struct OpenRecord {
  bool has_base = false;
  bool has_points = false;
  int64_t chunk_start = 0;  // with points
  Point base;
  Point tail;                               // with points
  std::string_view points;                  // encoded points, the first against origin()
  PointFormat point_format = kPointFormat;  // of `points`
  Point origin() const { return has_base ? base : Point{chunk_start, 0, 0, 0, 0, 0}; }
  Point last() const { return has_points ? tail : base; }
};
// Reads format 1 (varints, written before the fixed header), format 2 (a fixed header, points of format 1)
// and format 3 (format 2 with thread counts in the tail and base, points of format 2).
OpenRecord decode_open(std::string_view value);
// Rewrites the points of a record read from an older format in kPointFormat, into `storage`, which
// r.points then views. A writer calls it before it appends to or re-encodes a record it read.
void upgrade_open_points(OpenRecord& r, std::string& storage);
// The record's points, decoded in their format.
std::vector<Point> open_points(const OpenRecord& r);
// Format 3: a fixed-width header (tail and base at fixed offsets), the points, then free room for more
// points, so that a tick's point is appended by rewriting the value at the same size (see append_open).
// r.point_format must be kPointFormat (StoreError otherwise).
void encode_open(std::string& out, const OpenRecord& r);
// The common write: p follows the open minute's tail in the same minute. Copies `value` into out with p
// appended in its free room and the tail updated; false (out unspecified) when the value is not a format 3
// record with points, p does not belong at its end, or the room is used up.
bool append_open(std::string& out, std::string_view value, const Point& p);
// The same on a record already in memory; on false `value` is as it was.
bool append_open_in_place(std::string& value, const Point& p);

// Rollup buckets of one chunk (the minutes of an hour, the hours of a day, the days of 32 days), by index.
// Format 1 has no thread figures (read as 0); format 2, written now, ends each bucket with them.
using Buckets = std::vector<std::pair<uint32_t, Rollup>>;
std::string encode_buckets(const Buckets& b);
Buckets decode_buckets(std::string_view value);

// Store-private state of one job on one node.
struct JobState {
  int64_t first_s = 0;   // earliest sample time (INT64_MAX before the first sample)
  int64_t latest_s = 0;  // latest sample time: retention is measured from here
  // Data below floor[r] is gone (expired or dropped); late samples below floor[Second] are refused.
  int64_t floor[4] = {0, 0, 0, 0};
  uint32_t seal_cursor = 0;         // next series the idle-seal step looks at
  uint64_t process_generation = 0;  // bumped by every batch that writes a process record
};
std::string encode_job_state(const JobState& s);
JobState decode_job_state(std::string_view value);

// A finished job's process records on one node, packed into one value: LMDB keeps a big value on
// consecutive pages, so a cold `bcacct -j` reads them in one I/O instead of a page fault per leaf page.
// `generation` is the job's process_generation when packed; a pack of another generation is stale.
struct ProcessPack {
  uint64_t generation = 0;
  std::vector<std::string_view> records;  // encode_process values, in key order
};
void encode_process_pack_header(std::string& out, uint64_t generation, uint64_t count);
void append_packed_record(std::string& out, std::string_view record);
ProcessPack decode_process_pack(std::string_view value);

}  // namespace bc::store::codec
