// open_target(): the embedded hub or a `twinfleet hub` (more targets arrive here), made into
// what a run needs: a device endpoint with its TLS context and keys, and the service clients.
#include "target.hpp"

#include <twinfleet/auth/sas.hpp>
#include <twinfleet/auth/tls.hpp>
#include <twinfleet/backends/service_hub_json.hpp>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <fstream>
#include <iterator>

#include <unistd.h>

namespace twinfleet::engine::detail {

namespace asio = boost::asio;
namespace json = boost::json;

net::client_transport run_target::transport() const {
  net::client_transport t;
  if (tls) {
    t.kind = net::transport_kind::tls;
    t.tls = const_cast<asio::ssl::context*>(&*device_tls);  // shared, read-only after setup
    t.server_name = server_name;
  }
  return t;
}

void run_target::configure(device::azure_device_run& run) const {
  run.hub = device_endpoint;
  run.transport = transport();
  run.session.host_name = azure_host_name;
  if (auto key = auth::derive_device_key(group_key, run.session.device_id)) run.session.sas_key = std::move(*key);
}

void run_target::configure(device::aws_device_run& run) const {
  run.hub = device_endpoint;
  run.transport = transport();
}

void run_target::close(std::function<void()> done) {
  azure.reset();
  aws.reset();
  if (embedded) {
    embedded->async_stop(std::move(done));
  } else {
    done();
  }
}

run_target::~run_target() {
  if (!scratch.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(scratch, ignored);
  }
}

namespace {

// The endpoint of `protocol` ("mqtts", "mqtt", "http", "https") that hub.json lists.
std::optional<asio::ip::tcp::endpoint> hub_endpoint(const json::object& description, std::string_view protocol) {
  const auto* endpoints = description.if_contains("endpoints");
  if (endpoints == nullptr || !endpoints->is_array()) return std::nullopt;
  for (const auto& e : endpoints->get_array()) {
    if (!e.is_object() || !e.at("protocol").is_string() || e.at("protocol").get_string() != protocol) continue;
    boost::system::error_code bad;
    const auto address = asio::ip::make_address(std::string(e.at("address").as_string()), bad);
    if (bad) continue;
    return asio::ip::tcp::endpoint(address, static_cast<unsigned short>(e.at("port").to_number<std::int64_t>()));
  }
  return std::nullopt;
}

// target: local and target: hub — both known by what hub.json says.
twin::result<void> open_hub(run_target& t, const json::object& description, asio::io_context& hub_io) {
  const auto device_endpoint = hub_endpoint(description, t.tls ? "mqtts" : "mqtt");
  if (!device_endpoint) {
    return twin::error{1, std::string("the hub has no ") + (t.tls ? "MQTT/TLS" : "plain MQTT") + " listener" +
                              (t.tls ? "" : "; start it with --listen-mqtt 127.0.0.1:1883, or use transport: tls")};
  }
  t.device_endpoint = *device_endpoint;
  t.server_name = "127.0.0.1";
  if (const auto* azure_info = description.if_contains("azure"); azure_info != nullptr && azure_info->is_object()) {
    if (const auto* g = azure_info->as_object().if_contains("group_key"); g != nullptr && g->is_string()) {
      t.group_key = std::string(g->get_string());
    }
  }
  if (t.tls) {
    auth::tls_client_config c;
    if (const auto* ca = description.if_contains("ca_file"); ca != nullptr && ca->is_string()) {
      c.ca_file = std::string(ca->get_string());
    }
    auto ctx = auth::make_tls_client_context(c);
    if (!ctx) return twin::error{1, "TLS client context: " + ctx.error().message()};
    t.device_tls.emplace(std::move(*ctx));
  }
  // The back end talks to the hub as it would to the clouds: REST over loopback (plain HTTP
  // when the hub has a load-test listener, else HTTPS), with the keys hub.json gives.
  const bool plain_http = hub_endpoint(description, "http").has_value();
  auto azure_options = backends::azure_service_options_from_hub_json(description, plain_http);
  auto aws_options = backends::aws_service_options_from_hub_json(description, plain_http);
  if (!azure_options) return twin::error{1, "the back end's Azure client: " + azure_options.error().message};
  if (!aws_options) return twin::error{1, "the back end's AWS client: " + aws_options.error().message};
  azure_options->http.max_connections = 16;
  aws_options->http.max_connections = 16;
  auto azure_client = backends::azure_service_client::create(hub_io.get_executor(), *azure_options);
  auto aws_client = backends::aws_service_client::create(hub_io.get_executor(), *aws_options);
  if (!azure_client) return twin::error{1, "the back end's Azure client: " + azure_client.error().message};
  if (!aws_client) return twin::error{1, "the back end's AWS client: " + aws_client.error().message};
  t.azure = std::move(*azure_client);
  t.aws = std::move(*aws_client);
  return {};
}

}  // namespace

twin::result<std::unique_ptr<run_target>> open_target(const scenario::scenario& s, asio::io_context& hub_io,
                                                      const std::function<void(std::string_view)>& out) {
  auto t = std::make_unique<run_target>();
  json::object description;
  if (const auto* local = std::get_if<scenario::local_target>(&s.target)) {
    t->tls = local->via == scenario::transport::tls;
    t->scratch = std::filesystem::temp_directory_path() /
                 ("twinfleet-run-" + std::to_string(::getpid()) + "-" +
                  std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    hub::hub_options hub_options;
    hub_options.settings.auth = hub::auth_mode::open;
    hub_options.certs_dir = t->scratch;
    hub_options.listeners = {{t->tls ? hub::listener_protocol::mqtts : hub::listener_protocol::mqtt,
                              {asio::ip::make_address("127.0.0.1"), 0}, {}},
                             {hub::listener_protocol::http, {asio::ip::make_address("127.0.0.1"), 0}, {}}};
    hub_options.log = [out](std::string_view line) { out(std::string("hub: ") + std::string(line)); };
    t->embedded = std::make_unique<hub::local_hub>(hub_io.get_executor(), hub_options);
    if (auto ec = t->embedded->start()) return twin::error{1, "the local hub cannot start: " + ec.message()};
    description = t->embedded->describe();
  } else if (const auto* remote = std::get_if<scenario::hub_target>(&s.target)) {
    t->tls = remote->via == scenario::transport::tls;
    auto file = remote->hub_json;
    if (file.is_relative() && !s.source.empty()) file = s.source.parent_path() / file;
    std::ifstream in(file);
    if (!in) return twin::error{1, "cannot read " + file.string() + " (start `twinfleet hub` first; it writes hub.json)"};
    boost::system::error_code ec;
    auto parsed = json::parse(std::string(std::istreambuf_iterator<char>(in), {}), ec);
    if (ec || !parsed.is_object()) return twin::error{1, file.string() + ": not a hub.json"};
    description = std::move(parsed.as_object());
  } else {
    return twin::error{1, std::string("target '") + scenario::target_name(s.target) +
                              "' is not supported by this build yet; use target: local or hub"};
  }
  if (auto opened = open_hub(*t, description, hub_io); !opened) return opened.error();
  return t;
}

}  // namespace twinfleet::engine::detail
