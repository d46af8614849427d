// Our client against our server over each transport (TCP, TLS with a required and verified
// client certificate, WebSocket, WebSocket over TLS), on 127.0.0.1 with an ephemeral port.
#include "net_test_util.hpp"

#include "catch_printers.hpp"

#include <array>

using namespace twinfleet;
using namespace twinfleet::net;
using namespace twinfleet::net::test;

namespace {

struct message {
  std::string topic;
  std::string payload;
  mqtt::qos qos;
  friend bool operator==(const message&, const message&) = default;
};

// Parameters, not lambda captures: a coroutine's frame keeps its parameters, not the closure.
asio::awaitable<void> publish_counted(client_connection& device, std::string topic, int& completed, int& failed) {
  const auto ec = co_await device.async_publish(topic, "b", mqtt::qos::at_least_once);
  ++(ec ? failed : completed);
}

}  // namespace

namespace Catch {
template <>
struct StringMaker<message> {
  static std::string convert(const message& m) {
    return "{" + m.topic + ", " + std::to_string(m.payload.size()) + " bytes, QoS " +
           std::to_string(static_cast<int>(m.qos)) + "}";
  }
};
}  // namespace Catch

TEST_CASE("every transport: connect, subscribe, QoS 0 and 1 both ways, large payloads, disconnect", "[net]") {
  const auto kind = GENERATE(transport_kind::tcp, transport_kind::tls, transport_kind::ws, transport_kind::wss);
  CAPTURE(std::string(to_string(kind)));

  asio::io_context io;
  test_pki pki;
  test_broker broker;
  listener_options o;
  o.transport = kind;
  o.tls = &pki.server;
  mqtt_listener listener(io.get_executor(), o, broker);
  REQUIRE_FALSE(listener.listen());
  const auto server = listener.local_endpoint();
  CHECK(server.port() != 0);

  client_transport t;
  t.kind = kind;
  t.tls = &pki.client;

  auto body = [&]() -> asio::awaitable<void> {
    client_connection device(co_await asio::this_coro::executor);
    std::vector<message> got;
    device.set_message_handler([&](const mqtt::publish_packet& p) {
      got.push_back({std::string(p.topic), std::string(p.payload), p.qos});
    });
    const auto awaited1 = co_await device.async_connect(server, t, hello("device-1"), 5s);
    REQUIRE_FALSE(awaited1);
    CHECK(device.connected());
    CHECK(no_delay(device.stream()));

    // What the server sees of the connection.
    REQUIRE(broker.live.size() == 1);
    auto& conn = *broker.live.front();
    CHECK(conn.transport() == kind);
    CHECK(no_delay(conn.stream()));
    CHECK(conn.remote_endpoint() == device.stream()->socket().local_endpoint());
    CHECK(conn.id() == 1);
    if (uses_tls(kind)) {
      const auto cert = conn.peer_certificate();
      REQUIRE(cert);
      CHECK(cert->info.subject_common_name == "device-1");
      CHECK(cert->verified);
    } else {
      CHECK_FALSE(conn.peer_certificate());
    }
    CHECK(conn.ws_request_target() == (uses_websocket(kind) ? "/mqtt" : ""));

    const std::array subs{mqtt::subscription{"t/#", mqtt::qos::at_least_once},
                          mqtt::subscription{"q0/#", mqtt::qos::at_most_once},
                          mqtt::subscription{"forbidden/#", mqtt::qos::at_least_once}};
    const auto codes = co_await device.async_subscribe(subs);
    REQUIRE(codes);
    CHECK(*codes == std::vector{mqtt::suback_code::granted_qos1, mqtt::suback_code::granted_qos0,
                                mqtt::suback_code::failure});

    // Through the broker and back: QoS 1 completes at PUBACK, QoS 0 once written.
    const auto awaited2 = co_await device.async_publish("t/1", "hello", mqtt::qos::at_least_once);
    REQUIRE_FALSE(awaited2);
    const auto awaited3 = co_await device.async_publish("q0/1", "zero", mqtt::qos::at_most_once);
    REQUIRE_FALSE(awaited3);
    const auto awaited4 = co_await eventually([&] { return got.size() == 2; });
    REQUIRE(awaited4);
    CHECK(got[0] == message{"t/1", "hello", mqtt::qos::at_least_once});
    CHECK(got[1] == message{"q0/1", "zero", mqtt::qos::at_most_once});

    // The server publishes on its own; the client's PUBACK reaches on_puback().
    const auto id = conn.publish("t/direct", "from the hub", mqtt::qos::at_least_once);
    REQUIRE(id);
    const auto awaited5 = co_await eventually([&] {
      const std::lock_guard lock(broker.mutex);
      return got.size() == 3 && !broker.pubacks.empty();
    });
    REQUIRE(awaited5);
    CHECK(got[2] == message{"t/direct", "from the hub", mqtt::qos::at_least_once});
    CHECK(broker.pubacks.back() == *id);

    // Large payloads both ways: the read buffers grow to the packet and shrink back.
    const std::string big(300'000, 'x');
    const auto awaited6 = co_await device.async_publish("t/big", big, mqtt::qos::at_least_once);
    REQUIRE_FALSE(awaited6);
    const auto awaited7 = co_await eventually([&] { return got.size() == 4; });
    REQUIRE(awaited7);
    CHECK(got[3].payload == big);

    // Many QoS 1 publishes at once: more than the in-flight window (16), so some queue.
    int completed = 0;
    int failed = 0;
    const auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < 100; ++i) {
      asio::co_spawn(ex, publish_counted(device, "t/burst/" + std::to_string(i), completed, failed),
                     [](std::exception_ptr e) {
                       if (e) std::rethrow_exception(e);
                     });
    }
    const auto awaited8 = co_await eventually([&] { return completed + failed == 100 && got.size() == 104; });
    REQUIRE(awaited8);
    CHECK(failed == 0);
    CHECK(got[4].topic == "t/burst/0");
    CHECK(got[103].topic == "t/burst/99");

    // After UNSUBACK nothing more arrives on that filter.
    const std::array<std::string_view, 1> filters{"t/#"};
    const auto awaited9 = co_await device.async_unsubscribe(filters);
    REQUIRE_FALSE(awaited9);
    const auto awaited10 = co_await device.async_publish("t/2", "unseen", mqtt::qos::at_least_once);
    REQUIRE_FALSE(awaited10);
    co_await sleep(50ms);
    CHECK(got.size() == 104);
    CHECK(broker.received_count() == 104);

    const auto awaited11 = co_await device.async_disconnect();

    CHECK_FALSE(awaited11);
    CHECK_FALSE(device.connected());
    CHECK(device.stream() == nullptr);
    const auto awaited12 = co_await eventually([&] { return broker.closed_count() == 1; });
    REQUIRE(awaited12);
    CHECK(broker.closed[0].reason == error_code{});  // a clean DISCONNECT

    listener.stop();
    co_await listener.async_wait_stopped();
    CHECK(listener.stats().accepted == 1);
    CHECK(listener.stats().active == 0);
    CHECK(listener.stats().handshake_failures == 0);
  };
  run(io, body());
}

