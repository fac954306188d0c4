// The wire format of shipped batches and the node store's outbox, dedup and API-key tables.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "accounting_db/codec.hpp"
#include "accounting_db/store.hpp"
#include "accounting_db/wire.hpp"
#include "store_test_util.hpp"

namespace bc {
namespace {

using store::Batch;
using store::testing::TempDir;
using store::testing::test_options;

// Every field set to a distinct value that needs more than one varint byte where it can.
Batch full_batch() {
  Batch b;
  auto& j = b.job;
  j.job_id = 0x8000'0000'1234'5678ULL;
  j.node = "node-01";
  j.uid = 4'000'000'000U;
  j.user = "alice";
  j.steps = {0, 1, store::kStepBatch, store::kStepExtern};
  j.start_ms = 1'700'000'000'123;
  j.end_ms = -5;  // zigzag: a negative survives
  j.last_sample_ms = 1'700'000'999'000;
  j.cgroup_version = 2;
  j.has_cgroup_cpu = true;
  j.cgroup_cpu_ns = 123'456'789'012ULL;
  j.has_cgroup_memory = true;
  j.cgroup_mem_current = 1ULL << 33;
  j.cgroup_mem_peak = (1ULL << 34) + 7;
  j.has_cgroup_io = false;
  j.cgroup_read_bytes = 99;
  j.cgroup_write_bytes = UINT64_MAX;
  j.max_rss_sum = 555'555;
  j.sample_count = 77;
  j.monitor_cpu_ns = 31;
  j.monitor_max_rss = 8 << 20;
  j.events_unavailable = "events unavailable: no BTF";
  j.lost = store::EventLoss{1, 2, 3, 4, 5, 6};
  j.lost_events = j.lost.total();
  j.job_name = "my job";
  j.alloc_cpus = 48;
  j.mem_limit_bytes = 1ULL << 37;
  j.container_id = std::string(64, 'a');
  j.container_name = "web";
  j.container_image = "busybox:test";
  j.array_job_id = 4'000'000'001U;
  j.array_task_id = 70'000;
  j.unshipped_batches = 1'000;
  j.unshipped_samples = 51'000;
  b.job_sample = store::Sample{0, 1'700'000'999, 5, 6, 7, 8, 4'000'000'000U};
  for (uint32_t i = 0; i < 3; ++i) {
    store::ProcessUpdate u;
    auto& p = u.record;
    p.job_id = j.job_id;
    p.node = j.node;
    p.pid = 1000 + i;
    p.ppid = 999;
    p.step = i == 2 ? store::kStepBatch : i;
    p.start_ticks = 12'345'678'901ULL + i;
    p.start_ms = 1'700'000'000'500 + i;
    p.end_ms = i == 1 ? 1'700'000'100'000 : 0;
    p.series_id = i + 1;
    p.command = "cmd" + std::to_string(i);
    p.exe = "/usr/bin/cmd" + std::to_string(i);
    p.argv = {"cmd", "--flag", std::string("with\0nul", 8), ""};
    p.cpu_ns = 1'000'000'000ULL * (i + 1);
    p.max_rss = 1ULL << (20 + i);
    p.rss = 1ULL << (19 + i);
    p.read_bytes = 4096ULL * i;
    p.write_bytes = UINT64_MAX - i;
    p.exited = i == 1;
    p.exit_code = i == 1 ? -1 : 0;
    p.exit_signal = i == 1 ? 9 : 0;
    p.core_dumped = i == 1;
    p.argv_truncated = i == 2;
    p.exact = i != 0;
    // Process 0's sample repeats its record's counters (sent as its time alone), process 2's does not.
    if (i != 1)
      u.sample =
          store::Sample{0, 1'700'000'999, p.cpu_ns + (i == 2 ? 5 : 0), p.rss, p.read_bytes, p.write_bytes, 7 + i};
    b.processes.push_back(u);
  }
  store::FileRecord f;
  f.job_id = j.job_id;
  f.node = j.node;
  f.pid = 1001;
  f.start_ticks = 12'345'678'902ULL;
  f.path = "/scratch/out.dat";
  f.flags = store::kFileWrite | store::kFileCreate;
  f.first_ms = 1'700'000'000'600;
  f.opens = 3;
  f.failed = 1;
  f.read_bytes = 0;
  f.write_bytes = 1ULL << 33;
  b.files = {f, f};
  b.files[1].path = "/etc/passwd";
  b.files[1].flags = store::kFileRead;
  store::ConnectionRecord c;
  c.job_id = j.job_id;
  c.node = j.node;
  c.pid = 1002;
  c.start_ticks = 12'345'678'903ULL;
  c.address = "::1";
  c.port = 65535;
  c.protocol = "tcp";
  c.first_ms = 1'700'000'000'700;
  c.count = 2;
  c.failed = 1;
  b.connections = {c};
  // One GPU, with a point of its own and one of process 0 on it.
  store::JobGpu g;
  g.uuid = "GPU-8c1b";
  g.minor = 3;
  g.allocated = true;
  g.memory_total = 80ULL << 30;
  j.gpus = {g};
  b.gpu_samples = {{store::gpu_device_series(0), 1'700'000'999, 9'000'000'000, 40ULL << 30, 2'500'000}};
  b.processes[0].gpu_sample = store::GpuSample{0, 1'700'000'999, 4'000'000'000, 12ULL << 30, 0};
  return b;
}

void expect_same(const Batch& a, const Batch& b) {
  const auto &x = a.job, &y = b.job;
  EXPECT_EQ(x.job_id, y.job_id);
  EXPECT_EQ(x.node, y.node);
  EXPECT_EQ(x.uid, y.uid);
  EXPECT_EQ(x.user, y.user);
  EXPECT_EQ(x.steps, y.steps);
  EXPECT_EQ(x.start_ms, y.start_ms);
  EXPECT_EQ(x.end_ms, y.end_ms);
  EXPECT_EQ(x.last_sample_ms, y.last_sample_ms);
  EXPECT_EQ(x.cgroup_version, y.cgroup_version);
  EXPECT_EQ(x.has_cgroup_cpu, y.has_cgroup_cpu);
  EXPECT_EQ(x.cgroup_cpu_ns, y.cgroup_cpu_ns);
  EXPECT_EQ(x.has_cgroup_memory, y.has_cgroup_memory);
  EXPECT_EQ(x.cgroup_mem_current, y.cgroup_mem_current);
  EXPECT_EQ(x.cgroup_mem_peak, y.cgroup_mem_peak);
  EXPECT_EQ(x.has_cgroup_io, y.has_cgroup_io);
  EXPECT_EQ(x.cgroup_read_bytes, y.cgroup_read_bytes);
  EXPECT_EQ(x.cgroup_write_bytes, y.cgroup_write_bytes);
  EXPECT_EQ(x.max_rss_sum, y.max_rss_sum);
  EXPECT_EQ(x.sample_count, y.sample_count);
  EXPECT_EQ(x.monitor_cpu_ns, y.monitor_cpu_ns);
  EXPECT_EQ(x.monitor_max_rss, y.monitor_max_rss);
  EXPECT_EQ(x.events_unavailable, y.events_unavailable);
  EXPECT_EQ(x.lost_events, y.lost_events);
  EXPECT_EQ(x.lost, y.lost);
  EXPECT_EQ(x.job_name, y.job_name);
  EXPECT_EQ(x.alloc_cpus, y.alloc_cpus);
  EXPECT_EQ(x.mem_limit_bytes, y.mem_limit_bytes);
  EXPECT_EQ(x.container_id, y.container_id);
  EXPECT_EQ(x.container_name, y.container_name);
  EXPECT_EQ(x.container_image, y.container_image);
  EXPECT_EQ(x.array_job_id, y.array_job_id);
  EXPECT_EQ(x.array_task_id, y.array_task_id);
  EXPECT_EQ(x.unshipped_batches, y.unshipped_batches);
  EXPECT_EQ(x.unshipped_samples, y.unshipped_samples);
  auto same_sample = [](const std::optional<store::Sample>& s, const std::optional<store::Sample>& t) {
    ASSERT_EQ(s.has_value(), t.has_value());
    if (!s) return;
    EXPECT_EQ(s->series_id, t->series_id);
    EXPECT_EQ(s->time_s, t->time_s);
    EXPECT_EQ(s->cpu_ns, t->cpu_ns);
    EXPECT_EQ(s->rss, t->rss);
    EXPECT_EQ(s->read_bytes, t->read_bytes);
    EXPECT_EQ(s->write_bytes, t->write_bytes);
    EXPECT_EQ(s->threads, t->threads);
  };
  same_sample(a.job_sample, b.job_sample);
  ASSERT_EQ(a.processes.size(), b.processes.size());
  for (size_t i = 0; i < a.processes.size(); ++i) {
    const auto &p = a.processes[i].record, &q = b.processes[i].record;
    EXPECT_EQ(p.job_id, q.job_id);
    EXPECT_EQ(p.node, q.node);
    EXPECT_EQ(p.pid, q.pid);
    EXPECT_EQ(p.ppid, q.ppid);
    EXPECT_EQ(p.step, q.step);
    EXPECT_EQ(p.start_ticks, q.start_ticks);
    EXPECT_EQ(p.start_ms, q.start_ms);
    EXPECT_EQ(p.end_ms, q.end_ms);
    EXPECT_EQ(p.series_id, q.series_id);
    EXPECT_EQ(p.command, q.command);
    EXPECT_EQ(p.exe, q.exe);
    EXPECT_EQ(p.argv, q.argv);
    EXPECT_EQ(p.cpu_ns, q.cpu_ns);
    EXPECT_EQ(p.max_rss, q.max_rss);
    EXPECT_EQ(p.rss, q.rss);
    EXPECT_EQ(p.read_bytes, q.read_bytes);
    EXPECT_EQ(p.write_bytes, q.write_bytes);
    EXPECT_EQ(p.exited, q.exited);
    EXPECT_EQ(p.exit_code, q.exit_code);
    EXPECT_EQ(p.exit_signal, q.exit_signal);
    EXPECT_EQ(p.core_dumped, q.core_dumped);
    EXPECT_EQ(p.argv_truncated, q.argv_truncated);
    EXPECT_EQ(p.exact, q.exact);
    same_sample(a.processes[i].sample, b.processes[i].sample);
    EXPECT_EQ(a.processes[i].gpu_sample, b.processes[i].gpu_sample);
  }
  EXPECT_EQ(x.gpus, y.gpus);
  EXPECT_EQ(a.gpu_samples, b.gpu_samples);
  EXPECT_EQ(a.files, b.files);  // FileRecord and ConnectionRecord compare every field
  EXPECT_EQ(a.connections, b.connections);
}

TEST(Wire, BatchRoundTripsEveryField) {
  const Batch b = full_batch();
  expect_same(b, wire::decode_batch(wire::encode_batch(b)));
  const Batch empty;
  expect_same(empty, wire::decode_batch(wire::encode_batch(empty)));
}

// bcd's decoding: a process's identity stays encoded (checked, not decoded) and decodes to the same fields.
TEST(Wire, DeferredIdentityDecodesToTheSameRecord) {
  const Batch b = full_batch();
  const std::string bytes = wire::encode_batch(b);
  Batch deferred = wire::decode_batch(bytes, wire::Identity::Deferred);
  ASSERT_EQ(deferred.processes.size(), b.processes.size());
  for (auto& u : deferred.processes) {
    ASSERT_FALSE(u.encoded_identity.empty());
    EXPECT_GE(u.encoded_identity.data(), bytes.data());  // a view into the body, not a copy
    EXPECT_LE(u.encoded_identity.data() + u.encoded_identity.size(), bytes.data() + bytes.size());
    EXPECT_TRUE(u.record.exe.empty());
    store::codec::decode_process_identity(u.encoded_identity, u.record);
  }
  expect_same(b, deferred);
  // Re-encoding a deferred batch sends the identity bytes as they came.
  EXPECT_EQ(wire::encode_batch(wire::decode_batch(bytes, wire::Identity::Deferred)), bytes);
}

// A malformed identity is refused when the body is decoded (a 400 for that request), never later inside the
// store's write, where it would fail every request sharing the commit.
TEST(Wire, DeferredDecodingChecksTheIdentity) {
  Batch b = full_batch();
  b.processes.resize(1);
  b.processes[0].record.max_threads = 3;
  b.processes[0].record.task = 5;
  b.processes[0].record.gpu_memory_max = 1;
  b.processes[0].record.gpu_sm_ns = 2;
  std::string with_gpu;
  store::codec::append_process_identity(with_gpu, b.processes[0].record);
  // It ends with the exit signal, the most threads, the task plus one, the GPU memory and the SM time: one byte
  // each here. Without the last two, it is what a node before GPU figures sends.
  ASSERT_EQ(with_gpu.substr(with_gpu.size() - 4), std::string("\x03\x06\x01\x02"));
  std::string identity = with_gpu.substr(0, with_gpu.size() - 2);
  store::ProcessRecord gpu_record;
  store::codec::decode_process_identity(with_gpu, gpu_record);
  EXPECT_EQ(gpu_record.gpu_memory_max, 1u);
  EXPECT_EQ(gpu_record.gpu_sm_ns, 2u);
  const std::string memory_without_sm = with_gpu.substr(0, with_gpu.size() - 1);  // the view below points into it
  b.processes[0].encoded_identity = memory_without_sm;
  EXPECT_THROW(wire::decode_batch(wire::encode_batch(b), wire::Identity::Deferred), wire::WireError);
  const size_t signal_at = identity.size() - 3;
  identity[signal_at] = 0x7f;  // exit signal 127 is the largest allowed: still valid
  b.processes[0].encoded_identity = identity;
  EXPECT_NO_THROW(wire::decode_batch(wire::encode_batch(b), wire::Identity::Deferred));
  std::string bad_signal = identity;
  bad_signal[signal_at] = static_cast<char>(0xc0);
  bad_signal.insert(signal_at + 1, 1, '\x01');  // the varint 192: no such signal
  b.processes[0].encoded_identity = bad_signal;
  EXPECT_THROW(wire::decode_batch(wire::encode_batch(b), wire::Identity::Deferred), wire::WireError);
  std::string trailing = identity + '\0';
  b.processes[0].encoded_identity = trailing;
  EXPECT_THROW(wire::decode_batch(wire::encode_batch(b), wire::Identity::Deferred), wire::WireError);
  std::string one_of_two = identity.substr(0, identity.size() - 1);  // threads without the task
  b.processes[0].encoded_identity = one_of_two;
  EXPECT_THROW(wire::decode_batch(wire::encode_batch(b), wire::Identity::Deferred), wire::WireError);
  // A node built before threads and tasks sends neither: read as none.
  const std::string older = identity.substr(0, identity.size() - 2);
  b.processes[0].encoded_identity = older;
  const std::string older_bytes = wire::encode_batch(b);  // a deferred identity points into these
  const Batch from_older = wire::decode_batch(older_bytes, wire::Identity::Deferred);
  store::ProcessRecord r;
  store::codec::decode_process_identity(from_older.processes[0].encoded_identity, r);
  EXPECT_EQ(r.max_threads, 0u);
  EXPECT_EQ(r.task, store::kTaskUnknown);
  store::codec::decode_process_identity(identity, r);
  EXPECT_EQ(r.max_threads, 3u);
  EXPECT_EQ(r.task, 5u);
  // After a batch whose identity was good, a changed identity is checked again.
  b.processes[0].encoded_identity = identity;
  const std::string good_bytes = wire::encode_batch(b);
  const Batch good = wire::decode_batch(good_bytes, wire::Identity::Deferred);
  b.processes[0].encoded_identity = bad_signal;
  EXPECT_THROW(wire::decode_batch(wire::encode_batch(b), wire::Identity::Deferred, &good), wire::WireError);
  b.processes[0].encoded_identity = identity;
  const std::string again = wire::encode_batch(b);
  EXPECT_EQ(wire::decode_batch(again, wire::Identity::Deferred, &good).processes[0].encoded_identity, identity);
}

// The batch as a version without GPU samples carries it.
Batch without_gpu_samples(Batch b) {
  b.gpu_samples.clear();
  for (auto& u : b.processes) u.gpu_sample.reset();
  return b;
}

// The batch as a version without thread counts in samples (nor GPU samples) carries it.
Batch without_thread_counts(Batch b) {
  if (b.job_sample) b.job_sample->threads = 0;
  for (auto& u : b.processes)
    if (u.sample) u.sample->threads = 0;
  return without_gpu_samples(b);
}

// A batch as versions 3 and 4 encoded it, built here byte by byte: 4 is 3 with each sample's thread count.
std::string encode_version(const Batch& b, uint64_t version) {
  store::codec::Encoder e;
  auto counters = [&](const store::Sample& s) {
    e.i64(s.time_s);
    for (uint64_t v : {s.cpu_ns, s.rss, s.read_bytes, s.write_bytes}) e.u64(v);
    if (version >= 4) e.u64(s.threads);
  };
  e.u64(version);
  e.str(store::codec::encode_job(b.job));
  e.u64(1);
  e.u64(b.job_sample->series_id);
  counters(*b.job_sample);
  e.u64(b.processes.size());
  for (const auto& u : b.processes) {
    const auto& p = u.record;
    for (uint64_t v : {uint64_t{p.pid}, p.start_ticks, uint64_t{p.series_id}}) e.u64(v);
    e.i64(p.end_ms);
    for (uint64_t v : {p.cpu_ns, p.rss, p.read_bytes, p.write_bytes}) e.u64(v);
    std::string identity;
    store::codec::append_process_identity(identity, p);
    e.str(identity);
    if (!u.sample) {
      e.u64(0);
    } else if (u.sample->cpu_ns == p.cpu_ns) {
      e.u64(2);  // its time only
      e.i64(u.sample->time_s);
      if (version >= 4) e.u64(u.sample->threads);
    } else {
      e.u64(1);
      counters(*u.sample);
    }
  }
  e.u64(b.files.size());
  for (const auto& f : b.files) e.str(store::codec::encode_file(f));
  e.u64(b.connections.size());
  for (const auto& c : b.connections) e.str(store::codec::encode_connection(c));
  return e.bytes();
}

// Version 2 (each process as a whole store record) is what a node spooled before the upgrade: still read.
TEST(Wire, Version2BatchesAreStillRead) {
  const Batch b = without_thread_counts(full_batch());
  store::codec::Encoder e;
  auto sample = [&e](const std::optional<store::Sample>& s) {
    e.u64(s ? 1 : 0);
    if (!s) return;
    e.u64(s->series_id);
    e.i64(s->time_s);
    e.u64(s->cpu_ns);
    e.u64(s->rss);
    e.u64(s->read_bytes);
    e.u64(s->write_bytes);
  };
  e.u64(2);
  e.str(store::codec::encode_job(b.job));
  sample(b.job_sample);
  e.u64(b.processes.size());
  for (const auto& u : b.processes) {
    e.str(store::codec::encode_process(u.record));
    sample(u.sample);
  }
  e.u64(b.files.size());
  for (const auto& f : b.files) e.str(store::codec::encode_file(f));
  e.u64(b.connections.size());
  for (const auto& c : b.connections) e.str(store::codec::encode_connection(c));
  expect_same(b, wire::decode_batch(e.bytes()));
  const Batch v2 = wire::decode_batch(e.bytes(), wire::Identity::Deferred);
  expect_same(b, v2);  // v2 records come whole: no identity left encoded

  // A version 3 batch after it whose process has an empty identity is refused: the empty identity of the
  // v2 batch's process must not pass for one checked before.
  store::codec::Encoder v3;
  v3.u64(3);
  v3.str(store::codec::encode_job(b.job));
  v3.u64(0);  // no job sample
  v3.u64(1);  // one process: pid, start, series, end, four counters, an empty identity, no sample
  for (uint64_t v : {1000, 5, 1, 0, 0, 0, 0, 0}) v3.u64(v);
  v3.str("");
  v3.u64(0);
  v3.u64(0);  // no files
  v3.u64(0);  // no connections
  EXPECT_THROW(wire::decode_batch(v3.bytes(), wire::Identity::Deferred, &v2), wire::WireError);
  EXPECT_THROW(wire::decode_batch(v3.bytes(), wire::Identity::Deferred), wire::WireError);
}

// Version 3 is version 4 without the samples' thread counts: read, the counts 0.
TEST(Wire, Version3BatchesAreReadWithoutThreadCounts) {
  const Batch b = without_thread_counts(full_batch());
  expect_same(b, wire::decode_batch(encode_version(b, 3)));
  // And a version 4 batch carries them, whichever way a process's sample travels.
  const Batch v4 = wire::decode_batch(wire::encode_batch(full_batch()));
  EXPECT_EQ(v4.job_sample->threads, 4'000'000'000U);
  EXPECT_EQ(v4.processes[0].sample->threads, 7U) << "a sample sent as its time";
  EXPECT_EQ(v4.processes[2].sample->threads, 9U) << "a sample sent with its counters";
}

// Version 4 is version 5 without GPU samples: read, with none.
TEST(Wire, Version4BatchesAreReadWithoutGpuSamples) {
  const Batch b = without_gpu_samples(full_batch());
  expect_same(b, wire::decode_batch(encode_version(b, 4)));
  // Version 5 carries them: the GPU's and process 0's.
  const Batch v5 = wire::decode_batch(wire::encode_batch(full_batch()));
  EXPECT_EQ(v5.gpu_samples.size(), 1U);
  EXPECT_TRUE(v5.processes[0].gpu_sample);
  EXPECT_FALSE(v5.processes[1].gpu_sample);
}

// A GPU sample's series must be that of a GPU the batch's job record lists, or it could write into a process's.
TEST(Wire, GpuSeriesOfNoListedGpuAreRefused) {
  for (uint32_t series : {store::gpu_device_series(1), store::kLastSeriesId, store::gpu_series_of_process(1), 0U}) {
    Batch b = full_batch();
    b.gpu_samples[0].series_id = series;
    EXPECT_THROW(
        try { wire::decode_batch(wire::encode_batch(b)); } catch (const wire::WireError& e) {
          EXPECT_NE(std::string(e.what()).find("names no GPU of the job record"), std::string::npos) << e.what();
          throw;
        },
        wire::WireError)
        << series;
  }
}

// Ids past the last process series are GPU series, and the last would wrap the job's series counter to 0, the
// job's own series: a process naming one is refused (a 400).
TEST(Wire, SeriesIdsPastTheLastAreRefused) {
  Batch b = full_batch();
  b.processes[0].record.series_id = store::kLastSeriesId;
  EXPECT_EQ(wire::decode_batch(wire::encode_batch(b)).processes[0].record.series_id, store::kLastSeriesId);
  for (uint32_t series : {store::kFirstGpuDeviceSeriesId, store::gpu_series_of_process(1), UINT32_MAX}) {
    b.processes[0].record.series_id = series;
    for (auto identity : {wire::Identity::Decoded, wire::Identity::Deferred})
      EXPECT_THROW(
          try { wire::decode_batch(wire::encode_batch(b), identity); } catch (const wire::WireError& e) {
            EXPECT_NE(std::string(e.what()).find("series id " + std::to_string(series) + " out of range"),
                      std::string::npos)
                << e.what();
            throw;
          },
          wire::WireError);
  }
}

// Names past the store's bounds are refused at decode (bcd's 400 for that request), before any group commit.
TEST(Wire, NamesPastTheirBoundsAreRefused) {
  Batch b = full_batch();
  b.job.node = std::string(store::kMaxNodeNameBytes, 'n');
  b.job.job_name = std::string(store::kMaxJobNameBytes, 'j');
  b.files.at(0).path = "/" + std::string(store::kMaxPathBytes - 1, 'p');
  EXPECT_EQ(wire::decode_batch(wire::encode_batch(b)).job.node, b.job.node);  // the longest allowed pass
  const auto refused = [](const Batch& bad, const std::string& what) {
    try {
      wire::decode_batch(wire::encode_batch(bad));
      ADD_FAILURE() << what << " was accepted";
    } catch (const wire::WireError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  Batch node = b;
  node.job.node += "n";
  refused(node, "node name of 256 bytes");
  Batch job_name = b;
  job_name.job.job_name += "j";
  refused(job_name, "job name of 1025 bytes");
  Batch path = b;
  path.files.at(0).path += "p";
  refused(path, "file path of 16385 bytes");
  EXPECT_THROW(wire::decode_bundle(wire::encode_bundle({{{std::string(600, 'n'), 1, 1, 1}, std::string()}})),
               wire::WireError);
}

TEST(Wire, BundleRoundTrip) {
  std::vector<store::SpooledBatch> in = {{{"n1", 42, 7, 1}, wire::encode_batch(full_batch())},
                                         {{"n2", 43, UINT64_MAX, 1ULL << 40}, std::string()}};
  auto out = wire::decode_bundle(wire::encode_bundle(in));
  ASSERT_EQ(out.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(out[i].id, in[i].id);
    EXPECT_EQ(out[i].wire, in[i].wire);
  }
  EXPECT_TRUE(wire::decode_bundle(wire::encode_bundle({})).empty());
}

TEST(Wire, RefusesOtherVersionsAndTrailingBytes) {
  std::string bytes = wire::encode_batch(full_batch());
  std::string v9 = bytes;
  v9[0] = 9;
  EXPECT_THROW(
      try { wire::decode_batch(v9); } catch (const wire::WireError& e) {
        EXPECT_NE(std::string(e.what()).find("version 9"), std::string::npos) << e.what();
        throw;
      },
      wire::WireError);
  EXPECT_THROW(wire::decode_batch(bytes + "x"), wire::WireError);
  EXPECT_THROW(wire::decode_bundle("XXXX"), wire::WireError);
  EXPECT_THROW(wire::decode_bundle(""), wire::WireError);
}

TEST(Wire, EveryTruncationThrows) {
  const std::string bytes = wire::encode_batch(full_batch());
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_THROW(wire::decode_batch(bytes.substr(0, n)), wire::WireError) << "prefix of " << n << " bytes";
    EXPECT_THROW(wire::decode_batch(bytes.substr(0, n), wire::Identity::Deferred), wire::WireError)
        << "deferred, prefix of " << n << " bytes";
  }
  const std::string bundle = wire::encode_bundle({{{"n", 1, 2, 3}, bytes}});
  for (size_t n = 0; n < bundle.size(); ++n)
    EXPECT_THROW(wire::decode_bundle(bundle.substr(0, n)), wire::WireError) << "bundle prefix of " << n;
}

// Random corruption must end in a clean WireError or a batch, never a crash, hang or huge allocation
// (run under ASan+UBSan in CI).
TEST(Wire, RandomCorruptionIsCaught) {
  const std::string bytes = wire::encode_batch(full_batch());
  const std::string bundle = wire::encode_bundle({{{"n", 1, 2, 3}, bytes}, {{"m", 4, 5, 6}, bytes}});
  std::mt19937_64 rng(12345);
  int refused = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string b = round % 2 ? bytes : bundle;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) b[rng() % b.size()] = static_cast<char>(rng());
    if (rng() % 8 == 0) b.resize(rng() % b.size());
    try {
      if (round % 2) {
        wire::decode_batch(b, round % 4 == 1 ? wire::Identity::Deferred : wire::Identity::Decoded);
      } else {
        for (const auto& s : wire::decode_bundle(b)) wire::decode_batch(s.wire);
      }
    } catch (const wire::WireError&) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 1000);
  // Counts far beyond the body are refused before any allocation.
  std::string huge = std::string(wire::kBundleMagic, 4) + "\xff\xff\xff\xff\xff\xff\xff\xff\x7f";
  EXPECT_THROW(wire::decode_bundle(huge), wire::WireError);
}

Batch tick(uint64_t job, const std::string& node, int64_t t, uint32_t procs) {
  Batch b;
  b.job.job_id = job;
  b.job.node = node;
  b.job.user = "alice";
  b.job.start_ms = 1'700'000'000'000;
  b.job.last_sample_ms = t * 1000;
  b.job_sample = store::Sample{0, t, static_cast<uint64_t>(t) * 10, 100, 0, 0};
  for (uint32_t i = 0; i < procs; ++i) {
    store::ProcessUpdate u;
    u.record.pid = 100 + i;
    u.record.start_ticks = 5;
    u.record.command = "p";
    u.record.cpu_ns = static_cast<uint64_t>(t) * 7;
    u.sample = store::Sample{0, t, u.record.cpu_ns, 200, 0, 0};
    b.processes.push_back(u);
  }
  return b;
}

TEST(Outbox, SpoolsInTheSameTransactionAndAcknowledges) {
  TempDir dir;
  auto db = store::Store::open(dir.store(), test_options());
  for (int64_t t = 0; t < 5; ++t) {
    Batch b = tick(42, "n1", 1'700'000'000 + t, 2);
    EXPECT_EQ(db->write_batch_spooled(b, 9), static_cast<uint64_t>(t + 1));
  }
  Batch other = tick(43, "n1", 1'700'000'000, 1);
  EXPECT_EQ(db->write_batch_spooled(other, 9), 1u);
  Batch plain = tick(44, "n1", 1'700'000'000, 1);
  db->write_batch(plain);  // not spooled

  auto pending = db->pending_batches(100, 1 << 20);
  ASSERT_EQ(pending.size(), 6u);
  EXPECT_EQ(pending[0].id, (store::BatchId{"n1", 42, 9, 1}));
  EXPECT_EQ(pending[5].id, (store::BatchId{"n1", 43, 9, 1}));
  // The spooled batch carries the series ids the store gave.
  Batch first = wire::decode_batch(pending[0].wire);
  ASSERT_EQ(first.processes.size(), 2u);
  EXPECT_EQ(first.processes[0].record.series_id, 1u);
  EXPECT_EQ(first.processes[1].record.series_id, 2u);
  EXPECT_EQ(db->pending_batches(2, 1 << 20).size(), 2u);
  EXPECT_EQ(db->pending_batches(100, 1).size(), 1u);  // at least one, even over the byte budget

  db->acknowledge_batches(42, 3);
  pending = db->pending_batches(100, 1 << 20);
  ASSERT_EQ(pending.size(), 3u);
  EXPECT_EQ(pending[0].id.seq, 4u);
  auto states = db->ship_states();
  ASSERT_EQ(states.size(), 2u);
  EXPECT_EQ(states[0].job_id, 42u);
  EXPECT_EQ(states[0].last_seq, 5u);
  EXPECT_EQ(states[0].shipped_up_to, 3u);
  EXPECT_EQ(states[0].pending, 2u);
  // A new monitor on the same store continues the job's sequence.
  db.reset();
  db = store::Store::open(dir.store(), test_options());
  Batch more = tick(42, "n1", 1'700'000'010, 1);
  EXPECT_EQ(db->write_batch_spooled(more, 10), 6u);
  db->acknowledge_batches(42, 6);
  db->acknowledge_batches(43, 1);
  EXPECT_TRUE(db->pending_batches(100, 1 << 20).empty());
}

// The outbox is written in the data's transaction: after any number of ticks the two agree exactly.
TEST(Outbox, HoldsExactlyTheBatchesWritten) {
  TempDir dir;
  auto db = store::Store::open(dir.store(), test_options());
  for (int i = 0; i < 20; ++i) {
    Batch b = tick(42, "n1", 1'700'000'000 + i, 1);
    db->write_batch_spooled(b, 1);
  }
  auto pending = db->pending_batches(1000, 1 << 30);
  ASSERT_EQ(pending.size(), 20u);
  EXPECT_EQ(db->series(42, "n1", 0, 0, INT64_MAX).size(), 20u);
  for (size_t i = 0; i < pending.size(); ++i) {
    EXPECT_EQ(pending[i].id.seq, i + 1);
    EXPECT_EQ(wire::decode_batch(pending[i].wire).job_sample->time_s, 1'700'000'000 + static_cast<int64_t>(i));
  }
  // A read-only store refuses the write and spools nothing.
  db.reset();
  auto ro_options = test_options();
  ro_options.read_only = true;
  auto ro = store::Store::open(dir.store(), ro_options);
  Batch b = tick(42, "n1", 1'700'000'100, 1);
  EXPECT_THROW(ro->write_batch_spooled(b, 1), store::StoreError);
  EXPECT_EQ(ro->pending_batches(1000, 1 << 30).size(), 20u);
}

TEST(Central, DuplicateBatchIsStoredOnce) {
  TempDir dir;
  auto db = store::Store::open(dir.store(), test_options());
  Batch b = tick(42, "n1", 1'700'000'000, 2);
  store::BatchId id{"n1", 42, 9, 1};
  Batch copy = b;
  EXPECT_TRUE(db->write_batch_once(b, id));
  EXPECT_FALSE(db->write_batch_once(copy, id));
  EXPECT_EQ(db->applied_batch_count(), 1u);
  // Same seq from another node or monitor is another batch.
  Batch n2 = tick(42, "n2", 1'700'000'000, 1);
  EXPECT_TRUE(db->write_batch_once(n2, {"n2", 42, 9, 1}));
  Batch m2 = tick(42, "n1", 1'700'000'001, 2);
  EXPECT_TRUE(db->write_batch_once(m2, {"n1", 42, 10, 1}));
  EXPECT_EQ(db->applied_batch_count(), 3u);
  auto snap = db->load_job(42);
  EXPECT_EQ(snap.nodes.size(), 2u);
  EXPECT_EQ(snap.processes.size(), 3u);
  EXPECT_EQ(db->series(42, "n1", 0, 0, INT64_MAX).size(), 2u);
}

// Many batches in one transaction give the same store as one at a time, and skip what was applied before
// (earlier or within the same group).
TEST(Central, GroupedBatchesMatchOneAtATime) {
  TempDir dir;
  auto grouped = store::Store::open(dir.store(), test_options());
  auto single = store::Store::open(dir.file("single.lmdb"), test_options());
  std::vector<Batch> batches;
  std::vector<store::BatchId> ids;
  for (int t = 0; t < 30; ++t)
    for (const char* node : {"n1", "n2"}) {
      batches.push_back(tick(42, node, 1'700'000'000 + t, 3 + static_cast<uint32_t>(t % 2)));
      ids.push_back({node, 42, 9, static_cast<uint64_t>(t + 1)});
    }
  batches.push_back(batches[5]);  // the same batch twice in one group
  ids.push_back(ids[5]);
  Batch early = batches[0];
  EXPECT_TRUE(grouped->write_batch_once(early, ids[0]));  // applied before the group
  std::vector<Batch> copy = batches;
  std::vector<bool> applied = grouped->write_batches_once(copy, ids);
  ASSERT_EQ(applied.size(), batches.size());
  EXPECT_FALSE(applied[0]);
  EXPECT_TRUE(applied[1]);
  EXPECT_TRUE(applied[5]);
  EXPECT_FALSE(applied.back());
  EXPECT_EQ(std::count(applied.begin(), applied.end(), true), 59);
  for (size_t i = 0; i < batches.size(); ++i) single->write_batch_once(batches[i], ids[i]);
  EXPECT_EQ(grouped->applied_batch_count(), 60u);
  EXPECT_EQ(single->applied_batch_count(), 60u);
  for (const char* node : {"n1", "n2"}) {
    for (uint32_t series = 0; series <= 4; ++series) {
      auto a = grouped->series(42, node, series, 0, INT64_MAX), b = single->series(42, node, series, 0, INT64_MAX);
      ASSERT_EQ(a.size(), b.size()) << node << " series " << series;
      for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].cpu_ns, b[i].cpu_ns);
    }
  }
  EXPECT_EQ(grouped->load_job(42).processes.size(), 8u);
  EXPECT_EQ(grouped->check().problem_count, 0u);
  // All already applied: nothing written.
  copy = batches;
  applied = grouped->write_batches_once(copy, ids);
  EXPECT_EQ(std::count(applied.begin(), applied.end(), true), 0);
}

TEST(Central, ApiKeys) {
  TempDir dir;
  auto db = store::Store::open(dir.store(), test_options());
  db->put_api_key({"aa", "ops@example.org", 1700, "dockerhost1"});
  db->put_api_key({"bb", "ci@example.org", 1800, ""});
  ASSERT_TRUE(db->api_key("aa"));
  EXPECT_EQ(db->api_key("aa")->owner, "ops@example.org");
  EXPECT_EQ(db->api_key("aa")->created_s, 1700);
  EXPECT_EQ(db->api_key("aa")->node, "dockerhost1");
  EXPECT_EQ(db->api_key("bb")->node, "");
  EXPECT_EQ(db->api_keys().size(), 2u);
  EXPECT_TRUE(db->delete_api_key("aa"));
  EXPECT_FALSE(db->delete_api_key("aa"));
  EXPECT_FALSE(db->api_key("aa"));
  EXPECT_EQ(db->api_keys().size(), 1u);
}

// The owner of a job is its first record's user: a later batch naming another user, on the same node or a
// new one, cannot take the job over.
TEST(Central, NoBatchChangesTheOwnerOfAJob) {
  TempDir dir;
  auto db = store::Store::open(dir.store(), test_options());
  Batch first = tick(42, "n1", 1'700'000'000, 1);
  first.job.user = "alice";
  db->write_batch(first);
  for (const char* node : {"n1", "n2"}) {
    Batch other = tick(42, node, 1'700'000'001, 1);
    other.job.user = "mallory";
    db->write_batch(other);
    ASSERT_TRUE(db->job(42, node));
    EXPECT_EQ(db->job(42, node)->user, "alice") << node;
  }
  Batch fresh = tick(43, "n2", 1'700'000'000, 1);
  fresh.job.user = "bob";
  db->write_batch(fresh);
  EXPECT_EQ(db->job(43, "n2")->user, "bob");  // another job keeps its own owner
  EXPECT_EQ(db->check().problem_count, 0u);
}

// A job record of format 2 (before array ids and unshipped counts) still reads, with those fields zero.
TEST(Wire, JobRecordFormat2StillReads) {
  store::JobRecord j = full_batch().job;
  j.array_job_id = 7;
  j.array_task_id = 3;
  j.unshipped_batches = 0;
  j.unshipped_samples = 0;
  const std::string v6 = store::codec::encode_job(j);
  ASSERT_EQ(v6[0], 6);
  // Format 6 is format 5 plus the GPUs and the lost GPUs (one byte each when none).
  std::string v5 = "\x05" + v6.substr(1, v6.size() - 3);
  EXPECT_EQ(store::codec::decode_job(v5).job_name, j.job_name);
  // Format 5 is format 4 plus the job's node list (one byte when empty).
  std::string v4 = "\x04" + v5.substr(1, v5.size() - 2);
  EXPECT_EQ(store::codec::decode_job(v4).job_name, j.job_name);
  // Format 4 is format 3 plus the late tasks (one byte when 0).
  std::string v3 = "\x03" + v4.substr(1, v4.size() - 2);
  // Format 3 is format 2 plus four varints; these four are one byte each.
  std::string v2 = "\x02" + v3.substr(1, v3.size() - 5);
  store::JobRecord old = store::codec::decode_job(v2);
  EXPECT_EQ(old.container_image, j.container_image);
  EXPECT_EQ(old.job_name, j.job_name);
  EXPECT_EQ(old.array_job_id, 0u);
  EXPECT_EQ(old.unshipped_batches, 0u);
  EXPECT_EQ(store::codec::decode_job(v3).array_task_id, 3u);
  EXPECT_THROW(store::codec::decode_job("\x07" + v6.substr(1)), store::StoreError);
}

// Past its bound the outbox gives up its oldest batches, counts them per job (ship cursor, the job's record,
// and the newest batch still waiting, which carries the counts to bcd); the node store keeps all the data.
TEST(Outbox, BoundDropsOldestAndCountsThem) {
  TempDir dir;
  auto options = test_options();
  Batch probe = tick(42, "n1", 1'700'000'000, 2);
  const size_t one = wire::encode_batch(probe).size() + 16;
  options.outbox_max_bytes = 4 * one;
  auto db = store::Store::open(dir.store(), options);
  for (int t = 0; t < 10; ++t) {
    Batch b = tick(42, "n1", 1'700'000'000 + t, 2);
    db->write_batch_spooled(b, 9);
  }
  auto pending = db->pending_batches(100, 1 << 30);
  ASSERT_GE(pending.size(), 3u);
  ASSERT_LE(pending.size(), 4u);
  const uint64_t dropped = 10 - pending.size();
  EXPECT_EQ(pending.front().id.seq, dropped + 1);  // the oldest went first
  EXPECT_EQ(pending.back().id.seq, 10u);
  uint64_t bytes = 0;
  for (const auto& p : pending) bytes += p.wire.size();
  EXPECT_LE(bytes, options.outbox_max_bytes);
  auto states = db->ship_states();
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0].dropped_batches, dropped);
  EXPECT_EQ(states[0].dropped_samples, dropped * 3);  // the job's sample and two processes' per tick
  EXPECT_EQ(db->job(42, "n1")->unshipped_batches, dropped);
  EXPECT_EQ(db->job(42, "n1")->unshipped_samples, dropped * 3);
  const Batch newest = wire::decode_batch(pending.back().wire);
  EXPECT_EQ(newest.job.unshipped_batches, dropped);
  EXPECT_EQ(db->series(42, "n1", 0, 0, INT64_MAX).size(), 10u);  // every tick is still in the node store
  // Acknowledged batches free their room: nothing more is dropped.
  db->acknowledge_batches(42, 10);
  Batch b = tick(42, "n1", 1'700'000'010, 2);
  db->write_batch_spooled(b, 9);
  EXPECT_EQ(db->ship_states()[0].dropped_batches, dropped);
  EXPECT_EQ(db->pending_batches(100, 1 << 30).size(), 1u);
}

// Folding old dedup entries into their monitor's mark keeps every applied batch a duplicate.
TEST(Central, ExpiredDedupEntriesStayDuplicates) {
  TempDir dir;
  auto db = store::Store::open(dir.store(), test_options());
  std::vector<Batch> batches;
  std::vector<store::BatchId> ids;
  for (int t = 0; t < 5; ++t) {
    batches.push_back(tick(42, "n1", 1'700'000'000 + t, 2));
    ids.push_back({"n1", 42, 9, static_cast<uint64_t>(t + 1)});
  }
  std::vector<Batch> copy = batches;
  db->write_batches_once(copy, ids);
  EXPECT_EQ(db->expire_dedup(time(nullptr) - 3600, 1000), 0u);  // none is that old
  EXPECT_EQ(db->expire_dedup(time(nullptr) + 10, 2), 2u);       // bounded work per call
  EXPECT_EQ(db->expire_dedup(time(nullptr) + 10, 1000), 3u);
  EXPECT_EQ(db->dedup_stats().entries, 0u);
  EXPECT_EQ(db->dedup_stats().marks, 1u);
  copy = batches;
  auto applied = db->write_batches_once(copy, ids);
  EXPECT_EQ(std::count(applied.begin(), applied.end(), true), 0);
  Batch again = batches[2];
  EXPECT_FALSE(db->write_batch_once(again, ids[2]));
  EXPECT_EQ(db->series(42, "n1", 0, 0, INT64_MAX).size(), 5u);
  // The next seq, and the same seqs of another monitor or node, are new batches.
  Batch next = tick(42, "n1", 1'700'000'005, 2);
  EXPECT_TRUE(db->write_batch_once(next, {"n1", 42, 9, 6}));
  Batch other_monitor = tick(42, "n1", 1'700'000'006, 2);
  EXPECT_TRUE(db->write_batch_once(other_monitor, {"n1", 42, 10, 1}));
  Batch other_node = tick(42, "n2", 1'700'000'000, 2);
  EXPECT_TRUE(db->write_batch_once(other_node, {"n2", 42, 9, 1}));
  EXPECT_EQ(db->applied_batch_count(), 3u);
  EXPECT_EQ(db->check().problem_count, 0u);
}

}  // namespace
}  // namespace bc
