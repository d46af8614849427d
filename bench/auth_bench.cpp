// What authentication costs the hub per connection or request: SAS verification (every Azure
// CONNECT and REST call) and SigV4 verification (every AWS REST call and WebSocket upgrade),
// against the baseline of one bare HMAC-SHA256 over the same bytes.
//
// Run: make bench (or build/bench/auth_bench). Figures are medians of 9 samples.
#include <twinfleet/auth/encoding.hpp>
#include <twinfleet/auth/sas.hpp>
#include <twinfleet/auth/sigv4.hpp>

#include "bench_util.hpp"

#include <chrono>
#include <string>

using namespace twinfleet::auth;
using twinfleet::bench::keep;
using twinfleet::bench::measure;

int main() {
  using namespace std::chrono;
  const std::string key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  const std::string resource = "myhub.azure-devices.net/devices/device1";
  const auto now = system_clock::now();
  const auto expiry = floor<seconds>(now) + hours{1};
  const auto token = create_sas_token({resource, key, expiry, std::nullopt, hex_case::upper}).value();
  const auto raw_key = base64_decode(key).value();

  const aws_credentials creds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
  sigv4_request request;
  request.method = "POST";
  request.path = "/things/thermo-00001/shadow";
  request.query = {{"name", "config"}};
  request.headers = {{"Host", "127.0.0.1:8443"}, {"Content-Type", "application/json"}};
  request.payload = R"({"state":{"desired":{"targetTemperature":21.5}}})";
  const auto signed_headers =
      sign_sigv4_headers(request, {creds, "us-east-1", "iotdata", floor<seconds>(now)});
  std::vector<http_header> received = request.headers;
  received.insert(received.end(), signed_headers.headers_to_add.begin(), signed_headers.headers_to_add.end());
  const std::string target = request.path + "?name=config";
  sigv4_verify_options options;
  options.lookup_secret = [&](std::string_view id) -> std::optional<std::string> {
    if (id == creds.access_key_id) return creds.secret_access_key;
    return std::nullopt;
  };

  std::vector<twinfleet::bench::sample_set> rows;
  rows.push_back(measure("baseline: one HMAC-SHA256 (SAS string)", [&] {
    keep(hmac_sha256(raw_key, sas_string_to_sign("myhub.azure-devices.net%2Fdevices%2Fdevice1", expiry)));
  }));
  rows.push_back(measure("SAS token create", [&] {
    keep(create_sas_token({resource, key, expiry, std::nullopt, hex_case::upper}));
  }));
  rows.push_back(measure("SAS token parse + verify", [&] {
    keep(verify_sas_token(token, key, resource, now));
  }));
  rows.push_back(measure("SigV4 sign (header form)", [&] {
    keep(sign_sigv4_headers(request, {creds, "us-east-1", "iotdata", floor<seconds>(now)}));
  }));
  rows.push_back(measure("SigV4 verify (header form)", [&] {
    keep(verify_sigv4({request.method, target, received, request.payload}, options, now));
  }));
  twinfleet::bench::report("auth_bench: per connection / per request", rows);
  return 0;
}
