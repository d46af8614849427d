// The service-side clients of sim/backends (azure_service_client, aws_service_client,
// aws_shadow_observer) against a real local hub embedded in the test process: HTTPS, HTTP and
// MQTTS listeners on 127.0.0.1:0, certificates in a temp folder, everything on one
// io_context whose runs are bounded.
#include "json_test_util.hpp"
#include "test_data.hpp"

#include <twinfleet/auth/dev_ca.hpp>
#include <twinfleet/auth/sas.hpp>
#include <twinfleet/auth/tls.hpp>
#include <twinfleet/backends/service_aws.hpp>
#include <twinfleet/backends/service_aws_observer.hpp>
#include <twinfleet/backends/service_azure.hpp>
#include <twinfleet/backends/service_hub_json.hpp>
#include <twinfleet/hub/local_hub.hpp>
#include <twinfleet/hub/rest.hpp>
#include <twinfleet/net/client.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <catch2/catch.hpp>

#include "process.hpp"

#include <csignal>
#include <fstream>
#include <functional>
#include <sstream>

#include <poll.h>
#include <unistd.h>

using namespace twinfleet;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace json = boost::json;
using test::jo;

// GCC 12: every argument with a destructor is a local before the co_await that uses it, and
// no co_await sits inside a CHECK/REQUIRE.

namespace {

std::string str(const backends::service_error& e) {
  std::ostringstream os;
  os << e;
  return os.str();
}

// One embedded hub with https, http and mqtts listeners; `tune` may change its settings.
struct hub_fixture {
  test::temp_dir dir;
  asio::io_context io;
  std::unique_ptr<hub::local_hub> hub;
  json::object described;
  std::uint16_t https_port = 0, http_port = 0, mqtts_port = 0;

  explicit hub_fixture(const std::function<void(hub::hub_settings&)>& tune = {}) {
    hub::hub_options options;
    if (tune) tune(options.settings);
    options.certs_dir = dir.path() / "certs";
    options.log = [](std::string_view) {};
    for (auto p : {hub::listener_protocol::https, hub::listener_protocol::http, hub::listener_protocol::mqtts}) {
      hub::listener_spec spec;
      spec.protocol = p;
      options.listeners.push_back(spec);
    }
    hub = std::make_unique<hub::local_hub>(io.get_executor(), std::move(options));
    REQUIRE_FALSE(hub->start());
    for (const auto& l : hub->listeners()) {
      if (l.protocol == hub::listener_protocol::https) https_port = l.endpoint.port();
      if (l.protocol == hub::listener_protocol::http) http_port = l.endpoint.port();
      if (l.protocol == hub::listener_protocol::mqtts) mqtts_port = l.endpoint.port();
    }
    described = hub->describe();
  }

  ~hub_fixture() {
    bool stopped = false;
    hub->async_stop([&] { stopped = true; });
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (!stopped && std::chrono::steady_clock::now() < until) io.run_one_for(100ms);
  }

  std::string ca_file() const { return std::string(described.at("ca_file").as_string()); }

  backends::azure_service_options azure_options() const {
    auto o = backends::azure_service_options_from_hub_json(described);
    REQUIRE(o);
    o->http.request_timeout = 10s;
    return *o;
  }

  backends::aws_service_options aws_options() const {
    auto o = backends::aws_service_options_from_hub_json(described);
    REQUIRE(o);
    o->http.request_timeout = 10s;
    return *o;
  }

  // Runs `body` to completion on the io_context (bounded); rethrows what it threw.
  void run(std::function<asio::awaitable<void>()> body, std::chrono::seconds limit = 30s) {
    bool done = false;
    std::exception_ptr failure;
    asio::co_spawn(io, body(), [&](std::exception_ptr e) {
      failure = e;
      done = true;
    });
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done && std::chrono::steady_clock::now() < until) io.run_one_for(100ms);
    REQUIRE(done);
    if (failure) std::rethrow_exception(failure);
  }
};

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

// Waits until `ready()` or `limit`; returns ready(). A timer polled in short steps: the
// condition is set from other coroutines on this same thread.
asio::awaitable<bool> wait_until(std::function<bool()> ready, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!ready() && std::chrono::steady_clock::now() < until) co_await sleep_for(5ms);
  co_return ready();
}

}  // namespace

TEST_CASE("service connection strings: host, port, policy and key", "[backends]") {
  auto c = backends::parse_azure_service_connection_string(
      "HostName=hub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=a2V5PQ==");
  REQUIRE(c);
  CHECK(c->host_name == "hub.azure-devices.net");
  CHECK(c->port == 443);
  CHECK(c->policy_name == "iothubowner");
  CHECK(c->policy_key == "a2V5PQ==");
  auto p = backends::parse_azure_service_connection_string("SharedAccessKey=eA==;HostName=localhost:9443;SharedAccessKeyName=service");
  REQUIRE(p);
  CHECK(p->host_name == "localhost");
  CHECK(p->port == 9443);
  CHECK_FALSE(backends::parse_azure_service_connection_string("HostName=h;SharedAccessKeyName=s"));
  CHECK_FALSE(backends::parse_azure_service_connection_string("HostName=h:0;SharedAccessKeyName=s;SharedAccessKey=eA=="));
  const auto missing = backends::parse_azure_service_connection_string("SharedAccessKeyName=s;SharedAccessKey=eA==");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().kind == backends::service_failure::bad_request);
}

