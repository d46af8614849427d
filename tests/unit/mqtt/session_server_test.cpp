// The server role of the sans-I/O session (one connection of the local hub) against a scripted
// device on virtual time, and a client and a server session talking to each other.
#include <twinfleet/mqtt/session.hpp>

#include "mqtt_test_util.hpp"

#include <catch2/catch.hpp>

using namespace twinfleet::mqtt;
using namespace std::chrono_literals;
using twinfleet::mqtt::test::encoded;
using twinfleet::mqtt::test::event_as;
using twinfleet::mqtt::test::from_hex;
using twinfleet::mqtt::test::scripted_peer;

namespace {

connect_packet device_connect(std::uint16_t keep_alive = 60, bool clean_session = true) {
  connect_packet c;
  c.client_id = "thing-7";
  c.keep_alive = keep_alive;
  c.clean_session = clean_session;
  return c;
}

// A device that has connected and been accepted.
void establish(scripted_peer& device, const connect_packet& c = device_connect()) {
  const auto events = device.send(c);
  REQUIRE(events.size() == 1);
  CHECK(event_as<connect_packet>(events) == c);
  REQUIRE(device.s().state() == session_state::awaiting_decision);
  REQUIRE_FALSE(device.s().accept(device.now()));
  CHECK(device.expect_sent<connack_packet>() == connack_packet{});
  REQUIRE(device.s().state() == session_state::connected);
}

}  // namespace

TEST_CASE("server: CONNECT is handed over, accept() answers CONNACK 0", "[mqtt][session][server]") {
  scripted_peer device(role::server);
  CHECK(device.s().state() == session_state::awaiting_connect);

  connect_packet c = device_connect(240, false);
  c.will = will_message{"devices/thing-7/messages/events/", "gone", qos::at_least_once, false};
  c.username = "hub/thing-7/?api-version=2021-04-12";
  c.password = "SharedAccessSignature sr=a&sig=b&se=9";
  const auto events = device.send(c, 20ms);
  REQUIRE(events.size() == 1);
  const auto& got = event_as<connect_packet>(events);
  CHECK(got == c);
  CHECK(got.username == c.username);
  CHECK(device.s().state() == session_state::awaiting_decision);
  CHECK(device.nothing_sent());  // the application decides

  REQUIRE_FALSE(device.s().accept(device.now(), accept_params{true, std::nullopt}));
  CHECK(device.expect_sent<connack_packet>() == connack_packet{true, connect_return_code::accepted});
  CHECK(device.s().state() == session_state::connected);
  CHECK(device.s().keep_alive() == 240);
  CHECK(device.s().accept(device.now()) == mqtt_errc::no_pending_connect);
}

TEST_CASE("server: session present is never claimed for a clean session", "[mqtt][session][server]") {
  scripted_peer device(role::server);
  device.send(device_connect(60, true));
  REQUIRE_FALSE(device.s().accept(device.now(), accept_params{true, std::nullopt}));
  CHECK_FALSE(device.expect_sent<connack_packet>().session_present);
}

TEST_CASE("server: refuse() answers with the code and closes", "[mqtt][session][server]") {
  scripted_peer device(role::server);
  device.send(device_connect());
  CHECK(device.s().refuse(connect_return_code::accepted, device.now()) == mqtt_errc::bad_return_code);
  REQUIRE_FALSE(device.s().refuse(connect_return_code::not_authorized, device.now()));
  CHECK(device.expect_sent<connack_packet>().return_code == connect_return_code::not_authorized);
  CHECK(device.s().closing());
  CHECK(device.s().close_reason() == mqtt_errc::connection_refused);
  device.s().on_connection_lost();
  CHECK(device.s().state() == session_state::closed);
}

