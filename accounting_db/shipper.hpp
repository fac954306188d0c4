// Ships the node store's outbox to a central bcd (POST /api/v1/ingest), authenticated by munge (the
// credential's payload is the SHA-256 of the body) or an API key. Used by bc-monitor (a background thread,
// so sampling never waits on the network) and by `bcadm ship` (leftovers, from a systemd timer).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace bc::store {
class Store;
struct Batch;
}  // namespace bc::store

namespace bc::ship {

struct ShipOptions {
  std::string central_url;  // http://host:port or https://host:port (the path /api/v1/ingest is appended)
  // https: the CA file that verifies bcd's certificate, trusted alone; empty: the system's CAs. Verification
  // is never turned off.
  std::string ca_file;
  std::string api_key;       // when set, sent as "Authorization: Bearer" instead of a munge credential
  std::string munge_socket;  // empty: munge's default
  std::string lock_path;     // one shipper per node store at a time (flock); empty: no lock
  double connect_timeout_s = 2.0;
  double request_timeout_s = 10.0;
  size_t max_bundle_bytes = 4 << 20;
  size_t max_bundle_batches = 2000;
  // While bcd keeps up, at most one round of requests per this many seconds (0: a round per tick). Each
  // request then carries the ticks since the last round, so bcd takes many more nodes; the live view lags
  // by up to this much plus a tick. A backlog is still sent request after request; at exit the last ticks
  // go in the destructor's bounded last attempt (what it cannot send waits in the outbox).
  double ship_every_s = 0;
};

// An API key file: the key on its first line (surrounding white space ignored). Keys stay out of argv, which
// every user can read in /proc. False with error set when the file cannot be read or holds no key.
bool read_api_key_file(const std::string& path, std::string& key, std::string& error);

struct ShipResult {
  uint64_t batches = 0;  // acknowledged by bcd
  uint64_t requests = 0;
  bool outbox_empty = false;
  bool busy = false;  // another shipper holds the node store's lock
  std::string error;  // the last failure; empty when the last request worked
};

// One POST of an encoded bundle (wire::encode_bundle) to options.central_url. Returns the HTTP status, 0
// when there was no answer (error says why).
long post_bundle(const ShipOptions& options, const std::string& body, std::string& answer, std::string& error);

// Sends bundles until the outbox is empty, a request fails, or the deadline passes. Never throws.
// store_mutex guards every use of the store (the monitor writes from another thread).
ShipResult ship_pending(const ShipOptions& options, store::Store& store, std::mutex& store_mutex, double deadline_s);

// bc-monitor's shipper: write() spools each tick's batch in the write transaction and wakes a background
// thread that ships (at most once per ShipOptions::ship_every_s) with exponential backoff (1 s doubling to
// 60 s) while bcd is unreachable. Its destructor
// makes a last attempt bounded by final_budget_s; what is left stays in the outbox for the next monitor on
// this node or `bcadm ship`.
class BackgroundShipper {
 public:
  BackgroundShipper(ShipOptions options, store::Store& store, uint64_t monitor_id, double final_budget_s = 3.0);
  ~BackgroundShipper();
  BackgroundShipper(const BackgroundShipper&) = delete;
  BackgroundShipper& operator=(const BackgroundShipper&) = delete;

  // Throws what Store::write_batch throws.
  void write(store::Batch& batch);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// A random 64-bit id for one monitor's lifetime (the batch id's "monitor" part).
uint64_t new_monitor_id();

}  // namespace bc::ship
