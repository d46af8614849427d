// The local hub's I/O shell: binds hub_core to the MQTT listeners of sim/net and to the REST
// server, and runs its timer. Everything on one executor.
#include <twinfleet/hub/local_hub.hpp>
#include <twinfleet/hub/rest.hpp>

#include <twinfleet/auth/dev_ca.hpp>
#include <twinfleet/auth/tls.hpp>
#include <twinfleet/net/server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/rand.h>

#include <cstdio>
#include <exception>

namespace twinfleet::hub {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::string_view to_string(listener_protocol p) noexcept {
  switch (p) {
    case listener_protocol::mqtt: return "mqtt";
    case listener_protocol::mqtts: return "mqtts";
    case listener_protocol::ws: return "ws";
    case listener_protocol::wss: return "wss";
    case listener_protocol::http: return "http";
    case listener_protocol::https: return "https";
  }
  return "?";
}

namespace {

net::transport_kind transport_of(listener_protocol p) {
  switch (p) {
    case listener_protocol::mqtts: return net::transport_kind::tls;
    case listener_protocol::ws: return net::transport_kind::ws;
    case listener_protocol::wss: return net::transport_kind::wss;
    default: return net::transport_kind::tcp;
  }
}

transport_kind link_transport(net::transport_kind k) {
  switch (k) {
    case net::transport_kind::tls: return transport_kind::tls;
    case net::transport_kind::ws: return transport_kind::ws;
    case net::transport_kind::wss: return transport_kind::wss;
    default: return transport_kind::tcp;
  }
}

std::string endpoint_text(const tcp::endpoint& e) {
  const auto address = e.address().to_string();
  return (e.address().is_v6() ? "[" + address + "]" : address) + ":" + std::to_string(e.port());
}

std::string random_text(std::string_view alphabet, std::size_t length) {
  std::string out(length, ' ');
  std::vector<unsigned char> bytes(length);
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) throw std::runtime_error("no random bytes");
  for (std::size_t i = 0; i < length; ++i) out[i] = alphabet[bytes[i] % alphabet.size()];
  return out;
}

// A device connection as hub_core sees it: the net connection plus what TLS and WebSocket
// told about the peer.
class connection_link final : public link {
 public:
  connection_link(net::server_connection& conn, link_info info) : conn_(&conn), info_(std::move(info)) {}

  void send(std::string_view topic, std::string_view payload, mqtt::qos qos) override {
    if (conn_ == nullptr) return;
    if (!conn_->publish(topic, payload, qos)) ++dropped;  // queue full or closing: the device misses it
  }
  void close() override {
    if (conn_ != nullptr) conn_->close();
  }
  [[nodiscard]] const link_info& info() const override { return info_; }
  void detach() { conn_ = nullptr; }

  std::uint64_t dropped = 0;

 private:
  net::server_connection* conn_;
  link_info info_;
};

}  // namespace

struct local_hub::impl : net::server_handler {
  impl(asio::any_io_executor ex, hub_options opts)
      : executor(std::move(ex)), options(std::move(opts)), core(options.settings), timer(executor) {
    core.set_wakeup([this](time_point at) {
      if (at < armed_until) timer.cancel();
    });
  }

  void log(std::string_view line) const {
    if (options.log) {
      options.log(line);
    } else {
      std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    }
  }

  static time_point now() { return std::chrono::system_clock::now(); }

  static connection_link* link_of(net::server_connection& conn) {
    auto* p = std::any_cast<std::shared_ptr<connection_link>>(&conn.user_data());
    return p == nullptr ? nullptr : p->get();
  }

  // ---- net::server_handler: every MQTT event goes to hub_core ----

  void on_connect(net::server_connection& conn, const mqtt::connect_packet& packet) override {
    link_info info;
    info.remote_endpoint = endpoint_text(conn.remote_endpoint());
    info.transport = link_transport(conn.transport());
    if (auto cert = conn.peer_certificate()) {
      info.certificate = peer_certificate{cert->info.subject_common_name, cert->info.sha1_thumbprint,
                                          cert->info.sha256_thumbprint, cert->verified};
    }
    info.alpn = conn.alpn();
    info.ws_target = std::string(conn.ws_request_target());
    auto device = std::make_shared<connection_link>(conn, std::move(info));
    conn.user_data() = device;
    const auto code = core.on_connect(*device, packet, now());
    if (code == mqtt::connect_return_code::accepted) {
      mqtt::accept_params params;
      params.keep_alive = core.supervised_keep_alive(*device, packet.keep_alive);
      (void)conn.accept(params);
    } else {
      (void)conn.refuse(code);
    }
  }

  std::vector<mqtt::suback_code> on_subscribe(net::server_connection& conn,
                                              std::span<const mqtt::subscription> subscriptions) override {
    auto* device = link_of(conn);
    if (device == nullptr) return std::vector<mqtt::suback_code>(subscriptions.size(), mqtt::suback_code::failure);
    return core.on_subscribe(*device, subscriptions, now());
  }

