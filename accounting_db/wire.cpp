#include "accounting_db/wire.hpp"

#include <algorithm>
#include <cstring>

#include "accounting_db/codec.hpp"

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
  uint64_t u64(const char* what) {
    return read(what, [](codec::Decoder& d) { return d.u64(); });
  }
  uint32_t u32(const char* what) {
    return read(what, [](codec::Decoder& d) { return d.u32(); });
  }
  int64_t i64(const char* what) {
    return read(what, [](codec::Decoder& d) { return d.i64(); });
  }
  bool flag(const char* what) {
    uint64_t v = u64(what);
    if (v > 1) throw WireError(std::string("malformed batch: ") + what + ": not 0 or 1");
    return v == 1;
  }
  std::string str(const char* what) {
    return read(what, [](codec::Decoder& d) { return d.str(); });
  }
  std::string_view str_view(const char* what) {
    return read(what, [](codec::Decoder& d) { return d.str_view(); });
  }
  // A count of items that each take at least one byte: never more than the bytes left, so a forged count
  // cannot make us reserve gigabytes.
  size_t count(const char* what) {
    uint64_t n = u64(what);
    if (n > size_)
      throw WireError(std::string("malformed batch: ") + what + " " + std::to_string(n) + " exceeds the body");
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

// A sample's time and counters, and (version 4) its thread count.
void put_time_and_counters(codec::Encoder& e, const Sample& s) {
  e.i64(s.time_s);
  e.u64(s.cpu_ns);
  e.u64(s.rss);
  e.u64(s.read_bytes);
  e.u64(s.write_bytes);
  e.u64(s.threads);
}

void get_threads(Reader& r, Sample& s, uint64_t version) {
  if (version >= 4) s.threads = r.u32("sample threads");
}

void get_time_and_counters(Reader& r, Sample& s, uint64_t version) {
  s.time_s = r.i64("sample time");
  s.cpu_ns = r.u64("sample cpu");
  s.rss = r.u64("sample rss");
  s.read_bytes = r.u64("sample read bytes");
  s.write_bytes = r.u64("sample write bytes");
  get_threads(r, s, version);
}

// The job's sample (and a process's in version 2): 0 = absent, else 1, its series id, time and counters.
void put_sample(codec::Encoder& e, const std::optional<Sample>& s) {
  e.u64(s ? 1 : 0);
  if (!s) return;
  e.u64(s->series_id);
  put_time_and_counters(e, *s);
}

std::optional<Sample> get_sample(Reader& r, uint64_t version) {
  if (!r.flag("sample present")) return std::nullopt;
  Sample s;
  s.series_id = r.u32("sample series");
  get_time_and_counters(r, s, version);
  return s;
}

// A process's sample (version 3): 0 = absent, 1 = time and counters, 2 = time only, the counters being its
// record's (the usual case: a running process's record carries its latest sample). Its series is the
// record's, so none is sent. Version 4 adds the thread count to both.
void put_process_sample(codec::Encoder& e, const std::optional<Sample>& s, const ProcessRecord& p) {
  if (!s) {
    e.u64(0);
  } else if (s->cpu_ns == p.cpu_ns && s->rss == p.rss && s->read_bytes == p.read_bytes &&
             s->write_bytes == p.write_bytes) {
    e.u64(2);
    e.i64(s->time_s);
    e.u64(s->threads);
  } else {
    e.u64(1);
    put_time_and_counters(e, *s);
  }
}

std::optional<Sample> get_process_sample(Reader& r, const ProcessRecord& p, uint64_t version) {
  const uint64_t kind = r.u64("process sample kind");
  if (kind == 0) return std::nullopt;
  if (kind > 2) throw WireError("malformed batch: process sample kind " + std::to_string(kind));
  Sample s;  // its series_id stays 0: the store uses the record's series
  if (kind == 1) {
    get_time_and_counters(r, s, version);
    return s;
  }
  s.time_s = r.i64("process sample time");
  get_threads(r, s, version);
  s.cpu_ns = p.cpu_ns;
  s.rss = p.rss;
  s.read_bytes = p.read_bytes;
  s.write_bytes = p.write_bytes;
  return s;
}

// A GPU sample (version 5): its time and figures; a device's also its series id.
void put_gpu_figures(codec::Encoder& e, const store::GpuSample& g) {
  e.i64(g.time_s);
  e.u64(g.busy_ns);
  e.u64(g.memory);
  e.u64(g.energy_mj);
}

store::GpuSample get_gpu_figures(Reader& r) {
  store::GpuSample g;
  g.time_s = r.i64("GPU sample time");
  g.busy_ns = r.u64("GPU sample busy");
  g.memory = r.u64("GPU sample memory");
  g.energy_mj = r.u64("GPU sample energy");
  return g;
}

}  // namespace