TEST_CASE("server: an MQTT 5 CONNECT gets CONNACK 0x01 and the connection closes", "[mqtt][session][server]") {
  scripted_peer device(role::server);
  // CONNECT, "MQTT" level 5, clean start, keep-alive 60, no properties, client id "dev1".
  const auto events = device.send_bytes(from_hex("10 11 00 04 4D 51 54 54 05 02 00 3C 00 00 04 64 65 76 31"));
  REQUIRE(events.size() == 1);
  CHECK(event_as<closed_event>(events).reason == mqtt_errc::unsupported_protocol_level);
  CHECK(device.expect_sent<connack_packet>() ==
        connack_packet{false, connect_return_code::unacceptable_protocol_version});
  CHECK(device.s().closing());
}

TEST_CASE("server: MQTT 3.1 clients are refused unless accepted by option", "[mqtt][session][server]") {
  connect_packet c = device_connect(60, false);
  c.version = protocol_version::v3_1;

  scripted_peer strict(role::server);
  CHECK(event_as<closed_event>(strict.send(c)).reason == mqtt_errc::unsupported_protocol_level);
  CHECK(strict.expect_sent<connack_packet>().return_code == connect_return_code::unacceptable_protocol_version);

  session_options o;
  o.accept_mqtt_3_1 = true;
  scripted_peer lenient(role::server, o);
  CHECK(event_as<connect_packet>(lenient.send(c)).version == protocol_version::v3_1);
  REQUIRE_FALSE(lenient.s().accept(lenient.now(), accept_params{true, std::nullopt}));
  // MQTT 3.1 has no session-present flag.
  CHECK(lenient.expect_sent<connack_packet>() == connack_packet{});
  CHECK(lenient.s().version() == protocol_version::v3_1);
}

TEST_CASE("server: an empty client id needs a clean session", "[mqtt][session][server]") {
  connect_packet c = device_connect(60, false);
  c.client_id = "";
  scripted_peer device(role::server);
  CHECK(event_as<closed_event>(device.send(c)).reason == mqtt_errc::connection_refused);
  CHECK(device.expect_sent<connack_packet>().return_code == connect_return_code::identifier_rejected);

  c.clean_session = true;
  scripted_peer fine(role::server);
  CHECK(event_as<connect_packet>(fine.send(c)).client_id.empty());
}

TEST_CASE("server: a packet before CONNECT closes the connection", "[mqtt][session][server]") {
  scripted_peer device(role::server);
  const auto events = device.send(publish_packet{"t", "x"});
  CHECK(event_as<closed_event>(events).reason == mqtt_errc::protocol_violation);
  CHECK(device.s().closing());
  CHECK(device.nothing_sent());

  scripted_peer pinger(role::server);
  CHECK(event_as<closed_event>(pinger.send(pingreq_packet{})).reason == mqtt_errc::protocol_violation);
  CHECK(pinger.nothing_sent());
}

TEST_CASE("server: a second CONNECT closes the connection", "[mqtt][session][server]") {
  scripted_peer device(role::server);
  establish(device);
  const auto events = device.send(device_connect());
  CHECK(event_as<closed_event>(events).reason == mqtt_errc::protocol_violation);
  CHECK(device.nothing_sent());
}

TEST_CASE("server: no CONNECT within connect_timeout closes", "[mqtt][session][server]") {
  session_options o;
  o.connect_timeout = 3s;
  scripted_peer device(role::server, o);
  CHECK(device.s().next_deadline() == time_point{} + 3s);
  // A slow client trickling a CONNECT does not extend the deadline.
  const auto bytes = encoded(device_connect());
  CHECK(device.send_bytes(bytes.substr(0, 5), 2s).empty());
  const auto events = device.advance(1s);
  CHECK(event_as<closed_event>(events).reason == mqtt_errc::connect_timeout);
}

TEST_CASE("server: 1.5 x keep-alive without a packet closes the connection", "[mqtt][session][server]") {
  scripted_peer device(role::server);
  establish(device, device_connect(10));  // accepted at 0 s
  CHECK(device.s().next_deadline() == time_point{} + 15s);

  // Any packet resets the clock.
  device.send(pingreq_packet{}, 8s);
  device.expect_sent<pingresp_packet>();
  CHECK(device.s().next_deadline() == time_point{} + 23s);
  device.send(publish_packet{"t", "x"}, 10s);  // at 18 s
  CHECK(device.s().next_deadline() == time_point{} + 33s);

  CHECK(device.advance_to(time_point{} + 32999ms).empty());
  const auto events = device.advance_to(time_point{} + 40s);
  CHECK(event_as<closed_event>(events).reason == mqtt_errc::keep_alive_timeout);
  CHECK(device.elapsed() == 40s);
  CHECK(device.s().closing());
  CHECK(device.nothing_sent());
}

