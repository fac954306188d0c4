// Room for the data: growing the map ahead of the writes, and the full disk (degraded mode).
#include "accounting_db/lmdb_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace bc::store {

bool LmdbStore::grow_map() {
  bool grown = false;
  gate_.exclusively([&] {
    lmdb::check(mdb_env_set_mapsize(env_->get(), 0), "mdb_env_set_mapsize");  // adopt another process's growth
    MDB_envinfo info{};
    lmdb::check(mdb_env_info(env_->get(), &info), "mdb_env_info");
    struct statvfs fs {};
    if (statvfs(path_.c_str(), &fs) == 0) {
      uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
      // The map file is sparse; ask for room for a quarter of the step, which is what the next
      // batches can realistically fill before the next check.
      if (free_bytes < options_.map_growth_step_bytes / 4) return;
    }
    lmdb::check(mdb_env_set_mapsize(env_->get(), info.me_mapsize + options_.map_growth_step_bytes), "grow map");
    grown = true;
  });
  return grown;
}

void LmdbStore::prepare_batch() {
  MDB_envinfo info{};
  MDB_stat st{};
  {
    lmdb::EnvGate::Pass pass = gate_.enter();
    if (mdb_env_info(env_->get(), &info) != 0 || mdb_env_stat(env_->get(), &st) != 0) return;
  }
  const uint64_t used = (info.me_last_pgno + 1) * st.ms_psize;
  if (static_cast<double>(used) > options_.grow_at_fill * static_cast<double>(info.me_mapsize)) {
    if (!grow_map()) enter_degraded("the map is nearly full and the disk has no room to grow it");
  }
  const uint64_t reserve = options_.disk_reserve_bytes;
  if (reserve && reserve_supported_ && used + reserve / 2 > prealloc_end_) {
    int fd = -1;
    if (mdb_env_get_fd(env_->get(), &fd) == 0) {
      int rc = ::fallocate(fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(used), static_cast<off_t>(reserve));
      if (rc == 0) {
        prealloc_end_ = used + reserve;
      } else if (errno == EOPNOTSUPP || errno == ENOSYS) {
        reserve_supported_ = false;
      } else if (errno == ENOSPC || errno == EDQUOT) {
        enter_degraded("cannot reserve disk blocks ahead of the data");
        // The file cannot grow: make room inside it before its reserve runs out.
        if (used + reserve / 4 > prealloc_end_) drop_pending_ = true;
      }
    }
  }
  if (degraded_ && drop_pending_) {
    drop_pending_ = false;
    free_space_round();
  }
  if (degraded_ && monotonic_s() - last_recovery_check_ >= 10) {
    last_recovery_check_ = monotonic_s();
    struct statvfs fs {};
    if (statvfs(path_.c_str(), &fs) == 0) {
      const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
      if (free_bytes >= 2 * reserve + options_.map_growth_step_bytes / 4) {
        degraded_ = false;
        log_line("%s: disk space is back (%llu bytes free); keeping second-resolution data again", path_.c_str(),
                 static_cast<unsigned long long>(free_bytes));
      }
    }
  }
}

void LmdbStore::enter_degraded(const char* why) {
  const int64_t now = monotonic_s();
  if (!degraded_ || now - last_degraded_log_ >= 60) {
    struct statvfs fs {};
    unsigned long long free_bytes = 0;
    if (statvfs(path_.c_str(), &fs) == 0) free_bytes = static_cast<unsigned long long>(fs.f_bavail) * fs.f_frsize;
    log_line(
        "DISK FULL: %s: %s (%llu bytes free); dropping second-resolution data, oldest first, and keeping "
        "minute, hour and day rollups",
        path_.c_str(), why, free_bytes);
    last_degraded_log_ = now;
  }
  if (!degraded_) drop_pending_ = true;  // free pages inside the file for the rollups to come
  degraded_ = true;
  last_recovery_check_ = now;
}

bool LmdbStore::free_space_round() {
  for (int r = 0; r < 2; ++r) {
    Txn txn = begin(0);
    MDB_stat st{};
    lmdb::check(mdb_stat(txn.get(), series_[r], &st), "mdb_stat");
    if (st.ms_entries == 0) continue;
    const uint64_t quota = std::max<uint64_t>(256, st.ms_entries / 8);
    std::map<std::string, int64_t> floors;  // (job, node) -> new floor
    uint64_t deleted = 0;
    {
      Cursor c(txn, series_[r]);
      for (bool ok = c.first(); ok && deleted < quota; ok = c.next()) {
        ChunkKey k = parse_chunk_key(c.key());
        auto& f = floors[std::string(job_key(k.job, k.node).sv())];
        f = std::max(f, k.start + kChunkSpan[r]);
        c.del();
        ++deleted;
      }
    }
    for (const auto& [key, floor] : floors) {
      auto v = txn.get(job_state_, key);
      if (!v) continue;
      JobState js = codec::decode_job_state(*v);
      for (int i = 0; i <= r; ++i) js.floor[i] = std::max(js.floor[i], floor);
      txn.must_put(job_state_, key, codec::encode_job_state(js));
    }
    int rc = txn.commit();
    if (rc != MDB_SUCCESS) {
      log_line("%s: DISK FULL: could not commit the deletion of %llu %s chunks: %s", path_.c_str(),
               static_cast<unsigned long long>(deleted), resolution_name(static_cast<Resolution>(r)), mdb_strerror(rc));
      return false;
    }
    log_line("%s: DISK FULL: dropped the %llu oldest %s-resolution chunks of %zu job(s) to make room", path_.c_str(),
             static_cast<unsigned long long>(deleted), resolution_name(static_cast<Resolution>(r)), floors.size());
    return true;
  }
  return false;
}

void LmdbStore::count_rejected(const WriteCounts& counts) {
  if (counts.rejected == 0 && counts.unstored_processes == 0) return;
  const uint64_t before = rejected_ + unstored_processes_;
  rejected_ += counts.rejected;
  unstored_processes_ += counts.unstored_processes;
  if (worth_logging(before, rejected_ + unstored_processes_))
    log_line(
        "%s: %llu sample(s) rejected (a time out of range, or their process left out) and %llu process(es) "
        "left out for want of a series id (%llu and %llu so far)",
        path_.c_str(), static_cast<unsigned long long>(counts.rejected),
        static_cast<unsigned long long>(counts.unstored_processes), static_cast<unsigned long long>(rejected_),
        static_cast<unsigned long long>(unstored_processes_));
}

void LmdbStore::count_late(uint64_t dropped) {
  if (dropped == 0) return;
  const uint64_t before = dropped_late_;
  dropped_late_ += dropped;
  if (worth_logging(before, dropped_late_))
    log_line("%s: %llu sample(s) came too late to place and were dropped (%llu so far)", path_.c_str(),
             static_cast<unsigned long long>(dropped), static_cast<unsigned long long>(dropped_late_));
}

}  // namespace bc::store
