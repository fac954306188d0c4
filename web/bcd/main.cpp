// bcd: the bubble-chamber central daemon. Serves the central store over HTTP: the JSON API, OpenMetrics and
// the web view.
#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "accounting_db/store.hpp"
#include "common/tls_files.hpp"
#include "web/bcd/api.hpp"
#include "web/bcd/config.hpp"
#include "web/bcd/http_server.hpp"
#include "web/bcd/ingest.hpp"

namespace {

const char kUsage[] =
    "Usage: bcd [--config FILE] [--listen ADDR:PORT] [--store PATH] [--static-dir DIR] [--port-file FILE]\n"
    "The bubble-chamber central daemon: node data ingest (POST /api/v1/ingest), JSON API, OpenMetrics\n"
    "(/metrics) and web view (/static/).\n"
    "\n"
    "  -c, --config FILE     key=value config (default " BC_BCD_CONFIG_DEFAULT
    "; must exist when given)\n"
    "      --listen A:P      address and port (overrides listen=); port 0 picks a free one\n"
    "      --store PATH      central store (overrides store=)\n"
    "      --static-dir DIR  web assets (overrides static_dir=)\n"
    "      --port-file FILE  write the bound port here once listening (for tests and scripts)\n"
    "  -h, --help            this text\n"
    "      --version         version\n"
    "\n"
    "Environment: AUTH_SECRET, AUTH_DISABLE=yes|no override the config file. AUTH_DISABLE opens reads only:\n"
    "pushes stay authenticated unless the config says ingest_auth=off (for tests only).\n"
    "HTTPS: tls_cert=PEM and tls_key=PEM in the config; clients then verify bcd against their ca_file.\n"
    "Without them bcd serves plain HTTP, and warns at start when it listens beyond loopback (127.0.0.0/8).\n"
    "Exit status: 0 stopped by SIGTERM/SIGINT, 1 cannot start (store, port, TLS certificate or key),\n"
    "2 usage or config error.\n";

// What the HTTP layer refused or dropped on its own, by cause.
std::string http_metrics(const bc::web::ServerCounters& c) {
  std::string out = "# TYPE bcd_http_refused counter\n";
  for (const auto& [reason, n] : {std::pair{"header_timeout", &c.header_timeouts},
                                  {"body_timeout", &c.body_timeouts},
                                  {"busy", &c.busy},
                                  {"bad_query", &c.bad_query},
                                  {"not_admitted", &c.admission_refused}})
    out += std::string("bcd_http_refused_total{reason=\"") + reason + "\"} " + std::to_string(n->load()) + "\n";
  return out;
}

void log_line(bool syslog_on, int priority, const std::string& text) {
  if (syslog_on) syslog(priority, "%s", text.c_str());
  else std::fprintf(stderr, "bcd: %s\n", text.c_str());
}

bool is_loopback(const std::string& ipv4) {
  in_addr addr{};
  return inet_pton(AF_INET, ipv4.c_str(), &addr) == 1 && (ntohl(addr.s_addr) >> 24) == 127;
}

// The command line over the config file, and where to write the port (--port-file). Returns the exit code
// when bcd is not to run (--help, --version; a bad option or config: 2).
std::optional<int> configure(int argc, char** argv, bc::bcd::Config& config, std::string& port_file) {
  std::string config_path = BC_BCD_CONFIG_DEFAULT, listen, store_path, static_dir;
  bool config_required = false;
  enum { kListen = 1000, kStore, kStatic, kPortFile, kVersion };
  static const option long_options[] = {
      {"config", required_argument, nullptr, 'c'},          {"listen", required_argument, nullptr, kListen},
      {"store", required_argument, nullptr, kStore},        {"static-dir", required_argument, nullptr, kStatic},
      {"port-file", required_argument, nullptr, kPortFile}, {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, kVersion},          {nullptr, 0, nullptr, 0}};
  for (int c; (c = getopt_long(argc, argv, "c:h", long_options, nullptr)) != -1;) {
    switch (c) {
      case 'c':
        config_path = optarg;
        config_required = true;
        break;
      case kListen: listen = optarg; break;
      case kStore: store_path = optarg; break;
      case kStatic: static_dir = optarg; break;
      case kPortFile: port_file = optarg; break;
      case 'h': std::fputs(kUsage, stdout); return 0;
      case kVersion: std::puts("bcd " BC_VERSION); return 0;
      default: std::fputs("Try 'bcd --help'.\n", stderr); return 2;
    }
  }
  if (optind < argc) {
    std::fprintf(stderr, "bcd: unexpected argument '%s'\nTry 'bcd --help'.\n", argv[optind]);
    return 2;
  }
  try {
    config = bc::bcd::load_config(config_path, config_required);
    std::string overrides;
    if (!listen.empty()) overrides += "listen=" + listen + "\n";
    if (!store_path.empty()) overrides += "store=" + store_path + "\n";
    if (!static_dir.empty()) overrides += "static_dir=" + static_dir + "\n";
    config = bc::bcd::parse_config(overrides, "command line", config);
    bc::bcd::validate(config);
  } catch (const bc::bcd::ConfigError& e) {
    std::fprintf(stderr, "bcd: %s\n", e.what());
    return 2;
  }
  return std::nullopt;
}

// Each connection is a descriptor: the soft limit (often 1024) would refuse connections long before
// max_connections, honest ones included.
void raise_open_files(const bc::bcd::Config& config, bool use_syslog) {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0) return;
  const rlim_t want = static_cast<rlim_t>(config.max_connections) + 256;
  files.rlim_cur = std::min(files.rlim_max, std::max(files.rlim_cur, want));
  setrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < want)
    log_line(use_syslog, LOG_WARNING,
             "open files limited to " + std::to_string(files.rlim_cur) +
                 ", under max_connections=" + std::to_string(config.max_connections) + " plus 256; raise LimitNOFILE");
}

