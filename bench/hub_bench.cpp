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
//   build/bench/hub_bench [--devices N] [--seconds S] [--connect-only]
// The defaults (1,000 devices, 10 s) run in under a minute; `--devices 19500 --connect-only`
// checks that one hub process holds 19,500 connections (each process stays under the
// 20,000-file limit: the hub and this client are separate processes).
#include <twinfleet/auth/sas.hpp>
#include <twinfleet/net/client.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
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

namespace {

struct options {
  int devices = 1000;
  int seconds = 10;
  bool connect_only = false;
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

// VmRSS of a process in bytes, and its user+system CPU seconds.
std::size_t rss_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  const auto close = text.rfind(')');
  std::vector<std::string> fields;
  std::string field;
  for (char c : text.substr(close + 2)) {
    if (c == ' ') {
      fields.push_back(field);
      field.clear();
    } else {
      field.push_back(c);
    }
  }
  // utime and stime are fields 14 and 15 of /proc/pid/stat (11 and 12 after the state).
  return (std::stod(fields.at(11)) + std::stod(fields.at(12))) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

struct device {
  explicit device(asio::any_io_executor ex) : connection(std::move(ex)) {}
  net::client_connection connection;
  std::string id;
  std::string topic;    // where the request goes
  std::string payload;
  steady::time_point sent;
  std::uint64_t rid = 0;
};

struct run_result {
  int connected = 0;
  double connect_seconds = 0;
  std::uint64_t round_trips = 0;
  std::vector<double> latencies_ms;
  std::size_t broker_rss_base = 0;  // before any device connected
  std::size_t broker_rss_idle = 0;  // with every device connected and idle
  double broker_cpu = 0;
};

enum class loop { echo, azure_reported, aws_update };

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
    d->connection.set_message_handler([&, self](const mqtt::publish_packet&) {
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
  if (!o.connect_only) {
    const double rate = static_cast<double>(r.round_trips) / o.seconds;
    const double max = r.latencies_ms.empty() ? 0 : *std::max_element(r.latencies_ms.begin(), r.latencies_ms.end());
    std::printf(" %10.0f/s  p50 %6.2f ms  p99 %6.2f ms  max %7.2f ms  broker CPU %4.0f %%", rate,
                percentile(r.latencies_ms, 0.50), percentile(r.latencies_ms, 0.99), max, 100.0 * r.broker_cpu / o.seconds);
  }
  std::printf("\n");
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
    else if (a == "--twinfleet" && i + 1 < argc) o.twinfleet = argv[++i];
    else {
      std::fprintf(stderr, "usage: hub_bench [--devices N] [--seconds S] [--connect-only] [--twinfleet PATH]\n");
      return 2;
    }
  }
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

  std::printf("hub_bench: %d devices, one request in flight each, %d s window\n", o.devices, o.seconds);
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
    if (!o.connect_only) {
      auto a = drive(o, port, loop::aws_update, group_key, hub.pid);
      report("twinfleet hub: AWS shadow update", a, o);
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}
