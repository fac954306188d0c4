// The store's record decoders (accounting_db/codec.*) on corrupt stored values. The first byte picks the
// record kind; some kinds take a fixed header next (a chunk's start time, a run of points' origin), and the
// rest is the stored value (codec_input.hpp). A corrupt value must end in StoreError and nothing else (no
// overflow, no huge allocation). A value that decodes is re-encoded, and must decode to the same record:
// what the store rewrites, it reads back unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "accounting_db/codec.hpp"
#include "codec_input.hpp"

namespace {

namespace codec = bc::store::codec;
using bc::store::StoreError;
using Kind = bc::fuzz::CodecKind;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "%s\n", what);
  std::abort();
}

void require(bool ok, const char* what) {
  if (!ok) fail(what);
}

// Big-endian fields of the fuzz input's header (not of any stored format).
class Header {
 public:
  explicit Header(std::string_view& rest) : rest_(rest) {}
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8 && !rest_.empty(); ++i) {
      v = (v << 8) | static_cast<uint8_t>(rest_.front());
      rest_.remove_prefix(1);
    }
    return v;
  }
  // Times as the store keeps them: epoch seconds below 2^40 (what codec's time_value accepts).
  int64_t time() { return static_cast<int64_t>(u64() % (uint64_t{1} << 40)); }

 private:
  std::string_view& rest_;
};

void job(std::string_view value) {
  const std::string first = codec::encode_job(codec::decode_job(value));
  require(codec::encode_job(codec::decode_job(first)) == first, "job record: re-encoding differs");
}

void process(std::string_view value) {
  bool counters_in_series = false;
  const bc::store::ProcessRecord p = codec::decode_process(value, &counters_in_series);
  const std::string first = codec::encode_process(p, counters_in_series);
  bool again = false;
  require(codec::encode_process(codec::decode_process(first, &again), again) == first && again == counters_in_series,
          "process record: re-encoding differs");
}

void identity(std::string_view value) {
  // Checking and decoding share one reader: they must agree.
  bool checked = true;
  try {
    codec::check_process_identity(value);
  } catch (const StoreError&) {
    checked = false;
  }
  bc::store::ProcessRecord p;
  try {
    codec::decode_process_identity(value, p);
  } catch (const StoreError&) {
    require(!checked, "process identity: checked fine but does not decode");
    throw;
  }
  require(checked, "process identity: decodes but does not check");
  std::string first;
  codec::append_process_identity(first, p);
  bc::store::ProcessRecord q;
  codec::decode_process_identity(first, q);
  std::string second;
  codec::append_process_identity(second, q);
  require(second == first, "process identity: re-encoding differs");
}

void points(std::string_view rest) {
  Header h(rest);
  const uint64_t flags = h.u64();
  const bool first_may_equal_origin = flags & 1;
  // Points of either format decode; the encoder writes the current one.
  const auto format = (flags & 2) ? codec::PointFormat::WithoutThreads : codec::PointFormat::WithThreads;
  codec::Point origin;
  origin.t = h.time();
  origin.cpu = h.u64();
  origin.rss = h.u64();
  origin.rd = h.u64();
  origin.wr = h.u64();
  origin.threads = static_cast<uint32_t>(h.u64());
  const auto decoded = codec::decode_points(rest, origin, first_may_equal_origin, format);
  std::string encoded;
  codec::encode_points(encoded, origin, decoded);
  require(codec::decode_points(encoded, origin, first_may_equal_origin) == decoded, "points: re-encoding differs");
}

void chunk(std::string_view rest) {
  Header h(rest);
  const int64_t start = h.time();
  const codec::Chunk c = codec::decode_chunk(start, rest);
  const codec::Chunk again = codec::decode_chunk(start, codec::encode_chunk(start, c));
  require(again.has_base == c.has_base && (!c.has_base || again.base == c.base) && again.points == c.points,
          "chunk: re-encoding differs");
}

