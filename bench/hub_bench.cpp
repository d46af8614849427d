// The local hub under load, against mosquitto as a baseline in the same run.
//
// A `twinfleet hub` process (plain MQTT listener) and a mosquitto broker each serve N device
// connections opened by this process with twinfleet's own client. Every device runs a closed
// loop of one request at a time for the measuring window:
//   hub:       Azure reported PATCH ($iothub/twin/PATCH/properties/reported/?$rid=…, QoS 1)
//              answered by $iothub/twin/res/204/…  — the round trip a device waits for;
//   hub:       AWS shadow update ($aws/things/T/shadow/update, QoS 1) answered by
//              …/update/accepted;
//   mosquitto: a QoS 1 publish to the device's own topic, received back — the broker's
//              cheapest round trip.
// Reported: round trips per second, latency p50/p99/max, the broker process's RSS and CPU.
//
// A closed loop hides queueing: a slow answer delays the next request, so the offered load
// drops exactly when the server struggles (coordinated omission). `--rate R` (or `--sweep
// R1,R2,...`) runs the OPEN model instead: R requests per second in total, request k intended to
// start at t0 + k/R on device k mod N, sent when due however many are still unanswered on that
// device, its latency measured from its intended start (so a late send by this driver, or a
// queue anywhere, shows up in the latency; "lag p99" tells how late the driver itself sent). Each rate gets 1 s of warm-up at that rate, then the
// S-second measured window, then up to 2 s for the last answers; a request still unanswered then
// counts as lost and enters the percentiles with its waiting time so far. Per rate and target:
// offered and achieved rate, p50/p90/p99/max, the broker's CPU (utime+stime from /proc over the
// measured window, % of one core), this driver's CPU, and the broker's RSS per connection.
//
//   build/bench/hub_bench [--devices N] [--seconds S] [--connect-only]
//   build/bench/hub_bench [--devices N] [--seconds S] --rate R | --sweep R1,R2,... [--p99-ms 10]
// On a shared machine other people's (niced) builds still take whole scheduler slices from the
// broker and this driver, which is all a p99 of 10 ms needs to fail: `chrt -r 10 hub_bench ...`
// (root; children inherit it) measures the software instead of the neighbours. The AWS run
// reuses the hub process of the Azure run, so its "RSS added/conn" shows memory re-used from
// the Azure connections (about 0), not a smaller footprint.
// The defaults (1,000 devices, 10 s) run in under a minute; `--devices 19500 --connect-only`
// checks that one hub process holds 19,500 connections (each process stays under the
// 20,000-file limit: the hub and this client are separate processes).
#include <twinfleet/auth/sas.hpp>
#include <twinfleet/net/client.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "proc_stats.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace asio = boost::asio;
namespace json = boost::json;
namespace net = twinfleet::net;
namespace mqtt = twinfleet::mqtt;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

using twinfleet::bench::cpu_seconds;
using twinfleet::bench::rss_bytes;

namespace {

struct options {
  int devices = 1000;
  int seconds = 10;
  bool connect_only = false;
  std::vector<double> rates;  // non-empty: the open (paced) model at each total rate
  double p99_target_ms = 10;
  std::string twinfleet = "build/twinfleet";
};

// A child process (the hub or mosquitto), killed at scope exit.
struct child {
  pid_t pid = -1;
  ~child() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      int status = 0;
      for (int i = 0; i < 100 && ::waitpid(pid, &status, WNOHANG) == 0; ++i) std::this_thread::sleep_for(50ms);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
  }
};

