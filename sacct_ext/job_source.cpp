#include "sacct_ext/job_source.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "accounting_db/store.hpp"

namespace bc::report {
namespace {

// LMDB says "Permission denied" deep inside a longer text; checking the files first gives a clear
// message and tells "no permission" apart from "not a store".
void check_readable(const std::string& path) {
  for (const std::string& file : {path, path + "/data.mdb", path + "/lock.mdb"}) {
    const int mode = file == path ? R_OK | X_OK : (file.ends_with("lock.mdb") ? R_OK | W_OK : R_OK);
    if (access(file.c_str(), mode) != 0 && errno == EACCES)
      throw SourceError(
          SourceError::Kind::Permission,
          "no permission to read the store " + path + " (" + file + ": " + std::strerror(EACCES) +
              "); the store is its owner's and BC_STORE_GROUP's alone: read through bcd (central= in bcacct.conf, "
              "or --central), or ask an administrator");
  }
}

class StoreSource final : public JobSource {
  // Store faults become SourceErrors. Defined first: its return type is deduced.
  template <typename F>
  static auto guard(F&& f) {
    try {
      return f();
    } catch (const store::StoreError& e) {
      throw SourceError(SourceError::Kind::Store, e.what());
    }
  }

 public:
  explicit StoreSource(const std::string& path) : path_(path) {
    check_readable(path);
    try {
      store_ = store::Store::open(path, store::OpenOptions{.read_only = true, .create = false});
    } catch (const store::StoreError& e) {
      throw SourceError(SourceError::Kind::Store, e.what());
    }
  }

  std::optional<JobData> load(uint64_t job_id) override {
    // One read transaction: the header and the process list come from the same snapshot.
    store::JobSnapshot snapshot = guard([&] { return store_->load_job(job_id); });
    if (snapshot.nodes.empty()) return std::nullopt;
    JobData data;
    data.nodes = std::move(snapshot.nodes);
    data.processes = std::move(snapshot.processes);
    data.files = guard([&] { return store_->files(job_id); });
    data.connections = guard([&] { return store_->connections(job_id); });
    return data;
  }

  std::vector<uint64_t> list(const ListQuery& query) override {
    return guard([&] {
      std::vector<uint64_t> ids = store_->job_ids();
      if (!query.array_job) return ids;
      std::erase_if(ids, [&](uint64_t id) {
        return !store::is_array_task(store_->job_nodes(id), *query.array_job, query.array_task);
      });
      return ids;
    });
  }

  std::vector<LabelledSeries> job_series(uint64_t job_id, const std::vector<std::string>& nodes,
                                         std::optional<store::Resolution> resolution, int64_t from_s,
                                         int64_t to_s) override {
    std::vector<LabelledSeries> out;
    for (const std::string& node : nodes) {
      store::SeriesQuery query;
      query.job_id = job_id;
      query.node = node;
      query.series_id = 0;
      query.from_s = from_s;
      query.to_s = to_s;
      query.resolution = resolution;
      out.push_back({"node " + node, guard([&] { return store_->query_series(query); })});
    }
    return out;
  }

  std::string describe() const override { return "store " + path_; }

 private:
  std::string path_;
  std::unique_ptr<store::Store> store_;
};

}  // namespace

std::unique_ptr<JobSource> open_store_source(const std::string& path) { return std::make_unique<StoreSource>(path); }

namespace {

class FallbackSource final : public JobSource {
  // Defined first: its return type is deduced.
  template <typename F>
  auto call(F&& f) {
    if (!store_) {
      try {
        return f(*primary_);
      } catch (const SourceError& e) {
        if (e.kind() != SourceError::Kind::Unreachable && e.kind() != SourceError::Kind::Unsupported) throw;
        if (access(path_.c_str(), F_OK) != 0)
          throw SourceError(e.kind(), std::string(e.what()) + "; no local node store at " + path_ + " to fall back to");
        store_ = open_store_source(path_);
        warn_(std::string(e.what()) + "; showing the local node store " + path_ +
              " instead (only this node's jobs, and only what it still holds)");
      }
    }
    return f(*store_);
  }

 public:
  FallbackSource(std::unique_ptr<JobSource> primary, std::string path, std::function<void(const std::string&)> warn)
      : primary_(std::move(primary)), path_(std::move(path)), warn_(std::move(warn)) {}

  std::optional<JobData> load(uint64_t job_id) override {
    return call([&](JobSource& s) { return s.load(job_id); });
  }
  std::vector<uint64_t> list(const ListQuery& query) override {
    return call([&](JobSource& s) { return s.list(query); });
  }
  std::vector<LabelledSeries> job_series(uint64_t job_id, const std::vector<std::string>& nodes,
                                         std::optional<store::Resolution> resolution, int64_t from_s,
                                         int64_t to_s) override {
    return call([&](JobSource& s) { return s.job_series(job_id, nodes, resolution, from_s, to_s); });
  }
  std::string describe() const override { return (store_ ? store_ : primary_)->describe(); }

 private:
  std::unique_ptr<JobSource> primary_;
  std::unique_ptr<JobSource> store_;
  std::string path_;
  std::function<void(const std::string&)> warn_;
};

}  // namespace

std::unique_ptr<JobSource> with_store_fallback(std::unique_ptr<JobSource> primary, const std::string& fallback_path,
                                               std::function<void(const std::string&)> warn) {
  return std::make_unique<FallbackSource>(std::move(primary), fallback_path, std::move(warn));
}

}  // namespace bc::report
