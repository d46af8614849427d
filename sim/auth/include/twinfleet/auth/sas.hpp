// Azure IoT Hub shared access signature (SAS) tokens: create, parse, verify (PROTOCOLS.md A9).
//
//   SharedAccessSignature sr={urlencode(resource)}&sig={urlencode(base64 HMAC)}&se={expiry}[&skn={policy}]
//
// The HMAC-SHA256 covers `sr` exactly as it appears in the token plus "\n" plus `se`. Upper- and
// lower-case percent-encodings of the same resource therefore give different, equally valid
// signatures, which is what devices and the service see in practice. All functions are pure
// and thread-safe.
#pragma once

#include <twinfleet/auth/encoding.hpp>
#include <twinfleet/auth/error.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace twinfleet::auth {

// Who signed: a device with its own key (no `skn`), or a hub policy such as `iothubowner`,
// `service` or `device` (with `skn`).
enum class sas_signer { device, policy };

// A token taken apart. Strings are as described; nothing here has been checked against a key.
struct sas_token {
  std::string resource_raw;                // `sr` exactly as in the token (still percent-encoded)
  std::string resource;                    // `sr` percent-decoded, e.g. "hub.azure-devices.net/devices/d1"
  std::string signature;                   // `sig` percent-decoded: base64 of the 32-byte HMAC
  std::chrono::sys_seconds expiry{};       // `se`
  std::optional<std::string> policy_name;  // `skn`, percent-decoded; set only for policy tokens

  [[nodiscard]] sas_signer signer() const noexcept {
    return policy_name ? sas_signer::policy : sas_signer::device;
  }
};

// What create_sas_token() needs.
struct sas_token_request {
  std::string_view resource_uri;  // not encoded, no scheme: "hub.azure-devices.net/devices/d1"
  std::string_view key_base64;    // the device key or the policy key, as the portal shows it
  std::chrono::sys_seconds expiry{};
  std::optional<std::string_view> policy_name;  // adds `skn`; leave empty for a device key
  hex_case encoding = hex_case::upper;  // %2F as every SDK sends, or %2f as the Azure docs show
};

// The string the HMAC covers: `encoded_resource` + "\n" + decimal seconds of `expiry`.
[[nodiscard]] std::string sas_string_to_sign(std::string_view encoded_resource,
                                             std::chrono::sys_seconds expiry);

// A complete token, fields in the order sr, sig, se[, skn].
// Errors: auth_errc::invalid_key (key not base64 or empty).
[[nodiscard]] result<std::string> create_sas_token(const sas_token_request& request);

// Splits a token into its fields. Fields may come in any order; `sr`, `sig` and `se` are
// required, `skn` optional. Errors: auth_errc::malformed_token for a wrong prefix (exactly
// "SharedAccessSignature " is accepted), a missing, empty, duplicate or unknown field, a
// field without '=', bad percent-encoding, a `se` that is not decimal digits or lies after
// 9999-12-31T23:59:59Z, or a `sig` that is not strict base64.
[[nodiscard]] result<sas_token> parse_sas_token(std::string_view token);

// Checks a parsed token for access to `accessed_resource` (decoded, e.g.
// "hub.azure-devices.net/devices/d1/modules/m1") at `now`, in this order:
// 1. signature over the raw `sr` and `se` with `key_base64`   → auth_errc::bad_signature
//    (auth_errc::invalid_key when `key_base64` itself is not base64)
// 2. decoded `sr` is, case-insensitively, a path-segment prefix of the accessed resource
//    ("h/a/b" covers "h/a/b" and "h/a/b/c", not "h/a/bc")   → auth_errc::wrong_resource
// 3. now < expiry (a token is dead from its `se` second on)  → auth_errc::expired
// Returns nothing on success. Verify the same parsed token against a primary and a secondary
// key by calling this twice.
[[nodiscard]] result<void> verify_sas_token(const sas_token& token, std::string_view key_base64,
                                            std::string_view accessed_resource,
                                            std::chrono::system_clock::time_point now);

// Parses, then verifies as above; returns the parsed token so the caller can see `skn`.
[[nodiscard]] result<sas_token> verify_sas_token(std::string_view token, std::string_view key_base64,
                                                 std::string_view accessed_resource,
                                                 std::chrono::system_clock::time_point now);

// True when `prefix` covers `resource` by whole path segments, ignoring ASCII case.
[[nodiscard]] bool sas_resource_covers(std::string_view prefix, std::string_view resource) noexcept;

// A device key derived from a DPS group enrollment key:
// base64(HMAC-SHA256(base64decode(group_key_base64), device_id)).
// Errors: auth_errc::invalid_key.
[[nodiscard]] result<std::string> derive_device_key(std::string_view group_key_base64,
                                                    std::string_view device_id);

}  // namespace twinfleet::auth
