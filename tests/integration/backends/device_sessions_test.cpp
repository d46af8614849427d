// The device sessions (sim/backends azure_device_session, aws_device_session) against a real
// local hub in this process: listeners on 127.0.0.1:0 (plain MQTT and MQTT over TLS), the
// service side driven through hub_core, faults through set_faults. Every wait is bounded and
// the io_context runs with a deadline.
//
// GCC 12: every co_await result goes into a local first; no co_await inside a Catch macro;
// no non-trivially destructible temporary inside a co_await expression.
#include <twinfleet/auth/dev_ca.hpp>
#include <twinfleet/auth/tls.hpp>
#include <twinfleet/backends/aws_device_session.hpp>
#include <twinfleet/backends/azure_device_session.hpp>
#include <twinfleet/backends/reconcile.hpp>
#include <twinfleet/hub/local_hub.hpp>
#include <twinfleet/net/error.hpp>

#include "json_test_util.hpp"
#include "test_data.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

using namespace twinfleet;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using test::jo;
using test::jv;
namespace json = boost::json;

namespace {

constexpr auto request_timeout = 5s;

// Runs `body` on `io` until it completes, at most `limit`; rethrows what it threw.
void run(asio::io_context& io, asio::awaitable<void> body, std::chrono::milliseconds limit = 20s) {
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(body), [&](std::exception_ptr e) {
    done = true;
    error = e;
  });
  const auto deadline = std::chrono::steady_clock::now() + limit;
  io.restart();
  while (!done && std::chrono::steady_clock::now() < deadline) {
    io.run_one_for(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
  }
  if (error) std::rethrow_exception(error);
  if (!done) FAIL("the test coroutine did not finish within " << limit.count() << " ms");
}

// Polls `condition` every 2 ms until it holds or `limit` passes; returns it.
asio::awaitable<bool> wait_until(const std::function<bool()>& condition, std::chrono::milliseconds limit = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  asio::steady_timer t(co_await asio::this_coro::executor);
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    t.expires_after(2ms);
    co_await t.async_wait(asio::use_awaitable);
  }
  co_return true;
}

// A local hub on 127.0.0.1:0 with a plain MQTT and an MQTT/TLS listener, certificates in a
// temporary folder (client certificates for `client_names` written first, with the hub's CA).
struct hub_fixture {
  explicit hub_fixture(hub::auth_mode mode, std::vector<std::string> client_names = {}) {
    auth::dev_ca_options ca;
    ca.directory = dir.path();
    ca.client_common_names = std::move(client_names);
    auto written = auth::write_dev_ca(ca);
    REQUIRE(written);
    clients = written->clients;
    hub::hub_options o;
    o.settings.auth = mode;
    o.certs_dir = dir.path();
    hub::listener_spec plain_spec;
    plain_spec.protocol = hub::listener_protocol::mqtt;
    hub::listener_spec tls_spec;
    tls_spec.protocol = hub::listener_protocol::mqtts;
    o.listeners = {plain_spec, tls_spec};
    o.log = [](std::string_view) {};
    local.emplace(io.get_executor(), std::move(o));
    REQUIRE_FALSE(local->start());
    for (const auto& l : local->listeners()) {
      if (l.protocol == hub::listener_protocol::mqtt) plain = l.endpoint;
      if (l.protocol == hub::listener_protocol::mqtts) tls = l.endpoint;
    }
  }
  ~hub_fixture() {
    bool stopped = false;
    local->async_stop([&] { stopped = true; });
    io.restart();
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!stopped && std::chrono::steady_clock::now() < deadline) io.run_one_for(100ms);
  }
  hub::hub_core& core() { return local->core(); }

  asio::io_context io;
  test::temp_dir dir;
  std::vector<auth::written_certificate> clients;
  std::optional<hub::local_hub> local;
  tcp::endpoint plain;
  tcp::endpoint tls;
};

backends::azure_device_config azure_config(hub_fixture& h, std::string id) {
  backends::azure_device_config c;
  c.device_id = id;
  c.sas_key = h.core().device_key_for(id);
  c.keep_alive = 60;
  return c;
}

}  // namespace

