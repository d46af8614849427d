#include <twinfleet/auth/sigv4.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <utility>

namespace twinfleet::auth {

namespace {

using std::chrono::seconds;
using std::chrono::sys_seconds;

constexpr std::string_view algorithm_name = "AWS4-HMAC-SHA256";
constexpr std::string_view scope_terminator = "aws4_request";
constexpr std::string_view unsigned_payload = "UNSIGNED-PAYLOAD";
constexpr seconds max_presign_expires{7 * 24 * 3600};

constexpr std::string_view param_algorithm = "X-Amz-Algorithm";
constexpr std::string_view param_credential = "X-Amz-Credential";
constexpr std::string_view param_date = "X-Amz-Date";
constexpr std::string_view param_expires = "X-Amz-Expires";
constexpr std::string_view param_security_token = "X-Amz-Security-Token";
constexpr std::string_view param_signed_headers = "X-Amz-SignedHeaders";
constexpr std::string_view param_signature = "X-Amz-Signature";

char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
  return out;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Trimmed, with every run of whitespace (folded lines included) turned into one space: the
// spec says "sequential spaces", and the suite's multi-line header expects folds to collapse.
std::string canonical_header_value(std::string_view value) {
  value = trim(value);
  std::string out;
  out.reserve(value.size());
  bool in_space = false;
  for (const char c : value) {
    if (is_space(c)) {
      in_space = true;
      continue;
    }
    if (in_space) out += ' ';
    in_space = false;
    out += c;
  }
  return out;
}

// Headers that hops rewrite after signing; signing them would break honest requests.
bool is_unsignable_header(std::string_view lower_name) noexcept {
  static constexpr std::string_view skipped[] = {
      "authorization",     "user-agent",         "x-amzn-trace-id",       "connection",
      "upgrade",           "expect",             "transfer-encoding",     "sec-websocket-key",
      "sec-websocket-protocol", "sec-websocket-version", "sec-websocket-extensions"};
  return std::find(std::begin(skipped), std::end(skipped), lower_name) != std::end(skipped);
}

struct canonical_headers {
  std::string block;        // "name:value\n" per header
  std::string signed_list;  // "host;x-amz-date"
  std::vector<std::string> names;
};

// Signer's side: every signable header, sorted by lower-case name; repeats keep their order.
canonical_headers canonicalize_for_signing(std::span<const http_header> headers) {
  std::vector<std::pair<std::string, std::string>> entries;
  entries.reserve(headers.size());
  for (const auto& h : headers) {
    std::string name = to_lower(trim(h.name));
    if (is_unsignable_header(name)) continue;
    entries.emplace_back(std::move(name), canonical_header_value(h.value));
  }
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  canonical_headers out;
  for (std::size_t i = 0; i < entries.size();) {
    const std::string& name = entries[i].first;
    std::string value = entries[i].second;
    std::size_t j = i + 1;
    for (; j < entries.size() && entries[j].first == name; ++j) {
      value += ',';
      value += entries[j].second;
    }
    out.block += name + ':' + value + '\n';
    if (!out.signed_list.empty()) out.signed_list += ';';
    out.signed_list += name;
    out.names.push_back(name);
    i = j;
  }
  return out;
}

std::string credential_scope(std::string_view date, std::string_view region, std::string_view service) {
  std::string scope(date);
  scope += '/';
  scope += region;
  scope += '/';
  scope += service;
  scope += '/';
  scope += scope_terminator;
  return scope;
}

std::string make_canonical_request(std::string_view method, std::string_view canonical_uri,
                                   std::string_view canonical_query, const std::string& headers_block,
                                   std::string_view signed_list, std::string_view payload_hash) {
  std::string out;
  out.reserve(method.size() + canonical_uri.size() + canonical_query.size() + headers_block.size() +
              signed_list.size() + payload_hash.size() + 5);
  out += method;
  out += '\n';
  out += canonical_uri;
  out += '\n';
  out += canonical_query;
  out += '\n';
  out += headers_block;
  out += '\n';
  out += signed_list;
  out += '\n';
  out += payload_hash;
  return out;
}

std::string make_string_to_sign(std::string_view datetime, std::string_view scope,
                                std::string_view canonical_request) {
  std::string out(algorithm_name);
  out += '\n';
  out += datetime;
  out += '\n';
  out += scope;
  out += '\n';
  out += hex_encode(sha256(canonical_request));
  return out;
}

std::string make_signature(std::string_view secret, std::string_view date, std::string_view region,
                           std::string_view service, std::string_view string_to_sign) {
  return hex_encode(hmac_sha256(as_bytes(sigv4_signing_key(secret, date, region, service)), string_to_sign));
}

bool header_present(std::span<const http_header> headers, std::string_view name) {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return iequals(trim(h.name), name); });
}

