// The client role of the sans-I/O session against a scripted broker on virtual time.
#include <twinfleet/mqtt/session.hpp>

#include "mqtt_test_util.hpp"

#include <catch2/catch.hpp>

using namespace twinfleet::mqtt;
using namespace std::chrono_literals;
using twinfleet::mqtt::test::event_as;
using twinfleet::mqtt::test::scripted_peer;
using twinfleet::mqtt::test::to_hex;

namespace {

connect_packet device_connect(std::uint16_t keep_alive = 60, bool clean_session = true) {
  connect_packet c;
  c.client_id = "thermo-00001";
  c.keep_alive = keep_alive;
  c.clean_session = clean_session;
  c.username = "hub.example/thermo-00001/?api-version=2021-04-12";
  c.password = "SharedAccessSignature sr=x&sig=y&se=1";
  return c;
}

// A broker that has accepted the client: CONNECT seen, CONNACK 0 delivered.
void establish(scripted_peer& broker, const connect_packet& c = device_connect(), bool session_present = false) {
  REQUIRE_FALSE(broker.s().connect(c, broker.now()));
  CHECK(broker.expect_sent<connect_packet>() == c);
  const auto events = broker.send(connack_packet{session_present, connect_return_code::accepted}, 5ms);
  REQUIRE(events.size() == 1);
  CHECK(event_as<connack_packet>(events).return_code == connect_return_code::accepted);
  REQUIRE(broker.s().state() == session_state::connected);
}

session_options options_with(std::uint16_t max_in_flight, std::uint16_t max_queued = 1024) {
  session_options o;
  o.max_in_flight = max_in_flight;
  o.max_queued = max_queued;
  return o;
}

}  // namespace

TEST_CASE("client: CONNECT, then CONNACK accepted connects", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  CHECK(broker.s().state() == session_state::idle);
  CHECK_FALSE(broker.s().next_deadline());

  const auto c = device_connect(30);
  REQUIRE_FALSE(broker.s().connect(c, broker.now()));
  CHECK(broker.s().state() == session_state::connecting);
  CHECK(broker.expect_sent<connect_packet>() == c);
  CHECK(broker.s().next_deadline() == broker.now() + 10s);  // connect_timeout

  const auto events = broker.send(connack_packet{true, connect_return_code::accepted}, 3ms);
  REQUIRE(events.size() == 1);
  CHECK(event_as<connack_packet>(events).session_present);
  CHECK(broker.s().state() == session_state::connected);
  CHECK(broker.s().keep_alive() == 30);
  CHECK(broker.nothing_sent());

  CHECK(broker.s().connect(c, broker.now()) == mqtt_errc::already_connected);
}

TEST_CASE("client: a refused CONNACK closes with connection_refused", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  REQUIRE_FALSE(broker.s().connect(device_connect(), broker.now()));
  const auto events = broker.send(connack_packet{false, connect_return_code::not_authorized});
  REQUIRE(events.size() == 1);
  CHECK(event_as<connack_packet>(events).return_code == connect_return_code::not_authorized);
  CHECK(broker.s().closing());
  CHECK(broker.s().close_reason() == mqtt_errc::connection_refused);
  CHECK_FALSE(broker.s().next_deadline());
}

TEST_CASE("client: anything but CONNACK first is a protocol violation", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  REQUIRE_FALSE(broker.s().connect(device_connect(), broker.now()));
  const auto events = broker.send(publish_packet{"a", "x"});
  REQUIRE(events.size() == 1);
  CHECK(event_as<closed_event>(events).reason == mqtt_errc::protocol_violation);
  CHECK(broker.s().closing());
}

TEST_CASE("client: no CONNACK within connect_timeout closes", "[mqtt][session][client]") {
  session_options o;
  o.connect_timeout = 5s;
  scripted_peer broker(role::client, o);
  REQUIRE_FALSE(broker.s().connect(device_connect(), broker.now()));
  CHECK(broker.advance(4999ms).empty());
  const auto events = broker.advance(1ms);
  REQUIRE(events.size() == 1);
  CHECK(event_as<closed_event>(events).reason == mqtt_errc::connect_timeout);
  CHECK(broker.elapsed() == 5s);
}

TEST_CASE("client: a second CONNACK is a protocol violation", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  establish(broker);
  const auto events = broker.send(connack_packet{});
  CHECK(event_as<closed_event>(events).reason == mqtt_errc::protocol_violation);
}