  void on_unsubscribe(net::server_connection& conn, std::span<const std::string_view> filters) override {
    if (auto* device = link_of(conn)) core.on_unsubscribe(*device, filters);
  }

  void on_publish(net::server_connection& conn, const mqtt::publish_packet& packet) override {
    if (auto* device = link_of(conn)) core.on_publish(*device, packet, now());
  }

  void on_closed(net::server_connection& conn, boost::system::error_code) override {
    if (auto* device = link_of(conn)) {
      core.on_disconnect(*device, now());
      device->detach();
    }
  }

  // ---- the timer that drives method timeouts and SAS expiry ----

  asio::awaitable<void> run_timer() {
    // hub_core's deadlines are on the system clock; re-check at least every 100 ms so that
    // deadlines added by REST calls (which do not pass through here) are served on time.
    constexpr auto max_wait = std::chrono::milliseconds(100);
    while (!stopping) {
      const auto wait = timer_wait(core.next_deadline(), now(), max_wait);
      armed_until = now() + wait;
      timer.expires_after(wait);
      (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      armed_until = time_point::max();
      if (stopping) break;
      core.on_timer(now());
    }
  }

  boost::system::error_code prepare_tls() {
    auth::dev_ca_options ca;
    ca.directory = options.certs_dir;
    auto written = auth::write_dev_ca(ca);
    if (!written) return written.error();
    ca_file = written->ca.certificate_file;
    // The CA also as ca.crt, the name the users and some tools look for first.
    {
      std::error_code ignored;
      const auto alias = options.certs_dir / "ca.crt";
      if (!std::filesystem::exists(alias, ignored)) std::filesystem::copy_file(ca_file, alias, ignored);
    }
    auth::tls_server_config config;
    config.certificate_chain_file = written->server.certificate_file;
    config.private_key_file = written->server.key_file;
    config.client_ca_file = written->ca.certificate_file;
    // Azure SAS devices send no certificate, Azure X.509 devices may send a self-signed one,
    // AWS devices send one signed by our CA: ask for it, never insist, report what verified.
    config.client_certificates = auth::client_certificate_mode::request;
    auto context = auth::make_tls_server_context(config);
    if (!context) return context.error();
    tls = std::make_unique<asio::ssl::context>(std::move(*context));
    return {};
  }

  asio::any_io_executor executor;
  hub_options options;
  hub_core core;
  asio::steady_timer timer;
  // When the timer wakes next; an earlier deadline from hub_core (a delayed delivery, a queued
  // request) cancels the wait so that the loop re-arms for it.
  time_point armed_until = time_point::max();
  std::unique_ptr<asio::ssl::context> tls;
  std::filesystem::path ca_file;
  std::vector<std::unique_ptr<net::mqtt_listener>> mqtt_listeners;
  std::vector<std::unique_ptr<rest_server>> rest_servers;
  std::vector<bound_listener> bound;
  bool stopping = false;
  bool started = false;
};

local_hub::local_hub(asio::any_io_executor executor, hub_options options)
    : impl_(std::make_unique<impl>(std::move(executor), std::move(options))) {
  auto& s = impl_->core.settings();
  if (s.aws_keys.empty()) {
    // One access key pair per hub, in AWS's shapes, unless the settings bring their own.
    auto& keys = const_cast<hub_settings&>(s).aws_keys;
    keys.push_back({"AKIA" + random_text("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
                    random_text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40)});
  }
}

local_hub::~local_hub() = default;

boost::system::error_code local_hub::start() {
  auto& m = *impl_;
  if (m.started) return {};
  if (auto ec = m.prepare_tls()) return ec;
  for (const auto& spec : m.options.listeners) {
    if (spec.protocol == listener_protocol::http || spec.protocol == listener_protocol::https) {
      rest_server_options ro;
      ro.address = spec.endpoint.address().to_string();
      ro.port = spec.endpoint.port();
      ro.tls = spec.protocol == listener_protocol::https ? m.tls.get() : nullptr;
      ro.log = m.options.log;
      auto server = rest_server::create(m.executor, m.core, ro);
      if (!server) return server.error();
      (*server)->start();
      const auto at = (*server)->local_endpoint();
      m.bound.push_back({spec.protocol, tcp::endpoint(asio::ip::make_address(at.address), at.port), {}});
      m.rest_servers.push_back(std::move(*server));
      continue;
    }
    net::listener_options lo;
    lo.endpoint = spec.endpoint;
    lo.transport = transport_of(spec.protocol);
    lo.tls = net::uses_tls(lo.transport) ? m.tls.get() : nullptr;
    lo.ws_path = spec.ws_path;
    auto listener = std::make_unique<net::mqtt_listener>(m.executor, lo, m);
    if (auto ec = listener->listen()) return ec;
    m.bound.push_back({spec.protocol, listener->local_endpoint(), spec.ws_path});
    m.mqtt_listeners.push_back(std::move(listener));
  }
  m.started = true;
  asio::co_spawn(m.executor, m.run_timer(), [&m](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      m.log(std::string("hub: the timer stopped on an exception: ") + ex.what());
    }
  });
  return {};
}

