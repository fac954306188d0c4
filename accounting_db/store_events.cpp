// Files and connections (eBPF events): merged per process into totals, read per job.
#include "accounting_db/lmdb_store.hpp"

namespace bc::store {

namespace {

bool same_file(const FileRecord& a, const FileRecord& b) { return a.path == b.path; }
bool same_connection(const ConnectionRecord& a, const ConnectionRecord& b) {
  return a.address == b.address && a.port == b.port && a.protocol == b.protocol;
}
void add_to(FileRecord& total, const FileRecord& inc) {
  total.flags |= inc.flags;
  if (inc.first_ms && (!total.first_ms || inc.first_ms < total.first_ms)) total.first_ms = inc.first_ms;
  total.opens += inc.opens;
  total.failed += inc.failed;
  total.read_bytes += inc.read_bytes;
  total.write_bytes += inc.write_bytes;
}
void add_to(ConnectionRecord& total, const ConnectionRecord& inc) {
  if (inc.first_ms && (!total.first_ms || inc.first_ms < total.first_ms)) total.first_ms = inc.first_ms;
  total.count += inc.count;
  total.failed += inc.failed;
}

}  // namespace

std::vector<FileRecord> LmdbStore::files(uint64_t job_id) {
  Txn txn = begin(MDB_RDONLY);
  return event_records_in<FileRecord>(txn, files_, job_id, codec::decode_file);
}

std::vector<ConnectionRecord> LmdbStore::connections(uint64_t job_id) {
  Txn txn = begin(MDB_RDONLY);
  return event_records_in<ConnectionRecord>(txn, connections_, job_id, codec::decode_connection);
}

template <typename Record, typename Decode>
std::vector<Record> LmdbStore::event_records_in(const Txn& txn, MDB_dbi dbi, uint64_t job_id, Decode decode) {
  std::vector<Record> out;
  std::string prefix = Key().u64(job_id).bytes();
  Cursor c(txn, dbi);
  for (bool ok = c.seek(prefix); ok && c.key().substr(0, 8) == prefix; ok = c.next()) out.push_back(decode(c.value()));
  return out;
}

void LmdbStore::write_events(WriteCtx& ctx, Batch& batch) {
  if (!batch.files.empty()) {
    Cursor c(ctx.txn, files_);
    for (auto& f : batch.files)
      add_event(ctx, c, f, batch.job, file_hash(f), codec::encode_file, codec::decode_file, same_file);
  }
  if (!batch.connections.empty()) {
    Cursor c(ctx.txn, connections_);
    for (auto& conn : batch.connections)
      add_event(ctx, c, conn, batch.job, connection_hash(conn), codec::encode_connection, codec::decode_connection,
                same_connection);
  }
}

template <typename Record, typename Encode, typename Decode, typename Same>
void LmdbStore::add_event(WriteCtx& ctx, Cursor& c, Record& inc, const JobRecord& job, uint64_t hash, Encode encode,
                          Decode decode, Same same) {
  inc.job_id = job.job_id;
  if (inc.node != job.node) inc.node = job.node;
  for (uint64_t probe = 0; probe < kHashProbes; ++probe) {
    const std::string key = event_key(ctx.job, ctx.node, inc.pid, inc.start_ticks, hash + probe);
    if (!c.find(key)) {
      c.put(key, encode(inc));
      return;
    }
    Record total = decode(c.value());
    if (!same(total, inc)) continue;
    add_to(total, inc);
    c.put(key, encode(total));
    return;
  }
  throw StoreError("store " + path_ + ": more than " + std::to_string(kHashProbes) +
                   " event keys of one process collide");
}

}  // namespace bc::store