pid_t spawn(std::vector<std::string> args, const std::string& log) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  pid_t pid = -1;
  if (::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

struct device {
  explicit device(asio::any_io_executor ex) : connection(std::move(ex)) {}
  net::client_connection connection;
  std::string id;
  std::string topic;    // where the request goes
  std::string payload;
  steady::time_point sent;
  std::uint64_t rid = 0;
  // Paced mode: the unanswered requests in the order sent (one connection answers in order):
  // request id, intended start, whether it falls in the measured window.
  struct pending {
    std::uint64_t rid;
    steady::time_point intended;
    bool measured;
  };
  std::deque<pending> inflight;
};

// One paced rate against one target.
struct paced_result {
  double offered = 0;              // requests per second asked for
  double seconds = 0;              // the measured window
  std::uint64_t sent = 0;          // measured requests sent
  std::uint64_t answered = 0;      // ... answered with success
  std::uint64_t errors = 0;        // ... answered with a failure status, or failed to send
  std::uint64_t lost = 0;          // ... never answered
  std::vector<double> latencies_ms;
  std::vector<double> send_lag_ms;  // how late this driver sent each request: its own share
  double broker_cpu = 0;           // CPU seconds over the measured window
  double driver_cpu = 0;
  std::size_t broker_rss = 0;      // at the end of the window
};

struct run_result {
  int connected = 0;
  double connect_seconds = 0;
  std::uint64_t round_trips = 0;
  std::vector<double> latencies_ms;
  std::size_t broker_rss_base = 0;  // before any device connected
  std::size_t broker_rss_idle = 0;  // with every device connected and idle
  double broker_cpu = 0;
  std::vector<paced_result> paced;  // one per options::rates
};

enum class loop { echo, azure_reported, aws_update };

double self_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Which request an answer belongs to, and whether it reports success. The request id travels
// where each protocol echoes something: Azure's $rid in the response topic, AWS's clientToken
// in the accepted document, and for the mosquitto echo the payload itself.
struct answer {
  std::uint64_t rid = 0;
  bool parsed = false;
  bool ok = false;
};

answer parse_answer(loop kind, const mqtt::publish_packet& p) {
  answer a;
  std::string_view text;
  std::string_view key;
  if (kind == loop::azure_reported) {
    constexpr std::string_view prefix = "$iothub/twin/res/";  // {status}/?$rid={rid}&$version=...
    if (p.topic.substr(0, prefix.size()) != prefix) return a;
    a.ok = p.topic.substr(prefix.size(), 4) == "204/";
    text = p.topic;
    key = "$rid=";
  } else {
    a.ok = true;  // only .../update/accepted is subscribed to; a rejected update goes unanswered (lost)
    text = p.payload;
    key = kind == loop::aws_update ? std::string_view(R"("clientToken":")") : std::string_view(R"("rid":)");
  }
  const auto at = text.find(key);
  if (at == std::string_view::npos) return a;
  const char* first = text.data() + at + key.size();
  a.parsed = std::from_chars(first, text.data() + text.size(), a.rid).ec == std::errc{};
  return a;
}

// Connects every device, then (unless connect_only) runs the closed loops for `seconds`.
run_result drive(const options& o, std::uint16_t port, loop kind, const std::string& group_key, pid_t broker) {
  const bool azure = kind == loop::azure_reported;
  asio::io_context io(1);
  run_result result;
  std::vector<std::unique_ptr<device>> devices;
  devices.reserve(static_cast<std::size_t>(o.devices));
  bool measuring = false;
  const auto server = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
  const auto expiry = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) + 2h;

  auto send = [kind](device& d) {
    d.sent = steady::now();
    ++d.rid;
    if (kind == loop::azure_reported) {
      d.topic = "$iothub/twin/PATCH/properties/reported/?$rid=" + std::to_string(d.rid);
    } else if (kind == loop::aws_update) {
      d.payload = R"({"state":{"reported":{"temperature":21.5,"humidity":40}},"clientToken":")" + std::to_string(d.rid) + "\"}";
    }
    (void)d.connection.publish(d.topic, d.payload, mqtt::qos::at_least_once);
  };

  // The open model: requests go out when due, answers are matched to them by request id.
  paced_result* window = nullptr;  // set while a paced rate runs
  auto send_paced = [&](device& d, steady::time_point intended, bool measured) {
    ++d.rid;
    const auto rid = std::to_string(d.rid);
    if (kind == loop::azure_reported) {
      d.topic = "$iothub/twin/PATCH/properties/reported/?$rid=" + rid;
    } else if (kind == loop::aws_update) {
      d.payload = R"({"state":{"reported":{"temperature":21.5,"humidity":40}},"clientToken":")" + rid + "\"}";
    } else {
      d.payload = R"({"rid":)" + rid + R"(,"temperature":21.5,"humidity":40})";
    }
    if (measured) {
      ++window->sent;
      window->send_lag_ms.push_back(std::chrono::duration<double, std::milli>(steady::now() - intended).count());
    }
    if (d.connection.publish(d.topic, d.payload, mqtt::qos::at_least_once)) {
      if (measured) ++window->errors;
      return;
    }
    d.inflight.push_back({d.rid, intended, measured});
  };
  auto on_paced_answer = [&](device& d, const mqtt::publish_packet& p) {
    const auto now = steady::now();
    const auto a = parse_answer(kind, p);
    if (!a.parsed) return;  // not an answer to a request of ours
    // One connection answers in order: older requests still queued before this one were dropped.
    while (!d.inflight.empty() && d.inflight.front().rid < a.rid) {
      if (d.inflight.front().measured) {
        ++window->lost;
        window->latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - d.inflight.front().intended).count());
      }
      d.inflight.pop_front();
    }
    if (d.inflight.empty() || d.inflight.front().rid != a.rid) return;  // a duplicate (QoS 1 resend)
    const auto entry = d.inflight.front();
    d.inflight.pop_front();
    if (!entry.measured) return;
    if (!a.ok) {
      ++window->errors;
      return;
    }
    ++window->answered;
    window->latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - entry.intended).count());
  };

  result.broker_rss_base = rss_bytes(broker);
  const auto start = steady::now();
  int pending = o.devices;
  for (int i = 0; i < o.devices; ++i) {
    auto d = std::make_unique<device>(io.get_executor());
    char id[32];
    std::snprintf(id, sizeof id, "bench-%05d", i);
    d->id = id;
    d->payload = R"({"temperature":21.5,"humidity":40})";
    if (kind == loop::echo) d->topic = "bench/" + d->id;
    if (kind == loop::aws_update) d->topic = "$aws/things/" + d->id + "/shadow/update";
    device* self = d.get();
    d->connection.set_message_handler([&, self](const mqtt::publish_packet& p) {
      if (window != nullptr) {
        on_paced_answer(*self, p);
        return;
      }
      if (!measuring) return;
      result.latencies_ms.push_back(std::chrono::duration<double, std::milli>(steady::now() - self->sent).count());
      ++result.round_trips;
      send(*self);
    });
    devices.push_back(std::move(d));
    asio::co_spawn(
        io,
        [&, self]() -> asio::awaitable<void> {
          std::string username, password;
          mqtt::connect_packet hello;
          hello.keep_alive = 300;
          hello.client_id = self->id;
          if (azure) {
            username = "localhost/" + self->id + "/?api-version=2021-04-12";
            const auto key = twinfleet::auth::derive_device_key(group_key, self->id).value();
            password = twinfleet::auth::create_sas_token(
                           {"localhost/devices/" + self->id, key, expiry, std::nullopt, twinfleet::auth::hex_case::upper})
                           .value();
            hello.username = username;
            hello.password = password;
          }
          net::client_transport transport;
          const auto ec = co_await self->connection.async_connect(server, transport, hello, 60s);
          if (!ec) {
            const std::string filter = kind == loop::azure_reported ? std::string("$iothub/twin/res/#")
                                       : kind == loop::aws_update   ? self->topic + "/accepted"
                                                                    : self->topic;
            const mqtt::subscription subs[] = {{filter, mqtt::qos::at_least_once}};
            auto codes = co_await self->connection.async_subscribe(subs);
            if (codes && !codes->empty() && codes->front() != mqtt::suback_code::failure) ++result.connected;
          }
          if (--pending == 0) {
            result.connect_seconds = std::chrono::duration<double>(steady::now() - start).count();
            io.stop();
          }
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);  // a bug in the bench: end the run loudly
        });
  }
  io.run_for(std::chrono::seconds(120));
  io.restart();
  std::this_thread::sleep_for(1s);
  result.broker_rss_idle = rss_bytes(broker);
  if (o.connect_only || result.connected == 0) return result;

  if (!o.rates.empty()) {
    std::vector<device*> live;
    for (auto& d : devices) {
      if (d->connection.connected()) live.push_back(d.get());
    }
    for (const double rate : o.rates) {
      paced_result w;
      w.offered = rate;
      w.seconds = o.seconds;
      window = &w;
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            asio::steady_timer timer(io);
            const std::chrono::duration<double> step(1.0 / rate);
            const auto t0 = steady::now() + 10ms;
            const auto from = t0 + 1s;  // warm-up at the same rate, not measured
            const auto until = from + std::chrono::seconds(o.seconds);
            auto due = [&](std::uint64_t k) {
              return t0 + std::chrono::duration_cast<steady::duration>(step * static_cast<double>(k));
            };
            double cpu_from = 0, driver_from = 0;
            steady::time_point measured_from{};
            bool started = false;
            for (std::uint64_t k = 0;;) {
              const auto now = steady::now();
              auto intended = due(k);
              while (intended <= now && intended < until) {
                const bool measured = intended >= from;
                if (measured && !started) {
                  started = true;
                  measured_from = steady::now();
                  cpu_from = cpu_seconds(broker);
                  driver_from = self_cpu_seconds();
                }
                send_paced(*live[k % live.size()], intended, measured);
                intended = due(++k);
              }
              if (intended >= until) break;
              timer.expires_at(intended);
              (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            }
            const double elapsed = std::chrono::duration<double>(steady::now() - measured_from).count();
            w.broker_cpu = (cpu_seconds(broker) - cpu_from) / elapsed * o.seconds;  // scaled to the window
            w.driver_cpu = (self_cpu_seconds() - driver_from) / elapsed * o.seconds;
            w.broker_rss = rss_bytes(broker);
            // The last answers, bounded: whatever is still unanswered then is lost.
            const auto deadline = steady::now() + 2s;
            auto outstanding = [&] {
              return std::any_of(live.begin(), live.end(), [](const device* d) { return !d->inflight.empty(); });
            };
            while (outstanding() && steady::now() < deadline) {
              timer.expires_after(5ms);
              (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            }
            const auto now = steady::now();
            for (auto* d : live) {
              for (const auto& entry : d->inflight) {
                if (!entry.measured) continue;
                ++w.lost;
                w.latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - entry.intended).count());
              }
              d->inflight.clear();
            }
            io.stop();
          },
          [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
          });
      io.run();
      io.restart();
      window = nullptr;
      io.run_for(200ms);  // stray answers of this rate are ignored before the next one starts
      io.restart();
      result.paced.push_back(std::move(w));
    }
    for (auto& d : devices) d->connection.abort();
    io.run_for(1s);
    return result;
  }

  // The measuring window: every connected device keeps one request in flight.
  measuring = true;
  const double cpu_before = cpu_seconds(broker);
  for (auto& d : devices) {
    if (d->connection.connected()) send(*d);
  }
  io.run_for(std::chrono::seconds(o.seconds));
  measuring = false;
  result.broker_cpu = cpu_seconds(broker) - cpu_before;
  for (auto& d : devices) d->connection.abort();
  io.run_for(1s);
  return result;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto n = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n), v.end());
  return v[n];
}

