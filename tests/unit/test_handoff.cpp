// The task-to-monitor handoff (cgroup_monitor/handoff.hpp): a real socket, the task side in a thread.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "cgroup_monitor/handoff.hpp"

using bc::monitor::hand_off_self;
using bc::monitor::HandoffResult;
using bc::monitor::HandoffServer;

namespace {

std::string socket_path() {
  char dir[] = "/tmp/bc-handoff-XXXXXX";
  EXPECT_NE(::mkdtemp(dir), nullptr);
  return std::string(dir) + "/job_1.sock";
}

// Serves the socket until a task has been answered with `answer`: the (pid, step) of each call, and the
// tasks that had stopped waiting.
struct Served {
  std::vector<std::pair<uint32_t, uint32_t>> calls;
  uint64_t late = 0;
};
Served serve_until_answered(HandoffServer& server, char answer) {
  Served served;
  while (served.calls.empty()) {
    pollfd p{server.fd(), POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) {
      ADD_FAILURE() << "no task connected within 5 s";
      break;
    }
    served.late += server.serve([&](uint32_t pid, uint32_t step) {
      served.calls.emplace_back(pid, step);
      return answer;
    });
  }
  return served;
}

// Serves the socket, holding every task (the events still load), until one is held; returns how often take was
// asked.
int hold_until_connected(HandoffServer& server) {
  int asked = 0;
  while (server.held() == 0) {
    pollfd p{server.fd(), POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) {
      ADD_FAILURE() << "no task connected within 5 s";
      break;
    }
    EXPECT_EQ(server.serve([&](uint32_t, uint32_t) {
      ++asked;
      return bc::monitor::kHandoffNotYet;
    }),
              0u);
  }
  return asked;
}

}  // namespace

TEST(Handoff, TaskIsTrackedAndGetsTheAnswer) {
  const std::string path = socket_path();
  HandoffServer server(path);
  ASSERT_GE(server.fd(), 0) << server.error();
  HandoffResult result;
  std::thread task([&] { result = hand_off_self(path, 7, 5000); });
  const Served served = serve_until_answered(server, bc::monitor::kHandoffTracked);
  task.join();
  EXPECT_EQ(result.outcome, HandoffResult::Outcome::Tracked) << result.message;
  ASSERT_EQ(served.calls.size(), 1u);
  EXPECT_EQ(served.calls[0].first, static_cast<uint32_t>(::getpid()));  // from SO_PEERCRED
  EXPECT_EQ(served.calls[0].second, 7u);
  EXPECT_EQ(served.late, 0u);
}

TEST(Handoff, NoEventsAnswerEndsTheWait) {
  const std::string path = socket_path();
  HandoffServer server(path);
  ASSERT_GE(server.fd(), 0) << server.error();
  HandoffResult result;
  std::thread task([&] { result = hand_off_self(path, 0, 5000); });
  serve_until_answered(server, bc::monitor::kHandoffNoEvents);
  task.join();
  EXPECT_EQ(result.outcome, HandoffResult::Outcome::NoEvents);
}

TEST(Handoff, TaskThatStoppedWaitingIsCountedLate) {
  const std::string path = socket_path();
  HandoffServer server(path);
  ASSERT_GE(server.fd(), 0) << server.error();
  // The monitor is busy (loading its programs): the task gives up after 50 ms.
  HandoffResult result = hand_off_self(path, 3, 50);
  EXPECT_EQ(result.outcome, HandoffResult::Outcome::TimedOut);
  EXPECT_GE(result.waited_ms, 50.0);
  int served = 0;
  const uint64_t late = server.serve([&](uint32_t, uint32_t step) {
    EXPECT_EQ(step, 3u);
    ++served;
    return bc::monitor::kHandoffTracked;
  });
  EXPECT_EQ(served, 1);  // still tracked: what it does from now on is seen
  EXPECT_EQ(late, 1u);
}

// While the monitor's events load, a task is held and answered once the load has ended.
TEST(Handoff, TaskIsHeldWhileTheEventsLoad) {
  const std::string path = socket_path();
  HandoffServer server(path);
  ASSERT_GE(server.fd(), 0) << server.error();
  HandoffResult result;
  std::thread task([&] { result = hand_off_self(path, 9, 10000); });
  EXPECT_EQ(hold_until_connected(server), 1);
  // Loaded: the held task is asked again and gets its answer.
  std::vector<uint32_t> steps;
  const uint64_t late = server.serve([&](uint32_t, uint32_t step) {
    steps.push_back(step);
    return bc::monitor::kHandoffTracked;
  });
  task.join();
  EXPECT_EQ(late, 0u);
  EXPECT_EQ(steps, std::vector<uint32_t>{9});
  EXPECT_EQ(server.held(), 0u);
  EXPECT_EQ(result.outcome, HandoffResult::Outcome::Tracked) << result.message;
}

// A held task that gave up before the load ended is still tracked, and counted late.
TEST(Handoff, HeldTaskThatGaveUpIsLate) {
  const std::string path = socket_path();
  HandoffServer server(path);
  ASSERT_GE(server.fd(), 0) << server.error();
  HandoffResult result;
  std::thread task([&] { result = hand_off_self(path, 2, 200); });
  hold_until_connected(server);
  task.join();
  EXPECT_EQ(result.outcome, HandoffResult::Outcome::TimedOut);
  int tracked = 0;
  EXPECT_EQ(server.serve([&](uint32_t, uint32_t) {
    ++tracked;
    return bc::monitor::kHandoffNoEvents;
  }),
            1u);
  EXPECT_EQ(tracked, 1);
}

TEST(Handoff, NoMonitorMeansABoundedWait) {
  const std::string path = socket_path();  // nothing listens there
  HandoffResult result = hand_off_self(path, 0, 30);
  EXPECT_EQ(result.outcome, HandoffResult::Outcome::TimedOut);
  EXPECT_GE(result.waited_ms, 30.0);  // it waited out its time for a monitor still starting, then went on
}

TEST(Handoff, ServerRemovesItsSocket) {
  const std::string path = socket_path();
  {
    HandoffServer server(path);
    ASSERT_GE(server.fd(), 0) << server.error();
    EXPECT_EQ(::access(path.c_str(), F_OK), 0);
    HandoffServer again(path);  // a restarted monitor replaces a leftover socket
    EXPECT_GE(again.fd(), 0) << again.error();
  }
  EXPECT_NE(::access(path.c_str(), F_OK), 0);
}

TEST(Handoff, NoMonitorHoldingTheLockEndsTheWaitEarly) {
  const std::string path = socket_path();  // nothing listens there, and nobody holds the lock
  const std::string lock = path + ".lock";
  HandoffResult result = hand_off_self(path, 0, 5000, lock);
  EXPECT_EQ(result.outcome, HandoffResult::Outcome::Failed) << result.message;
  EXPECT_NE(result.message.find("no monitor"), std::string::npos) << result.message;
  EXPECT_GE(result.waited_ms, static_cast<double>(bc::monitor::kNoMonitorGiveUpMs));
}
