// The monitor's cost per sample of a job's processes (ProcessTable::sample + commit, what bc-monitor does
// each tick before the store write), with the processes' Slurm ranks known and without: MPI-like ranks of
// RANKS tasks, each with CHILDREN helper processes of THREADS threads each, all asleep. Both tables sample
// the same processes, in alternation, ROUNDS times each; the median CPU time per sample of each is printed
// as BENCH lines, with what the rank-aware table recorded (every process's rank and thread count).
//   bc-table-bench RANKS CHILDREN THREADS ROUNDS
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "cgroup_monitor/proc_parse.hpp"
#include "cgroup_monitor/process_table.hpp"
#include "common/fd.hpp"

using namespace bc::monitor;

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double cpu_us() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// A helper: THREADS threads (the main one included), asleep until killed.
[[noreturn]] void helper(int threads) {
  std::vector<std::thread> extra;
  for (int i = 1; i < threads; ++i) extra.emplace_back([] { pause(); });
  pause();
  _exit(0);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: bc-table-bench RANKS CHILDREN THREADS ROUNDS\n");
    return 2;
  }
  const int ranks = std::atoi(argv[1]), children = std::atoi(argv[2]), threads = std::atoi(argv[3]);
  const int rounds = std::atoi(argv[4]);
  std::vector<pid_t> roots;
  std::vector<MemberPid> members;
  int ready[2];
  if (pipe(ready) != 0) return 1;
  for (int r = 0; r < ranks; ++r) {
    const pid_t root = fork();
    if (root == 0) {
      for (int c = 0; c < children; ++c)
        if (fork() == 0) helper(threads);
      if (write(ready[1], "r", 1) != 1) _exit(1);
      pause();
      _exit(0);
    }
    roots.push_back(root);
  }
  for (int r = 0; r < ranks; ++r) {
    char c;
    if (read(ready[0], &c, 1) != 1) return 1;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the helpers' threads started
  for (pid_t root : roots) {
    members.push_back({static_cast<uint32_t>(root), 0u});
    const auto text = bc::read_file("/proc/" + std::to_string(root) + "/task/" + std::to_string(root) + "/children");
    size_t at = 0;
    while (text && at < text->size()) {
      size_t end = text->find(' ', at);
      if (end == std::string::npos) end = text->size();
      if (end > at) members.push_back({static_cast<uint32_t>(std::stoul(text->substr(at, end - at))), 0u});
      at = end + 1;
    }
  }

  ProcessTable plain, ranked;
  for (int r = 0; r < ranks; ++r) {
    const auto stat = parse_proc_stat(*bc::read_file("/proc/" + std::to_string(roots[r]) + "/stat"));
    ranked.apply_task_start(static_cast<uint32_t>(roots[r]), stat->start_ticks, static_cast<uint32_t>(r));
  }
  std::vector<double> plain_us, ranked_us;
  size_t with_rank = 0, with_threads = 0, recorded = 0;
  for (int round = 0; round < rounds + 1; ++round) {
    for (ProcessTable* table : {&plain, &ranked}) {
      bc::store::Batch batch;
      const double t0 = cpu_us();
      table->sample(members, now_ms(), batch);
      table->commit(batch);
      const double spent = cpu_us() - t0;
      if (round == 0) {  // the first sample opens every process's files: not a tick's cost
        if (table == &ranked) {
          recorded = batch.processes.size();
          for (const auto& u : batch.processes) {
            with_rank += u.record.task != bc::store::kTaskUnknown;
            with_threads += u.record.max_threads == static_cast<uint32_t>(threads) || u.record.max_threads == 1;
          }
        }
        continue;
      }
      (table == &plain ? plain_us : ranked_us).push_back(spent);
    }
  }
  for (const auto& m : members) kill(static_cast<pid_t>(m.pid), SIGKILL);
  for (pid_t root : roots) waitpid(root, nullptr, 0);

  const double n = static_cast<double>(members.size());
  std::printf("BENCH monitor_processes %zu count\n", members.size());
  std::printf("BENCH monitor_sample_without_ranks_median %.0f us\n", median(plain_us));
  std::printf("BENCH monitor_sample_with_ranks_median %.0f us\n", median(ranked_us));
  std::printf("BENCH monitor_sample_per_process_without_ranks %.2f us\n", median(plain_us) / n);
  std::printf("BENCH monitor_sample_per_process_with_ranks %.2f us\n", median(ranked_us) / n);
  std::printf("BENCH monitor_sample_ranks_ratio %.3f x\n", median(ranked_us) / median(plain_us));
  std::printf("BENCH monitor_processes_with_their_rank %zu of %zu\n", with_rank, recorded);
  std::printf("BENCH monitor_processes_with_their_threads %zu of %zu\n", with_threads, recorded);
  return with_rank == recorded && recorded == members.size() ? 0 : 1;
}