TEST_CASE("shadow documents: topics and bodies parsed, others refused", "[backends]") {
  const auto classic = backends::aws_shadow_observer::parse_document(
      "$aws/things/lamp-1/shadow/update/documents",
      R"({"previous":null,"current":{"state":{"reported":{"on":true}},"metadata":{},"version":1},"timestamp":1700000000,"clientToken":"t1"})");
  REQUIRE(classic);
  CHECK(classic->thing == "lamp-1");
  CHECK(classic->shadow.empty());
  CHECK(classic->previous_version == 0);
  CHECK(classic->current_version == 1);
  CHECK(classic->current_state.at("reported").at("on").as_bool());
  CHECK(classic->client_token == std::optional<std::string>("t1"));
  CHECK(classic->timestamp == 1700000000);
  const auto named = backends::aws_shadow_observer::parse_document(
      "$aws/things/lamp-1/shadow/name/cfg/update/documents",
      R"({"previous":{"state":{},"version":4},"current":{"state":{"desired":{"x":1}},"version":5},"timestamp":1})");
  REQUIRE(named);
  CHECK(named->shadow == "cfg");
  CHECK(named->previous_version == 4);
  CHECK(named->current_version == 5);
  CHECK_FALSE(backends::aws_shadow_observer::parse_document("$aws/things/lamp-1/shadow/update/accepted", "{}"));
  CHECK_FALSE(backends::aws_shadow_observer::parse_document("$aws/things/lamp-1/shadow/update/documents", "not json"));
  CHECK_FALSE(backends::aws_shadow_observer::parse_document("$aws/things/lamp-1/shadow/update/documents", R"({"previous":null})"));
}

TEST_CASE("azure twins over HTTPS: get, patch desired with etags, a stale etag gives 412001, replace", "[backends]") {
  hub_fixture f;
  f.run([&]() -> asio::awaitable<void> {
    auto made = backends::azure_service_client::create(co_await asio::this_coro::executor, f.azure_options());
    REQUIRE(made);
    auto& client = **made;

    auto created = co_await client.async_create_or_update_device("bulb-1");
    INFO((created ? std::string() : str(created.error())));
    REQUIRE(created);

    auto first = co_await client.async_get_twin("bulb-1");
    REQUIRE(first);
    CHECK(first->twin.at("deviceId").as_string() == "bulb-1");
    REQUIRE_FALSE(first->etag.empty());
    const std::string etag1 = first->etag;
    const auto version1 = first->desired_version();

    const auto desired = jo(R"({"brightness":40,"colour":"red"})");
    auto patched = co_await client.async_patch_twin_desired("bulb-1", desired, etag1);
    INFO((patched ? std::string() : str(patched.error())));
    REQUIRE(patched);
    CHECK(patched->desired_version() == version1 + 1);
    CHECK(patched->etag != etag1);
    CHECK(patched->twin.at("properties").at("desired").at("brightness").to_number<int>() == 40);

    // The same etag again is stale now.
    const auto again = jo(R"({"brightness":50})");
    auto stale = co_await client.async_patch_twin_desired("bulb-1", again, etag1);
    REQUIRE_FALSE(stale);
    CHECK(stale.error().kind == backends::service_failure::http);
    CHECK(stale.error().http_status == 412);
    CHECK(stale.error().azure_code == 412001);
    CHECK(stale.error().precondition_failed());

    // Unconditional ("*", the default) and the current etag both apply.
    auto forced = co_await client.async_patch_twin_desired("bulb-1", again);
    REQUIRE(forced);
    CHECK(forced->desired_version() == version1 + 2);
    const std::string etag3 = forced->etag;
    const auto removal = jo(R"({"colour":null})");
    auto removed = co_await client.async_patch_twin_desired("bulb-1", removal, etag3);
    REQUIRE(removed);
    CHECK_FALSE(removed->twin.at("properties").at("desired").as_object().contains("colour"));

    const auto replacement = jo(R"({"tags":{"site":"lab"},"properties":{"desired":{"mode":"eco"}}})");
    auto replaced = co_await client.async_replace_twin("bulb-1", replacement);
    INFO((replaced ? std::string() : str(replaced.error())));
    REQUIRE(replaced);
    const auto& d = replaced->twin.at("properties").at("desired").as_object();
    CHECK(d.contains("mode"));
    CHECK_FALSE(d.contains("brightness"));
    CHECK(replaced->twin.at("tags").at("site").as_string() == "lab");

    auto missing = co_await client.async_get_twin("no-such-device");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().http_status == 404);
    CHECK(missing.error().azure_code == 404001);
    CHECK(missing.error().not_found());

    const auto stats = client.pool_stats();
    CHECK(stats.connections_opened == 1);  // one coroutine, one kept-alive connection
    CHECK(stats.reused == stats.requests - 1);
  });
}

