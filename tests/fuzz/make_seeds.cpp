// Writes the fuzz seeds that come from the project's own encoders into a corpus directory:
//   fuzz_make_seeds tests/fuzz/corpus
// wire/ and ingest_store/: bundles and batches as a node's shipper sends them; codec/: every kind of stored
// record (codec_input.hpp); token/: tokens signed with fuzz_token's secret (token_input.hpp). Among them
// the inputs of two findings fixed before the harnesses existed, kept as regressions:
//   codec/regression-rss-step-overflow  a chunk whose RSS step in pages overflowed 64 bits when multiplied
//                                       out (accounting_db/codec.cpp, get_point; now a StoreError)
//   token/regression-exp-1e300          a correctly signed token with "exp": 1e300, which was cast from a
//                                       double no 64-bit integer holds (web/auth/token.cpp; now Malformed)
// The other seeds (configs, requests, bcd's answers, paths, command-line values) are text, kept as written.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "accounting_db/codec.hpp"
#include "accounting_db/wire.hpp"
#include "codec_input.hpp"
#include "common/auth.hpp"
#include "token_input.hpp"

namespace {

namespace fs = std::filesystem;
namespace codec = bc::store::codec;
using namespace bc::store;
using bc::fuzz::CodecKind;

fs::path g_corpus;

void write(const std::string& harness, const std::string& name, const std::string& bytes) {
  fs::create_directories(g_corpus / harness);
  std::ofstream(g_corpus / harness / name, std::ios::binary) << bytes;
}

constexpr int64_t kStart = 1'800'000'000;  // epoch seconds of the seeds' jobs

JobRecord job_record(uint64_t job, const std::string& node) {
  JobRecord j;
  j.job_id = job;
  j.node = node;
  j.uid = 1000;
  j.user = "alice";
  j.steps = {0, 0xfffffffbU};
  j.start_ms = kStart * 1000;
  j.cgroup_version = 1;
  j.has_cgroup_cpu = j.has_cgroup_memory = true;
  j.cgroup_cpu_ns = 2'500'000'000;
  j.cgroup_mem_current = 64 << 20;
  j.cgroup_mem_peak = 80 << 20;
  j.max_rss_sum = 70 << 20;
  j.monitor_cpu_ns = 40'000'000;
  j.monitor_max_rss = 12 << 20;
  j.job_name = "train";
  j.alloc_cpus = 2;
  j.mem_limit_bytes = 1ULL << 30;
  j.lost.ring = 3;
  j.lost_events = 3;
  return j;
}

ProcessRecord process(uint32_t pid, uint32_t ppid, const std::string& command, std::vector<std::string> argv) {
  ProcessRecord p;
  p.pid = pid;
  p.ppid = ppid;
  p.step = 0;
  p.start_ticks = 1000 + pid;
  p.start_ms = kStart * 1000 + 5;
  p.command = command;
  p.exe = "/usr/bin/" + command;
  p.argv = std::move(argv);
  p.max_rss = 8 << 20;
  return p;
}

// A node's ticks of one job: a shell and its child, with files and a connection on the first tick, and the
// child's exit on the last. The child runs on the job's GPU: points of both each tick.
std::vector<Batch> ticks(uint64_t job, const std::string& node, int count, bool ends) {
  std::vector<Batch> out;
  JobRecord j = job_record(job, node);
  JobGpu gpu;
  gpu.uuid = "GPU-5a1d0c2e-0000-1111-2222-333344445555";
  gpu.minor = 0;
  gpu.allocated = true;
  j.gpus = {gpu};
  for (int t = 0; t < count; ++t) {
    const int64_t now = kStart + t;
    Batch b;
    j.last_sample_ms = now * 1000;
    j.sample_count = static_cast<uint64_t>(t) + 1;
    if (ends && t + 1 == count) j.end_ms = now * 1000;
    b.job = j;
    const auto tick = static_cast<uint64_t>(t);
    b.job_sample = Sample{0, now, tick * 20'000'000, 16ULL << 20, tick << 12, tick << 14};
    for (const auto& [pid, ppid, command] : {std::tuple{4100U, 1U, "sh"}, std::tuple{4101U, 4100U, "dd"}}) {
      ProcessUpdate u;
      u.record = process(pid, ppid, command, {command, "-c", "work " + std::to_string(pid)});
      u.record.cpu_ns = static_cast<uint64_t>(t) * 10'000'000;
      u.record.rss = (4 << 20) + static_cast<uint64_t>(t) * 4096;
      u.record.read_bytes = uint64_t(t) << 12;
      u.record.write_bytes = uint64_t(t) << 13;
      if (ends && t + 1 == count && pid == 4101) {
        u.record.end_ms = now * 1000;
        u.record.exited = u.record.exact = true;
        u.record.exit_code = 0;
      }
      u.sample = Sample{0, now, u.record.cpu_ns, u.record.rss, u.record.read_bytes, u.record.write_bytes};
      if (t == 1) u.sample->rss += 1;  // a sample that differs from its record
      if (pid == 4101) u.gpu_sample = GpuSample{0, now, tick * 500'000'000, 6ULL << 30, 0};
      b.processes.push_back(u);
    }
    b.gpu_samples = {{gpu_device_series(0), now, tick * 600'000'000, 8ULL << 30, tick * 250'000}};
    if (t == 0) {
      FileRecord f;
      f.pid = 4101;
      f.start_ticks = 1000 + 4101;
      f.path = "/scratch/alice/out.dat";
      f.flags = kFileWrite | kFileCreate | kFileTrunc;
      f.first_ms = now * 1000 + 3;
      f.opens = 2;
      f.failed = 1;
      f.write_bytes = 1 << 20;
      b.files.push_back(f);
      ConnectionRecord c;
      c.pid = 4100;
      c.start_ticks = 1000 + 4100;
      c.address = "10.0.0.7";
      c.port = 8470;
      c.protocol = "tcp";
      c.first_ms = now * 1000 + 4;
      c.count = 3;
      c.failed = 1;
      b.connections.push_back(c);
    }
    out.push_back(std::move(b));
  }
  return out;
}

std::string bundle(const std::vector<Batch>& batches, uint64_t first_seq = 1) {
  std::vector<SpooledBatch> spooled;
  for (const Batch& b : batches)
    spooled.push_back({BatchId{b.job.node, b.job.job_id, 77, first_seq++}, bc::wire::encode_batch(b)});
  return bc::wire::encode_bundle(spooled);
}

void wire_and_ingest() {
  const auto one = ticks(4242, "n01", 3, true);
  auto two = ticks(4242, "n02", 2, false);
  std::vector<Batch> both = one;
  both.insert(both.end(), two.begin(), two.end());
  for (const std::string harness : {"wire", "ingest_store"}) {
    write(harness, "bundle-one-node-ended", bundle(one));
    write(harness, "bundle-two-nodes", bundle(both));
    write(harness, "bundle-empty", bc::wire::encode_bundle({}));
  }
  Batch container = ticks(0x8000'0c0f'fee0'c0deULL, "dockerhost", 1, false).front();
  container.job.container_id = std::string(64, 'c');
  container.job.container_name = "web-1";
  container.job.container_image = "busybox:local";
  container.job.array_job_id = 0;
  write("ingest_store", "bundle-container", bundle({container}));
  Batch array = ticks(4300, "n03", 1, false).front();
  array.job.array_job_id = 4299;
  array.job.array_task_id = 2;
  array.job.events_unavailable = "events unavailable: no BTF";
  array.job.unshipped_batches = 4;
  array.job.unshipped_samples = 12;
  write("ingest_store", "bundle-array-task-unshipped", bundle({array}, 9));
  write("wire", "batch-one-tick", bc::wire::encode_batch(one.front()));
  write("wire", "batch-last-tick", bc::wire::encode_batch(one.back()));
}

std::string with_kind(CodecKind kind, const std::string& value) {
  return std::string(1, static_cast<char>(kind)) + value;
}

std::string be64(uint64_t v) {
  std::string out;
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return out;
}

void codec_records() {
  JobRecord j = job_record(4242, "n01");
  j.end_ms = (kStart + 60) * 1000;
  write("codec", "job", with_kind(CodecKind::Job, codec::encode_job(j)));
  // A GPU job: a GPU Slurm gave it and a MIG instance one of its processes ran on.
  JobRecord g = j;
  JobGpu gpu;
  gpu.uuid = "GPU-5a1d0c2e-0000-1111-2222-333344445555";
  gpu.minor = 0;
  gpu.allocated = true;
  gpu.memory_total = 80ULL << 30;
  gpu.memory_max = 12ULL << 30;
  gpu.util_ns = gpu.power_ns = 60'000'000'000;
  gpu.busy_ns = 45'000'000'000;
  gpu.energy_mj = 15'000'000;
  JobGpu mig;
  mig.uuid = "MIG-0c2e5a1d-0000-1111-2222-333344445555";
  mig.parent_uuid = "GPU-99";
  mig.memory_total = 10ULL << 30;
  g.gpus = {gpu, mig};
  g.gpus_lost = 1;
  write("codec", "job-gpus", with_kind(CodecKind::Job, codec::encode_job(g)));
  ProcessRecord p = process(4101, 4100, "python3", {"python3", "train.py", "--epochs", "3"});
  p.gpu_memory_max = 6ULL << 30;
  p.gpu_sm_ns = 30'000'000'000;
  p.job_id = 4242;
  p.node = "n01";
  p.series_id = 2;
  p.cpu_ns = 1'230'000'000;
  p.rss = 40 << 20;
  p.read_bytes = 1 << 16;
  p.exited = true;
  p.exit_code = -1;
  p.exit_signal = 9;
  write("codec", "process", with_kind(CodecKind::Process, codec::encode_process(p)));
  write("codec", "process-counters-in-series", with_kind(CodecKind::Process, codec::encode_process(p, true)));
  std::string identity;
  codec::append_process_identity(identity, p);
  write("codec", "process-identity", with_kind(CodecKind::ProcessIdentity, identity));
  const Batch first = ticks(4242, "n01", 1, false).front();
  FileRecord f = first.files.front();
  f.job_id = 4242;
  f.node = "n01";
  write("codec", "file", with_kind(CodecKind::File, codec::encode_file(f)));
  ConnectionRecord c = first.connections.front();
  c.job_id = 4242;
  c.node = "n01";
  write("codec", "connection", with_kind(CodecKind::Connection, codec::encode_connection(c)));
  write("codec", "sample-schema1",
        with_kind(CodecKind::Sample, codec::encode_sample(Sample{0, kStart, 10, 4096, 1, 2})));

  // A minute of points: steady, a pause, a counter that goes down, RSS up and down, threads started and ended.
  std::vector<codec::Point> points;
  codec::Point at{kStart, 0, 1 << 20, 0, 0};
  for (int i = 0; i < 12; ++i) {
    at.t += i == 6 ? 4 : 1;
    at.cpu += i == 9 ? 0 : 10'000'000;
    at.rss += i % 3 == 0 ? 4096 : static_cast<uint64_t>(-8192);
    at.rd += 512;
    if (i == 7) at.wr = 0;
    else at.wr += 1 << 12;
    if (i == 3) at.threads = 9;
    if (i == 10) at.threads = 1;
    points.push_back(at);
  }
  const codec::Point origin{kStart, 0, 1 << 20, 0, 0};
  std::string encoded;
  codec::encode_points(encoded, origin, points);
  write("codec", "points",
        with_kind(CodecKind::Points, be64(0) + be64(static_cast<uint64_t>(origin.t)) + be64(origin.cpu) +
                                         be64(origin.rss) + be64(origin.rd) + be64(origin.wr) + be64(origin.threads) +
                                         encoded));
  const int64_t minute = kStart - kStart % 60;
  codec::Chunk chunk;
  chunk.has_base = true;
  chunk.base = {minute - 1, 5, 1 << 20, 0, 0};
  for (const auto& q : points) chunk.points.push_back({q.t - kStart + minute, q.cpu + 5, q.rss, q.rd, q.wr, q.threads});
  const std::string chunk_start = be64(static_cast<uint64_t>(minute));
  write("codec", "chunk", with_kind(CodecKind::Chunk, chunk_start + codec::encode_chunk(minute, chunk)));
  codec::Chunk first_chunk;
  first_chunk.points = chunk.points;
  write("codec", "chunk-first-of-series",
        with_kind(CodecKind::Chunk, chunk_start + codec::encode_chunk(minute, first_chunk)));
  // The regression: a chunk whose one point moves RSS by 2^53 pages, past what 64 bits hold in bytes.
  std::string corrupt;
  corrupt.push_back(1);                              // chunk format
  corrupt.push_back(0);                              // no base
  corrupt.push_back(0x18);                           // the point: RSS changed, in 4 KiB pages
  codec::append_varint(corrupt, uint64_t{1} << 54);  // zigzag(2^53)
  write("codec", "regression-rss-step-overflow", with_kind(CodecKind::Chunk, chunk_start + corrupt));

  std::string chunk_points;
  codec::encode_points(chunk_points, chunk.origin(minute), chunk.points);
  codec::OpenRecord open;
  open.has_base = true;
  open.has_points = true;
  open.chunk_start = minute;
  open.base = chunk.base;
  open.tail = chunk.points.back();
  open.points = chunk_points;
  std::string open_value;
  codec::encode_open(open_value, open);
  write("codec", "open-record", with_kind(CodecKind::Open, open_value));
  codec::OpenRecord base_only;
  base_only.has_base = true;
  base_only.base = chunk.points.back();
  std::string base_value;
  codec::encode_open(base_value, base_only);
  write("codec", "open-record-base-only", with_kind(CodecKind::Open, base_value));

  codec::Buckets buckets;
  for (uint32_t i : {0U, 1U, 5U, 59U}) {
    Rollup r;
    r.samples = 60;
    r.cpu_ns = 600'000'000ULL * (i + 1);
    r.timed_cpu_ns = r.cpu_ns - 10'000'000;
    r.wall_s = 59;
    r.cpu_rate_max = 1'000'000'000;
    r.rss_sum = 60ULL * (1 << 20);
    r.rss_max = (1 << 20) + 1;
    r.read_bytes = 4096;
    r.write_bytes = 1 << 20;
    buckets.emplace_back(i, r);
  }
  write("codec", "buckets", with_kind(CodecKind::Buckets, codec::encode_buckets(buckets)));
  codec::JobState state;
  state.first_s = kStart;
  state.latest_s = kStart + 3600;
  state.floor[0] = kStart + 60;
  state.seal_cursor = 3;
  state.process_generation = 17;
  write("codec", "job-state", with_kind(CodecKind::JobState, codec::encode_job_state(state)));
  std::string pack;
  codec::encode_process_pack_header(pack, 17, 2);
  codec::append_packed_record(pack, codec::encode_process(p));
  p.pid = 4102;
  codec::append_packed_record(pack, codec::encode_process(p, true));
  write("codec", "process-pack", with_kind(CodecKind::ProcessPack, pack));
}

// A token signed with the harness's secret whose payload is this JSON text as it is.
std::string signed_token(const std::string& payload) {
  using namespace bc::auth;
  const std::string input = base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url_encode(payload);
  return input + "." + sign_hs256(bc::fuzz::kTokenSecret, input);
}

void tokens() {
  using bc::auth::TokenClaims;
  using bc::fuzz::kTokenNow;
  const std::string secret(bc::fuzz::kTokenSecret);
  write("token", "valid", bc::auth::mint_token(secret, TokenClaims{"job_42", kTokenNow + 3600, kTokenNow, ""}));
  write("token", "expired", bc::auth::mint_token(secret, TokenClaims{"job_42", kTokenNow - 1, kTokenNow - 3600, ""}));
  write("token", "other-job", bc::auth::mint_token(secret, TokenClaims{"job_7", kTokenNow + 60, kTokenNow, ""}));
  write("token", "user", bc::auth::mint_token(secret, TokenClaims{"", kTokenNow + 60, kTokenNow, "alice"}));
  write("token", "other-secret",
        bc::auth::mint_token("another-secret-0123456789", TokenClaims{"job_42", kTokenNow + 60, kTokenNow, ""}));
  write("token", "alg-none",
        bc::auth::base64url_encode(R"({"alg":"none"})") + "." +
            bc::auth::base64url_encode(R"({"container":"job_42","exp":1900000000})") + ".");
  write("token", "regression-exp-1e300", signed_token(R"({"container":"job_42","exp":1e300,"iat":1800000000})"));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds CORPUS_DIR\n");
    return 2;
  }
  g_corpus = argv[1];
  wire_and_ingest();
  codec_records();
  tokens();
  return 0;
}
