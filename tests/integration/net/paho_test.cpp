// An independent client against our server: Paho MQTT C++ (over Paho C) connects over TCP,
// TLS with a client certificate, and WebSocket, subscribes, publishes QoS 1 and receives the
// server's echo. Our server's io_context runs on its own thread: Paho's calls block.
#include "../../unit/net/net_test_util.hpp"

#include "catch_printers.hpp"

#include <mqtt/async_client.h>

#include <future>
#include <thread>

namespace net = twinfleet::net;
namespace tmqtt = twinfleet::mqtt;
using net::test::test_broker;
using net::test::test_pki;
using namespace std::chrono_literals;

namespace {

// Our server on a thread of its own, stopped (gracefully, bounded) and joined at the end.
class server_thread {
 public:
  server_thread(net::listener_options options, test_broker& broker)
      : work_(boost::asio::make_work_guard(io_)), listener_(io_.get_executor(), std::move(options), broker) {
    REQUIRE_FALSE(listener_.listen());
    thread_ = std::thread([this] { io_.run(); });
  }

  ~server_thread() {
    // Stop, then wait for every connection to finish, at most 10 s, on the server's thread.
    std::promise<void> stopped;
    auto done = stopped.get_future();
    boost::asio::co_spawn(
        io_,
        [](net::mqtt_listener& l) -> boost::asio::awaitable<void> {
          l.stop();
          co_await l.async_wait_stopped();
        }(listener_),
        [&stopped](std::exception_ptr) { stopped.set_value(); });
    (void)done.wait_for(10s);
    work_.reset();
    io_.stop();
    thread_.join();
  }

  server_thread(const server_thread&) = delete;
  server_thread& operator=(const server_thread&) = delete;

  [[nodiscard]] std::uint16_t port() const { return listener_.local_endpoint().port(); }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  net::mqtt_listener listener_;
  std::thread thread_;
};

// Connect, subscribe to the echoes, publish QoS 1, get the echo, disconnect.
void paho_round_trip(const std::string& uri, const std::string& client_id, const ::mqtt::connect_options& options) {
  ::mqtt::async_client client(uri, client_id, ::mqtt::create_options(MQTTVERSION_3_1_1),
                              static_cast<::mqtt::iclient_persistence*>(nullptr));
  client.start_consuming();
  REQUIRE(client.connect(options)->wait_for(10s));
  CHECK(client.is_connected());
  REQUIRE(client.subscribe("echo/#", 1)->wait_for(5s));
  REQUIRE(client.publish("devices/" + client_id + "/messages/events", "{\"t\":21.5}", 1, false)->wait_for(5s));
  const auto echo = client.try_consume_message_for(5s);
  REQUIRE(echo);
  CHECK(echo->get_topic() == "echo/devices/" + client_id + "/messages/events");
  CHECK(echo->to_string() == "{\"t\":21.5}");
  CHECK(echo->get_qos() == 1);
  // QoS 0 too.
  REQUIRE(client.publish("telemetry", "0", 0, false)->wait_for(5s));
  const auto echo0 = client.try_consume_message_for(5s);
  REQUIRE(echo0);
  CHECK(echo0->get_topic() == "echo/telemetry");
  CHECK(echo0->get_qos() == 0);
  REQUIRE(client.disconnect()->wait_for(5s));
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

}  // namespace

TEST_CASE("Paho MQTT C++ against our server over TCP", "[net][integration][paho]") {
  test_broker broker;
  broker.echo_prefix = "echo/";
  {
    server_thread server({}, broker);
    const auto options = ::mqtt::connect_options_builder().clean_session().keep_alive_interval(20s).finalize();
    paho_round_trip("tcp://127.0.0.1:" + std::to_string(server.port()), "paho-tcp", options);
    CHECK(eventually([&] { return broker.closed_count() == 1; }));
  }
  CHECK(broker.connects == 1);
  CHECK(broker.closed_reason("paho-tcp") == boost::system::error_code{});  // a clean DISCONNECT
  CHECK(broker.received_count() == 2);
}

TEST_CASE("Paho MQTT C++ against our server over TLS with a client certificate", "[net][integration][paho]") {
  test_pki pki;
  test_broker broker;
  broker.echo_prefix = "echo/";
  std::string subject;
  {
    net::listener_options o;
    o.transport = net::transport_kind::tls;
    o.tls = &pki.server;
    server_thread server(o, broker);
    auto ssl = ::mqtt::ssl_options_builder()
                   .trust_store(pki.ca.ca.certificate_file.string())
                   .key_store(pki.ca.clients.at(0).certificate_file.string())
                   .private_key(pki.ca.clients.at(0).key_file.string())
                   .enable_server_cert_auth(true)
                   .verify(true)
                   .finalize();
    const auto options =
        ::mqtt::connect_options_builder().clean_session().keep_alive_interval(20s).ssl(std::move(ssl)).finalize();
    paho_round_trip("ssl://127.0.0.1:" + std::to_string(server.port()), "paho-tls", options);
    CHECK(eventually([&] { return broker.closed_count() == 1; }));
  }
  CHECK(broker.connects == 1);
  CHECK(broker.closed_reason("paho-tls") == boost::system::error_code{});
}

TEST_CASE("Paho MQTT C++ against our server over WebSocket", "[net][integration][paho]") {
  test_broker broker;
  broker.echo_prefix = "echo/";
  {
    net::listener_options o;
    o.transport = net::transport_kind::ws;
    o.ws_path = "/mqtt";
    server_thread server(o, broker);
    const auto options = ::mqtt::connect_options_builder().clean_session().keep_alive_interval(20s).finalize();
    paho_round_trip("ws://127.0.0.1:" + std::to_string(server.port()) + "/mqtt", "paho-ws", options);
    CHECK(eventually([&] { return broker.closed_count() == 1; }));
  }
  CHECK(broker.connects == 1);
}
