// Errors of the auth module: why a token, a signature or a certificate was refused.
//
// Expected failures (a device sends an expired SAS token, a request carries a wrong SigV4
// signature, a PEM file does not parse) come back as values: `result<T>` holding an
// `error_code` in `auth_category()`. The hub counts and reports them by code. Exceptions are
// kept for bugs (a precondition broken by the caller) and for OpenSSL running out of memory.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <type_traits>

namespace twinfleet::auth {

enum class auth_errc {
  // Encoding
  invalid_base64 = 1,          // bad alphabet, bad padding, non-zero trailing bits
  invalid_percent_encoding,    // '%' not followed by two hex digits
  invalid_hex,                 // odd length or a non-hex character
  invalid_key,                 // a key that is not valid base64, or empty

  // SAS tokens (Azure)
  malformed_token,             // wrong prefix, missing/duplicate/unknown field, bad se or sig
  bad_signature,               // the HMAC does not match (SAS and SigV4)
  expired,                     // SAS `se` passed, or a presigned SigV4 URL past X-Amz-Expires
  wrong_resource,              // SAS `sr` does not cover the resource being accessed

  // SigV4 (AWS)
  missing_authentication,      // neither an Authorization header nor X-Amz-* query parameters
  malformed_authorization,     // unparsable Authorization header, credential or date
  unsupported_algorithm,       // anything but AWS4-HMAC-SHA256
  unknown_access_key,          // the secret lookup knows no such access key id
  service_not_allowed,         // credential scope names a service outside the allowed set
  region_mismatch,             // credential scope names another region than the verifier's
  credential_scope_mismatch,   // scope date differs from the X-Amz-Date day
  missing_signed_header,       // host (or x-amz-date) unsigned, or a signed header absent
  request_time_skewed,         // X-Amz-Date too far from the verifier's clock
  payload_hash_mismatch,       // x-amz-content-sha256 differs from the body's SHA-256

  // Certificates and keys
  bad_certificate,             // PEM that does not parse as an X.509 certificate or key
  invalid_name,                // a common name or SAN that cannot go into a certificate
};

// The category of `auth_errc`; its name is "twinfleet.auth". Thread-safe (a constant).
[[nodiscard]] const boost::system::error_category& auth_category() noexcept;

[[nodiscard]] inline boost::system::error_code make_error_code(auth_errc e) noexcept {
  return {static_cast<int>(e), auth_category()};
}

// Results of this module: a value or an error_code (usually in `auth_category()`; file and
// OpenSSL failures keep their own categories). `.value()` throws boost::system::system_error.
template <class T>
using result = boost::system::result<T>;

}  // namespace twinfleet::auth

template <>
struct boost::system::is_error_code_enum<twinfleet::auth::auth_errc> : std::true_type {};
