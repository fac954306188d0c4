// What bcd's job list and /metrics need of every job without reading its processes: a summary per job,
// recomputed only when one of its node records changed, and the set of running jobs.
//
// The store stays the truth. A summary is kept under the state of its job's node records (records_state),
// which every write changes, so a stale one is never used. The running set is filled from the store once
// at start and then told by ingest which jobs it wrote; a job leaves it when a read finds every node ended.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "accounting_db/store.hpp"

namespace bc::bcd {

// What identifies one state of a job's node records: a new sample, an end or a lost event on any node changes
// it. Cached answers (the job views' and the summaries) are kept under it.
std::string records_state(const std::vector<store::JobRecord>& nodes);

struct JobSummary {
  std::string user;
  std::string sacct_id;  // "42", or "40_2" for a task of job array 40
  uint32_t array_job_id = 0, array_task_id = 0;
  bool running = false;
  std::optional<int64_t> start_ms, end_ms;
  double cpu_seconds = 0;
  uint64_t max_rss_bytes = 0;
  // Its object in the job list, printed when the summary is made: a listing of thousands of jobs puts these
  // into its answer as they are, instead of formatting every job's numbers again.
  std::string list_entry;
};

class JobIndex {
 public:
  explicit JobIndex(store::Store& store) : store_(store) {}

  // Scans every job's records once (bcd's start): which are running.
  void load_running();

  // The job's summary as of `nodes` (its records, just read); null for a job without records. Shared, not
  // copied: a listing takes thousands.
  std::shared_ptr<const JobSummary> summary(uint64_t job_id, const std::vector<store::JobRecord>& nodes);
  // Forgets the summaries of jobs not in `ids` (a full listing's ids, sorted): jobs expired or deleted.
  void keep_only(const std::vector<uint64_t>& ids);

  // Ingest wrote a batch of this job (running is false for a batch that carries its node's end).
  void written(uint64_t job_id, bool running);
  // The running jobs, and their node records; a job found ended leaves the set.
  std::vector<std::pair<uint64_t, std::vector<store::JobRecord>>> running_jobs();

  size_t summaries() const;

 private:
  struct Cached {
    std::string state;  // records_state
    std::shared_ptr<const JobSummary> summary;
  };

  store::Store& store_;
  mutable std::mutex mutex_;  // never held while the store is read
  std::unordered_map<uint64_t, Cached> summaries_;
  std::map<uint64_t, uint64_t> running_;  // job id -> writes_ when ingest last wrote it running
  uint64_t writes_ = 0;
};

}  // namespace bc::bcd