TEST_CASE("azure session: SAS connect, GET, reported patches, conditional 412", "[backends][azure]") {
  hub_fixture h(hub::auth_mode::open);
  run(h.io, [&]() -> asio::awaitable<void> {
    backends::azure_device_session s(co_await asio::this_coro::executor, azure_config(h, "bulb-1"));
    const net::client_transport plain;
    const auto ec = co_await s.async_connect(h.plain, plain, request_timeout);
    REQUIRE_FALSE(ec);
    CHECK(s.token_expiry() > std::chrono::system_clock::now() + 50min);
    CHECK(s.token_renewal_due() < s.token_expiry());

    // Twin requests need the response subscription: refused locally, not left to time out.
    auto early = co_await s.async_get_twin(request_timeout);
    REQUIRE_FALSE(early);
    CHECK(early.error().ec == backends::device_errc::not_subscribed);

    const auto sub = co_await s.async_subscribe(backends::azure_subscription::twin_responses |
                                                backends::azure_subscription::desired);
    REQUIRE_FALSE(sub);
    CHECK(backends::contains(s.subscriptions(), backends::azure_subscription::desired));

    auto twin = co_await s.async_get_twin(request_timeout);
    REQUIRE(twin);
    CHECK(twin->desired.empty());
    const auto v0 = twin->reported_version;

    const auto patch = jo(R"({"on":true,"brightness":40})");
    auto v1 = co_await s.async_patch_reported(patch, std::nullopt, request_timeout);
    REQUIRE(v1);
    CHECK(*v1 == v0 + 1);

    // Several requests outstanding at once, each correlated by its own $rid.
    std::vector<std::int64_t> concurrent;
    auto one = [&](int brightness) -> asio::awaitable<void> {
      json::object p;
      p["brightness"] = brightness;
      auto r = co_await s.async_patch_reported(p, std::nullopt, request_timeout);
      if (r) concurrent.push_back(*r);
    };
    for (int b : {10, 11, 12}) asio::co_spawn(co_await asio::this_coro::executor, one(b), asio::detached);
    const bool all = co_await wait_until([&] { return concurrent.size() == 3; });
    REQUIRE(all);
    std::sort(concurrent.begin(), concurrent.end());
    CHECK(concurrent == std::vector<std::int64_t>{*v1 + 1, *v1 + 2, *v1 + 3});
    const std::int64_t base = *v1 + 3;

    const auto p2 = jo(R"({"brightness":41})");
    const auto p3 = jo(R"({"brightness":42})");
    auto r2 = co_await s.async_patch_reported(p2, base, request_timeout);  // conditional, matches
    REQUIRE(r2);
    CHECK(*r2 == base + 1);
    auto stale = co_await s.async_patch_reported(p3, base, request_timeout);  // conditional, stale
    REQUIRE_FALSE(stale);
    CHECK(stale.error().rejected());
    CHECK(stale.error().status == 412);
    CHECK(stale.error().code == 412001);

    auto after = co_await s.async_get_twin(request_timeout);
    REQUIRE(after);
    CHECK(after->reported_version == *r2);
    CHECK(after->reported.at("brightness") == jv("41"));
    CHECK(h.core().counters().azure_reported_rejected == 1);
    CHECK(s.pending_requests() == 0);
    co_await s.async_disconnect();
  }());
}

