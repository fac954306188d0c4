// Central ingest benchmark driver: the same synthetic node batches written straight into a store
// (write_batch_once, what bcd does per batch) or pushed to a running bcd over HTTP (munge or API key).
//
//   bc-central-bench direct STORE NODES PROCS TICKS [BATCHES_PER_TRANSACTION [BATCHES_PER_REQUEST]]
//   bc-central-bench http URL NODES PROCS TICKS CLIENTS BATCHES_PER_REQUEST [--api-keys FILE] [--munge-socket S]
//     [--ready-file F]   (F is created once the requests are encoded, as the first one is sent)
//   bc-central-bench prefill STORE JOBS PROCS TICKS RUNNING
//     (history for the read benches: JOBS one-node jobs of PROCS processes and TICKS ticks, ids from 2000;
//     the first RUNNING of them have not ended)
//     (--api-keys: one key per line, line n bound to node "bench<n>"; the nodes then push a container)
// Prints "samples N seconds S batches B requests R bytes Y", then "cpu C" (direct: its user + system seconds)
// or "pushers_cpu C" (http: the pushing threads' user + system seconds while sending).
// Over HTTP each client stands for NODES/CLIENTS nodes and sends each node's ticks in order, a bundle of
// BATCHES_PER_REQUEST at a time, as a node's shipper does (bcd then never sees a node's tick late).
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "accounting_db/shipper.hpp"
#include "accounting_db/store.hpp"
#include "accounting_db/wire.hpp"

