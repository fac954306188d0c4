// bcacct's command-line parsers (sacct_ext/selection.cpp, format.cpp, timeline.cpp) on what a user types:
// the first byte picks the option (modulo 8; the corpus uses the digits 0 to 7), the rest is its value:
// -j job lists, -S/-E times, -s states, -N host lists, -u user lists, -o formats (rendered as a header),
// steps, --metric and --resolution. A bad value must come back as a message, never as an exception or a
// crash.
#include <cstdint>
#include <string>
#include <string_view>

#include "common/hostlist.hpp"
#include "sacct_ext/format.hpp"
#include "sacct_ext/selection.hpp"
#include "sacct_ext/timeline.hpp"

namespace {

enum class Option : uint8_t { Jobs, Time, States, Hosts, Users, Format, Step, MetricResolution, Count };

// A fixed clock, so that a finding replays: 2027-01-15 08:00:00 UTC.
constexpr int64_t kNow = 1'800'000'000;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return -1;
  const auto option = static_cast<Option>(data[0] % static_cast<uint8_t>(Option::Count));
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  using namespace bc::bcacct;
  switch (option) {
    case Option::Jobs: (void)parse_job_list(text); break;
    case Option::Time: {
      std::string error;
      (void)parse_sacct_time(text, kNow, error);
      break;
    }
    case Option::States: (void)parse_states(text); break;
    case Option::Hosts: (void)bc::expand_hostlist(text); break;
    case Option::Users: (void)split_list(text, "user"); break;
    case Option::Format: {
      const auto format = parse_format(text);
      if (const auto* f = std::get_if<Format>(&format)) {
        for (const Layout layout : {Layout::Fixed, Layout::Parsable, Layout::Parsable2})
          (void)render_rows(*f, {}, layout, true, kNow * 1000);
      }
      break;
    }
    case Option::Step: (void)parse_step(text); break;
    case Option::MetricResolution:
      (void)parse_metric(text);
      (void)parse_resolution(text);
      break;
    case Option::Count: break;
  }
  return 0;
}
