// Internal to accounting_db: move-only RAII over LMDB's env, transaction and cursor.
#pragma once

#include <lmdb.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "accounting_db/env_gate.hpp"
#include "accounting_db/store.hpp"

namespace bc::store::lmdb {

// An LMDB failure; rc lets the writer react to MDB_MAP_FULL, ENOSPC and the like.
class LmdbError : public StoreError {
 public:
  LmdbError(const std::string& what, int rc) : StoreError(what + ": " + mdb_strerror(rc)), rc_(rc) {}
  int rc() const { return rc_; }

 private:
  int rc_;
};

[[noreturn]] inline void fail(const std::string& what, int rc) { throw LmdbError(what, rc); }
inline void check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) fail(what, rc);
}
inline MDB_val val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
inline std::string_view view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

class Env {
 public:
  Env() { check(mdb_env_create(&env_), "mdb_env_create"); }
  ~Env() {
    if (env_) mdb_env_close(env_);
  }
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;
  MDB_env* get() const { return env_; }

 private:
  MDB_env* env_ = nullptr;
};

// Aborts in its destructor unless committed. Holds its environment's gate pass, if given, until then.
class Txn {
 public:
  Txn(MDB_env* env, unsigned flags, EnvGate::Pass pass = {})
      : pass_(std::move(pass)), rc_(mdb_txn_begin(env, nullptr, flags, &txn_)) {
    if (rc_ != MDB_SUCCESS) txn_ = nullptr;
  }
  ~Txn() { abort(); }
  Txn(Txn&& o) noexcept : pass_(std::move(o.pass_)), txn_(std::exchange(o.txn_, nullptr)), rc_(o.rc_) {}
  Txn& operator=(Txn&&) = delete;
  Txn(const Txn&) = delete;

  int begin_rc() const { return rc_; }
  MDB_txn* get() const { return txn_; }
  // Both end the transaction and give its pass back.
  int commit() {
    int rc = mdb_txn_commit(std::exchange(txn_, nullptr));
    pass_ = {};
    return rc;
  }
  void abort() {
    if (txn_) mdb_txn_abort(std::exchange(txn_, nullptr));
    pass_ = {};
  }

  std::optional<std::string_view> get(MDB_dbi dbi, std::string_view key) const {
    MDB_val k = val(key), v;
    int rc = mdb_get(txn_, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    check(rc, "mdb_get");
    return view(v);
  }
  // Returns the LMDB code so callers can react to MDB_MAP_FULL.
  int put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0) {
    MDB_val k = val(key), v = val(value);
    return mdb_put(txn_, dbi, &k, &v, flags);
  }
  // Throws LmdbError on failure.
  void must_put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0) {
    check(put(dbi, key, value, flags), "mdb_put");
  }
  bool del(MDB_dbi dbi, std::string_view key) {
    MDB_val k = val(key);
    int rc = mdb_del(txn_, dbi, &k, nullptr);
    if (rc == MDB_NOTFOUND) return false;
    check(rc, "mdb_del");
    return true;
  }

 private:
  EnvGate::Pass pass_;
  MDB_txn* txn_ = nullptr;
  int rc_;
};

class Cursor {
 public:
  Cursor(const Txn& txn, MDB_dbi dbi) { check(mdb_cursor_open(txn.get(), dbi, &cursor_), "mdb_cursor_open"); }
  ~Cursor() {
    if (cursor_) mdb_cursor_close(cursor_);
  }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  // Positions at the first key >= key; false at the end.
  bool seek(std::string_view key) { return move(key, MDB_SET_RANGE); }
  // Positions at exactly key; false if absent.
  bool find(std::string_view key) { return move(key, MDB_SET_KEY); }
  bool first() { return move({}, MDB_FIRST); }
  bool last() { return move({}, MDB_LAST); }
  bool next() { return move({}, MDB_NEXT); }
  bool prev() { return move({}, MDB_PREV); }
  std::string_view key() const { return view(key_); }
  std::string_view value() const { return view(value_); }

  // Write cursors. Throw LmdbError on failure; put with MDB_APPEND returns false when the key does not
  // sort after the last one.
  void put(std::string_view key, std::string_view value, unsigned flags = 0) {
    MDB_val k = val(key), v = val(value);
    check(mdb_cursor_put(cursor_, &k, &v, flags), "mdb_cursor_put");
  }
  bool try_append(std::string_view key, std::string_view value) {
    MDB_val k = val(key), v = val(value);
    int rc = mdb_cursor_put(cursor_, &k, &v, MDB_APPEND);
    if (rc == MDB_KEYEXIST) return false;
    check(rc, "mdb_cursor_put");
    return true;
  }
  // Deletes the current item; next() then moves to the item that followed it.
  void del() { check(mdb_cursor_del(cursor_, 0), "mdb_cursor_del"); }

 private:
  bool move(std::string_view key, MDB_cursor_op op) {
    key_ = val(key);
    int rc = mdb_cursor_get(cursor_, &key_, &value_, op);
    if (rc == MDB_NOTFOUND) return false;
    check(rc, "mdb_cursor_get");
    return true;
  }
  MDB_cursor* cursor_ = nullptr;
  MDB_val key_{}, value_{};
};

}  // namespace bc::store::lmdb