TEST_CASE("WebSocket: the server sees the request target with its query, and other paths get 404", "[net]") {
  const auto kind = GENERATE(transport_kind::ws, transport_kind::wss);
  CAPTURE(std::string(to_string(kind)));
  asio::io_context io;
  test_pki pki;
  test_broker broker;
  listener_options o;
  o.transport = kind;
  o.tls = &pki.server;
  o.ws_path = "/$iothub/websocket";
  mqtt_listener listener(io.get_executor(), o, broker);
  REQUIRE_FALSE(listener.listen());

  auto body = [&]() -> asio::awaitable<void> {
    const auto ex = co_await asio::this_coro::executor;
    client_transport t;
    t.kind = kind;
    t.tls = &pki.client;
    t.ws_target =
        "/$iothub/websocket?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1"
        "%2Fiotdevicegateway%2Faws4_request&X-Amz-Signature=abc123";
    // AWS IoT Device SDK v1 offers "mqttv3.1".
    t.ws_subprotocols = {"mqttv3.1"};
    client_connection device(ex);
    const auto awaited13 = co_await device.async_connect(listener.local_endpoint(), t, hello("device-1"), 5s);
    REQUIRE_FALSE(awaited13);
    REQUIRE(broker.live.size() == 1);
    CHECK(broker.live.front()->ws_request_target() == t.ws_target);
    const auto awaited14 = co_await device.async_disconnect();
    CHECK_FALSE(awaited14);

    client_transport wrong = t;
    wrong.ws_target = "/mqtt";
    wrong.ws_subprotocols = {"mqtt"};
    client_connection stray(ex);
    const auto awaited15 = co_await stray.async_connect(listener.local_endpoint(), wrong, hello("device-1"), 5s) ==
          net_errc::websocket_upgrade_refused;
    CHECK(awaited15);
    CHECK(broker.connects == 1);

    listener.stop();
    co_await listener.async_wait_stopped();
    CHECK(listener.stats().handshake_failures == 1);
  };
  run(io, body());
}