void report(const char* name, run_result& r, const options& o) {
  std::printf("  %-34s %7d/%-6d %8.2f s", name, r.connected, o.devices, r.connect_seconds);
  std::printf(" %9.1f KB", static_cast<double>(r.broker_rss_idle) / 1024.0);
  const auto added = r.broker_rss_idle > r.broker_rss_base ? r.broker_rss_idle - r.broker_rss_base : 0;
  std::printf(" %7.2f KB/conn", static_cast<double>(added) / 1024.0 / std::max(1, r.connected));
  if (!o.connect_only && o.rates.empty()) {
    const double rate = static_cast<double>(r.round_trips) / o.seconds;
    const double max = r.latencies_ms.empty() ? 0 : *std::max_element(r.latencies_ms.begin(), r.latencies_ms.end());
    std::printf(" %10.0f/s  p50 %6.2f ms  p99 %6.2f ms  max %7.2f ms  broker CPU %4.0f %%", rate,
                percentile(r.latencies_ms, 0.50), percentile(r.latencies_ms, 0.99), max, 100.0 * r.broker_cpu / o.seconds);
  }
  std::printf("\n");
}

// The paced table: one row per rate and target, the first target being the baseline the others'
// p99 and CPU are compared with at the same rate.
struct target_result {
  std::string name;
  run_result run;
};