void check_signing_preconditions(const sigv4_request& request, const sigv4_signing_params& params) {
  if (params.credentials.access_key_id.empty() || params.credentials.secret_access_key.empty()) {
    throw std::invalid_argument("sigv4: empty access key id or secret");
  }
  if (params.region.empty() || params.service.empty()) {
    throw std::invalid_argument("sigv4: empty region or service");
  }
  if (!header_present(request.headers, "host")) throw std::invalid_argument("sigv4: request has no Host header");
  for (const std::string_view added : {"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"}) {
    if (header_present(request.headers, added)) {
      throw std::invalid_argument("sigv4: the request already has " + std::string(added));
    }
  }
  for (const auto& p : request.query) {
    if (p.name.starts_with("X-Amz-")) {
      for (const std::string_view reserved : {param_algorithm, param_credential, param_date, param_expires,
                                              param_security_token, param_signed_headers, param_signature}) {
        if (p.name == reserved) throw std::invalid_argument("sigv4: the query already has " + p.name);
      }
    }
  }
  if (params.expires && (*params.expires < seconds{1} || *params.expires > max_presign_expires)) {
    throw std::invalid_argument("sigv4: expires must lie in [1 s, 7 days]");
  }
}

std::string payload_hash_of(const sigv4_request& request) {
  return request.payload_hash ? *request.payload_hash : hex_encode(sha256(request.payload));
}

void append_digits(std::string& out, long long value, int width) {
  char buf[24];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0 && n < 20);
  for (int i = n; i < width; ++i) out += '0';
  while (n > 0) out += buf[--n];
}