TEST_CASE("client: PINGREQ after keep-alive of send silence, PINGRESP clears it", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  establish(broker, device_connect(10));  // CONNECT at 0 s, CONNACK at 5 ms

  // Keep-alive counts from the last packet sent (CONNECT at 0 s), not from CONNACK.
  CHECK(broker.s().next_deadline() == time_point{} + 10s);
  broker.advance_to(time_point{} + 9999ms);
  CHECK(broker.nothing_sent());
  broker.advance_to(time_point{} + 10s);
  broker.expect_sent<pingreq_packet>();
  CHECK(broker.s().next_deadline() == time_point{} + 20s);  // ping_timeout 0: the keep-alive

  CHECK(broker.send(pingresp_packet{}, 200ms).empty());
  CHECK(broker.s().next_deadline() == time_point{} + 20s);  // the next PINGREQ, 10 s after the last

  // Sending anything else resets the send-idle clock.
  broker.advance_to(time_point{} + 15s);
  REQUIRE(broker.s().publish("t", "x", qos::at_most_once, false, broker.now()));
  broker.expect_sent<publish_packet>();
  CHECK(broker.s().next_deadline() == time_point{} + 25s);
  broker.advance_to(time_point{} + 24s);
  CHECK(broker.nothing_sent());
  broker.advance_to(time_point{} + 25s);
  broker.expect_sent<pingreq_packet>();
}

TEST_CASE("client: no PINGRESP within ping_timeout closes with keep_alive_timeout", "[mqtt][session][client]") {
  session_options o;
  o.ping_timeout = 3s;
  scripted_peer broker(role::client, o);
  establish(broker, device_connect(10));
  broker.advance_to(time_point{} + 10s);
  broker.expect_sent<pingreq_packet>();
  CHECK(broker.s().next_deadline() == time_point{} + 13s);

  // Other traffic from the broker is no answer to the ping.
  broker.send(publish_packet{"t", "x"}, 1s);
  const auto events = broker.advance_to(time_point{} + 20s);
  REQUIRE(events.size() == 1);
  CHECK(event_as<closed_event>(events).reason == mqtt_errc::keep_alive_timeout);
  CHECK(broker.elapsed() >= 13s);
  CHECK(broker.s().closing());
  CHECK(broker.s().close_reason() == mqtt_errc::keep_alive_timeout);
  CHECK(broker.nothing_sent());
}

TEST_CASE("client: keep-alive 0 turns pings off", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  establish(broker, device_connect(0));
  CHECK_FALSE(broker.s().next_deadline());
  broker.advance(24h);
  CHECK(broker.nothing_sent());
}

TEST_CASE("client: QoS 1 publish stays in flight until its PUBACK", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  establish(broker);

  std::string payload = "{\"temperature\":21.5}";
  const auto id = broker.s().publish("devices/thermo-00001/messages/events/", payload, qos::at_least_once, false,
                                     broker.now());
  REQUIRE(id);
  CHECK(*id == 1);
  payload.assign("overwritten");  // the session keeps its own copy

  const auto sent = broker.expect_sent<publish_packet>();
  CHECK(sent.packet_id == 1);
  CHECK(sent.qos == qos::at_least_once);
  CHECK_FALSE(sent.dup);
  CHECK(sent.payload == "{\"temperature\":21.5}");
  CHECK(broker.s().in_flight() == 1);

  // An ack for something never sent changes nothing.
  CHECK(broker.send(puback_packet{77}).empty());
  CHECK(broker.s().in_flight() == 1);

  const auto events = broker.send(puback_packet{1}, 2ms);
  REQUIRE(events.size() == 1);
  CHECK(event_as<puback_packet>(events).packet_id == 1);
  CHECK(broker.s().in_flight() == 0);
  CHECK(broker.s().queued() == 0);

  // QoS 0 has no packet id and nothing to track.
  const auto id0 = broker.s().publish("t", "x", qos::at_most_once, true, broker.now());
  REQUIRE(id0);
  CHECK(*id0 == 0);
  const auto sent0 = broker.expect_sent<publish_packet>();
  CHECK(sent0.retain);
  CHECK(broker.s().in_flight() == 0);
}

