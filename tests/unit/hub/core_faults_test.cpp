// The hub's fault injection and throttling (faults.hpp; PROTOCOLS.md C3, A14, B7), driven
// through fake links on virtual time, and their JSON forms and admin endpoint.
#include <twinfleet/auth/sas.hpp>
#include <twinfleet/hub/core.hpp>
#include <twinfleet/hub/faults.hpp>

#include "fake_link.hpp"
#include "json_test_util.hpp"
#include "rest_test_util.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <future>
#include <memory>

using namespace twinfleet;
using namespace std::chrono_literals;
using hub::hub_core;
using hub::outbound_kind;
using test::at;
using test::fake_link;
using test::jv;
namespace json = boost::json;

namespace {

constexpr auto accepted = mqtt::connect_return_code::accepted;

struct azure_device {
  std::string id;
  std::string username;
  std::string password;
  mqtt::connect_packet packet() const {
    mqtt::connect_packet p;
    p.keep_alive = 180;
    p.client_id = id;
    p.username = username;
    p.password = password;
    return p;
  }
};

azure_device azure(const hub_core& core, std::string id) {
  const auto expiry = std::chrono::floor<std::chrono::seconds>(at(36000));
  auto password =
      auth::create_sas_token({"localhost/devices/" + id, core.device_key_for(id), expiry, std::nullopt, auth::hex_case::upper})
          .value();
  std::string username = "localhost/" + id + "/?api-version=2021-04-12";
  return {std::move(id), std::move(username), std::move(password)};
}

mqtt::connect_packet aws_connect(std::string_view client_id) {
  mqtt::connect_packet p;
  p.client_id = client_id;
  p.keep_alive = 300;
  return p;
}

hub::hub_settings open_settings() {
  hub::hub_settings s;
  s.auth = hub::auth_mode::open;
  s.group_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  return s;
}

mqtt::publish_packet pub(std::string_view topic, std::string_view payload = {}) {
  mqtt::publish_packet p;
  p.topic = topic;
  p.payload = payload;
  p.qos = mqtt::qos::at_least_once;
  p.packet_id = 1;
  return p;
}

void azure_up(hub_core& core, fake_link& link, const azure_device& d, double t = 0) {
  REQUIRE(core.on_connect(link, d.packet(), at(t)) == accepted);
  const mqtt::subscription filters[] = {{"$iothub/twin/res/#", mqtt::qos::at_most_once},
                                        {"$iothub/twin/PATCH/properties/desired/#", mqtt::qos::at_least_once},
                                        {"$iothub/methods/POST/#", mqtt::qos::at_most_once}};
  (void)core.on_subscribe(link, filters, at(t));
}

void aws_up(hub_core& core, fake_link& link, std::string_view client, std::string_view thing, double t = 0) {
  REQUIRE(core.on_connect(link, aws_connect(client), at(t)) == accepted);
  const std::string base = "$aws/things/" + std::string(thing) + "/shadow/update/";
  const std::string accepted_topic = base + "accepted";
  const std::string rejected_topic = base + "rejected";
  const std::string delta_topic = base + "delta";
  const std::string documents_topic = base + "documents";
  const mqtt::subscription filters[] = {{accepted_topic, mqtt::qos::at_least_once},
                                        {rejected_topic, mqtt::qos::at_least_once},
                                        {delta_topic, mqtt::qos::at_least_once},
                                        {documents_topic, mqtt::qos::at_least_once}};
  (void)core.on_subscribe(link, filters, at(t));
}

void write_desired(hub_core& core, std::string_view id, std::string_view desired, double t) {
  auto r = core.azure_update_twin(id, json::object{{"properties", json::object{{"desired", jv(desired)}}}}, {}, false,
                                  at(t));
  REQUIRE(r.has_value());
}

std::int64_t version_of(const test::sent_message& m) {
  const auto pos = m.topic.find("$version=");
  REQUIRE(pos != std::string::npos);
  return std::stoll(m.topic.substr(pos + 9));
}

// Runs on_timer at every deadline up to `until`, as the I/O shell's timer would.
void run_until(hub_core& core, double until) {
  for (int guard = 0; guard < 100000; ++guard) {
    auto next = core.next_deadline();
    if (!next || *next > at(until)) break;
    core.on_timer(*next);
  }
  core.on_timer(at(until));
}

hub::fault_settings faults_from(std::string_view text) {
  auto f = hub::fault_settings_from_json(jv(text));
  REQUIRE(f.has_value());
  return *f;
}

std::size_t kind(outbound_kind k) { return static_cast<std::size_t>(k); }
std::size_t cls(hub::throttle_class c) { return static_cast<std::size_t>(c); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// settings

TEST_CASE("faults: the JSON form round-trips and names the key path of every mistake", "[hub][faults]") {
  const auto f = faults_from(R"({"seed":7,"delivery":[{"kinds":["azure.desired_patch","aws.delta"],"delay_ms":20,
      "jitter_ms":5,"drop":0.1,"duplicate":0.2,"reorder":0.3,"reorder_hold_ms":40}],"aws_swap_accepted_delta":0.5,
      "azure_skip_desired_versions":0.25,"azure_skip_max":4,"subscription_activation_delay_ms":300,
      "disconnects_per_second":2,"disconnect_schedule":[{"at_ms":5000,"fraction":0.5,"backend":"aws"},{"at_ms":1000,"fraction":0.1}]})");
  CHECK(f.seed == 7);
  REQUIRE(f.delivery.size() == 1);
  CHECK(f.delivery[0].kinds == std::vector{outbound_kind::azure_desired_patch, outbound_kind::aws_delta});
  CHECK(f.delivery[0].delay == 20ms);
  CHECK(f.delivery[0].jitter == 5ms);
  CHECK(f.delivery[0].reorder_hold == 40ms);
  CHECK(f.subscription_activation_delay == 300ms);
  REQUIRE(f.disconnect_schedule.size() == 2);
  CHECK(f.disconnect_schedule[0].at == 1000ms);  // sorted by time
  CHECK(f.disconnect_schedule[1].backend == "aws");
  const auto again = hub::fault_settings_from_json(hub::to_json(f));
  REQUIRE(again.has_value());
  CHECK(hub::to_json(*again) == hub::to_json(f));

  auto error_of = [](std::string_view text) {
    auto r = hub::fault_settings_from_json(jv(text));
    REQUIRE_FALSE(r.has_value());
    return r.error().message;
  };
  CHECK(error_of(R"({"delivery":[{"drop":1.5}]})") == "delivery[0].drop: must lie in [0, 1]");
  CHECK(error_of(R"({"delivery":[{},{"kinds":["azure.nope"]}]})").starts_with("delivery[1].kinds: unknown message kind \"azure.nope\""));
  CHECK(error_of(R"({"dleay_ms":5})") == "dleay_ms: unknown key");
  CHECK(error_of(R"({"disconnect_schedule":[{"fraction":0.5}]})") == "disconnect_schedule[0].at_ms: is required");
  CHECK(error_of(R"({"seed":-1})") == "seed: must be a non-negative integer");
  CHECK(error_of(R"([1])") == "faults: must be a JSON object");
}