TEST_CASE("azure session: a wrong key is refused, TLS with SAS works, X.509 without a password",
          "[backends][azure]") {
  hub_fixture h(hub::auth_mode::open, {"cam-x509"});
  REQUIRE(h.clients.size() == 1);
  auth::tls_client_config x509_config;
  x509_config.ca_file = h.local->ca_file();
  x509_config.certificate_chain_file = h.clients[0].certificate_file;
  x509_config.private_key_file = h.clients[0].key_file;
  auto x509_ctx = auth::make_tls_client_context(x509_config);
  REQUIRE(x509_ctx);
  auto ctx_config = auth::tls_client_config{};
  ctx_config.ca_file = h.local->ca_file();
  auto ctx = auth::make_tls_client_context(ctx_config);
  REQUIRE(ctx);
  run(h.io, [&]() -> asio::awaitable<void> {
    auto bad_config = azure_config(h, "bulb-2");
    bad_config.sas_key = h.core().device_key_for("someone-else");
    backends::azure_device_session bad(co_await asio::this_coro::executor, bad_config);
    const net::client_transport plain;
    const auto refused = co_await bad.async_connect(h.plain, plain, request_timeout);
    CHECK(refused == net::connack_errc::not_authorized);

    backends::azure_device_session s(co_await asio::this_coro::executor, azure_config(h, "bulb-3"));
    net::client_transport tls;
    tls.kind = net::transport_kind::tls;
    tls.tls = &*ctx;
    const auto ec = co_await s.async_connect(h.tls, tls, request_timeout);
    REQUIRE_FALSE(ec);
    const auto sub = co_await s.async_subscribe(backends::azure_subscription::twin_responses);
    REQUIRE_FALSE(sub);
    auto twin = co_await s.async_get_twin(request_timeout);
    CHECK(twin);

    // X.509: no SAS key, so no password; the certificate (CN = device id, signed by the hub's
    // CA) identifies the device.
    backends::azure_device_config cam;
    cam.device_id = "cam-x509";
    backends::azure_device_session x(co_await asio::this_coro::executor, cam);
    net::client_transport x509;
    x509.kind = net::transport_kind::tls;
    x509.tls = &*x509_ctx;
    const auto xec = co_await x.async_connect(h.tls, x509, request_timeout);
    REQUIRE_FALSE(xec);
    CHECK(x.token_expiry() == std::chrono::system_clock::time_point{});
    const auto xsub = co_await x.async_subscribe(backends::azure_subscription::twin_responses);
    REQUIRE_FALSE(xsub);
    const auto xpatch = jo(R"({"firmware":"1.0"})");
    auto xv = co_await x.async_patch_reported(xpatch, std::nullopt, request_timeout);
    CHECK(xv);
  }());
}

TEST_CASE("azure session: desired notifications, methods, telemetry", "[backends][azure]") {
  hub_fixture h(hub::auth_mode::open);
  run(h.io, [&]() -> asio::awaitable<void> {
    backends::azure_device_session s(co_await asio::this_coro::executor, azure_config(h, "thermo-1"));
    std::vector<backends::desired_patch> desired;
    s.set_desired_handler([&](backends::desired_patch& p) { desired.push_back(std::move(p)); });
    s.set_method_handler([&](backends::method_request& m) {
      CHECK(m.name == "blink");
      CHECK(m.payload == jv(R"({"times":3})"));
      const auto answer = jv(R"({"blinked":3})");
      CHECK_FALSE(s.respond_method(m.rid, 200, answer));
    });
    const net::client_transport plain;
    const auto ec = co_await s.async_connect(h.plain, plain, request_timeout);
    REQUIRE_FALSE(ec);
    const auto sub = co_await s.async_subscribe(backends::azure_subscription::twin_responses |
                                                backends::azure_subscription::desired |
                                                backends::azure_subscription::methods);
    REQUIRE_FALSE(sub);

    const auto body = jv(R"({"properties":{"desired":{"target":21.5,"mode":"heat"}}})");
    auto updated = h.core().azure_update_twin("thermo-1", body, twin::if_match{}, false, std::chrono::system_clock::now());
    REQUIRE(updated);
    const bool arrived = co_await wait_until([&] { return !desired.empty(); });
    REQUIRE(arrived);
    CHECK(desired[0].patch == jo(R"({"target":21.5,"mode":"heat"})"));  // $version taken out
    auto twin = co_await s.async_get_twin(request_timeout);
    REQUIRE(twin);
    CHECK(desired[0].version == twin->desired_version);

    std::optional<twin::result<hub::method_response>> method;
    const auto call = jv(R"({"methodName":"blink","payload":{"times":3},"responseTimeoutInSeconds":5})");
    h.core().azure_invoke_method("thermo-1", call, std::chrono::system_clock::now(),
                                 [&](twin::result<hub::method_response> r) { method = std::move(r); });
    const bool answered = co_await wait_until([&] { return method.has_value(); });
    REQUIRE(answered);
    REQUIRE(method->has_value());
    CHECK((*method)->status == 200);
    CHECK((*method)->payload == jv(R"({"blinked":3})"));

    backends::telemetry_properties props;
    props.content_type = "application/json";
    props.content_encoding = "utf-8";
    props.application.emplace_back("alert", "none");
    const std::string reading = R"({"temperature":20.1})";
    const auto sent = co_await s.async_send_telemetry(reading, props);
    CHECK_FALSE(sent);
    const auto sent0 = co_await s.async_send_telemetry(reading, props, mqtt::qos::at_most_once);
    CHECK_FALSE(sent0);
    const bool counted = co_await wait_until([&] { return h.core().counters().azure_telemetry == 2; });
    CHECK(counted);
  }());
}