TEST_CASE("client: beyond max_in_flight publishes queue, in order", "[mqtt][session][client]") {
  scripted_peer broker(role::client, options_with(2));
  establish(broker);

  for (int i = 1; i <= 5; ++i) {
    const auto id = broker.s().publish("t", std::to_string(i), qos::at_least_once, false, broker.now());
    REQUIRE(id);
    CHECK(*id == i);
  }
  CHECK(broker.expect_sent<publish_packet>().payload == "1");
  CHECK(broker.expect_sent<publish_packet>().payload == "2");
  CHECK(broker.nothing_sent());
  CHECK(broker.s().in_flight() == 2);
  CHECK(broker.s().queued() == 3);

  // Acks may come out of order (AWS does not promise order); each frees one slot.
  CHECK(event_as<puback_packet>(broker.send(puback_packet{2})).packet_id == 2);
  CHECK(broker.expect_sent<publish_packet>().payload == "3");
  CHECK(broker.nothing_sent());
  broker.send(puback_packet{1});
  CHECK(broker.expect_sent<publish_packet>().payload == "4");
  broker.send(puback_packet{3});
  CHECK(broker.expect_sent<publish_packet>().payload == "5");
  broker.send(puback_packet{4});
  broker.send(puback_packet{5});
  CHECK(broker.s().in_flight() == 0);
  CHECK(broker.s().queued() == 0);
  CHECK(broker.nothing_sent());
}

TEST_CASE("client: max_queued bounds the queue", "[mqtt][session][client]") {
  scripted_peer broker(role::client, options_with(1, 2));
  establish(broker);
  for (int i = 0; i < 3; ++i) REQUIRE(broker.s().publish("t", "x", qos::at_least_once, false, broker.now()));
  CHECK(broker.s().publish("t", "x", qos::at_least_once, false, broker.now()).error() == mqtt_errc::queue_full);
  // QoS 0 does not queue, so it is not limited.
  CHECK(broker.s().publish("t", "x", qos::at_most_once, false, broker.now()));
}

TEST_CASE("client: after reconnect without clean session, unacknowledged publishes are resent with DUP",
          "[mqtt][session][client]") {
  scripted_peer broker(role::client, options_with(2));
  establish(broker, device_connect(60, false));
  for (const char* payload : {"a", "b", "c"}) REQUIRE(broker.s().publish("t", payload, qos::at_least_once, false, broker.now()));
  CHECK(broker.expect_sent<publish_packet>().payload == "a");
  CHECK(broker.expect_sent<publish_packet>().payload == "b");

  // The connection drops before any PUBACK; "d" is published while offline.
  broker.s().on_connection_lost();
  CHECK(broker.s().state() == session_state::idle);
  REQUIRE(broker.s().publish("t", "d", qos::at_least_once, false, broker.now()));
  CHECK(broker.s().publish("t", "x", qos::at_most_once, false, broker.now()).error() == mqtt_errc::not_connected);
  CHECK(broker.s().in_flight() == 0);
  CHECK(broker.s().queued() == 4);

  REQUIRE_FALSE(broker.s().connect(device_connect(60, false), broker.now() + 1s));
  broker.expect_sent<connect_packet>();
  CHECK(broker.nothing_sent());  // nothing before CONNACK
  broker.send(connack_packet{true, connect_return_code::accepted}, 2s);

  const auto a = broker.expect_sent<publish_packet>();
  CHECK(a.payload == "a");
  CHECK(a.packet_id == 1);
  CHECK(a.dup);
  const auto b = broker.expect_sent<publish_packet>();
  CHECK(b.payload == "b");
  CHECK(b.packet_id == 2);
  CHECK(b.dup);
  CHECK(broker.nothing_sent());  // the in-flight cap still holds

  broker.send(puback_packet{1});
  const auto c = broker.expect_sent<publish_packet>();
  CHECK(c.payload == "c");
  CHECK(c.packet_id == 3);
  CHECK_FALSE(c.dup);  // never sent before
  broker.send(puback_packet{2});
  const auto d = broker.expect_sent<publish_packet>();
  CHECK(d.payload == "d");
  CHECK(d.packet_id == 4);
  CHECK_FALSE(d.dup);
}

