// The device coroutines tell the sync checker what it needs (sessions, how each desired
// version arrived, reported writes with their sessions and hub versions), and, fed through the
// same adapter the engine uses, the checker finds a correct device on the real local hub under
// duplicated and reordered notifications and forced disconnects free of anomalies, while the
// no_reconcile_on_reconnect quirk with a write made offline shows as its own kind.
#include <twinfleet/check/sync_checker.hpp>
#include <twinfleet/device/aws_runner.hpp>
#include <twinfleet/device/azure_runner.hpp>
#include <twinfleet/hub/local_hub.hpp>
#include <twinfleet/scenario/profile_loader.hpp>

#include "json_test_util.hpp"
#include "test_data.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <catch2/catch.hpp>

using namespace twinfleet;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace json = boost::json;
using steady = std::chrono::steady_clock;

namespace {

check::delivery to_delivery(device::desired_via via) {
  switch (via) {
    case device::desired_via::notification: return check::delivery::patch;
    case device::desired_via::delta: return check::delivery::delta;
    case device::desired_via::get: return check::delivery::document;
  }
  return check::delivery::document;
}

// Records the new events and forwards them to a checker: the wiring the engine does.
struct checker_feed : device::device_observer {
  explicit checker_feed(check::sync_checker& c) : checker(c) {}
  check::sync_checker& checker;
  std::vector<std::uint64_t> sessions_started;
  std::vector<std::uint64_t> sessions_ended;
  std::vector<std::pair<std::int64_t, device::desired_via>> delivered;
  std::vector<std::pair<std::int64_t, device::desired_via>> applied;
  std::vector<std::pair<std::uint64_t, std::int64_t>> reported;  // serial, hub version
  std::vector<std::string> keys;

  void session_started(std::string_view device, std::uint64_t session) override {
    sessions_started.push_back(session);
    checker.session_started(device, session, steady::now());
  }
  void session_ended(std::string_view device, std::uint64_t session) override {
    sessions_ended.push_back(session);
    checker.session_ended(device, session, steady::now());
  }
  void desired_delivered(std::string_view key, std::int64_t version, device::desired_via via) override {
    delivered.emplace_back(version, via);
    keys.emplace_back(key);
    checker.desired_delivered(key, version, to_delivery(via), steady::now());
  }
  void desired_stale(std::string_view key, std::int64_t version) override {
    checker.desired_dropped(key, version, steady::now());
  }
  void desired_applied_via(std::string_view key, std::int64_t version, device::desired_via via, int) override {
    applied.emplace_back(version, via);
    checker.desired_applied(key, version, to_delivery(via), steady::now());
  }
  void reported_accepted(std::string_view key, std::size_t, std::uint64_t session, std::uint64_t serial,
                         std::int64_t hub_version) override {
    reported.emplace_back(serial, hub_version);
    checker.reported_accepted(key, session, serial, hub_version, steady::now());
  }
};

std::shared_ptr<const device::profile> bulb_profile(std::string_view quirks) {
  config::diagnostics diags;
  auto profile = scenario::load_profile_string(std::string(R"(
name: sync-bulb
identity: { id: "sync-{index:03}" }
desired:
  brightness: { type: integer, min: 0, max: 100, initial: 80, apply_after: 5ms }
reported:
  power_w: { walk: { start: 7.5, step: 0.3, min: 0, max: 9, decimals: 2 }, every: 100ms }
lifecycle:
  keep_alive: 60s
  reconnect: { initial: 50ms, max: 100ms, jitter: 0% }
)") + std::string(quirks),
                                               "sync-bulb.yaml", diags);
  INFO(diags.to_string());
  REQUIRE(profile);
  return profile;
}

struct hub_fixture {
  asio::io_context io;
  test::temp_dir dir;
  std::unique_ptr<hub::local_hub> hub;