void open_record(std::string_view value) {
  codec::OpenRecord r = codec::decode_open(value);
  std::vector<codec::Point> points;
  if (r.has_points) points = codec::open_points(r);
  // A record of an older format is rewritten in the current one, as the store's writer does.
  std::string storage;
  codec::upgrade_open_points(r, storage);
  require(!r.has_points || codec::open_points(r) == points, "open record: upgrading changed its points");
  // The fixed header holds times in 32 bits (the store refuses later ones), so only such records are
  // rewritten by the store.
  const auto fits = [](const codec::Point& p) { return p.t >= 0 && p.t <= UINT32_MAX; };
  if (!fits(r.base) || !fits(r.tail) || r.chunk_start < 0 || r.chunk_start > UINT32_MAX) return;
  if (r.points.size() > 0xffff) return;
  std::string encoded;
  codec::encode_open(encoded, r);
  const codec::OpenRecord again = codec::decode_open(encoded);
  const bool same_base = again.has_base == r.has_base && (!r.has_base || again.base == r.base);
  const bool same_points =
      again.has_points == r.has_points &&
      (!r.has_points || (again.tail == r.tail && again.chunk_start == r.chunk_start && again.points == r.points));
  require(same_base && same_points, "open record: re-encoding differs");
  // The store's common write: a point one second after the tail, appended in place (the store keeps the
  // tail equal to the last point; a corrupt record whose tail is not is not appended to here).
  if (r.has_points && !points.empty() && points.back() == r.tail) {
    codec::Point next = r.tail;
    next.t += 1;
    next.cpu += 10'000'000;
    std::string appended;
    if (codec::append_open(appended, encoded, next)) {
      const codec::OpenRecord grown = codec::decode_open(appended);
      require(grown.tail == next, "open record: the appended point is not the tail");
      auto all = codec::open_points(grown);
      require(!all.empty() && all.back() == next, "open record: the appended point does not decode");
    }
  }
}

void buckets(std::string_view value) {
  const codec::Buckets b = codec::decode_buckets(value);
  require(codec::decode_buckets(codec::encode_buckets(b)) == b, "buckets: re-encoding differs");
}

void job_state(std::string_view value) {
  const std::string first = codec::encode_job_state(codec::decode_job_state(value));
  require(codec::encode_job_state(codec::decode_job_state(first)) == first, "job state: re-encoding differs");
}

void process_pack(std::string_view value) {
  const codec::ProcessPack pack = codec::decode_process_pack(value);
  for (std::string_view record : pack.records) {
    try {
      (void)codec::decode_process(record);
    } catch (const StoreError&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return -1;  // not worth keeping in the corpus
  const auto kind = static_cast<Kind>(data[0] % static_cast<uint8_t>(Kind::Count));
  const std::string_view value(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (kind) {
      case Kind::Job: job(value); break;
      case Kind::Process: process(value); break;
      case Kind::ProcessIdentity: identity(value); break;
      case Kind::File: {
        const auto f = codec::decode_file(value);
        require(codec::decode_file(codec::encode_file(f)) == f, "file record: re-encoding differs");
        break;
      }
      case Kind::Connection: {
        const auto c = codec::decode_connection(value);
        require(codec::decode_connection(codec::encode_connection(c)) == c, "connection record: re-encoding differs");
        break;
      }
      case Kind::Sample: {
        const auto s = codec::decode_sample(value);
        const auto again = codec::decode_sample(codec::encode_sample(s));
        require(again.cpu_ns == s.cpu_ns && again.rss == s.rss && again.read_bytes == s.read_bytes &&
                    again.write_bytes == s.write_bytes,
                "sample: re-encoding differs");
        break;
      }
      case Kind::Points: points(value); break;
      case Kind::Chunk: chunk(value); break;
      case Kind::Open: open_record(value); break;
      case Kind::Buckets: buckets(value); break;
      case Kind::JobState: job_state(value); break;
      case Kind::ProcessPack: process_pack(value); break;
      case Kind::Count: break;
    }
  } catch (const StoreError&) {
  }
  return 0;
}