TEST_CASE("throttle: the Azure tier presets follow the A14 table", "[hub][throttle]") {
  auto s1 = hub::azure_tier_preset("S1", 1);
  REQUIRE(s1.has_value());
  CHECK(s1->azure_twin_reads.per_second == 100);
  CHECK(s1->azure_twin_updates.per_second == 50);
  CHECK(s1->azure_connects.per_second == 100);
  CHECK(s1->azure_methods.per_second == 40);
  auto s2 = hub::azure_tier_preset("S2", 20);
  REQUIRE(s2.has_value());
  CHECK(s2->azure_twin_reads.per_second == 200);   // max(100, 10/unit)
  CHECK(s2->azure_twin_updates.per_second == 100); // max(50, 5/unit)
  CHECK(s2->azure_connects.per_second == 2400);
  auto s3 = hub::azure_tier_preset("S3", 2);
  REQUIRE(s3.has_value());
  CHECK(s3->azure_twin_updates.per_second == 500);
  CHECK(s3->azure_twin_updates.queue == 5000);  // ten seconds of the rate
  CHECK_FALSE(hub::azure_tier_preset("S9", 1).has_value());
  CHECK_FALSE(hub::azure_tier_preset("S1", 0).has_value());

  auto t = hub::throttle_settings_from_json(jv(R"({"azure_tier":"S1","azure_twin_updates":{"per_second":5,"burst":1,"queue":3}})"));
  REQUIRE(t.has_value());
  CHECK(t->azure_twin_reads.per_second == 100);
  CHECK(t->azure_twin_updates.per_second == 5);
  CHECK(t->azure_twin_updates.queue == 3);
  auto bad = hub::throttle_settings_from_json(jv(R"({"azure_twin_updates":{"per_sec":5}})"));
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message == "azure_twin_updates.per_sec: unknown key");
  CHECK_FALSE(hub::throttle_settings{}.any());
}

// ---------------------------------------------------------------------------------------------
// delivery faults

TEST_CASE("faults: drop and duplicate act on the kinds their rule selects, and are counted", "[hub][faults]") {
  auto settings = open_settings();
  settings.faults = faults_from(R"({"delivery":[{"kinds":["azure.desired_patch"],"drop":1}]})");
  hub_core core(settings);
  fake_link device;
  const auto d = azure(core, "dev1");
  azure_up(core, device, d);
  write_desired(core, "dev1", R"({"a":1})", 1);
  CHECK(device.take().empty());
  CHECK(core.counters().faults_dropped[kind(outbound_kind::azure_desired_patch)] == 1);
  // Twin responses are not selected: a GET is still answered.
  core.on_publish(device, pub("$iothub/twin/GET/?$rid=1"), at(2));
  auto sent = device.take();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].topic == "$iothub/twin/res/200/?$rid=1");

  core.set_faults(faults_from(R"({"delivery":[{"duplicate":1}]})"), at(3));
  write_desired(core, "dev1", R"({"a":2})", 4);
  sent = device.take();
  REQUIRE(sent.size() == 2);
  CHECK(sent[0].topic == sent[1].topic);
  CHECK(sent[0].payload == sent[1].payload);
  CHECK(core.counters().faults_duplicated[kind(outbound_kind::azure_desired_patch)] == 1);
  CHECK(core.metrics_text().find(
            R"(twinfleet_hub_faults_total{backend="azure",operation="desired_patch",outcome="duplicated"} 1)") !=
        std::string::npos);
}

TEST_CASE("faults: a delayed message leaves at its time, and never to a later connection", "[hub][faults]") {
  auto settings = open_settings();
  settings.faults = faults_from(R"({"delivery":[{"kinds":["azure.desired_patch"],"delay_ms":200}]})");
  hub_core core(settings);
  fake_link device;
  const auto d = azure(core, "dev1");
  azure_up(core, device, d);
  write_desired(core, "dev1", R"({"a":1})", 1);
  CHECK(device.take().empty());
  REQUIRE(core.next_deadline() == at(1.2));
  core.on_timer(at(1.1));
  CHECK(device.take().empty());
  core.on_timer(at(1.2));
  auto sent = device.take();
  REQUIRE(sent.size() == 1);
  CHECK(version_of(sent[0]) == 2);
  CHECK(core.counters().faults_delayed[kind(outbound_kind::azure_desired_patch)] == 1);

  // Written, then the device reconnects on a new connection before the delay ends: the old
  // connection's message is not delivered to the new one.
  write_desired(core, "dev1", R"({"a":2})", 2);
  core.on_disconnect(device, at(2.05));
  fake_link again;
  azure_up(core, again, d, 2.1);
  run_until(core, 3);
  CHECK(again.take().empty());
  CHECK(device.take().empty());
}