  hub_fixture() {
    hub::hub_options options;
    options.settings.auth = hub::auth_mode::open;
    options.certs_dir = dir.path();
    options.listeners = {{hub::listener_protocol::mqtt, {asio::ip::make_address("127.0.0.1"), 0}, {}}};
    options.log = [](std::string_view) {};
    hub = std::make_unique<hub::local_hub>(io.get_executor(), options);
    REQUIRE_FALSE(hub->start());
  }
  ~hub_fixture() {
    bool stopped = false;
    hub->async_stop([&] { stopped = true; });
    for (int i = 0; i < 100 && !stopped; ++i) io.run_for(50ms);
  }
  void run_until(const bool& done, std::chrono::seconds limit) {
    const auto deadline = steady::now() + limit;
    while (!done && steady::now() < deadline) io.run_for(50ms);
  }
  // A desired write of brightness through the service side, recorded as the engine does.
  void write(check::sync_checker& checker, std::string_view id, int brightness) {
    const auto sent = steady::now();
    auto w = hub->core().azure_update_twin(
        id, test::jv(R"({"properties":{"desired":{"brightness":)" + std::to_string(brightness) + "}}}"), {}, false,
        std::chrono::system_clock::now());
    REQUIRE(w.has_value());
    const auto& desired = w->at("properties").at("desired").as_object();
    checker.desired_written(id, desired.at("$version").to_number<std::int64_t>(),
                            json::object{{"brightness", brightness}}, sent);
  }
  void audit(check::sync_checker& checker, std::string_view id) {
    const auto twin = hub->core().azure_get_twin(id);
    REQUIRE(twin.has_value());
    const auto& props = twin->at("properties").as_object();
    checker.audit(id, props.at("desired").as_object(), props.at("reported").as_object(),
                  check::device_mapping{{{"brightness", "brightness", check::ack_form::pnp_ack}}}, steady::now());
  }
};

asio::awaitable<void> pause(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(asio::use_awaitable);
}

// A bulb on the AWS dialect, thing and client id `thing`, reaching the fixture's hub.
device::aws_device_run aws_bulb(hub_fixture& f, const std::string& thing) {
  device::aws_device_run run;
  run.device_profile = bulb_profile("");
  run.session.thing_name = thing;
  run.session.client_id = thing;
  run.hub = f.hub->listeners().at(0).endpoint;
  return run;
}

// The hub delivers on a new subscription only after `delay` (C2.4).
void activation_delay(hub_fixture& f, std::chrono::milliseconds delay) {
  hub::fault_settings faults;
  faults.subscription_activation_delay = delay;
  f.hub->core().set_faults(faults, std::chrono::system_clock::now());
}

void update_shadow(hub_fixture& f, std::string_view thing, std::string_view document) {
  REQUIRE(f.hub->core().aws_update_shadow(thing, "", document, std::chrono::system_clock::now()).has_value());
}

}  // namespace