TEST_CASE("azure direct methods: 404103 offline, the answer of a connected device, 504101 when it stays silent", "[backends]") {
  hub_fixture f([](hub::hub_settings& s) { s.azure_min_method_timeout = 1s; });
  f.run([&]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto made = backends::azure_service_client::create(executor, f.azure_options());
    REQUIRE(made);
    auto& client = **made;

    // Registered with the key the hub would derive from its group key, as open auth does on a
    // first connect, so that the device below signs with the same key.
    backends::device_keys keys;
    keys.primary_key = f.hub->core().device_key_for("lamp-7");
    auto registered = co_await client.async_create_or_update_device("lamp-7", keys);
    REQUIRE(registered);

    const auto payload = jo(R"({"times":3})");
    auto offline = co_await client.async_invoke_method("lamp-7", "blink", payload, 5s, 0s);
    REQUIRE_FALSE(offline);
    CHECK(offline.error().http_status == 404);
    CHECK(offline.error().azure_code == 404103);
    CHECK(offline.error().device_offline());

    // An Azure device over MQTTS with a SAS token from the group key (open auth), answering
    // every method with status 201 and the request's payload wrapped.
    auto tls = auth::make_tls_client_context([&] {
      auth::tls_client_config c;
      c.ca_file = f.ca_file();
      return c;
    }());
    REQUIRE(tls);
    net::client_connection device(executor);
    std::string last_method;
    bool silent = false;
    device.set_message_handler([&](const mqtt::publish_packet& p) {
      const std::string topic(p.topic);
      const auto rid = topic.substr(topic.find("$rid=") + 5);
      last_method = topic.substr(std::string_view("$iothub/methods/POST/").size());
      last_method = last_method.substr(0, last_method.find('/'));
      if (silent) return;
      const std::string answer = R"({"echo":)" + std::string(p.payload) + "}";
      (void)device.publish("$iothub/methods/res/201/?$rid=" + rid, answer, mqtt::qos::at_most_once);
    });
    auth::sas_token_request sas;
    const std::string resource = "localhost/devices/lamp-7";
    const std::string key = f.hub->core().device_key_for("lamp-7");
    sas.resource_uri = resource;
    sas.key_base64 = key;
    sas.expiry = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()) + std::chrono::hours(1);
    auto token = auth::create_sas_token(sas);
    REQUIRE(token);
    const std::string username = "localhost/lamp-7/?api-version=2021-04-12";
    mqtt::connect_packet hello;
    hello.keep_alive = 60;
    hello.client_id = "lamp-7";
    hello.username = username;
    hello.password = *token;
    net::client_transport transport;
    transport.kind = net::transport_kind::tls;
    transport.tls = &*tls;
    transport.server_name = "localhost";
    const auto connected = co_await device.async_connect("127.0.0.1", f.mqtts_port, transport, hello, 5000ms);
    INFO(connected.message());
    REQUIRE_FALSE(connected);
    std::array<mqtt::subscription, 1> subs{};
    subs[0].filter = "$iothub/methods/POST/#";
    const std::span<const mqtt::subscription> span(subs);
    auto granted = co_await device.async_subscribe(span);
    REQUIRE(granted);

    auto answered = co_await client.async_invoke_method("lamp-7", "blink", payload, 5s, 0s);
    INFO((answered ? std::string() : str(answered.error())));
    REQUIRE(answered);
    CHECK(answered->status == 201);
    CHECK(answered->payload.at("echo").at("times").to_number<int>() == 3);
    CHECK(last_method == "blink");

    // A method the device hears but does not answer: the hub gives up after the response
    // timeout and the client reports the gateway timeout.
    last_method.clear();
    silent = true;
    auto unanswered = co_await client.async_invoke_method("lamp-7", "reboot", payload, 1s, 0s);
    REQUIRE_FALSE(unanswered);
    CHECK(unanswered.error().gateway_timeout());
    CHECK(unanswered.error().azure_code == 504101);
    CHECK(last_method == "reboot");
    co_await device.async_disconnect();
  });
}

TEST_CASE("azure registry: create or update with given or generated keys, paced by a token bucket", "[backends]") {
  hub_fixture f;
  f.run([&]() -> asio::awaitable<void> {
    auto options = f.azure_options();
    options.registry_rate_per_second = 20;  // one every 50 ms, no burst
    options.registry_burst = 1;
    auto made = backends::azure_service_client::create(co_await asio::this_coro::executor, options);
    REQUIRE(made);
    auto& client = **made;

    backends::device_keys keys;
    keys.primary_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    keys.secondary_key = "HxwdHhobGBkWFxQVEhMQEQ4PDA0KCwgJBgcEBQIDAAE=";
    const auto started = std::chrono::steady_clock::now();
    auto given = co_await client.async_create_or_update_device("meter-1", keys);
    INFO((given ? std::string() : str(given.error())));
    REQUIRE(given);
    CHECK(given->at("authentication").at("symmetricKey").at("primaryKey").as_string() == keys.primary_key);
    for (std::string id : {"meter-2", "meter-3"}) {
      auto generated = co_await client.async_create_or_update_device(id);
      REQUIRE(generated);
      CHECK_FALSE(generated->at("authentication").at("symmetricKey").at("primaryKey").as_string().empty());
    }
    // Update of an existing identity (If-Match "*").
    auto updated = co_await client.async_create_or_update_device("meter-1", keys);
    REQUIRE(updated);
    auto read = co_await client.async_get_device("meter-2");
    REQUIRE(read);
    CHECK(read->at("deviceId").as_string() == "meter-2");
    const auto elapsed = std::chrono::steady_clock::now() - started;
    // Five registry operations at 20/s with no burst: the last could not start before 4 x 50 ms
    // had passed, however fast the hub answered. (How many of them had to wait depends on how
    // long each took: not asserted.)
    CHECK(elapsed >= 195ms);

    auto gone = co_await client.async_delete_device("meter-3");
    REQUIRE(gone);
    auto missing = co_await client.async_get_device("meter-3");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().azure_code == 404001);
  });
}

