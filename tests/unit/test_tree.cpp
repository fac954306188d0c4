#include <gtest/gtest.h>

#include <sstream>

#include "sacct_ext/report.hpp"

using namespace bc::report;
namespace store = bc::store;

namespace {
store::ProcessRecord proc(const char* node, uint32_t pid, uint32_t ppid, int64_t start, std::vector<std::string> argv) {
  store::ProcessRecord p;
  p.node = node;
  p.pid = pid;
  p.ppid = ppid;
  p.start_ms = start;
  p.end_ms = start + 10;
  p.command = argv.empty() ? "?" : argv[0];
  p.argv = std::move(argv);
  p.step = store::kStepBatch;
  return p;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}
}  // namespace

TEST(Tree, ChildrenUnderParentsInStartOrder) {
  JobData job;
  // Out of order on purpose; a parent outside the job (slurmstepd, 1) makes a root.
  job.processes = {proc("n1", 12, 11, 300, {"sleep", "1"}), proc("n1", 10, 1, 100, {"/bin/bash", "script"}),
                   proc("n1", 11, 10, 200, {"sh", "-c", "sleep 1"}), proc("n1", 13, 10, 250, {"dd"}),
                   proc("n2", 10, 5, 150, {"hostname"})};
  auto out = lines(format_tree(job));
  ASSERT_EQ(out.size(), 7u) << format_tree(job);
  EXPECT_EQ(out[0], "node n1:");
  EXPECT_EQ(out[1].rfind("  10 /bin/bash script  [batch", 0), 0u) << out[1];
  EXPECT_EQ(out[2].rfind("  \u251c\u2500 11 sh -c sleep 1", 0), 0u) << out[2];
  EXPECT_EQ(out[3].rfind("  \u2502  \u2514\u2500 12 sleep 1", 0), 0u) << out[3];
  EXPECT_EQ(out[4].rfind("  \u2514\u2500 13 dd", 0), 0u) << out[4];
  EXPECT_EQ(out[5], "node n2:");
  // Same pid on another node is another process, a root there.
  EXPECT_EQ(out[6].rfind("  10 hostname", 0), 0u) << out[6];
}

TEST(Tree, SelfParentAndControlCharactersAreSafe) {
  JobData job;
  job.processes = {proc("n1", 7, 7, 1, {"weird\x1b[31m"})};
  auto out = format_tree(job);
  EXPECT_NE(out.find("7 weird?[31m"), std::string::npos) << out;
}

TEST(Tree, RanksOfAMultiTaskStepAndThreadsAreShown) {
  JobData job;
  job.processes = {proc("n1", 20, 1, 100, {"a.out"}), proc("n1", 21, 1, 100, {"a.out"}),
                   proc("n1", 22, 21, 150, {"helper"})};
  for (auto& p : job.processes) p.step = 0;
  job.processes[0].task = 0;
  job.processes[1].task = 1;
  job.processes[1].max_threads = 8;
  job.processes[2].task = 1;
  job.processes[2].max_threads = 1;
  auto out = lines(format_tree(job));
  ASSERT_EQ(out.size(), 4u) << format_tree(job);
  EXPECT_NE(out[1].find("20 a.out  [0 rank 0 cpu "), std::string::npos) << out[1];
  EXPECT_NE(out[2].find("21 a.out  [0 rank 1 threads 8 cpu "), std::string::npos) << out[2];
  EXPECT_NE(out[3].find("22 helper  [0 rank 1 cpu "), std::string::npos) << out[3];
  // One task in the step: no rank to tell apart.
  job.processes.erase(job.processes.begin());
  EXPECT_EQ(format_tree(job).find(" rank "), std::string::npos) << format_tree(job);
}