TEST_CASE("faults: reorder holds messages back so that later ones overtake them, reproducibly", "[hub][faults]") {
  auto run = [](std::uint64_t seed) {
    auto settings = open_settings();
    settings.faults = faults_from(R"({"delivery":[{"kinds":["azure.desired_patch"],"reorder":0.3,"reorder_hold_ms":50}]})");
    settings.faults.seed = seed;
    hub_core core(settings);
    fake_link device;
    const auto d = azure(core, "dev1");
    azure_up(core, device, d);
    for (int i = 0; i < 20; ++i) {
      write_desired(core, "dev1", R"({"n":)" + std::to_string(i) + "}", 1 + i * 0.01);
      run_until(core, 1 + i * 0.01);
    }
    run_until(core, 5);
    std::vector<std::int64_t> versions;
    for (const auto& m : device.take()) versions.push_back(version_of(m));
    return std::pair{versions, core.counters().faults_reordered[kind(outbound_kind::azure_desired_patch)]};
  };
  const auto [versions, reordered] = run(42);
  REQUIRE(versions.size() == 20);
  auto sorted = versions;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) CHECK(sorted[i] == static_cast<std::int64_t>(i) + 2);
  CHECK(versions != sorted);  // something overtook something
  CHECK(reordered > 0);
  CHECK(reordered < 20);
  CHECK(run(42).first == versions);  // the same seed, the same order
}

TEST_CASE("faults: reported_reorder holds reported writes back so that later ones overtake them", "[hub][faults]") {
  const auto f = faults_from(R"({"reported_reorder":0.25,"reported_reorder_hold_ms":80})");
  CHECK(f.reported_reorder == 0.25);
  CHECK(f.reported_reorder_hold == 80ms);
  CHECK(f.any());
  CHECK(hub::to_json(*hub::fault_settings_from_json(hub::to_json(f))) == hub::to_json(f));
  CHECK(hub::fault_settings_from_json(jv(R"({"reported_reorder":2})")).error().message ==
        "reported_reorder: must lie in [0, 1]");

  // Twenty reported PATCHes sent back to back on one connection (C1.4): each is answered, but
  // the held ones later, with a higher reported $version than writes sent after them.
  auto run = [](std::uint64_t seed) {
    auto settings = open_settings();
    settings.faults = faults_from(R"({"reported_reorder":0.3,"reported_reorder_hold_ms":50})");
    settings.faults.seed = seed;
    hub_core core(settings);
    fake_link device;
    azure_up(core, device, azure(core, "dev1"));
    for (int i = 0; i < 20; ++i) {
      const std::string topic = "$iothub/twin/PATCH/properties/reported/?$rid=" + std::to_string(i);
      core.on_publish(device, pub(topic, R"({"n":)" + std::to_string(i) + "}"), at(1 + i * 0.01));
      run_until(core, 1 + i * 0.01);
    }
    run_until(core, 5);
    std::vector<int> rids;  // in the order answered
    for (const auto& m : device.take()) {
      REQUIRE(m.topic.starts_with("$iothub/twin/res/204/?$rid="));
      rids.push_back(std::stoi(m.topic.substr(m.topic.find("$rid=") + 5)));
    }
    const auto twin = core.azure_get_twin("dev1");
    REQUIRE(twin.has_value());
    const auto last = twin->at("properties").at("reported").at("n").to_number<int>();
    return std::tuple{rids, last, core.counters().faults_azure_reported_reordered};
  };
  const auto [rids, last, reordered] = run(42);
  REQUIRE(rids.size() == 20);
  auto sorted = rids;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) CHECK(sorted[i] == static_cast<int>(i));
  CHECK(rids != sorted);  // something overtook something
  CHECK(last == rids.back());  // the write applied last is the one whose values stay
  CHECK(reordered > 0);
  CHECK(reordered < 20);
  CHECK(std::get<0>(run(42)) == rids);  // the same seed, the same order

  // Other requests are never held, and a held write of a connection that ended is never served.
  auto settings = open_settings();
  settings.faults = faults_from(R"({"reported_reorder":1,"reported_reorder_hold_ms":50})");
  hub_core core(settings);
  fake_link device;
  const auto d = azure(core, "dev1");
  azure_up(core, device, d);
  core.on_publish(device, pub("$iothub/twin/GET/?$rid=1"), at(1));
  CHECK(device.take().size() == 1);
  core.on_publish(device, pub("$iothub/twin/PATCH/properties/reported/?$rid=2", R"({"n":7})"), at(1));
  CHECK(device.take().empty());
  core.on_disconnect(device, at(1.01));
  fake_link again;
  azure_up(core, again, d, 1.02);
  run_until(core, 2);
  CHECK(device.take().empty());
  CHECK(again.take().empty());
  CHECK_FALSE(core.azure_get_twin("dev1")->at("properties").at("reported").as_object().contains("n"));

  // AWS: a shadow /update is held, then accepted.
  fake_link thing;
  aws_up(core, thing, "lamp-1", "lamp-1", 2);
  core.on_publish(thing, pub("$aws/things/lamp-1/shadow/update", R"({"state":{"reported":{"on":true}}})"), at(2));
  CHECK(thing.take().empty());
  run_until(core, 2.1);
  const auto sent = thing.take();
  REQUIRE(!sent.empty());
  CHECK(sent[0].topic == "$aws/things/lamp-1/shadow/update/accepted");
  CHECK(core.counters().faults_aws_reported_reordered == 1);
}

