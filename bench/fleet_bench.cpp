// The fleet engine end to end: one `twinfleet run` process against a separate `twinfleet hub`
// process on loopback, beside the official Node.js SDK (azure-iot-device + azure-iot-device-mqtt)
// doing the same workload against the same hub, in the same invocation.
//
// Each repetition starts a fresh hub (plain MQTT, MQTT/TLS and plain HTTP listeners on free
// ports of 127.0.0.1, --auth open) and measures, from outside, by sampling /proc/PID/stat
// (utime+stime) and /proc/PID/status (VmRSS) of the run, the SDK and the hub processes, and by
// polling the hub's GET /metrics (twinfleet_hub_operations_total, every 25 ms):
//
//   base     `twinfleet run bench-connect --devices 1`: the empty process — its RSS once its one
//            device is idle, and the CPU it spends until that device's twin GET is answered
//            (start-up: loading the scenario, reading hub.json, the target check).
//   tcp      `--devices N` (19,500) over plain TCP, `ramp: { duration: 0s }` (all at once): the
//            time from spawning the run until the hub has answered N twin GETs (subscribe comes
//            before GET, so this is "connected, subscribed and GET done"), also as the run's
//            summary.json timeline sees it (1 s resolution, from the run's own start); then
//            2 s of rest, the RSS above `base` per device, and the CPU over a 10 s idle window
//            (the profile's keep-alive is 10 s, so every device pings once in it).
//   tls      `--devices T` (5,000) over MQTT/TLS: connect CPU per device = (CPU when the T-th
//            GET is answered − the start-up CPU of `base`) / T. RSS per device over TLS too.
//   report   bench-report: R devices (2,000) each reporting every 50 ms (40,000/s offered),
//            each waiting for its acknowledgement: over a window of W seconds starting 2 s after
//            all are connected, the hub's count of reported patches per second (end to end), the
//            run's CPU per patch, and from the run's own Prometheus endpoint (--metrics-listen
//            127.0.0.1:0, scraped at the window's start and end) the window's reported_patch
//            latency p50/p99 and engine lag p99, interpolated inside the histogram's buckets as
//            PromQL's histogram_quantile does (bench/prom_histogram.hpp); beside them
//            summary.json's reported_patch p50/p99 and engine lag, which cover the whole run
//            (the connect storm included). The share of the window's patches acknowledged
//            within 20 ms is exact (a bucket edge): the p99 goal holds when it is >= 99 %.
//            Beside the window, a 1 kHz TCP ping-pong between two threads of this program on
//            127.0.0.1 (bench/loopback_probe.hpp) measures what the machine itself adds (its
//            round-trip tail and late wake-ups), and a CPU probe (bench/cpu_probe.hpp: a fixed
//            loop timed every 10 ms on each CPU at SCHED_FIFO) the share of 100 ms slots in which
//            the host left a CPU half its speed or less; the window's per-second p99s are split
//            by whether such a slot fell in the second. Both are also measured for 3 s at rest.
//   sdk      bench/node/sdk_bench.js with S clients (300) over MQTT/TLS (the Azure SDK has no
//            plain-TCP MQTT transport) printing marks at its phase boundaries, where this
//            program samples the node process: connect + getTwin CPU per client, RSS per idle
//            client above the process with the SDK loaded (gc() before each sample), idle CPU,
//            then reported updates at a fixed rate (S clients × 20/s, each awaiting its ack) —
//            CPU per update and the rate achieved.
//
// The hub's CPU is shown beside every window, so the reader sees who was the bottleneck (two
// cores: the run uses --threads 2 by default, the hub its own threads). Medians of the
// repetitions are printed, then the ratios twinfleet vs SDK the issue asks for. Load average at
// start is printed: the machine is shared. Every child is killed at exit; every wait is bounded.
//
//   build/bench/fleet_bench --twinfleet build/twinfleet --scenarios bench/scenarios
//       --node-script bench/node/sdk_bench.js --node-modules build/conformance-sdks/node_modules
//       [--devices 19500] [--tls-devices 5000] [--report-devices 2000] [--sdk-devices 300]
//       [--window 10] [--repeat 3] [--quick] [--no-sdk]
// --quick: 1 repetition, 2,000/1,000/500/100 devices, 5 s windows (what `make bench` runs).
// --self-test: only checks the histogram quantile code (bench/prom_histogram.hpp) and the CPU
// probe's slot arithmetic (bench/cpu_probe.hpp), and exits.
#include <boost/json.hpp>

#include "bench_util.hpp"
#include "cpu_probe.hpp"
#include "loopback_probe.hpp"
#include "prom_histogram.hpp"
#include "proc_stats.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

using twinfleet::bench::cpu_seconds;
using twinfleet::bench::median;
using twinfleet::bench::histogram_quantile;
using twinfleet::bench::parse_prom_histogram;
using twinfleet::bench::prom_histogram;
using twinfleet::bench::cpu_probe;
using twinfleet::bench::cpu_probe_result;
using twinfleet::bench::loopback_probe;
using twinfleet::bench::quantile_bucket_upper;
using twinfleet::bench::share_at_or_below;
using twinfleet::bench::rss_bytes;

namespace {

struct options {
  std::string twinfleet = "build/twinfleet";
  std::string scenarios = "bench/scenarios";
  std::string node_script = "bench/node/sdk_bench.js";
  std::string node_modules = "build/conformance-sdks/node_modules";
  int devices = 19500;
  int tls_devices = 5000;
  int report_devices = 2000;
  int sdk_devices = 300;
  int window_s = 10;
  int repeat = 3;
  bool sdk = true;
};

double seconds_since(steady::time_point t) { return std::chrono::duration<double>(steady::now() - t).count(); }

// ---- processes -------------------------------------------------------------------------------

// A child process, SIGTERM then SIGKILL at scope exit (or at stop()). `out_fd` is the read end
// of its stdout when it was spawned with a pipe.
struct child {
  pid_t pid = -1;
  int out_fd = -1;
  child() = default;
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  ~child() { stop(5s); }
  // Asks the process to stop and waits up to `grace`; returns its exit status (or -1 if killed).
  int stop(std::chrono::milliseconds grace) {
    int code = -1;
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      int status = 0;
      const auto deadline = steady::now() + grace;
      pid_t done = 0;
      while ((done = ::waitpid(pid, &status, WNOHANG)) == 0 && steady::now() < deadline) std::this_thread::sleep_for(20ms);
      if (done == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
      } else if (WIFEXITED(status)) {
        code = WEXITSTATUS(status);
      }
      pid = -1;
    }
    if (out_fd >= 0) ::close(out_fd);
    out_fd = -1;
    return code;
  }
  bool running() const {
    int status = 0;
    return pid > 0 && ::waitpid(pid, &status, WNOHANG) == 0;
  }
};