TEST_CASE("client: reconnecting with clean session drops unacknowledged publishes", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  establish(broker, device_connect(60, false));
  REQUIRE(broker.s().publish("t", "a", qos::at_least_once, false, broker.now()));
  broker.expect_sent<publish_packet>();
  broker.s().on_connection_lost();

  REQUIRE_FALSE(broker.s().connect(device_connect(60, true), broker.now()));
  broker.expect_sent<connect_packet>();
  broker.send(connack_packet{});
  CHECK(broker.nothing_sent());
  CHECK(broker.s().in_flight() == 0);
  CHECK(broker.s().queued() == 0);
  // A late PUBACK for the dropped publish is ignored.
  CHECK(broker.send(puback_packet{1}).empty());
}

TEST_CASE("client: connect() after closing counts the old connection as lost", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  establish(broker, device_connect(60, false));
  // Published, then closed before the I/O layer took the output: the bytes never left.
  REQUIRE(broker.s().publish("t", "a", qos::at_least_once, false, broker.now()));
  broker.s().close();
  CHECK(broker.s().close_reason() == mqtt_errc::application_close);
  REQUIRE_FALSE(broker.s().connect(device_connect(60, false), broker.now()));
  CHECK_FALSE(broker.s().close_reason());
  broker.expect_sent<connect_packet>();
  broker.send(connack_packet{});
  // Resent with DUP: the session cannot know the bytes never reached the wire, and a DUP on a
  // first delivery is harmless (DUP says "may have been sent before").
  const auto p = broker.expect_sent<publish_packet>();
  CHECK(p.payload == "a");
  CHECK(p.dup);
}

TEST_CASE("client: QoS 1 published before the first connect goes out after CONNACK", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  REQUIRE(broker.s().publish("t", "early", qos::at_least_once, false, broker.now()));
  CHECK(broker.nothing_sent());
  establish(broker, device_connect(60, false));
  const auto p = broker.expect_sent<publish_packet>();
  CHECK(p.payload == "early");
  CHECK_FALSE(p.dup);
}

TEST_CASE("client: QoS 2 is refused at the API", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  establish(broker);
  CHECK(broker.s().publish("t", "x", qos::exactly_once, false, broker.now()).error() == mqtt_errc::qos_not_supported);
  const subscription subs[] = {{"a/#", qos::exactly_once}};
  CHECK(broker.s().subscribe(subs, broker.now()).error() == mqtt_errc::qos_not_supported);
  CHECK(broker.nothing_sent());
}

TEST_CASE("client: invalid topics are refused at the API", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  establish(broker);
  CHECK(broker.s().publish("a/+", "x", qos::at_most_once, false, broker.now()).error() == mqtt_errc::bad_topic);
  CHECK(broker.s().publish("", "x", qos::at_least_once, false, broker.now()).error() == mqtt_errc::bad_topic);
  const subscription subs[] = {{"a/#/b", qos::at_most_once}};
  CHECK(broker.s().subscribe(subs, broker.now()).error() == mqtt_errc::bad_topic_filter);
  CHECK(broker.s().subscribe({}, broker.now()).error() == mqtt_errc::no_topic_filters);
  CHECK(broker.nothing_sent());
  CHECK(broker.s().in_flight() == 0);
}

TEST_CASE("client: incoming publishes are delivered, QoS 1 acknowledged", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  establish(broker);

  auto events = broker.send(publish_packet{"$iothub/twin/PATCH/properties/desired/?$version=2", "{\"target\":22}",
                                           qos::at_most_once, false, false, 0});
  CHECK(event_as<publish_packet>(events).payload == "{\"target\":22}");
  CHECK(broker.nothing_sent());

  events = broker.send(publish_packet{"c2d", "hello", qos::at_least_once, false, true, 321});
  const auto& p = event_as<publish_packet>(events);
  CHECK(p.topic == "c2d");
  CHECK(p.dup);
  CHECK(broker.expect_sent<puback_packet>().packet_id == 321);

  // QoS 2 was never subscribed to: the broker broke the protocol.
  events = broker.send(publish_packet{"t", "x", qos::exactly_once, false, false, 5});
  CHECK(event_as<closed_event>(events).reason == mqtt_errc::protocol_violation);
  CHECK(broker.nothing_sent());
}