// A connection keeps its device's record at hand (connection_state::device) while it is the
// device's connection. Replaced, and then the identity deleted within the grace, the old
// connection must find no device: it is closed, not answered from a freed record.
TEST_CASE("faults: a replaced connection still in its grace whose identity is deleted is closed, not served",
          "[hub][faults]") {
  auto settings = open_settings();
  settings.faults = faults_from(R"({"takeover_grace_ms":500})");
  hub_core core(settings);
  const auto d = azure(core, "dev1");
  fake_link first;
  fake_link second;
  azure_up(core, first, d, 0);
  azure_up(core, second, d, 1);
  REQUIRE_FALSE(first.closed);
  REQUIRE(core.azure_delete_device("dev1", {}, at(1.1)));
  CHECK(second.closed);
  CHECK_FALSE(first.closed);  // still in its grace
  core.on_publish(first, pub("$iothub/twin/PATCH/properties/reported/?$rid=3", R"({"n":1})"), at(1.2));
  CHECK(first.take().empty());
  CHECK(first.closed);
  CHECK(core.counters().azure_reported_patches == 0);
}

TEST_CASE("faults: takeover_grace keeps a replaced connection served for a while, then closes it (C1.8)",
          "[hub][faults]") {
  const auto f = faults_from(R"({"takeover_grace_ms":500})");
  CHECK(f.takeover_grace == 500ms);
  CHECK(f.any());
  CHECK(hub::to_json(*hub::fault_settings_from_json(hub::to_json(f))) == hub::to_json(f));
  CHECK(hub::fault_settings_from_json(jv(R"({"takeover_grace_ms":-1})")).error().message ==
        "takeover_grace_ms: must lie in [0, 86400000]");
  CHECK(faults_from("{}").takeover_grace == 0ms);  // off by default

  auto settings = open_settings();
  settings.faults = f;
  hub_core core(settings);
  const auto d = azure(core, "dev1");
  fake_link first;
  fake_link second;
  azure_up(core, first, d, 0);
  azure_up(core, second, d, 1);  // the same device id again: takes the first over
  CHECK_FALSE(first.closed);
  CHECK(core.counters().connections_taken_over == 1);
  CHECK(core.counters().faults_takeovers_delayed == 1);
  // The reported $version a PATCH was answered with.
  auto patch = [&](fake_link& link, int rid, int n, double t) {
    core.on_publish(link, pub("$iothub/twin/PATCH/properties/reported/?$rid=" + std::to_string(rid),
                              R"({"n":)" + std::to_string(n) + "}"),
                    at(t));
    const auto sent = link.take();
    REQUIRE(sent.size() == 1);
    REQUIRE(sent[0].topic.starts_with("$iothub/twin/res/204/?$rid=" + std::to_string(rid)));
    return version_of(sent[0]);
  };
  // The new connection writes first; the replaced one, still served, writes after it and wins:
  // the race the grace exposes (reported_overwrite).
  const auto newer = patch(second, 1, 2, 1.05);
  const auto older = patch(first, 7, 1, 1.1);
  CHECK(older > newer);
  CHECK(core.azure_get_twin("dev1")->at("properties").at("reported").at("n") == 1);
  // Desired notifications go to the new connection only.
  write_desired(core, "dev1", R"({"on":true})", 1.2);
  CHECK(first.take().empty());
  CHECK(second.take().size() == 1);
  run_until(core, 1.49);
  CHECK_FALSE(first.closed);
  run_until(core, 1.5);
  CHECK(first.closed);
  CHECK_FALSE(second.closed);
  // Its late disconnect leaves the device connected (the second connection stands).
  core.on_disconnect(first, at(1.51));
  CHECK(core.azure_get_twin("dev1")->at("connectionState") == "Connected");

  // A replaced connection that ended by itself is not closed again, even when its link comes
  // back as another connection before the grace is over.
  first.closed = false;
  azure_up(core, first, d, 2);  // takes the second over
  CHECK_FALSE(second.closed);
  core.on_disconnect(second, at(2.1));
  azure_up(core, second, azure(core, "dev2"), 2.2);
  run_until(core, 3);
  CHECK_FALSE(second.closed);
  CHECK_FALSE(first.closed);

  // AWS: a client id taken over keeps its subscriptions and is answered until the grace ends.
  fake_link lamp_old;
  fake_link lamp_new;
  aws_up(core, lamp_old, "lamp-1", "lamp-1", 4);
  aws_up(core, lamp_new, "lamp-1", "lamp-1", 4.1);
  CHECK_FALSE(lamp_old.closed);
  core.on_publish(lamp_old, pub("$aws/things/lamp-1/shadow/update", R"({"state":{"reported":{"on":true}}})"), at(4.2));
  const auto accepted_old = lamp_old.take();
  REQUIRE(!accepted_old.empty());
  CHECK(accepted_old[0].topic == "$aws/things/lamp-1/shadow/update/accepted");
  CHECK(!lamp_new.take().empty());  // the new connection subscribed to the same topics
  run_until(core, 4.59);
  CHECK_FALSE(lamp_old.closed);
  run_until(core, 4.6);
  CHECK(lamp_old.closed);
  CHECK(core.counters().faults_takeovers_delayed == 3);
  CHECK(core.force_disconnect("lamp-1"));  // the client id is the new connection's
  CHECK(lamp_new.closed);

  // Without the fault the replaced connection is closed at once, as before.
  hub_core plain(open_settings());
  fake_link a;
  fake_link b;
  azure_up(plain, a, azure(plain, "dev1"), 0);
  azure_up(plain, b, azure(plain, "dev1"), 1);
  CHECK(a.closed);
  CHECK(plain.counters().faults_takeovers_delayed == 0);
}