TEST_CASE("device events: a correct Azure device under duplicated and reordered notifications and forced disconnects reports "
          "every event and ends with no anomaly",
          "[device][azure][check][integration]") {
  hub_fixture f;
  hub::fault_settings faults;
  faults.seed = 3;
  hub::delivery_fault notify;
  notify.kinds = {hub::outbound_kind::azure_desired_patch};
  notify.duplicate = 0.4;
  notify.reorder = 0.4;
  notify.reorder_hold = 30ms;
  faults.delivery.push_back(notify);
  f.hub->core().set_faults(faults, std::chrono::system_clock::now());

  check::checker_options o;
  o.run_start = steady::now();
  check::sync_checker checker(o);
  checker_feed seen(checker);

  device::azure_device_run run;
  run.device_profile = bulb_profile("");
  run.seed = 11;
  run.session.device_id = "sync-001";
  run.session.sas_key = f.hub->core().device_key_for("sync-001");
  run.hub = f.hub->listeners().at(0).endpoint;
  bool done = false;
  asio::co_spawn(f.io, device::run_azure_device(run, seen, steady::now() + 3500ms), [&](std::exception_ptr) { done = true; });

  auto driver = [&]() -> asio::awaitable<void> {
    co_await pause(400ms);
    for (int round = 0; round < 3; ++round) {
      // A burst the hub duplicates and reorders, then a write while the device is offline.
      for (int i = 0; i < 4; ++i) f.write(checker, "sync-001", 10 * round + i);
      co_await pause(300ms);
      f.hub->core().force_disconnect("sync-001");
      f.write(checker, "sync-001", 50 + round);
      co_await pause(500ms);
    }
  };
  asio::co_spawn(f.io, driver(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  f.run_until(done, 20s);
  REQUIRE(done);
  f.audit(checker, "sync-001");

  // The events: a new, larger session serial on each connection, each ended; a GET delivery
  // after each; notifications; reported writes numbered in order with growing hub versions.
  REQUIRE(seen.sessions_started.size() >= 4);
  CHECK(std::is_sorted(seen.sessions_started.begin(), seen.sessions_started.end()));
  CHECK(std::adjacent_find(seen.sessions_started.begin(), seen.sessions_started.end()) == seen.sessions_started.end());
  CHECK(seen.sessions_ended == seen.sessions_started);
  // One GET per connection, and one more after each $version gap a reordering made (C1.3).
  const auto gets = std::count_if(seen.delivered.begin(), seen.delivered.end(),
                                  [](const auto& d) { return d.second == device::desired_via::get; });
  CHECK(gets >= static_cast<long>(seen.sessions_started.size()));
  CHECK(std::any_of(seen.delivered.begin(), seen.delivered.end(),
                    [](const auto& d) { return d.second == device::desired_via::notification; }));
  CHECK(std::any_of(seen.applied.begin(), seen.applied.end(),
                    [](const auto& d) { return d.second == device::desired_via::notification; }));
  REQUIRE(seen.reported.size() >= 5);
  for (std::size_t i = 1; i < seen.reported.size(); ++i) {
    CHECK(seen.reported[i].first > seen.reported[i - 1].first);
    CHECK(seen.reported[i].second > seen.reported[i - 1].second);
  }

  const auto r = checker.finish(steady::now());
  INFO(json::serialize(r.to_json()));
  CHECK(r.total_anomalies() == 0);
  CHECK(r.desired_writes == 15);
  CHECK(r.converged == 15);
  CHECK(r.observed.reconnects >= 3);
  CHECK(f.hub->core().counters().faults_duplicated[static_cast<std::size_t>(hub::outbound_kind::azure_desired_patch)] > 0);
}

TEST_CASE("device events: no_reconcile_on_reconnect with a write made while offline is unreconciled_after_reconnect",
          "[device][azure][check][integration]") {
  hub_fixture f;
  check::checker_options o;
  o.run_start = steady::now();
  check::sync_checker checker(o);
  checker_feed seen(checker);

  device::azure_device_run run;
  run.device_profile = bulb_profile("quirks: { no_reconcile_on_reconnect: true }\n");
  run.seed = 12;
  run.session.device_id = "sync-002";
  run.session.sas_key = f.hub->core().device_key_for("sync-002");
  run.hub = f.hub->listeners().at(0).endpoint;
  bool done = false;
  asio::co_spawn(f.io, device::run_azure_device(run, seen, steady::now() + 2s), [&](std::exception_ptr) { done = true; });
  auto driver = [&]() -> asio::awaitable<void> {
    co_await pause(400ms);
    f.write(checker, "sync-002", 30);
    co_await pause(200ms);
    // Dropped, and written before it can come back (nothing runs in between on this thread).
    f.hub->core().force_disconnect("sync-002");
    f.write(checker, "sync-002", 60);
  };
  asio::co_spawn(f.io, driver(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  f.run_until(done, 20s);
  REQUIRE(done);
  f.audit(checker, "sync-002");
  const auto r = checker.finish(steady::now());
  INFO(json::serialize(r.to_json()));
  CHECK(r.count(check::anomaly_kind::unreconciled_after_reconnect) == 1);
  CHECK(r.count(check::anomaly_kind::lost_update) == 0);
  CHECK(r.count(check::anomaly_kind::divergence) == 1);  // its consequence in the final audit
  CHECK(r.converged == 1);
}

TEST_CASE("device events: an AWS device reports deltas and GETs by shadow key, and its reported writes with hub versions",
          "[device][aws][check][integration]") {
  hub_fixture f;
  check::checker_options o;
  o.run_start = steady::now();
  check::sync_checker checker(o);
  checker_feed seen(checker);

  device::aws_device_run run;
  run.device_profile = bulb_profile("");
  run.seed = 13;
  run.session.thing_name = "sync-003";
  run.session.client_id = "sync-003";
  run.shadows = {"config"};
  run.hub = f.hub->listeners().at(0).endpoint;
  bool done = false;
  asio::co_spawn(f.io, device::run_aws_device(run, seen, steady::now() + 1500ms), [&](std::exception_ptr) { done = true; });
  auto driver = [&]() -> asio::awaitable<void> {
    co_await pause(400ms);
    for (int b : {20, 40}) {
      const auto sent = steady::now();
      auto w = f.hub->core().aws_update_shadow("sync-003", "config",
                                               R"({"state":{"desired":{"brightness":)" + std::to_string(b) + "}}}",
                                               std::chrono::system_clock::now());
      REQUIRE(w.has_value());
      checker.desired_written("sync-003/config", w->at("version").to_number<std::int64_t>(), json::object{{"brightness", b}},
                              sent);
      co_await pause(200ms);
    }
  };
  asio::co_spawn(f.io, driver(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  f.run_until(done, 20s);
  REQUIRE(done);
  auto shadow = f.hub->core().aws_get_shadow("sync-003", "config", std::chrono::system_clock::now());
  REQUIRE(shadow.has_value());
  const auto& state = shadow->at("state").as_object();
  checker.audit("sync-003/config", state.at("desired").as_object(), state.at("reported").as_object(),
                check::device_mapping{{{"brightness", "brightness", check::ack_form::mirror}}}, steady::now());

  CHECK(seen.sessions_started.size() == 1);
  CHECK(std::all_of(seen.keys.begin(), seen.keys.end(), [](const std::string& k) { return k == "sync-003/config"; }));
  CHECK(std::count_if(seen.delivered.begin(), seen.delivered.end(),
                      [](const auto& d) { return d.second == device::desired_via::delta; }) >= 2);
  CHECK(std::any_of(seen.applied.begin(), seen.applied.end(), [](const auto& d) { return d.second == device::desired_via::delta; }));
  CHECK_FALSE(seen.reported.empty());
  const auto r = checker.finish(steady::now());
  INFO(json::serialize(r.to_json()));
  CHECK(r.total_anomalies() == 0);
  CHECK(r.converged == 2);
}

TEST_CASE("device events: a correct Azure device whose notifications of different properties are reordered GETs the twin on "
          "the $version gap and converges on both (C1.3)",
          "[device][azure][check][integration]") {
  hub_fixture f;
  hub::fault_settings faults;
  faults.seed = 5;
  hub::delivery_fault notify;
  notify.kinds = {hub::outbound_kind::azure_desired_patch};
  notify.reorder = 0.5;
  notify.reorder_hold = 40ms;
  faults.delivery.push_back(notify);
  f.hub->core().set_faults(faults, std::chrono::system_clock::now());

  config::diagnostics diags;
  auto profile = scenario::load_profile_string(R"(
name: two-props
identity: { id: "two-{index:03}" }
desired:
  brightness: { type: integer, min: 0, max: 100, initial: 80, apply_after: 2ms }
  colour: { type: integer, min: 0, max: 100, initial: 1, apply_after: 2ms }
lifecycle:
  keep_alive: 60s
)",
                                               "two-props.yaml", diags);
  INFO(diags.to_string());
  REQUIRE(profile);

  check::checker_options o;
  o.run_start = steady::now();
  check::sync_checker checker(o);
  checker_feed seen(checker);
  device::azure_device_run run;
  run.device_profile = profile;
  run.session.device_id = "two-001";
  run.session.sas_key = f.hub->core().device_key_for("two-001");
  run.hub = f.hub->listeners().at(0).endpoint;
  bool done = false;
  asio::co_spawn(f.io, device::run_azure_device(run, seen, steady::now() + 3s), [&](std::exception_ptr) { done = true; });

  // Writes of one property each, in quick pairs, so that a held notification of one property
  // is overtaken by the next write's of the other.
  auto write = [&](std::string_view property, int value) {
    const auto sent = steady::now();
    auto w = f.hub->core().azure_update_twin(
        "two-001", test::jv(R"({"properties":{"desired":{")" + std::string(property) + "\":" + std::to_string(value) + "}}}"), {},
        false, std::chrono::system_clock::now());
    REQUIRE(w.has_value());
    checker.desired_written("two-001", w->at("properties").at("desired").at("$version").to_number<std::int64_t>(),
                            json::object{{property, value}}, sent);
  };
  auto driver = [&]() -> asio::awaitable<void> {
    co_await pause(400ms);
    for (int round = 0; round < 12; ++round) {
      write("brightness", 10 + round);
      write("colour", 40 + round);
      co_await pause(120ms);
    }
  };
  asio::co_spawn(f.io, driver(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  f.run_until(done, 20s);
  REQUIRE(done);

  const auto twin = f.hub->core().azure_get_twin("two-001");
  REQUIRE(twin.has_value());
  const auto& props = twin->at("properties").as_object();
  checker.audit("two-001", props.at("desired").as_object(), props.at("reported").as_object(),
                check::device_mapping{{{"brightness", "brightness", check::ack_form::pnp_ack},
                                       {"colour", "colour", check::ack_form::pnp_ack}}},
                steady::now());
  // The reordering happened and overtook notifications: more GETs than the one connection.
  CHECK(f.hub->core().counters().faults_reordered[static_cast<std::size_t>(hub::outbound_kind::azure_desired_patch)] > 0);
  const auto gets = std::count_if(seen.delivered.begin(), seen.delivered.end(),
                                  [](const auto& d) { return d.second == device::desired_via::get; });
  CHECK(gets > 1);
  // Both properties' last values are in force and acknowledged.
  CHECK(props.at("reported").at("brightness").at("value") == json::value(21));
  CHECK(props.at("reported").at("colour").at("value") == json::value(51));
  const auto r = checker.finish(steady::now());
  INFO(json::serialize(r.to_json()));
  CHECK(r.total_anomalies() == 0);
  CHECK(r.converged == r.desired_writes);
}

TEST_CASE("device events: an AWS device whose first /get answer is lost to a subscription activation delay asks again and "
          "reconciles without waiting out its request timeout (C2.4)",
          "[device][aws][check][integration]") {
  hub_fixture f;
  activation_delay(f, 300ms);
  // Desired state written before the device connects: only a /get can bring it.
  update_shadow(f, "sync-004", R"({"state":{"desired":{"brightness":33}}})");

  check::checker_options o;
  o.run_start = steady::now();
  check::sync_checker checker(o);
  checker_feed seen(checker);
  auto run = aws_bulb(f, "sync-004");
  run.request_timeout = 10s;
  bool done = false;
  // The device runs 3 s: a first /get that waited out its 10 s timeout would end it unreconciled.
  asio::co_spawn(f.io, device::run_aws_device(run, seen, steady::now() + 3s), [&](std::exception_ptr) { done = true; });
  f.run_until(done, 20s);
  REQUIRE(done);

  CHECK(seen.sessions_started.size() == 1);
  CHECK(std::any_of(seen.delivered.begin(), seen.delivered.end(), [](const auto& d) { return d.second == device::desired_via::get; }));
  auto shadow = f.hub->core().aws_get_shadow("sync-004", "", std::chrono::system_clock::now());
  REQUIRE(shadow.has_value());
  CHECK(shadow->at("state").at("reported").at("brightness") == json::value(33));
}

TEST_CASE("device events: an AWS device that got a delta while it was still asking for its shadow applies the document "
          "once and drops the delta the document covers",
          "[device][aws][check][integration]") {
  hub_fixture f;
  // Subscriptions deliver only after 700 ms (C2.4): the device's /get at 0 s and its retry at
  // 0.5 s go unanswered, the next at 1.5 s is answered. A write at about 1.1 s reaches the
  // device as a delta while it waits, and the answer's document already holds it.
  activation_delay(f, 700ms);
  update_shadow(f, "sync-005", R"({"state":{"reported":{"brightness":80}}})");

  check::checker_options o;
  o.run_start = steady::now();
  check::sync_checker checker(o);
  checker_feed seen(checker);
  const auto run = aws_bulb(f, "sync-005");
  bool done = false;
  asio::co_spawn(f.io, device::run_aws_device(run, seen, steady::now() + 3s), [&](std::exception_ptr) { done = true; });
  auto driver = [&]() -> asio::awaitable<void> {
    while (seen.sessions_started.empty()) co_await pause(5ms);
    co_await pause(1100ms);
    const auto sent = steady::now();
    auto w = f.hub->core().aws_update_shadow("sync-005", "", R"({"state":{"desired":{"brightness":42}}})",
                                             std::chrono::system_clock::now());
    REQUIRE(w.has_value());
    checker.desired_written("sync-005", w->at("version").to_number<std::int64_t>(), json::object{{"brightness", 42}}, sent);
  };
  asio::co_spawn(f.io, driver(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  f.run_until(done, 20s);
  REQUIRE(done);
  auto shadow = f.hub->core().aws_get_shadow("sync-005", "", std::chrono::system_clock::now());
  REQUIRE(shadow.has_value());
  const auto& state = shadow->at("state").as_object();
  checker.audit("sync-005", state.at("desired").as_object(), state.at("reported").as_object(),
                check::device_mapping{{{"brightness", "brightness", check::ack_form::mirror}}}, steady::now());

  // The delta came first, then a document at least as new.
  const auto delta_at = std::find_if(seen.delivered.begin(), seen.delivered.end(),
                                     [](const auto& d) { return d.second == device::desired_via::delta; });
  const auto get_at = std::find_if(seen.delivered.begin(), seen.delivered.end(),
                                   [](const auto& d) { return d.second == device::desired_via::get; });
  REQUIRE(delta_at != seen.delivered.end());
  REQUIRE(get_at != seen.delivered.end());
  REQUIRE(delta_at < get_at);
  REQUIRE(get_at->first >= delta_at->first);
  // Applied once, from the document; the queued delta dropped.
  CHECK(std::none_of(seen.applied.begin(), seen.applied.end(), [](const auto& a) { return a.second == device::desired_via::delta; }));
  CHECK(state.at("reported").at("brightness") == json::value(42));
  const auto r = checker.finish(steady::now());
  INFO(json::serialize(r.to_json()));
  CHECK(r.total_anomalies() == 0);
  CHECK(r.converged == 1);
}

TEST_CASE("device events: an AWS device whose reported update timed out after the hub applied it answers the next delta "
          "for the value it had before",
          "[device][aws][check][integration]") {
  // The device reports brightness 20; the hub applies it but its /update/accepted is lost, so
  // the report times out. The back end then writes back the value the device had reported
  // before (80): the shadow's reported holds 20, so a delta {brightness: 80} comes. A device
  // that still believed the shadow held 80 would skip answering it and stay diverged forever.
  hub_fixture f;
  device::aws_device_run run;
  run.device_profile = bulb_profile("");
  run.seed = 17;
  run.session.thing_name = "sync-004";
  run.session.client_id = "sync-004";
  run.hub = f.hub->listeners().at(0).endpoint;
  run.request_timeout = 300ms;
  check::checker_options o;
  o.run_start = steady::now();
  check::sync_checker checker(o);
  checker_feed seen(checker);
  bool done = false;
  asio::co_spawn(f.io, device::run_aws_device(run, seen, steady::now() + 2500ms), [&](std::exception_ptr) { done = true; });
  const auto desire = [&](int b) {
    auto w = f.hub->core().aws_update_shadow("sync-004", "", R"({"state":{"desired":{"brightness":)" + std::to_string(b) + "}}}",
                                             std::chrono::system_clock::now());
    REQUIRE(w.has_value());
  };
  const auto reported_brightness = [&]() -> std::int64_t {
    auto shadow = f.hub->core().aws_get_shadow("sync-004", "", std::chrono::system_clock::now());
    REQUIRE(shadow.has_value());
    const auto* b = shadow->at("state").as_object().at("reported").as_object().if_contains("brightness");
    return b != nullptr ? b->to_number<std::int64_t>() : -1;
  };
  auto driver = [&]() -> asio::awaitable<void> {
    co_await pause(400ms);
    REQUIRE(reported_brightness() == 80);  // the profile's initial value, reported on connect
    hub::fault_settings lose_accepted;
    hub::delivery_fault drop;
    drop.kinds = {hub::outbound_kind::aws_accepted};
    drop.drop = 1;
    lose_accepted.delivery.push_back(drop);
    f.hub->core().set_faults(lose_accepted, std::chrono::system_clock::now());
    desire(20);
    co_await pause(700ms);  // applied (20 ms–200 ms), reported, the answer lost, timed out (300 ms)
    CHECK(reported_brightness() == 20);
    f.hub->core().set_faults(hub::fault_settings{}, std::chrono::system_clock::now());
    desire(80);
  };
  asio::co_spawn(f.io, driver(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  f.run_until(done, 20s);
  REQUIRE(done);
  CHECK(reported_brightness() == 80);
}