namespace {

using namespace bc;
using Clock = std::chrono::steady_clock;

// One tick of one node: PROCS processes, each with a sample, and the job total. Counters move every tick
// as a busy job's would.
store::Batch make_batch(uint64_t job, uint32_t node, uint32_t procs, int64_t t, int64_t t0) {
  store::Batch b;
  b.job.job_id = job;
  b.job.node = "bench" + std::to_string(node);
  b.job.user = "bench";
  b.job.start_ms = t0 * 1000;
  b.job.last_sample_ms = t * 1000;
  b.job.cgroup_version = 1;
  const uint64_t k = static_cast<uint64_t>(t - t0);
  b.job_sample = store::Sample{0, t, k * procs * 9'000'000, procs * (64ULL << 20), k << 16, k << 17};
  for (uint32_t p = 0; p < procs; ++p) {
    store::ProcessUpdate u;
    u.record.pid = 10000 + p;
    u.record.ppid = p ? 10000 : 1;
    u.record.step = 0;
    u.record.start_ticks = 500 + p;
    u.record.start_ms = t0 * 1000;
    u.record.series_id = p + 1;
    u.record.command = "solver";
    u.record.exe = "/opt/app/bin/solver";
    u.record.argv = {"solver", "--rank", std::to_string(p)};
    u.record.cpu_ns = k * 9'000'000 + p;
    // RSS wanders; its peak only grows, as a monitor reports it (a peak that moved with RSS made every tick
    // rewrite every process record, which no real job does).
    u.record.rss = (64ULL << 20) + (k % 7) * 4096;
    u.record.max_rss = (64ULL << 20) + std::min<uint64_t>(k, 6) * 4096;
    u.record.read_bytes = k << 16;
    u.record.write_bytes = k << 17;
    u.sample = store::Sample{0, t, u.record.cpu_ns, u.record.rss, u.record.read_bytes, u.record.write_bytes};
    b.processes.push_back(u);
  }
  return b;
}

struct Work {
  std::vector<store::SpooledBatch> batches;  // in (node, tick) order, seq per node
  uint64_t samples = 0;
};

// The job every node writes into: a Slurm job, or a container for API keys (which push containers only).
constexpr uint64_t kBenchJob = 1000;
constexpr uint64_t kBenchContainer = (1ULL << 63) | 0xbe4c4be4c4beULL;

Work make_work(uint32_t nodes, uint32_t procs, uint32_t ticks, uint64_t job = kBenchJob) {
  Work w;
  const int64_t t0 = static_cast<int64_t>(time(nullptr)) - ticks - 60;
  for (uint32_t t = 0; t < ticks; ++t)
    for (uint32_t n = 0; n < nodes; ++n) {
      store::Batch b = make_batch(job, n, procs, t0 + t, t0);
      w.samples += procs + 1;
      w.batches.push_back({{b.job.node, b.job.job_id, 77, t + 1ULL}, wire::encode_batch(b)});
    }
  return w;
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "direct" && argc >= 6 && argc <= 8) {
    // As bcd's group commit applies them: the requests of 4 pushers, each a bundle of one node's next 100
    // ticks, share a transaction.
    const size_t per_txn = argc >= 7 ? static_cast<size_t>(std::atoi(argv[6])) : 400;
    const size_t per_request = argc == 8 ? static_cast<size_t>(std::atoi(argv[7])) : 100;
    const auto nodes = static_cast<uint32_t>(std::atoi(argv[3]));
    const auto ticks = static_cast<uint32_t>(std::atoi(argv[5]));
    if (nodes == 0 || per_txn == 0 || per_request == 0)
      throw std::runtime_error("NODES and the batch counts must be positive");
    Work w = make_work(nodes, std::atoi(argv[4]), ticks);
    // make_work's (tick, node) order into bcd's: for each round of BATCHES_PER_REQUEST ticks, each node's.
    std::vector<store::SpooledBatch> arrival;
    arrival.reserve(w.batches.size());
    for (size_t round = 0; round < ticks; round += per_request)
      for (uint32_t n = 0; n < nodes; ++n)
        for (size_t t = round; t < std::min<size_t>(ticks, round + per_request); ++t)
          arrival.push_back(std::move(w.batches[t * nodes + n]));
    w.batches = std::move(arrival);
    store::OpenOptions options;
    if (const char* d = std::getenv("BC_BENCH_DURABILITY"); d && std::string(d) == "nosync")
      options.durability = store::Durability::NoSync;
    auto db = store::Store::open(argv[2], options);
    // Decoding is part of bcd's work too, so it is timed here as well.
    const auto start = Clock::now();
    const double cpu_start = cpu_seconds();
    for (size_t from = 0; from < w.batches.size(); from += per_txn) {
      std::vector<store::Batch> group;
      std::vector<store::BatchId> ids;
      for (size_t i = from; i < std::min(w.batches.size(), from + per_txn); ++i) {
        group.push_back(
            wire::decode_batch(w.batches[i].wire, wire::Identity::Deferred, group.empty() ? nullptr : &group.back()));
        ids.push_back(w.batches[i].id);
      }
      db->write_batches_once(group, ids);
    }
    const double wall = seconds_since(start);
    std::printf("samples %llu seconds %.3f batches %zu requests 0 bytes 0 cpu %.3f\n",
                static_cast<unsigned long long>(w.samples), wall, w.batches.size(), cpu_seconds() - cpu_start);
    return 0;
  }
  if (mode == "prefill" && argc == 7) {
    const auto jobs = static_cast<uint32_t>(std::atoi(argv[3]));
    const auto procs = static_cast<uint32_t>(std::atoi(argv[4]));
    const auto ticks = static_cast<uint32_t>(std::atoi(argv[5]));
    const auto running = static_cast<uint32_t>(std::atoi(argv[6]));
    store::OpenOptions options;
    options.durability = store::Durability::NoSync;  // history, not a measurement
    auto db = store::Store::open(argv[2], options);
    const int64_t t0 = static_cast<int64_t>(time(nullptr)) - ticks - 3600;
    for (uint32_t j = 0; j < jobs; ++j)
      for (uint32_t t = 0; t < ticks; ++t) {
        store::Batch b = make_batch(2000 + j, j % 20, procs, t0 + t, t0);
        b.job.user = "user" + std::to_string(j % 50);
        if (j >= running && t + 1 == ticks) b.job.end_ms = (t0 + t) * 1000 + 500;
        db->write_batch(b);
      }
    std::printf("jobs %u processes %u ticks %u running %u\n", jobs, procs, ticks, std::min(jobs, running));
    return 0;
  }
  if (mode == "http" && argc >= 8) {
    ship::ShipOptions o;
    o.central_url = argv[2];
    o.request_timeout_s = 120;
    std::vector<std::string> node_keys;  // an API key is bound to one node: line n is node n's
    std::string ready_file;
    for (int i = 8; i + 1 < argc; i += 2) {
      if (std::string(argv[i]) == "--api-keys") {
        std::ifstream in(argv[i + 1]);
        for (std::string line; std::getline(in, line);) node_keys.push_back(line);
      }
      if (std::string(argv[i]) == "--munge-socket") o.munge_socket = argv[i + 1];
      if (std::string(argv[i]) == "--ready-file") ready_file = argv[i + 1];
    }
    const auto nodes = static_cast<uint32_t>(std::atoi(argv[3]));
    if (!node_keys.empty() && node_keys.size() < nodes) throw std::runtime_error("--api-keys needs one key per node");
    Work w = make_work(nodes, std::atoi(argv[4]), std::atoi(argv[5]), node_keys.empty() ? kBenchJob : kBenchContainer);
    const int clients = std::atoi(argv[6]);
    const size_t per_request = static_cast<size_t>(std::atoi(argv[7]));
    if (nodes == 0 || clients <= 0 || per_request == 0)
      throw std::runtime_error("NODES, CLIENTS and BATCHES_PER_REQUEST must be positive");
    // A node's shipper sends its outbox oldest first, one request at a time, so bcd gets each node's ticks
    // in order. Each client here stands for the nodes n with n % CLIENTS == its number, and goes round them,
    // sending each node's next bundle of BATCHES_PER_REQUEST ticks.
    std::vector<std::vector<std::string>> node_bodies(nodes);
    for (uint32_t n = 0; n < nodes; ++n) {
      std::vector<store::SpooledBatch> mine;
      for (size_t i = n; i < w.batches.size(); i += nodes) mine.push_back(w.batches[i]);  // (tick, node) order
      for (size_t i = 0; i < mine.size(); i += per_request) {
        std::vector<store::SpooledBatch> part(mine.begin() + static_cast<long>(i),
                                              mine.begin() + static_cast<long>(std::min(mine.size(), i + per_request)));
        node_bodies[n].push_back(wire::encode_bundle(part));
      }
    }
    std::vector<std::vector<std::pair<uint32_t, const std::string*>>> client_bodies(static_cast<size_t>(clients));
    size_t requests = 0;
    uint64_t bytes = 0;
    for (size_t round = 0;; ++round) {
      bool any = false;
      for (uint32_t n = 0; n < nodes; ++n) {
        if (round >= node_bodies[n].size()) continue;
        client_bodies[n % static_cast<uint32_t>(clients)].emplace_back(n, &node_bodies[n][round]);
        bytes += node_bodies[n][round].size();
        ++requests;
        any = true;
      }
      if (!any) break;
    }
    std::atomic<int> failures{0};
    if (!ready_file.empty() && !std::ofstream(ready_file)) throw std::runtime_error("cannot create " + ready_file);
    const auto start = Clock::now();
    const double cpu_start = cpu_seconds();
    std::vector<std::thread> threads;
    std::vector<std::vector<double>> latencies(client_bodies.size());  // ms per request, per client
    for (size_t c = 0; c < client_bodies.size(); ++c)
      threads.emplace_back([&o, &node_keys, &failures, &list = client_bodies[c], &mine_ms = latencies[c]] {
        ship::ShipOptions mine = o;
        for (const auto& [node, body] : list) {
          if (!node_keys.empty()) mine.api_key = node_keys[node];
          std::string answer, error;
          const auto sent = Clock::now();
          const long status = ship::post_bundle(mine, *body, answer, error);
          mine_ms.push_back(seconds_since(sent) * 1000);
          if (status != 200) {
            if (failures++ == 0) std::fprintf(stderr, "bc-central-bench: %s %s\n", error.c_str(), answer.c_str());
          }
        }
      });
    for (auto& t : threads) t.join();
    const double s = seconds_since(start);
    const double pusher_cpu = cpu_seconds() - cpu_start;
    if (failures) return 1;
    std::vector<double> all_ms;
    for (const auto& l : latencies) all_ms.insert(all_ms.end(), l.begin(), l.end());
    std::sort(all_ms.begin(), all_ms.end());
    auto percentile = [&all_ms](double p) {
      return all_ms.empty()
                 ? 0.0
                 : all_ms[std::min(all_ms.size() - 1, static_cast<size_t>(p * static_cast<double>(all_ms.size())))];
    };
    std::printf(
        "samples %llu seconds %.3f batches %zu requests %zu bytes %llu pushers_cpu %.3f p50_ms %.2f p99_ms %.2f\n",
        static_cast<unsigned long long>(w.samples), s, w.batches.size(), requests,
        static_cast<unsigned long long>(bytes), pusher_cpu, percentile(0.50), percentile(0.99));
    return 0;
  }
  std::fprintf(stderr, "usage: see the head of bench/central/central_bench.cpp\n");
  return 2;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bc-central-bench: %s\n", e.what());
  return 1;
}
