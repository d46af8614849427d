// Byte encodings and digests shared by SAS, SigV4 and X.509: base64, percent-encoding, hex,
// SHA-256 and HMAC-SHA256 (OpenSSL underneath).
//
// Byte strings travel as std::string / std::string_view: they may hold any byte, NULs too.
// Every function here is pure and thread-safe.
#pragma once

#include <twinfleet/auth/error.hpp>

#include <array>
#include <string>
#include <string_view>

namespace twinfleet::auth {

// Case of the hex digits written by hex and percent encoders.
enum class hex_case { lower, upper };

// A SHA-256 (or HMAC-SHA256) output.
using digest256 = std::array<unsigned char, 32>;

// The raw bytes of a digest as a view (valid as long as `d` lives).
[[nodiscard]] std::string_view as_bytes(const digest256& d) noexcept;

// --- base64 (RFC 4648 §4, standard alphabet, with padding) -------------------------------

[[nodiscard]] std::string base64_encode(std::string_view bytes);
[[nodiscard]] std::string base64_encode(const digest256& d);

// Strict decoding: the length must be a multiple of 4, only the standard alphabet, '=' only
// as one or two final padding characters, and unused trailing bits must be zero (so every
// byte string has exactly one accepted encoding). No whitespace.
// Errors: auth_errc::invalid_base64.
[[nodiscard]] result<std::string> base64_decode(std::string_view text);

// --- percent-encoding (RFC 3986) ---------------------------------------------------------

// Encodes every byte outside the unreserved set `A-Z a-z 0-9 - _ . ~` as %XX, with hex
// digits in `digits` case. With `keep_slash`, '/' stays as it is (SigV4 canonical paths).
// Space becomes %20, never '+'.
[[nodiscard]] std::string url_encode(std::string_view bytes, hex_case digits = hex_case::upper,
                                     bool keep_slash = false);

// Decodes %XX (either hex case). '+' stays '+' (this is RFC 3986, not form encoding).
// Errors: auth_errc::invalid_percent_encoding for a '%' not followed by two hex digits.
[[nodiscard]] result<std::string> url_decode(std::string_view text);

// --- hex -----------------------------------------------------------------------------------

[[nodiscard]] std::string hex_encode(std::string_view bytes, hex_case digits = hex_case::lower);
[[nodiscard]] std::string hex_encode(const digest256& d, hex_case digits = hex_case::lower);

// Accepts either case. Errors: auth_errc::invalid_hex (odd length or a non-hex character).
[[nodiscard]] result<std::string> hex_decode(std::string_view text);

// --- digests -------------------------------------------------------------------------------

[[nodiscard]] digest256 sha256(std::string_view bytes);
[[nodiscard]] digest256 hmac_sha256(std::string_view key, std::string_view bytes);

// Compares in time that depends only on the lengths, not on where the bytes differ.
[[nodiscard]] bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

}  // namespace twinfleet::auth
