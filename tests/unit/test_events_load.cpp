// Loading the events: the verifier's cost of every program against our budget, and the failure path with an
// object the verifier refuses (bc_events_refused.bpf.o, built from the same source with
// BC_TEST_VERIFIER_REFUSES). Against the real kernel: root and BPF (label "bpf"). When BPF cannot load at all
// the tests skip with the reason, except under CI=true, where that is a failure.
#include <gtest/gtest.h>

#include <poll.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cgroup_monitor/bpf/events.hpp"
#include "cgroup_monitor/handoff.hpp"
#include "cgroup_monitor/job_events.hpp"

using namespace bc::events;
namespace fs = std::filesystem;

namespace {

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

class EventsLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/bc-events-load-XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    tmp_ = templ;
    opt_.run_dir = tmp_ + "/run";
    fs::create_directories(opt_.run_dir);
    opt_.pin_dir = "/sys/fs/bpf/bc-events-load-test-" + std::to_string(getpid());
    opt_.log = [this](LogLevel, const std::string& text) { log_.push_back(text); };
    // Does BPF work here at all? The built-in object must load, or nothing below means anything.
    const CheckReport probe = check_events(opt_);
    if (!probe.works) {
      if (in_ci()) FAIL() << probe.reason << " (CI=true: BPF must work here)";
      GTEST_SKIP() << "\n\n*** SKIPPED: " << probe.reason << " ***\n";
    }
    log_.clear();
  }
  void TearDown() override {
    EventCollector::reclaim_stale(opt_);
    std::error_code ec;
    fs::remove_all(tmp_, ec);
    ::rmdir(opt_.pin_dir.c_str());
  }

  // Whether libbpf spoke since the last call: it does whenever an object is opened and loaded.
  bool libbpf_ran() {
    bool ran = false;
    for (const auto& l : log_) ran = ran || l.rfind("libbpf: ", 0) == 0;
    log_.clear();
    return ran;
  }

  Options refused() const {
    Options o = opt_;
    o.object_file = BC_REFUSED_OBJECT;
    return o;
  }

  std::string tmp_;
  Options opt_;
  std::vector<std::string> log_;
};

}  // namespace

// The margin: every program costs the verifier at most a tenth of the kernel's limit, read back from the
// kernel after the load, whether the programs were loaded now or reused from the node's pinned set.
TEST_F(EventsLoad, EveryProgramStaysUnderATenthOfTheVerifierLimit) {
  const CheckReport r = check_events(opt_);
  ASSERT_TRUE(r.works) << r.reason;
  const std::vector<std::string> expected = {"bc_sys_exit", "bc_fork", "bc_exec", "bc_exit", "bc_switch"};
  ASSERT_EQ(r.programs.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(r.programs[i].name, expected[i]);
    EXPECT_GT(r.programs[i].verified_insns, 0u) << expected[i] << ": the kernel reports no figure (before 5.16?)";
    EXPECT_LE(r.programs[i].verified_insns, kVerifierInsnBudget)
        << expected[i] << " costs the verifier " << r.programs[i].verified_insns << " instructions: past a tenth of "
        << kVerifierInsnLimit << ", a later kernel may refuse it";
  }
  EXPECT_TRUE(r.attached);

  std::string reason;
  auto first = EventCollector::open(opt_, reason);
  ASSERT_NE(first, nullptr) << reason;
  EXPECT_TRUE(first->load_info().loaded_here);
  auto second = EventCollector::open(opt_, reason);
  ASSERT_NE(second, nullptr) << reason;
  EXPECT_FALSE(second->load_info().loaded_here) << "the second job reuses the pinned set";
  for (const auto* c : {first.get(), second.get()}) {
    ASSERT_EQ(c->load_info().programs.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i)
      EXPECT_EQ(c->load_info().programs[i].verified_insns, r.programs[i].verified_insns) << expected[i];
  }
}

