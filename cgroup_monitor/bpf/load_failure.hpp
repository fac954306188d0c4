// A failed load of the node's BPF programs, remembered on the node: later monitors skip the attempt at once
// (the verifier is not run again for the same refusal), and the SPANK plugin does not make tasks wait for
// events that cannot come. Shared by bc-monitor (events), which writes and honours it, and the plugin, which
// only reads it; so nothing here needs libbpf, and nothing throws.
//
// Key. A load's outcome is decided by the kernel (release and build) and the BPF object. The file is named by
// the object as the plugin can see it without reading it: the bc-monitor binary that embeds it, or the
// object file given with bpf_object=, each by device, inode, size and mtime, so a new build of either is a
// new file. Inside are the kernel and the object's tag (its hash, for the administrator's check): a monitor
// or the plugin honours the file only for the running kernel, and a monitor drops one of another kernel.
// The files live in the node's run dir (/run, a tmpfs), so a reboot forgets them too.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace bc::events {

// Where a node keeps what its monitors share: the slot lock and these files.
inline constexpr char kNodeRunDir[] = "/run/bubble-chamber";

struct LoadFailure {
  std::string kernel;      // running_kernel() when the load failed
  std::string object_tag;  // 16 hex digits: the object's bytes and the shared layout (see events.hpp)
  int64_t since = 0;       // Unix seconds of the failure that is remembered
  std::string reason;      // one line: why the load failed
};

// "release version" of the running kernel, as uname -r and uname -v print them.
std::string running_kernel();

// The memory file for the object a monitor binary loads: the one built into it (object_file empty) or
// object_file. Empty when either file cannot be looked at.
std::string load_failure_path(const std::string& run_dir, const std::string& monitor_binary,
                              const std::string& object_file);

std::optional<LoadFailure> read_load_failure(const std::string& path);
// Replaces the file atomically; the same kernel and object keep the earlier since. False, with error set,
// when it cannot be written.
bool write_load_failure(const std::string& path, const LoadFailure& failure, std::string& error);
void forget_load_failure(const std::string& path);

// For the plugin: a failure is remembered for this monitor binary and object on the running kernel.
bool load_known_to_fail(const std::string& run_dir, const std::string& monitor_binary,
                        const std::string& object_file) noexcept;

// "2026-12-06T18:40:00Z"
std::string utc_time_text(int64_t unix_seconds);

}  // namespace bc::events