TEST_CASE("azure session: a hub that stops ends a method call its device never answers, at once, with 504101",
          "[backends][azure]") {
  // A REST request waiting for such a call held the hub's stop open: the timer that ends calls
  // was cancelled when the stop began (a `twinfleet hub` killed after SIGTERM's grace, CI).
  hub_fixture h(hub::auth_mode::open);
  std::optional<twin::result<hub::method_response>> method;
  run(h.io, [&]() -> asio::awaitable<void> {
    backends::azure_device_session s(co_await asio::this_coro::executor, azure_config(h, "mute-1"));
    s.set_method_handler([](backends::method_request&) {});  // never answers
    const net::client_transport plain;
    const auto ec = co_await s.async_connect(h.plain, plain, request_timeout);
    REQUIRE_FALSE(ec);
    const auto sub = co_await s.async_subscribe(backends::azure_subscription::methods);
    REQUIRE_FALSE(sub);
    const auto call = jv(R"({"methodName":"blink","payload":{},"responseTimeoutInSeconds":60})");
    h.core().azure_invoke_method("mute-1", call, std::chrono::system_clock::now(),
                                 [&](twin::result<hub::method_response> r) { method = std::move(r); });
    const bool sent = co_await wait_until([&] { return h.core().counters().azure_methods_invoked == 1; });
    REQUIRE(sent);
    CHECK_FALSE(method.has_value());  // pending: the device has not answered
  }());
  bool stopped = false;
  const auto begun = std::chrono::steady_clock::now();
  h.local->async_stop([&] { stopped = true; });
  h.io.restart();
  while (!stopped && std::chrono::steady_clock::now() - begun < 10s) h.io.run_one_for(100ms);
  CHECK(stopped);
  CHECK(std::chrono::steady_clock::now() - begun < 5s);
  REQUIRE(method.has_value());
  REQUIRE_FALSE(method->has_value());
  CHECK(method->error().code == 504101);
}

TEST_CASE("azure session: subscribe, GET, reconcile drops the notification the GET covers", "[backends][azure]") {
  hub_fixture h(hub::auth_mode::open);
  run(h.io, [&]() -> asio::awaitable<void> {
    backends::azure_device_session s(co_await asio::this_coro::executor, azure_config(h, "pi-1"));
    backends::azure_desired_reconciler reconciler;
    std::vector<backends::desired_patch> applied;
    std::size_t received = 0;
    s.set_desired_handler([&](backends::desired_patch& p) {
      ++received;
      if (reconciler.on_notification(p) == backends::azure_desired_reconciler::verdict::apply) {
        applied.push_back(std::move(p));
      }
    });
    const net::client_transport plain;
    const auto ec = co_await s.async_connect(h.plain, plain, request_timeout);
    REQUIRE_FALSE(ec);
    const auto sub = co_await s.async_subscribe(backends::azure_subscription::twin_responses |
                                                backends::azure_subscription::desired);
    REQUIRE_FALSE(sub);
    reconciler.begin_sync();
    // A desired write lands between SUBSCRIBE and GET: its notification is older than or
    // equal to the GET's snapshot.
    const auto body = jv(R"({"properties":{"desired":{"interval":5}}})");
    auto w1 = h.core().azure_update_twin("pi-1", body, twin::if_match{}, false, std::chrono::system_clock::now());
    REQUIRE(w1);
    const bool first = co_await wait_until([&] { return received == 1; });
    REQUIRE(first);
    auto twin = co_await s.async_get_twin(request_timeout);
    REQUIRE(twin);
    CHECK(twin->desired.at("interval") == jv("5"));
    const auto released = reconciler.take_after_get(twin->desired_version);
    CHECK(released.empty());
    CHECK(reconciler.stale_dropped() == 1);

    const auto body2 = jv(R"({"properties":{"desired":{"interval":7}}})");
    auto w2 = h.core().azure_update_twin("pi-1", body2, twin::if_match{}, false, std::chrono::system_clock::now());
    REQUIRE(w2);
    const bool second = co_await wait_until([&] { return applied.size() == 1; });
    REQUIRE(second);
    CHECK(applied[0].patch.at("interval") == jv("7"));
    CHECK(applied[0].version == twin->desired_version + 1);
  }());
}