// A refused load is remembered: the next open skips the verifier and says so, a check tries again on purpose.
TEST_F(EventsLoad, RefusedLoadIsRememberedAndSkipped) {
  std::string reason;
  EXPECT_EQ(EventCollector::open(refused(), reason), nullptr);
  EXPECT_TRUE(libbpf_ran());
  EXPECT_EQ(reason.rfind("events unavailable: cannot load the BPF programs: the verifier refused bc_switch (", 0), 0u)
      << reason;
  EXPECT_NE(reason.find("invalid access to map value"), std::string::npos) << reason;
  const std::string memory = load_failure_path(opt_.run_dir, "/proc/self/exe", BC_REFUSED_OBJECT);
  auto remembered = read_load_failure(memory);
  ASSERT_TRUE(remembered) << memory;
  EXPECT_EQ(remembered->kernel, running_kernel());
  EXPECT_TRUE(load_known_to_fail(opt_.run_dir, "/proc/self/exe", BC_REFUSED_OBJECT));
  EXPECT_FALSE(load_known_to_fail(opt_.run_dir, "/proc/self/exe", "")) << "the built-in object is another one";

  // The second job: no load, the same reason, and since when.
  std::string again;
  EXPECT_EQ(EventCollector::open(refused(), again), nullptr);
  EXPECT_FALSE(libbpf_ran()) << "the verifier ran again";
  EXPECT_EQ(again.rfind(reason + " (remembered since " + utc_time_text(remembered->since) + ";", 0), 0u) << again;

  // A check loads anyway, fails the same way, and keeps the first time.
  Options check = refused();
  const CheckReport r = check_events(check);
  EXPECT_TRUE(libbpf_ran());
  EXPECT_FALSE(r.works);
  EXPECT_TRUE(r.remembered_before);
  EXPECT_TRUE(r.remembered_now);
  EXPECT_FALSE(r.verifier_log.empty());
  EXPECT_EQ(read_load_failure(memory)->since, remembered->since);

  // The built-in object is not held back by the refused one's memory.
  auto works = EventCollector::open(opt_, reason);
  EXPECT_NE(works, nullptr) << reason;
}

// The memory holds only for the kernel and the object it was made with.
TEST_F(EventsLoad, MemoryOfAnotherKernelOrObjectIsDropped) {
  // A copy of the refused object of our own, so that it can be rebuilt.
  const std::string object = tmp_ + "/refused.bpf.o";
  fs::copy_file(BC_REFUSED_OBJECT, object);
  Options o = opt_;
  o.object_file = object;
  const std::string memory = load_failure_path(opt_.run_dir, "/proc/self/exe", object);
  std::string error;
  ASSERT_TRUE(write_load_failure(memory, {"4.19.0 #1 SMP an older kernel", "0123456789abcdef", 1, "old"}, error))
      << error;
  EXPECT_FALSE(load_known_to_fail(opt_.run_dir, "/proc/self/exe", object));
  std::string reason;
  EXPECT_EQ(EventCollector::open(o, reason), nullptr);
  EXPECT_TRUE(libbpf_ran()) << "a memory of another kernel was honoured";
  auto now = read_load_failure(memory);
  ASSERT_TRUE(now);
  EXPECT_EQ(now->kernel, running_kernel());
  EXPECT_NE(now->since, 1);
  EXPECT_EQ(EventCollector::open(o, reason), nullptr);
  EXPECT_FALSE(libbpf_ran());

  // The object rebuilt (a new file): tried again, and remembered anew.
  fs::remove(object);
  fs::copy_file(BC_REFUSED_OBJECT, object);
  EXPECT_NE(load_failure_path(opt_.run_dir, "/proc/self/exe", object), memory);
  EXPECT_FALSE(load_known_to_fail(opt_.run_dir, "/proc/self/exe", object));
  EXPECT_EQ(EventCollector::open(o, reason), nullptr);
  EXPECT_TRUE(libbpf_ran()) << "the memory of the object before it was rebuilt was honoured";
  EXPECT_TRUE(load_known_to_fail(opt_.run_dir, "/proc/self/exe", object));
}

