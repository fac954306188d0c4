// bcd's configuration: a key=value file ('#' comments), then the original bubble-chamber's environment
// names on top (AUTH_SECRET, AUTH_DISABLE). Unknown keys and bad values are errors naming file and line.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "accounting_db/job_notes.hpp"

namespace bc::bcd {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Config {
  std::string listen_address = "127.0.0.1";
  uint16_t listen_port = 8470;
  std::string store = "/var/lib/bubble-chamber/central.lmdb";
  std::string static_dir = BC_WEB_STATIC_DEFAULT;
  std::string auth_secret;        // HMAC key for web tokens; required unless auth is disabled
  bool auth_disable = false;      // web and CLI reads only (the original's AUTH_DISABLE); never ingest
  bool ingest_auth = true;        // off: pushes need no credential. For tests only, never AUTH_DISABLE's doing
  int64_t dedup_window_s = 3600;  // dedup entries older than this are folded into their monitor's mark
  std::vector<std::string> admins = {"root"};            // users who see every job
  std::string admin_group;                               // members see every job too
  std::vector<std::string> pushers = {"root", "slurm"};  // users whose munge credentials may push node data
  std::string munge_socket;                              // empty: munge's default
  size_t max_body_bytes = 16 << 20;
  unsigned threads = 4;
  unsigned max_streams = 64;  // live Server-Sent Event streams at once; more get 503
  // Against hostile clients (web::ServerOptions): connections in total and per client address, seconds
  // for a request's headers and for its body, bytes of request bodies buffered at once.
  unsigned max_connections = 2048;
  unsigned max_connections_per_ip = 64;
  unsigned header_timeout_s = 10;
  unsigned body_timeout_s = 60;
  size_t max_inflight_bytes = 256 << 20;
  std::string log = "stderr";  // stderr or syslog
  // /metrics shows bcd's own health to anyone; the running jobs' series (job, user, CPU, RSS, I/O) only with
  // metrics_jobs on, to a scraper bearing metrics_token or an admin's munge credential.
  bool metrics_jobs = false;
  std::string metrics_token;
  std::string tls_cert;  // HTTPS with this PEM certificate (chain) and tls_key; both empty: plain HTTP
  std::string tls_key;
  // The efficiency notes' thresholds (GET /api/v1/jobs/{id}/notes): notes_config= names the file; the
  // defaults of accounting_db/job_notes.hpp stand for what it does not set.
  std::string notes_config;
  job::NoteThresholds notes;
};

// origin names the text in messages ("/etc/bubble-chamber/bcd.conf").
Config parse_config(std::string_view text, const std::string& origin, Config base = {});
// Reads the file (a missing file is an error only when required), then applies the environment.
Config load_config(const std::string& path, bool required);
void apply_environment(Config& config);
// Throws when the combination cannot work (no secret with auth on, no static dir, tls_cert without tls_key).
void validate(const Config& config);

}  // namespace bc::bcd
