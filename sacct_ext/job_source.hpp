// sacct_ext: where bcacct gets a job's records from. Today the node store, read directly; a later
// issue adds the central daemon as a second implementation. Nothing else in bcacct reads storage.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "report.hpp"

namespace bc::report {

class JobSource {
 public:
  virtual ~JobSource() = default;
  // nullopt when the source has no record of the job. Faults throw (store::StoreError for the store).
  virtual std::optional<JobData> load(uint64_t job_id) = 0;
  // For messages: "store /var/lib/bubble-chamber/node.lmdb".
  virtual std::string describe() const = 0;
};

// Opens the node store at path read-only. Throws store::StoreError when it cannot be opened.
std::unique_ptr<JobSource> open_store_source(const std::string& path);

}  // namespace bc::report