TEST_CASE("faults: AWS accepted/delta swap publishes the delta of a version first", "[hub][faults]") {
  auto settings = open_settings();
  hub_core core(settings);
  fake_link device;
  aws_up(core, device, "lamp-1", "lamp-1");
  const auto update = std::string(R"({"state":{"desired":{"on":true}}})");
  core.on_publish(device, pub("$aws/things/lamp-1/shadow/update", update), at(1));
  auto topics = [](const std::vector<test::sent_message>& sent) {
    std::vector<std::string> out;
    for (const auto& m : sent) out.push_back(m.topic.substr(m.topic.rfind("/update/") + 8));
    return out;
  };
  CHECK(topics(device.take()) == std::vector<std::string>{"accepted", "delta", "documents"});
  core.set_faults(faults_from(R"({"aws_swap_accepted_delta":1})"), at(2));
  const auto update2 = std::string(R"({"state":{"desired":{"on":false}}})");
  core.on_publish(device, pub("$aws/things/lamp-1/shadow/update", update2), at(3));
  const auto sent = device.take();
  CHECK(topics(sent) == std::vector<std::string>{"delta", "accepted", "documents"});
  CHECK(sent[0].json().at("version") == sent[1].json().at("version"));
  CHECK(core.counters().faults_accepted_delta_swapped == 1);
  // An update without a delta has nothing to swap.
  const auto reported = std::string(R"({"state":{"reported":{"on":false}}})");
  core.on_publish(device, pub("$aws/things/lamp-1/shadow/update", reported), at(4));
  CHECK(topics(device.take()) == std::vector<std::string>{"accepted", "documents"});
  CHECK(core.counters().faults_accepted_delta_swapped == 1);
}

TEST_CASE("faults: skipped Azure desired versions leave gaps, and a refused write takes none", "[hub][faults]") {
  auto settings = open_settings();
  settings.faults = faults_from(R"({"azure_skip_desired_versions":1,"azure_skip_max":3})");
  hub_core core(settings);
  fake_link device;
  const auto d = azure(core, "dev1");
  azure_up(core, device, d);
  std::int64_t last = 1;
  for (int i = 0; i < 10; ++i) {
    write_desired(core, "dev1", R"({"n":)" + std::to_string(i) + "}", 1 + i);
    auto sent = device.take();
    REQUIRE(sent.size() == 1);
    const auto v = version_of(sent[0]);
    CHECK(v >= last + 2);
    CHECK(v <= last + 4);
    CHECK(sent[0].json().at("$version") == v);
    last = v;
  }
  auto twin = core.azure_get_twin("dev1");
  REQUIRE(twin.has_value());
  CHECK(twin->at("properties").at("desired").at("$version") == last);
  // A write refused by its etag leaves the version where it was.
  auto refused = core.azure_update_twin("dev1", jv(R"({"properties":{"desired":{"x":1}}})"),
                                        twin::if_match::parse("\"AAAAAAAAAAE=\""), false, at(20));
  REQUIRE_FALSE(refused.has_value());
  CHECK(core.azure_get_twin("dev1")->at("properties").at("desired").at("$version") == last);
  CHECK(core.counters().faults_desired_versions_skipped >= 10);
}

TEST_CASE("faults: a new subscription delivers nothing during its activation delay", "[hub][faults]") {
  auto settings = open_settings();
  settings.faults = faults_from(R"({"subscription_activation_delay_ms":500})");
  hub_core core(settings);
  fake_link device;
  const auto d = azure(core, "dev1");
  azure_up(core, device, d, 0);
  core.on_publish(device, pub("$iothub/twin/GET/?$rid=1"), at(0.1));
  CHECK(device.take().empty());  // the GET-after-SUBACK race (C2.4): its response is lost
  CHECK(core.counters().faults_not_yet_subscribed[kind(outbound_kind::azure_twin_response)] == 1);
  core.on_publish(device, pub("$iothub/twin/GET/?$rid=2"), at(0.5));
  REQUIRE(device.take().size() == 1);

  fake_link lamp;
  aws_up(core, lamp, "lamp-1", "lamp-1", 1);
  const auto update = std::string(R"({"state":{"reported":{"on":true}}})");
  core.on_publish(lamp, pub("$aws/things/lamp-1/shadow/update", update), at(1.2));
  CHECK(lamp.take().empty());
  CHECK(core.counters().faults_not_yet_subscribed[kind(outbound_kind::aws_accepted)] == 1);
  core.on_publish(lamp, pub("$aws/things/lamp-1/shadow/update", update), at(1.6));
  CHECK(lamp.take().size() == 2);  // accepted and documents
}

