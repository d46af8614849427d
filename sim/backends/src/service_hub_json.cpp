// Service-client options from hub.json (docs/HUB.md documents every field used here).
#include <twinfleet/backends/service_hub_json.hpp>

#include <twinfleet/auth/dev_ca.hpp>

#include <filesystem>

namespace twinfleet::backends {

namespace json = boost::json;

namespace {

service_error missing(std::string_view path) {
  service_error e;
  e.kind = service_failure::bad_request;
  e.message = "hub.json: missing or wrong type: " + std::string(path);
  return e;
}

const json::value* find(const json::object& hub, std::string_view section, std::string_view key) {
  if (section.empty()) return hub.if_contains(key);
  const auto* s = hub.if_contains(section);
  if (s == nullptr || !s->is_object()) return nullptr;
  return s->get_object().if_contains(key);
}

std::optional<std::string> text(const json::object& hub, std::string_view section, std::string_view key) {
  const auto* v = find(hub, section, key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return std::string(v->get_string());
}

std::optional<std::uint16_t> port(const json::object& hub, std::string_view section, std::string_view key) {
  const auto* v = find(hub, section, key);
  if (v == nullptr || !(v->is_int64() || v->is_uint64())) return std::nullopt;
  const auto n = v->is_int64() ? v->get_int64() : static_cast<std::int64_t>(v->get_uint64());
  if (n <= 0 || n > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(n);
}

// The first listener of `protocol`: its address and port.
std::optional<std::pair<std::string, std::uint16_t>> endpoint_of(const json::object& hub, std::string_view protocol) {
  const auto* list = hub.if_contains("endpoints");
  if (list == nullptr || !list->is_array()) return std::nullopt;
  for (const auto& e : list->get_array()) {
    const auto* o = e.if_object();
    if (o == nullptr) continue;
    const auto* p = o->if_contains("protocol");
    if (p == nullptr || !p->is_string() || p->get_string() != protocol) continue;
    auto address = text(*o, {}, "address");
    auto number = port(*o, {}, "port");
    if (address && number) return std::make_pair(std::move(*address), *number);
  }
  return std::nullopt;
}

}  // namespace

service_result<azure_service_options> azure_service_options_from_hub_json(const json::object& hub, bool plain_http) {
  azure_service_options o;
  auto connection_string = text(hub, "azure", "service_connection_string");
  if (!connection_string) return missing("azure.service_connection_string");
  o.connection_string = std::move(*connection_string);
  if (auto ca = text(hub, {}, "ca_file")) o.http.ca_file = *ca;
  if (plain_http) {
    const auto http = endpoint_of(hub, "http");
    if (!http) return missing("endpoints[] with protocol http");
    o.http.use_tls = false;
    o.http.connect_host = http->first;
    o.port = http->second;
  }
  return o;
}

service_result<aws_service_options> aws_service_options_from_hub_json(const json::object& hub, bool plain_http) {
  aws_service_options o;
  auto endpoint = text(hub, "aws", "endpoint");
  if (!endpoint) return missing("aws.endpoint");
  o.endpoint = std::move(*endpoint);
  auto region = text(hub, "aws", "region");
  if (!region) return missing("aws.region");
  o.region = std::move(*region);
  auto key_id = text(hub, "aws", "access_key_id");
  if (!key_id) return missing("aws.access_key_id");
  auto secret = text(hub, "aws", "secret_access_key");
  if (!secret) return missing("aws.secret_access_key");
  o.credentials.access_key_id = std::move(*key_id);
  o.credentials.secret_access_key = std::move(*secret);
  if (auto ca = text(hub, {}, "ca_file")) o.http.ca_file = *ca;
  if (plain_http) {
    const auto http = endpoint_of(hub, "http");
    if (!http) return missing("endpoints[] with protocol http");
    o.http.use_tls = false;
    o.http.connect_host = http->first;
    o.port = http->second;
  } else {
    const auto https = port(hub, "aws", "https_port");
    if (!https) return missing("aws.https_port");
    o.port = *https;
  }
  return o;
}

service_result<aws_shadow_observer_options> aws_shadow_observer_options_from_hub_json(const json::object& hub) {
  aws_shadow_observer_options o;
  auto endpoint = text(hub, "aws", "endpoint");
  if (!endpoint) return missing("aws.endpoint");
  o.host = std::move(*endpoint);
  const auto mqtt_port = port(hub, "aws", "mqtt_port");
  if (!mqtt_port) return missing("aws.mqtt_port");
  o.port = *mqtt_port;
  auto ca = text(hub, {}, "ca_file");
  if (!ca) return missing("ca_file");
  o.ca_file = *ca;
  auto certs_dir = text(hub, {}, "certs_dir");
  if (!certs_dir) return missing("certs_dir");
  const auto* names = find(hub, "aws", "backend_common_names");
  if (names == nullptr || !names->is_array() || names->get_array().empty() ||
      !names->get_array().front().is_string()) {
    return missing("aws.backend_common_names[0]");
  }
  const std::string name(names->get_array().front().get_string());
  const std::filesystem::path dir(*certs_dir);
  const auto stem = "client-" + auth::client_file_stem(name);
  o.certificate_file = dir / (stem + ".pem");
  o.private_key_file = dir / (stem + ".key");
  std::error_code exists_ec;
  if (!std::filesystem::exists(o.certificate_file, exists_ec) || !std::filesystem::exists(o.private_key_file, exists_ec)) {
    auth::dev_ca_options ca_options;
    ca_options.directory = dir;
    ca_options.client_common_names = {name};
    auto written = auth::write_dev_ca(ca_options);
    if (!written) {
      service_error e;
      e.kind = service_failure::bad_request;
      e.transport = written.error();
      e.message = "cannot issue the back-end certificate '" + name + "' in " + dir.string();
      return e;
    }
    o.certificate_file = written->clients.at(0).certificate_file;
    o.private_key_file = written->clients.at(0).key_file;
  }
  o.client_id = name + "-observer";
  return o;
}

}  // namespace twinfleet::backends
