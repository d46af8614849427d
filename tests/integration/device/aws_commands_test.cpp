// The AWS command-topic convention (docs/PROFILES.md) on the device side, against the real
// local hub (embedded, plain MQTT on loopback): a request published as the back end does it
// (the data plane's HTTPS publish, here the hub core's) reaches the device on
// twinfleet/things/{thing}/commands/{name}; its answer reaches a back-end MQTT connection
// subscribed to twinfleet/things/+/commands/+/response; unknown commands get 404; the
// command's effects change the shadow.
#include <twinfleet/backends/service_aws_commands.hpp>
#include <twinfleet/backends/service_hub_json.hpp>
#include <twinfleet/device/aws_runner.hpp>
#include <twinfleet/hub/local_hub.hpp>
#include <twinfleet/net/client.hpp>
#include <twinfleet/scenario/profile_loader.hpp>

#include "json_test_util.hpp"
#include "process.hpp"
#include "test_data.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <map>

using namespace twinfleet;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace json = boost::json;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::string_view screen_profile = R"(
name: screen
identity: { id: "screen-{index:03}" }
reported:
  screen_text: { constant: "idle", on: change }
commands:
  display:
    latency: 20ms
    status: 200
    response: { shown: "{request.text}", by: "{id}" }
    effects:
      - set: { screen_text: "hello from the back end" }
  busy:
    status: 503
    response: { retry: true }
lifecycle:
  keep_alive: 60s
  reconnect: { initial: 100ms, max: 1s }
)";

struct recorder : device::device_observer {
  std::vector<std::pair<std::string, int>> answered;
  void method_answered(std::string_view, std::string_view name, int status) override {
    answered.emplace_back(std::string(name), status);
  }
};

}  // namespace

