// `twinfleet hub`: the local hub in its own process, until Ctrl-C or SIGTERM.
#include "commands.hpp"

#include <twinfleet/hub/hub_config.hpp>
#include <twinfleet/hub/local_hub.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json.hpp>

#include <fmt/core.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <optional>

namespace twinfleet::app {

namespace {

namespace asio = boost::asio;
namespace json = boost::json;

// What hub.yaml alone can set.
struct fault_and_throttle {
  hub::fault_settings faults;
  hub::throttle_settings throttle;
};

struct hub_flags {
  std::string certs = "twinfleet-hub";
  std::string mqtts = "127.0.0.1:8883";
  std::string https = "127.0.0.1:8443";
  std::string mqtt;
  std::string http;
  std::string wss;
  std::string ws;
  std::string host_name = "localhost";
  std::string auth = "open";
  std::string state_file;  // empty: the store lives and dies with the process
  std::string config;      // hub.yaml; flags given on the command line win over it
  fault_and_throttle knobs;
};

// "127.0.0.1:8883", "[::1]:8883", "localhost:0" → an endpoint; nullopt when malformed.
std::optional<asio::ip::tcp::endpoint> parse_endpoint(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with("[")) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(std::string(host), ec);
  if (ec || port.empty() || port.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  return asio::ip::tcp::endpoint(address, static_cast<unsigned short>(value));
}

// Keys from an earlier run's hub.json, so that a restarted hub keeps its credentials.
void reuse_keys(const std::filesystem::path& file, hub::hub_settings& settings) {
  std::ifstream in(file);
  if (!in) return;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  boost::system::error_code ec;
  const auto doc = json::parse(text, ec);
  if (ec || !doc.is_object()) return;
  try {
    const auto& azure = doc.at("azure").as_object();
    settings.group_key = std::string(azure.at("group_key").as_string());
    for (const auto& p : azure.at("policies").as_array()) {
      for (auto& policy : settings.policies) {
        if (policy.name == p.at("name").as_string()) {
          policy.primary_key = std::string(p.at("primary_key").as_string());
          policy.secondary_key = std::string(p.at("secondary_key").as_string());
        }
      }
    }
    const auto& aws = doc.at("aws").as_object();
    settings.aws_keys = {{std::string(aws.at("access_key_id").as_string()),
                          std::string(aws.at("secret_access_key").as_string())}};
  } catch (const std::exception&) {
    // A hub.json from another version: start with fresh keys.
  }
}

void print_summary(const json::object& d, const std::filesystem::path& file) {
  fmt::print("twinfleet hub ({} auth), state in {}\n", d.at("auth").as_string().c_str(), file.parent_path().string());
  for (const auto& e : d.at("endpoints").as_array()) fmt::print("  {:<6} {}\n", e.at("protocol").as_string().c_str(), e.at("url").as_string().c_str());
  fmt::print("  CA certificate:      {}\n", d.at("ca_file").as_string().c_str());
  const auto& azure = d.at("azure").as_object();
  if (const auto* cs = azure.if_contains("service_connection_string")) {
    fmt::print("  Azure service:       {}\n", cs->as_string().c_str());
  }
  fmt::print("  Azure sample device: {}\n", azure.at("sample_device").at("connection_string").as_string().c_str());
  fmt::print("  Azure group key:     {}\n", azure.at("group_key").as_string().c_str());
  const auto& aws = d.at("aws").as_object();
  fmt::print("  AWS endpoint:        {} (region {})\n", aws.at("endpoint").as_string().c_str(), aws.at("region").as_string().c_str());
  fmt::print("  AWS access key:      {} / {}\n", aws.at("access_key_id").as_string().c_str(),
             aws.at("secret_access_key").as_string().c_str());
  fmt::print("  all of this, as JSON: {}\n", file.string());
  fmt::print("twinfleet hub ready; Ctrl-C stops it\n");
  std::fflush(stdout);
}

int run_hub(const hub_flags& flags) {
  hub::hub_options options;
  options.certs_dir = flags.certs;
  options.settings.host_name = flags.host_name;
  options.settings.auth = flags.auth == "strict" ? hub::auth_mode::strict : hub::auth_mode::open;
  options.settings.policies = hub::default_policies();
  options.settings.faults = flags.knobs.faults;
  options.settings.throttle = flags.knobs.throttle;
  options.settings.group_key = hub::random_key();
  const auto hub_json = std::filesystem::path(flags.certs) / "hub.json";
  reuse_keys(hub_json, options.settings);

  const std::pair<hub::listener_protocol, std::string> wanted[] = {
      {hub::listener_protocol::mqtts, flags.mqtts}, {hub::listener_protocol::https, flags.https},
      {hub::listener_protocol::mqtt, flags.mqtt},   {hub::listener_protocol::http, flags.http},
      {hub::listener_protocol::wss, flags.wss},     {hub::listener_protocol::ws, flags.ws}};
  for (const auto& [protocol, text] : wanted) {
    if (text.empty() || text == "off") continue;
    auto endpoint = parse_endpoint(text);
    if (!endpoint) {
      fmt::print(stderr, "twinfleet hub: --listen-{} {}: expected ADDRESS:PORT, e.g. 127.0.0.1:8883\n",
                 hub::to_string(protocol), text);
      return 2;
    }
    std::string path;
    if (protocol == hub::listener_protocol::ws || protocol == hub::listener_protocol::wss) path = "";  // AWS /mqtt and Azure /$iothub/websocket alike
    options.listeners.push_back({protocol, *endpoint, path});
  }

  asio::io_context io(1);
  hub::local_hub hub(io.get_executor(), options);
  // Loaded before any listener accepts: no device sees the hub without its identities.
  if (!flags.state_file.empty() && std::filesystem::exists(flags.state_file)) {
    if (auto loaded = hub::load_state_file(hub.core(), flags.state_file); !loaded) {
      fmt::print(stderr, "twinfleet hub: cannot load the state file {}\n", loaded.error().message);
      return 1;
    }
    fmt::print("twinfleet hub: loaded {} Azure identities and {} AWS shadows from {}\n", hub.core().twin_count(),
               hub.core().shadow_count(), flags.state_file);
  }
  if (auto ec = hub.start()) {
    fmt::print(stderr, "twinfleet hub: cannot start: {}\n", ec.message());
    return 1;
  }
  const auto description = hub.describe();
  {
    std::ofstream out(hub_json, std::ios::trunc);
    out << json::serialize(description) << '\n';
    if (!out) {
      fmt::print(stderr, "twinfleet hub: cannot write {}\n", hub_json.string());
      return 1;
    }
  }
  std::filesystem::permissions(hub_json, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::replace);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int signal) {
    if (ec) return;
    fmt::print("twinfleet hub: {} received, stopping\n", signal == SIGINT ? "SIGINT" : "SIGTERM");
    std::fflush(stdout);
    hub.async_stop([&] { io.stop(); });
  });
  if (options.settings.faults.any()) {
    fmt::print("  fault injection:     {}\n", json::serialize(hub::to_json(options.settings.faults)));
  }
  if (options.settings.throttle.any()) {
    fmt::print("  throttling:          {}\n", json::serialize(hub::to_json(options.settings.throttle)));
  }
  // Ready only once the signals are ours: a SIGTERM right after "ready" must stop gracefully.
  print_summary(description, hub_json);
  io.run();
  // After async_stop: every connection is closed, nothing changes the store any more.
  if (!flags.state_file.empty()) {
    if (auto written = hub::save_state_file(hub.core(), flags.state_file, std::chrono::system_clock::now()); !written) {
      fmt::print(stderr, "twinfleet hub: cannot save the state: {}\n", written.error().message);
      return 1;
    }
    fmt::print("twinfleet hub: state saved to {}\n", flags.state_file);
  }
  fmt::print("twinfleet hub: stopped\n");
  return 0;
}

}  // namespace

