// The store's environment: opening it, its tables and schema, transactions, the map's range.
#include "accounting_db/lmdb_store.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "accounting_db/store_access.hpp"

namespace bc::store {

void log_line(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log_line(const char* fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "bubble-chamber store: %s\n", msg);
  std::fflush(stderr);
}

int64_t monotonic_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

MapRange mapping_of(const void* p) {
  MapRange r;
  FILE* maps = std::fopen("/proc/self/maps", "re");
  if (!maps) return r;
  char line[512];
  const auto at = reinterpret_cast<uintptr_t>(p);
  while (std::fgets(line, sizeof line, maps)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line, "%lx-%lx", &lo, &hi) == 2 && at >= lo && at < hi) {
      r.start = reinterpret_cast<void*>(lo);
      r.size = hi - lo;
      break;
    }
  }
  std::fclose(maps);
  return r;
}

LmdbStore::LmdbStore(const std::string& path, const OpenOptions& options, Mode mode, const StoreConfig& config)
    : path_(path), options_(options), retention_(config.retention), group_(config.group), mode_(mode) {
  if (!options.read_only && options.create) {
    if (mkdir(path.c_str(), store_dir_mode(group_)) != 0 && errno != EEXIST)
      throw StoreError("cannot create store directory " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    throw StoreError("store " + path + " does not exist (" + std::strerror(errno) + ")");
  open_env();
  if (!options.read_only) make_store_private(path_, group_);
  open_tables();
}

Txn LmdbStore::begin(unsigned flags) {
  for (int attempt = 0;; ++attempt) {
    int rc = MDB_SUCCESS;
    {
      lmdb::EnvGate::Pass pass = gate_.enter();  // before env_ is read: a reopen replaces it
      Txn txn(env_->get(), flags, std::move(pass));
      rc = txn.begin_rc();
      if (rc == MDB_SUCCESS) return txn;
    }
    // Another process grew the map: adopt its size and retry.
    if (rc == MDB_MAP_RESIZED && attempt < 3) {
      adopt_map_size();
      continue;
    }
    lmdb::fail("cannot begin transaction on " + path_, rc);
  }
}

MDB_envinfo LmdbStore::env_info() {
  lmdb::EnvGate::Pass pass = gate_.enter();
  MDB_envinfo info{};
  lmdb::check(mdb_env_info(env_->get(), &info), "mdb_env_info");
  return info;
}

MapRange LmdbStore::map_range() {
  const MDB_envinfo info = env_info();
  std::lock_guard lock(map_mutex_);
  if (map_size_seen_ != info.me_mapsize) {
    map_size_seen_ = info.me_mapsize;
    map_ = {};
    try {
      Txn txn = begin(MDB_RDONLY);
      if (auto v = txn.get(meta_, kSchemaKey)) map_ = mapping_of(v->data());
    } catch (const StoreError&) {
    }
  }
  return map_;
}

void LmdbStore::open_env() {
  env_ = std::make_unique<lmdb::Env>();
  lmdb::check(mdb_env_set_maxdbs(env_->get(), 32), "mdb_env_set_maxdbs");
  if (!options_.read_only)
    lmdb::check(mdb_env_set_mapsize(env_->get(), options_.initial_map_bytes), "mdb_env_set_mapsize");
  unsigned flags = MDB_NOTLS | (options_.read_only ? MDB_RDONLY | MDB_NORDAHEAD : 0U);
  if (options_.durability == Durability::NoMetaSync) flags |= MDB_NOMETASYNC;
  if (options_.durability == Durability::NoSync) flags |= MDB_NOSYNC;
  int rc = mdb_env_open(env_->get(), path_.c_str(), flags, store_file_mode(group_));
  if (rc != MDB_SUCCESS) lmdb::fail("cannot open store " + path_, rc);
  if (!options_.read_only) {
    int dead = 0;
    mdb_reader_check(env_->get(), &dead);  // slots of killed readers would pin old pages forever
  }
  prealloc_end_ = 0;
}

void LmdbStore::reopen_env() {
  gate_.exclusively([&] {
    env_.reset();
    open_env();
    open_tables();
  });
}

std::vector<std::pair<const char*, MDB_dbi*>> LmdbStore::tables() {
  return {{"meta", &meta_},
          {"nodes", &nodes_},
          {"jobs", &jobs_},
          {"processes", &processes_},
          {"process_pack", &process_pack_},
          {"series_alloc", &series_alloc_},
          {"job_state", &job_state_},
          {"open", &open_},
          {kSeriesTable[0], &series_[0]},
          {kSeriesTable[1], &series_[1]},
          {kSeriesTable[2], &series_[2]},
          {kSeriesTable[3], &series_[3]},
          {"files", &files_},
          {"connections", &connections_}};
}

void LmdbStore::open_tables() {
  if (options_.read_only) {
    Txn txn = begin(MDB_RDONLY);
    MDB_dbi meta = 0;
    int rc = mdb_dbi_open(txn.get(), "meta", 0, &meta);
    if (rc == MDB_NOTFOUND)
      throw StoreError("store " + path_ + " is not initialised (no table meta); run 'bcadm db init'");
    lmdb::check(rc, "mdb_dbi_open");
    meta_ = meta;
    check_schema(stored_version(txn), false);
    for (auto [name, dbi] : tables()) {
      rc = mdb_dbi_open(txn.get(), name, 0, dbi);
      if (rc == MDB_NOTFOUND && dbi == &process_pack_) {  // added after schema 2: absent until a writer opens it
        process_pack_ = 0;
        continue;
      }
      if (rc == MDB_NOTFOUND) throw StoreError("store " + path_ + " is not initialised (no table " + name + ")");
      lmdb::check(rc, "mdb_dbi_open");
    }
    open_shipping_tables(txn);
    lmdb::check(txn.commit(), "mdb_txn_commit");
    return;
  }
  Txn txn = begin(0);
  lmdb::check(mdb_dbi_open(txn.get(), "meta", MDB_CREATE, &meta_), "mdb_dbi_open");
  uint32_t version = stored_version(txn);
  if (version == 0) {
    if (!options_.create) throw StoreError("store " + path_ + " is not initialised; run 'bcadm db init'");
    lmdb::check(txn.put(meta_, kSchemaKey, be32(kSchemaVersion)), "mdb_put schema");
    version = kSchemaVersion;
    created_ = true;
  }
  check_schema(version, mode_ == Mode::Upgrade);
  stored_version_ = version;
  for (auto [name, dbi] : tables()) lmdb::check(mdb_dbi_open(txn.get(), name, MDB_CREATE, dbi), "mdb_dbi_open");
  open_shipping_tables(txn);
  lmdb::check(txn.commit(), "mdb_txn_commit");
}

uint32_t LmdbStore::stored_version(const Txn& txn) {
  auto v = txn.get(meta_, kSchemaKey);
  return v ? read_u32(*v) : 0;
}

void LmdbStore::check_schema(uint32_t version, bool allow_older) {
  if (version > kSchemaVersion)
    throw StoreError("store " + path_ + " has schema version " + std::to_string(version) +
                     ", newer than this program's " + std::to_string(kSchemaVersion) + "; upgrade bubble-chamber");
  if (version == 0) throw StoreError("store " + path_ + " is not initialised (no schema version); run 'bcadm db init'");
  if (version < kSchemaVersion && !allow_older)
    throw StoreError("store " + path_ + " has schema version " + std::to_string(version) +
                     ", older than this program's " + std::to_string(kSchemaVersion) +
                     "; run 'bcadm db upgrade --store " + path_ + "'");
}

void LmdbStore::open_shipping_tables(Txn& txn) {
  const unsigned flags = options_.read_only ? 0U : MDB_CREATE;
  have_shipping_ = true;
  for (auto [name, dbi] : std::initializer_list<std::pair<const char*, MDB_dbi*>>{
           {"outbox", &outbox_}, {"ship_cursor", &ship_cursor_}, {"ingested", &ingested_}, {"api_keys", &api_keys_}}) {
    int rc = mdb_dbi_open(txn.get(), name, flags, dbi);
    if (rc == MDB_NOTFOUND && options_.read_only) {
      have_shipping_ = false;
      return;
    }
    lmdb::check(rc, "mdb_dbi_open");
  }
}

// A small write transaction outside the batch path (acknowledgements, API keys), grown and retried on a

}  // namespace bc::store
