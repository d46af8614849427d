// AWS Signature Version 4: sign requests (Authorization header or presigned query) and verify
// them on the hub's side (PROTOCOLS.md B8, B10).
//
// Paths are taken as they go on the wire: the signer and the verifier both percent-encode the
// wire path once more ("double encoding", every service but S3) after optional normalisation.
// Query parameters are given decoded; the canonical form encodes them (RFC 3986, upper-case hex)
// and sorts them. All functions are pure and thread-safe; verify_sigv4() calls the secret lookup
// on the caller's thread.
#pragma once

#include <twinfleet/auth/encoding.hpp>
#include <twinfleet/auth/error.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::auth {

struct aws_credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term credentials
};

struct http_header {
  std::string name;   // any case; repeated names are allowed (values join with ',')
  std::string value;
  friend bool operator==(const http_header&, const http_header&) = default;
};

struct query_param {
  std::string name;   // decoded
  std::string value;  // decoded; empty for "?flag" or "?flag="
  friend bool operator==(const query_param&, const query_param&) = default;
};

// The parts of an HTTP request that SigV4 covers.
struct sigv4_request {
  std::string method = "GET";
  std::string path = "/";                // before any '?', as sent: "/topics/a%2Fb"
  std::vector<query_param> query;        // decoded; their order does not change the signature
  std::vector<http_header> headers;      // must hold Host; must not hold the headers the signer adds
  std::string payload;
  std::optional<std::string> payload_hash;  // hex SHA-256 (or "UNSIGNED-PAYLOAD") used instead of hashing `payload`
};

// Where temporary credentials' session token goes.
enum class session_token_placement {
  signed_in_request,       // X-Amz-Security-Token is part of the canonical request (most services)
  appended_after_signing,  // added to the request but not signed (AWS IoT's WebSocket URL)
};

struct sigv4_signing_params {
  aws_credentials credentials;
  std::string region;   // "us-east-1"
  std::string service;  // "iotdata" (SDKs), "iotdevicegateway" (docs, WebSocket), ...
  std::chrono::sys_seconds time{};
  bool normalize_path = true;        // drop "." and "..", collapse "//" (all but S3)
  bool double_encode_path = true;    // percent-encode the wire path again (all but S3)
  bool sign_payload_header = false;  // header form: add and sign x-amz-content-sha256
  session_token_placement session_token = session_token_placement::signed_in_request;
  std::optional<std::chrono::seconds> expires = std::chrono::seconds{3600};  // presigned: X-Amz-Expires
};

// Header form: add `headers_to_add` to the request, in this order:
// [X-Amz-Security-Token], X-Amz-Date, [x-amz-content-sha256], Authorization.
struct sigv4_signed_headers {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // lower-case hex
  std::string authorization;  // "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…"
  std::vector<http_header> headers_to_add;
};

// Presigned form: the request's own query parameters followed by `query_to_add`, in the order
// X-Amz-Algorithm, -Credential, -Date, -SignedHeaders, [-Expires], [-Security-Token], -Signature,
// or with the token after the signature when it is appended after signing.
struct sigv4_presigned {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;
  std::vector<query_param> query_to_add;  // decoded
  std::string query_string;  // all parameters encoded and joined with '&', to follow the '?'
};

// Signing. Preconditions (std::invalid_argument when broken, a bug at the caller): a Host
// header, none of Authorization / X-Amz-Date / X-Amz-Security-Token / x-amz-content-sha256
// among the headers, no X-Amz-* signing parameter in the query, non-empty credentials,
// region and service, and 1 s <= expires <= 7 days. Headers that proxies and WebSocket
// libraries rewrite (user-agent, x-amzn-trace-id, connection, upgrade, sec-websocket-*) are
// left unsigned.
[[nodiscard]] sigv4_signed_headers sign_sigv4_headers(const sigv4_request& request,
                                                      const sigv4_signing_params& params);
[[nodiscard]] sigv4_presigned presign_sigv4(const sigv4_request& request,
                                            const sigv4_signing_params& params);

// "GET /mqtt" on `host`, presigned for AWS IoT's MQTT-over-WebSocket endpoint: service
// iotdevicegateway, empty payload, only `host` signed, the session token (if any) appended
// after signing, no X-Amz-Expires unless given. `host` must be exactly the Host header the
// WebSocket client will send (with ":port" when not 443). Returns the path and query,
// e.g. "/mqtt?X-Amz-Algorithm=…&X-Amz-Signature=…".
[[nodiscard]] std::string aws_iot_websocket_target(std::string_view host, const aws_credentials& credentials,
                                                   std::string_view region, std::chrono::sys_seconds time,
                                                   std::optional<std::chrono::seconds> expires = std::nullopt);