bool parse_fixed_digits(std::string_view s, int& out) noexcept {
  out = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

struct parsed_credential {
  std::string access_key_id, date, region, service;
};

// "AKID/20150830/us-east-1/iotdata/aws4_request"
result<parsed_credential> parse_credential(std::string_view text) {
  std::vector<std::string_view> parts;
  while (true) {
    const auto slash = text.find('/');
    parts.push_back(text.substr(0, slash));
    if (slash == std::string_view::npos) break;
    text.remove_prefix(slash + 1);
  }
  if (parts.size() != 5 || parts[4] != scope_terminator) return auth_errc::malformed_authorization;
  for (const auto p : parts) {
    if (p.empty()) return auth_errc::malformed_authorization;
  }
  if (parts[1].size() != 8 || parts[1].find_first_not_of("0123456789") != std::string_view::npos) {
    return auth_errc::malformed_authorization;
  }
  return parsed_credential{std::string(parts[0]), std::string(parts[1]), std::string(parts[2]),
                           std::string(parts[3])};
}

// "host;x-amz-date": lower-case, non-empty names.
result<std::vector<std::string>> parse_signed_headers(std::string_view text) {
  std::vector<std::string> names;
  while (true) {
    const auto semi = text.find(';');
    const std::string_view name = text.substr(0, semi);
    if (name.empty() || to_lower(name) != name) return auth_errc::malformed_authorization;
    names.emplace_back(name);
    if (semi == std::string_view::npos) break;
    text.remove_prefix(semi + 1);
  }
  return names;
}

bool is_lower_hex_signature(std::string_view s) noexcept {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// Verifier's side: the headers the signer listed, in the listed order.
result<canonical_headers> canonicalize_for_verifying(std::span<const http_header> headers,
                                                     const std::vector<std::string>& signed_names) {
  canonical_headers out;
  for (const auto& name : signed_names) {
    std::string value;
    bool found = false;
    for (const auto& h : headers) {
      if (!iequals(trim(h.name), name)) continue;
      if (found) value += ',';
      value += canonical_header_value(h.value);
      found = true;
    }
    if (!found) return auth_errc::missing_signed_header;
    out.block += name + ':' + value + '\n';
    if (!out.signed_list.empty()) out.signed_list += ';';
    out.signed_list += name;
  }
  out.names = signed_names;
  return out;
}

std::vector<const http_header*> find_headers(std::span<const http_header> headers, std::string_view name) {
  std::vector<const http_header*> found;
  for (const auto& h : headers) {
    if (iequals(trim(h.name), name)) found.push_back(&h);
  }
  return found;
}

// The payload hash the signer must have used; the header, when present, must match the body.
result<std::string> received_payload_hash(const sigv4_received_request& request) {
  const auto declared = find_headers(request.headers, "x-amz-content-sha256");
  if (declared.size() > 1) return auth_errc::malformed_authorization;
  const std::string actual = hex_encode(sha256(request.payload));
  if (declared.empty()) return actual;
  const std::string_view value = trim(declared.front()->value);
  if (value == unsigned_payload) return std::string(value);
  if (value != actual) return auth_errc::payload_hash_mismatch;
  return actual;
}

result<void> check_scope(const parsed_credential& credential, sys_seconds time, const sigv4_verify_options& options) {
  if (sigv4_format_time(time).substr(0, 8) != credential.date) return auth_errc::credential_scope_mismatch;
  if (std::find(options.allowed_services.begin(), options.allowed_services.end(), credential.service) ==
      options.allowed_services.end()) {
    return auth_errc::service_not_allowed;
  }
  if (!options.region.empty() && options.region != credential.region) return auth_errc::region_mismatch;
  return {};
}

result<std::string> lookup(const sigv4_verify_options& options, std::string_view access_key_id) {
  if (!options.lookup_secret) return auth_errc::unknown_access_key;
  auto secret = options.lookup_secret(access_key_id);
  if (!secret || secret->empty()) return auth_errc::unknown_access_key;
  return std::move(*secret);
}

struct split_target {
  std::string_view path;
  std::string_view query;
};

split_target split(std::string_view target) noexcept {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

result<sigv4_verified> verify_header_form(const sigv4_received_request& request, std::string_view authorization,
                                          const std::vector<query_param>& query,
                                          const sigv4_verify_options& options, sys_seconds now) {
  authorization = trim(authorization);
  const auto space = authorization.find(' ');
  if (authorization.substr(0, space) != algorithm_name) return auth_errc::unsupported_algorithm;
  if (space == std::string_view::npos) return auth_errc::malformed_authorization;
  std::string_view rest = authorization.substr(space + 1);

  std::optional<std::string_view> credential_text, signed_text, signature;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view item = trim(rest.substr(0, comma));
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) return auth_errc::malformed_authorization;
    const std::string_view key = item.substr(0, eq);
    std::optional<std::string_view>* slot = key == "Credential"      ? &credential_text
                                            : key == "SignedHeaders" ? &signed_text
                                            : key == "Signature"     ? &signature
                                                                     : nullptr;
    if (slot == nullptr || slot->has_value()) return auth_errc::malformed_authorization;
    *slot = item.substr(eq + 1);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (!credential_text || !signed_text || !signature || !is_lower_hex_signature(*signature)) {
    return auth_errc::malformed_authorization;
  }
  auto credential = parse_credential(*credential_text);
  if (!credential) return credential.error();
  auto signed_names = parse_signed_headers(*signed_text);
  if (!signed_names) return signed_names.error();

  const auto dates = find_headers(request.headers, "x-amz-date");
  if (dates.size() != 1) return auth_errc::malformed_authorization;
  auto time = sigv4_parse_time(trim(dates.front()->value));
  if (!time) return time.error();

  const auto& names = *signed_names;
  if (std::find(names.begin(), names.end(), "host") == names.end() ||
      std::find(names.begin(), names.end(), "x-amz-date") == names.end()) {
    return auth_errc::missing_signed_header;
  }
  auto headers = canonicalize_for_verifying(request.headers, names);
  if (!headers) return headers.error();
  if (auto scope = check_scope(*credential, *time, options); !scope) return scope.error();
  if (now - *time > options.max_clock_skew || *time - now > options.max_clock_skew) {
    return auth_errc::request_time_skewed;
  }
  auto payload_hash = received_payload_hash(request);
  if (!payload_hash) return payload_hash.error();
  auto secret = lookup(options, credential->access_key_id);
  if (!secret) return secret.error();

  const auto target = split(request.target);
  const std::string creq = make_canonical_request(
      request.method, sigv4_canonical_uri(target.path, options.normalize_path, options.double_encode_path),
      sigv4_canonical_query(query), headers->block, headers->signed_list, *payload_hash);
  const std::string scope = credential_scope(credential->date, credential->region, credential->service);
  const std::string expected = make_signature(*secret, credential->date, credential->region, credential->service,
                                              make_string_to_sign(sigv4_format_time(*time), scope, creq));
  if (!constant_time_equal(expected, *signature)) return auth_errc::bad_signature;

  sigv4_verified out;
  out.form = sigv4_form::header;
  out.access_key_id = credential->access_key_id;
  out.region = credential->region;
  out.service = credential->service;
  out.time = *time;
  out.signed_headers = names;
  const auto tokens = find_headers(request.headers, "x-amz-security-token");
  if (!tokens.empty()) {
    out.session_token = std::string(trim(tokens.front()->value));
    out.session_token_signed = std::find(names.begin(), names.end(), "x-amz-security-token") != names.end();
  }
  return out;
}

result<sigv4_verified> verify_query_form(const sigv4_received_request& request, const std::vector<query_param>& query,
                                         const sigv4_verify_options& options, sys_seconds now) {
  std::optional<std::string_view> algorithm, credential_text, date_text, expires_text, token, signed_text, signature;
  for (const auto& p : query) {
    std::optional<std::string_view>* slot = p.name == param_algorithm        ? &algorithm
                                            : p.name == param_credential     ? &credential_text
                                            : p.name == param_date           ? &date_text
                                            : p.name == param_expires        ? &expires_text
                                            : p.name == param_security_token ? &token
                                            : p.name == param_signed_headers ? &signed_text
                                            : p.name == param_signature      ? &signature
                                                                             : nullptr;
    if (slot == nullptr) continue;
    if (slot->has_value()) return auth_errc::malformed_authorization;
    *slot = p.value;
  }
  if (!algorithm || *algorithm != algorithm_name) return auth_errc::unsupported_algorithm;
  if (!credential_text || !date_text || !signed_text || !signature || !is_lower_hex_signature(*signature)) {
    return auth_errc::malformed_authorization;
  }
  auto credential = parse_credential(*credential_text);
  if (!credential) return credential.error();
  auto time = sigv4_parse_time(*date_text);
  if (!time) return time.error();
  auto signed_names = parse_signed_headers(*signed_text);
  if (!signed_names) return signed_names.error();
  std::optional<seconds> expires;
  if (expires_text) {
    std::int64_t value = 0;
    const char* first = expires_text->data();
    const char* last = first + expires_text->size();
    const auto [end, ec] = std::from_chars(first, last, value);
    if (ec != std::errc{} || end != last || value < 1 || seconds{value} > options.max_expires) {
      return auth_errc::malformed_authorization;
    }
    expires = seconds{value};
  }
  const auto& names = *signed_names;
  if (std::find(names.begin(), names.end(), "host") == names.end()) return auth_errc::missing_signed_header;
  auto headers = canonicalize_for_verifying(request.headers, names);
  if (!headers) return headers.error();
  if (auto scope = check_scope(*credential, *time, options); !scope) return scope.error();
  if (*time - now > options.max_clock_skew) return auth_errc::request_time_skewed;
  if (now > *time + expires.value_or(options.max_clock_skew)) return auth_errc::expired;
  auto payload_hash = received_payload_hash(request);
  if (!payload_hash) return payload_hash.error();
  auto secret = lookup(options, credential->access_key_id);
  if (!secret) return secret.error();

  const auto target = split(request.target);
  const std::string canonical_uri =
      sigv4_canonical_uri(target.path, options.normalize_path, options.double_encode_path);
  const std::string scope = credential_scope(credential->date, credential->region, credential->service);
  const std::string datetime = sigv4_format_time(*time);

  // The session token may be signed (most SDKs) or appended after signing (AWS IoT's
  // WebSocket URL); nothing in the request says which, so both are tried.
  auto matches = [&](bool include_token) {
    std::vector<query_param> signed_params;
    signed_params.reserve(query.size());
    for (const auto& p : query) {
      if (p.name == param_signature) continue;
      if (!include_token && p.name == param_security_token) continue;
      signed_params.push_back(p);
    }
    const std::string creq = make_canonical_request(request.method, canonical_uri, sigv4_canonical_query(signed_params),
                                                    headers->block, headers->signed_list, *payload_hash);
    const std::string expected = make_signature(*secret, credential->date, credential->region, credential->service,
                                                make_string_to_sign(datetime, scope, creq));
    return constant_time_equal(expected, *signature);
  };
  bool token_signed = false;
  if (matches(true)) {
    token_signed = token.has_value();
  } else if (!token || !matches(false)) {
    return auth_errc::bad_signature;
  }

  sigv4_verified out;
  out.form = sigv4_form::query;
  out.access_key_id = credential->access_key_id;
  out.region = credential->region;
  out.service = credential->service;
  out.time = *time;
  out.signed_headers = names;
  if (token) out.session_token = std::string(*token);
  out.session_token_signed = token_signed;
  if (expires) out.expires_at = *time + *expires;
  return out;
}

}  // namespace

std::string sigv4_format_time(sys_seconds t) {
  const auto day = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::year_month_day ymd{day};
  const std::chrono::hh_mm_ss hms{t - day};
  std::string out;
  out.reserve(16);
  append_digits(out, static_cast<int>(ymd.year()), 4);
  append_digits(out, static_cast<unsigned>(ymd.month()), 2);
  append_digits(out, static_cast<unsigned>(ymd.day()), 2);
  out += 'T';
  append_digits(out, hms.hours().count(), 2);
  append_digits(out, hms.minutes().count(), 2);
  append_digits(out, hms.seconds().count(), 2);
  out += 'Z';
  return out;
}

result<sys_seconds> sigv4_parse_time(std::string_view text) {
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z') return auth_errc::malformed_authorization;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!parse_fixed_digits(text.substr(0, 4), y) || !parse_fixed_digits(text.substr(4, 2), mo) ||
      !parse_fixed_digits(text.substr(6, 2), d) || !parse_fixed_digits(text.substr(9, 2), h) ||
      !parse_fixed_digits(text.substr(11, 2), mi) || !parse_fixed_digits(text.substr(13, 2), s)) {
    return auth_errc::malformed_authorization;
  }
  const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(mo)},
                                        std::chrono::day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 59) return auth_errc::malformed_authorization;
  return sys_seconds{std::chrono::sys_days{ymd}} + std::chrono::hours{h} + std::chrono::minutes{mi} + seconds{s};
}

