// bc-docker: gives Docker containers the per-process accounting of Slurm jobs. Follows the Docker event
// stream, and for each container starts the same bc-monitor that the SPANK plugin starts for a job.
#include <getopt.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "common/json.hpp"
#include "common/tls_files.hpp"
#include "docker_monitor/container_log.hpp"
#include "docker_monitor/discovery.hpp"
#include "docker_monitor/docker_api.hpp"
#include "docker_monitor/docker_client.hpp"
#include "docker_monitor/docker_config.hpp"
#include "docker_monitor/docker_launcher.hpp"
#include "docker_monitor/docker_log.hpp"

#ifndef BC_VERSION
#define BC_VERSION "unknown"
#endif

namespace {

using namespace bc::docker;

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;
constexpr int kExitDocker = 3;

constexpr int kBackoffFirstMs = 100;
constexpr int kBackoffMaxMs = 1000;
constexpr int64_t kRepeatLogNs = 60LL * 1000000000LL;

const char kUsage[] =
    "Usage: bc-docker [options]\n"
    "Per-process accounting for Docker containers: follows the Docker events and starts one bc-monitor per\n"
    "container, on the container's cgroup, writing into the node store like a Slurm job.\n"
    "\n"
    "  -c, --config FILE     key=value config file (default " BC_DOCKER_CONFIG_DEFAULT
    ", if present)\n"
    "      --socket PATH     Docker API socket (socket=, default /var/run/docker.sock)\n"
    "      --store PATH      node store given to the monitors (store=, default " BC_STORE_DEFAULT
    ")\n"
    "      --monitor PATH    the bc-monitor binary (monitor=, default " BC_MONITOR_DEFAULT
    ")\n"
    "      --run-dir DIR     monitor lock and pid files (rundir=, default " BC_RUN_DIR_DEFAULT
    ")\n"
    "      --log FILE        where the monitors log (log=, default " BC_MONITOR_LOG_DEFAULT
    ")\n"
    "      --state DIR       holds containers.jsonl, the record of every container (state=, default " BC_STATE_DEFAULT
    ")\n"
    "      --interval SECS   monitor sampling interval (interval=, default 1)\n"
    "      --label-only      only containers labelled bubble-chamber.monitor=true (label_only=yes)\n"
    "      --retry           keep trying until Docker answers instead of exiting (retry=yes)\n"
    "      --node NAME       node name recorded with the data (node=, default: short hostname)\n"
    "      --central URL     the monitors also push to this bcd (central=), authenticated by\n"
    "      --api-key-file F  the API key in F (api_key_file=; bcadm apikey create makes one)\n"
    "      --ca-file F       with an https central, the PEM CA certificate(s) that verify bcd, trusted\n"
    "                        alone (ca_file=; default: the system's CAs)\n"
    "      --outbox-max-mib N  bound of the node store's outbox while bcd cannot be reached (outbox_max_mib=,\n"
    "                        default 256); past it the oldest batches are given up for shipping (they stay\n"
    "                        in the node store) and counted\n"
    "      --ship-every SECS  send at most once per SECS while bcd keeps up (ship_every=, default 0: every\n"
    "                        tick); the live view lags by up to SECS\n"
    "      --bpf on|off      per-process eBPF events in the monitors: exit codes, every short process, files\n"
    "                        and connections (bpf=, default on); 'bc-monitor --check-events' says whether\n"
    "                        they load on this host\n"
    "  -h, --help            this text\n"
    "      --version         version\n"
    "\n"
    "Command-line options override the config file. Logs go to stderr.\n"
    "Signals: SIGTERM or SIGINT stop bc-docker; running monitors keep going and end with their containers.\n"
    "Exit status: 0 stopped by a signal, 1 runtime error (e.g. the state dir is not writable),\n"
    "2 usage or configuration error, 3 the Docker API cannot be reached at start (without --retry).\n"
    "See bc-docker(8).\n";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "bc-docker: %s\nTry 'bc-docker --help'.\n", message.c_str());
  return kExitUsage;
}

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

int64_t monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

std::string short_hostname() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) return {};
  std::string h(host);
  return h.substr(0, h.find('.'));
}