// Starts argv with stdout+stderr into `log`, or (pipe_stdout) stdout into a pipe and stderr to `log`.
void spawn(child& c, std::vector<std::string> args, const std::string& log, bool pipe_stdout = false,
           const std::vector<std::string>& extra_env = {}) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // extra_env replaces a variable of the same name (getenv takes the first one it finds).
  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const auto name = entry.substr(0, entry.find('=') + 1);
    if (std::none_of(extra_env.begin(), extra_env.end(), [&](const std::string& x) { return x.rfind(name, 0) == 0; })) {
      env_store.emplace_back(entry);
    }
  }
  for (const auto& e : extra_env) env_store.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  int fds[2] = {-1, -1};
  if (pipe_stdout && ::pipe2(fds, O_CLOEXEC) == 0) {
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  }
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (::posix_spawnp(&c.pid, argv[0], &actions, nullptr, argv.data(), envp.data()) != 0) c.pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  if (fds[1] >= 0) ::close(fds[1]);
  c.out_fd = fds[0];
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// ---- the hub -----------------------------------------------------------------------------------

// One blocking HTTP/1.0 GET on loopback, bounded by 2 s; the body, or nothing.
std::optional<std::string> http_get(std::uint16_t port, const std::string& target) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
      char buf[65536];
      ssize_t n = 0;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) response.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  const auto body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || body == std::string::npos) return std::nullopt;
  return response.substr(body + 4);
}

// Sum of every series of a Prometheus family whose labels contain all of `must` (as `k="v"`).
double prom_sum(const std::string& text, const std::string& family, const std::vector<std::string>& must) {
  double sum = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] == '#' || line.rfind(family, 0) != 0) continue;
    const auto rest = line.substr(family.size());
    if (!rest.empty() && rest[0] != '{' && rest[0] != ' ') continue;
    bool ok = true;
    for (const auto& m : must) ok = ok && rest.find(m) != std::string_view::npos;
    if (!ok) continue;
    const auto space = line.rfind(' ');
    sum += std::strtod(std::string(line.substr(space + 1)).c_str(), nullptr);
  }
  return sum;
}

struct hub_process {
  child proc;
  fs::path dir;
  std::uint16_t mqtt_port = 0, mqtts_port = 0, http_port = 0;
  std::string group_key;

  bool start(const std::string& twinfleet, const fs::path& where) {
    dir = where;
    fs::create_directories(dir);
    spawn(proc, {twinfleet, "hub", "--certs", dir.string(), "--listen-mqtt", "127.0.0.1:0", "--listen-mqtts", "127.0.0.1:0",
                 "--listen-http", "127.0.0.1:0", "--listen-https", "off", "--auth", "open"},
          (dir / "hub.log").string());
    for (int i = 0; i < 200; ++i) {
      std::this_thread::sleep_for(50ms);
      std::ifstream in(dir / "hub.json");
      std::string text((std::istreambuf_iterator<char>(in)), {});
      boost::system::error_code ec;
      auto info = json::parse(text, ec);
      if (ec || !info.is_object()) continue;
      for (const auto& e : info.at("endpoints").as_array()) {
        const auto protocol = e.at("protocol").as_string();
        const auto port = static_cast<std::uint16_t>(e.at("port").to_number<int>());
        if (protocol == "mqtt") mqtt_port = port;
        if (protocol == "mqtts") mqtts_port = port;
        if (protocol == "http") http_port = port;
      }
      group_key = std::string(info.at("azure").at("group_key").as_string());
      return mqtt_port != 0 && mqtts_port != 0 && http_port != 0;
    }
    return false;
  }
  // The hub's count of an Azure operation answered (any outcome), or -1 when /metrics failed.
  double operations(const std::string& operation) const {
    auto text = http_get(http_port, "/metrics");
    if (!text) return -1;
    return prom_sum(*text, "twinfleet_hub_operations_total", {"operation=\"" + operation + "\""});
  }
  double connected() const {
    auto text = http_get(http_port, "/metrics");
    if (!text) return -1;
    return prom_sum(*text, "twinfleet_hub_connected_devices", {});
  }
};

// ---- one `twinfleet run` -----------------------------------------------------------------------

struct run_sample {
  bool ok = false;
  std::string why;
  double spawn_to_n_s = 0;        // spawn → the hub answered N twin GETs (polled, 25 ms)
  double first_to_n_s = 0;        // the hub's first answered GET → the N-th
  double timeline_n_s = -1;       // summary.json: the first timeline second whose cumulative twin_get ≥ N
  double cpu_at_n = 0;            // run process CPU s at that moment
  double hub_cpu_connect = 0;     // hub CPU s from spawn to the N-th GET
  std::size_t rss_idle = 0;       // 2 s after the N-th GET
  double idle_cpu_pct = 0;        // run, % of one core over the idle window
  double hub_idle_cpu_pct = 0;
  // report runs
  double patches_per_s = 0;       // the hub's reported_patch count over the window / window
  double cpu_per_patch_us = 0;    // run CPU over the window / patches
  double run_cpu_pct = 0, hub_cpu_pct = 0;  // over the window
  // report runs, the window from the run's /metrics (NaN when it could not be scraped)
  double win_patches_per_s = NAN;  // reported_patch histogram count over the window / window
  double win_patch_p50_ms = NAN, win_patch_p99_ms = NAN;  // interpolated (histogram_quantile)
  double win_patch_p99_le_ms = NAN;                       // upper bound of the bucket holding p99
  double win_patch_mean_ms = NAN;                         // _sum / _count: exact
  double win_lag_p99_ms = NAN, win_lag_p99_le_ms = NAN;
  double win_patch_within_20ms = NAN;  // share of the window's patches acknowledged within 20 ms
  loopback_probe::result noise;        // the loopback probe beside the window (loopback_probe.hpp)
  cpu_probe_result machine;            // the CPU probe beside the window (cpu_probe.hpp), times from spawn
  double window_from_s = 0, window_to_s = 0;  // the window, seconds from the spawn
  json::object summary;
};