TEST_CASE("aws shadows over HTTPS with SigV4: update, get, version conflict, named shadows, list, delete", "[backends]") {
  hub_fixture f;
  f.run([&]() -> asio::awaitable<void> {
    auto made = backends::aws_service_client::create(co_await asio::this_coro::executor, f.aws_options());
    REQUIRE(made);
    auto& client = **made;

    const auto first = jo(R"({"state":{"desired":{"on":true}},"clientToken":"c-1"})");
    auto accepted = co_await client.async_update_shadow("thermo-1", "", first);
    INFO((accepted ? std::string() : str(accepted.error())));
    REQUIRE(accepted);
    CHECK(accepted->at("version").to_number<int>() == 1);
    CHECK(accepted->at("clientToken").as_string() == "c-1");

    const auto stale = jo(R"({"state":{"desired":{"on":false}},"version":7})");
    auto conflict = co_await client.async_update_shadow("thermo-1", "", stale);
    REQUIRE_FALSE(conflict);
    CHECK(conflict.error().http_status == 409);
    CHECK(conflict.error().conflict());
    CHECK(conflict.error().error_type == "ConflictException");
    CHECK(conflict.error().message == "Version conflict");

    auto got = co_await client.async_get_shadow("thermo-1", "");
    REQUIRE(got);
    CHECK(got->at("version").to_number<int>() == 1);
    CHECK(got->at("state").at("desired").at("on").as_bool());
    CHECK(got->at("state").at("delta").at("on").as_bool());

    const auto config = jo(R"({"state":{"reported":{"interval":30}}})");
    auto named = co_await client.async_update_shadow("thermo-1", "config", config);
    REQUIRE(named);
    const auto alarms = jo(R"({"state":{"reported":{"armed":false}}})");
    auto named2 = co_await client.async_update_shadow("thermo-1", "alarms", alarms);
    REQUIRE(named2);
    auto page = co_await client.async_list_named_shadows("thermo-1", "", 0);
    REQUIRE(page);
    std::vector<std::string> names = page->names;
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"alarms", "config"});
    auto small = co_await client.async_list_named_shadows("thermo-1", "", 1);
    REQUIRE(small);
    CHECK(small->names.size() == 1);
    CHECK_FALSE(small->next_token.empty());
    const std::string token = small->next_token;
    auto rest = co_await client.async_list_named_shadows("thermo-1", token, 1);
    REQUIRE(rest);
    CHECK(rest->names.size() == 1);
    CHECK(rest->names != small->names);
    auto none = co_await client.async_list_named_shadows("no-thing", "", 0);
    REQUIRE(none);
    CHECK(none->names.empty());

    auto deleted = co_await client.async_delete_shadow("thermo-1", "");
    REQUIRE(deleted);
    CHECK(deleted->at("version").to_number<int>() == 1);
    auto after = co_await client.async_get_shadow("thermo-1", "");
    REQUIRE_FALSE(after);
    CHECK(after.error().http_status == 404);
    CHECK(after.error().not_found());
    CHECK(after.error().error_type == "ResourceNotFoundException");
    auto named_missing = co_await client.async_get_shadow("thermo-1", "nope");
    REQUIRE_FALSE(named_missing);
    CHECK(named_missing.error().message.find("nope") != std::string::npos);

    // Wrong credentials: the hub refuses the signature.
    auto bad_options = f.aws_options();
    bad_options.credentials.secret_access_key = "not-the-secret";
    auto bad = backends::aws_service_client::create(co_await asio::this_coro::executor, bad_options);
    REQUIRE(bad);
    auto refused = co_await (*bad)->async_get_shadow("thermo-1", "config");
    REQUIRE_FALSE(refused);
    CHECK(refused.error().http_status == 403);
  });
}

TEST_CASE("aws observer: documents of device and service updates, classic and named", "[backends]") {
  hub_fixture f;
  f.run([&]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    // The back-end certificate is issued by the running hub's CA on first use.
    auto o = backends::aws_shadow_observer_options_from_hub_json(f.described);
    INFO((o ? std::string() : str(o.error())));
    REQUIRE(o);
    CHECK(o->port == f.mqtts_port);
    CHECK(std::filesystem::exists(o->certificate_file));
    auto made = backends::aws_shadow_observer::create(executor, *o);
    REQUIRE(made);
    auto& observer = **made;
    std::vector<backends::shadow_document_event> seen;
    observer.set_handler([&](const backends::shadow_document_event& e) { seen.push_back(e); });
    const auto started = co_await observer.async_start();
    INFO(started.message());
    REQUIRE_FALSE(started);
    CHECK(observer.connected());

    // A device (open auth, no certificate) reports on its classic and a named shadow.
    auto tls = auth::make_tls_client_context([&] {
      auth::tls_client_config c;
      c.ca_file = f.ca_file();
      return c;
    }());
    REQUIRE(tls);
    net::client_connection device(executor);
    mqtt::connect_packet hello;
    hello.keep_alive = 60;
    hello.client_id = "lamp-1";
    net::client_transport transport;
    transport.kind = net::transport_kind::tls;
    transport.tls = &*tls;
    transport.server_name = "localhost";
    const auto connected = co_await device.async_connect("127.0.0.1", f.mqtts_port, transport, hello, 5000ms);
    REQUIRE_FALSE(connected);
    const std::string report = R"({"state":{"reported":{"on":true}},"clientToken":"t1"})";
    const auto published = co_await device.async_publish("$aws/things/lamp-1/shadow/update", report, mqtt::qos::at_least_once);
    REQUIRE_FALSE(published);
    const std::string named = R"({"state":{"reported":{"interval":10}}})";
    const auto published2 =
        co_await device.async_publish("$aws/things/lamp-1/shadow/name/cfg/update", named, mqtt::qos::at_least_once);
    REQUIRE_FALSE(published2);
    const bool two = co_await wait_until([&] { return seen.size() >= 2; }, 5000ms);
    REQUIRE(two);
    CHECK(seen[0].thing == "lamp-1");
    CHECK(seen[0].shadow.empty());
    CHECK(seen[0].previous_version == 0);
    CHECK(seen[0].current_version == 1);
    CHECK(seen[0].current_state.at("reported").at("on").as_bool());
    CHECK(seen[0].client_token == std::optional<std::string>("t1"));
    CHECK(seen[1].shadow == "cfg");
    CHECK(seen[1].current_version == 1);

    // A back-end write through the data plane shows up too, with both versions.
    auto rest = backends::aws_service_client::create(executor, f.aws_options());
    REQUIRE(rest);
    const auto desired = jo(R"({"state":{"desired":{"on":false}}})");
    auto accepted = co_await (*rest)->async_update_shadow("lamp-1", "", desired);
    REQUIRE(accepted);
    const bool three = co_await wait_until([&] { return seen.size() >= 3; }, 5000ms);
    REQUIRE(three);
    CHECK(seen[2].previous_version == 1);
    CHECK(seen[2].current_version == 2);
    CHECK_FALSE(seen[2].current_state.at("desired").at("on").as_bool());
    CHECK(observer.stats().documents == 3);

    co_await device.async_disconnect();
    co_await observer.async_stop();
  });
}