std::string sigv4_canonical_uri(std::string_view path, bool normalize, bool double_encode) {
  std::string p = path.empty() ? std::string("/") : std::string(path);
  if (normalize) {
    // RFC 3986 remove_dot_segments plus collapsing empty segments, as the suite expects.
    std::vector<std::string_view> kept;
    std::string_view rest = path;
    bool ends_in_directory = false;
    while (true) {
      const auto slash = rest.find('/');
      const std::string_view segment = rest.substr(0, slash);
      const bool last = slash == std::string_view::npos;
      if (segment == "..") {
        if (!kept.empty()) kept.pop_back();
      } else if (!segment.empty() && segment != ".") {
        kept.push_back(segment);
      }
      if (last) {
        ends_in_directory = segment.empty() || segment == "." || segment == "..";
        break;
      }
      rest.remove_prefix(slash + 1);
    }
    p = "/";
    for (std::size_t i = 0; i < kept.size(); ++i) {
      if (i > 0) p += '/';
      p += kept[i];
    }
    if (!kept.empty() && ends_in_directory) p += '/';
  }
  return double_encode ? url_encode(p, hex_case::upper, true) : p;
}

std::string sigv4_canonical_query(std::span<const query_param> params) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(params.size());
  for (const auto& p : params) encoded.emplace_back(url_encode(p.name), url_encode(p.value));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