// --- building blocks, exposed for tests and for the hub ---------------------------------

// "20150830T123600Z" and back. Errors: auth_errc::malformed_authorization.
[[nodiscard]] std::string sigv4_format_time(std::chrono::sys_seconds t);
[[nodiscard]] result<std::chrono::sys_seconds> sigv4_parse_time(std::string_view text);

// The CanonicalURI line for a wire path.
[[nodiscard]] std::string sigv4_canonical_uri(std::string_view path, bool normalize, bool double_encode);

// The CanonicalQueryString line: encode, sort by name then value, join.
[[nodiscard]] std::string sigv4_canonical_query(std::span<const query_param> params);

// Splits a raw query string ("a=1&b=%20") into decoded parameters, in order; empty pieces
// ("a=1&&b") are skipped. Errors: auth_errc::invalid_percent_encoding.
[[nodiscard]] result<std::vector<query_param>> parse_query_string(std::string_view raw);

// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
[[nodiscard]] digest256 sigv4_signing_key(std::string_view secret_access_key, std::string_view date_yyyymmdd,
                                          std::string_view region, std::string_view service);

// --- verifying (the hub's side) ----------------------------------------------------------

// A request as the server received it.
struct sigv4_received_request {
  std::string_view method;
  std::string_view target;  // request-target: path, then optionally '?' and the raw query
  std::span<const http_header> headers;
  std::string_view payload;
};

// The secret of an access key id, or nullopt when the key is unknown. Called at most once
// per verification, on the verifying thread.
using sigv4_secret_lookup = std::function<std::optional<std::string>(std::string_view access_key_id)>;

struct sigv4_verify_options {
  sigv4_secret_lookup lookup_secret;
  // Service names accepted in the credential scope: the docs say iotdevicegateway, the SDKs
  // sign iot-data as iotdata (PROTOCOLS.md B8, D14).
  std::vector<std::string> allowed_services{"iotdata", "iotdevicegateway"};
  std::string region;  // required region; empty accepts any
  std::chrono::seconds max_clock_skew{15 * 60};
  std::chrono::seconds max_expires{7 * 24 * 3600};
  bool normalize_path = true;
  bool double_encode_path = true;
};

enum class sigv4_form { header, query };

// What a verified request proved.
struct sigv4_verified {
  sigv4_form form = sigv4_form::header;
  std::string access_key_id;
  std::string region;
  std::string service;
  std::chrono::sys_seconds time{};
  std::vector<std::string> signed_headers;  // lower-case, as listed by the signer
  std::optional<std::string> session_token;
  bool session_token_signed = false;
  std::optional<std::chrono::sys_seconds> expires_at;  // query form with X-Amz-Expires
};

// Verifies a header-form or presigned request. Checks, in this order, and fails with:
// - neither an AWS4 Authorization header nor X-Amz-Algorithm → missing_authentication
// - both, unparsable fields, bad date, bad X-Amz-Expires       → malformed_authorization
// - an algorithm other than AWS4-HMAC-SHA256                    → unsupported_algorithm
// - host (and in header form x-amz-date) unsigned, or a signed header absent → missing_signed_header
// - scope date differs from the X-Amz-Date day                  → credential_scope_mismatch
// - scope service not allowed / region not the required one     → service_not_allowed / region_mismatch
// - X-Amz-Date more than max_clock_skew from `now` (header form; query form: in the future) → request_time_skewed
// - presigned and now > X-Amz-Date + X-Amz-Expires (without Expires: + max_clock_skew) → expired
// - x-amz-content-sha256 neither the body's SHA-256 nor UNSIGNED-PAYLOAD → payload_hash_mismatch
// - lookup_secret returns nullopt                               → unknown_access_key
// - signature differs (constant-time compare)                   → bad_signature
// A presigned X-Amz-Security-Token is accepted both signed and appended after signing.
[[nodiscard]] result<sigv4_verified> verify_sigv4(const sigv4_received_request& request,
                                                  const sigv4_verify_options& options,
                                                  std::chrono::system_clock::time_point now);

}  // namespace twinfleet::auth