TEST_CASE("faults: forced disconnects by fraction, by id, on a schedule and at a rate", "[hub][faults]") {
  auto settings = open_settings();
  hub_core core(settings);
  std::vector<std::unique_ptr<fake_link>> azure_links, aws_links;
  for (int i = 0; i < 10; ++i) {
    azure_links.push_back(std::make_unique<fake_link>());
    azure_up(core, *azure_links.back(), azure(core, "dev" + std::to_string(i)));
    aws_links.push_back(std::make_unique<fake_link>());
    aws_up(core, *aws_links.back(), "thing" + std::to_string(i), "thing" + std::to_string(i));
  }
  auto closed = [](const auto& links) {
    return std::count_if(links.begin(), links.end(), [](const auto& l) { return l->closed; });
  };
  CHECK(core.force_disconnect(0.3, hub::dialect::azure) == 3);
  CHECK(closed(azure_links) == 3);
  CHECK(closed(aws_links) == 0);
  CHECK(core.force_disconnect("thing7"));
  CHECK(aws_links[7]->closed);
  CHECK_FALSE(core.force_disconnect("nobody"));
  CHECK(core.counters().faults_forced_disconnects == 4);

  core.set_faults(faults_from(R"({"disconnect_schedule":[{"at_ms":1000,"fraction":1,"backend":"aws"}]})"), at(10));
  run_until(core, 10.9);
  CHECK(closed(aws_links) == 1);
  run_until(core, 11);
  CHECK(closed(aws_links) == 10);
  CHECK(closed(azure_links) == 3);

  // A Poisson rate: about rate x time closes, the same ones for the same seed.
  hub_core busy(settings);
  std::vector<std::unique_ptr<fake_link>> links;
  for (int i = 0; i < 200; ++i) {
    links.push_back(std::make_unique<fake_link>());
    azure_up(busy, *links.back(), azure(busy, "d" + std::to_string(i)));
  }
  busy.set_faults(faults_from(R"({"disconnects_per_second":10})"), at(0));
  run_until(busy, 10);
  const auto n = busy.counters().faults_forced_disconnects;
  CHECK(n >= 60);  // Poisson(100): outside [60, 140] has probability below 1e-4
  CHECK(n <= 140);
}

// ---------------------------------------------------------------------------------------------
// throttling

TEST_CASE("throttle: Azure twin updates queue past the rate, then answer 429", "[hub][throttle]") {
  auto settings = open_settings();
  settings.throttle.azure_twin_updates = {2, 2, 2};  // 2/s, burst 2, 2 may wait
  hub_core core(settings);
  fake_link device;
  azure_up(core, device, azure(core, "dev1"));
  for (int i = 0; i < 6; ++i) {
    const std::string topic = "$iothub/twin/PATCH/properties/reported/?$rid=" + std::to_string(i);
    core.on_publish(device, pub(topic, R"({"n":1})"), at(1));
  }
  auto sent = device.take();
  REQUIRE(sent.size() == 4);
  CHECK(sent[0].topic.starts_with("$iothub/twin/res/204/?$rid=0"));
  CHECK(sent[1].topic.starts_with("$iothub/twin/res/204/?$rid=1"));
  CHECK(sent[2].topic == "$iothub/twin/res/429/?$rid=4");
  CHECK(sent[2].json().at("errorCode") == 429001);
  CHECK(sent[3].topic == "$iothub/twin/res/429/?$rid=5");
  CHECK(core.throttle_queue_depth(hub::throttle_class::azure_twin_updates) == 2);
  REQUIRE(core.next_deadline() == at(1.5));
  core.on_timer(at(1.5));
  sent = device.take();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].topic.starts_with("$iothub/twin/res/204/?$rid=2"));
  run_until(core, 2);
  sent = device.take();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].topic.starts_with("$iothub/twin/res/204/?$rid=3"));
  CHECK(core.counters().throttle_queued[cls(hub::throttle_class::azure_twin_updates)] == 2);
  CHECK(core.counters().throttle_rejected[cls(hub::throttle_class::azure_twin_updates)] == 2);
  CHECK(core.throttle_queue_depth(hub::throttle_class::azure_twin_updates) == 0);
  // Reads are another bucket, unlimited here.
  core.on_publish(device, pub("$iothub/twin/GET/?$rid=9"), at(2));
  CHECK(device.take().size() == 1);
}

TEST_CASE("throttle: a queued request runs at the deadline the hub gave for it, at any rate", "[hub][throttle]") {
  // 1/15 s is no whole number of nanoseconds: a deadline rounded down came a fraction of a
  // token early, and on_timer then rescheduled the request at the same instant for ever (a hub
  // that spun and answered nothing, not even SIGTERM). on_timer runs on a thread of its own
  // here, so that a spin fails the test instead of hanging it.
  for (const double rate : {15.0, 7.0, 3.0, 20.0, 1000.0}) {
    INFO("rate " << rate << "/s");
    auto settings = open_settings();
    settings.throttle.azure_twin_updates = {rate, 5, 3};  // burst 5, 3 may wait
    auto core = std::make_shared<hub_core>(settings);
    auto device = std::make_shared<fake_link>();
    azure_up(*core, *device, azure(*core, "dev1"));
    for (int i = 0; i < 7; ++i) {
      core->on_publish(*device, pub("$iothub/twin/PATCH/properties/reported/?$rid=" + std::to_string(i), R"({"n":1})"), at(1));
    }
    REQUIRE(device->take().size() == 5);  // the burst; two wait
    for (int queued = 5; queued < 7; ++queued) {
      const auto due = core->next_deadline();
      REQUIRE(due);
      CHECK(*due > at(1));
      auto done = std::async(std::launch::async, [core, when = *due] { core->on_timer(when); });
      if (done.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
        FAIL_CHECK("on_timer at the deadline did not return within 5 s");
        // The spinning thread keeps what it uses; the process ends with the test run.
        new auto(std::move(done));
        new auto(core);
        return;
      }
      const auto sent = device->take();
      REQUIRE(sent.size() == 1);  // served at its deadline, not a tick later
      CHECK(sent[0].topic.starts_with("$iothub/twin/res/204/?$rid=" + std::to_string(queued)));
    }
  }
}

