// Internal to accounting_db: who may use an LMDB environment while its map is resized.
//
// LMDB lets any number of read transactions run beside the one writer, but mdb_env_set_mapsize (growing the
// map, or adopting another process's growth) and reopening the environment need every transaction of this
// process closed. So each transaction holds the gate shared, and a resize holds it alone. A waiting resize
// stops new transactions from entering, so a stream of readers cannot starve it (and with it the writer that
// needs the room). A thread that already holds the gate passes it again: a nested transaction never waits
// for a resize that waits for it.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace bc::store::lmdb {

class EnvGate {
 public:
  // Held for one transaction's life.
  class Pass {
   public:
    Pass() = default;
    explicit Pass(EnvGate* gate) : gate_(gate) {}
    ~Pass() {
      if (gate_) gate_->leave();
    }
    Pass(Pass&& o) noexcept : gate_(std::exchange(o.gate_, nullptr)) {}
    Pass& operator=(Pass&& o) noexcept {
      if (this != &o) {
        if (gate_) gate_->leave();
        gate_ = std::exchange(o.gate_, nullptr);
      }
      return *this;
    }
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;

   private:
    EnvGate* gate_ = nullptr;
  };

  EnvGate() = default;
  EnvGate(const EnvGate&) = delete;
  EnvGate& operator=(const EnvGate&) = delete;

  Pass enter() {
    std::unique_lock lock(mutex_);
    const bool mine = held_here() || resizer_ == std::this_thread::get_id();
    if (!mine) changed_.wait(lock, [&] { return !resizing_ && waiting_resizes_ == 0; });
    ++users_;
    held().push_back(this);
    return Pass(this);
  }

  // Runs fn with no transaction of this process open. A thread holding a pass must not call it: it would
  // wait for itself, so that is a logic error.
  template <typename Fn>
  void exclusively(Fn&& fn) {
    std::unique_lock lock(mutex_);
    if (held_here()) throw std::logic_error("LMDB map resize asked for inside a transaction");
    ++waiting_resizes_;
    changed_.wait(lock, [&] { return users_ == 0 && !resizing_; });
    --waiting_resizes_;
    resizing_ = true;
    resizer_ = std::this_thread::get_id();
    lock.unlock();
    struct Done {
      EnvGate& gate;
      ~Done() {
        std::lock_guard relock(gate.mutex_);
        gate.resizing_ = false;
        gate.resizer_ = {};
        gate.changed_.notify_all();
      }
    } done{*this};
    std::forward<Fn>(fn)();
  }

 private:
  void leave() {
    std::lock_guard lock(mutex_);
    auto& mine = held();
    if (auto it = std::find(mine.rbegin(), mine.rend(), this); it != mine.rend()) mine.erase(std::next(it).base());
    if (--users_ == 0) changed_.notify_all();
  }
  bool held_here() const {
    const auto& mine = held();
    return std::find(mine.begin(), mine.end(), this) != mine.end();
  }
  // The gates this thread holds passes of (one entry per pass).
  static std::vector<const EnvGate*>& held() {
    thread_local std::vector<const EnvGate*> gates;
    return gates;
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  unsigned users_ = 0;
  unsigned waiting_resizes_ = 0;
  bool resizing_ = false;
  std::thread::id resizer_;
};

}  // namespace bc::store::lmdb