// One of a set of observers that share the fleet's shadows out: its own exact filters, more
// than one SUBSCRIBE may carry on AWS IoT (8, so it sends three), and only their documents.
TEST_CASE("aws observer: given 20 filters, it holds every one and sees only their documents", "[backends]") {
  CHECK(backends::shadow_documents_topic("lamp-1", "") == "$aws/things/lamp-1/shadow/update/documents");
  CHECK(backends::shadow_documents_topic("lamp-1", "cfg") == "$aws/things/lamp-1/shadow/name/cfg/update/documents");
  hub_fixture f;
  f.run([&]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto o = backends::aws_shadow_observer_options_from_hub_json(f.described);
    REQUIRE(o);
    for (int i = 0; i < 19; ++i) o->filters.push_back(backends::shadow_documents_topic("lamp-" + std::to_string(i), ""));
    o->filters.push_back(backends::shadow_documents_topic("lamp-3", "cfg"));
    auto made = backends::aws_shadow_observer::create(executor, *o);
    REQUIRE(made);
    auto& observer = **made;
    std::vector<backends::shadow_document_event> seen;
    observer.set_handler([&](const backends::shadow_document_event& e) { seen.push_back(e); });
    const auto started = co_await observer.async_start();
    INFO(started.message() << " / " << observer.last_error());
    REQUIRE_FALSE(started);
    // The hub holds all 20 (three SUBSCRIBEs: 8, 8 and 4).
    auto rest = backends::aws_service_client::create(executor, f.aws_options());
    REQUIRE(rest);
    const auto desired = jo(R"({"state":{"desired":{"on":true}}})");
    for (const auto& [thing, shadow] : std::vector<std::pair<std::string, std::string>>{
             {"lamp-0", ""}, {"lamp-18", ""}, {"lamp-3", "cfg"}, {"lamp-19", ""}, {"lamp-3", "other"}}) {
      auto accepted = co_await (*rest)->async_update_shadow(thing, shadow, desired);
      REQUIRE(accepted);
    }
    const bool three = co_await wait_until([&] { return seen.size() >= 3; }, 5000ms);
    REQUIRE(three);
    co_await sleep_for(200ms);  // anything else would come by now
    REQUIRE(seen.size() == 3);  // not lamp-19's, not lamp-3's other shadow
    CHECK(seen[0].thing == "lamp-0");
    CHECK(seen[1].thing == "lamp-18");
    CHECK(seen[2].thing == "lamp-3");
    CHECK(seen[2].shadow == "cfg");
    co_await observer.async_stop();
  });
}

TEST_CASE("aws observer: a refused certificate and a refused subscription end the start with an error", "[backends]") {
  hub_fixture f([](hub::hub_settings& s) { s.auth = hub::auth_mode::strict; });
  f.run([&]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto o = backends::aws_shadow_observer_options_from_hub_json(f.described);
    REQUIRE(o);
    // The back end's own certificate: admitted, both filters granted.
    {
      auto made = backends::aws_shadow_observer::create(executor, *o);
      REQUIRE(made);
      const auto started = co_await (*made)->async_start();
      INFO(started.message() << " / " << (*made)->last_error());
      CHECK_FALSE(started);
      CHECK((*made)->last_error().empty());
      co_await (*made)->async_stop();
      CHECK_FALSE((*made)->connected());
    }
    // A thing's certificate: connected, but the wildcard filters are another's topics.
    auth::dev_ca_options ca;
    ca.directory = std::filesystem::path(std::string(f.described.at("certs_dir").as_string()));
    ca.client_common_names = {"lamp-7"};
    auto issued = auth::write_dev_ca(ca);
    REQUIRE(issued);
    auto as_thing = *o;
    as_thing.client_id = "lamp-7";
    as_thing.certificate_file = issued->clients.at(0).certificate_file;
    as_thing.private_key_file = issued->clients.at(0).key_file;
    {
      auto made = backends::aws_shadow_observer::create(executor, as_thing);
      REQUIRE(made);
      const auto started = co_await (*made)->async_start();
      INFO(started.message());
      CHECK(started == boost::system::errc::permission_denied);
      CHECK_FALSE((*made)->last_error().empty());
      CHECK_FALSE((*made)->connected());
    }
    // No certificate at all: the strict hub admits no anonymous AWS client.
    auto anonymous = *o;
    anonymous.certificate_file.clear();
    anonymous.private_key_file.clear();
    anonymous.connect_timeout = 3000ms;
    {
      auto made = backends::aws_shadow_observer::create(executor, anonymous);
      REQUIRE(made);
      const auto started = co_await (*made)->async_start();
      INFO(started.message() << " / " << (*made)->last_error());
      CHECK(started);
      CHECK_FALSE((*made)->last_error().empty());
      CHECK_FALSE((*made)->connected());
    }
    // Nothing listening: an error, within the connect timeout.
    auto nowhere = *o;
    nowhere.port = static_cast<std::uint16_t>(test::free_local_port());
    nowhere.connect_timeout = 3000ms;
    {
      auto made = backends::aws_shadow_observer::create(executor, nowhere);
      REQUIRE(made);
      const auto started = co_await (*made)->async_start();
      CHECK(started);
      CHECK_FALSE((*made)->connected());
    }
    // A key file that does not exist: create() says so, as before.
    auto missing = *o;
    missing.private_key_file = f.dir.path() / "no-such.key";
    CHECK_FALSE(backends::aws_shadow_observer::create(executor, missing));
  });
}