TEST_CASE("azure session: GET before subscribing desired misses a write in the gap (get_before_subscribe)",
          "[backends][azure]") {
  hub_fixture h(hub::auth_mode::open);
  run(h.io, [&]() -> asio::awaitable<void> {
    backends::azure_device_session s(co_await asio::this_coro::executor, azure_config(h, "late-1"));
    std::size_t notifications = 0;
    s.set_desired_handler([&](backends::desired_patch&) { ++notifications; });
    const net::client_transport plain;
    const auto ec = co_await s.async_connect(h.plain, plain, request_timeout);
    REQUIRE_FALSE(ec);
    const auto sub = co_await s.async_subscribe(backends::azure_subscription::twin_responses);
    REQUIRE_FALSE(sub);
    auto twin = co_await s.async_get_twin(request_timeout);
    REQUIRE(twin);
    // The write lands after the GET and before the desired subscription: nothing is queued
    // for it (C1.1, C1.2), so this device never hears of it.
    const auto body = jv(R"({"properties":{"desired":{"colour":"blue"}}})");
    auto w = h.core().azure_update_twin("late-1", body, twin::if_match{}, false, std::chrono::system_clock::now());
    REQUIRE(w);
    const auto sub2 = co_await s.async_subscribe(backends::azure_subscription::desired);
    REQUIRE_FALSE(sub2);
    // Only the later write is heard: the hub notified once, for it.
    const auto body2 = jv(R"({"properties":{"desired":{"level":2}}})");
    auto w2 = h.core().azure_update_twin("late-1", body2, twin::if_match{}, false, std::chrono::system_clock::now());
    REQUIRE(w2);
    const bool heard = co_await wait_until([&] { return notifications == 1; });
    REQUIRE(heard);
    CHECK(h.core().counters().azure_desired_notifications == 1);
    CHECK_FALSE(twin->desired.contains("colour"));
  }());
}

TEST_CASE("azure session: subscription activation delay loses the notification, renewal reconnects",
          "[backends][azure]") {
  hub_fixture h(hub::auth_mode::open);
  run(h.io, [&]() -> asio::awaitable<void> {
    auto config = azure_config(h, "mx-1");
    config.token_lifetime = 120s;
    backends::azure_device_session s(co_await asio::this_coro::executor, config);
    std::size_t notifications = 0;
    std::size_t closed = 0;
    s.set_desired_handler([&](backends::desired_patch&) { ++notifications; });
    s.set_closed_handler([&](error_code) { ++closed; });
    const net::client_transport plain;
    const auto ec = co_await s.async_connect(h.plain, plain, request_timeout);
    REQUIRE_FALSE(ec);

    hub::fault_settings faults;
    faults.subscription_activation_delay = 300ms;
    h.core().set_faults(faults, std::chrono::system_clock::now());
    const auto sub = co_await s.async_subscribe(backends::azure_subscription::twin_responses |
                                                backends::azure_subscription::desired);
    REQUIRE_FALSE(sub);
    const auto body = jv(R"({"properties":{"desired":{"led":"red"}}})");
    auto w = h.core().azure_update_twin("mx-1", body, twin::if_match{}, false, std::chrono::system_clock::now());
    REQUIRE(w);
    // The GET right after SUBACK is lost too (C2.4's race, on Azure): it times out.
    auto lost = co_await s.async_get_twin(200ms);
    REQUIRE_FALSE(lost);
    CHECK(lost.error().ec == backends::device_errc::timeout);
    CHECK(notifications == 0);
    h.core().set_faults(hub::fault_settings{}, std::chrono::system_clock::now());

    const auto expiry_before = s.token_expiry();
    const auto again = co_await s.async_reconnect(h.plain, plain, request_timeout);
    REQUIRE_FALSE(again);
    CHECK(closed == 0);  // our own disconnect is not reported
    CHECK(s.token_expiry() >= expiry_before);
    CHECK(backends::contains(s.subscriptions(), backends::azure_subscription::desired));
    auto twin = co_await s.async_get_twin(request_timeout);
    REQUIRE(twin);
    CHECK(twin->desired.at("led") == jv(R"("red")"));

    // A connection the hub closes is reported, and requests waiting on it end.
    h.core().force_disconnect("mx-1");
    const bool seen = co_await wait_until([&] { return closed == 1; });
    CHECK(seen);
    CHECK_FALSE(s.connected());
    auto after = co_await s.async_get_twin(request_timeout);
    REQUIRE_FALSE(after);
    CHECK(after.error().ec == backends::device_errc::not_connected);
  }());
}