TEST_CASE("aws device: commands on the twinfleet topic convention are answered with status and payload, unknown ones "
          "with 404, and their effects reach the shadow",
          "[device][aws][commands][integration]") {
  config::diagnostics diags;
  auto profile = scenario::load_profile_string(screen_profile, "screen.yaml", diags);
  INFO(diags.to_string());
  REQUIRE(profile);

  asio::io_context io;
  test::temp_dir dir;
  hub::hub_options options;
  options.settings.auth = hub::auth_mode::open;
  options.certs_dir = dir.path();
  options.listeners = {{hub::listener_protocol::mqtt, {asio::ip::make_address("127.0.0.1"), 0}, {}}};
  options.log = [](std::string_view) {};
  hub::local_hub hub(io.get_executor(), options);
  REQUIRE_FALSE(hub.start());
  const auto endpoint = hub.listeners().at(0).endpoint;

  device::aws_device_run run;
  run.device_profile = profile;
  run.index = 7;
  run.seed = 5;
  run.session.thing_name = "screen-007";
  run.hub = endpoint;
  recorder seen;
  auto stop = std::make_shared<std::atomic<bool>>(false);
  bool device_done = false;
  asio::co_spawn(io, device::run_aws_device(run, seen, steady::now() + 20s, stop),
                 [&](std::exception_ptr) { device_done = true; });

  // The back end's side: responses by requestId, as a back end's MQTT connection sees them.
  std::map<std::string, std::pair<std::string, json::value>> responses;  // requestId → (topic, body)
  net::client_connection backend(io.get_executor());
  backend.set_message_handler([&](const mqtt::publish_packet& p) {
    auto body = json::parse(p.payload);
    const auto& id = body.at("requestId");
    responses[id.is_string() ? std::string(id.as_string()) : json::serialize(id)] = {std::string(p.topic), body};
  });
  bool driver_done = false;
  auto driver = [&]() -> asio::awaitable<void> {
    mqtt::connect_packet hello;
    hello.client_id = "backend-commands";
    hello.keep_alive = 60;
    const net::client_transport tcp;
    const auto connected = co_await backend.async_connect(endpoint, tcp, hello, 5s);
    REQUIRE_FALSE(connected);
    mqtt::subscription sub;
    sub.filter = "twinfleet/things/+/commands/+/response";
    sub.qos = mqtt::qos::at_least_once;
    auto codes = co_await backend.async_subscribe(std::span<const mqtt::subscription>(&sub, 1));
    REQUIRE(codes.has_value());
    REQUIRE(codes->at(0) == mqtt::suback_code::granted_qos1);
    // The device subscribes to its commands before it GETs its shadow and reports its first
    // values: once the shadow holds them, requests reach it.
    asio::steady_timer t(io);
    const auto ready_by = steady::now() + 10s;
    for (;;) {
      auto shadow = hub.core().aws_get_shadow("screen-007", "", std::chrono::system_clock::now());
      if (shadow && shadow->at("state").as_object().contains("reported")) break;
      REQUIRE(steady::now() < ready_by);
      t.expires_after(20ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    const auto now = std::chrono::system_clock::now;
    const auto q1 = mqtt::qos::at_least_once;
    REQUIRE(hub.core().aws_publish("twinfleet/things/screen-007/commands/display",
                                   R"({"requestId":"r-1","payload":{"text":"hi"}})", q1, now()));
    REQUIRE(hub.core().aws_publish("twinfleet/things/screen-007/commands/busy", R"({"requestId":7})", q1, now()));
    REQUIRE(hub.core().aws_publish("twinfleet/things/screen-007/commands/reboot-now",
                                   R"({"requestId":"r-3","payload":{}})", q1, now()));
    // Not a request of the convention: no requestId, not JSON, another thing's topic. Ignored.
    REQUIRE(hub.core().aws_publish("twinfleet/things/screen-007/commands/display", R"({"payload":{}})", q1, now()));
    REQUIRE(hub.core().aws_publish("twinfleet/things/screen-007/commands/display", "not json", q1, now()));
    REQUIRE(hub.core().aws_publish("twinfleet/things/screen-008/commands/display", R"({"requestId":"r-x"})", q1, now()));
    const auto answered_by = steady::now() + 10s;
    while (responses.size() < 3 && steady::now() < answered_by) {
      t.expires_after(10ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    // The effect's reported update follows the response: wait for it in the shadow (bounded).
    while (steady::now() < answered_by) {
      auto shadow = hub.core().aws_get_shadow("screen-007", "", std::chrono::system_clock::now());
      if (shadow && shadow->at("state").at("reported").at("screen_text") == "hello from the back end") break;
      t.expires_after(10ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    // Anything a wrong request would have caused has had time to arrive behind the answers.
    t.expires_after(200ms);
    co_await t.async_wait(asio::use_awaitable);
    stop->store(true);
    device::wake_devices_on_this_thread();  // the device runs on this thread: it ends now, not at its next wake-up
    (void)co_await backend.async_disconnect();
    driver_done = true;
  };
  asio::co_spawn(io, driver(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  const auto deadline = steady::now() + 30s;
  while (!(device_done && driver_done) && steady::now() < deadline) io.run_for(100ms);
  REQUIRE(driver_done);
  REQUIRE(device_done);

  REQUIRE(responses.size() == 3);
  CHECK(responses.at("r-1").first == "twinfleet/things/screen-007/commands/display/response");
  CHECK(responses.at("r-1").second == test::jv(R"({"requestId":"r-1","status":200,"payload":{"shown":"hi","by":"screen-007"}})"));
  CHECK(responses.at("7").first == "twinfleet/things/screen-007/commands/busy/response");
  CHECK(responses.at("7").second == test::jv(R"({"requestId":7,"status":503,"payload":{"retry":true}})"));
  CHECK(responses.at("r-3").first == "twinfleet/things/screen-007/commands/reboot-now/response");
  CHECK(responses.at("r-3").second.at("status") == 404);
  CHECK(seen.answered.size() == 3);
  CHECK(std::count(seen.answered.begin(), seen.answered.end(), std::pair<std::string, int>{"display", 200}) == 1);
  CHECK(std::count(seen.answered.begin(), seen.answered.end(), std::pair<std::string, int>{"reboot-now", 404}) == 1);
  const auto shadow = hub.core().aws_get_shadow("screen-007", "", std::chrono::system_clock::now());
  REQUIRE(shadow.has_value());
  CHECK(shadow->at("state").at("reported").at("screen_text") == "hello from the back end");
}

TEST_CASE("aws command client: a back end's call is answered by the device, unknown commands with 404, a thing nobody "
          "answers for times out, an unreachable broker is a connect error",
          "[backends][aws][commands][integration]") {
  config::diagnostics diags;
  auto profile = scenario::load_profile_string(screen_profile, "screen.yaml", diags);
  INFO(diags.to_string());
  REQUIRE(profile);

  asio::io_context io;
  test::temp_dir dir;
  hub::hub_options options;
  options.settings.auth = hub::auth_mode::open;
  options.certs_dir = dir.path();
  options.listeners = {{hub::listener_protocol::mqtt, {asio::ip::make_address("127.0.0.1"), 0}, {}},
                       {hub::listener_protocol::http, {asio::ip::make_address("127.0.0.1"), 0}, {}}};
  options.log = [](std::string_view) {};
  hub::local_hub hub(io.get_executor(), options);
  REQUIRE_FALSE(hub.start());
  const auto mqtt_endpoint = hub.listeners().at(0).endpoint;
  auto rest_options = backends::aws_service_options_from_hub_json(hub.describe(), true);
  REQUIRE(rest_options);
  auto rest = backends::aws_service_client::create(io.get_executor(), *rest_options);
  REQUIRE(rest);

  device::aws_device_run run;
  run.device_profile = profile;
  run.index = 1;
  run.session.thing_name = "screen-001";
  run.hub = mqtt_endpoint;
  recorder seen;
  auto stop = std::make_shared<std::atomic<bool>>(false);
  bool device_done = false;
  asio::co_spawn(io, device::run_aws_device(run, seen, steady::now() + 20s, stop),
                 [&](std::exception_ptr) { device_done = true; });

  backends::aws_command_options command_options;
  command_options.broker = mqtt_endpoint;
  backends::aws_command_client commands(io.get_executor(), **rest, command_options);
  backends::aws_command_options nowhere_options;
  nowhere_options.broker = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), test::free_local_port());
  nowhere_options.connect_timeout = 2s;
  backends::aws_command_client nowhere(io.get_executor(), **rest, nowhere_options);

  std::optional<backends::service_result<backends::aws_command_response>> shown, unknown, silent, unreachable;
  bool driver_done = false;
  auto driver = [&]() -> asio::awaitable<void> {
    asio::steady_timer t(io);
    const auto ready_by = steady::now() + 10s;
    for (;;) {  // subscribed to its commands once its first report is in the shadow
      auto shadow = hub.core().aws_get_shadow("screen-001", "", std::chrono::system_clock::now());
      if (shadow && shadow->at("state").as_object().contains("reported")) break;
      REQUIRE(steady::now() < ready_by);
      t.expires_after(20ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    const json::value request = test::jv(R"({"text":"hi"})");
    auto a = co_await commands.async_invoke("screen-001", "display", request, 5s);
    shown = std::move(a);
    auto b = co_await commands.async_invoke("screen-001", "reboot-now", request, 5s);
    unknown = std::move(b);
    auto c = co_await commands.async_invoke("screen-999", "display", request, 300ms);
    silent = std::move(c);
    auto d = co_await nowhere.async_invoke("screen-001", "display", request, 5s);
    unreachable = std::move(d);
    co_await commands.async_stop();
    stop->store(true);
    device::wake_devices_on_this_thread();  // the device runs on this thread: it ends now, not at its next wake-up
    driver_done = true;
  };
  asio::co_spawn(io, driver(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  const auto deadline = steady::now() + 30s;
  while (!(device_done && driver_done) && steady::now() < deadline) io.run_for(100ms);
  REQUIRE(driver_done);
  REQUIRE(device_done);

  REQUIRE(shown->has_value());
  CHECK((*shown)->status == 200);
  CHECK((*shown)->payload == test::jv(R"({"shown":"hi","by":"screen-001"})"));
  REQUIRE(unknown->has_value());
  CHECK((*unknown)->status == 404);
  REQUIRE_FALSE(silent->has_value());
  CHECK(silent->error().kind == backends::service_failure::timeout);
  REQUIRE_FALSE(unreachable->has_value());
  CHECK(unreachable->error().kind == backends::service_failure::connect);
  CHECK(commands.pending() == 0);
}