TEST_CASE("server: the keep-alive factor and override are configurable", "[mqtt][session][server]") {
  session_options o;
  o.keep_alive_factor = 2.0;
  scripted_peer device(role::server, o);
  device.send(device_connect(5));
  // AWS raises keep-alives below 30 s to 30 s.
  REQUIRE_FALSE(device.s().accept(device.now(), accept_params{false, std::uint16_t{30}}));
  CHECK(device.s().keep_alive() == 30);
  CHECK(device.s().next_deadline() == time_point{} + 60s);

  scripted_peer no_keep_alive(role::server);
  establish(no_keep_alive, device_connect(0));
  CHECK_FALSE(no_keep_alive.s().next_deadline());
  CHECK(no_keep_alive.advance(24h).empty());
}

TEST_CASE("server: QoS 0 and 1 publishes are delivered, QoS 1 acknowledged", "[mqtt][session][server]") {
  scripted_peer device(role::server);
  establish(device);

  auto events = device.send(publish_packet{"$aws/things/thing-7/shadow/update", "{\"state\":{}}",
                                           qos::at_least_once, false, false, 42});
  const auto& p = event_as<publish_packet>(events);
  CHECK(p.topic == "$aws/things/thing-7/shadow/update");
  CHECK(p.packet_id == 42);
  CHECK(device.expect_sent<puback_packet>().packet_id == 42);

  events = device.send(publish_packet{"devices/thing-7/messages/events/", "t=21"});
  CHECK(event_as<publish_packet>(events).qos == qos::at_most_once);
  CHECK(device.nothing_sent());
}

TEST_CASE("server: a QoS 2 publish surfaces unanswered, for the hub to decide", "[mqtt][session][server]") {
  scripted_peer device(role::server);
  establish(device);
  const auto events = device.send(publish_packet{"t", "x", qos::exactly_once, false, false, 9});
  const auto& p = event_as<publish_packet>(events);
  CHECK(p.qos == qos::exactly_once);
  CHECK(p.packet_id == 9);
  CHECK(device.nothing_sent());  // no PUBREC: AWS ignores it...
  CHECK(device.s().state() == session_state::connected);

  device.s().close();  // ...Azure closes the connection
  CHECK(device.s().closing());
  CHECK(device.s().close_reason() == mqtt_errc::application_close);
  CHECK_FALSE(device.s().next_deadline());
}

TEST_CASE("server: SUBSCRIBE is answered by suback() with per-filter codes", "[mqtt][session][server]") {
  scripted_peer device(role::server);
  establish(device);

  const subscribe_packet sub{7, {{"$iothub/twin/res/#", qos::at_most_once}, {"#", qos::at_least_once},
                                 {"$iothub/methods/POST/#", qos::exactly_once}}};
  const auto events = device.send(sub);
  CHECK(event_as<subscribe_packet>(events) == sub);
  CHECK(device.nothing_sent());

  const suback_code too_few[] = {suback_code::granted_qos0};
  CHECK(device.s().suback(7, too_few, device.now()) == mqtt_errc::bad_return_code);
  const suback_code codes[] = {suback_code::granted_qos0, suback_code::failure, suback_code::granted_qos1};
  CHECK(device.s().suback(8, codes, device.now()) == mqtt_errc::unknown_packet_id);
  REQUIRE_FALSE(device.s().suback(7, codes, device.now()));
  const auto ack = device.expect_sent<suback_packet>();
  CHECK(ack.packet_id == 7);
  CHECK(ack.return_codes == std::vector<suback_code>(std::begin(codes), std::end(codes)));
  CHECK(device.s().suback(7, codes, device.now()) == mqtt_errc::unknown_packet_id);  // answered once
}

