// The node's set of BPF programs and shared maps, pinned under Options::pin_dir/<tag>/: loading it (the
// verifier), pinning, attaching and detaching, the slot table's bookkeeping, and check_events(). Internal to
// cgroup_monitor/bpf: events.cpp builds the collector on it. The sharing design is told in events.hpp.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cgroup_monitor/bpf/bc_events.h"
#include "cgroup_monitor/bpf/events.hpp"
#include "common/fd.hpp"

namespace bc::events::detail {

using bc::UniqueFd;

std::string errno_text(int err);

// Debug lines only reach the sink with Options::verbose.
class Logger {
 public:
  Logger(std::function<void(LogLevel, const std::string&)> sink, bool verbose);
  void operator()(LogLevel level, const std::string& text) const noexcept;

 private:
  std::function<void(LogLevel, const std::string&)> sink_;
  bool verbose_;
};

// Exclusive flock on the run dir's bpf-events.lock, released by the destructor. Slots are handed out, and
// sets loaded and removed, under it.
class SlotLock {
 public:
  static std::optional<SlotLock> take(const std::string& run_dir, std::string& error);

 private:
  explicit SlotLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), 0 if it is gone.
// state receives field 3.
uint64_t proc_start_ticks(uint32_t pid, char* state = nullptr);
// A process in one of these states has exited (a zombie waiting to be reaped, or dead).
inline bool has_ended(char state) { return state == 'Z' || state == 'X'; }

// The kernel's tracked_bits array, mapped: user space sets a tgid's bit (an atomic or, as the programs do)
// before it adds the tgid to tracked.
class TrackedBits {
 public:
  TrackedBits() = default;
  explicit TrackedBits(int map_fd);
  TrackedBits(TrackedBits&& o) noexcept;
  TrackedBits& operator=(TrackedBits&& o) noexcept;
  ~TrackedBits();
  explicit operator bool() const noexcept { return words_ != nullptr; }
  void mark(uint32_t tgid) noexcept;

 private:
  void reset() noexcept;
  uint64_t* words_ = nullptr;
};

// The pinned maps a collector uses.
struct Pins {
  UniqueFd tracked, slot_cfg, slot_stats, slot_owner, node_cfg, rings, files, conns;
  TrackedBits tracked_bits;  // the mapping outlives the map's fd
};

// The BPF object to load: built into the binary, or read from Options::object_file.
class ObjectSource {
 public:
  // Empty file: the built-in object. Nothing on error, which says why.
  static std::optional<ObjectSource> open(const std::string& file, std::string& error);
  const void* data() const noexcept;
  size_t size() const noexcept;
  uint64_t tag() const noexcept { return tag_; }  // its bytes and BC_LAYOUT_VERSION: pins of another are never used
  const std::string& file() const noexcept { return file_; }
  std::string describe() const;  // "built in" or the file

 private:
  std::string file_;
  std::vector<char> bytes_;  // empty for the built-in object
  uint64_t tag_ = 0;
};

std::string tag_hex(uint64_t tag);

// Makes sure pin_dir can live on a BPF filesystem, mounting /sys/fs/bpf if that is where it goes.
bool ensure_bpffs(const std::string& pin_dir, const Logger& log, std::string& error);
void remove_pin_dir(const std::string& dir);
std::optional<bc_meta> read_meta(const std::string& dir);
// The maps of a complete set; open_own_pins also requires what this build's programs use.
bool open_pins(const std::string& dir, Pins& pins);
bool open_own_pins(const std::string& dir, Pins& pins);

// What a load did. On failure, error says why in one line, and remember says whether the kernel refused the
// object itself (a verifier or map refusal the same kernel will repeat), as opposed to a lack of privilege
// or of resources that may pass.
struct LoadResult {
  std::string error;
  bool remember = false;
  std::vector<std::string> verifier_log;  // the last lines of the refused program's verifier log
  double load_ms = 0;
  std::vector<ProgramCost> programs;
};

// Remembers a refused load on the node (load_failure.hpp) for this kernel and object, now; logs when it
// cannot. True when remembered.
bool remember_load_failure(const std::string& memory, const std::string& object_tag, const std::string& reason,
                           const Logger& log);

// Loads the object and pins maps, programs and (last) meta under dir. Under the lock.
bool load_and_pin(const std::string& dir, const ObjectSource& object, const Logger& log, bool verbose,
                  LoadResult& result);
// Loads a private copy of the object (nothing pinned, for a check), attaches each program to its tracepoint
// and detaches it again. False when it does not load (result says why); attach_error says what did not attach.
bool load_and_try_attach(const ObjectSource& object, const Logger& log, bool verbose, LoadResult& result,
                         std::string& attach_error);
// The verifier figures of the programs pinned under dir.
std::vector<ProgramCost> pinned_costs(const std::string& dir);

// Under the lock: attaches the pinned programs whose links are not pinned (the first monitor of a busy
// period). False with error set if one cannot be attached; those attached stay (the caller detaches).
bool attach_programs(const std::string& dir, std::string& error);
// Under the lock, when no job uses the set: removing the link pins detaches the programs.
void detach_programs(const std::string& dir);

// Clears a slot in the kernel: no more events for it (epoch 0), its tracked tgids gone. Its ring and
// aggregate maps stay in the arrays for the slot's next owner, which empties and reuses them: every change of
// an array-of-maps element waits for an RCU grace period (15 ms here), and the job's first tasks wait for
// their monitor to be ready.
void clear_slot(const Pins& pins, uint32_t slot);
// The inner map installed at outer[index], if it has this type, key and value size and capacity.
UniqueFd installed_inner(int outer, uint32_t index, uint32_t type, uint32_t key_size, uint32_t value_size,
                         uint32_t max_entries);
// Under the lock: frees the slots of dead monitors. Returns how many slots are still held.
int reclaim_dead_slots(const Pins& pins, const Logger& log);
// The slots held by live monitors (read only: no lock needed).
int live_slots(const Pins& pins);
// The set's programs are attached (their link pins exist).
bool set_attached(const std::string& dir);
// Under the lock: removes sets of other tags (older builds) that nobody uses any more.
void remove_unused_sets(const std::string& pin_dir, const std::string& keep, const Logger& log);

}  // namespace bc::events::detail