void report_paced(std::vector<target_result>& targets, const options& o) {
  std::printf("\nopen model: requests scheduled at a fixed total rate, latency from the intended start "
              "(%d s measured after 1 s warm-up; CPU in %% of one core over the window)\n",
              o.seconds);
  std::printf("  %-22s %8s %9s %7s %7s %7s %8s %6s %5s %8s %8s %9s %9s %6s %6s %8s\n", "target", "offered", "achieved",
              "p50 ms", "p90 ms", "p99 ms", "max ms", "lost", "err", "srv CPU", "drv CPU", "srv RSS", "RSS/conn",
              "p99 xb", "CPU xb", "lag p99");
  for (std::size_t i = 0; i < o.rates.size(); ++i) {
    double base_p99 = 0, base_cpu = 0;
    for (std::size_t t = 0; t < targets.size(); ++t) {
      auto& run = targets[t].run;
      if (i >= run.paced.size()) continue;
      auto& w = run.paced[i];
      const double p50 = percentile(w.latencies_ms, 0.50);
      const double p90 = percentile(w.latencies_ms, 0.90);
      const double p99 = percentile(w.latencies_ms, 0.99);
      const double max = w.latencies_ms.empty() ? 0 : *std::max_element(w.latencies_ms.begin(), w.latencies_ms.end());
      const double cpu = 100.0 * w.broker_cpu / w.seconds;
      if (t == 0) {
        base_p99 = p99;
        base_cpu = cpu;
      }
      const double per_conn = static_cast<double>(w.broker_rss) / 1024.0 / std::max(1, run.connected);
      std::printf("  %-22s %8.0f %9.0f %7.2f %7.2f %7.2f %8.2f %6llu %5llu %7.0f%% %7.0f%% %7.1fMB %6.1f KB %6.2f %6.2f %5.2f ms%s\n",
                  targets[t].name.c_str(), w.offered, static_cast<double>(w.answered) / w.seconds, p50, p90, p99, max,
                  static_cast<unsigned long long>(w.lost), static_cast<unsigned long long>(w.errors), cpu,
                  100.0 * w.driver_cpu / w.seconds, static_cast<double>(w.broker_rss) / 1048576.0, per_conn,
                  base_p99 > 0 ? p99 / base_p99 : 0.0, base_cpu > 0 ? cpu / base_cpu : 0.0,
                  percentile(w.send_lag_ms, 0.99), (p99 <= o.p99_target_ms && w.lost == 0 && w.errors == 0) ? "" : "  (over target)");
    }
  }
  std::printf("  highest rate swept with p99 <= %.1f ms, nothing lost, no errors:\n", o.p99_target_ms);
  for (auto& target : targets) {
    double best = 0;
    for (auto& w : target.run.paced) {
      if (percentile(w.latencies_ms, 0.99) <= o.p99_target_ms && w.lost == 0 && w.errors == 0 && !w.latencies_ms.empty())
        best = std::max(best, w.offered);
    }
    std::printf("    %-22s %8.0f/s\n", target.name.c_str(), best);
  }
}

