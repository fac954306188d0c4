#include "store.hpp"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "codec.hpp"
#include "lmdb_raii.hpp"

namespace bc::store {

std::string step_name(uint32_t step) {
  switch (step) {
    case kStepBatch: return "batch";
    case kStepExtern: return "extern";
    case kStepInteractive: return "interactive";
    case kStepUnknown: return "?";
    default: return std::to_string(step);
  }
}

namespace {

using codec::Key;
using lmdb::Txn;

const std::string kSchemaKey = "schema_version";

std::string job_key(uint64_t job, uint32_t node) { return Key().u64(job).u32(node).bytes(); }
std::string process_key(uint64_t job, uint32_t node, uint32_t pid, uint64_t start_ticks) {
  return Key().u64(job).u32(node).u32(pid).u64(start_ticks).bytes();
}
std::string sample_key(uint64_t job, uint32_t node, uint32_t series, Resolution res, int64_t t) {
  return Key().u64(job).u32(node).u32(series).u8(static_cast<uint8_t>(res)).u32(static_cast<uint32_t>(t)).bytes();
}
std::string series_counter_key(uint64_t job, uint32_t node) { return Key().u64(job).u32(node).bytes(); }
std::string be32(uint32_t v) { return Key().u32(v).bytes(); }

class LmdbStore final : public Store {
 public:
  LmdbStore(const std::string& path, const OpenOptions& options) : path_(path), options_(options) {
    if (!options.read_only && options.create) {
      if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
        throw StoreError("cannot create store directory " + path + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (stat(path.c_str(), &st) != 0)
      throw StoreError("store " + path + " does not exist (" + std::strerror(errno) + ")");
    lmdb::check(mdb_env_set_maxdbs(env_.get(), 8), "mdb_env_set_maxdbs");
    if (!options.read_only) lmdb::check(mdb_env_set_mapsize(env_.get(), options.initial_map_bytes), "mdb_env_set_mapsize");
    unsigned flags = MDB_NOTLS | (options.read_only ? MDB_RDONLY : 0U);
    int rc = mdb_env_open(env_.get(), path.c_str(), flags, 0644);
    if (rc != MDB_SUCCESS) lmdb::fail("cannot open store " + path, rc);
    open_tables();
  }

  void write_batch(Batch& batch) override {
    // MDB_MAP_FULL aborts the transaction: grow the map and run the whole batch again.
    for (int attempt = 0;; ++attempt) {
      Txn txn = begin(0);
      int rc = write_in(txn, batch);
      if (rc == MDB_SUCCESS) rc = txn.commit();
      if (rc == MDB_SUCCESS) return;
      txn.abort();
      if (rc != MDB_MAP_FULL || attempt >= 8) lmdb::fail("store write failed in " + path_, rc);
      grow_map();
    }
  }

  std::optional<JobRecord> job(uint64_t job_id, const std::string& node) override {
    Txn txn = begin(MDB_RDONLY);
    auto node_id = find_node(txn, node);
    if (!node_id) return std::nullopt;
    auto v = txn.get(jobs_, job_key(job_id, *node_id));
    if (!v) return std::nullopt;
    return codec::decode_job(*v);
  }

  std::vector<JobRecord> job_nodes(uint64_t job_id) override {
    Txn txn = begin(MDB_RDONLY);
    std::vector<JobRecord> out;
    std::string prefix = Key().u64(job_id).bytes();
    lmdb::Cursor c(txn, jobs_);
    for (bool ok = c.seek(prefix); ok && c.key().substr(0, 8) == prefix; ok = c.next())
      out.push_back(codec::decode_job(c.value()));
    return out;
  }

  std::vector<uint64_t> job_ids() override {
    Txn txn = begin(MDB_RDONLY);
    std::vector<uint64_t> out;
    lmdb::Cursor c(txn, jobs_);
    for (bool ok = c.first(); ok; ok = c.next()) {
      uint64_t id = codec::read_be(c.key(), 0, 8);
      if (out.empty() || out.back() != id) out.push_back(id);
    }
    return out;
  }

  std::vector<ProcessRecord> processes(uint64_t job_id) override {
    Txn txn = begin(MDB_RDONLY);
    std::vector<ProcessRecord> out;
    std::string prefix = Key().u64(job_id).bytes();
    lmdb::Cursor c(txn, processes_);
    for (bool ok = c.seek(prefix); ok && c.key().substr(0, 8) == prefix; ok = c.next())
      out.push_back(codec::decode_process(c.value()));
    return out;
  }

  std::vector<Sample> series(uint64_t job_id, const std::string& node, uint32_t series_id, int64_t from_s,
                             int64_t to_s) override {
    Txn txn = begin(MDB_RDONLY);
    std::vector<Sample> out;
    auto node_id = find_node(txn, node);
    if (!node_id) return out;
    std::string prefix = Key().u64(job_id).u32(*node_id).u32(series_id).u8(0).bytes();
    lmdb::Cursor c(txn, samples_);
    for (bool ok = c.seek(sample_key(job_id, *node_id, series_id, Resolution::Second, std::max<int64_t>(from_s, 0)));
         ok && c.key().substr(0, prefix.size()) == prefix; ok = c.next()) {
      int64_t t = static_cast<int64_t>(codec::read_be(c.key(), prefix.size(), 4));
      if (t > to_s) break;
      Sample s = codec::decode_sample(c.value());
      s.series_id = series_id;
      s.time_s = t;
      out.push_back(s);
    }
    return out;
  }

  uint32_t schema_version() override {
    Txn txn = begin(MDB_RDONLY);
    auto v = txn.get(meta_, kSchemaKey);
    return v ? static_cast<uint32_t>(codec::read_be(*v, 0, 4)) : 0;
  }

 private:
  Txn begin(unsigned flags) {
    for (int attempt = 0;; ++attempt) {
      Txn txn(env_.get(), flags);
      int rc = txn.begin_rc();
      if (rc == MDB_SUCCESS) return txn;
      // Another process grew the map: adopt its size and retry.
      if (rc == MDB_MAP_RESIZED && attempt < 3) {
        lmdb::check(mdb_env_set_mapsize(env_.get(), 0), "mdb_env_set_mapsize");
        continue;
      }
      lmdb::fail("cannot begin transaction on " + path_, rc);
    }
  }

  void open_tables() {
    if (options_.read_only) {
      Txn txn = begin(MDB_RDONLY);
      for (auto [name, dbi] : tables()) {
        int rc = mdb_dbi_open(txn.get(), name, 0, dbi);
        if (rc == MDB_NOTFOUND) throw StoreError("store " + path_ + " is not initialised (no table " + name + ")");
        lmdb::check(rc, "mdb_dbi_open");
      }
      check_schema(txn);
      lmdb::check(txn.commit(), "mdb_txn_commit");
      return;
    }
    Txn txn = begin(0);
    for (auto [name, dbi] : tables()) lmdb::check(mdb_dbi_open(txn.get(), name, MDB_CREATE, dbi), "mdb_dbi_open");
    if (!txn.get(meta_, kSchemaKey)) lmdb::check(txn.put(meta_, kSchemaKey, be32(kSchemaVersion)), "mdb_put schema");
    check_schema(txn);
    lmdb::check(txn.commit(), "mdb_txn_commit");
  }

  void check_schema(const Txn& txn) {
    auto v = txn.get(meta_, kSchemaKey);
    uint32_t version = v ? static_cast<uint32_t>(codec::read_be(*v, 0, 4)) : 0;
    if (version > kSchemaVersion)
      throw StoreError("store " + path_ + " has schema version " + std::to_string(version) +
                       ", newer than this program's " + std::to_string(kSchemaVersion) + "; upgrade bubble-chamber");
  }

  std::vector<std::pair<const char*, MDB_dbi*>> tables() {
    return {{"meta", &meta_}, {"nodes", &nodes_}, {"jobs", &jobs_}, {"processes", &processes_},
            {"samples", &samples_}, {"series_alloc", &series_alloc_}};
  }

  std::optional<uint32_t> find_node(const Txn& txn, const std::string& node) {
    auto v = txn.get(nodes_, node);
    if (!v) return std::nullopt;
    return static_cast<uint32_t>(codec::read_be(*v, 0, 4));
  }

  // Returns an LMDB code (MDB_SUCCESS or the failure, MDB_MAP_FULL included); throws on corrupt data.
  int write_in(Txn& txn, Batch& batch) {
    const std::string& node = batch.job.node;
    uint32_t node_id = 0;
    if (auto id = find_node(txn, node)) {
      node_id = *id;
    } else {
      auto next = txn.get(meta_, "next_node_id");
      node_id = next ? static_cast<uint32_t>(codec::read_be(*next, 0, 4)) : 1;
      if (int rc = txn.put(meta_, "next_node_id", be32(node_id + 1))) return rc;
      if (int rc = txn.put(nodes_, node, be32(node_id))) return rc;
    }
    const uint64_t job = batch.job.job_id;
    if (int rc = txn.put(jobs_, job_key(job, node_id), codec::encode_job(batch.job))) return rc;
    if (batch.job_sample) {
      if (int rc = put_sample(txn, job, node_id, 0, *batch.job_sample)) return rc;
    }
    std::string counter_key = series_counter_key(job, node_id);
    auto counter = txn.get(series_alloc_, counter_key);
    uint32_t next_series = counter ? static_cast<uint32_t>(codec::read_be(*counter, 0, 4)) : 1;
    const uint32_t first_series = next_series;
    for (auto& update : batch.processes) {
      ProcessRecord& p = update.record;
      p.job_id = job;
      p.node = node;
      std::string key = process_key(job, node_id, p.pid, p.start_ticks);
      if (p.series_id == 0) {
        if (auto existing = txn.get(processes_, key)) p.series_id = codec::decode_process(*existing).series_id;
        if (p.series_id == 0) p.series_id = next_series++;
      }
      if (int rc = txn.put(processes_, key, codec::encode_process(p))) return rc;
      if (update.sample) {
        if (int rc = put_sample(txn, job, node_id, p.series_id, *update.sample)) return rc;
      }
    }
    if (next_series != first_series) {
      if (int rc = txn.put(series_alloc_, counter_key, be32(next_series))) return rc;
    }
    return MDB_SUCCESS;
  }

  int put_sample(Txn& txn, uint64_t job, uint32_t node_id, uint32_t series, const Sample& s) {
    return txn.put(samples_, sample_key(job, node_id, series, Resolution::Second, s.time_s), codec::encode_sample(s));
  }

  // Called with no transaction open in this process, as mdb_env_set_mapsize requires.
  void grow_map() {
    MDB_envinfo info{};
    lmdb::check(mdb_env_info(env_.get(), &info), "mdb_env_info");
    struct statvfs fs {};
    if (statvfs(path_.c_str(), &fs) == 0) {
      uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
      // The map file is sparse; ask for room for a quarter of the step, which is what the next
      // batches can realistically fill before the next check.
      if (free_bytes < options_.map_growth_step_bytes / 4)
        throw StoreError("store " + path_ + " is full and the disk has only " + std::to_string(free_bytes) +
                         " bytes free");
    }
    lmdb::check(mdb_env_set_mapsize(env_.get(), info.me_mapsize + options_.map_growth_step_bytes), "grow map");
  }

  std::string path_;
  OpenOptions options_;
  lmdb::Env env_;
  MDB_dbi meta_ = 0, nodes_ = 0, jobs_ = 0, processes_ = 0, samples_ = 0, series_alloc_ = 0;
};

}  // namespace

std::unique_ptr<Store> Store::open(const std::string& path, const OpenOptions& options) {
  return std::make_unique<LmdbStore>(path, options);
}

}  // namespace bc::store