void local_hub::async_stop(std::function<void()> done) {
  auto& m = *impl_;
  for (auto& l : m.mqtt_listeners) l->stop();
  // A REST request waiting for a device's method answer would hold the stop open until the
  // call's timeout (up to minutes; the timer below served it, and was cancelled here first, so
  // the stop never ended): pending calls end now, as their timeout would. The timer runs on
  // until the stop is done, for what else comes due meanwhile (queued, throttled requests).
  m.core.expire_methods();
  // REST servers first, then wait for every MQTT connection to end.
  auto remaining = std::make_shared<std::size_t>(m.rest_servers.size());
  auto finish_mqtt = [&m, done = std::move(done)]() mutable {
    asio::co_spawn(
        m.executor,
        [&m]() -> asio::awaitable<void> {
          for (auto& l : m.mqtt_listeners) co_await l->async_wait_stopped();
        },
        [&m, done = std::move(done)](std::exception_ptr) {
          m.stopping = true;
          m.timer.cancel();
          if (done) done();
        });
  };
  if (*remaining == 0) {
    finish_mqtt();
    return;
  }
  auto shared_finish = std::make_shared<decltype(finish_mqtt)>(std::move(finish_mqtt));
  for (auto& server : m.rest_servers) {
    server->async_stop(std::chrono::seconds(5), [remaining, shared_finish] {
      if (--*remaining == 0) (*shared_finish)();
    });
  }
}

const std::vector<bound_listener>& local_hub::listeners() const noexcept { return impl_->bound; }
hub_core& local_hub::core() noexcept { return impl_->core; }
const std::filesystem::path& local_hub::ca_file() const noexcept { return impl_->ca_file; }

boost::json::object local_hub::describe() const {
  namespace json = boost::json;
  const auto& m = *impl_;
  const auto& s = m.core.settings();
  json::array endpoints;
  std::optional<std::uint16_t> mqtts_port, https_port;
  for (const auto& b : m.bound) {
    json::object e;
    e["protocol"] = to_string(b.protocol);
    e["address"] = b.endpoint.address().to_string();
    e["port"] = b.endpoint.port();
    std::string url = std::string(to_string(b.protocol)) + "://" + endpoint_text(b.endpoint);
    if (!b.ws_path.empty()) url += b.ws_path;
    e["url"] = url;
    if (!b.ws_path.empty()) e["ws_path"] = b.ws_path;
    endpoints.push_back(std::move(e));
    if (b.protocol == listener_protocol::mqtts && !mqtts_port) mqtts_port = b.endpoint.port();
    if (b.protocol == listener_protocol::https && !https_port) https_port = b.endpoint.port();
  }
  const std::string host = s.host_name;
  // azure-iothub dials port 443 always and takes a HostName with a port for a host name
  // (getaddrinfo fails on "localhost:443"): on 443 the port stays out.
  const auto with_port = [&](std::optional<std::uint16_t> port) {
    return port && *port != 443 ? host + ":" + std::to_string(*port) : host;
  };

  json::object azure;
  azure["host_name"] = host;
  const auto owner = std::find_if(s.policies.begin(), s.policies.end(), [](auto& p) { return p.name == "iothubowner"; });
  if (owner != s.policies.end()) {
    azure["service_connection_string"] =
        "HostName=" + with_port(https_port) + ";SharedAccessKeyName=iothubowner;SharedAccessKey=" + owner->primary_key;
  }
  json::array policies;
  for (const auto& p : s.policies) {
    policies.push_back(json::object{{"name", p.name}, {"primary_key", p.primary_key}, {"secondary_key", p.secondary_key}});
  }
  azure["policies"] = std::move(policies);
  azure["group_key"] = s.group_key;
  const std::string sample = "device-0001";
  azure["sample_device"] = json::object{
      {"device_id", sample},
      {"key", m.core.device_key_for(sample)},
      {"connection_string",
       "HostName=" + with_port(mqtts_port) + ";DeviceId=" + sample + ";SharedAccessKey=" + m.core.device_key_for(sample)}};

  json::object aws;
  aws["endpoint"] = host;
  if (mqtts_port) aws["mqtt_port"] = *mqtts_port;
  if (https_port) aws["https_port"] = *https_port;
  aws["region"] = s.aws_region;
  if (!s.aws_keys.empty()) {
    aws["access_key_id"] = s.aws_keys.front().access_key_id;
    aws["secret_access_key"] = s.aws_keys.front().secret_access_key;
  }
  json::array admins;
  for (const auto& cn : s.aws_admin_common_names) admins.emplace_back(cn);
  aws["backend_common_names"] = std::move(admins);

  json::object out;
  out["auth"] = s.auth == auth_mode::strict ? "strict" : "open";
  out["ca_file"] = std::filesystem::absolute(m.ca_file).string();
  out["certs_dir"] = std::filesystem::absolute(m.options.certs_dir).string();
  out["endpoints"] = std::move(endpoints);
  out["azure"] = std::move(azure);
  out["aws"] = std::move(aws);
  return out;
}

}  // namespace twinfleet::hub