result<std::vector<query_param>> parse_query_string(std::string_view raw) {
  std::vector<query_param> out;
  while (!raw.empty()) {
    const auto amp = raw.find('&');
    const std::string_view piece = raw.substr(0, amp);
    if (!piece.empty()) {
      const auto eq = piece.find('=');
      auto name = url_decode(piece.substr(0, eq));
      if (!name) return name.error();
      auto value = url_decode(eq == std::string_view::npos ? std::string_view{} : piece.substr(eq + 1));
      if (!value) return value.error();
      out.push_back({std::move(*name), std::move(*value)});
    }
    if (amp == std::string_view::npos) break;
    raw.remove_prefix(amp + 1);
  }
  return out;
}

digest256 sigv4_signing_key(std::string_view secret_access_key, std::string_view date_yyyymmdd,
                            std::string_view region, std::string_view service) {
  const std::string k_secret = "AWS4" + std::string(secret_access_key);
  const digest256 k_date = hmac_sha256(k_secret, date_yyyymmdd);
  const digest256 k_region = hmac_sha256(as_bytes(k_date), region);
  const digest256 k_service = hmac_sha256(as_bytes(k_region), service);
  return hmac_sha256(as_bytes(k_service), scope_terminator);
}

sigv4_signed_headers sign_sigv4_headers(const sigv4_request& request, const sigv4_signing_params& params) {
  check_signing_preconditions(request, params);
  const std::string datetime = sigv4_format_time(params.time);
  const std::string date = datetime.substr(0, 8);
  const std::string payload_hash = payload_hash_of(request);
  const auto& token = params.credentials.session_token;

  sigv4_signed_headers out;
  if (!token.empty()) out.headers_to_add.push_back({"X-Amz-Security-Token", token});
  out.headers_to_add.push_back({"X-Amz-Date", datetime});
  if (params.sign_payload_header) out.headers_to_add.push_back({"x-amz-content-sha256", payload_hash});

  std::vector<http_header> to_sign = request.headers;
  for (const auto& h : out.headers_to_add) {
    const bool unsigned_token = h.name == "X-Amz-Security-Token" &&
                                params.session_token == session_token_placement::appended_after_signing;
    if (!unsigned_token) to_sign.push_back(h);
  }
  const canonical_headers headers = canonicalize_for_signing(to_sign);
  const std::string scope = credential_scope(date, params.region, params.service);
  out.canonical_request = make_canonical_request(
      request.method, sigv4_canonical_uri(request.path, params.normalize_path, params.double_encode_path),
      sigv4_canonical_query(request.query), headers.block, headers.signed_list, payload_hash);
  out.string_to_sign = make_string_to_sign(datetime, scope, out.canonical_request);
  out.signature = make_signature(params.credentials.secret_access_key, date, params.region, params.service,
                                 out.string_to_sign);
  out.authorization = std::string(algorithm_name) + " Credential=" + params.credentials.access_key_id + '/' + scope +
                      ", SignedHeaders=" + headers.signed_list + ", Signature=" + out.signature;
  out.headers_to_add.push_back({"Authorization", out.authorization});
  return out;
}

