// bcd's job index against a real store: a summary is reused only while its job's records are unchanged, and
// the running set follows what ingest wrote and what the store says.
#include <gtest/gtest.h>

#include "store_test_util.hpp"
#include "web/bcd/job_index.hpp"

using namespace bc;
using namespace bc::store;
using bc::store::testing::TempDir;
using bc::store::testing::test_options;

using bc::store::testing::busy_tick;

TEST(JobIndex, ASummaryFollowsItsJobsRecords) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  bcd::JobIndex index(*store);
  Batch first = busy_tick(42, "n1", 1'000'000, 2);  // CPU: t * 1000 + pid ns per process
  store->write_batch(first);
  auto s = index.summary(42, store->job_nodes(42));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->user, "alice");
  EXPECT_EQ(s->sacct_id, "42");
  EXPECT_TRUE(s->running);
  EXPECT_DOUBLE_EQ(s->cpu_seconds, 2.000000003);  // no cgroup CPU: the processes' sum
  EXPECT_EQ(s->max_rss_bytes, 2u << 20);
  // The job list's entry, printed with the summary.
  EXPECT_NE(s->list_entry.find(R"("id":42,"job_id":"42","array":null,"container":"job_42","user":"alice")"),
            std::string::npos)
      << s->list_entry;

  Batch last = busy_tick(42, "n1", 2'000'000, 2, 1'700'000'001'500);
  store->write_batch(last);
  s = index.summary(42, store->job_nodes(42));
  ASSERT_TRUE(s);
  EXPECT_DOUBLE_EQ(s->cpu_seconds, 4.000000003);  // recomputed: the record changed
  EXPECT_FALSE(s->running);
  ASSERT_TRUE(s->end_ms);
  EXPECT_EQ(*s->end_ms, 1'700'000'001'500);

  EXPECT_FALSE(index.summary(43, store->job_nodes(43)));  // no such job
  EXPECT_EQ(index.summaries(), 1u);
  index.keep_only({});
  EXPECT_EQ(index.summaries(), 0u);
}

TEST(JobIndex, RunningJobsFollowIngestAndTheStore) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  Batch a = busy_tick(1, "n1", 1'700'000'000, 1);
  Batch b = busy_tick(2, "n1", 1'700'000'000, 1);
  Batch done = busy_tick(3, "n1", 1'700'000'000, 1, 1'700'000'000'900);
  for (Batch* x : {&a, &b, &done}) store->write_batch(*x);

  bcd::JobIndex index(*store);
  index.load_running();
  auto ids = [&] {
    std::vector<uint64_t> out;
    for (const auto& [id, nodes] : index.running_jobs()) {
      EXPECT_FALSE(nodes.empty());
      out.push_back(id);
    }
    return out;
  };
  EXPECT_EQ(ids(), (std::vector<uint64_t>{1, 2}));

  // Job 2 ends on its node; ingest says so; the next read drops it.
  Batch end2 = busy_tick(2, "n1", 1'700'000'001, 1, 1'700'000'001'900);
  store->write_batch(end2);
  index.written(2, false);
  EXPECT_EQ(ids(), (std::vector<uint64_t>{1}));

  // A new job written by ingest joins; a second node of an ended job brings it back.
  Batch c = busy_tick(4, "n1", 1'700'000'000, 1);
  store->write_batch(c);
  index.written(4, true);
  Batch late_node = busy_tick(2, "n2", 1'700'000'002, 1);
  store->write_batch(late_node);
  index.written(2, true);
  EXPECT_EQ(ids(), (std::vector<uint64_t>{1, 2, 4}));
}

// A node with no end that has sent nothing since the other node's end (a node lost with the job) does not
// keep the job running; its data landing late does.
TEST(JobIndex, ANodeSilentSinceTheOthersEndDoesNotKeepTheJobRunning) {
  TempDir dir;
  auto store = Store::open(dir.store(), test_options());
  Batch lost = busy_tick(5, "n2", 1'700'000'000, 1);
  Batch kept = busy_tick(5, "n1", 1'700'000'005, 1, 1'700'000'005'500);
  for (Batch* x : {&lost, &kept}) store->write_batch(*x);
  bcd::JobIndex index(*store);
  index.load_running();
  EXPECT_TRUE(index.running_jobs().empty());
  auto s = index.summary(5, store->job_nodes(5));
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->running);

  Batch late = busy_tick(5, "n2", 1'700'000'006, 1);
  store->write_batch(late);
  index.written(5, true);
  ASSERT_EQ(index.running_jobs().size(), 1u);
  EXPECT_TRUE(index.summary(5, store->job_nodes(5))->running);
}
