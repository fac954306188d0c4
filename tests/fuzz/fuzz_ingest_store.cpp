// An ingest body all the way into a store, as bcd takes it: the bundle is decoded (identities left encoded,
// each batch's id checked against its job and node), the batches are written with write_batches_once into
// a fresh LMDB store, and the store's own check (`bcadm db check`) must then find nothing wrong. What bcd
// accepts it must store without error, read back, and recognise as duplicates when sent again.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "accounting_db/store.hpp"
#include "accounting_db/wire.hpp"

namespace {

using namespace bc;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "%s\n", what.c_str());
  std::abort();
}

// A fresh store per input, so that each finding replays from its input alone; on tmpfs when there is one.
class TempRoot {
 public:
  TempRoot() {
    std::string pattern = (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") + std::string("/bc-fuzz-store-XXXXXX");
    if (!mkdtemp(pattern.data())) fail("cannot make a temporary directory");
    path_ = pattern;
  }
  ~TempRoot() { std::filesystem::remove_all(path_); }
  TempRoot(const TempRoot&) = delete;
  TempRoot& operator=(const TempRoot&) = delete;
  std::string store() const { return path_ + "/central.lmdb"; }

 private:
  std::string path_;
};

store::OpenOptions options() {
  store::OpenOptions o;
  o.config_path = "";                // neither the machine's config file
  o.retention = store::Retention{};  // nor its environment: the default retention
  o.durability = store::Durability::NoSync;
  o.initial_map_bytes = 4ULL << 20;  // grows on demand, as in bcd
  o.map_growth_step_bytes = 4ULL << 20;
  o.disk_reserve_bytes = 0;
  return o;
}

// bcd's ingest (web/bcd/ingest.cpp): decode everything before writing anything.
bool decode_like_bcd(std::string_view body, std::vector<store::Batch>& batches, std::vector<store::BatchId>& ids) {
  try {
    auto bundle = wire::decode_bundle_views(body);
    for (auto& b : bundle) {
      const store::Batch* previous = batches.empty() ? nullptr : &batches.back();
      batches.push_back(wire::decode_batch(b.wire, wire::Identity::Deferred, previous));
      const store::JobRecord& job = batches.back().job;
      if (job.job_id != b.id.job_id || job.node != b.id.node || job.node.empty()) return false;
      ids.push_back(std::move(b.id));
    }
  } catch (const wire::WireError&) {
    return false;
  }
  return true;
}

const TempRoot* g_root = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_root = new TempRoot();  // lives as long as the process: libFuzzer may exit from any thread
  std::atexit([] { delete g_root; });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  std::vector<store::Batch> batches;
  std::vector<store::BatchId> ids;
  if (!decode_like_bcd(body, batches, ids) || batches.empty()) return 0;
  std::set<uint64_t> jobs;
  for (const auto& id : ids) jobs.insert(id.job_id);
  const std::vector<store::Batch> again = batches;  // write_batches_once fills in series ids

  std::filesystem::remove_all(g_root->store());
  auto db = store::Store::open(g_root->store(), options());
  try {
    db->write_batches_once(batches, ids);
  } catch (const std::exception& e) {
    fail(std::string("a bundle bcd decodes could not be stored: ") + e.what());
  }
  const store::CheckReport report = db->check();
  if (!report.ok()) {
    std::string problems;
    for (const auto& p : report.problems) problems += "\n  " + p;
    fail("the store's check found problems after an ingest:" + problems);
  }
  for (uint64_t job : jobs) {
    (void)db->load_job(job);
    (void)db->files(job);
    (void)db->connections(job);
  }
  // The same bundle again: every batch is a duplicate, nothing is written.
  std::vector<store::Batch> resent = again;
  const std::vector<bool> second = db->write_batches_once(resent, ids);
  for (size_t i = 0; i < second.size(); ++i)
    if (second[i]) fail("batch " + std::to_string(i) + " of a bundle sent twice was applied twice");
  return 0;
}