// A silent broker (it accepts and never answers CONNECT): the observer's handle is destroyed
// while its async_start still waits, its executor not running. The connection must end then —
// not at Paho's connect timeout — so that no Paho thread completes the operation later into an
// executor that is being torn down (a run's second Ctrl-C crashed so, 139, now and then).
TEST_CASE("aws observer: destroying it while a start waits drops the connection at once", "[backends]") {
  asio::io_context io;
  asio::io_context blocking;  // the test's own silent listener, used synchronously
  asio::ip::tcp::acceptor listener(blocking, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  backends::aws_shadow_observer_options o;
  o.use_tls = false;
  o.host = "127.0.0.1";
  o.port = listener.local_endpoint().port();
  o.client_id = "observer-aborted";
  o.connect_timeout = 20000ms;  // Paho would hold the connection this long
  auto made = backends::aws_shadow_observer::create(io.get_executor(), o);
  REQUIRE(made);
  bool ended = false;
  asio::co_spawn(io, (*made)->async_start(), [&](std::exception_ptr, boost::system::error_code) { ended = true; });
  io.run_for(200ms);  // the start sends CONNECT and waits
  pollfd pending{listener.native_handle(), POLLIN, 0};
  REQUIRE(::poll(&pending, 1, 5000) == 1);
  asio::ip::tcp::socket peer(blocking);
  listener.accept(peer);
  REQUIRE_FALSE(ended);

  made->reset();  // the handle goes; the waiting start keeps the observer's state alive
  pollfd closed{peer.native_handle(), POLLIN, 0};
  bool eof = false;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!eof && std::chrono::steady_clock::now() < until) {
    if (::poll(&closed, 1, 100) != 1) continue;
    char buf[256];
    boost::system::error_code ec;
    const auto n = peer.read_some(asio::buffer(buf), ec);  // the CONNECT first, then the end
    eof = ec || n == 0;
  }
  CHECK(eof);
  // The start is woken and ends without a client, long before its own 22 s bound.
  const auto resume_until = std::chrono::steady_clock::now() + 5s;
  while (!ended && std::chrono::steady_clock::now() < resume_until) io.run_one_for(100ms);
  CHECK(ended);
}

// An independent broker: mosquitto on an ephemeral port, plain MQTT, documents published by
// mosquitto_pub as AWS would — the observer's topic filters and parser against bytes neither
// twinfleet's hub nor its client produced.
TEST_CASE("aws observer: documents hand-published on mosquitto are parsed, classic and named, malformed ones counted", "[backends]") {
  REQUIRE(::access("/usr/sbin/mosquitto", X_OK) == 0);  // scripts/install-deps.sh installs it
  test::temp_dir dir;
  const auto port = test::free_local_port();
  const auto conf = dir.path() / "mosquitto.conf";
  std::ofstream(conf) << "listener " << port << " 127.0.0.1\nallow_anonymous true\npersistence false\n";
  test::child_process broker("/usr/sbin/mosquitto", {"-c", conf.string()});
  hub_fixture f;  // only for its io_context and run()
  f.run([&]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    backends::aws_shadow_observer_options o;
    o.use_tls = false;
    o.host = "127.0.0.1";
    o.port = static_cast<std::uint16_t>(port);
    o.client_id = "observer-under-test";
    o.connect_timeout = 3000ms;
    auto made = backends::aws_shadow_observer::create(executor, o);
    REQUIRE(made);
    auto& observer = **made;
    std::vector<backends::shadow_document_event> seen;
    observer.set_handler([&](const backends::shadow_document_event& e) { seen.push_back(e); });
    // mosquitto may take a moment to listen: start again until it answers (bounded).
    boost::system::error_code started = make_error_code(boost::system::errc::timed_out);
    for (int attempt = 0; attempt < 50 && started; ++attempt) {
      started = co_await observer.async_start();
      if (started) co_await sleep_for(100ms);
    }
    INFO(started.message() << " / " << observer.last_error());
    REQUIRE_FALSE(started);

    auto publish = [&](const std::string& topic, const std::string& payload) {
      const auto r = test::run_program("/usr/bin/mosquitto_pub",
                                       {"-h", "127.0.0.1", "-p", std::to_string(port), "-q", "1", "-t", topic, "-m", payload}, 10s);
      REQUIRE(r.exit_code == 0);
    };
    publish("$aws/things/lamp-9/shadow/update/documents",
            R"({"previous":{"state":{"desired":{"on":true}},"metadata":{},"version":4},)"
            R"("current":{"state":{"desired":{"on":true},"reported":{"on":true}},"metadata":{},"version":5},)"
            R"("timestamp":1700000000,"clientToken":"tok-5"})");
    publish("$aws/things/lamp-9/shadow/name/config/update/documents",
            R"({"previous":null,"current":{"state":{"reported":{"interval":30}},"metadata":{},"version":1},"timestamp":1700000001})");
    publish("$aws/things/lamp-9/shadow/update/documents", "not a document");
    publish("$aws/things/lamp-9/shadow/update/accepted", R"({"state":{}})");  // not subscribed: never arrives
    const bool arrived = co_await wait_until([&] { return observer.stats().documents + observer.stats().malformed >= 3; }, 5000ms);
    REQUIRE(arrived);
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].thing == "lamp-9");
    CHECK(seen[0].shadow.empty());
    CHECK(seen[0].previous_version == 4);
    CHECK(seen[0].current_version == 5);
    CHECK(seen[0].current_state.at("reported").at("on").as_bool());
    CHECK(seen[0].client_token == std::optional<std::string>("tok-5"));
    CHECK(seen[0].timestamp == 1700000000);
    CHECK(seen[1].thing == "lamp-9");
    CHECK(seen[1].shadow == "config");
    CHECK(seen[1].previous_version == 0);
    CHECK(seen[1].previous_state.empty());
    CHECK(seen[1].current_version == 1);
    CHECK(observer.stats().documents == 2);
    CHECK(observer.stats().malformed == 1);
    CHECK(observer.stats().other == 0);

    // The broker goes away: the closed handler hears of it once.
    int closed = 0;
    boost::system::error_code why;
    observer.set_closed_handler([&](boost::system::error_code ec) {
      ++closed;
      why = ec;
    });
    CHECK(broker.stop(SIGTERM) == 0);
    const bool lost = co_await wait_until([&] { return closed > 0; }, 10000ms);
    CHECK(lost);
    CHECK(closed == 1);
    CHECK(why);
    CHECK_FALSE(observer.connected());
    co_await observer.async_stop();  // nothing to stop: returns at once
  });
}

