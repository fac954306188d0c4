// sacct_ext: where bcacct gets a job's records from: the node store read directly, or the central daemon
// bcd over HTTP with a munge credential. Nothing else in bcacct reads storage or talks to bcd.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "accounting_db/store.hpp"
#include "sacct_ext/report.hpp"

namespace bc::report {

// Why a source could not answer. "Not found" is never an exception (load returns nullopt).
class SourceError : public std::runtime_error {
 public:
  enum class Kind {
    Store,        // the store cannot be opened or read (missing, not a store, newer schema, I/O error)
    Permission,   // the caller may not see this: bcd answered 401/403, or the store files are not readable
    Unreachable,  // bcd cannot be used: no connection, timeout, or no munge credential to send
    Unsupported,  // the source does not serve this yet (an older bcd without the endpoint)
    Protocol,     // bcd answered something unexpected (5xx, malformed JSON)
  };
  SourceError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// Hints for the server side of a listing; the caller filters the loaded jobs again in any case.
struct ListQuery {
  std::string user;               // one user, or empty for every user the caller may see
  std::optional<bool> running;    // only running (true) or only finished (false) jobs
  std::optional<int64_t> from_s;  // overlapping [from_s, to_s]
  std::optional<int64_t> to_s;
  // Only the tasks of this Slurm job array (its ArrayJobID), and of those only this task when set. Unlike
  // the hints above, a source applies these itself.
  std::optional<uint32_t> array_job;
  std::optional<uint32_t> array_task;
};

struct LabelledSeries {
  std::string label;  // "node n01", "all nodes"
  store::SeriesData data;
};

class JobSource {
 public:
  virtual ~JobSource() = default;
  // nullopt when the source has no record of the job. Faults throw SourceError.
  virtual std::optional<JobData> load(uint64_t job_id) = 0;
  // The ids of the jobs that may match, ascending (Slurm jobs and containers alike).
  virtual std::vector<uint64_t> list(const ListQuery& query) = 0;
  // The job total over [from_s, to_s] at one resolution (unset: the source picks one that holds the window):
  // one series per node from a store ("node n01"), one summed over the nodes from bcd ("all nodes").
  virtual std::vector<LabelledSeries> job_series(uint64_t job_id, const std::vector<std::string>& nodes,
                                                 std::optional<store::Resolution> resolution, int64_t from_s,
                                                 int64_t to_s) = 0;
  // For messages: "store /var/lib/bubble-chamber/node.lmdb", "bcd http://central:8470".
  virtual std::string describe() const = 0;
};

// Opens the node store at path read-only. Throws SourceError (Permission when its files cannot be read
// by this user, Store otherwise) when it cannot be opened.
std::unique_ptr<JobSource> open_store_source(const std::string& path);

struct BcdOptions {
  std::string url;  // "http://central:8470" or "https://..." (a trailing slash is fine)
  // https: the CA file that verifies bcd's certificate, trusted alone; empty: the system's CAs. A certificate
  // that does not verify is a Protocol error, never a fallback to the local store: the bcd configured is not
  // the one answering.
  std::string ca_file;
  std::string munge_socket;  // empty: munge's default
  long connect_timeout_ms = 3000;
  long timeout_ms = 30000;
  // The job's files and connections too (two more requests per job): for the views that show them.
  bool with_events = false;
};
// Nothing is contacted until the first call.
std::unique_ptr<JobSource> open_bcd_source(const BcdOptions& options);

// The job object bcd serves (GET /api/v1/jobs/ID, the same as bcacct --json prints) turned back into
// records whose totals (compute_totals) equal the ones it was printed from. bcd sends totals, not per-node
// records: the first node's record carries the job's totals, the others carry their name and times.
// Throws SourceError(Protocol) when the text is not such an object.
JobData job_data_from_json(std::string_view json);
// bcd's other answers, read the same way (SourceError(Protocol) when the text is not what bcd sends):
//   GET /api/v1/jobs -> the ids listed (a container's key from its short id, which a JSON number cannot hold)
std::vector<uint64_t> job_list_from_json(std::string_view json);
//   GET /api/v1/jobs/ID/files and /connections -> the records, with job_id set to the job asked for
std::vector<store::FileRecord> files_view_from_json(std::string_view json, uint64_t job_id);
std::vector<store::ConnectionRecord> connections_view_from_json(std::string_view json, uint64_t job_id);
//   GET /api/v1/jobs/ID/series?metric=all -> the "total" series (the nodes summed)
store::SeriesData series_from_json(std::string_view json);

}  // namespace bc::report

namespace bc::report {

// bcd first; when it cannot be used (unreachable, or it lacks an endpoint), the node store at
// fallback_path, if one exists there, with `warn` called once with the reason. Without a store there, the
// SourceError(Unreachable) reaches the caller.
std::unique_ptr<JobSource> with_store_fallback(std::unique_ptr<JobSource> primary, const std::string& fallback_path,
                                               std::function<void(const std::string&)> warn);

}  // namespace bc::report