TEST_CASE("the hub's timer waits for a deadline rounded up, never waking before it", "[hub][timer]") {
  using namespace std::chrono_literals;
  const auto now = at(1);
  // Less than a millisecond away: a wait that ends at or after the deadline, not 0 (a timer
  // that woke at once, found nothing due and re-armed, busy until the deadline passed).
  CHECK(hub::timer_wait(now + 700us, now, 100ms) == 700us);
  CHECK(hub::timer_wait(now + 1ns, now, 100ms) == 1us);
  CHECK(hub::timer_wait(now + 1500us + 1ns, now, 100ms) == 1501us);
  CHECK(now + hub::timer_wait(now + 33333333ns, now, 100ms) >= now + 33333333ns);
  // Due already: at once. Far away or none: the longest wait.
  CHECK(hub::timer_wait(now - 5ms, now, 100ms) == 0us);
  CHECK(hub::timer_wait(now + 5s, now, 100ms) == 100ms);
  CHECK(hub::timer_wait(std::nullopt, now, 100ms) == 100ms);
}

TEST_CASE("throttle: AWS shadow requests per thing: 20/s, 10 waiting, then 429 on /rejected", "[hub][throttle]") {
  auto settings = open_settings();
  settings.throttle.aws_enabled = true;  // the B7 defaults
  hub_core core(settings);
  fake_link lamp, other;
  aws_up(core, lamp, "lamp-1", "lamp-1");
  aws_up(core, other, "lamp-2", "lamp-2");
  std::vector<std::string> payloads;
  for (int i = 0; i < 35; ++i) {
    payloads.push_back(R"({"state":{"reported":{"n":)" + std::to_string(i) + R"(}},"clientToken":"t)" + std::to_string(i) + "\"}");
  }
  for (const auto& p : payloads) core.on_publish(lamp, pub("$aws/things/lamp-1/shadow/update", p), at(1));
  auto count = [](const std::vector<test::sent_message>& sent, std::string_view suffix) {
    return std::count_if(sent.begin(), sent.end(), [&](const auto& m) { return m.topic.ends_with(suffix); });
  };
  auto sent = lamp.take();
  CHECK(count(sent, "/update/accepted") == 20);
  CHECK(count(sent, "/update/rejected") == 5);
  for (const auto& m : sent) {
    if (!m.topic.ends_with("/rejected")) continue;
    CHECK(m.json().at("code") == 429);
    CHECK(m.json().at("clientToken").as_string().starts_with("t3"));  // t30..t34
  }
  // Another thing has its own bucket.
  core.on_publish(other, pub("$aws/things/lamp-2/shadow/update", payloads[0]), at(1));
  CHECK(count(other.take(), "/update/accepted") == 1);
  run_until(core, 1.6);
  CHECK(count(lamp.take(), "/update/accepted") == 10);
  CHECK(core.counters().throttle_queued[cls(hub::throttle_class::aws_shadow_per_thing)] == 10);
  CHECK(core.counters().throttle_rejected[cls(hub::throttle_class::aws_shadow_per_thing)] == 5);
}

// AWS IoT's message broker delivers at most 100 messages a second to one connection (a
// subscriber that fans in, as the back end's documents observer does); the excess is lost.
TEST_CASE("throttle: an AWS connection is sent at most 100 messages a second; the excess is dropped and counted",
          "[hub][throttle]") {
  for (const bool enabled : {true, false}) {
    DYNAMIC_SECTION("aws_enabled " << enabled) {
      auto settings = open_settings();
      settings.throttle.aws_enabled = enabled;
      hub_core core(settings);
      fake_link watcher;
      REQUIRE(core.on_connect(watcher, aws_connect("backend-observer"), at(0)) == accepted);
      const mqtt::subscription all[] = {{"$aws/things/+/shadow/update/documents", mqtt::qos::at_most_once}};
      (void)core.on_subscribe(watcher, all, at(0));
      // 30 things, 5 updates each (under the per-thing 20/s): 150 documents within a second.
      std::vector<std::unique_ptr<fake_link>> things;
      for (int t = 0; t < 30; ++t) {
        const auto id = "lamp-" + std::to_string(t);
        things.push_back(std::make_unique<fake_link>());
        aws_up(core, *things.back(), id, id);
      }
      for (int n = 0; n < 5; ++n) {
        for (int t = 0; t < 30; ++t) {
          const auto topic = "$aws/things/lamp-" + std::to_string(t) + "/shadow/update";
          core.on_publish(*things[t], pub(topic, R"({"state":{"reported":{"n":)" + std::to_string(n) + "}}}"), at(1 + n * 0.1));
        }
      }
      const auto documents = [](const std::vector<test::sent_message>& sent) {
        return std::count_if(sent.begin(), sent.end(), [](const auto& m) { return m.topic.ends_with("/update/documents"); });
      };
      const auto rejected = [&] { return core.counters().throttle_rejected[cls(hub::throttle_class::aws_connection_deliveries)]; };
      // Each thing's own connection gets its 5 accepted and 5 documents: far under the cap.
      for (auto& t : things) CHECK(t->take().size() == 10);
      if (!enabled) {
        CHECK(documents(watcher.take()) == 150);
        CHECK(rejected() == 0);
        continue;
      }
      // A burst of 100, then 100 a second: 100 + 0.4 s × 100 by t = 1.4.
      const auto first = documents(watcher.take());
      CHECK(first >= 139);
      CHECK(first <= 141);
      CHECK(rejected() == static_cast<std::uint64_t>(150 - first));
      // A second later the bucket is full again.
      core.on_publish(*things[0], pub("$aws/things/lamp-0/shadow/update", R"({"state":{"reported":{"n":9}}})"), at(3));
      CHECK(documents(watcher.take()) == 1);
      // The JSON form names it.
      CHECK(hub::to_json(settings.throttle).at("aws_connection_deliveries").at("per_second").to_number<double>() == 100);
    }
  }
}

