// open_target(): the embedded hub or a `twinfleet hub` (more targets arrive here), made into
// what a run needs: a device endpoint with its TLS context and keys, and the service clients.
#include "target.hpp"

#include <twinfleet/auth/sas.hpp>
#include <twinfleet/auth/tls.hpp>
#include <twinfleet/backends/service_hub_json.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

#include <unistd.h>

namespace twinfleet::engine::detail {

namespace asio = boost::asio;
namespace json = boost::json;

net::client_transport run_target::transport(std::string_view device_id) const {
  net::client_transport t;
  if (tls) {
    t.kind = net::transport_kind::tls;
    // Shared, read-only after setup.
    t.tls = const_cast<asio::ssl::context*>(device_tls ? &*device_tls : nullptr);
    if (auto own = device_contexts.find(std::string(device_id)); own != device_contexts.end()) t.tls = own->second.get();
    t.server_name = server_name;
  }
  return t;
}

std::shared_ptr<const net::client_transport> run_target::shared_transport(std::string_view device_id,
                                                                         std::optional<asio::ip::address> source) const {
  auto t = transport(device_id);
  t.local_address = source;
  std::lock_guard lock(transports_m_);
  auto& shared = transports_[transport_key(t.tls, source)];
  if (!shared) shared = std::make_shared<const net::client_transport>(std::move(t));
  return shared;
}

void run_target::configure(device::azure_device_run& run, std::optional<asio::ip::address> source) const {
  run.hub = device_endpoint;
  run.transport = shared_transport({}, source);
  run.session.host_name = azure_host_name;
  if (!group_key.empty()) {
    if (auto key = auth::derive_device_key(group_key, run.session.device_id)) run.session.sas_key = std::move(*key);
  } else if (auto key = device_keys.find(run.session.device_id); key != device_keys.end()) {
    run.session.sas_key = key->second;
  }
}

void run_target::configure(device::aws_device_run& run, std::optional<asio::ip::address> source) const {
  run.hub = device_endpoint;
  run.transport = shared_transport(run.session.thing_name, source);
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

using namespace std::chrono_literals;
using tcp = asio::ip::tcp;

std::string describe(const backends::service_error& e) {
  std::ostringstream text;
  text << e;
  return text.str();
}

// A secret setting's value: "env:NAME" read from the environment.
twin::result<std::string> secret(const std::string& value, std::string_view setting) {
  if (auto v = scenario::resolve_secret(value)) return std::move(*v);
  return twin::error{1, "target." + std::string(setting) + ": the environment variable " + value.substr(4) + " is not set"};
}

// "host:port" (the loader checked the form).
std::pair<std::string, std::uint16_t> split_host_port(const std::string& text) {
  const auto colon = text.rfind(':');
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return {host, static_cast<std::uint16_t>(std::stoul(text.substr(colon + 1)))};
}

// Resolves `host` and checks that something accepts TCP connections there (within 5 s), so
// a wrong endpoint fails the run at once instead of as N device connect failures.
twin::result<tcp::endpoint> reachable(const std::string& host, std::uint16_t port, std::string_view setting) {
  const std::string where = host + ":" + std::to_string(port);
  asio::io_context io;
  boost::system::error_code ec;
  tcp::resolver resolver(io);
  const auto found = resolver.resolve(host, std::to_string(port), ec);
  if (ec || found.empty()) {
    return twin::error{1, std::string(setting) + ": cannot resolve " + host + (ec ? ": " + ec.message() : "")};
  }
  // Every address the name has, in order; the first that accepts wins.
  std::string last_error = "no address";
  for (const auto& entry : found) {
    tcp::socket socket(io);
    boost::system::error_code outcome = asio::error::timed_out;
    bool done = false;
    socket.async_connect(entry.endpoint(), [&](boost::system::error_code e) {
      outcome = e;
      done = true;
    });
    io.restart();
    io.run_for(5s);
    if (done && !outcome) return entry.endpoint();
    last_error = outcome.message();
    socket.close(ec);
    io.restart();
    io.poll();  // the cancelled connect completes while `outcome` is alive
  }
  return twin::error{1, std::string(setting) + ": cannot reach " + where + ": " + last_error};
}

twin::result<void> readable(const std::filesystem::path& file, std::string_view setting) {
  if (std::ifstream(file)) return {};
  return twin::error{1, "target." + std::string(setting) + ": cannot read " + file.string()};
}

// A TLS client context, its failure named by the settings it came from.
twin::result<asio::ssl::context> client_context(const auth::tls_client_config& c, std::string_view settings) {
  auto ctx = auth::make_tls_client_context(c);
  if (!ctx) return twin::error{1, "target." + std::string(settings) + ": cannot load: " + ctx.error().message()};
  return std::move(*ctx);
}

// target: azure — an IoT Hub (or the local hub's emulation of one) from a service connection
// string; devices on HostName:8883 over TLS with SAS keys.
twin::result<void> open_azure(run_target& t, const scenario::azure_target& a, asio::io_context& hub_io) {
  auto cs = secret(a.connection_string, "connection_string");
  if (!cs) return cs.error();
  const auto connection = backends::parse_azure_service_connection_string(*cs);
  if (!connection) return twin::error{1, "target.connection_string: " + connection.error().message};
  if (!a.group_key.empty()) {
    auto gk = secret(a.group_key, "group_key");
    if (!gk) return gk.error();
    if (!auth::derive_device_key(*gk, "probe")) return twin::error{1, "target.group_key: not a base64 key"};
    t.group_key = std::move(*gk);
  }
  if (!a.ca.empty()) {
    if (auto ok = readable(a.ca, "ca"); !ok) return ok.error();
  }
  t.tls = true;
  t.azure_host_name = connection->host_name;
  t.server_name = connection->host_name;
  auth::tls_client_config c;
  c.ca_file = a.ca;
  auto ctx = client_context(c, "ca");
  if (!ctx) return ctx.error();
  t.device_tls.emplace(std::move(*ctx));

  auto [device_host, device_port] = a.device_endpoint.empty() ? std::pair{connection->host_name, std::uint16_t{8883}}
                                                              : split_host_port(a.device_endpoint);
  auto endpoint = reachable(device_host, device_port,
                            a.device_endpoint.empty() ? "the devices' endpoint (HostName of target.connection_string, port 8883)"
                                                      : "target.device_endpoint");
  if (!endpoint) return endpoint.error();
  t.device_endpoint = *endpoint;

  backends::azure_service_options o;
  o.connection_string = *cs;
  o.http.ca_file = a.ca;
  o.http.max_connections = 16;
  if (!a.rest_endpoint.empty()) {
    auto [host, port] = split_host_port(a.rest_endpoint);
    o.http.connect_host = host;
    o.port = port;
  }
  if (a.group_key.empty()) o.registry_rate_per_second = a.registry_rate;
  auto client = backends::azure_service_client::create(hub_io.get_executor(), o);
  if (!client) return twin::error{1, "target.connection_string: " + client.error().message};
  t.azure = std::move(*client);
  return {};
}

// target: aws — AWS IoT Core (or the local hub's emulation): devices over mutual TLS on
// endpoint:8883, the back end on the shadow data plane with SigV4.
twin::result<void> open_aws(run_target& t, const scenario::aws_target& a, asio::io_context& hub_io) {
  auth::aws_credentials credentials;
  if (!a.access_key_id.empty()) {
    auto id = secret(a.access_key_id, "access_key_id");
    if (!id) return id.error();
    auto key = secret(a.secret_access_key, "secret_access_key");
    if (!key) return key.error();
    credentials.access_key_id = std::move(*id);
    credentials.secret_access_key = std::move(*key);
    if (!a.session_token.empty()) {
      auto token = secret(a.session_token, "session_token");
      if (!token) return token.error();
      credentials.session_token = std::move(*token);
    }
  } else {
    const char* id = std::getenv("AWS_ACCESS_KEY_ID");
    const char* key = std::getenv("AWS_SECRET_ACCESS_KEY");
    if (id == nullptr || *id == '\0' || key == nullptr || *key == '\0') {
      return twin::error{1, "target.access_key_id: not in the scenario, and AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set"};
    }
    credentials.access_key_id = id;
    credentials.secret_access_key = key;
    if (const char* token = std::getenv("AWS_SESSION_TOKEN")) credentials.session_token = token;
  }
  if (auto ok = readable(a.ca, "ca"); !ok) return ok.error();
  t.tls = true;
  t.server_name = a.endpoint;
  if (a.certificate_dir.empty()) {
    if (auto ok = readable(a.certificate, "certificate"); !ok) return ok.error();
    if (auto ok = readable(a.key, "key"); !ok) return ok.error();
    auth::tls_client_config c;
    c.ca_file = a.ca;
    c.certificate_chain_file = a.certificate;
    c.private_key_file = a.key;
    auto ctx = client_context(c, "certificate and target.key");
    if (!ctx) return ctx.error();
    t.device_tls.emplace(std::move(*ctx));
  } else if (!std::filesystem::is_directory(a.certificate_dir)) {
    return twin::error{1, "target.certificate_dir: " + a.certificate_dir.string() + " is not a folder"};
  }

  auto [device_host, device_port] = a.device_endpoint.empty() ? std::pair{a.endpoint, std::uint16_t{8883}}
                                                              : split_host_port(a.device_endpoint);
  auto endpoint = reachable(device_host, device_port,
                            a.device_endpoint.empty() ? "target.endpoint (port 8883)" : "target.device_endpoint");
  if (!endpoint) return endpoint.error();
  t.device_endpoint = *endpoint;

  backends::aws_service_options o;
  o.endpoint = a.endpoint;
  o.region = a.region;
  o.credentials = std::move(credentials);
  o.http.ca_file = a.ca;
  o.http.max_connections = 16;
  if (!a.rest_endpoint.empty()) {
    auto [host, port] = split_host_port(a.rest_endpoint);
    o.http.connect_host = host;
    o.port = port;
  }
  auto client = backends::aws_service_client::create(hub_io.get_executor(), o);
  if (!client) return twin::error{1, "target: the data-plane client: " + client.error().message};
  t.aws = std::move(*client);
  return {};
}

// Every device of the fleet speaks the target's dialect (a cloud carries one).
twin::result<void> one_dialect(const scenario::scenario& s, scenario::dialect d) {
  for (std::size_t i = 0; i < s.fleet.size(); ++i) {
    if (s.fleet[i].via != d) {
      return twin::error{1, std::string("fleet[") + std::to_string(i) + "]: dialect " + scenario::to_string(s.fleet[i].via) +
                                " cannot run on target " + scenario::to_string(d) + "; give every entry dialect: " +
                                scenario::to_string(d)};
    }
  }
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
  } else if (const auto* azure = std::get_if<scenario::azure_target>(&s.target)) {
    if (auto ok = one_dialect(s, scenario::dialect::azure); !ok) return ok.error();
    if (auto opened = open_azure(*t, *azure, hub_io); !opened) return opened.error();
    return t;
  } else {
    if (auto ok = one_dialect(s, scenario::dialect::aws); !ok) return ok.error();
    if (auto opened = open_aws(*t, std::get<scenario::aws_target>(s.target), hub_io); !opened) return opened.error();
    return t;
  }
  if (auto opened = open_hub(*t, description, hub_io); !opened) return opened.error();
  t->hub_description = std::move(description);
  return t;
}

bool run_until(asio::io_context& hub_io, const std::function<bool()>& done, std::chrono::steady_clock::time_point deadline) {
  hub_io.restart();
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    if (hub_io.run_one_for(std::chrono::milliseconds(250)) == 0 && hub_io.stopped()) hub_io.restart();
  }
  hub_io.restart();
  return done();
}

}  // namespace twinfleet::engine::detail