// The ports of the run's Prometheus endpoints, from the lines `metrics: http://HOST:PORT/metrics`
// the run prints at its start (with --metrics-listen HOST:0 it picks a free port and says which;
// a run split into worker processes has one endpoint per worker, whose lines the parent relays).
std::vector<std::uint16_t> metrics_ports(const fs::path& log) {
  std::ifstream in(log);
  std::string line;
  std::vector<std::uint16_t> ports;
  const std::string mark = "metrics: http://";
  while (std::getline(in, line)) {
    const auto at = line.find(mark);
    if (at == std::string::npos) continue;
    const auto path = line.find("/metrics", at + mark.size());
    const auto colon = line.rfind(':', path);
    if (path == std::string::npos || colon == std::string::npos || colon < at + mark.size()) continue;
    const int port = std::atoi(line.c_str() + colon + 1);
    if (port > 0 && port < 65536) ports.push_back(static_cast<std::uint16_t>(port));
  }
  return ports;
}

// Every endpoint's /metrics text, one after the other (parse_prom_histogram sums the series of
// all of them); nothing when one of them did not answer.
std::optional<std::string> scrape(const std::vector<std::uint16_t>& ports) {
  std::string all;
  for (const auto port : ports) {
    auto text = http_get(port, "/metrics");
    if (!text) return std::nullopt;
    all += *text;
    all += '\n';
  }
  return all;
}

