// A profile's device alive on the real local hub (embedded, plain MQTT on loopback): it
// connects, reconciles, acknowledges desired writes as IoT Plug and Play says, answers its
// method, reports and sends telemetry, and the hub sees all of it.
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

#include <filesystem>

using namespace twinfleet;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace json = boost::json;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::string_view fast_bulb = R"(
name: fast-bulb
identity: { id: "bulb-{index:03}" }
desired:
  on: { type: boolean, initial: false }
  brightness: { type: integer, min: 0, max: 100, initial: 80, apply_after: 20ms }
reported:
  firmware: { constant: "2.3.1" }
  led: { constant: false, on: change }
  power_w: { walk: { start: 7.5, step: 0.3, min: 0, max: 9, decimals: 2 }, every: 300ms }
commands:
  blink:
    latency: 10ms
    status: 200
    response: { blinked: true, times: "{request.times}" }
    effects:
      - blink: { property: led, count: 1, on_time: 100ms }
telemetry:
  power:
    every: 200ms
    fields:
      power_w: reported.power_w
      brightness: desired.brightness
lifecycle:
  keep_alive: 60s
  reconnect: { initial: 100ms, max: 1s }
)";

// The local hub these tests run against: any device id, plain MQTT on a free loopback port, quiet.
hub::hub_options loopback_hub(const std::filesystem::path& certs) {
  hub::hub_options options;
  options.settings.auth = hub::auth_mode::open;
  options.certs_dir = certs;
  options.listeners = {{hub::listener_protocol::mqtt, {asio::ip::make_address("127.0.0.1"), 0}, {}}};
  options.log = [](std::string_view) {};
  return options;
}

// Device `id` of `profile` on that hub (its first listener), with the hub's key for the id.
device::azure_device_run device_run(hub::local_hub& hub, std::shared_ptr<const device::profile> profile, std::string id,
                                    std::uint64_t index, std::uint64_t seed) {
  device::azure_device_run run;
  run.device_profile = std::move(profile);
  run.index = index;
  run.seed = seed;
  run.session.sas_key = hub.core().device_key_for(id);
  run.session.device_id = std::move(id);
  run.hub = hub.listeners().at(0).endpoint;
  return run;
}

struct recorder : device::device_observer {
  int connects = 0;
  int reports_ok = 0;
  int telemetry_ok = 0;
  std::vector<std::pair<std::int64_t, int>> applied;
  void connected(std::string_view, std::chrono::nanoseconds) override { ++connects; }
  void reported(std::string_view, std::size_t, std::chrono::nanoseconds, bool ok) override { reports_ok += ok ? 1 : 0; }
  void telemetry_sent(std::string_view, std::chrono::nanoseconds, bool ok) override { telemetry_ok += ok ? 1 : 0; }
  void desired_applied(std::string_view, std::int64_t v, int status) override { applied.emplace_back(v, status); }
};

}  // namespace