TEST_CASE("server: UNSUBSCRIBE is answered at once, PINGREQ too", "[mqtt][session][server]") {
  scripted_peer device(role::server);
  establish(device);
  const auto events = device.send(unsubscribe_packet{12, {"a/+", "b/#"}});
  CHECK(event_as<unsubscribe_packet>(events).filters == std::vector<std::string_view>{"a/+", "b/#"});
  CHECK(device.expect_sent<unsuback_packet>().packet_id == 12);

  CHECK(device.send(pingreq_packet{}).empty());
  device.expect_sent<pingresp_packet>();
}

TEST_CASE("server: DISCONNECT closes cleanly", "[mqtt][session][server]") {
  scripted_peer device(role::server);
  establish(device);
  const auto events = device.send(disconnect_packet{});
  REQUIRE(events.size() == 1);
  CHECK(std::holds_alternative<disconnect_packet>(events[0]));
  CHECK(device.s().closing());
  CHECK_FALSE(device.s().close_reason());
}

TEST_CASE("server: packets meant for a client, or QoS 2 flow, close the connection", "[mqtt][session][server]") {
  for (const packet& p : std::vector<packet>{connack_packet{}, suback_packet{1, {suback_code::granted_qos0}},
                                             unsuback_packet{1}, pingresp_packet{}, pubrec_packet{1},
                                             pubrel_packet{1}, pubcomp_packet{1}}) {
    INFO(to_string(type_of(p)));
    scripted_peer device(role::server);
    establish(device);
    CHECK(event_as<closed_event>(device.send(p)).reason == mqtt_errc::protocol_violation);
  }
}

TEST_CASE("server: QoS 1 publishes to the device, with the in-flight cap", "[mqtt][session][server]") {
  session_options o;
  o.max_in_flight = 1;
  scripted_peer device(role::server, o);
  CHECK(device.s().publish("t", "x", qos::at_least_once, false, device.now()).error() == mqtt_errc::not_connected);
  establish(device);

  const auto first = device.s().publish("$iothub/twin/PATCH/properties/desired/?$version=2", "{}",
                                        qos::at_least_once, false, device.now());
  const auto second = device.s().publish("$iothub/methods/POST/reboot/?$rid=1", "{}", qos::at_least_once, false,
                                         device.now());
  REQUIRE(first);
  REQUIRE(second);
  CHECK(device.expect_sent<publish_packet>().packet_id == *first);
  CHECK(device.nothing_sent());
  CHECK(event_as<puback_packet>(device.send(puback_packet{*first})).packet_id == *first);
  CHECK(device.expect_sent<publish_packet>().packet_id == *second);

  // Client-only calls are refused.
  CHECK(device.s().connect(device_connect(), device.now()) == mqtt_errc::wrong_role);
  CHECK(device.s().disconnect(device.now()) == mqtt_errc::wrong_role);
  CHECK(device.s().unsubscribe({}, device.now()).error() == mqtt_errc::wrong_role);
}

TEST_CASE("server: packets after CONNECT wait for the decision", "[mqtt][session][server]") {
  scripted_peer device(role::server);
  // A client may send SUBSCRIBE right behind CONNECT, before CONNACK.
  const auto events = device.send_bytes(encoded(device_connect()) + encoded(subscribe_packet{1, {{"a", qos::at_most_once}}}));
  REQUIRE(events.size() == 1);
  CHECK(std::holds_alternative<connect_packet>(events[0]));
  CHECK(device.unconsumed() > 0);

  REQUIRE_FALSE(device.s().accept(device.now()));
  const auto more = device.resume();
  CHECK(event_as<subscribe_packet>(more).packet_id == 1);
  CHECK(device.unconsumed() == 0);
}