TEST_CASE("client: SUBSCRIBE and UNSUBSCRIBE get their answers", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  establish(broker);

  const subscription subs[] = {{"$iothub/twin/res/#", qos::at_most_once},
                               {"$iothub/methods/POST/#", qos::at_least_once}};
  const auto id = broker.s().subscribe(subs, broker.now());
  REQUIRE(id);
  const auto sent = broker.expect_sent<subscribe_packet>();
  CHECK(sent.packet_id == *id);
  CHECK(sent.subscriptions == std::vector<subscription>(std::begin(subs), std::end(subs)));

  auto events = broker.send(suback_packet{*id, {suback_code::granted_qos0, suback_code::failure}});
  const auto& ack = event_as<suback_packet>(events);
  CHECK(ack.packet_id == *id);
  CHECK(ack.return_codes == std::vector<suback_code>{suback_code::granted_qos0, suback_code::failure});

  const std::string_view filters[] = {"$iothub/twin/res/#"};
  const auto unsub_id = broker.s().unsubscribe(filters, broker.now());
  REQUIRE(unsub_id);
  CHECK(*unsub_id != *id);
  CHECK(broker.expect_sent<unsubscribe_packet>().filters == std::vector<std::string_view>{"$iothub/twin/res/#"});
  events = broker.send(unsuback_packet{*unsub_id});
  CHECK(event_as<unsuback_packet>(events).packet_id == *unsub_id);
}

TEST_CASE("client: a SUBACK with the wrong number of codes is a protocol violation", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  establish(broker);
  const subscription subs[] = {{"a", qos::at_most_once}, {"b", qos::at_most_once}};
  const auto id = broker.s().subscribe(subs, broker.now());
  REQUIRE(id);
  const auto events = broker.send(suback_packet{*id, {suback_code::granted_qos0}});
  CHECK(event_as<closed_event>(events).reason == mqtt_errc::protocol_violation);
}

TEST_CASE("client: DISCONNECT closes cleanly", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  CHECK(broker.s().disconnect(broker.now()) == mqtt_errc::not_connected);
  establish(broker);
  REQUIRE_FALSE(broker.s().disconnect(broker.now()));
  broker.expect_sent<disconnect_packet>();
  CHECK(broker.s().closing());
  CHECK_FALSE(broker.s().close_reason());
  // Once closing, input is no longer read.
  CHECK(broker.send(publish_packet{"t", "x"}).empty());
  CHECK(broker.unconsumed() > 0);
  broker.s().on_connection_lost();
  CHECK(broker.s().state() == session_state::idle);
}

TEST_CASE("client: server calls and server packets are refused", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  CHECK(broker.s().accept(broker.now()) == mqtt_errc::wrong_role);
  CHECK(broker.s().refuse(connect_return_code::not_authorized, broker.now()) == mqtt_errc::wrong_role);
  CHECK(broker.s().suback(1, {}, broker.now()) == mqtt_errc::wrong_role);
  const subscription subs[] = {{"a", qos::at_most_once}};
  CHECK(broker.s().subscribe(subs, broker.now()).error() == mqtt_errc::not_connected);

  establish(broker);
  CHECK(event_as<closed_event>(broker.send(pingreq_packet{})).reason == mqtt_errc::protocol_violation);
}

TEST_CASE("client: malformed input closes with the decode error", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  establish(broker);
  const auto events = broker.send_bytes(twinfleet::mqtt::test::from_hex("62 02 00 01"));  // PUBREL is fine...
  CHECK(event_as<closed_event>(events).reason == mqtt_errc::protocol_violation);  // ...but not to a client

  scripted_peer other(role::client);
  establish(other);
  CHECK(event_as<closed_event>(other.send_bytes(twinfleet::mqtt::test::from_hex("30 02 00 00"))).reason ==
        mqtt_errc::bad_topic);
}

TEST_CASE("client: an oversized packet is refused from its header", "[mqtt][session][client]") {
  session_options o;
  o.max_packet_size = 1000;
  scripted_peer broker(role::client, o);
  establish(broker);
  // Header of a PUBLISH announcing 2,000 bytes; the body never needs to arrive.
  const auto events = broker.send_bytes(twinfleet::mqtt::test::from_hex("30 D0 0F"));
  CHECK(event_as<closed_event>(events).reason == mqtt_errc::packet_too_large);
}

TEST_CASE("client: partial packets are not consumed and say what they need", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  REQUIRE_FALSE(broker.s().connect(device_connect(), broker.now()));
  const std::string connack = twinfleet::mqtt::test::encoded(connack_packet{});
  const auto step = broker.s().on_bytes(std::string_view(connack).substr(0, 3), broker.now());
  CHECK(step.consumed == 0);
  CHECK(step.needed == 4);
  CHECK(std::holds_alternative<std::monostate>(step.event));
  CHECK(broker.s().state() == session_state::connecting);
}

