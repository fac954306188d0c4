// The store's public face: the factories, and the helpers store.hpp declares. The store itself is LmdbStore
// (lmdb_store.hpp), one file per concern.
#include "accounting_db/store.hpp"

#include <string>
#include <string_view>

#include "accounting_db/lmdb_store.hpp"

namespace bc::store {

std::string oversized_name(const Batch& batch) {
  const auto too_long = [](const char* what, size_t size) {
    return std::string(what) + " of " + std::to_string(size) + " bytes";
  };
  if (batch.job.node.size() > kMaxNodeNameBytes) return too_long("node name", batch.job.node.size());
  if (batch.job.job_name.size() > kMaxJobNameBytes) return too_long("job name", batch.job.job_name.size());
  for (const auto& f : batch.files)
    if (f.path.size() > kMaxPathBytes) return too_long("file path", f.path.size());
  for (const auto& c : batch.connections)
    if (c.address.size() > kMaxPathBytes) return too_long("peer address", c.address.size());
  return {};
}

namespace {
// One letter per FileFlags bit, from bit 0 up.
constexpr std::string_view kFileFlagLetters = "rwctad";
}  // namespace

std::string file_flags_text(uint32_t flags) {
  std::string out;
  for (size_t i = 0; i < kFileFlagLetters.size(); ++i)
    if (flags & (1U << i)) out.push_back(kFileFlagLetters[i]);
  return out.empty() ? "-" : out;
}

uint32_t file_flags_from_text(std::string_view text) {
  uint32_t flags = 0;
  for (char c : text) {
    const size_t bit = kFileFlagLetters.find(c);
    if (bit != std::string_view::npos) flags |= 1U << bit;
  }
  return flags;
}

std::unique_ptr<Store> Store::open(const std::string& path, const OpenOptions& options) {
  return std::make_unique<LmdbStore>(path, options, Mode::Normal);
}

bool Store::init(const std::string& path, const OpenOptions& options) {
  OpenOptions o = options;
  o.read_only = false;
  o.create = true;
  LmdbStore store(path, o, Mode::Init);
  return store.created();
}

UpgradeReport Store::upgrade(const std::string& path, const OpenOptions& options) {
  OpenOptions o = options;
  o.read_only = false;
  o.create = false;
  LmdbStore store(path, o, Mode::Upgrade);
  return store.migrate();
}

}  // namespace bc::store