sigv4_presigned presign_sigv4(const sigv4_request& request, const sigv4_signing_params& params) {
  check_signing_preconditions(request, params);
  const std::string datetime = sigv4_format_time(params.time);
  const std::string date = datetime.substr(0, 8);
  const std::string scope = credential_scope(date, params.region, params.service);
  const canonical_headers headers = canonicalize_for_signing(request.headers);
  const auto& token = params.credentials.session_token;
  const bool token_signed = !token.empty() && params.session_token == session_token_placement::signed_in_request;

  sigv4_presigned out;
  out.query_to_add.push_back({std::string(param_algorithm), std::string(algorithm_name)});
  out.query_to_add.push_back({std::string(param_credential), params.credentials.access_key_id + '/' + scope});
  out.query_to_add.push_back({std::string(param_date), datetime});
  out.query_to_add.push_back({std::string(param_signed_headers), headers.signed_list});
  if (params.expires) out.query_to_add.push_back({std::string(param_expires), std::to_string(params.expires->count())});
  if (token_signed) out.query_to_add.push_back({std::string(param_security_token), token});

  std::vector<query_param> signed_query = request.query;
  signed_query.insert(signed_query.end(), out.query_to_add.begin(), out.query_to_add.end());
  out.canonical_request = make_canonical_request(
      request.method, sigv4_canonical_uri(request.path, params.normalize_path, params.double_encode_path),
      sigv4_canonical_query(signed_query), headers.block, headers.signed_list, payload_hash_of(request));
  out.string_to_sign = make_string_to_sign(datetime, scope, out.canonical_request);
  out.signature = make_signature(params.credentials.secret_access_key, date, params.region, params.service,
                                 out.string_to_sign);
  out.query_to_add.push_back({std::string(param_signature), out.signature});
  // AWS IoT's WebSocket recipe appends the token to the finished URL, after the signature.
  if (!token.empty() && !token_signed) out.query_to_add.push_back({std::string(param_security_token), token});

  auto append = [&out](const std::vector<query_param>& list) {
    for (const auto& p : list) {
      if (!out.query_string.empty()) out.query_string += '&';
      out.query_string += url_encode(p.name);
      out.query_string += '=';
      out.query_string += url_encode(p.value);
    }
  };
  append(request.query);
  append(out.query_to_add);
  return out;
}