TEST_CASE("client: packet ids wrap after 65535 and skip ids in flight", "[mqtt][session][client]") {
  scripted_peer broker(role::client, options_with(8));
  establish(broker);
  auto& s = broker.s();

  // Id 1 stays in flight; 2..65535 come and go.
  REQUIRE(*s.publish("t", "held", qos::at_least_once, false, broker.now()) == 1);
  for (std::uint32_t expected = 2; expected <= 65535; ++expected) {
    const auto id = s.publish("t", "x", qos::at_least_once, false, broker.now());
    REQUIRE(id);
    REQUIRE(*id == expected);
    std::string out;
    s.take_output(out);
    const auto ack = twinfleet::mqtt::test::encoded(puback_packet{*id});
    REQUIRE(std::holds_alternative<puback_packet>(s.on_bytes(ack, broker.now()).event));
  }
  // Wrapping: 0 is never used, and 1 is still in flight.
  CHECK(*s.publish("t", "x", qos::at_least_once, false, broker.now()) == 2);

  // A SUBSCRIBE awaiting its SUBACK holds its id too.
  const subscription subs[] = {{"a", qos::at_most_once}};
  CHECK(*s.subscribe(subs, broker.now()) == 3);
  CHECK(*s.publish("t", "x", qos::at_least_once, false, broker.now()) == 4);
}

TEST_CASE("client: take_output hands the bytes over and keeps nothing", "[mqtt][session][client]") {
  scripted_peer broker(role::client);
  auto& s = broker.s();
  REQUIRE_FALSE(s.connect(device_connect(), broker.now()));
  REQUIRE(s.has_output());
  const std::string expected(s.output());

  std::string buffer;
  s.take_output(buffer);
  CHECK(buffer == expected);
  CHECK_FALSE(s.has_output());

  // Appended when the I/O layer's buffer still holds bytes.
  (void)s.on_bytes(twinfleet::mqtt::test::encoded(connack_packet{}), broker.now());
  REQUIRE(s.state() == session_state::connected);
  REQUIRE(s.publish("t", "x", qos::at_most_once, false, broker.now()));
  s.take_output(buffer);
  CHECK(buffer.size() > expected.size());
  CHECK(buffer.substr(0, expected.size()) == expected);
}

TEST_CASE("client: the keep-alive deadline falls on the grid, up to one step early, and exactly without one",
          "[mqtt][session][client]") {
  // CONNECT at 1.234 s with keep-alive 10 s and connect_timeout 10 s: the CONNACK wait and then
  // the PINGREQ are due at `due`. The CONNACK wait ends on the grid as well, so that the
  // keep-alive deadline after CONNACK never comes before it (the connection's wait stays armed).
  const auto connect_at_1234 = [](scripted_peer& broker, time_point due) {
    broker.advance_to(time_point{} + 1234ms);
    REQUIRE_FALSE(broker.s().connect(device_connect(10), broker.now()));
    CHECK(broker.s().next_deadline() == due);
    broker.expect_sent<connect_packet>();
    REQUIRE(broker.send(connack_packet{false, connect_return_code::accepted}, 5ms).size() == 1);
    CHECK(broker.s().next_deadline() == due);
  };
  // With the default 100 ms grid the PINGREQ is due at 11.2 s, not 11.234 s, so that many
  // connections share one timer expiry.
  scripted_peer broker(role::client);
  connect_at_1234(broker, time_point{} + 11200ms);
  broker.advance_to(time_point{} + 11199ms);
  CHECK(broker.nothing_sent());
  broker.advance_to(time_point{} + 11200ms);
  broker.expect_sent<pingreq_packet>();  // 34 ms early: the interval stays under the keep-alive

  session_options exact;
  exact.keep_alive_grid = 0ms;
  scripted_peer precise(role::client, exact);
  connect_at_1234(precise, time_point{} + 11234ms);

  // A step as long as the keep-alive is no grid at all (a ping would be a whole period early).
  session_options coarse;
  coarse.keep_alive_grid = 2000ms;
  scripted_peer slow(role::client, coarse);
  slow.advance_to(time_point{} + 1234ms);
  establish(slow, device_connect(1));
  CHECK(slow.s().next_deadline() == time_point{} + 2234ms);
}