TEST_CASE("connection reuse: 200 concurrent requests over a pool of 4 open at most 4 connections", "[backends]") {
  hub_fixture f;
  // A plain HTTP listener of our own over the same hub_core, to read its accept count.
  hub::rest_server_options ro;
  auto server = hub::rest_server::create(f.io.get_executor(), f.hub->core(), ro);
  REQUIRE(server);
  (*server)->start();
  const auto port = (*server)->local_endpoint().port;

  f.run([&]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    for (bool tls : {false, true}) {
      auto options = f.azure_options();
      options.http.max_connections = 4;
      if (!tls) {
        options.http.use_tls = false;
        options.port = port;
      }
      auto made = backends::azure_service_client::create(executor, options);
      REQUIRE(made);
      auto& client = **made;
      auto created = co_await client.async_create_or_update_device("pooled-1");
      REQUIRE(created);

      constexpr int total = 200;
      int ok = 0, finished = 0;
      for (int i = 0; i < total; ++i) {
        asio::co_spawn(
            executor,
            [&]() -> asio::awaitable<void> {
              auto twin = co_await client.async_get_twin("pooled-1");
              if (twin) ++ok;
              ++finished;
            },
            asio::detached);
      }
      const bool all = co_await wait_until([&] { return finished == total; }, 20000ms);
      REQUIRE(all);
      CHECK(ok == total);
      const auto stats = client.pool_stats();
      CHECK(stats.requests == total + 1);
      CHECK(stats.connections_opened <= 4);
      CHECK(stats.connections_opened >= 1);
      CHECK(stats.waited > 0);
      if (!tls) CHECK((*server)->stats().connections_accepted <= 4);
    }
  });
  (*server)->async_stop(1s, {});
}

TEST_CASE("throttling: a 429 from the hub is surfaced distinctly, Azure and AWS", "[backends]") {
  hub_fixture f;
  hub::throttle_settings throttle;
  throttle.azure_twin_reads = hub::rate_limit{1, 1, 0};  // one read a second, no queue
  throttle.aws_shadow_account = hub::rate_limit{1, 1, 0};
  f.hub->core().set_throttle(throttle);
  f.run([&]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto azure = backends::azure_service_client::create(executor, f.azure_options());
    REQUIRE(azure);
    auto created = co_await (*azure)->async_create_or_update_device("busy-1");
    REQUIRE(created);
    // The bucket holds one read: of three back-to-back reads at least one is refused.
    std::optional<backends::service_error> azure_refusal;
    int azure_served = 0;
    for (int i = 0; i < 3; ++i) {
      auto read = co_await (*azure)->async_get_twin("busy-1");
      if (read) {
        ++azure_served;
      } else if (!azure_refusal) {
        azure_refusal = read.error();
      }
    }
    REQUIRE(azure_refusal);
    CHECK(azure_served >= 1);
    const auto& refused = *azure_refusal;
    INFO(str(refused));
    CHECK(refused.throttled());
    CHECK(refused.http_status == 429);
    CHECK(refused.azure_code == 429001);
    CHECK(refused.kind == backends::service_failure::http);

    auto aws = backends::aws_service_client::create(executor, f.aws_options());
    REQUIRE(aws);
    const auto doc = jo(R"({"state":{"reported":{"x":1}}})");
    std::optional<backends::service_error> aws_refusal;
    for (int i = 0; i < 3; ++i) {
      auto update = co_await (*aws)->async_update_shadow("busy-thing", "", doc);
      if (!update && !aws_refusal) aws_refusal = update.error();
    }
    REQUIRE(aws_refusal);
    const auto& aws_refused = *aws_refusal;
    INFO(str(aws_refused));
    CHECK(aws_refused.throttled());
    CHECK(aws_refused.error_type == "ThrottlingException");
  });
}

TEST_CASE("a kept-alive connection the server closed while idle is replaced and the request retried", "[backends]") {
  hub_fixture f;
  hub::rest_server_options ro;
  ro.idle_timeout = 100ms;  // the server drops idle connections quickly
  auto server = hub::rest_server::create(f.io.get_executor(), f.hub->core(), ro);
  REQUIRE(server);
  (*server)->start();
  const auto port = (*server)->local_endpoint().port;
  f.run([&]() -> asio::awaitable<void> {
    auto options = f.azure_options();
    options.http.use_tls = false;
    options.port = port;
    options.http.max_connections = 1;
    auto made = backends::azure_service_client::create(co_await asio::this_coro::executor, options);
    REQUIRE(made);
    auto& client = **made;
    auto created = co_await client.async_create_or_update_device("idle-1");
    REQUIRE(created);
    const bool dropped = co_await wait_until([&] { return (*server)->stats().open_connections == 0; }, 5000ms);
    REQUIRE(dropped);
    auto twin = co_await client.async_get_twin("idle-1");
    INFO((twin ? std::string() : str(twin.error())));
    REQUIRE(twin);
    const auto stats = client.pool_stats();
    CHECK(stats.retries == 1);
    CHECK(stats.connections_opened == 2);
    CHECK((*server)->stats().connections_accepted == 2);
  });
  (*server)->async_stop(1s, {});
}