// Loads the config file, then applies the command line. Returns -1 to run, or an exit status.
int parse_args(int argc, char** argv, Config& config) {
  enum {
    kSocket = 1000,
    kStore,
    kMonitor,
    kRunDir,
    kLog,
    kState,
    kInterval,
    kLabelOnly,
    kRetry,
    kNode,
    kVersion,
    kCentral,
    kApiKeyFile,
    kCaFile,
    kOutboxMax,
    kShipEvery,
    kBpf
  };
  static const option long_options[] = {{"config", required_argument, nullptr, 'c'},
                                        {"socket", required_argument, nullptr, kSocket},
                                        {"store", required_argument, nullptr, kStore},
                                        {"monitor", required_argument, nullptr, kMonitor},
                                        {"run-dir", required_argument, nullptr, kRunDir},
                                        {"log", required_argument, nullptr, kLog},
                                        {"state", required_argument, nullptr, kState},
                                        {"interval", required_argument, nullptr, kInterval},
                                        {"label-only", no_argument, nullptr, kLabelOnly},
                                        {"retry", no_argument, nullptr, kRetry},
                                        {"node", required_argument, nullptr, kNode},
                                        {"help", no_argument, nullptr, 'h'},
                                        {"central", required_argument, nullptr, kCentral},
                                        {"api-key-file", required_argument, nullptr, kApiKeyFile},
                                        {"ca-file", required_argument, nullptr, kCaFile},
                                        {"outbox-max-mib", required_argument, nullptr, kOutboxMax},
                                        {"ship-every", required_argument, nullptr, kShipEvery},
                                        {"bpf", required_argument, nullptr, kBpf},
                                        {"version", no_argument, nullptr, kVersion},
                                        {nullptr, 0, nullptr, 0}};
  // Pass 1: the config file, so the command line can override it.
  std::string config_path = kDefaultConfigPath;
  bool explicit_config = false;
  opterr = 0;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "c:h", long_options, nullptr)) != -1) {
    if (c == 'c') {
      config_path = optarg;
      explicit_config = true;
    } else if (c == 'h') {
      std::fputs(kUsage, stdout);
      return kExitOk;
    } else if (c == kVersion) {
      std::puts("bc-docker (bubble-chamber) " BC_VERSION);
      return kExitOk;
    }
  }
  std::ifstream file(config_path);
  if (file) {
    std::stringstream text;
    text << file.rdbuf();
    std::vector<std::string> errors;
    parse_config_text(config, text.str(), config_path, errors);
    if (!errors.empty()) {
      for (const auto& e : errors) std::fprintf(stderr, "bc-docker: %s\n", e.c_str());
      std::fprintf(stderr, "bc-docker: configuration error, not starting\n");
      return kExitUsage;
    }
  } else if (explicit_config) {
    return usage_error("cannot read config file " + config_path + ": " + std::strerror(errno));
  }
  // Pass 2: the options themselves.
  optind = 1;
  while ((c = getopt_long(argc, argv, ":c:h", long_options, nullptr)) != -1) {
    std::string error;
    switch (c) {
      case 'c': break;
      case kSocket: error = apply_setting(config, "socket", optarg); break;
      case kStore: error = apply_setting(config, "store", optarg); break;
      case kMonitor: error = apply_setting(config, "monitor", optarg); break;
      case kRunDir: error = apply_setting(config, "rundir", optarg); break;
      case kLog: error = apply_setting(config, "log", optarg); break;
      case kState: error = apply_setting(config, "state", optarg); break;
      case kInterval: error = apply_setting(config, "interval", optarg); break;
      case kLabelOnly: config.label_only = true; break;
      case kRetry: config.retry = true; break;
      case kNode: error = apply_setting(config, "node", optarg); break;
      case kCentral: error = apply_setting(config, "central", optarg); break;
      case kApiKeyFile: error = apply_setting(config, "api_key_file", optarg); break;
      case kCaFile: error = apply_setting(config, "ca_file", optarg); break;
      case kOutboxMax: error = apply_setting(config, "outbox_max_mib", optarg); break;
      case kShipEvery: error = apply_setting(config, "ship_every", optarg); break;
      case kBpf: error = apply_setting(config, "bpf", optarg); break;
      case ':': return usage_error(std::string("option '") + argv[optind - 1] + "' needs an argument");
      default: return usage_error(std::string("unknown option '") + argv[optind - 1] + "'");
    }
    if (!error.empty()) return usage_error(error);
  }
  if (optind < argc) return usage_error(std::string("unexpected argument '") + argv[optind] + "'");
  if (!config.central.empty() && config.api_key_file.empty())
    return usage_error("central= needs api_key_file= (Docker hosts push with an API key)");
  // Checked here, once, rather than by every monitor that would then exit without recording.
  if (std::string error; !config.ca_file.empty() && !bc::auth::check_ca_file("ca_file", config.ca_file, error))
    return usage_error(error);
  return -1;
}