bc::web::ServerOptions server_options(const bc::bcd::Config& config, bc::bcd::Ingest& ingest) {
  bc::web::ServerOptions options;
  options.bind_address = config.listen_address;
  options.port = config.listen_port;
  options.threads = config.threads;
  options.max_body_bytes = config.max_body_bytes;
  options.on_body_too_large = [&ingest](const std::string& path) { ingest.body_too_large(path); };
  options.max_connections = config.max_connections;
  options.max_connections_per_ip = config.max_connections_per_ip;
  options.header_timeout_s = config.header_timeout_s;
  options.body_timeout_s = config.body_timeout_s;
  options.max_inflight_bytes = config.max_inflight_bytes;
  return options;
}

}  // namespace

int main(int argc, char** argv) try {
  bc::bcd::Config config;
  std::string port_file;
  if (std::optional<int> exit_code = configure(argc, argv, config, port_file)) return *exit_code;
  const bool use_syslog = config.log == "syslog";
  if (use_syslog) openlog("bcd", LOG_PID, LOG_DAEMON);

  raise_open_files(config, use_syslog);

  // Signals are taken synchronously by the main thread; the server's threads never see them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<bc::store::Store> db;
  try {
    // An acknowledged batch must survive a power cut: every commit syncs data and meta page before bcd
    // answers 200 (NoMetaSync could roll the last commit back).
    bc::store::OpenOptions store_options;
    store_options.durability = bc::store::Durability::Full;
    db = bc::store::Store::open(config.store, store_options);
  } catch (const std::exception& e) {
    log_line(use_syslog, LOG_ERR, std::string("cannot open the central store: ") + e.what());
    return 1;
  }
  bc::store::Store& central = *db;  // owned by api, which outlives ingest's use of it
  bc::bcd::Api api(config, std::move(db));
  bc::bcd::Ingest ingest(config, central);
  ingest.on_written([&api](uint64_t job_id, bool running) { api.job_index().written(job_id, running); });
  try {
    api.job_index().load_running();
  } catch (const std::exception& e) {
    log_line(use_syslog, LOG_ERR, std::string("cannot read the central store's jobs: ") + e.what());
    return 1;
  }
  std::unique_ptr<bc::web::HttpServer> server;
  api.add_metrics(
      [&ingest, &server] { return ingest.metrics_text() + (server ? http_metrics(server->counters()) : ""); });
  std::vector<bc::web::Route> routes = api.routes();
  for (auto& r : ingest.routes()) routes.insert(routes.begin(), std::move(r));
  bc::web::ServerOptions options = server_options(config, ingest);
  const bool tls = !config.tls_cert.empty();
  if (tls) {
    std::string error;
    auto pem = bc::auth::load_server_tls("tls_cert", config.tls_cert, "tls_key", config.tls_key, error);
    if (!pem) {
      log_line(use_syslog, LOG_ERR, error);
      return 1;
    }
    options.tls_cert_pem = std::move(pem->cert);
    options.tls_key_pem = std::move(pem->key);
  }
  try {
    server = std::make_unique<bc::web::HttpServer>(options, std::move(routes));
  } catch (const std::exception& e) {
    log_line(use_syslog, LOG_ERR, e.what());
    return 1;
  }
  if (!port_file.empty()) {
    std::ofstream(port_file + ".tmp") << server->port() << "\n";
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  const std::string address = config.listen_address + ":" + std::to_string(server->port());
  log_line(use_syslog, LOG_INFO,
           "listening on " + std::string(tls ? "https://" : "http://") + address + ", store " + config.store +
               (config.auth_disable ? ", AUTH DISABLED: every caller sees every job" : "") +
               (config.ingest_auth ? "" : ", INGEST AUTH OFF: anyone can push node data (tests only)"));
  if (!tls && !is_loopback(config.listen_address))
    log_line(use_syslog, LOG_WARNING,
             "warning: listening on " + address +
                 " beyond loopback without TLS: munge credentials, API keys, "
                 "web tokens and job data cross the network in clear text; set tls_cert= and tls_key=");
  int sig = 0;
  sigwait(&stop_signals, &sig);
  log_line(use_syslog, LOG_INFO, std::string("stopping on ") + strsignal(sig) + ", finishing requests in flight");
  server.reset();
  log_line(use_syslog, LOG_INFO, "stopped");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bcd: %s\n", e.what());
  return 1;
}
