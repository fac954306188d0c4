// bc-monitor --check-events: whether the eBPF events work on this node, for an administrator or a node
// health check script. Loads a private copy of the programs (events::check_events) and prints the report.
#include "cgroup_monitor/events_check.hpp"

#include <cjson/cJSON.h>

#include <cstdio>
#include <memory>

#include "cgroup_monitor/bpf/events.hpp"
#include "common/json.hpp"

namespace bc::monitor {
namespace {

using Json = json::Ptr;

double percent_of_limit(uint32_t insns) { return 100.0 * insns / events::kVerifierInsnLimit; }

void print_text(const events::CheckReport& r) {
  std::printf("bubble-chamber events check: %s\n", r.works ? "events work" : "EVENTS DO NOT WORK");
  if (!r.works) std::printf("  reason:      %s\n", r.reason.c_str());
  std::printf("  kernel:      %s\n", r.kernel.c_str());
  std::printf("  BTF:         %s\n", r.btf ? "/sys/kernel/btf/vmlinux present" : "missing (/sys/kernel/btf/vmlinux)");
  if (!r.object.empty()) std::printf("  object:      %s (tag %s)\n", r.object.c_str(), r.object_tag.c_str());
  if (r.load_ms > 0) std::printf("  load time:   %.1f ms\n", r.load_ms);
  if (!r.programs.empty()) {
    std::printf("  verifier:    instructions processed per program (our budget %u, the kernel's limit %u)\n",
                events::kVerifierInsnBudget, events::kVerifierInsnLimit);
    for (const auto& p : r.programs) {
      const char* note = p.verified_insns == 0                            ? "  (this kernel does not report it)"
                         : p.verified_insns > events::kVerifierInsnBudget ? "  OVER OUR BUDGET"
                                                                          : "";
      std::printf("    %-12s %8u  %5.2f%% of the limit%s\n", p.name.c_str(), p.verified_insns,
                  percent_of_limit(p.verified_insns), note);
    }
  }
  if (r.works) std::printf("  attach:      every program attached to its tracepoint, and detached again\n");
  if (!r.verifier_log.empty()) {
    std::printf("  verifier's last words:\n");
    for (const auto& line : r.verifier_log) std::printf("    %s\n", line.c_str());
  }
  if (r.remembered_before)
    std::printf("  remembered before this check: failed since %s: %s\n",
                events::utc_time_text(r.remembered_before->since).c_str(), r.remembered_before->reason.c_str());
  if (r.remembered_now)
    std::printf(
        "  remembered now: monitors skip the load on this kernel until a check passes or the object\n"
        "                  or the kernel changes (%s)\n",
        r.memory_path.c_str());
  else if (r.works && r.remembered_before)
    std::printf("  remembered now: nothing (forgotten: monitors load the events again)\n");
  if (r.pinned_sets.empty()) {
    std::printf("  pinned sets: none (the next monitor loads the programs)\n");
  } else {
    for (const auto& s : r.pinned_sets) std::printf("  pinned set:  %s\n", s.c_str());
  }
}

void print_json(const events::CheckReport& r) {
  Json root(cJSON_CreateObject());
  cJSON* o = root.get();
  cJSON_AddBoolToObject(o, "works", r.works);
  cJSON_AddStringToObject(o, "reason", r.reason.c_str());
  cJSON_AddStringToObject(o, "kernel", r.kernel.c_str());
  cJSON_AddBoolToObject(o, "btf", r.btf);
  cJSON_AddStringToObject(o, "object", r.object.c_str());
  cJSON_AddStringToObject(o, "object_tag", r.object_tag.c_str());
  cJSON_AddNumberToObject(o, "load_ms", r.load_ms);
  cJSON_AddBoolToObject(o, "attached", r.attached);
  cJSON_AddNumberToObject(o, "verifier_insn_limit", events::kVerifierInsnLimit);
  cJSON_AddNumberToObject(o, "verifier_insn_budget", events::kVerifierInsnBudget);
  cJSON* programs = cJSON_AddArrayToObject(o, "programs");
  for (const auto& p : r.programs) {
    cJSON* j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", p.name.c_str());
    cJSON_AddNumberToObject(j, "verified_insns", p.verified_insns);
    cJSON_AddItemToArray(programs, j);
  }
  cJSON* log = cJSON_AddArrayToObject(o, "verifier_log");
  for (const auto& line : r.verifier_log) cJSON_AddItemToArray(log, cJSON_CreateString(line.c_str()));
  if (r.remembered_before) {
    cJSON* m = cJSON_AddObjectToObject(o, "remembered_before");
    cJSON_AddStringToObject(m, "since", events::utc_time_text(r.remembered_before->since).c_str());
    cJSON_AddStringToObject(m, "reason", r.remembered_before->reason.c_str());
  } else {
    cJSON_AddNullToObject(o, "remembered_before");
  }
  cJSON_AddBoolToObject(o, "remembered_now", r.remembered_now);
  cJSON_AddStringToObject(o, "memory_path", r.memory_path.c_str());
  cJSON* sets = cJSON_AddArrayToObject(o, "pinned_sets");
  for (const auto& s : r.pinned_sets) cJSON_AddItemToArray(sets, cJSON_CreateString(s.c_str()));
  std::unique_ptr<char, decltype(&cJSON_free)> text(cJSON_Print(o), cJSON_free);
  std::printf("%s\n", text ? text.get() : "{}");
}

}  // namespace

int check_events(const EventSettings& settings, bool json, bool verbose) {
  events::Options options;
  options.pin_dir = settings.pin_dir;
  options.run_dir = settings.run_dir;
  options.object_file = settings.object_file;
  options.verbose = verbose;
  options.log = [verbose](events::LogLevel level, const std::string& text) {
    // The report gives the verifier's last lines; libbpf's own lines only on request.
    if (verbose || level == events::LogLevel::Error) std::fprintf(stderr, "bc-monitor: %s\n", text.c_str());
  };
  const events::CheckReport report = events::check_events(options);
  if (json) print_json(report);
  else print_text(report);
  return report.works ? 0 : 1;
}

}  // namespace bc::monitor