// Inspect through the API client, for Discovery.
class ApiQueries final : public DockerQueries {
 public:
  explicit ApiQueries(DockerClient& client) : client_(client) {}
  InspectResult inspect(const std::string& id) override {
    InspectResult out;
    HttpResult r = client_.get("/containers/" + id + "/json");
    if (r.transport_ok && r.status == 404) {
      out.status = InspectResult::Status::NotFound;
      return out;
    }
    if (!r.ok()) {
      out.error = r.transport_ok ? "HTTP " + std::to_string(r.status) : r.error;
      return out;
    }
    auto info = parse_inspect(r.body);
    if (!info) {
      out.error = "unreadable inspect response";
      return out;
    }
    out.status = InspectResult::Status::Ok;
    out.info = std::move(*info);
    return out;
  }

 private:
  DockerClient& client_;
};

struct ConnectOutcome {
  bool ok = false;
  std::string error;
  std::string version;  // "20.10.24 (API 1.41)"
  size_t containers = 0;
};

std::string version_text(const std::string& body) {
  bc::json::Ptr root(cJSON_ParseWithLength(body.data(), body.size()));
  auto field = [&](const char* name) {
    const cJSON* item = root ? cJSON_GetObjectItemCaseSensitive(root.get(), name) : nullptr;
    return cJSON_IsString(item) ? std::string(item->valuestring) : std::string("?");
  };
  return field("Version") + " (API " + field("ApiVersion") + ")";
}

class Daemon {
 public:
  Daemon(const Config& config, const std::string& node, ContainerLog& container_log)
      : config_(config),
        client_(config.socket),
        stream_(config.socket),
        launcher_(config, node),
        queries_(client_),
        discovery_(
            config, node, queries_, launcher_, container_log, log_to_stderr,
            [](const std::string& path) { return bc::read_file(path); }, now_ns) {
    discovery_.adopt(container_log.load_running());
  }

  int run(int signal_fd) {
    log_to_stderr(Level::Info,
                  "starting: socket " + config_.socket + ", store " + config_.store + ", monitor " + config_.monitor +
                      ", interval " + seconds(config_.interval_s) + " s" +
                      (config_.label_only ? ", only containers labelled bubble-chamber.monitor=true" : ""));
    bool connected_once = false;
    int backoff_ms = kBackoffFirstMs;
    int64_t next_attempt_ms = monotonic_ms();
    std::string last_problem;
    int64_t last_problem_ns = 0;
    for (;;) {
      if (!stream_.is_open() && monotonic_ms() >= next_attempt_ms) {
        ConnectOutcome outcome = connect();
        if (outcome.ok) {
          log_to_stderr(Level::Info, std::string(connected_once ? "reconnected" : "connected") + " to Docker " +
                                         outcome.version + " on " + config_.socket + "; " +
                                         std::to_string(outcome.containers) + " containers known, " +
                                         std::to_string(running_runs()) + " running");
          connected_once = true;
          backoff_ms = kBackoffFirstMs;
          last_problem.clear();
        } else {
          if (!connected_once && !config_.retry) {
            log_to_stderr(Level::Error, outcome.error);
            log_to_stderr(Level::Error, "giving up (use --retry or retry=yes to wait for Docker)");
            return kExitDocker;
          }
          if (outcome.error != last_problem || now_ns() - last_problem_ns > kRepeatLogNs) {
            log_to_stderr(Level::Warning,
                          outcome.error + "; retrying every " + std::to_string(kBackoffMaxMs / 1000) + " s at most");
            last_problem = outcome.error;
            last_problem_ns = now_ns();
          }
          next_attempt_ms = monotonic_ms() + backoff_ms;
          backoff_ms = std::min(backoff_ms * 2, kBackoffMaxMs);
        }
      }
      int timeout_ms = 60000;
      if (!stream_.is_open()) timeout_ms = static_cast<int>(std::max<int64_t>(0, next_attempt_ms - monotonic_ms()));
      EventStream::PollResult polled = stream_.poll(signal_fd, timeout_ms);
      if (polled.wake_fd_ready && handle_signals(signal_fd)) break;
      for (const auto& line : polled.lines) {
        auto event = parse_event(line);
        if (!event) continue;
        if (event->time_ns > last_event_ns_) last_event_ns_ = event->time_ns;
        discovery_.on_event(*event);
      }
      if (polled.ended) {
        log_to_stderr(Level::Warning, "lost the Docker event stream: " + polled.error + "; reconnecting");
        next_attempt_ms = monotonic_ms() + kBackoffFirstMs;
        backoff_ms = kBackoffFirstMs * 2;
      } else if (!polled.error.empty()) {
        log_to_stderr(Level::Warning, "event stream: " + polled.error);
      }
    }
    stream_.close();
    log_to_stderr(Level::Info, "stopping; " + std::to_string(running_runs()) +
                                   " running containers keep their monitors, which end with them");
    return kExitOk;
  }