TEST_CASE("hub.json: options for HTTPS, plain HTTP, and missing fields named", "[backends]") {
  const auto hub = jo(R"({
    "ca_file": "/tmp/ca.pem", "certs_dir": "/tmp/certs",
    "endpoints": [{"protocol":"mqtts","address":"127.0.0.1","port":8883},
                  {"protocol":"http","address":"127.0.0.2","port":8080}],
    "azure": {"service_connection_string": "HostName=localhost:8443;SharedAccessKeyName=iothubowner;SharedAccessKey=eA=="},
    "aws": {"endpoint":"localhost","https_port":8443,"mqtt_port":8883,"region":"eu-west-1",
            "access_key_id":"AKIDEXAMPLE","secret_access_key":"secret","backend_common_names":["twinfleet-backend"]}})");
  auto azure = backends::azure_service_options_from_hub_json(hub);
  REQUIRE(azure);
  CHECK(azure->http.use_tls);
  CHECK(azure->http.ca_file == "/tmp/ca.pem");
  CHECK_FALSE(azure->port);
  auto azure_plain = backends::azure_service_options_from_hub_json(hub, true);
  REQUIRE(azure_plain);
  CHECK_FALSE(azure_plain->http.use_tls);
  CHECK(azure_plain->http.connect_host == "127.0.0.2");
  CHECK(azure_plain->port == std::optional<std::uint16_t>(8080));
  auto aws = backends::aws_service_options_from_hub_json(hub);
  REQUIRE(aws);
  CHECK(aws->endpoint == "localhost");
  CHECK(aws->port == 8443);
  CHECK(aws->region == "eu-west-1");
  CHECK(aws->credentials.access_key_id == "AKIDEXAMPLE");
  auto aws_plain = backends::aws_service_options_from_hub_json(hub, true);
  REQUIRE(aws_plain);
  CHECK(aws_plain->port == 8080);
  CHECK_FALSE(aws_plain->http.use_tls);

  auto broken = hub;
  broken.at("aws").as_object().erase("region");
  const auto no_region = backends::aws_service_options_from_hub_json(broken);
  REQUIRE_FALSE(no_region);
  CHECK(no_region.error().message.find("aws.region") != std::string::npos);
  const auto no_azure = backends::azure_service_options_from_hub_json(json::object{});
  REQUIRE_FALSE(no_azure);
  CHECK(no_azure.error().kind == backends::service_failure::bad_request);
}

TEST_CASE("destroying a client with requests in flight fails them as cancelled", "[backends]") {
  hub_fixture f;
  // A listener that never accepts: connections complete in the kernel's backlog and requests
  // then wait for an answer that never comes.
  asio::ip::tcp::acceptor silent(f.io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const auto port = silent.local_endpoint().port();
  f.run([&]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto options = f.azure_options();
    options.http.use_tls = false;
    options.port = port;
    options.http.max_connections = 2;
    auto made = backends::azure_service_client::create(executor, options);
    REQUIRE(made);
    std::unique_ptr<backends::azure_service_client> client = std::move(*made);
    constexpr int total = 10;
    int finished = 0;
    std::vector<backends::service_failure> failures;
    auto* raw = client.get();
    for (int i = 0; i < total; ++i) {
      asio::co_spawn(
          executor,
          [&, raw]() -> asio::awaitable<void> {
            auto twin = co_await raw->async_get_twin("gone-1");
            if (!twin) failures.push_back(twin.error().kind);
            ++finished;
          },
          asio::detached);
    }
    // Two requests are on the wire, the other eight queue for a connection: every request
    // has started and holds the client's state.
    const bool queued = co_await wait_until(
        [&] { return client->pool_stats().waited == total - 2 && client->pool_stats().requests == 2; }, 5000ms);
    REQUIRE(queued);
    client.reset();
    const bool all = co_await wait_until([&] { return finished == total; }, 10000ms);
    REQUIRE(all);
    CHECK(failures.size() == static_cast<std::size_t>(total));
    for (auto kind : failures) CHECK(kind == backends::service_failure::cancelled);
  });
}

TEST_CASE("SAS policy tokens are renewed: a request after the first token expired still authorizes", "[backends]") {
  hub_fixture f;
  f.run([&]() -> asio::awaitable<void> {
    auto options = f.azure_options();
    // Tokens live 1-2 s (the expiry is whole seconds) and are renewed in their last second.
    options.token_lifetime = 2s;
    options.token_renew_before = 1s;
    auto made = backends::azure_service_client::create(co_await asio::this_coro::executor, options);
    REQUIRE(made);
    auto& client = **made;
    auto created = co_await client.async_create_or_update_device("renew-1");
    REQUIRE(created);
    // The hub refuses an expired token (401003); the client must have made a new one.
    co_await sleep_for(2200ms);
    auto twin = co_await client.async_get_twin("renew-1");
    INFO((twin ? std::string() : str(twin.error())));
    REQUIRE(twin);
  });
}

TEST_CASE("aws HTTPS publish reaches a device subscribed to the command topic", "[backends]") {
  hub_fixture f;
  f.run([&]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    auto tls = auth::make_tls_client_context([&] {
      auth::tls_client_config c;
      c.ca_file = f.ca_file();
      return c;
    }());
    REQUIRE(tls);
    net::client_connection device(executor);
    std::vector<std::pair<std::string, std::string>> received;
    device.set_message_handler([&](const mqtt::publish_packet& p) {
      received.emplace_back(std::string(p.topic), std::string(p.payload));
    });
    mqtt::connect_packet hello;
    hello.keep_alive = 60;
    hello.client_id = "lamp-9";
    net::client_transport transport;
    transport.kind = net::transport_kind::tls;
    transport.tls = &*tls;
    transport.server_name = "localhost";
    const auto connected = co_await device.async_connect("127.0.0.1", f.mqtts_port, transport, hello, 5000ms);
    REQUIRE_FALSE(connected);
    std::array<mqtt::subscription, 1> subs{};
    subs[0].filter = "cmd/lamp-9/#";
    subs[0].qos = mqtt::qos::at_least_once;
    const std::span<const mqtt::subscription> span(subs);
    auto granted = co_await device.async_subscribe(span);
    REQUIRE(granted);

    auto client = backends::aws_service_client::create(executor, f.aws_options());
    REQUIRE(client);
    const std::string command = R"({"method":"blink","times":2})";
    auto published = co_await (*client)->async_publish("cmd/lamp-9/blink", command, 1);
    INFO((published ? std::string() : str(published.error())));
    REQUIRE(published);
    const bool arrived = co_await wait_until([&] { return !received.empty(); }, 5000ms);
    REQUIRE(arrived);
    CHECK(received[0].first == "cmd/lamp-9/blink");
    CHECK(received[0].second == command);

    auto bad_qos = co_await (*client)->async_publish("cmd/lamp-9/blink", command, 2);
    REQUIRE_FALSE(bad_qos);
    CHECK(bad_qos.error().kind == backends::service_failure::bad_request);
    co_await device.async_disconnect();
  });
}
