// bcacct's reading of bcd's answers (sacct_ext/bcd_source.cpp), as if bcd (or whatever answers at its URL)
// had sent the input. The first byte names the request (its value minus '0', modulo 5; the corpus uses the
// digits): 0 the job document, 1 the job list, 2 the files view, 3 the connections view, 4 the series. The
// rest is the body. Each parser either returns records or throws SourceError; what parses is then shown as
// bcacct shows it (totals, table, JSON, tree, files, connections, top, timeline), which must not fail on
// any values either.
#include <cstdint>
#include <string_view>
#include <vector>

#include "sacct_ext/job_source.hpp"
#include "sacct_ext/report.hpp"
#include "sacct_ext/timeline.hpp"

namespace {

using namespace bc;

enum class Answer : uint8_t { Job, JobList, Files, Connections, Series, Count };

constexpr int64_t kNowMs = 1'800'000'000'000;
constexpr uint64_t kJob = 42;

void job_answer(std::string_view json) {
  report::JobData data = report::job_data_from_json(json);
  (void)report::compute_totals(data);
  data.processes = report::sorted_processes(std::move(data.processes));
  (void)report::format_table(data, kNowMs);
  (void)report::format_json(data);
  (void)report::format_tree(data);
  (void)report::format_files(data, false);
  (void)report::format_files(data, true);
  (void)report::format_connections(data);
  (void)bcacct::top_processes(data.processes, bcacct::Metric::Io, 5);
}

void series(std::string_view json) {
  // bcacct --timeline asks for the job's own window; the buckets are bcd's.
  const std::vector<report::LabelledSeries> all{{"all nodes", report::series_from_json(json)}};
  for (const auto metric : {bcacct::Metric::Cpu, bcacct::Metric::Rss, bcacct::Metric::Io})
    (void)bcacct::render_timeline(all, metric, kNowMs / 1000 - 3600, kNowMs / 1000, 80);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return -1;
  const auto answer = static_cast<Answer>(static_cast<uint8_t>(data[0] - '0') % static_cast<uint8_t>(Answer::Count));
  const std::string_view json(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (answer) {
      case Answer::Job: job_answer(json); break;
      case Answer::JobList: (void)report::job_list_from_json(json); break;
      case Answer::Files: (void)report::files_view_from_json(json, kJob); break;
      case Answer::Connections: (void)report::connections_view_from_json(json, kJob); break;
      case Answer::Series: series(json); break;
      case Answer::Count: break;
    }
  } catch (const report::SourceError&) {
  }
  return 0;
}