TEST_CASE("a client session and a server session talk to each other", "[mqtt][session]") {
  auto now = time_point{};
  session client(role::client, now);
  session server(role::server, now);

  // The I/O layers: each side's output becomes the other's input, with a read buffer that keeps
  // what was not consumed.
  std::string to_server;
  std::string to_client;
  std::vector<std::string> log;
  const auto pump = [&](session& from, std::string& wire, session& to, auto&& on_event) {
    from.take_output(wire);
    for (;;) {
      auto step = to.on_bytes(wire, now);
      if (step.consumed == 0 && std::holds_alternative<std::monostate>(step.event)) break;
      on_event(step.event);
      wire.erase(0, step.consumed);
      if (step.consumed == 0) break;
    }
  };
  const auto server_app = [&](session_event& e) {
    if (auto* c = std::get_if<connect_packet>(&e)) {
      log.push_back("server: CONNECT " + std::string(c->client_id));
      REQUIRE_FALSE(server.accept(now));
    } else if (auto* s = std::get_if<subscribe_packet>(&e)) {
      log.push_back("server: SUBSCRIBE " + std::string(s->subscriptions[0].filter));
      const suback_code codes[] = {suback_code::granted_qos1};
      REQUIRE_FALSE(server.suback(s->packet_id, codes, now));
      REQUIRE(server.publish("$aws/things/t/shadow/update/delta", "{\"state\":{\"on\":true}}", qos::at_least_once,
                             false, now));
    } else if (auto* a = std::get_if<puback_packet>(&e)) {
      log.push_back("server: PUBACK " + std::to_string(a->packet_id));
    }
  };
  const auto client_app = [&](session_event& e) {
    if (std::holds_alternative<connack_packet>(e)) {
      log.push_back("client: CONNACK");
      const subscription subs[] = {{"$aws/things/t/shadow/update/delta", qos::at_least_once}};
      REQUIRE(client.subscribe(subs, now));
    } else if (std::holds_alternative<suback_packet>(e)) {
      log.push_back("client: SUBACK");
    } else if (auto* p = std::get_if<publish_packet>(&e)) {
      log.push_back("client: PUBLISH " + std::string(p->payload));
    }
  };

  connect_packet c;
  c.client_id = "t";
  c.keep_alive = 30;
  REQUIRE_FALSE(client.connect(c, now));
  for (int round = 0; round < 5; ++round) {
    now += 1ms;
    pump(client, to_server, server, server_app);
    pump(server, to_client, client, client_app);
  }
  CHECK(log == std::vector<std::string>{"server: CONNECT t", "client: CONNACK", "server: SUBSCRIBE $aws/things/t/shadow/update/delta",
                                        "client: SUBACK", "client: PUBLISH {\"state\":{\"on\":true}}",
                                        "server: PUBACK 1"});
  CHECK(server.in_flight() == 0);
  CHECK(to_server.empty());
  CHECK(to_client.empty());
}

TEST_CASE("a session object stays small", "[mqtt][session]") {
  // ~20,000 per process: the session's own footprint, without the heap its strings and vectors
  // use while packets are queued.
  WARN("sizeof(twinfleet::mqtt::session) = " << sizeof(session) << " bytes");
  CHECK(sizeof(session) <= 192);
}

TEST_CASE("server: the keep-alive limit falls on the grid, up to one step late", "[mqtt][session][server]") {
  // The last packet from the client at 2.345 s, keep-alive 10 s: 1.5 x gives 17.345 s, which the
  // default 100 ms grid moves up to 17.4 s; never earlier than the protocol's limit.
  scripted_peer device(role::server);
  establish(device, device_connect(10));
  device.send(pingreq_packet{}, 2345ms);
  device.expect_sent<pingresp_packet>();
  CHECK(device.s().next_deadline() == time_point{} + 17400ms);
  CHECK(device.advance_to(time_point{} + 17399ms).empty());
  const auto events = device.advance_to(time_point{} + 17400ms);
  CHECK(event_as<closed_event>(events).reason == mqtt_errc::keep_alive_timeout);

  session_options exact;
  exact.keep_alive_grid = 0ms;
  scripted_peer precise(role::server, exact);
  establish(precise, device_connect(10));
  precise.send(pingreq_packet{}, 2345ms);
  CHECK(precise.s().next_deadline() == time_point{} + 17345ms);
}