std::string fmt(double v, const char* f = "%.2f") {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// Cumulative count of `op` over the timeline: the first t_s at which it reaches n.
double timeline_reach(const json::object& summary, const std::string& op, double n) {
  const auto* tl = summary.if_contains("timeline");
  if (tl == nullptr || !tl->is_array()) return -1;
  double total = 0;
  for (const auto& p : tl->as_array()) {
    const auto* ops = p.as_object().if_contains("ops");
    if (ops != nullptr && ops->is_object()) {
      if (const auto* o = ops->as_object().if_contains(op)) total += o->at("count").to_number<double>();
    }
    if (total >= n) return p.at("t_s").to_number<double>();
  }
  return -1;
}

// The per-second p99s of `op` in summary.json's timeline for the seconds inside [from, to] (seconds
// from the spawn). The timeline counts from the run's own start, a little after the spawn (its
// start-up, under 0.5 s), so a point t_s covers spawn time (t_s − 1 + δ, t_s + δ], 0 ≤ δ < 0.5.
// `keep`, when given, picks seconds by the t_s of their point.
std::vector<double> timeline_p99s(const json::object& summary, const std::string& op, double from, double to,
                                  const std::function<bool(double)>& keep = {}) {
  std::vector<double> out;
  const auto* tl = summary.if_contains("timeline");
  if (tl == nullptr || !tl->is_array()) return out;
  for (const auto& p : tl->as_array()) {
    const double t = p.at("t_s").to_number<double>();
    if (t - 1 < from || t + 0.5 > to) continue;
    if (keep && !keep(t)) continue;
    const auto* ops = p.as_object().if_contains("ops");
    if (ops == nullptr || !ops->is_object()) continue;
    if (const auto* o = ops->as_object().if_contains(op)) out.push_back(o->at("p99_ms").to_number<double>());
  }
  return out;
}

// The same seconds, split by whether the CPU probe saw a slow spell in them (`slow` true: the
// seconds with one). A timeline point at t_s covers (t_s − 1, t_s] of the run's clock, taken as
// seconds since the spawn (the run starts its clock a little later: the split is approximate at
// the edges of a spell). Empty when the probe measured nothing.
std::vector<double> timeline_p99s_where(const json::object& summary, const std::string& op, double from, double to,
                                        const cpu_probe_result& machine, bool slow) {
  if (machine.slots == 0) return {};
  return timeline_p99s(summary, op, from, to, [&](double t) { return machine.slow_between(t - 1, t) == slow; });
}

enum class run_kind { connect_idle, connect_only, report };

// Runs the scenario against `hub` and measures as the file header says. `n` devices; for a
// report run `window` is the measured window after all are connected.
run_sample run_twinfleet(const options& o, const hub_process& hub, const fs::path& work, const std::string& scenario, int n,
                         bool tls, run_kind kind) {
  run_sample s;
  const auto report_dir = work / ("report-" + std::to_string(n) + (tls ? "-tls" : "-tcp"));
  fs::remove_all(report_dir);
  // A report run serves /metrics on a free loopback port (it prints which) for the window's latency.
  std::vector<std::string> args{o.twinfleet, "run", (fs::path(o.scenarios) / scenario).string(), "--devices", std::to_string(n),
                                "--duration", "120s", "--quiet", "--report-dir", report_dir.string(), "--metrics-listen",
                                kind == run_kind::report ? "127.0.0.1:0" : "off",
                                "--set", "target.hub_json=" + (hub.dir / "hub.json").string(), "--set",
                                std::string("target.transport=") + (tls ? "tls" : "tcp")};
  const double gets_before = hub.operations("twin_get");
  const double hub_cpu0 = cpu_seconds(hub.proc.pid);
  const auto t0 = steady::now();
  child run;
  const auto run_log = work / ("run-" + std::to_string(n) + ".log");
  spawn(run, args, run_log.string());
  std::optional<steady::time_point> first;
  const auto deadline = t0 + 60s;
  bool reached = false;
  while (steady::now() < deadline && run.running()) {
    const double gets = hub.operations("twin_get") - gets_before;
    if (gets >= 1 && !first) first = steady::now();
    if (gets >= n) {
      reached = true;
      break;
    }
    std::this_thread::sleep_for(25ms);
  }
  s.spawn_to_n_s = seconds_since(t0);
  s.first_to_n_s = first ? seconds_since(*first) : 0;
  s.cpu_at_n = cpu_seconds(run.pid);
  s.hub_cpu_connect = cpu_seconds(hub.proc.pid) - hub_cpu0;
  if (!reached) {
    s.why = run.running() ? "not all twin GETs answered within 60 s" : "the run exited early (see " + run_log.string() + ")";
  } else if (kind == run_kind::connect_idle) {
    std::this_thread::sleep_for(2s);
    s.rss_idle = rss_bytes(run.pid);
    const double c0 = cpu_seconds(run.pid), h0 = cpu_seconds(hub.proc.pid);
    const auto w0 = steady::now();
    std::this_thread::sleep_for(std::chrono::seconds(o.window_s));
    const double w = seconds_since(w0);
    s.idle_cpu_pct = 100 * (cpu_seconds(run.pid) - c0) / w;
    s.hub_idle_cpu_pct = 100 * (cpu_seconds(hub.proc.pid) - h0) / w;
  } else if (kind == run_kind::connect_only) {
    std::this_thread::sleep_for(1s);
    s.rss_idle = rss_bytes(run.pid);
  } else {
    std::this_thread::sleep_for(2s);  // past the connect burst: every device is reporting
    // The run's scrapes bracket the CPU samples, so the run's CPU per patch leaves out the
    // snapshots they cost; the metrics window is longer than the hub-count window by one scrape
    // at each end (milliseconds).
    const auto ports = metrics_ports(run_log);
    const auto m0 = scrape(ports);
    const double p0 = hub.operations("reported_patch");
    const double c0 = cpu_seconds(run.pid), h0 = cpu_seconds(hub.proc.pid);
    const auto w0 = steady::now();
    s.window_from_s = seconds_since(t0);
    loopback_probe probe;  // the machine's noise floor over the same window
    cpu_probe cpu(t0);     // and the CPU the host gives this machine, slot times from the spawn
    std::this_thread::sleep_for(std::chrono::seconds(o.window_s));
    s.noise = probe.stop();
    s.machine = cpu.stop();
    const double w = seconds_since(w0);
    s.window_to_s = s.window_from_s + w;
    const double patches = hub.operations("reported_patch") - p0;
    const double c = cpu_seconds(run.pid) - c0;
    s.patches_per_s = patches / w;
    s.cpu_per_patch_us = patches > 0 ? 1e6 * c / patches : 0;
    s.run_cpu_pct = 100 * c / w;
    s.hub_cpu_pct = 100 * (cpu_seconds(hub.proc.pid) - h0) / w;
    const auto m1 = scrape(ports);
    if (ports.empty() || !m0 || !m1) {
      s.why = ports.empty() ? " (no metrics endpoint in " + run_log.string() + ": no window latency)"
                            : " (the run's /metrics did not answer: no window latency)";
    } else {
      // Latencies are in seconds (the family is ..._seconds); the rows are in ms.
      const std::string op_family = "twinfleet_operation_duration_seconds", lag_family = "twinfleet_engine_lag_seconds";
      const std::vector<std::string> patch{"operation=\"reported_patch\""};
      const auto rp = parse_prom_histogram(*m1, op_family, patch) - parse_prom_histogram(*m0, op_family, patch);
      const auto lag = parse_prom_histogram(*m1, lag_family, {}) - parse_prom_histogram(*m0, lag_family, {});
      s.win_patches_per_s = rp.count / w;
      s.win_patch_p50_ms = 1e3 * histogram_quantile(0.5, rp);
      s.win_patch_p99_ms = 1e3 * histogram_quantile(0.99, rp);
      s.win_patch_p99_le_ms = 1e3 * quantile_bucket_upper(0.99, rp);
      s.win_patch_mean_ms = rp.count > 0 ? 1e3 * rp.sum / rp.count : NAN;
      s.win_patch_within_20ms = share_at_or_below(0.02, rp);
      s.win_lag_p99_ms = 1e3 * histogram_quantile(0.99, lag);
      s.win_lag_p99_le_ms = 1e3 * quantile_bucket_upper(0.99, lag);
    }
  }
  // SIGTERM: the run stops its devices, disconnects and writes summary.json (bounded).
  run.stop(60s);
  std::ifstream in(report_dir / "summary.json");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  boost::system::error_code ec;
  auto parsed = json::parse(text, ec);
  if (!ec && parsed.is_object()) s.summary = parsed.as_object();
  s.timeline_n_s = timeline_reach(s.summary, "twin_get", n);
  s.ok = reached;
  return s;
}

// ---- the SDK -----------------------------------------------------------------------------------

struct sdk_sample {
  bool ok = false;
  std::string why;
  double connect_cpu_ms = 0;   // per client: connect + getTwin
  double connect_s = 0;
  std::size_t rss_loaded = 0, rss_idle = 0;
  double idle_cpu_pct = 0, hub_idle_cpu_pct = 0;
  double updates_per_s = 0, cpu_per_update_us = 0, cpu_pct = 0, hub_cpu_pct = 0;
  double hub_cpu_connect = 0;
  std::string result_line;
};

// Runs the node script; at each `mark NAME` line it prints, samples the node process and the hub.
sdk_sample run_sdk(const options& o, const hub_process& hub, const fs::path& work) {
  sdk_sample s;
  child node;
  const int rate_per_client = 20;
  spawn(node, {"node", "--expose-gc", o.node_script, "--clients", std::to_string(o.sdk_devices), "--hub-json", (hub.dir / "hub.json").string(), "--idle", std::to_string(o.window_s), "--report", std::to_string(o.window_s),
               "--rate", std::to_string(rate_per_client), "--keepalive", "10"},
        (work / "sdk.log").string(), true,
        {"NODE_PATH=" + fs::absolute(o.node_modules).string(), "NODE_EXTRA_CA_CERTS=" + (hub.dir / "ca.pem").string()});
  struct mark {
    double t, cpu, hub_cpu;
    std::size_t rss;
  };
  std::map<std::string, mark> marks;
  std::string buffer;
  const auto t0 = steady::now();
  const auto deadline = t0 + std::chrono::seconds(90 + 2 * o.window_s);
  while (steady::now() < deadline) {
    pollfd p{node.out_fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) {
      if (!node.running()) break;
      continue;
    }
    char buf[4096];
    const auto got = ::read(node.out_fd, buf, sizeof buf);
    if (got <= 0) break;
    buffer.append(buf, static_cast<std::size_t>(got));
    for (auto nl = buffer.find('\n'); nl != std::string::npos; nl = buffer.find('\n')) {
      const auto line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      if (line.rfind("mark ", 0) == 0) {
        marks[line.substr(5)] = {seconds_since(t0), cpu_seconds(node.pid), cpu_seconds(hub.proc.pid), rss_bytes(node.pid)};
      } else if (line.rfind("result ", 0) == 0) {
        s.result_line = line.substr(7);
      } else if (line.rfind("error ", 0) == 0) {
        s.why = line.substr(6);
      }
    }
    if (!s.result_line.empty() || !s.why.empty()) break;
  }
  node.stop(10s);
  const auto has = [&](const char* m) { return marks.count(m) != 0; };
  if (!has("loaded") || !has("connected") || !has("idle_start") || !has("idle_end") || !has("report_start") || !has("report_end") ||
      s.result_line.empty()) {
    if (s.why.empty()) s.why = "the SDK script did not finish its phases (see " + (work / "sdk.log").string() + ")";
    return s;
  }
  const auto& l = marks["loaded"];
  const auto& c = marks["connected"];
  const auto& i0 = marks["idle_start"];
  const auto& i1 = marks["idle_end"];
  const auto& r0 = marks["report_start"];
  const auto& r1 = marks["report_end"];
  s.connect_cpu_ms = 1e3 * (c.cpu - l.cpu) / o.sdk_devices;
  s.connect_s = c.t - l.t;
  s.hub_cpu_connect = c.hub_cpu - l.hub_cpu;
  s.rss_loaded = l.rss;
  s.rss_idle = i0.rss;
  s.idle_cpu_pct = 100 * (i1.cpu - i0.cpu) / (i1.t - i0.t);
  s.hub_idle_cpu_pct = 100 * (i1.hub_cpu - i0.hub_cpu) / (i1.t - i0.t);
  boost::system::error_code ec;
  auto result = json::parse(s.result_line, ec);
  if (ec || !result.is_object()) {
    s.why = "unreadable result line: " + s.result_line;
    return s;
  }
  const double updates = result.at("updates_in_window").to_number<double>();
  s.updates_per_s = updates / (r1.t - r0.t);
  s.cpu_per_update_us = updates > 0 ? 1e6 * (r1.cpu - r0.cpu) / updates : 0;
  s.cpu_pct = 100 * (r1.cpu - r0.cpu) / (r1.t - r0.t);
  s.hub_cpu_pct = 100 * (r1.hub_cpu - r0.hub_cpu) / (r1.t - r0.t);
  s.ok = true;
  return s;
}

// ---- output ------------------------------------------------------------------------------------

double json_num(const json::object& o, std::initializer_list<const char*> path) {
  const json::value* v = nullptr;
  const json::object* cur = &o;
  for (const char* key : path) {
    if (cur == nullptr) return 0;
    v = cur->if_contains(key);
    if (v == nullptr) return 0;
    cur = v->is_object() ? &v->as_object() : nullptr;
  }
  return v != nullptr && v->is_number() ? v->to_number<double>() : 0;
}

struct repetition {
  run_sample base, tcp, tls, report;
  sdk_sample sdk;
};

int parse_int(const char* s) { return std::atoi(s); }

// The CPU probe's slot arithmetic on loops whose times are known (cpu_probe.hpp).
bool cpu_probe_self_test() {
  using twinfleet::bench::cpu_probe_loop;
  std::vector<std::vector<cpu_probe_loop>> loops(2);
  auto add = [&](std::size_t cpu, double slot, std::initializer_list<double> took_us) {
    double at = slot / 10 + 0.001;
    for (double t : took_us) {
      loops[cpu].push_back({at, t / 1e6});
      at += 0.01;
    }
  };
  add(0, 0, {80, 80, 80});     // the fastest loop: 80 us
  add(0, 1, {240, 240, 240});  // 3x: slow
  add(0, 2, {80, 80, 400});    // mean 2.33x: slow
  add(0, 3, {80, 160});        // 1.5x: not slow
  add(1, 0, {100, 100});       // the other CPU's own fastest: 100 us, never slow
  add(1, 1, {100, 150});
  add(1, 5, {190});
  const auto r = twinfleet::bench::summarize_cpu_probe(loops, false);
  bool ok = r.cpus == 2 && r.slots == 7 && r.slow_slots == 2 && std::abs(r.slow_share - 2.0 / 7) < 1e-12 &&
            std::abs(r.worst_stretch - 3) < 1e-9;
  ok = ok && r.slow_between(0.1, 0.2) && r.slow_between(0, 0.25) && !r.slow_between(0, 0.1) && !r.slow_between(0.3, 1.0);
  // Nothing measured: nothing claimed.
  const auto none = twinfleet::bench::summarize_cpu_probe({{}, {}}, true);
  ok = ok && none.cpus == 0 && none.slots == 0 && std::isnan(none.slow_share) && !none.slow_between(0, 100);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "fleet_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--twinfleet") o.twinfleet = next();
    else if (a == "--scenarios") o.scenarios = next();
    else if (a == "--node-script") o.node_script = next();
    else if (a == "--node-modules") o.node_modules = next();
    else if (a == "--devices") o.devices = parse_int(next());
    else if (a == "--tls-devices") o.tls_devices = parse_int(next());
    else if (a == "--report-devices") o.report_devices = parse_int(next());
    else if (a == "--sdk-devices") o.sdk_devices = parse_int(next());
    else if (a == "--window") o.window_s = parse_int(next());
    else if (a == "--repeat") o.repeat = parse_int(next());
    else if (a == "--no-sdk") o.sdk = false;
    else if (a == "--quick") quick = true;
    else if (a == "--self-test") {
      const bool ok = twinfleet::bench::prom_histogram_self_test();
      std::printf("fleet_bench --self-test: histogram quantiles %s\n", ok ? "ok" : "FAILED");
      const bool cpu_ok = cpu_probe_self_test();
      std::printf("fleet_bench --self-test: CPU probe slots %s\n", cpu_ok ? "ok" : "FAILED");
      return ok && cpu_ok ? 0 : 1;
    }
    else {
      std::fprintf(stderr, "fleet_bench: unknown argument %s (see the header of bench/fleet_bench.cpp)\n", a.c_str());
      return 2;
    }
  }
  if (quick) {
    o.devices = std::min(o.devices, 2000);
    o.tls_devices = std::min(o.tls_devices, 1000);
    o.report_devices = std::min(o.report_devices, 500);
    o.sdk_devices = std::min(o.sdk_devices, 100);
    o.window_s = std::min(o.window_s, 5);
    o.repeat = 1;
  }
  ::signal(SIGPIPE, SIG_IGN);
  if (o.sdk && !fs::exists(fs::path(o.node_modules) / "azure-iot-device-mqtt")) {
    std::fprintf(stderr, "fleet_bench: no SDK in %s (tests/conformance/install.sh DIR installs it); running without the baseline\n",
                 o.node_modules.c_str());
    o.sdk = false;
  }
  const auto work = fs::temp_directory_path() / ("fleet_bench-" + std::to_string(::getpid()));
  fs::create_directories(work);
  std::printf("fleet_bench: load average at start %s (2 shared cores); work folder %s\n", load_average().c_str(), work.c_str());
  {
    // The noise floor with nothing of ours running (the report windows measure it again beside the run).
    loopback_probe rest;
    cpu_probe cpu;
    std::this_thread::sleep_for(std::chrono::seconds(3));
    const auto r = rest.stop();
    const auto c = cpu.stop();
    std::printf("fleet_bench: loopback probe at rest (3 s, 1 kHz TCP ping-pong): round trip p50 %.2f ms, p99 %.2f ms, max %.2f ms; "
                "wake-up lateness max %.2f ms\n", r.rtt_p50_ms, r.rtt_p99_ms, r.rtt_max_ms, r.late_max_ms);
    std::printf("fleet_bench: CPU probe at rest (3 s, %zu CPUs%s): %zu of %zu 100-ms slots at half speed or less, worst slot %.1fx "
                "(bench/cpu_probe.hpp: the host's share of this machine)\n", c.cpus, c.realtime ? ", SCHED_FIFO" : ", not real-time",
                c.slow_slots, c.slots, c.worst_stretch);
  }
  std::printf("  N=%d (tcp connect, idle), T=%d (tls connect), R=%d (reporting every 50 ms), SDK clients=%d, window %d s, %d repetition(s)\n",
              o.devices, o.tls_devices, o.report_devices, o.sdk ? o.sdk_devices : 0, o.window_s, o.repeat);
  std::fflush(stdout);

  std::vector<repetition> reps;
  bool failed = false;
  for (int r = 0; r < o.repeat; ++r) {
    repetition rep;
    hub_process hub;
    if (!hub.start(o.twinfleet, work / ("hub-" + std::to_string(r)))) {
      std::fprintf(stderr, "fleet_bench: the hub did not start; see %s\n", (work / ("hub-" + std::to_string(r)) / "hub.log").c_str());
      return 1;
    }
    auto say = [&](const char* what, const run_sample& s) {
      std::printf("  [rep %d] %-7s %s%s\n", r + 1, what, s.ok ? "ok" : "FAILED: ", s.why.c_str());
      failed = failed || !s.ok;
      std::fflush(stdout);
    };
    rep.base = run_twinfleet(o, hub, work, "bench-connect.yaml", 1, false, run_kind::connect_idle);
    say("base", rep.base);
    rep.tcp = run_twinfleet(o, hub, work, "bench-connect.yaml", o.devices, false, run_kind::connect_idle);
    say("tcp", rep.tcp);
    rep.tls = run_twinfleet(o, hub, work, "bench-connect.yaml", o.tls_devices, true, run_kind::connect_only);
    say("tls", rep.tls);
    rep.report = run_twinfleet(o, hub, work, "bench-report.yaml", o.report_devices, false, run_kind::report);
    say("report", rep.report);
    if (o.sdk) {
      rep.sdk = run_sdk(o, hub, work);
      std::printf("  [rep %d] %-7s %s%s\n", r + 1, "sdk", rep.sdk.ok ? "ok" : "FAILED: ", rep.sdk.why.c_str());
      failed = failed || !rep.sdk.ok;
      std::fflush(stdout);
    }
    hub.proc.stop(30s);
    reps.push_back(std::move(rep));
  }

  // Medians over repetitions of each figure.
  auto med = [&](const std::function<double(const repetition&)>& f) {
    std::vector<double> v;
    for (const auto& r : reps) v.push_back(f(r));
    return median(v);
  };
  auto all = [&](const std::function<double(const repetition&)>& f) {
    std::string out;
    for (const auto& r : reps) out += (out.empty() ? "" : " ") + fmt(f(r), "%.3g");
    return out;
  };
  const double kib = 1024;
  std::printf("\nFleet engine: one `twinfleet run` vs a `twinfleet hub` process, medians of %zu (each repetition's values after '|')\n",
              reps.size());
  auto row = [&](const char* name, const char* unit, const std::function<double(const repetition&)>& f, const char* note = "") {
    std::printf("  %-52s %12s %-8s | %-26s %s\n", name, fmt(med(f), "%.4g").c_str(), unit, all(f).c_str(), note);
  };
  const double n = o.devices, t = o.tls_devices;
  row("tcp: spawn -> N twin GETs answered (hub /metrics)", "s", [](const repetition& r) { return r.tcp.spawn_to_n_s; });
  row("tcp: hub's first GET -> N-th GET", "s", [](const repetition& r) { return r.tcp.first_to_n_s; });
  row("tcp: summary.json timeline reaches N twin_get", "s", [](const repetition& r) { return r.tcp.timeline_n_s; }, "(1 s steps, from the run's start)");
  row("tcp: connect p99 / twin_get p99 (summary.json)", "ms",
      [](const repetition& r) { return json_num(r.tcp.summary, {"operations", "connect", "latency_ms", "p99"}); });
  row("tcp: twin_get p99 (summary.json)", "ms",
      [](const repetition& r) { return json_num(r.tcp.summary, {"operations", "twin_get", "latency_ms", "p99"}); });
  row("tcp: run CPU per device, connect+sub+GET", "us", [&](const repetition& r) { return 1e6 * (r.tcp.cpu_at_n - r.base.cpu_at_n) / n; });
  row("tcp: hub CPU during the connect phase", "s", [](const repetition& r) { return r.tcp.hub_cpu_connect; });
  row("tcp: run RSS per idle device above 1-device run", "KiB",
      [&](const repetition& r) { return (static_cast<double>(r.tcp.rss_idle) - static_cast<double>(r.base.rss_idle)) / kib / (n - 1); });
  row("tcp: run RSS, 1 device / N devices", "MiB", [](const repetition& r) { return r.base.rss_idle / 1048576.0; });
  row("", "MiB", [](const repetition& r) { return r.tcp.rss_idle / 1048576.0; });
  row("tcp: idle CPU, N devices, keep-alive 10 s", "% core", [](const repetition& r) { return r.tcp.idle_cpu_pct; });
  row("tcp: hub idle CPU", "% core", [](const repetition& r) { return r.tcp.hub_idle_cpu_pct; });
  row("tls: spawn -> T twin GETs answered", "s", [](const repetition& r) { return r.tls.spawn_to_n_s; });
  row("tls: run CPU per device, connect+sub+GET", "ms", [&](const repetition& r) { return 1e3 * (r.tls.cpu_at_n - r.base.cpu_at_n) / t; });
  row("tls: hub CPU per device", "ms", [&](const repetition& r) { return 1e3 * r.tls.hub_cpu_connect / t; });
  row("tls: run RSS per idle device above 1-device run", "KiB",
      [&](const repetition& r) { return (static_cast<double>(r.tls.rss_idle) - static_cast<double>(r.base.rss_idle)) / kib / (t - 1); });
  row("report: reported patches/s end to end (hub count)", "/s", [](const repetition& r) { return r.report.patches_per_s; });
  row("report: run CPU per reported-patch round trip", "us", [](const repetition& r) { return r.report.cpu_per_patch_us; });
  row("report: run CPU", "% core", [](const repetition& r) { return r.report.run_cpu_pct; });
  row("report: hub CPU", "% core", [](const repetition& r) { return r.report.hub_cpu_pct; });
  row("report: hub CPU per reported patch", "us", [](const repetition& r) {
    return r.report.patches_per_s > 0 ? 1e4 * r.report.hub_cpu_pct / r.report.patches_per_s : 0;
  });
  // The window, from the run's /metrics: quantiles interpolated linearly inside the bucket
  // holding them (PromQL's histogram_quantile). The buckets are coarse (…, 10, 25, 50 ms), so the
  // bucket's upper bound is printed too: at least 99 % of the window's patches took at most that.
  row("report: window reported_patch acks/s (run /metrics)", "/s", [](const repetition& r) { return r.report.win_patches_per_s; });
  row("report: window reported_patch p50 (metrics, interp.)", "ms", [](const repetition& r) { return r.report.win_patch_p50_ms; });
  row("report: window reported_patch p99 (metrics, interp.)", "ms", [](const repetition& r) { return r.report.win_patch_p99_ms; });
  row("report: window reported_patch p99 bucket upper bound", "ms", [](const repetition& r) { return r.report.win_patch_p99_le_ms; },
      "(le of the bucket holding p99)");
  row("report: window reported_patch acks within 20 ms", "%", [](const repetition& r) { return 100 * r.report.win_patch_within_20ms; },
      "(exact, at the 20 ms bucket edge: p99 <= 20 ms means >= 99 %)");
  row("report: window reported_patch mean (_sum/_count)", "ms", [](const repetition& r) { return r.report.win_patch_mean_ms; });
  row("report: window engine lag p99 (metrics, interp.)", "ms", [](const repetition& r) { return r.report.win_lag_p99_ms; });
  row("report: window engine lag p99 bucket upper bound", "ms", [](const repetition& r) { return r.report.win_lag_p99_le_ms; });
  // A cross-check at the engine's own resolution (its histograms, not the Prometheus buckets):
  // the p99 of each whole second of summary.json's timeline inside the window.
  auto tl_p99s = [](const repetition& r) {
    return timeline_p99s(r.report.summary, "reported_patch", r.report.window_from_s, r.report.window_to_s);
  };
  row("report: window per-second reported_patch p99, median", "ms", [&](const repetition& r) {
        const auto v = tl_p99s(r);
        return v.empty() ? NAN : median(v);
      },
      "(summary.json timeline, whole seconds in the window)");
  row("report: window per-second reported_patch p99, max", "ms", [&](const repetition& r) {
    const auto v = tl_p99s(r);
    return v.empty() ? NAN : *std::max_element(v.begin(), v.end());
  });
  // The noise floor: a 1 kHz TCP ping-pong between two threads of this program on 127.0.0.1,
  // over the same window (bench/loopback_probe.hpp). Nothing of twinfleet in it.
  row("report: loopback probe round trip p99 beside the run", "ms", [](const repetition& r) { return r.report.noise.rtt_p99_ms; },
      "(1 kHz ping-pong, 2 threads of fleet_bench)");
  row("report: loopback probe round trip max beside the run", "ms", [](const repetition& r) { return r.report.noise.rtt_max_ms; });
  row("report: loopback probe wake-up lateness max", "ms", [](const repetition& r) { return r.report.noise.late_max_ms; },
      "(a 1 ms sleep that ended this late)");
  // The CPU the host gave this machine over the same window (bench/cpu_probe.hpp): the share of
  // 100 ms slots in which a CPU ran at half speed or less, and the per-second p99 split by it.
  row("report: machine CPU slots at half speed or less", "%", [](const repetition& r) { return 100 * r.report.machine.slow_share; },
      "(cpu_probe: 100-ms slots x CPUs; the host, not us)");
  row("report: machine CPU worst slot, time stretch", "x", [](const repetition& r) { return r.report.machine.worst_stretch; });
  auto split_p99s = [](const repetition& r, bool slow) {
    return timeline_p99s_where(r.report.summary, "reported_patch", r.report.window_from_s, r.report.window_to_s, r.report.machine, slow);
  };
  row("report: seconds of the window with / without a slow spell", "s", [&](const repetition& r) {
    return static_cast<double>(split_p99s(r, true).size());
  });
  row("", "s", [&](const repetition& r) { return static_cast<double>(split_p99s(r, false).size()); });
  row("report: per-second p99, median, seconds w/o slow spell", "ms", [&](const repetition& r) {
        const auto v = split_p99s(r, false);
        return v.empty() ? NAN : median(v);
      },
      "(seconds with no spell; a backlog from an earlier one may still drain)");
  row("report: per-second p99, max, seconds w/o slow spell", "ms", [&](const repetition& r) {
    const auto v = split_p99s(r, false);
    return v.empty() ? NAN : *std::max_element(v.begin(), v.end());
  });
  row("report: per-second p99, median, seconds with one", "ms", [&](const repetition& r) {
    const auto v = split_p99s(r, true);
    return v.empty() ? NAN : median(v);
  });
  // summary.json: the whole run, the connect storm at its start included.
  row("report: whole-run reported_patch count (summary)", "", [](const repetition& r) {
    return json_num(r.report.summary, {"operations", "reported_patch", "count"});
  });
  row("report: whole-run reported_patch p50 (summary)", "ms",
      [](const repetition& r) { return json_num(r.report.summary, {"operations", "reported_patch", "latency_ms", "p50"}); });
  row("report: whole-run reported_patch p99 (summary)", "ms",
      [](const repetition& r) { return json_num(r.report.summary, {"operations", "reported_patch", "latency_ms", "p99"}); });
  row("report: whole-run engine lag p99 (summary)", "ms", [](const repetition& r) { return json_num(r.report.summary, {"engine", "lag_ms", "p99"}); });
  row("report: whole-run engine lag max (summary)", "ms", [](const repetition& r) { return json_num(r.report.summary, {"engine", "lag_ms", "max"}); });

  if (o.sdk) {
    std::printf("\nNode SDK baseline (azure-iot-device 1.18.4 + azure-iot-device-mqtt 1.16.4, MQTT/TLS), %d clients, same hub\n",
                o.sdk_devices);
    row("sdk: connect + getTwin, all clients", "s", [](const repetition& r) { return r.sdk.connect_s; });
    row("sdk: CPU per client, connect + getTwin (TLS)", "ms", [](const repetition& r) { return r.sdk.connect_cpu_ms; });
    row("sdk: hub CPU per client", "ms", [&](const repetition& r) { return 1e3 * r.sdk.hub_cpu_connect / o.sdk_devices; });
    row("sdk: RSS per idle client above SDK loaded", "KiB", [&](const repetition& r) {
      return (static_cast<double>(r.sdk.rss_idle) - static_cast<double>(r.sdk.rss_loaded)) / kib / o.sdk_devices;
    });
    row("sdk: idle CPU, keep-alive 10 s", "% core", [](const repetition& r) { return r.sdk.idle_cpu_pct; });
    row("sdk: reported updates/s (20/s per client)", "/s", [](const repetition& r) { return r.sdk.updates_per_s; });
    row("sdk: CPU per reported update", "us", [](const repetition& r) { return r.sdk.cpu_per_update_us; });
    row("sdk: node CPU / hub CPU while reporting", "% core", [](const repetition& r) { return r.sdk.cpu_pct; });
    row("", "% core", [](const repetition& r) { return r.sdk.hub_cpu_pct; });

    const double rss_tf = med([&](const repetition& r) {
      return (static_cast<double>(r.tcp.rss_idle) - static_cast<double>(r.base.rss_idle)) / (n - 1);
    });
    const double rss_tls = med([&](const repetition& r) {
      return (static_cast<double>(r.tls.rss_idle) - static_cast<double>(r.base.rss_idle)) / (t - 1);
    });
    const double rss_sdk = med([&](const repetition& r) {
      return (static_cast<double>(r.sdk.rss_idle) - static_cast<double>(r.sdk.rss_loaded)) / o.sdk_devices;
    });
    const double conn_tf = med([&](const repetition& r) { return (r.tls.cpu_at_n - r.base.cpu_at_n) / t; });
    const double conn_sdk = med([](const repetition& r) { return r.sdk.connect_cpu_ms / 1e3; });
    const double patch_tf = med([](const repetition& r) { return r.report.cpu_per_patch_us; });
    const double patch_sdk = med([](const repetition& r) { return r.sdk.cpu_per_update_us; });
    std::printf("\nRatios, twinfleet vs the SDK (medians)\n");
    std::printf("  %-48s %10s  %s\n", "RSS per idle device, SDK / twinfleet (tcp)", fmt(rss_sdk / rss_tf, "%.1fx").c_str(), "goal >= 25x");
    std::printf("  %-48s %10s  %s\n", "RSS per idle device, SDK / twinfleet (tls)", fmt(rss_sdk / rss_tls, "%.1fx").c_str(), "(both TLS)");
    std::printf("  %-48s %10s  %s\n", "connect CPU (TLS), twinfleet / SDK", fmt(conn_tf / conn_sdk, "%.3f").c_str(), "goal <= 0.333");
    std::printf("  %-48s %10s  %s\n", "CPU per reported patch, twinfleet / SDK", fmt(patch_tf / patch_sdk, "%.3f").c_str(), "goal <= 0.200");
  }
  std::printf("\nGoals of issue 4: N=19,500 GETs within 5 s (tcp); RSS <= 4 KiB/device; idle CPU <= 2 %%; >= 40,000 patches/s with p99 <= 20 ms.\n");
  std::printf("  report, R=%d, medians over the %d s window: %s patches/s (hub count), reported_patch p99 %s ms "
              "(interpolated in its bucket; bucket upper bound %s ms; per-second p99s at full resolution: median %s ms), "
              "engine lag p99 %s ms\n",
              o.report_devices, o.window_s, fmt(med([](const repetition& r) { return r.report.patches_per_s; }), "%.0f").c_str(),
              fmt(med([](const repetition& r) { return r.report.win_patch_p99_ms; }), "%.3g").c_str(),
              fmt(med([](const repetition& r) { return r.report.win_patch_p99_le_ms; }), "%.3g").c_str(),
              fmt(med([&](const repetition& r) {
                    const auto v = tl_p99s(r);
                    return v.empty() ? NAN : median(v);
                  }), "%.3g").c_str(),
              fmt(med([](const repetition& r) { return r.report.win_lag_p99_ms; }), "%.3g").c_str());
  // The logs (hub, runs, SDK) and summaries stay when something failed.
  if (failed) {
    std::printf("fleet_bench: some measurements failed; logs and summary.json files kept in %s\n", work.c_str());
  } else {
    fs::remove_all(work);
  }
  return 0;
}