TEST_CASE("azure device: a profile's device reconciles, acknowledges, answers and reports on the local hub",
          "[device][azure][integration]") {
  config::diagnostics diags;
  auto profile = scenario::load_profile_string(fast_bulb, "fast-bulb.yaml", diags);
  INFO(diags.to_string());
  REQUIRE(profile);

  asio::io_context io;
  test::temp_dir dir;
  auto options = loopback_hub(dir.path());
  hub::local_hub hub(io.get_executor(), options);
  REQUIRE_FALSE(hub.start());

  auto run = device_run(hub, profile, "bulb-001", 1, 42);
  recorder seen;
  bool device_done = false;
  asio::co_spawn(io, device::run_azure_device(run, seen, steady::now() + 2500ms),
                 [&](std::exception_ptr) { device_done = true; });

  std::optional<hub::method_response> blink;
  auto driver = [&]() -> asio::awaitable<void> {
    asio::steady_timer t(io);
    t.expires_after(700ms);
    co_await t.async_wait(asio::use_awaitable);
    auto write = hub.core().azure_update_twin("bulb-001", test::jv(R"({"properties":{"desired":{"brightness":40}}})"),
                                              {}, false, std::chrono::system_clock::now());
    REQUIRE(write.has_value());
    t.expires_after(300ms);
    co_await t.async_wait(asio::use_awaitable);
    // Out of range: refused with ac 400, the value in force stays 40.
    auto refused = hub.core().azure_update_twin("bulb-001", test::jv(R"({"properties":{"desired":{"brightness":150}}})"),
                                                {}, false, std::chrono::system_clock::now());
    REQUIRE(refused.has_value());
    hub.core().azure_invoke_method("bulb-001", test::jv(R"({"methodName":"blink","payload":{"times":2},"responseTimeoutInSeconds":5})"),
                                   std::chrono::system_clock::now(),
                                   [&](twin::result<hub::method_response> r) {
                                     if (r) blink = *r;
                                   });
  };
  asio::co_spawn(io, driver(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  const auto deadline = steady::now() + 15s;
  while (!device_done && steady::now() < deadline) io.run_for(100ms);
  REQUIRE(device_done);

  const auto twin = hub.core().azure_get_twin("bulb-001");
  REQUIRE(twin.has_value());
  const auto& reported = twin->at("properties").at("reported").as_object();
  INFO(json::serialize(reported));
  CHECK(reported.at("firmware") == "2.3.1");
  CHECK(reported.at("power_w").is_number());
  // The last write (version 3) was refused: ac 400, av 3, and the value in force is still 40.
  CHECK(reported.at("brightness").at("value") == 40);
  CHECK(reported.at("brightness").at("ac") == 400);
  CHECK(reported.at("brightness").at("av") == 3);
  CHECK(std::find(seen.applied.begin(), seen.applied.end(), std::pair<std::int64_t, int>{2, 200}) != seen.applied.end());
  CHECK(std::find(seen.applied.begin(), seen.applied.end(), std::pair<std::int64_t, int>{3, 400}) != seen.applied.end());
  REQUIRE(blink.has_value());
  CHECK(blink->status == 200);
  CHECK(blink->payload == test::jv(R"({"blinked":true,"times":2})"));
  CHECK(seen.connects == 1);
  CHECK(seen.telemetry_ok >= 5);
  CHECK(hub.core().counters().azure_telemetry == static_cast<std::uint64_t>(seen.telemetry_ok));
  CHECK(seen.reports_ok >= 4);
  CHECK(hub.core().connected_devices() == 0);  // disconnected at the end

  bool stopped = false;
  hub.async_stop([&] { stopped = true; });
  for (int i = 0; i < 100 && !stopped; ++i) io.run_for(50ms);
  CHECK(stopped);
}

TEST_CASE("azure device: a flaky network drops the device now and then, and it comes back and reconciles",
          "[device][azure][integration]") {
  config::diagnostics diags;
  auto profile = scenario::load_profile_string(R"(
name: flaky-bulb
identity: { id: "flaky-{index:03}" }
desired:
  brightness: { type: integer, min: 0, max: 100, initial: 80 }
reported:
  firmware: { constant: "2.3.1" }
lifecycle:
  keep_alive: 60s
  reconnect: { initial: 50ms, max: 100ms, jitter: 0% }
  flaky_disconnects: 1/s
)", "flaky-bulb.yaml", diags);
  INFO(diags.to_string());
  REQUIRE(profile);

  asio::io_context io;
  test::temp_dir dir;
  auto options = loopback_hub(dir.path());
  hub::local_hub hub(io.get_executor(), options);
  REQUIRE_FALSE(hub.start());

  auto run = device_run(hub, profile, "flaky-001", 0, 7);
  recorder seen;
  bool done = false;
  asio::co_spawn(io, device::run_azure_device(run, seen, steady::now() + 4s), [&](std::exception_ptr) { done = true; });
  // Written while the device drops in and out: it must end up acknowledging the last value.
  auto driver = [&]() -> asio::awaitable<void> {
    asio::steady_timer t(io);
    for (int v = 1; v <= 5; ++v) {
      t.expires_after(600ms);
      co_await t.async_wait(asio::use_awaitable);
      auto w = hub.core().azure_update_twin(
          "flaky-001", test::jv(R"({"properties":{"desired":{"brightness":)" + std::to_string(v * 10) + "}}}"), {},
          false, std::chrono::system_clock::now());
      REQUIRE(w.has_value());
    }
  };
  asio::co_spawn(io, driver(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  const auto deadline = steady::now() + 20s;
  while (!done && steady::now() < deadline) io.run_for(100ms);
  REQUIRE(done);
  // About 4 drops are expected in 4 s at 1/s (the gaps are drawn from the seed).
  CHECK(seen.connects >= 3);
  CHECK(hub.core().counters().connections_accepted == static_cast<std::uint64_t>(seen.connects));
  const auto twin = hub.core().azure_get_twin("flaky-001");
  REQUIRE(twin.has_value());
  INFO(boost::json::serialize(*twin));
  CHECK(twin->at("properties").at("reported").at("brightness").at("value") == 50);
  CHECK(twin->at("properties").at("reported").at("brightness").at("av") == 6);
  bool stopped = false;
  hub.async_stop([&] { stopped = true; });
  for (int i = 0; i < 100 && !stopped; ++i) io.run_for(50ms);
}

TEST_CASE("azure devices: a thread's connecting limit lets its devices connect and synchronise a few at a time, in order",
          "[device][azure][integration]") {
  config::diagnostics diags;
  auto profile = scenario::load_profile_string(R"(
name: plain-bulb
identity: { id: "plain-{index:03}" }
reported:
  firmware: { constant: "2.3.1" }
lifecycle:
  keep_alive: 60s
)", "plain-bulb.yaml", diags);
  INFO(diags.to_string());
  REQUIRE(profile);

  // Connects of 6 devices started together; every twin GET answer is held back 300 ms by the
  // hub, so a device stays in its connect-and-synchronise phase for at least that long.
  auto connect_times = [&](std::size_t limit) {
    asio::io_context io;
    test::temp_dir dir;
    auto options = loopback_hub(dir.path());
    options.settings.faults.delivery = {hub::delivery_fault{{hub::outbound_kind::azure_twin_response}, 300ms}};
    hub::local_hub hub(io.get_executor(), options);
    REQUIRE_FALSE(hub.start());
    device::limit_connecting_on_this_thread(limit);

    struct timing : device::device_observer {
      std::vector<std::pair<steady::time_point, std::string>> connected_at;
      void connected(std::string_view id, std::chrono::nanoseconds) override { connected_at.emplace_back(steady::now(), id); }
    } seen;
    int done = 0;
    const auto until = steady::now() + 2s;
    for (int i = 1; i <= 6; ++i) {
      auto run = device_run(hub, profile, "plain-00" + std::to_string(i), static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(i));
      asio::co_spawn(io, device::run_azure_device(run, seen, until), [&](std::exception_ptr) { ++done; });
    }
    const auto deadline = steady::now() + 15s;
    while (done < 6 && steady::now() < deadline) io.run_for(100ms);
    device::limit_connecting_on_this_thread(0);
    REQUIRE(done == 6);
    bool stopped = false;
    hub.async_stop([&] { stopped = true; });
    for (int i = 0; i < 100 && !stopped; ++i) io.run_for(50ms);
    return seen.connected_at;
  };

  using ms = std::chrono::milliseconds;
  const auto gated = connect_times(2);
  REQUIRE(gated.size() == 6);
  // Two at a time: the third connects only once one of the first two has its twin (>= 300 ms),
  // the fifth once one of the next two has.
  CHECK(std::chrono::duration_cast<ms>(gated[2].first - gated[0].first).count() >= 250);
  CHECK(std::chrono::duration_cast<ms>(gated[4].first - gated[2].first).count() >= 250);
  // First come, first served: the devices were started in id order.
  for (std::size_t i = 0; i < gated.size(); ++i) CHECK(gated[i].second == "plain-00" + std::to_string(i + 1));

  const auto free_for_all = connect_times(0);
  REQUIRE(free_for_all.size() == 6);
  CHECK(std::chrono::duration_cast<ms>(free_for_all[5].first - free_for_all[0].first).count() < 250);
}

TEST_CASE("azure device: started without a coroutine of the caller's, an idle device parks and still answers writes, "
          "methods and a stop",
          "[device][azure][integration]") {
  config::diagnostics diags;
  // Nothing periodic: once synchronised, the device has nothing due and parks (no coroutine).
  auto profile = scenario::load_profile_string(R"(
name: quiet-bulb
identity: { id: "quiet-{index:03}" }
desired:
  brightness: { type: integer, min: 0, max: 100, initial: 80 }
reported:
  firmware: { constant: "2.3.1" }
commands:
  blink: { status: 200, response: { blinked: true } }
lifecycle:
  keep_alive: 60s
)", "quiet-bulb.yaml", diags);
  INFO(diags.to_string());
  REQUIRE(profile);

  asio::io_context io;
  test::temp_dir dir;
  auto options = loopback_hub(dir.path());
  hub::local_hub hub(io.get_executor(), options);
  REQUIRE_FALSE(hub.start());

  auto run = device_run(hub, profile, "quiet-001", 1, 5);
  run.start_at = steady::now() + 300ms;  // waits for its place parked, too
  recorder seen;
  auto stop = std::make_shared<std::atomic<bool>>(false);
  bool ended = false;
  device::start_azure_device(io.get_executor(), run, seen, steady::now() + 30s, stop, [&] { ended = true; });
  auto run_until = [&](auto done, std::chrono::milliseconds bound) {
    const auto deadline = steady::now() + bound;
    while (!done() && steady::now() < deadline) io.run_for(20ms);
    return done();
  };
  REQUIRE(run_until([&] { return seen.connects == 1 && hub.core().connected_devices() == 1; }, 5s));
  // Past park_after (2 s) with nothing due: parked.
  io.run_for(2500ms);
  CHECK_FALSE(ended);

  auto write = hub.core().azure_update_twin("quiet-001", test::jv(R"({"properties":{"desired":{"brightness":40}}})"), {},
                                            false, std::chrono::system_clock::now());
  REQUIRE(write.has_value());
  CHECK(run_until([&] { return std::find(seen.applied.begin(), seen.applied.end(), std::pair<std::int64_t, int>{2, 200}) !=
                               seen.applied.end(); },
                  2s));
  std::optional<hub::method_response> blink;
  hub.core().azure_invoke_method("quiet-001", test::jv(R"({"methodName":"blink","payload":{},"responseTimeoutInSeconds":5})"),
                                 std::chrono::system_clock::now(), [&](twin::result<hub::method_response> r) {
                                   if (r) blink = *r;
                                 });
  CHECK(run_until([&] { return blink.has_value(); }, 2s));
  if (blink) CHECK(blink->status == 200);
  const auto twin = hub.core().azure_get_twin("quiet-001");
  REQUIRE(twin.has_value());
  CHECK(twin->at("properties").at("reported").at("brightness").at("value") == 40);

  // Parked again, then stopped the way the engine stops its threads' devices.
  io.run_for(2500ms);
  stop->store(true);
  asio::post(io, [] { device::wake_devices_on_this_thread(); });
  CHECK(run_until([&] { return ended; }, 2s));
  CHECK(hub.core().connected_devices() == 0);  // it disconnected before ending
  CHECK(seen.connects == 1);

  bool stopped = false;
  hub.async_stop([&] { stopped = true; });
  for (int i = 0; i < 100 && !stopped; ++i) io.run_for(50ms);
}
