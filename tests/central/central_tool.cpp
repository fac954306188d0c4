// Test helper for the central tests: a simulated node writing a job's ticks into its node store (spooled
// as a monitor with --central does), the outbox as a raw ingest body, and counts of what a store holds.
//
//   bc-central-tool node STORE JOB NODE USER UID TICKS PROCS FIRST_TIME   (write TICKS spooled ticks;
//                                                                         $BC_OUTBOX_MAX_BYTES bounds the outbox)
//   bc-central-tool bundle STORE OUT                                     (the whole outbox as one body)
//   bc-central-tool split STORE OUTDIR PER                              (the outbox as bodies of PER batches:
//                                                                         OUTDIR/0, OUTDIR/1, ...)
//   bc-central-tool count STORE JOB      -> "nodes N processes P points S" (second points of every series)
//   bc-central-tool pending STORE        -> "pending N"
//   bc-central-tool crafted-bundle OUT JOB NODE USER UID [JOB_NAME]    (one batch encoded directly, as a node
//                                                                      that skips its own store's checks would)
//   bc-central-tool unbound-apikey STORE KEY OWNER                     (a key with no node, as older bcadm made)
// Exit status: 0 ok, 2 usage, 3 store error.
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "accounting_db/store.hpp"
#include "accounting_db/wire.hpp"
#include "common/auth.hpp"

namespace {

using namespace bc::store;

uint64_t num(const char* s) { return std::strtoull(s, nullptr, 10); }

int node(int argc, char** argv) {
  if (argc != 10) return 2;
  OpenOptions options;
  if (const char* bound = std::getenv("BC_OUTBOX_MAX_BYTES")) options.outbox_max_bytes = num(bound);
  auto db = Store::open(argv[2], options);
  const uint64_t job = num(argv[3]);
  const uint64_t ticks = num(argv[7]), procs = num(argv[8]);
  const int64_t first = static_cast<int64_t>(num(argv[9]));
  const uint64_t monitor = (static_cast<uint64_t>(getpid()) << 20) ^ job;
  JobRecord j;
  j.job_id = job;
  j.node = argv[4];
  j.user = argv[5];
  j.uid = static_cast<uint32_t>(num(argv[6]));
  j.start_ms = first * 1000;
  j.cgroup_version = 1;
  for (uint64_t t = 0; t < ticks; ++t) {
    const int64_t now = first + static_cast<int64_t>(t);
    Batch b;
    j.last_sample_ms = now * 1000;
    j.sample_count = t + 1;
    if (t + 1 == ticks) j.end_ms = now * 1000;
    b.job = j;
    b.job_sample = Sample{0, now, t * procs * 10'000'000, procs << 20, t << 12, t << 13};
    for (uint64_t p = 0; p < procs; ++p) {
      ProcessUpdate u;
      u.record.pid = static_cast<uint32_t>(1000 + p);
      u.record.ppid = p == 0 ? 1 : 1000;
      u.record.step = 0;
      u.record.start_ticks = 100 + p;
      u.record.start_ms = first * 1000;
      u.record.command = "work" + std::to_string(p);
      u.record.argv = {"work", std::to_string(p)};
      u.record.cpu_ns = t * 10'000'000;
      u.record.rss = u.record.max_rss = 1 << 20;
      u.record.read_bytes = t << 12;
      u.record.write_bytes = t << 13;
      if (t + 1 == ticks) u.record.end_ms = now * 1000;
      u.sample = Sample{0, now, u.record.cpu_ns, u.record.rss, u.record.read_bytes, u.record.write_bytes};
      b.processes.push_back(u);
    }
    db->write_batch_spooled(b, monitor);
  }
  return 0;
}

int bundle(int argc, char** argv) {
  if (argc != 4) return 2;
  auto db = Store::open(argv[2]);
  std::ofstream(argv[3], std::ios::binary) << bc::wire::encode_bundle(db->pending_batches(SIZE_MAX, SIZE_MAX));
  return 0;
}

int split(int argc, char** argv) {
  if (argc != 5) return 2;
  const size_t per = num(argv[4]);
  if (per == 0) return 2;
  const std::vector<SpooledBatch> all = Store::open(argv[2])->pending_batches(SIZE_MAX, SIZE_MAX);
  for (size_t from = 0, n = 0; from < all.size(); from += per, ++n) {
    const std::vector<SpooledBatch> part(all.begin() + static_cast<long>(from),
                                         all.begin() + static_cast<long>(std::min(all.size(), from + per)));
    std::ofstream(std::string(argv[3]) + "/" + std::to_string(n), std::ios::binary) << bc::wire::encode_bundle(part);
  }
  return 0;
}

int count(int argc, char** argv) {
  if (argc != 4) return 2;
  OpenOptions o;
  o.read_only = true;
  o.create = false;
  auto db = Store::open(argv[2], o);
  const uint64_t job = num(argv[3]);
  JobSnapshot s = db->load_job(job);
  uint64_t points = 0;
  for (const auto& n : s.nodes) points += db->series(job, n.node, 0, 0, INT64_MAX).size();
  for (const auto& p : s.processes) points += db->series(job, p.node, p.series_id, 0, INT64_MAX).size();
  std::printf("nodes %zu processes %zu points %" PRIu64 "\n", s.nodes.size(), s.processes.size(), points);
  return 0;
}

int pending(int argc, char** argv) {
  if (argc != 3) return 2;
  auto db = Store::open(argv[2]);
  std::printf("pending %zu\n", db->pending_batches(SIZE_MAX, SIZE_MAX).size());
  return 0;
}

int crafted_bundle(int argc, char** argv) {
  if (argc != 7 && argc != 8) return 2;
  Batch b;
  b.job.job_id = num(argv[3]);
  b.job.node = argv[4];
  b.job.user = argv[5];
  b.job.uid = static_cast<uint32_t>(num(argv[6]));
  if (argc == 8) b.job.job_name = argv[7];
  b.job.start_ms = b.job.last_sample_ms = 1'800'000'000'000;
  b.job.cgroup_version = 1;
  b.job_sample = Sample{0, 1'800'000'000, 1'000'000, 1 << 20, 0, 0};
  BatchId id{b.job.node, b.job.job_id, 1, 1};
  std::ofstream(argv[2], std::ios::binary) << bc::wire::encode_bundle({{id, bc::wire::encode_batch(b)}});
  return 0;
}

int unbound_apikey(int argc, char** argv) {
  if (argc != 5) return 2;
  Store::open(argv[2])->put_api_key({bc::auth::hash_api_key(argv[3]), argv[4], 1'800'000'000, ""});
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string cmd = argc > 1 ? argv[1] : "";
  int rc = 2;
  if (cmd == "node") rc = node(argc, argv);
  if (cmd == "bundle") rc = bundle(argc, argv);
  if (cmd == "split") rc = split(argc, argv);
  if (cmd == "count") rc = count(argc, argv);
  if (cmd == "pending") rc = pending(argc, argv);
  if (cmd == "crafted-bundle") rc = crafted_bundle(argc, argv);
  if (cmd == "unbound-apikey") rc = unbound_apikey(argc, argv);
  if (rc == 2) std::fprintf(stderr, "usage: see the head of tests/central/central_tool.cpp\n");
  return rc;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bc-central-tool: %s\n", e.what());
  return 3;
}