namespace twinfleet::engine::detail {

namespace {

// The registry walk's shared state: the coroutines hold it, so a walk abandoned by a deadline
// leaves nothing dangling.
struct registry_walk {
  std::vector<std::string> ids;
  std::size_t next = 0;
  std::size_t ready = 0;
  std::size_t created = 0;
  std::size_t workers = 0;
  bool create = true;
  std::unordered_map<std::string, std::string> keys;
  std::optional<std::string> failure;
  bool done = false;
};

// The registry's answer in words, naming the setting behind it.
std::string registry_failure(const backends::service_error& e, std::string_view id) {
  if (e.http_status == 401 || e.http_status == 403) {
    return "target.connection_string: IoT Hub refused the shared access key: " + describe(e);
  }
  if (e.kind != backends::service_failure::http) {
    return "target.rest_endpoint (or the HostName of target.connection_string): cannot reach the service: " + describe(e);
  }
  return "the registry refused device '" + std::string(id) + "': " + describe(e);
}

// GET /devices/{id}, PUT it when missing; 429 waits Retry-After (or 1 s) and tries again.
asio::awaitable<void> registry_worker(std::shared_ptr<registry_walk> walk, backends::azure_service_client& client) {
  asio::steady_timer pause(co_await asio::this_coro::executor);
  while (!walk->failure && walk->next < walk->ids.size()) {
    const std::string id = walk->ids[walk->next++];
    std::optional<backends::service_result<json::object>> answer;
    for (int attempt = 0; attempt < 6; ++attempt) {
      auto got = co_await client.async_get_device(id);
      if (!got && got.error().not_found()) {
        if (!walk->create) {
          walk->failure = "device '" + id + "' is not in the registry and target.create_devices is false";
          break;
        }
        got = co_await client.async_create_or_update_device(id);
        if (got) ++walk->created;
      }
      if (!got && got.error().throttled()) {
        pause.expires_after(got.error().retry_after.value_or(std::chrono::milliseconds(1000)));
        (void)co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      answer = std::move(got);
      break;
    }
    if (walk->failure) break;
    if (!answer) {
      walk->failure = "the registry kept throttling (429) device '" + id + "'; lower target.registry_rate";
      break;
    }
    if (!*answer) {
      walk->failure = registry_failure(answer->error(), id);
      break;
    }
    std::string key;
    if (const auto* auth = (*answer)->if_contains("authentication"); auth != nullptr && auth->is_object()) {
      if (const auto* sym = auth->get_object().if_contains("symmetricKey"); sym != nullptr && sym->is_object()) {
        if (const auto* p = sym->get_object().if_contains("primaryKey"); p != nullptr && p->is_string()) key = p->get_string();
      }
    }
    if (key.empty()) {
      walk->failure = "device '" + id + "' has no symmetric key in the registry (an X.509 identity?); twinfleet's Azure devices use SAS keys";
      break;
    }
    walk->keys.emplace(id, std::move(key));
    ++walk->ready;
  }
  if (--walk->workers == 0) walk->done = true;
}

twin::result<void> provision_azure(run_target& t, const scenario::azure_target& a,
                                   const std::vector<scenario::device_spec>& fleet, asio::io_context& hub_io,
                                   const std::function<void(std::string_view)>& out) {
  if (fleet.empty()) return {};
  if (!t.group_key.empty()) {
    // Devices derive their keys; one twin read proves the service key before they start.
    auto result = std::make_shared<std::optional<backends::service_result<backends::twin_document>>>();
    asio::co_spawn(
        hub_io,
        [](backends::azure_service_client& c, std::string id, decltype(result) r) -> asio::awaitable<void> {
          auto got = co_await c.async_get_twin(id);
          r->emplace(std::move(got));
        }(*t.azure, fleet.front().id, result),
        asio::detached);
    if (!run_until(hub_io, [&] { return result->has_value(); }, std::chrono::steady_clock::now() + 60s)) {
      return twin::error{1, "target.rest_endpoint (or the HostName of target.connection_string): no answer within 60 s"};
    }
    if (!**result && !(*result)->error().not_found()) return twin::error{1, registry_failure((*result)->error(), fleet.front().id)};
    return {};
  }
  auto walk = std::make_shared<registry_walk>();
  walk->create = a.create_devices;
  for (const auto& d : fleet) walk->ids.push_back(d.id);
  walk->workers = std::min<std::size_t>(8, walk->ids.size());
  for (std::size_t i = 0, n = walk->workers; i < n; ++i) asio::co_spawn(hub_io, registry_worker(walk, *t.azure), asio::detached);
  // Two registry operations for a missing device, at registry_rate, plus room for slow answers.
  const auto budget = std::chrono::duration<double>(2.0 * static_cast<double>(walk->ids.size()) / a.registry_rate) + 60s;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(budget);
  char rate[32];
  std::snprintf(rate, sizeof rate, "%g/s", a.registry_rate);
  out("registry: reading " + std::to_string(walk->ids.size()) + " device identities" +
      (a.create_devices ? ", creating the missing ones," : "") + " at " + rate);
  auto next_report = std::chrono::steady_clock::now() + 1s;
  const bool finished = run_until(
      hub_io,
      [&] {
        if (std::chrono::steady_clock::now() >= next_report && !walk->done) {
          next_report += 1s;
          out("registry: " + std::to_string(walk->ready) + "/" + std::to_string(walk->ids.size()) + " identities ready (" +
              std::to_string(walk->created) + " created)");
        }
        return walk->done;
      },
      deadline);
  if (!finished) {
    walk->failure = "stopped";  // the workers end at their next answer
    return twin::error{1, "target.registry_rate: the registry walk did not finish in time (" + std::to_string(walk->ready) + "/" +
                              std::to_string(walk->ids.size()) + " identities ready)"};
  }
  if (walk->failure) return twin::error{1, *walk->failure};
  out("registry: " + std::to_string(walk->ready) + " identities ready (" + std::to_string(walk->created) + " created)");
  t.device_keys = std::move(walk->keys);
  return {};
}

// The certificate and key of one thing in certificate_dir: {id}.cert.pem and {id}.private.key
// (the AWS console's names), else client-{id}.pem and client-{id}.key (`twinfleet certs`).
std::optional<std::pair<std::filesystem::path, std::filesystem::path>> thing_files(const std::filesystem::path& dir,
                                                                                   const std::string& id) {
  for (auto [cert, key] : {std::pair{id + ".cert.pem", id + ".private.key"}, std::pair{"client-" + id + ".pem", "client-" + id + ".key"}}) {
    if (std::filesystem::exists(dir / cert)) return std::pair{dir / cert, dir / key};
  }
  return std::nullopt;
}

twin::result<void> provision_aws(run_target& t, const scenario::aws_target& a, const std::vector<scenario::device_spec>& fleet,
                                 asio::io_context& hub_io) {
  if (fleet.empty()) return {};
  if (!a.certificate_dir.empty()) {
    for (const auto& d : fleet) {
      const auto files = thing_files(a.certificate_dir, d.id);
      if (!files) {
        return twin::error{1, "target.certificate_dir: no certificate for thing '" + d.id + "' (looked for " +
                                  (a.certificate_dir / (d.id + ".cert.pem")).string() + " and client-" + d.id + ".pem)"};
      }
      if (auto ok = readable(files->second, "certificate_dir"); !ok) return ok.error();
      auth::tls_client_config c;
      c.ca_file = a.ca;
      c.certificate_chain_file = files->first;
      c.private_key_file = files->second;
      auto ctx = auth::make_tls_client_context(c);
      if (!ctx) {
        return twin::error{1, "target.certificate_dir: cannot load " + files->first.string() + " with " + files->second.string() +
                                  ": " + ctx.error().message()};
      }
      t.device_contexts.emplace(d.id, std::make_unique<asio::ssl::context>(std::move(*ctx)));
    }
  }
  // One shadow read proves the endpoint and the SigV4 credentials (404: no shadow yet, fine).
  auto result = std::make_shared<std::optional<backends::service_result<json::object>>>();
  asio::co_spawn(
      hub_io,
      [](backends::aws_service_client& c, std::string thing, decltype(result) r) -> asio::awaitable<void> {
        auto got = co_await c.async_get_shadow(thing, "");
        r->emplace(std::move(got));
      }(*t.aws, fleet.front().id, result),
      asio::detached);
  const std::string rest = a.rest_endpoint.empty() ? "target.endpoint (port 443)" : "target.rest_endpoint";
  if (!run_until(hub_io, [&] { return result->has_value(); }, std::chrono::steady_clock::now() + 60s)) {
    return twin::error{1, rest + ": no answer within 60 s"};
  }
  if (**result || (*result)->error().not_found()) return {};
  const auto& e = (*result)->error();
  if (e.http_status == 401 || e.http_status == 403) {
    return twin::error{1, std::string(a.access_key_id.empty() ? "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
                                                              : "target.access_key_id / target.secret_access_key") +
                              ": the data plane refused the credentials: " + describe(e)};
  }
  if (e.kind != backends::service_failure::http) return twin::error{1, rest + ": cannot reach the data plane: " + describe(e)};
  return twin::error{1, rest + ": the data plane answered " + describe(e)};
}

}  // namespace

twin::result<void> provision(run_target& target, const scenario::scenario& s, const std::vector<scenario::device_spec>& fleet,
                             asio::io_context& hub_io, const std::function<void(std::string_view)>& out) {
  if (const auto* azure = std::get_if<scenario::azure_target>(&s.target)) return provision_azure(target, *azure, fleet, hub_io, out);
  if (const auto* aws = std::get_if<scenario::aws_target>(&s.target)) return provision_aws(target, *aws, fleet, hub_io);
  return {};
}

}  // namespace twinfleet::engine::detail
