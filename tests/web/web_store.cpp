// bc-web-store: writes one synthetic job (bench/store/synthetic.hpp: N processes, one batch per second) into
// a store, for the web view's large-job test and the web bench.
//   bc-web-store PATH JOB USER UID PROCESSES SECONDS [START_EPOCH_S|live]
// The job ends after its last tick. With "live" the ticks are written in real time, one per second from
// now, as a running job's monitor would. Prints the job's totals as JSON (for the test to compare against).
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "../../bench/store/synthetic.hpp"

int main(int argc, char** argv) try {
  if (argc < 7 || argc > 8) {
    std::fputs("usage: bc-web-store PATH JOB USER UID PROCESSES SECONDS [START_EPOCH_S|live]\n", stderr);
    return 2;
  }
  bc::store::OpenOptions options;
  options.durability = bc::store::Durability::NoSync;
  auto db = bc::store::Store::open(argv[1], options);
  bc::bench::SyntheticJob job;
  job.job_id = std::stoull(argv[2]);
  job.processes = std::stoi(argv[5]);
  const int64_t seconds = std::stoll(argv[6]);
  const bool live = argc == 8 && std::string(argv[7]) == "live";
  if (live)
    job.start_s =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  else if (argc == 8) job.start_s = std::stoll(argv[7]);
  job.init();
  job.job.user = argv[3];
  job.job.uid = static_cast<uint32_t>(std::stoul(argv[4]));
  for (int64_t k = 0; k < seconds; ++k) {
    if (k + 1 == seconds) job.job.end_ms = (job.start_s + k) * 1000;
    bc::store::Batch b = job.tick(k);
    if (k == 0) {
      // Known files and connections: each process reads its input; the first three also talk to a server.
      for (const auto& p : b.processes) {
        const auto& r = p.record;
        b.files.push_back(
            {0, "", r.pid, r.start_ticks, r.argv.at(2), bc::store::kFileRead, (job.start_s) * 1000, 1, 0, 0, 0});
        if (r.pid < 10003)
          b.connections.push_back({0, "", r.pid, r.start_ticks, "10.0.0." + std::to_string(r.pid - 10000), 5000, "tcp",
                                   job.start_s * 1000, 2, r.pid == 10002 ? 1u : 0u});
      }
      b.files.push_back({0, "", b.processes[0].record.pid, b.processes[0].record.start_ticks, "/etc/missing.conf",
                         bc::store::kFileRead, job.start_s * 1000, 3, 3, 0, 0});
    }
    if (live)
      std::this_thread::sleep_until(std::chrono::system_clock::time_point(std::chrono::seconds(job.start_s + k)));
    db->write_batch(b);
    job.commit(b);
  }
  std::printf("{\"job\": %llu, \"processes\": %d, \"seconds\": %lld, \"start\": %lld}\n",
              static_cast<unsigned long long>(job.job_id), job.processes, static_cast<long long>(seconds),
              static_cast<long long>(job.start_s));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bc-web-store: %s\n", e.what());
  return 1;
}