std::string aws_iot_websocket_target(std::string_view host, const aws_credentials& credentials,
                                     std::string_view region, sys_seconds time, std::optional<seconds> expires) {
  sigv4_request request;
  request.method = "GET";
  request.path = "/mqtt";
  request.headers.push_back({"host", std::string(host)});
  sigv4_signing_params params;
  params.credentials = credentials;
  params.region = std::string(region);
  params.service = "iotdevicegateway";
  params.time = time;
  params.session_token = session_token_placement::appended_after_signing;
  params.expires = expires;
  return "/mqtt?" + presign_sigv4(request, params).query_string;
}

result<sigv4_verified> verify_sigv4(const sigv4_received_request& request, const sigv4_verify_options& options,
                                    std::chrono::system_clock::time_point now) {
  // Whole seconds: X-Amz-Date has no finer resolution, and a far-future date converted to the
  // clock's nanosecond ticks could overflow.
  const sys_seconds now_s = std::chrono::floor<seconds>(now);
  auto query = parse_query_string(split(request.target).query);
  if (!query) return auth_errc::malformed_authorization;
  const bool has_query_auth = std::any_of(query->begin(), query->end(),
                                          [](const auto& p) { return p.name == param_algorithm; });
  const auto authorizations = find_headers(request.headers, "authorization");
  if (authorizations.size() > 1) return auth_errc::malformed_authorization;
  if (!authorizations.empty() && has_query_auth) return auth_errc::malformed_authorization;
  if (!authorizations.empty()) {
    return verify_header_form(request, authorizations.front()->value, *query, options, now_s);
  }
  if (has_query_auth) return verify_query_form(request, *query, options, now_s);
  return auth_errc::missing_authentication;
}

}  // namespace twinfleet::auth