std::string encode_batch(const Batch& batch) {
  codec::Encoder e;
  e.u64(kBatchVersion);
  e.str(codec::encode_job(batch.job));
  put_sample(e, batch.job_sample);
  e.u64(batch.processes.size());
  std::string identity;
  for (const auto& u : batch.processes) {
    const ProcessRecord& p = u.record;
    e.u64(p.pid);
    e.u64(p.start_ticks);
    e.u64(p.series_id);
    e.i64(p.end_ms);
    e.u64(p.cpu_ns);
    e.u64(p.rss);
    e.u64(p.read_bytes);
    e.u64(p.write_bytes);
    if (u.encoded_identity.empty()) {
      identity.clear();
      codec::append_process_identity(identity, p);
      e.str(identity);
    } else {
      e.str(u.encoded_identity);
    }
    put_process_sample(e, u.sample, p);
    e.u64(u.gpu_sample ? 1 : 0);
    if (u.gpu_sample) put_gpu_figures(e, *u.gpu_sample);
  }
  e.u64(batch.files.size());
  for (const auto& f : batch.files) e.str(codec::encode_file(f));
  e.u64(batch.connections.size());
  for (const auto& c : batch.connections) e.str(codec::encode_connection(c));
  e.u64(batch.gpu_samples.size());
  for (const auto& g : batch.gpu_samples) {
    e.u64(g.series_id);
    put_gpu_figures(e, g);
  }
  return e.bytes();
}

Batch decode_batch(std::string_view bytes, Identity identity, const Batch* previous) {
  Reader r(bytes);
  const uint64_t version = r.u64("version");
  if (version < 2 || version > kBatchVersion)
    throw WireError("batch format version " + std::to_string(version) + " is not supported (this bcd reads 2 to " +
                    std::to_string(kBatchVersion) + ")");
  Batch b;
  b.job = get_record<JobRecord>(r, "job record", codec::decode_job);
  b.job_sample = get_sample(r, version);
  const size_t n = r.count("process count");
  b.processes.reserve(std::min<size_t>(n, 4096));
  for (size_t i = 0; i < n; ++i) {
    store::ProcessUpdate& u = b.processes.emplace_back();
    ProcessRecord& p = u.record;
    if (version == 2) {
      p = get_record<ProcessRecord>(r, "process record", [](std::string_view v) { return codec::decode_process(v); });
      u.sample = get_sample(r, version);
    } else {
      p.pid = r.u32("process pid");
      p.start_ticks = r.u64("process start");
      p.series_id = r.u32("process series");
      p.end_ms = r.i64("process end");
      p.cpu_ns = r.u64("process cpu");
      p.rss = r.u64("process rss");
      p.read_bytes = r.u64("process read bytes");
      p.write_bytes = r.u64("process write bytes");
      const std::string_view encoded = r.str_view("process identity");
      try {
        if (identity == Identity::Deferred) {
          // (Not an empty one: a version 2 batch's processes have none, and an empty identity is malformed.)
          const bool checked = previous && i < previous->processes.size() && !encoded.empty() &&
                               previous->processes[i].encoded_identity == encoded;
          if (!checked) codec::check_process_identity(encoded);
          u.encoded_identity = encoded;
        } else {
          codec::decode_process_identity(encoded, p);
        }
      } catch (const store::StoreError& e) {
        throw WireError(std::string("malformed batch: process identity: ") + e.what());
      }
      u.sample = get_process_sample(r, p, version);
      if (version >= 5 && r.flag("GPU sample present")) u.gpu_sample = get_gpu_figures(r);
    }
    // Ids past the last are the GPU series', and writing on would wrap the job's series counter to 0.
    if (p.series_id > store::kLastSeriesId)
      throw WireError("malformed batch: process series id " + std::to_string(p.series_id) + " out of range");
    // A batch is one job on one node, as write_batch treats it.
    p.job_id = b.job.job_id;
    p.node = b.job.node;
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
  if (version >= 5) {
    const size_t gpus = r.count("GPU sample count");
    for (size_t i = 0; i < gpus; ++i) {
      const uint32_t series = r.u32("GPU sample series");
      // A GPU's series is that of its place in the job record's list.
      const std::optional<size_t> position = store::gpu_device_position(series);
      if (!position || *position >= b.job.gpus.size())
        throw WireError("malformed batch: GPU series " + std::to_string(series) + " names no GPU of the job record");
      b.gpu_samples.push_back(get_gpu_figures(r));
      b.gpu_samples.back().series_id = series;
    }
  }
  if (!r.done()) throw WireError("malformed batch: trailing bytes after the last connection");
  if (const std::string name = store::oversized_name(b); !name.empty())
    throw WireError("malformed batch: its " + name + " is past the store's bound");
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
    if (b.id.node.size() > store::kMaxNodeNameBytes)
      throw WireError("malformed bundle: a node name of " + std::to_string(b.id.node.size()) + " bytes");
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