 private:
  size_t running_runs() const {
    size_t n = 0;
    for (const auto& [id, r] : discovery_.runs()) n += r.running && r.monitored;
    return n;
  }

  ConnectOutcome connect() {
    ConnectOutcome out;
    HttpResult version = client_.get("/version", 5000);
    if (!version.ok()) {
      out.error = describe_connect_error(version, config_.socket);
      return out;
    }
    out.version = version_text(version.body);
    // Events from this moment (or from the last one seen, which replays what a broken stream missed) are
    // replayed by the daemon, so nothing between the list and the stream is lost; duplicates are harmless.
    const int64_t since = last_event_ns_ > 0 ? last_event_ns_ + 1 : now_ns();
    HttpResult list = client_.get("/containers/json?all=1", 30000);
    if (!list.ok()) {
      out.error = list.transport_ok ? "listing containers failed with HTTP " + std::to_string(list.status)
                                    : describe_connect_error(list, config_.socket);
      return out;
    }
    auto containers = parse_container_list(list.body);
    if (!containers) {
      out.error = "unreadable container list from " + config_.socket;
      return out;
    }
    out.containers = containers->size();
    discovery_.resync(*containers);
    stream_.open(events_path(since));
    out.ok = true;
    return out;
  }

  // Returns true when bc-docker should stop.
  bool handle_signals(int signal_fd) {
    bool stop = false;
    signalfd_siginfo info{};
    while (::read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      if (info.ssi_signo == SIGCHLD) {
        for (const auto& failure : launcher_.reap()) log_to_stderr(Level::Warning, failure);
      } else if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) {
        log_to_stderr(Level::Info, std::string("received ") + (info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT"));
        stop = true;
      }
    }
    return stop;
  }

  const Config& config_;
  DockerClient client_;
  EventStream stream_;
  ProcessLauncher launcher_;
  ApiQueries queries_;
  Discovery discovery_;
  int64_t last_event_ns_ = 0;
};

int run(int argc, char** argv) {
  Config config;
  if (int rc = parse_args(argc, argv, config); rc >= 0) return rc;
  const std::string node = config.node.empty() ? short_hostname() : config.node;
  if (node.empty()) return usage_error("cannot tell the node name; set node=");
  if (::access(config.monitor.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "bc-docker: monitor binary %s is not executable: %s (set monitor=)\n", config.monitor.c_str(),
                 std::strerror(errno));
    return kExitUsage;
  }
  std::unique_ptr<ContainerLog> container_log;
  try {
    container_log = std::make_unique<ContainerLog>(config.container_log_path());
  } catch (const std::exception& e) {
    log_to_stderr(Level::Error, e.what());
    return kExitRuntime;
  }

  // Signals are read from a signalfd inside the poll loop; SIGCHLD reaps monitors that failed.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGCHLD}) sigaddset(&signals, s);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  bc::UniqueFd signal_fd(::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd) {
    log_to_stderr(Level::Error, std::string("signalfd: ") + std::strerror(errno));
    return kExitRuntime;
  }
  http_global_init();
  Daemon daemon(config, node, *container_log);
  return daemon.run(signal_fd.get());
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    bc::docker::log_to_stderr(bc::docker::Level::Error, e.what());
  } catch (...) {
    bc::docker::log_to_stderr(bc::docker::Level::Error, "unexpected error");
  }
  return kExitRuntime;
}