void add_hub_command(CLI::App& app) {
  auto flags = std::make_shared<hub_flags>();
  auto* cmd = app.add_subcommand("hub", "Run the local hub: Azure IoT Hub device twins and AWS IoT shadows on loopback");
  cmd->add_option("--certs", flags->certs, "Folder for the CA, the server certificate and hub.json (created)")
      ->capture_default_str();
  cmd->add_option("--listen-mqtts", flags->mqtts, "MQTT over TLS, ADDRESS:PORT ('off' to disable)")->capture_default_str();
  cmd->add_option("--listen-https", flags->https, "REST service APIs over HTTPS, ADDRESS:PORT ('off' to disable)")
      ->capture_default_str();
  cmd->add_option("--listen-mqtt", flags->mqtt, "plain MQTT over TCP, ADDRESS:PORT (for load tests)");
  cmd->add_option("--listen-http", flags->http, "REST over plain HTTP, ADDRESS:PORT (for load tests)");
  cmd->add_option("--listen-wss", flags->wss, "MQTT over WebSocket and TLS, ADDRESS:PORT");
  cmd->add_option("--listen-ws", flags->ws, "MQTT over WebSocket, ADDRESS:PORT");
  cmd->add_option("--hub-name", flags->host_name, "The Azure host name in connection strings")->capture_default_str();
  cmd->add_option("--state-file", flags->state_file,
                  "Identities, twins and shadows: loaded at start when the file exists, saved on Ctrl-C/SIGTERM");
  cmd->add_option("--auth", flags->auth, "strict: registered devices and CA-signed things only; open: any device id")
      ->check(CLI::IsMember({"strict", "open"}))
      ->capture_default_str();
  cmd->add_option("--config", flags->config,
                  "hub.yaml: listeners, auth, faults and throttling (docs/HUB.md); flags given here win");
  cmd->callback([flags, cmd] {
    if (!flags->config.empty()) {
      twinfleet::config::diagnostics diags;
      auto file = hub::load_hub_config(flags->config, diags);
      if (!file) {
        for (const auto& d : diags.items()) fmt::print(stderr, "{}\n", d.to_string());
        if (diags.empty()) fmt::print(stderr, "twinfleet hub: cannot read {}\n", flags->config);
        throw CLI::RuntimeError(2);
      }
      auto from_file = [&](const char* option, std::string& value, const std::optional<std::string>& setting) {
        if (setting && cmd->get_option(option)->count() == 0) value = *setting;
      };
      from_file("--hub-name", flags->host_name, file->hub_name);
      from_file("--auth", flags->auth, file->auth);
      from_file("--certs", flags->certs, file->certs);
      from_file("--state-file", flags->state_file, file->state_file);
      const std::pair<const char*, std::string*> listeners[] = {
          {"mqtts", &flags->mqtts}, {"https", &flags->https}, {"mqtt", &flags->mqtt},
          {"http", &flags->http},   {"wss", &flags->wss},     {"ws", &flags->ws}};
      for (const auto& [protocol, value] : listeners) {
        if (auto it = file->listen.find(protocol); it != file->listen.end()) {
          from_file(("--listen-" + std::string(protocol)).c_str(), *value, it->second);
        }
      }
      if (file->faults) flags->knobs.faults = *file->faults;
      if (file->throttle) flags->knobs.throttle = *file->throttle;
    }
    const int code = run_hub(*flags);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace twinfleet::app