// A device's handlers may refer to the state that owns its session without keeping it alive
// (sim/device does): destroying the session must drop them at once, even while a request still
// holds the session's internals, and must call none of them.
TEST_CASE("device sessions: destroyed with a request in flight, a session drops its handlers at once and calls none",
          "[backends][azure][aws]") {
  hub_fixture h(hub::auth_mode::open);
  hub::fault_settings faults;  // answers held for 2 s: the requests are in flight meanwhile
  faults.delivery.push_back({.kinds = {hub::outbound_kind::azure_twin_response, hub::outbound_kind::aws_accepted},
                             .delay = std::chrono::microseconds(2s)});
  h.core().set_faults(faults, std::chrono::system_clock::now());
  run(h.io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    const net::client_transport plain;
    auto token = std::make_shared<int>(0);  // what the handlers hold
    int closed_calls = 0;
    int answered = 0;
    {
      std::optional<backends::azure_device_session> azure;
      azure.emplace(ex, azure_config(h, "bulb-9"));
      azure->set_desired_handler([token](backends::desired_patch&) {});
      azure->set_method_handler([token](backends::method_request&) {});
      azure->set_closed_handler([token, &closed_calls](error_code) { ++closed_calls; });
      const auto ec = co_await azure->async_connect(h.plain, plain, request_timeout);
      REQUIRE_FALSE(ec);
      const auto sub = co_await azure->async_subscribe(backends::azure_subscription::twin_responses);
      REQUIRE_FALSE(sub);
      asio::co_spawn(ex, azure->async_get_twin(request_timeout), [&](std::exception_ptr, auto) { ++answered; });
      const bool sent = co_await wait_until([&] { return h.core().counters().azure_twin_gets > 0; });
      REQUIRE(sent);
      CHECK(token.use_count() == 4);
      azure.reset();
      CHECK(token.use_count() == 1);
    }
    {
      backends::aws_device_config config;
      config.thing_name = "lamp-9";
      std::optional<backends::aws_device_session> aws;
      aws.emplace(ex, config);
      aws->set_delta_handler([token](backends::shadow_delta&) {});
      aws->set_message_handler([token](const backends::shadow_message&) {});
      aws->set_topic_handler([token](const mqtt::publish_packet&) {});
      aws->set_closed_handler([token, &closed_calls](error_code) { ++closed_calls; });
      const auto ec = co_await aws->async_connect(h.plain, plain, request_timeout);
      REQUIRE_FALSE(ec);
      const auto sub = co_await aws->async_subscribe_shadow("");
      REQUIRE_FALSE(sub);
      asio::co_spawn(ex, aws->async_get("", request_timeout), [&](std::exception_ptr, auto) { ++answered; });
      const bool sent = co_await wait_until([&] { return h.core().counters().aws_gets > 0; });
      REQUIRE(sent);
      CHECK(token.use_count() == 5);
      aws.reset();
      CHECK(token.use_count() == 1);
    }
    const bool ended = co_await wait_until([&] { return answered == 2; });
    CHECK(ended);  // the requests end (the connection is gone) ...
    CHECK(closed_calls == 0);  // ... and no handler ran
  }());
}

TEST_CASE("aws session: two sessions of one client id put different tags in their clientTokens (C1.8)", "[backends][aws]") {
  hub_fixture h(hub::auth_mode::open);
  run(h.io, [&]() -> asio::awaitable<void> {
    backends::aws_device_config config;
    config.thing_name = "lamp-2";
    std::vector<std::string> tokens;
    for (int i = 0; i < 2; ++i) {
      backends::aws_device_session s(co_await asio::this_coro::executor, config);
      const net::client_transport plain;
      const auto ec = co_await s.async_connect(h.plain, plain, request_timeout);
      REQUIRE_FALSE(ec);
      const auto sub = co_await s.async_subscribe_shadow("");
      REQUIRE_FALSE(sub);
      const auto state = jo(R"({"reported":{"on":true}})");
      auto u = co_await s.async_update("", state, std::nullopt, request_timeout);
      REQUIRE(u);
      tokens.emplace_back(u->at("clientToken").as_string());
      (void)co_await s.async_disconnect();
    }
    // "lamp-2-<tag>-1" both times: the same client id and counter, different tags.
    for (const auto& t : tokens) {
      CHECK(t.starts_with("lamp-2-"));
      CHECK(t.ends_with("-1"));
      CHECK(t.size() <= 64);
    }
    CHECK(tokens.at(0) != tokens.at(1));
  }());
}

