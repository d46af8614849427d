// Our client against a real broker: mosquitto, started by the test on an ephemeral loopback
// port and stopped at the end (SIGTERM, then SIGKILL after a bound).
#include "../../unit/net/net_test_util.hpp"

#include "catch_printers.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <fstream>
#include <thread>

extern char** environ;

using namespace twinfleet;
using namespace twinfleet::net;
using namespace twinfleet::net::test;
using asio::ip::tcp;

namespace {

constexpr const char* mosquitto_binary = "/usr/sbin/mosquitto";

// A port that was free a moment ago (mosquitto cannot be told to pick one and report it).
std::uint16_t free_loopback_port() {
  asio::io_context io;
  tcp::acceptor probe(io, {asio::ip::address_v4::loopback(), 0});
  return probe.local_endpoint().port();
}

bool port_accepts(std::uint16_t port) {
  asio::io_context io;
  tcp::socket s(io);
  error_code ec;
  s.connect({asio::ip::address_v4::loopback(), port}, ec);
  return !ec;
}

class mosquitto_process {
 public:
  mosquitto_process() {
    REQUIRE(::access(mosquitto_binary, X_OK) == 0);  // scripts/install-deps.sh installs it
    for (int attempt = 0; attempt < 3 && pid_ <= 0; ++attempt) start();
    REQUIRE(pid_ > 0);
  }

  ~mosquitto_process() { stop(); }
  mosquitto_process(const mosquitto_process&) = delete;
  mosquitto_process& operator=(const mosquitto_process&) = delete;

  [[nodiscard]] tcp::endpoint endpoint() const { return {asio::ip::address_v4::loopback(), port_}; }

 private:
  void start() {
    port_ = free_loopback_port();
    const auto conf = dir_.path() / "mosquitto.conf";
    {
      std::ofstream out(conf);
      out << "listener " << port_ << " 127.0.0.1\n"
          << "allow_anonymous true\n"
          << "persistence false\n"
          << "log_dest file " << (dir_.path() / "mosquitto.log").string() << "\n";
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    std::string conf_path = conf.string();
    std::array<char*, 4> argv{const_cast<char*>("mosquitto"), const_cast<char*>("-c"), conf_path.data(), nullptr};
    pid_t pid = -1;
    const int spawned = ::posix_spawn(&pid, mosquitto_binary, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) return;
    pid_ = pid;
    // Ready when it accepts; gone when the port was taken meanwhile (then try another).
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      if (port_accepts(port_)) return;
      std::this_thread::sleep_for(20ms);
    }
    stop();
  }

  void stop() noexcept {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    pid_ = -1;
  }