// A check that works forgets a failure remembered for the same object (say, after a kernel fix that kept
// the release string).
TEST_F(EventsLoad, CheckThatWorksForgetsTheFailure) {
  const std::string memory = load_failure_path(opt_.run_dir, "/proc/self/exe", "");
  CheckReport r = check_events(opt_);
  ASSERT_TRUE(r.works) << r.reason;
  std::string error;
  ASSERT_TRUE(write_load_failure(memory, {running_kernel(), r.object_tag, 5, "refused yesterday"}, error)) << error;
  std::string reason;
  EXPECT_EQ(EventCollector::open(opt_, reason), nullptr);
  EXPECT_NE(reason.find("refused yesterday (remembered since"), std::string::npos) << reason;
  r = check_events(opt_);
  EXPECT_TRUE(r.works) << r.reason;
  ASSERT_TRUE(r.remembered_before);
  EXPECT_FALSE(r.remembered_now);
  EXPECT_FALSE(read_load_failure(memory));
  auto collector = EventCollector::open(opt_, reason);
  EXPECT_NE(collector, nullptr) << reason;
}

// The monitor's side: the events load on a thread of their own, tasks handed over meanwhile are held, and a
// refused load leaves the monitor sampling with the reason in the record.
TEST_F(EventsLoad, MonitorLoadsAsideAndHoldsTasksMeanwhile) {
  bc::monitor::EventSettings settings;
  settings.pin_dir = opt_.pin_dir;
  settings.run_dir = opt_.run_dir;
  settings.object_file = BC_REFUSED_OBJECT;
  std::vector<std::string> lines;
  {
    bc::monitor::JobEvents events(settings, [&](const std::string& l) { lines.push_back(l); });
    // Loading or already done: never a blocking answer.
    const char early = events.hand_off(static_cast<uint32_t>(::getpid()), 0);
    if (events.state() == bc::monitor::JobEvents::State::Loading) {
      EXPECT_EQ(early, bc::monitor::kHandoffNotYet);
      EXPECT_GE(events.loading_fd(), 0);
      pollfd p{events.loading_fd(), POLLIN, 0};
      ASSERT_EQ(::poll(&p, 1, 30000), 1) << "the load did not end within 30 s";
    }
    EXPECT_TRUE(events.finish_loading() || events.state() != bc::monitor::JobEvents::State::Loading);
    EXPECT_EQ(events.state(), bc::monitor::JobEvents::State::Unavailable);
    EXPECT_NE(events.unavailable().find("the verifier refused bc_switch"), std::string::npos) << events.unavailable();
    EXPECT_EQ(events.hand_off(static_cast<uint32_t>(::getpid()), 0), bc::monitor::kHandoffNoEvents);
    bc::monitor::ProcessTable table;
    bc::store::Batch batch;
    bc::store::JobRecord job;
    events.merge(table, 0, batch, job);
    EXPECT_EQ(job.events_unavailable, events.unavailable());
  }
  // The next monitor: at once unavailable, remembered.
  bc::monitor::JobEvents next(settings, [&](const std::string& l) { lines.push_back(l); });
  if (next.state() == bc::monitor::JobEvents::State::Loading) {
    pollfd p{next.loading_fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 30000), 1);
  }
  next.finish_loading();
  EXPECT_NE(next.unavailable().find("(remembered since"), std::string::npos) << next.unavailable();
}

// The monitor with the built-in object: the load ends, events run, and a task handed over then is tracked.
TEST_F(EventsLoad, MonitorEventsRunOnceLoaded) {
  bc::monitor::EventSettings settings;
  settings.pin_dir = opt_.pin_dir;
  settings.run_dir = opt_.run_dir;
  bc::monitor::JobEvents events(settings, [](const std::string&) {});
  if (events.state() == bc::monitor::JobEvents::State::Loading) {
    pollfd p{events.loading_fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 30000), 1) << "the load did not end within 30 s";
  }
  events.finish_loading();
  ASSERT_TRUE(events.running()) << events.unavailable();
  EXPECT_EQ(events.unavailable(), "");
  EXPECT_EQ(events.loading_fd(), -1);
  EXPECT_GT(events.load_ms(), 0.0);
  EXPECT_EQ(events.hand_off(static_cast<uint32_t>(::getpid()), 0), bc::monitor::kHandoffTracked);
}
