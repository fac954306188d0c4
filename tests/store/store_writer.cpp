// A store writer for the process-level tests: it behaves like a monitor (one batch per tick) and is
// killed, run many at once, or run on a full disk by the tests in this directory.
//
//   store_writer crash STORE FIRST_SEQ          batches FIRST_SEQ, FIRST_SEQ+1, ... forever; after each
//                                               commit prints the sequence number on stdout
//   store_writer ticks STORE JOB NODE TICKS PROCS  TICKS batches of PROCS processes, then exits 0
//   store_writer read STORE JOB...              queries until stdin closes; exits 1 on any inconsistency
//
// The values of a batch are a pure function of (job, sequence, series), so a batch written twice is the
// same batch, and the tests can compute what the store must hold.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "accounting_db/store.hpp"
#include "crash_model.hpp"

using namespace bc::store;
using namespace bc::store::crash_model;

namespace {

int crash(const std::string& path, uint64_t first) {
  auto store = Store::open(path, writer_options());
  for (uint64_t seq = first;; ++seq) {
    Batch b = make_batch(seq);
    store->write_batch(b);
    std::printf("%llu\n", static_cast<unsigned long long>(seq));
    std::fflush(stdout);
  }
}

int ticks(const std::string& path, uint64_t job, const std::string& node, int n, int procs) {
  OpenOptions o;
  o.config_path = "";
  o.retention = Retention{};
  o.initial_map_bytes = 1 << 20;  // grow while others write
  o.map_growth_step_bytes = 1 << 20;
  o.disk_reserve_bytes = 0;
  auto store = Store::open(path, o);
  for (int k = 0; k < n; ++k) {
    Batch b = tick_batch(job, node, k, procs);
    store->write_batch(b);
  }
  return 0;
}

// Readers never block writers, and what they see only grows: the samples of every series of every job,
// and the job records' tick counts, never go down from one snapshot to the next.
int read(const std::string& path, int argc, char** argv) {
  OpenOptions o;
  o.config_path = "";
  o.read_only = true;
  o.create = false;
  auto store = Store::open(path, o);
  fcntl(0, F_SETFL, O_NONBLOCK);
  uint64_t rounds = 0;
  std::map<std::string, uint64_t> seen;
  for (;;) {
    pollfd p{0, POLLIN, 0};
    if (poll(&p, 1, 0) > 0) {
      char buf[16];
      if (::read(0, buf, sizeof buf) == 0) break;  // the parent closed our stdin: done
    }
    for (int i = 0; i < argc; ++i) {
      const uint64_t job = std::strtoull(argv[i], nullptr, 10);
      JobSnapshot s = store->load_job(job);
      for (const auto& node : s.nodes) {
        const std::string key = std::to_string(job) + "/" + node.node;
        auto check = [&](const std::string& what, uint64_t now) {
          uint64_t& before = seen[key + what];
          if (now < before) {
            std::fprintf(stderr, "reader: %s %s went down from %llu to %llu\n", key.c_str(), what.c_str(),
                         static_cast<unsigned long long>(before), static_cast<unsigned long long>(now));
            return false;
          }
          before = now;
          return true;
        };
        if (!check(" ticks", node.sample_count)) return 1;
        for (uint32_t series : {0U, 1U}) {
          uint64_t n = 0;
          for (const auto& b : store->query_series({job, node.node, series, 0, INT64_MAX, Resolution::Minute}).buckets)
            n += b.samples;
          if (!check(" series " + std::to_string(series), n)) return 1;
        }
      }
    }
    ++rounds;
    usleep(500);  // busy enough to overlap every commit, without starving the writers
  }
  std::fprintf(stderr, "reader: %llu rounds\n", static_cast<unsigned long long>(rounds));
  return rounds > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "crash" && argc == 4) return crash(argv[2], std::strtoull(argv[3], nullptr, 10));
    if (mode == "ticks" && argc == 7)
      return ticks(argv[2], std::strtoull(argv[3], nullptr, 10), argv[4], std::atoi(argv[5]), std::atoi(argv[6]));
    if (mode == "read" && argc >= 4) return read(argv[2], argc - 3, argv + 3);
    std::fprintf(stderr,
                 "usage: store_writer crash STORE FIRST_SEQ | ticks STORE JOB NODE TICKS PROCS | read STORE JOB...\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "store_writer: %s\n", e.what());
    return 3;
  }
}
