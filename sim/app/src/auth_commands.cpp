// `twinfleet sas` and `twinfleet certs`: credentials for trying the hub, Azure or AWS by hand.
#include "commands.hpp"

#include <twinfleet/auth/dev_ca.hpp>
#include <twinfleet/auth/encoding.hpp>
#include <twinfleet/auth/sas.hpp>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <chrono>
#include <charconv>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace twinfleet::app {

namespace {

// "3600", "3600s", "90m", "24h", "7d": a positive whole number of seconds, minutes, hours or days.
std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t unit = 1;
  switch (text.back()) {
    case 's': unit = 1; text.remove_suffix(1); break;
    case 'm': unit = 60; text.remove_suffix(1); break;
    case 'h': unit = 3600; text.remove_suffix(1); break;
    case 'd': unit = 86400; text.remove_suffix(1); break;
    default: break;
  }
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  // Ten years is far beyond any sensible token and keeps the arithmetic away from overflow.
  if (ec != std::errc{} || end != text.data() + text.size() || value <= 0 || value > 3650 * 86400 / unit) {
    return std::nullopt;
  }
  return std::chrono::seconds{value * unit};
}

struct sas_settings {
  std::string resource;
  std::string key;
  std::string policy;
  std::string ttl = "3600s";
  std::int64_t expiry = -1;
  bool lowercase = false;
};

struct certs_settings {
  std::string directory;
  std::vector<std::string> clients;
  std::vector<std::string> server_names;
  int days = 365;
  bool new_ca = false;
};

void add_sas_command(CLI::App& app) {
  auto settings = std::make_shared<sas_settings>();
  CLI::App* sas = app.add_subcommand(
      "sas", "Print an Azure IoT Hub shared access signature token (device key, or policy key with --policy)");
  sas->add_option("--resource,-r", settings->resource,
                  "Resource URI without scheme, e.g. myhub.azure-devices.net/devices/device1")
      ->required()
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            if (value.empty()) return "must not be empty";
            if (value.find("://") != std::string::npos) return "give the URI without a scheme (no https://)";
            return {};
          },
          "URI"));
  sas->add_option("--key,-k", settings->key, "Device or policy key, base64 as the portal shows it")
      ->required()
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            return !value.empty() && auth::base64_decode(value) ? std::string{} : "not a base64 key";
          },
          "BASE64"));
  sas->add_option("--policy,-p", settings->policy, "Shared access policy name (adds skn), e.g. iothubowner");
  CLI::Option* ttl =
      sas->add_option("--ttl", settings->ttl, "Lifetime from now: 3600s, 60m, 24h or 7d")
          ->capture_default_str()
          ->check(CLI::Validator(
              [](std::string& value) -> std::string {
                return parse_duration(value) ? std::string{} : "expected a positive duration like 3600s, 60m, 24h, 7d";
              },
              "DURATION"));
  sas->add_option("--expiry", settings->expiry, "Absolute expiry in seconds since the Unix epoch (instead of --ttl)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{253402300799}))
      ->excludes(ttl);
  sas->add_flag("--lowercase", settings->lowercase,
                "Percent-encode with lower-case hex (%2f, as the Azure docs show) instead of %2F (as the SDKs send)");

  sas->callback([settings] {
    auth::sas_token_request request;
    request.resource_uri = settings->resource;
    request.key_base64 = settings->key;
    if (!settings->policy.empty()) request.policy_name = settings->policy;
    request.encoding = settings->lowercase ? auth::hex_case::lower : auth::hex_case::upper;
    if (settings->expiry > 0) {
      request.expiry = std::chrono::sys_seconds{std::chrono::seconds{settings->expiry}};
    } else {
      const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
      request.expiry = now + *parse_duration(settings->ttl);
    }
    const auto token = auth::create_sas_token(request);
    if (!token) throw CLI::ValidationError("--key", token.error().message());
    fmt::print("{}\n", *token);
  });
}

void add_certs_command(CLI::App& app) {
  auto settings = std::make_shared<certs_settings>();
  CLI::App* certs = app.add_subcommand(
      "certs",
      "Write a development CA (ca.pem/ca.key, reused when present), a server certificate for localhost, "
      "127.0.0.1 and ::1 (server.pem/server.key) and client certificates (client-<CN>.pem/.key)");
  certs->add_option("dir", settings->directory, "Folder to write into (created when missing)")->required();
  certs
      ->add_option("--client,-c", settings->clients,
                   "Client certificate common name: the Azure device id or the AWS thing name (repeatable)")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            return auth::is_valid_client_common_name(value)
                       ? std::string{}
                       : "a common name must be 1 to 64 bytes of UTF-8 without control characters";
          },
          "CN"));
  certs->add_option("--san", settings->server_names, "Extra server name, DNS name or IP address (repeatable)")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            return auth::is_valid_server_name(value) ? std::string{} : "not a DNS name or an IP address";
          },
          "NAME"));
  certs->add_option("--days", settings->days, "Validity of the server and client certificates in days")
      ->capture_default_str()
      ->check(CLI::Range(1, 3650));
  certs->add_flag("--new-ca", settings->new_ca, "Make a new CA even when ca.pem and ca.key exist");

  certs->callback([settings] {
    auth::dev_ca_options options;
    options.directory = settings->directory;
    options.client_common_names = settings->clients;
    options.extra_server_names = settings->server_names;
    options.validity = std::chrono::days{settings->days};
    options.reuse_existing_ca = !settings->new_ca;
    const auto written = auth::write_dev_ca(options);
    if (!written) {
      if (written.error() == auth::auth_errc::invalid_name) {
        // Each name passed its own check, so two must map to the same file name.
        throw CLI::ValidationError("--client", "two common names map to the same file name (client-<CN>.pem)");
      }
      if (written.error() == auth::auth_errc::bad_certificate) {
        fmt::print(stderr, "twinfleet certs: {}/ca.pem and ca.key exist but do not load as a CA and its key; "
                           "remove them or pass --new-ca\n", settings->directory);
      } else {
        fmt::print(stderr, "twinfleet certs: cannot write into {}: {}\n", settings->directory,
                   written.error().message());
      }
      throw CLI::RuntimeError(1);
    }
    const auto& r = *written;
    fmt::print("{} {} and {}: CA \"{}\"\n", r.ca_reused ? "kept " : "wrote", r.ca.certificate_file.string(),
               r.ca.key_file.string(), r.ca.common_name);
    std::string names;
    for (const auto& n : r.server_names) names += (names.empty() ? "" : ", ") + n;
    fmt::print("wrote {} and {}: server for {}\n", r.server.certificate_file.string(), r.server.key_file.string(),
               names);
    for (const auto& c : r.clients) {
      fmt::print("wrote {} and {}: client CN={}, SHA-1 thumbprint {}, SHA-256 thumbprint {}\n",
                 c.certificate_file.string(), c.key_file.string(), c.common_name, c.sha1_thumbprint,
                 c.sha256_thumbprint);
    }
  });
}

}  // namespace

void add_auth_commands(CLI::App& app) {
  add_sas_command(app);
  add_certs_command(app);
}

}  // namespace twinfleet::app
