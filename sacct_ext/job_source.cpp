#include "job_source.hpp"

#include "store.hpp"

namespace bc::report {
namespace {

class StoreSource final : public JobSource {
 public:
  explicit StoreSource(const std::string& path)
      : path_(path), store_(store::Store::open(path, store::OpenOptions{.read_only = true, .create = false})) {}

  std::optional<JobData> load(uint64_t job_id) override {
    // One read transaction: the header and the process list come from the same snapshot.
    store::JobSnapshot snapshot = store_->load_job(job_id);
    if (snapshot.nodes.empty()) return std::nullopt;
    JobData data;
    data.nodes = std::move(snapshot.nodes);
    data.processes = std::move(snapshot.processes);
    data.files = store_->files(job_id);
    data.connections = store_->connections(job_id);
    return data;
  }

  std::string describe() const override { return "store " + path_; }

 private:
  std::string path_;
  std::unique_ptr<store::Store> store_;
};

}  // namespace

std::unique_ptr<JobSource> open_store_source(const std::string& path) { return std::make_unique<StoreSource>(path); }

}  // namespace bc::report