TEST_CASE("aws session: update, get, delete with clientToken, 409 on a stale version, deltas", "[backends][aws]") {
  hub_fixture h(hub::auth_mode::open);
  run(h.io, [&]() -> asio::awaitable<void> {
    backends::aws_device_config config;
    config.thing_name = "lamp-1";
    backends::aws_device_session s(co_await asio::this_coro::executor, config);
    std::vector<backends::shadow_delta> deltas;
    std::vector<std::string> messages;
    s.set_delta_handler([&](backends::shadow_delta& d) { deltas.push_back(std::move(d)); });
    s.set_message_handler([&](const backends::shadow_message& m) {
      messages.push_back(std::string(m.shadow) + (m.own ? " own" : " other"));
    });
    const net::client_transport plain;
    const auto ec = co_await s.async_connect(h.plain, plain, request_timeout);
    REQUIRE_FALSE(ec);

    auto early = co_await s.async_get("", request_timeout);
    REQUIRE_FALSE(early);
    CHECK(early.error().ec == backends::device_errc::not_subscribed);
    const auto sub = co_await s.async_subscribe_shadow("");
    REQUIRE_FALSE(sub);
    const auto sub2 = co_await s.async_subscribe_shadow("config");
    REQUIRE_FALSE(sub2);

    auto missing = co_await s.async_get("", request_timeout);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().status == 404);

    const auto reported = jo(R"({"reported":{"on":false}})");
    auto u1 = co_await s.async_update("", reported, std::nullopt, request_timeout);
    REQUIRE(u1);
    CHECK(u1->at("version") == jv("1"));
    CHECK(u1->at("clientToken").as_string().starts_with("lamp-1-"));

    auto conflict = co_await s.async_update("", reported, 7, request_timeout);
    REQUIRE_FALSE(conflict);
    CHECK(conflict.error().rejected());
    CHECK(conflict.error().status == 409);
    CHECK(conflict.error().message == "Version conflict");

    // A service write of desired produces a delta for the device.
    auto service = h.core().aws_update_shadow("lamp-1", "", R"({"state":{"desired":{"on":true}}})",
                                              std::chrono::system_clock::now());
    REQUIRE(service);
    const bool got_delta = co_await wait_until([&] { return !deltas.empty(); });
    REQUIRE(got_delta);
    CHECK(deltas[0].shadow.empty());
    CHECK(deltas[0].version == 2);
    CHECK(deltas[0].state == jo(R"({"on":true})"));

    auto doc = co_await s.async_get("", request_timeout);
    REQUIRE(doc);
    CHECK(doc->at("version") == jv("2"));
    CHECK(doc->at("state").at("delta") == jv(R"({"on":true})"));

    // Named shadow, conditional update that matches, delete.
    const auto cfg = jo(R"({"reported":{"interval":10}})");
    auto n1 = co_await s.async_update("config", cfg, std::nullopt, request_timeout);
    REQUIRE(n1);
    auto n2 = co_await s.async_update("config", cfg, 1, request_timeout);
    REQUIRE(n2);
    CHECK(n2->at("version") == jv("2"));
    auto del = co_await s.async_delete("config", std::nullopt, request_timeout);
    REQUIRE(del);
    CHECK(del->at("version") == jv("2"));
    auto gone = co_await s.async_get("config", request_timeout);
    REQUIRE_FALSE(gone);
    CHECK(gone.error().status == 404);
    CHECK(s.pending_requests() == 0);
    // The service's own update/accepted was seen by the observer hook as not ours.
    CHECK(std::find(messages.begin(), messages.end(), " other") != messages.end());
    co_await s.async_disconnect();
  }());
}

