#include <twinfleet/auth/sas.hpp>

#include <charconv>
#include <cstdint>

namespace twinfleet::auth {

namespace {

constexpr std::string_view sas_prefix = "SharedAccessSignature ";

// 9999-12-31T23:59:59Z. Later values are refused so that no arithmetic on `se` can overflow.
constexpr std::int64_t max_sas_expiry = 253402300799;

char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequal_prefix(std::string_view prefix, std::string_view s) noexcept {
  if (prefix.size() > s.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (ascii_lower(prefix[i]) != ascii_lower(s[i])) return false;
  }
  return true;
}

result<std::string> decode_key(std::string_view key_base64) {
  if (key_base64.empty()) return auth_errc::invalid_key;
  auto key = base64_decode(key_base64);
  if (!key) return auth_errc::invalid_key;
  return std::move(*key);
}

}  // namespace

std::string sas_string_to_sign(std::string_view encoded_resource, std::chrono::sys_seconds expiry) {
  std::string out(encoded_resource);
  out += '\n';
  out += std::to_string(expiry.time_since_epoch().count());
  return out;
}

result<std::string> create_sas_token(const sas_token_request& request) {
  auto key = decode_key(request.key_base64);
  if (!key) return key.error();
  const std::string sr = url_encode(request.resource_uri, request.encoding);
  const std::string sig =
      base64_encode(hmac_sha256(*key, sas_string_to_sign(sr, request.expiry)));
  std::string token(sas_prefix);
  token += "sr=";
  token += sr;
  token += "&sig=";
  token += url_encode(sig, request.encoding);
  token += "&se=";
  token += std::to_string(request.expiry.time_since_epoch().count());
  if (request.policy_name) {
    token += "&skn=";
    token += url_encode(*request.policy_name, request.encoding);
  }
  return token;
}

result<sas_token> parse_sas_token(std::string_view token) {
  // The prefix is matched exactly, as the service does: a token is a credential, not prose.
  if (!token.starts_with(sas_prefix)) return auth_errc::malformed_token;
  std::string_view rest = token.substr(sas_prefix.size());

  std::optional<std::string_view> sr, sig, se, skn;
  while (true) {
    const auto amp = rest.find('&');
    const std::string_view field = rest.substr(0, amp);
    const auto eq = field.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == field.size()) {
      return auth_errc::malformed_token;
    }
    const std::string_view name = field.substr(0, eq);
    const std::string_view value = field.substr(eq + 1);
    std::optional<std::string_view>* slot = nullptr;
    if (name == "sr") slot = &sr;
    else if (name == "sig") slot = &sig;
    else if (name == "se") slot = &se;
    else if (name == "skn") slot = &skn;
    // Unknown and repeated fields are refused: with two `sr`, which one did the signer mean?
    if (slot == nullptr || slot->has_value()) return auth_errc::malformed_token;
    *slot = value;
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  if (!sr || !sig || !se) return auth_errc::malformed_token;

  sas_token parsed;
  parsed.resource_raw = std::string(*sr);
  auto resource = url_decode(*sr);
  if (!resource) return auth_errc::malformed_token;
  parsed.resource = std::move(*resource);

  auto signature = url_decode(*sig);
  if (!signature || !base64_decode(*signature)) return auth_errc::malformed_token;
  parsed.signature = std::move(*signature);

  std::int64_t seconds = 0;
  const char* first = se->data();
  const char* last = se->data() + se->size();
  // from_chars accepts a leading '-'; an expiry is a count of seconds, never negative.
  if (se->front() == '-') return auth_errc::malformed_token;
  const auto [end, ec] = std::from_chars(first, last, seconds);
  if (ec != std::errc{} || end != last) return auth_errc::malformed_token;
  if (seconds > max_sas_expiry) return auth_errc::malformed_token;
  parsed.expiry = std::chrono::sys_seconds{std::chrono::seconds{seconds}};

  if (skn) {
    auto policy = url_decode(*skn);
    if (!policy) return auth_errc::malformed_token;
    parsed.policy_name = std::move(*policy);
  }
  return parsed;
}

bool sas_resource_covers(std::string_view prefix, std::string_view resource) noexcept {
  if (prefix.empty() || !iequal_prefix(prefix, resource)) return false;
  if (prefix.size() == resource.size()) return true;
  // The next character of the resource must start a new segment, unless the prefix already
  // ended with one: "/a/b" covers "/a/b/c", "/a/b/" covers "/a/b/c", neither covers "/a/bc".
  return prefix.back() == '/' || resource[prefix.size()] == '/';
}

result<void> verify_sas_token(const sas_token& token, std::string_view key_base64,
                              std::string_view accessed_resource,
                              std::chrono::system_clock::time_point now) {
  auto key = decode_key(key_base64);
  if (!key) return key.error();
  // The signature is checked over `sr` as received: re-encoding it would reject either the
  // SDKs' %2F or the documentation's %2f, and the service accepts both.
  const digest256 expected = hmac_sha256(*key, sas_string_to_sign(token.resource_raw, token.expiry));
  auto presented = base64_decode(token.signature);
  if (!presented || !constant_time_equal(*presented, as_bytes(expected))) {
    return auth_errc::bad_signature;
  }
  if (!sas_resource_covers(token.resource, accessed_resource)) return auth_errc::wrong_resource;
  // Compared in seconds: `now` has nanosecond ticks, and a far-future `se` converted to
  // nanoseconds would overflow.
  if (std::chrono::floor<std::chrono::seconds>(now) >= token.expiry) return auth_errc::expired;
  return {};
}

result<sas_token> verify_sas_token(std::string_view token, std::string_view key_base64,
                                   std::string_view accessed_resource,
                                   std::chrono::system_clock::time_point now) {
  auto parsed = parse_sas_token(token);
  if (!parsed) return parsed.error();
  auto verified = verify_sas_token(*parsed, key_base64, accessed_resource, now);
  if (!verified) return verified.error();
  return parsed;
}

result<std::string> derive_device_key(std::string_view group_key_base64, std::string_view device_id) {
  auto key = decode_key(group_key_base64);
  if (!key) return key.error();
  return base64_encode(hmac_sha256(*key, device_id));
}

}  // namespace twinfleet::auth