TEST_CASE("TLS: a client without a certificate fails the handshake when the server requires one", "[net]") {
  const auto kind = GENERATE(transport_kind::tls, transport_kind::wss);
  CAPTURE(std::string(to_string(kind)));
  asio::io_context io;
  test_pki pki;
  test_broker broker;
  listener_options o;
  o.transport = kind;
  o.tls = &pki.server;
  mqtt_listener listener(io.get_executor(), o, broker);
  REQUIRE_FALSE(listener.listen());

  auto body = [&]() -> asio::awaitable<void> {
    client_transport t;
    t.kind = kind;
    t.tls = &pki.anonymous_client;
    client_connection device(co_await asio::this_coro::executor);
    const auto ec = co_await device.async_connect(listener.local_endpoint(), t, hello("device-1"), 5s);
    CHECK(ec);
    CHECK_FALSE(device.connected());
    const auto awaited16 = co_await eventually([&] { return listener.stats().handshake_failures == 1; });
    REQUIRE(awaited16);
    CHECK(broker.connects == 0);

    // The client names the server it expects: a name the certificate lacks fails.
    client_transport wrong_name;
    wrong_name.kind = kind;
    wrong_name.tls = &pki.client;
    wrong_name.server_name = "hub.example.com";
    const auto awaited17 = co_await device.async_connect(listener.local_endpoint(), wrong_name, hello("device-1"), 5s);
    CHECK(awaited17);
    // And "localhost", which it has, works (host name, SNI).
    wrong_name.server_name = "localhost";
    const auto awaited18 = co_await device.async_connect(listener.local_endpoint(), wrong_name, hello("device-1"), 5s);
    CHECK_FALSE(awaited18);
    device.abort();

    listener.stop();
    co_await listener.async_wait_stopped();
  };
  run(io, body());
}

TEST_CASE("TLS: ALPN offered per connection is negotiated and visible to the server", "[net]") {
  asio::io_context io;
  test_pki pki;
  test_broker broker;
  listener_options o;
  o.transport = transport_kind::tls;
  o.tls = &pki.server;
  mqtt_listener listener(io.get_executor(), o, broker);
  REQUIRE_FALSE(listener.listen());

  auto body = [&]() -> asio::awaitable<void> {
    client_transport t;
    t.kind = transport_kind::tls;
    t.tls = &pki.client;
    t.alpn = {"x-amzn-mqtt-ca"};
    client_connection device(co_await asio::this_coro::executor);
    const auto awaited19 = co_await device.async_connect("127.0.0.1", listener.local_endpoint().port(), t, hello("device-1"), 5s);
    REQUIRE_FALSE(awaited19);
    REQUIRE(broker.live.size() == 1);
    CHECK(broker.live.front()->alpn() == "x-amzn-mqtt-ca");
    CHECK(auth::negotiated_alpn(device.stream()->tls_handle()) == "x-amzn-mqtt-ca");
    const auto awaited20 = co_await device.async_disconnect();
    CHECK_FALSE(awaited20);
    listener.stop();
    co_await listener.async_wait_stopped();
  };
  run(io, body());
}
