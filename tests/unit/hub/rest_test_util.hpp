// Shared by the REST tests (unit and integration): a hub_core with known keys on a virtual
// clock, and requests signed the way the SDKs sign them (Azure SAS policy tokens, AWS SigV4).
#pragma once

#include <twinfleet/auth/sas.hpp>
#include <twinfleet/auth/sigv4.hpp>
#include <twinfleet/hub/core.hpp>
#include <twinfleet/hub/rest.hpp>

#include "catch_printers.hpp"
#include "fake_link.hpp"
#include "json_test_util.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace twinfleet::test {

inline constexpr std::string_view rest_hub_host = "testhub.azure-devices.net";
inline constexpr std::string_view aws_key_id = "AKIDTWINFLEETTEST";
inline constexpr std::string_view aws_secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

inline hub::hub_settings rest_settings() {
  hub::hub_settings s;
  s.host_name = std::string(rest_hub_host);
  s.auth = hub::auth_mode::open;
  s.group_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  s.policies = hub::default_policies();
  s.aws_keys = {{std::string(aws_key_id), std::string(aws_secret)}};
  return s;
}

// How rest_client_factory::aws() signs.
struct aws_signing {
  std::string service = "iotdata";
  std::string key_id = std::string(aws_key_id);
  std::string secret = std::string(aws_secret);
  bool presigned = false;
};

// Builds requests for one hub_core; `now` is the virtual clock every signature is made at and
// the router reads.
class rest_client_factory {
 public:
  explicit rest_client_factory(const hub::hub_core& core, std::chrono::system_clock::time_point now)
      : core_(core), now_(now) {}

  void set_now(std::chrono::system_clock::time_point now) { now_ = now; }

  // A policy token as azure-iothub makes it: sr = the hub host, skn = the policy.
  [[nodiscard]] std::string sas(std::string_view policy, std::chrono::seconds ttl = std::chrono::hours(1),
                                std::string_view resource = rest_hub_host, bool secondary_key = false) const {
    const hub::access_policy* found = nullptr;
    for (const auto& p : core_.settings().policies) {
      if (p.name == policy) found = &p;
    }
    REQUIRE(found != nullptr);
    const auto expiry = std::chrono::floor<std::chrono::seconds>(now_) + ttl;
    return auth::create_sas_token({resource, secondary_key ? found->secondary_key : found->primary_key, expiry,
                                   policy, auth::hex_case::upper})
        .value();
  }

  // An Azure service request with the headers azure-iothub sends (Part E).
  [[nodiscard]] hub::rest_request azure(std::string method, std::string target, std::string body = {},
                                        std::optional<std::string> authorization = std::nullopt) const {
    hub::rest_request r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.headers.push_back({"Host", std::string(rest_hub_host)});
    r.headers.push_back({"Authorization", authorization ? *authorization : sas("service")});
    r.headers.push_back({"Request-Id", "0001"});
    r.headers.push_back({"User-Agent", "azure-iothub/1.16.6 (node v18; Linux)"});
    if (!body.empty()) r.headers.push_back({"Content-Type", "application/json; charset=utf-8"});
    r.body = std::move(body);
    return r;
  }

  // An AWS data-plane request signed with SigV4 over `path` (as on the wire) and `query`
  // (decoded parameters).
  [[nodiscard]] hub::rest_request aws(std::string method, std::string path, std::vector<auth::query_param> query = {},
                                      std::string body = {}, const aws_signing& signing = {}) const {
    auth::sigv4_request sr;
    sr.method = method;
    sr.path = path;
    sr.query = query;
    sr.headers = {{"Host", "localhost"}};
    sr.payload = body;
    auth::sigv4_signing_params params;
    params.credentials = {signing.key_id, signing.secret, {}};
    params.region = "us-east-1";
    params.service = signing.service;
    params.time = std::chrono::floor<std::chrono::seconds>(now_);

    hub::rest_request r;
    r.method = std::move(method);
    r.headers = sr.headers;
    if (signing.presigned) {
      const auto signed_query = auth::presign_sigv4(sr, params);
      r.target = path + "?" + signed_query.query_string;
    } else {
      const auto signed_headers = auth::sign_sigv4_headers(sr, params);
      for (const auto& h : signed_headers.headers_to_add) r.headers.push_back(h);
      r.target = path;
      if (!query.empty()) r.target += "?" + auth::sigv4_canonical_query(query);
    }
    r.body = std::move(body);
    return r;
  }

 private:
  const hub::hub_core& core_;
  std::chrono::system_clock::time_point now_;
};

// What a device connection needs to come online in open auth mode (owns the strings a
// connect_packet views).
struct azure_device_login {
  std::string id;
  std::string username;
  std::string password;

  azure_device_login(const hub::hub_core& core, std::string device_id, std::chrono::system_clock::time_point now)
      : id(std::move(device_id)),
        username(std::string(rest_hub_host) + "/" + id + "/?api-version=2021-04-12&DeviceClientType=test"),
        password(auth::create_sas_token({std::string(rest_hub_host) + "/devices/" + id, core.device_key_for(id),
                                         std::chrono::floor<std::chrono::seconds>(now) + std::chrono::hours(1),
                                         std::nullopt, auth::hex_case::upper})
                     .value()) {}

  [[nodiscard]] mqtt::connect_packet packet() const {
    mqtt::connect_packet p;
    p.clean_session = false;
    p.keep_alive = 180;
    p.client_id = id;
    p.username = username;
    p.password = password;
    return p;
  }
};

// Connects `device` as an Azure device and subscribes it to direct methods.
inline void connect_method_listener(hub::hub_core& core, hub::link& device, const azure_device_login& login,
                                    std::chrono::system_clock::time_point now) {
  REQUIRE(core.on_connect(device, login.packet(), now) == mqtt::connect_return_code::accepted);
  const mqtt::subscription filters[] = {{"$iothub/methods/POST/#", mqtt::qos::at_most_once}};
  REQUIRE(core.on_subscribe(device, filters, now) == std::vector<mqtt::suback_code>{mqtt::suback_code::granted_qos0});
}

// "$iothub/methods/POST/reboot/?$rid=7" → "7".
inline std::string rid_of(std::string_view topic) {
  const auto at_rid = topic.find("$rid=");
  REQUIRE(at_rid != std::string_view::npos);
  auto rid = topic.substr(at_rid + 5);
  return std::string(rid.substr(0, rid.find('&')));
}

inline boost::json::value body_json(const hub::rest_response& r) { return boost::json::parse(r.body); }

}  // namespace twinfleet::test