std::vector<double> parse_rates(const std::string& list) {
  std::vector<double> rates;
  std::size_t at = 0;
  while (at <= list.size()) {
    const auto comma = std::min(list.find(',', at), list.size());
    rates.push_back(std::stod(list.substr(at, comma - at)));
    if (rates.back() <= 0) throw std::invalid_argument("rate must be positive");
    at = comma + 1;
  }
  return rates;
}

std::uint16_t free_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--devices" && i + 1 < argc) o.devices = std::stoi(argv[++i]);
    else if (a == "--seconds" && i + 1 < argc) o.seconds = std::stoi(argv[++i]);
    else if (a == "--connect-only") o.connect_only = true;
    else if ((a == "--rate" || a == "--sweep") && i + 1 < argc) o.rates = parse_rates(argv[++i]);
    else if (a == "--p99-ms" && i + 1 < argc) o.p99_target_ms = std::stod(argv[++i]);
    else if (a == "--twinfleet" && i + 1 < argc) o.twinfleet = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: hub_bench [--devices N] [--seconds S] [--connect-only] [--rate R | --sweep R1,R2,...]\n"
                   "                 [--p99-ms MS] [--twinfleet PATH]\n");
      return 2;
    }
  }
  const bool paced = !o.rates.empty() && !o.connect_only;
  std::vector<target_result> targets;
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &files);
  if (static_cast<rlim_t>(o.devices) + 100 > files.rlim_cur) {
    std::fprintf(stderr, "hub_bench: %d devices need %d files; this process may open %llu\n", o.devices,
                 o.devices + 100, static_cast<unsigned long long>(files.rlim_cur));
    return 2;
  }
  const auto dir = std::filesystem::temp_directory_path() / ("twinfleet-hub-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);

  if (paced) {
    std::printf("hub_bench: %d devices, open model at", o.devices);
    for (const double r : o.rates) std::printf(" %.0f", r);
    std::printf(" requests/s, %d s window per rate\n", o.seconds);
  } else {
    std::printf("hub_bench: %d devices, one request in flight each, %d s window\n", o.devices, o.seconds);
  }
  std::printf("  %-34s %14s %10s %12s %15s\n", "broker", "connected", "connect", "broker RSS", "RSS added/conn");

  {  // mosquitto baseline
    const auto port = free_port();
    {
      std::ofstream conf(dir / "mosquitto.conf");
      // TCP_NODELAY as twinfleet sets it on every socket, so Nagle does not decide the race.
      conf << "listener " << port << " 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n";
    }
    child broker{spawn({"mosquitto", "-c", (dir / "mosquitto.conf").string()}, (dir / "mosquitto.log").string())};
    std::this_thread::sleep_for(500ms);
    auto r = drive(o, port, loop::echo, {}, broker.pid);
    report("mosquitto: QoS 1 echo to itself", r, o);
    if (paced) targets.push_back({"mosquitto QoS 1 echo", std::move(r)});
  }
  {  // the hub
    child hub{spawn({o.twinfleet, "hub", "--certs", dir.string(), "--listen-mqtt", "127.0.0.1:0", "--listen-mqtts", "off",
                     "--listen-https", "off"},
                    (dir / "hub.log").string())};
    std::string text;
    for (int i = 0; i < 100 && text.empty(); ++i) {
      std::this_thread::sleep_for(100ms);
      std::ifstream in(dir / "hub.json");
      text.assign(std::istreambuf_iterator<char>(in), {});
    }
    if (text.empty()) {
      std::fprintf(stderr, "hub_bench: the hub did not start; see %s\n", (dir / "hub.log").c_str());
      return 1;
    }
    const auto info = json::parse(text);
    const auto port = static_cast<std::uint16_t>(info.at("endpoints").at(0).at("port").to_number<int>());
    const std::string group_key(info.at("azure").at("group_key").as_string());
    auto r = drive(o, port, loop::azure_reported, group_key, hub.pid);
    report("twinfleet hub: Azure reported PATCH", r, o);
    if (paced) targets.push_back({"hub Azure reported", std::move(r)});
    if (!o.connect_only) {
      auto a = drive(o, port, loop::aws_update, group_key, hub.pid);
      report("twinfleet hub: AWS shadow update", a, o);
      if (paced) targets.push_back({"hub AWS update", std::move(a)});
    }
  }
  if (paced) report_paced(targets, o);
  std::filesystem::remove_all(dir);
  return 0;
}
