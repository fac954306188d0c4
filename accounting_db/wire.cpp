#include "wire.hpp"

#include <algorithm>
#include <cstring>

#include "codec.hpp"

namespace bc::wire {
namespace {

namespace codec = store::codec;

using store::Batch;
using store::JobRecord;
using store::ProcessRecord;
using store::Sample;

// The store's varint codec, with every failure turned into a WireError that says what was being read.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : d_(bytes), size_(bytes.size()) {}
  template <typename Fn>
  auto read(const char* what, Fn fn) {
    try {
      return fn(d_);
    } catch (const store::StoreError& e) {
      throw WireError(std::string("malformed batch: ") + what + ": " + e.what());
    }
  }
  uint64_t u64(const char* what) { return read(what, [](codec::Decoder& d) { return d.u64(); }); }
  uint32_t u32(const char* what) { return read(what, [](codec::Decoder& d) { return d.u32(); }); }
  int64_t i64(const char* what) { return read(what, [](codec::Decoder& d) { return d.i64(); }); }
  bool flag(const char* what) {
    uint64_t v = u64(what);
    if (v > 1) throw WireError(std::string("malformed batch: ") + what + ": not 0 or 1");
    return v == 1;
  }
  std::string str(const char* what) { return read(what, [](codec::Decoder& d) { return d.str(); }); }
  std::string_view str_view(const char* what) { return read(what, [](codec::Decoder& d) { return d.str_view(); }); }
  // A count of items that each take at least one byte: never more than the bytes left, so a forged count
  // cannot make us reserve gigabytes.
  size_t count(const char* what) {
    uint64_t n = u64(what);
    if (n > size_) throw WireError(std::string("malformed batch: ") + what + " " + std::to_string(n) + " exceeds the body");
    return static_cast<size_t>(n);
  }
  bool done() const { return d_.done(); }

 private:
  codec::Decoder d_;
  size_t size_;
};

// Job and process records travel in the store's own record encoding (format-tagged, so a newer record
// format is refused by an older bcd with a clear error rather than misread).
template <typename Record, typename Decode>
Record get_record(Reader& r, const char* what, Decode decode) {
  const std::string_view bytes = r.str_view(what);  // into the body, which outlives the decode
  try {
    return decode(bytes);
  } catch (const store::StoreError& e) {
    throw WireError(std::string("malformed batch: ") + what + ": " + e.what());
  }
}

// Samples: 0 = absent, else 1 followed by the fields (series id only for the job's own sample, which
// travels as is; a process's sample belongs to the process's series).
void put_sample(codec::Encoder& e, const std::optional<Sample>& s) {
  if (!s) {
    e.u64(0);
    return;
  }
  e.u64(1);
  e.u64(s->series_id);
  e.i64(s->time_s);
  e.u64(s->cpu_ns);
  e.u64(s->rss);
  e.u64(s->read_bytes);
  e.u64(s->write_bytes);
}

std::optional<Sample> get_sample(Reader& r) {
  if (!r.flag("sample present")) return std::nullopt;
  Sample s;
  s.series_id = r.u32("sample series");
  s.time_s = r.i64("sample time");
  s.cpu_ns = r.u64("sample cpu");
  s.rss = r.u64("sample rss");
  s.read_bytes = r.u64("sample read bytes");
  s.write_bytes = r.u64("sample write bytes");
  return s;
}

}  // namespace

std::string encode_batch(const Batch& batch) {
  codec::Encoder e;
  e.u64(kBatchVersion);
  e.str(codec::encode_job(batch.job));
  put_sample(e, batch.job_sample);
  e.u64(batch.processes.size());
  for (const auto& u : batch.processes) {
    e.str(codec::encode_process(u.record));
    put_sample(e, u.sample);
  }
  e.u64(batch.files.size());
  for (const auto& f : batch.files) e.str(codec::encode_file(f));
  e.u64(batch.connections.size());
  for (const auto& c : batch.connections) e.str(codec::encode_connection(c));
  return e.bytes();
}

Batch decode_batch(std::string_view bytes) {
  Reader r(bytes);
  const uint64_t version = r.u64("version");
  if (version != kBatchVersion)
    throw WireError("batch format version " + std::to_string(version) + " is not supported (this bcd reads " +
                    std::to_string(kBatchVersion) + ")");
  Batch b;
  b.job = get_record<JobRecord>(r, "job record", codec::decode_job);
  b.job_sample = get_sample(r);
  const size_t n = r.count("process count");
  b.processes.reserve(std::min<size_t>(n, 4096));
  for (size_t i = 0; i < n; ++i) {
    store::ProcessUpdate u;
    u.record = get_record<ProcessRecord>(r, "process record", [](std::string_view v) { return codec::decode_process(v); });
    // A batch is one job on one node, as write_batch treats it.
    u.record.job_id = b.job.job_id;
    u.record.node = b.job.node;
    u.sample = get_sample(r);
    b.processes.push_back(std::move(u));
  }
  // Files and connections are increments the store adds up: they belong to this batch's job and node.
  const size_t files = r.count("file count");
  b.files.reserve(std::min<size_t>(files, 4096));
  for (size_t i = 0; i < files; ++i) {
    b.files.push_back(get_record<store::FileRecord>(r, "file record", codec::decode_file));
    b.files.back().job_id = b.job.job_id;
    b.files.back().node = b.job.node;
  }
  const size_t connections = r.count("connection count");
  b.connections.reserve(std::min<size_t>(connections, 4096));
  for (size_t i = 0; i < connections; ++i) {
    b.connections.push_back(get_record<store::ConnectionRecord>(r, "connection record", codec::decode_connection));
    b.connections.back().job_id = b.job.job_id;
    b.connections.back().node = b.job.node;
  }
  if (!r.done()) throw WireError("malformed batch: trailing bytes after the last connection");
  return b;
}

std::string encode_bundle(const std::vector<store::SpooledBatch>& batches) {
  codec::Encoder e;
  e.u64(batches.size());
  for (const auto& b : batches) {
    e.str(b.id.node);
    e.u64(b.id.job_id);
    e.u64(b.id.monitor_id);
    e.u64(b.id.seq);
    e.str(b.wire);
  }
  return std::string(kBundleMagic, sizeof kBundleMagic) + e.bytes();
}

std::vector<BatchView> decode_bundle_views(std::string_view bytes) {
  if (bytes.size() < sizeof kBundleMagic || std::memcmp(bytes.data(), kBundleMagic, sizeof kBundleMagic) != 0)
    throw WireError("not a bubble-chamber batch bundle (bad magic; expected BCW1)");
  Reader r(bytes.substr(sizeof kBundleMagic));
  const size_t n = r.count("batch count");
  std::vector<BatchView> out;
  out.reserve(std::min<size_t>(n, 4096));
  for (size_t i = 0; i < n; ++i) {
    BatchView b;
    b.id.node = r.str("batch node");
    b.id.job_id = r.u64("batch job");
    b.id.monitor_id = r.u64("batch monitor");
    b.id.seq = r.u64("batch seq");
    b.wire = r.str_view("batch bytes");
    out.push_back(std::move(b));
  }
  if (!r.done()) throw WireError("malformed bundle: trailing bytes after the last batch");
  return out;
}

std::vector<store::SpooledBatch> decode_bundle(std::string_view bytes) {
  std::vector<store::SpooledBatch> out;
  for (auto& v : decode_bundle_views(bytes)) out.push_back({std::move(v.id), std::string(v.wire)});
  return out;
}

}  // namespace bc::wire