TEST_CASE("aws session: accepted before delta of one version, the shared counter drops the delta",
          "[backends][aws]") {
  hub_fixture h(hub::auth_mode::open);
  run(h.io, [&]() -> asio::awaitable<void> {
    backends::aws_device_config config;
    config.thing_name = "valve-1";
    backends::aws_device_session s(co_await asio::this_coro::executor, config);
    backends::aws_delta_filter good;
    backends::aws_delta_filter buggy(backends::aws_delta_filter::options{true});
    std::vector<std::string> order;
    std::size_t good_applied = 0;
    std::size_t buggy_applied = 0;
    s.set_message_handler([&](const backends::shadow_message& m) {
      if (m.kind != backends::shadow_message_kind::accepted || m.operation != backends::shadow_operation::update) return;
      const auto v = m.document->at("version").to_number<std::int64_t>();
      good.on_update_accepted(v);
      buggy.on_update_accepted(v);
      order.push_back("accepted");
    });
    s.set_delta_handler([&](backends::shadow_delta& d) {
      good_applied += good.on_delta(d.version) ? 1 : 0;
      buggy_applied += buggy.on_delta(d.version) ? 1 : 0;
      order.push_back("delta");
    });
    const net::client_transport plain;
    const auto ec = co_await s.async_connect(h.plain, plain, request_timeout);
    REQUIRE_FALSE(ec);
    const auto sub = co_await s.async_subscribe_shadow("");
    REQUIRE_FALSE(sub);

    // The hub's default order: accepted, then the delta of the same version.
    const auto desired = jo(R"({"desired":{"open":true}})");
    auto u = co_await s.async_update("", desired, std::nullopt, request_timeout);
    REQUIRE(u);
    const bool both = co_await wait_until([&] { return order.size() == 2; });
    REQUIRE(both);
    CHECK(order == std::vector<std::string>{"accepted", "delta"});
    CHECK(good_applied == 1);
    CHECK(buggy_applied == 0);

    // Swapped (C2.2): the delta first; both counters then apply it.
    hub::fault_settings faults;
    faults.aws_swap_accepted_delta = 1.0;
    h.core().set_faults(faults, std::chrono::system_clock::now());
    order.clear();
    const auto desired2 = jo(R"({"desired":{"open":false}})");
    auto u2 = co_await s.async_update("", desired2, std::nullopt, request_timeout);
    REQUIRE(u2);
    const bool both2 = co_await wait_until([&] { return order.size() == 2; });
    REQUIRE(both2);
    CHECK(order == std::vector<std::string>{"delta", "accepted"});
    CHECK(good_applied == 2);
    CHECK(buggy_applied == 1);
  }());
}

TEST_CASE("aws session: mutual TLS on a strict hub, no certificate is refused", "[backends][aws]") {
  hub_fixture h(hub::auth_mode::strict, {"meter-1"});
  REQUIRE(h.clients.size() == 1);
  auth::tls_client_config with_cert;
  with_cert.ca_file = h.local->ca_file();
  with_cert.certificate_chain_file = h.clients[0].certificate_file;
  with_cert.private_key_file = h.clients[0].key_file;
  with_cert.alpn_protocols = {"x-amzn-mqtt-ca"};
  auto ctx = auth::make_tls_client_context(with_cert);
  REQUIRE(ctx);
  auth::tls_client_config without;
  without.ca_file = h.local->ca_file();
  auto anonymous = auth::make_tls_client_context(without);
  REQUIRE(anonymous);
  run(h.io, [&]() -> asio::awaitable<void> {
    backends::aws_device_config config;
    config.thing_name = "meter-1";
    net::client_transport tls;
    tls.kind = net::transport_kind::tls;
    tls.tls = &*anonymous;
    backends::aws_device_session stranger(co_await asio::this_coro::executor, config);
    const auto refused = co_await stranger.async_connect(h.tls, tls, request_timeout);
    CHECK(refused == net::connack_errc::not_authorized);

    tls.tls = &*ctx;
    backends::aws_device_session s(co_await asio::this_coro::executor, config);
    const auto ec = co_await s.async_connect(h.tls, tls, request_timeout);
    REQUIRE_FALSE(ec);
    const auto sub = co_await s.async_subscribe_shadow("");
    REQUIRE_FALSE(sub);
    const auto state = jo(R"({"reported":{"kwh":12.5}})");
    auto u = co_await s.async_update("", state, std::nullopt, request_timeout);
    REQUIRE(u);
    CHECK(u->at("version") == jv("1"));
    auto g = co_await s.async_get("", request_timeout);
    REQUIRE(g);
    CHECK(g->at("state").at("reported").at("kwh") == jv("12.5"));

    // Reconnect: the shadow subscriptions come back, so requests work at once.
    const auto again = co_await s.async_reconnect(h.tls, tls, request_timeout);
    REQUIRE_FALSE(again);
    CHECK(s.subscribed_shadows() == std::vector<std::string>{""});
    auto g2 = co_await s.async_get("", request_timeout);
    REQUIRE(g2);
    CHECK(g2->at("version") == jv("1"));
  }());
}