  twinfleet::test::temp_dir dir_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

// One device: connect, subscribe to its own topic, publish QoS 1 to it, receive it, disconnect.
asio::awaitable<void> round_trip_device(tcp::endpoint broker, int index, int& succeeded, int& failed) {
  const std::string id = "fleet-" + std::to_string(index);
  const std::string topic = "fleet/" + id;
  client_connection device(co_await asio::this_coro::executor);
  int received = 0;
  device.set_message_handler([&](const mqtt::publish_packet& p) {
    if (p.topic == topic && p.payload == id) ++received;
  });
  const client_transport plain;
  bool ok = !co_await device.async_connect(broker, plain, hello(id, 30), 20s);
  const std::array subs{mqtt::subscription{topic, mqtt::qos::at_least_once}};
  if (ok) {
    const auto codes = co_await device.async_subscribe(subs);
    ok = codes && codes->size() == 1 && codes->front() == mqtt::suback_code::granted_qos1;
  }
  if (ok) ok = !co_await device.async_publish(topic, id, mqtt::qos::at_least_once);
  if (ok) ok = co_await eventually([&] { return received == 1; }, 20s);
  if (ok) ok = !co_await device.async_disconnect();
  ++(ok ? succeeded : failed);
}

}  // namespace

TEST_CASE("mosquitto: subscribe, QoS 1 and QoS 0 round trips, keep-alive, unsubscribe, disconnect",
          "[net][integration][mosquitto]") {
  mosquitto_process broker;
  asio::io_context io;
  auto body = [&]() -> asio::awaitable<void> {
    const auto ex = co_await asio::this_coro::executor;
    const client_transport plain;
    client_connection device(ex);
    std::vector<std::pair<std::string, std::string>> got;
    device.set_message_handler([&](const mqtt::publish_packet& p) {
      got.emplace_back(std::string(p.topic), std::string(p.payload));
    });
    const auto connect_ec = co_await device.async_connect(broker.endpoint(), plain, hello("twinfleet-1", 1), 5s);
    REQUIRE_FALSE(connect_ec);
    CHECK(no_delay(device.stream()));

    const std::array subs{mqtt::subscription{"devices/+/twin/#", mqtt::qos::at_least_once},
                          mqtt::subscription{"telemetry/#", mqtt::qos::at_most_once}};
    const auto codes = co_await device.async_subscribe(subs);
    REQUIRE(codes);
    CHECK(*codes == std::vector{mqtt::suback_code::granted_qos1, mqtt::suback_code::granted_qos0});

    const auto qos1_ec = co_await device.async_publish("devices/d1/twin/reported", R"({"t":21.5})",
                                                       mqtt::qos::at_least_once);
    CHECK_FALSE(qos1_ec);
    const auto qos0_ec = co_await device.async_publish("telemetry/d1", "42", mqtt::qos::at_most_once);
    CHECK_FALSE(qos0_ec);
    const auto both = co_await eventually([&] { return got.size() == 2; });
    REQUIRE(both);
    CHECK(got[0] == std::pair<std::string, std::string>{"devices/d1/twin/reported", R"({"t":21.5})"});
    CHECK(got[1] == std::pair<std::string, std::string>{"telemetry/d1", "42"});

    // Keep-alive 1 s: our PINGREQs keep mosquitto (which closes after 1.5 s of silence) happy.
    co_await sleep(2200ms);
    CHECK(device.connected());

    // Another client's message reaches us through the broker.
    client_connection other(ex);
    const auto other_ec = co_await other.async_connect(broker.endpoint(), plain, hello("twinfleet-2"), 5s);
    REQUIRE_FALSE(other_ec);
    const auto other_pub = co_await other.async_publish("devices/d2/twin/desired", "{}", mqtt::qos::at_least_once);
    CHECK_FALSE(other_pub);
    const auto third = co_await eventually([&] { return got.size() == 3; });
    REQUIRE(third);
    CHECK(got[2].first == "devices/d2/twin/desired");

    const std::array<std::string_view, 1> filters{"devices/+/twin/#"};
    const auto unsub_ec = co_await device.async_unsubscribe(filters);
    CHECK_FALSE(unsub_ec);
    const auto after_unsub = co_await other.async_publish("devices/d2/twin/desired", "{}", mqtt::qos::at_least_once);
    CHECK_FALSE(after_unsub);
    co_await sleep(100ms);
    CHECK(got.size() == 3);

    const auto d1 = co_await device.async_disconnect();
    CHECK_FALSE(d1);
    const auto d2 = co_await other.async_disconnect();
    CHECK_FALSE(d2);
  };
  run(io, body(), 30s);
}

TEST_CASE("mosquitto: 500 devices connect, subscribe and round-trip a QoS 1 message at once",
          "[net][integration][mosquitto]") {
  mosquitto_process broker;
  asio::io_context io;
  constexpr int devices = 500;
  int succeeded = 0;
  int failed = 0;
  auto body = [&]() -> asio::awaitable<void> {
    const auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < devices; ++i) {
      asio::co_spawn(ex, round_trip_device(broker.endpoint(), i, succeeded, failed), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
    }
    const auto all = co_await eventually([&] { return succeeded + failed == devices; }, 50s);
    CHECK(all);
  };
  run(io, body(), 60s);
  CHECK(succeeded == devices);
  CHECK(failed == 0);
}

TEST_CASE("mosquitto: a refused CONNECT maps to its CONNACK code", "[net][integration][mosquitto]") {
  mosquitto_process broker;
  asio::io_context io;
  auto body = [&]() -> asio::awaitable<void> {
    const client_transport plain;
    client_connection device(co_await asio::this_coro::executor);
    // An empty client id without clean session: MQTT 3.1.1 says identifier rejected (2).
    mqtt::connect_packet c;
    c.clean_session = false;
    const auto ec = co_await device.async_connect(broker.endpoint(), plain, c, 5s);
    CHECK(ec == connack_errc::identifier_rejected);
    CHECK_FALSE(device.connected());
  };
  run(io, body(), 20s);
}