TEST_CASE("throttle: a queued request of a connection that is gone is not served", "[hub][throttle]") {
  auto settings = open_settings();
  settings.throttle.azure_twin_reads = {1, 1, 5};
  hub_core core(settings);
  fake_link device;
  const auto d = azure(core, "dev1");
  azure_up(core, device, d);
  core.on_publish(device, pub("$iothub/twin/GET/?$rid=1"), at(1));
  core.on_publish(device, pub("$iothub/twin/GET/?$rid=2"), at(1));
  CHECK(device.take().size() == 1);
  core.on_disconnect(device, at(1.5));
  fake_link again;
  azure_up(core, again, d, 1.6);
  run_until(core, 3);
  CHECK(device.take().empty());
  CHECK(again.take().empty());
  CHECK(core.throttle_queue_depth(hub::throttle_class::azure_twin_reads) == 0);
}

TEST_CASE("throttle: new connections over the rate are refused with CONNACK 3", "[hub][throttle]") {
  auto settings = open_settings();
  settings.throttle.azure_connects = {1, 1, 0};
  hub_core core(settings);
  fake_link a, b, c;
  REQUIRE(core.on_connect(a, azure(core, "a").packet(), at(1)) == accepted);
  CHECK(core.on_connect(b, azure(core, "b").packet(), at(1.5)) == mqtt::connect_return_code::server_unavailable);
  CHECK(core.on_connect(c, azure(core, "c").packet(), at(2)) == accepted);
  CHECK(core.counters().throttle_rejected[cls(hub::throttle_class::azure_connects)] == 1);
  // AWS is not metered by the Azure limit.
  fake_link lamp;
  CHECK(core.on_connect(lamp, aws_connect("lamp"), at(2)) == accepted);
}

// ---------------------------------------------------------------------------------------------
// REST: throttled service calls and the admin endpoint

TEST_CASE("throttle: REST twin reads wait in the queue, then 429 ThrottlingException", "[hub][throttle][rest]") {
  auto now = at(0);
  auto settings = test::rest_settings();
  settings.throttle.azure_twin_reads = {1, 1, 1};
  hub_core core(settings);
  hub::rest_router router(core, [&] { return now; });
  test::rest_client_factory client{core, now};
  auto put = router.handle(client.azure("PUT", "/devices/dev1", R"({"deviceId":"dev1"})", client.sas("registryReadWrite")));
  REQUIRE(put.has_value());
  REQUIRE(put->status == 200);
  std::vector<hub::rest_response> answers;
  for (int i = 0; i < 3; ++i) {
    router.async_handle(client.azure("GET", "/twins/dev1"), [&](hub::rest_response r) { answers.push_back(std::move(r)); });
  }
  REQUIRE(answers.size() == 2);
  CHECK(answers[0].status == 200);
  CHECK(answers[1].status == 429);
  CHECK(test::body_json(answers[1]).at("errorCode") == 429001);
  now = at(1);
  core.on_timer(now);
  REQUIRE(answers.size() == 3);
  CHECK(answers[2].status == 200);
  CHECK(core.metrics_text().find(R"(twinfleet_hub_throttled_total{backend="azure",operation="twin_read",outcome="queued"} 1)") !=
        std::string::npos);
}

TEST_CASE("admin: faults and throttle are read and replaced at run time; bad bodies are 400", "[hub][faults][rest]") {
  auto now = at(0);
  hub_core core(test::rest_settings());
  hub::rest_router router(core, [&] { return now; });
  auto call = [&](std::string method, std::string target, std::string body = {}) {
    hub::rest_request r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.body = std::move(body);
    auto out = router.handle(r);
    REQUIRE(out.has_value());
    return *out;
  };
  auto r = call("GET", "/admin/faults");
  REQUIRE(r.status == 200);
  CHECK(test::body_json(r).at("delivery").as_array().empty());
  r = call("PUT", "/admin/faults", R"({"seed":3,"delivery":[{"kinds":["aws.delta"],"drop":0.5}]})");
  REQUIRE(r.status == 200);
  CHECK(core.faults().seed == 3);
  CHECK(core.faults().delivery.at(0).drop == 0.5);
  r = call("PUT", "/admin/faults", R"({"delivery":[{"drop":2}]})");
  CHECK(r.status == 400);
  CHECK(test::body_json(r).at("error") == "delivery[0].drop: must lie in [0, 1]");
  CHECK(core.faults().delivery.at(0).drop == 0.5);  // unchanged
  r = call("PUT", "/admin/faults", "{");
  CHECK(r.status == 400);
  r = call("PUT", "/admin/throttle", R"({"azure_tier":"S2","azure_units":3})");
  REQUIRE(r.status == 200);
  CHECK(core.throttle().azure_twin_reads.per_second == 100);
  CHECK(test::body_json(call("GET", "/admin/throttle")).at("azure_twin_reads").at("per_second") == 100.0);
  r = call("DELETE", "/admin/throttle");
  CHECK(r.status == 405);
  CHECK(r.header("Allow") == "GET, PUT");
  r = call("POST", "/admin/disconnect", R"({"fraction":0.5})");
  REQUIRE(r.status == 200);
  CHECK(test::body_json(r).at("disconnected") == 0);
  CHECK(call("POST", "/admin/disconnect", R"({"fraction":"all"})").status == 400);
  CHECK(call("GET", "/admin/nothing").status == 404);
}
