// SAS tokens (PROTOCOLS.md A9) and the encodings under them.
#include <twinfleet/auth/encoding.hpp>
#include <twinfleet/auth/sas.hpp>

#include "catch_printers.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace auth = twinfleet::auth;
using auth::auth_errc;
using namespace std::chrono_literals;



namespace {

// PROTOCOLS.md A9 test vector: key bytes 0x00..0x1f, se = 1700000000.
constexpr std::string_view vector_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
constexpr std::string_view vector_resource = "myhub.azure-devices.net/devices/device1";
constexpr std::chrono::sys_seconds vector_expiry{std::chrono::seconds{1700000000}};
constexpr std::string_view vector_upper_token =
    "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdevice1"
    "&sig=gFSfLGMXDOvf906%2FiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3D&se=1700000000";
constexpr std::string_view vector_lower_sig = "iIyvul1z7xsjQDMXvGvUxZi+lqnXkFn5lOgyNrICYDM=";

const auto before_expiry = std::chrono::system_clock::time_point{vector_expiry} - 10s;

auth::sas_token_request vector_request(auth::hex_case encoding) {
  auth::sas_token_request r;
  r.resource_uri = vector_resource;
  r.key_base64 = vector_key;
  r.expiry = vector_expiry;
  r.encoding = encoding;
  return r;
}

std::string make_token(std::string_view resource, std::optional<std::string_view> policy = std::nullopt,
                       auth::hex_case encoding = auth::hex_case::upper) {
  auth::sas_token_request r = vector_request(encoding);
  r.resource_uri = resource;
  r.policy_name = policy;
  return auth::create_sas_token(r).value();
}

auth_errc parse_error(std::string_view token) {
  const auto parsed = auth::parse_sas_token(token);
  REQUIRE_FALSE(parsed);
  REQUIRE(parsed.error().category() == auth::auth_category());
  return static_cast<auth_errc>(parsed.error().value());
}

auth::result<void> verify(std::string_view token, std::string_view resource,
                          std::chrono::system_clock::time_point now = before_expiry,
                          std::string_view key = vector_key) {
  auto r = auth::verify_sas_token(token, key, resource, now);
  if (!r) return r.error();
  return {};
}

}  // namespace

// --- encodings --------------------------------------------------------------------------------

TEST_CASE("base64 encodes the RFC 4648 vectors and decodes them back", "[auth][encoding]") {
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    CAPTURE(plain);
    CHECK(auth::base64_encode(plain) == encoded);
    const auto decoded = auth::base64_decode(encoded);
    REQUIRE(decoded);
    CHECK(*decoded == plain);
  }
  const std::string all_bytes = [] {
    std::string s;
    for (int i = 0; i < 256; ++i) s += static_cast<char>(i);
    return s;
  }();
  CHECK(auth::base64_decode(auth::base64_encode(all_bytes)).value() == all_bytes);
}

TEST_CASE("base64 decoding is strict", "[auth][encoding]") {
  for (const std::string_view bad : {"Zg=", "Zg", "Zg=a", "Z===", "====", "=Zg=", "Zg==Zg==", "Zm9v YmFy",
                                     "Zm9v\n", "Zm9-", "Zm9_", "Zh==", "Zm9=", "Zm8*"}) {
    CAPTURE(bad);
    const auto r = auth::base64_decode(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error() == auth_errc::invalid_base64);
  }
}

TEST_CASE("percent-encoding keeps only the RFC 3986 unreserved set", "[auth][encoding]") {
  CHECK(auth::url_encode("AZaz09-_.~") == "AZaz09-_.~");
  CHECK(auth::url_encode("a b/c+d=e&\xE1\x88\xB4") == "a%20b%2Fc%2Bd%3De%26%E1%88%B4");
  CHECK(auth::url_encode("a/b\xff", auth::hex_case::lower) == "a%2fb%ff");
  CHECK(auth::url_encode("/a b/", auth::hex_case::upper, true) == "/a%20b/");
  CHECK(auth::url_encode(std::string_view("\0", 1)) == "%00");
}

TEST_CASE("percent-decoding accepts either hex case and refuses broken escapes", "[auth][encoding]") {
  CHECK(auth::url_decode("a%2Fb%2fc").value() == "a/b/c");
  CHECK(auth::url_decode("a+b%20c").value() == "a+b c");
  CHECK(auth::url_decode("%E1%88%B4").value() == "\xE1\x88\xB4");
  for (const std::string_view bad : {"%", "%2", "a%G1", "%%41", "abc%"}) {
    CAPTURE(bad);
    const auto r = auth::url_decode(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error() == auth_errc::invalid_percent_encoding);
  }
}

TEST_CASE("hex round-trips in both cases and refuses odd or non-hex input", "[auth][encoding]") {
  CHECK(auth::hex_encode(std::string_view("\x01\xab\xff", 3)) == "01abff");
  CHECK(auth::hex_encode(std::string_view("\x01\xab\xff", 3), auth::hex_case::upper) == "01ABFF");
  CHECK(auth::hex_decode("01abFF").value() == std::string("\x01\xab\xff", 3));
  CHECK(auth::hex_decode("abc").error() == auth_errc::invalid_hex);
  CHECK(auth::hex_decode("0g").error() == auth_errc::invalid_hex);
}

TEST_CASE("sha256 and hmac_sha256 match published vectors", "[auth][encoding]") {
  CHECK(auth::hex_encode(auth::sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(auth::hex_encode(auth::sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // RFC 4231 test case 2.
  CHECK(auth::hex_encode(auth::hmac_sha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // An empty key is legal HMAC (RFC 2104 pads it with zeros).
  CHECK(auth::hex_encode(auth::hmac_sha256("", "")) ==
        "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST_CASE("digests are correct when computed from several threads at once", "[auth][encoding]") {
  // Each thread keeps its own OpenSSL contexts; interleaved keys must never mix.
  std::vector<std::string> expected;
  for (int t = 0; t < 4; ++t) {
    expected.push_back(auth::hex_encode(auth::hmac_sha256(std::string(t + 1, 'k'), "message")) +
                       auth::hex_encode(auth::sha256(std::string(t + 1, 'm'))));
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &expected, &mismatches] {
      for (int i = 0; i < 2000; ++i) {
        const std::string got = auth::hex_encode(auth::hmac_sha256(std::string(t + 1, 'k'), "message")) +
                                auth::hex_encode(auth::sha256(std::string(t + 1, 'm')));
        if (got != expected[static_cast<std::size_t>(t)]) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(mismatches == 0);
}

TEST_CASE("constant_time_equal compares content and length", "[auth][encoding]") {
  CHECK(auth::constant_time_equal("abc", "abc"));
  CHECK_FALSE(auth::constant_time_equal("abc", "abd"));
  CHECK_FALSE(auth::constant_time_equal("abc", "abcd"));
  CHECK(auth::constant_time_equal("", ""));
}

// --- creating tokens ---------------------------------------------------------------------------

TEST_CASE("the upper-case A9 vector gives the exact token", "[auth][sas]") {
  CHECK(auth::sas_string_to_sign("myhub.azure-devices.net%2Fdevices%2Fdevice1", vector_expiry) ==
        "myhub.azure-devices.net%2Fdevices%2Fdevice1\n1700000000");
  CHECK(auth::create_sas_token(vector_request(auth::hex_case::upper)).value() == vector_upper_token);
}

TEST_CASE("the lower-case A9 vector gives the documented signature", "[auth][sas]") {
  const std::string token = auth::create_sas_token(vector_request(auth::hex_case::lower)).value();
  CHECK(token.starts_with("SharedAccessSignature sr=myhub.azure-devices.net%2fdevices%2fdevice1&sig="));
  const auto parsed = auth::parse_sas_token(token);
  REQUIRE(parsed);
  CHECK(parsed->resource_raw == "myhub.azure-devices.net%2fdevices%2fdevice1");
  CHECK(parsed->resource == vector_resource);
  CHECK(parsed->signature == vector_lower_sig);
  CHECK(parsed->expiry == vector_expiry);
}

TEST_CASE("a policy key adds skn, a device key does not", "[auth][sas]") {
  const std::string policy = make_token("myhub.azure-devices.net", "iothubowner");
  CHECK(policy.ends_with("&skn=iothubowner"));
  const auto parsed_policy = auth::parse_sas_token(policy);
  REQUIRE(parsed_policy);
  CHECK(parsed_policy->signer() == auth::sas_signer::policy);
  CHECK(parsed_policy->policy_name == "iothubowner");

  const auto parsed_device = auth::parse_sas_token(vector_upper_token);
  REQUIRE(parsed_device);
  CHECK(parsed_device->signer() == auth::sas_signer::device);
  CHECK_FALSE(parsed_device->policy_name);
}

TEST_CASE("creating a token with a key that is not base64 fails", "[auth][sas]") {
  auth::sas_token_request r = vector_request(auth::hex_case::upper);
  r.key_base64 = "not base64!";
  CHECK(auth::create_sas_token(r).error() == auth_errc::invalid_key);
  r.key_base64 = "";
  CHECK(auth::create_sas_token(r).error() == auth_errc::invalid_key);
}

// --- parsing ------------------------------------------------------------------------------------

TEST_CASE("fields parse in any order", "[auth][sas]") {
  const auto parsed = auth::parse_sas_token(
      "SharedAccessSignature se=1700000000&skn=service&sig=gFSfLGMXDOvf906%2FiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3D"
      "&sr=myhub.azure-devices.net");
  REQUIRE(parsed);
  CHECK(parsed->resource == "myhub.azure-devices.net");
  CHECK(parsed->signature == "gFSfLGMXDOvf906/iaX3KwzLLNFHgaFZyCbsGjxtd1Y=");
  CHECK(parsed->expiry == vector_expiry);
  CHECK(parsed->policy_name == "service");
}

TEST_CASE("malformed tokens are refused as malformed_token", "[auth][sas]") {
  const std::string sig = "sig=gFSfLGMXDOvf906%2FiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3D";
  const std::string sr = "sr=myhub.azure-devices.net%2Fdevices%2Fdevice1";
  const std::string se = "se=1700000000";
  const std::string p = "SharedAccessSignature ";
  const std::string cases[] = {
      "",
      "SharedAccessSignature",
      p,
      "sharedaccesssignature " + sr + "&" + sig + "&" + se,  // prefix is case-sensitive
      "SharedAccessSignature  " + sr + "&" + sig + "&" + se,  // two spaces
      "Bearer " + sr + "&" + sig + "&" + se,
      sr + "&" + sig + "&" + se,                                  // no prefix at all
      p + sig + "&" + se,                                         // no sr
      p + sr + "&" + se,                                          // no sig
      p + sr + "&" + sig,                                         // no se
      p + sr + "&" + sig + "&" + se + "&" + se,                   // duplicate se
      p + sr + "&" + sr + "&" + sig + "&" + se,                   // duplicate sr
      p + sr + "&" + sig + "&" + se + "&skn=a&skn=b",            // duplicate skn
      p + sr + "&" + sig + "&" + se + "&foo=bar",                 // unknown field
      p + sr + "&" + sig + "&" + se + "&",                        // trailing separator
      p + sr + "&" + sig + "&" + se + "&skn=",                    // empty skn
      p + "sr=&" + sig + "&" + se,                                // empty sr
      p + sr + "&" + sig + "&se",                                 // field without '='
      p + sr + "&" + sig + "&se=17e8",                            // non-numeric se
      p + sr + "&" + sig + "&se=-1",                              // negative se
      p + sr + "&" + sig + "&se=+1700000000",
      p + sr + "&" + sig + "&se=99999999999999999999",            // overflows int64
      p + sr + "&" + sig + "&se=253402300800",                    // after year 9999
      p + sr + "&sig=abc&" + se,                                  // sig not base64
      p + sr + "&sig=gFSfLGMXDOvf906/iaX3KwzLLNFHgaFZyCbsGjxtd1Y%3&" + se,  // broken escape
      p + "sr=myhub%2&" + sig + "&" + se,
  };
  for (const auto& token : cases) {
    CAPTURE(token);
    CHECK(parse_error(token) == auth_errc::malformed_token);
  }
}

// --- verifying ----------------------------------------------------------------------------------

TEST_CASE("both encodings of sr verify, each with its own signature", "[auth][sas]") {
  const std::string upper = auth::create_sas_token(vector_request(auth::hex_case::upper)).value();
  const std::string lower = auth::create_sas_token(vector_request(auth::hex_case::lower)).value();
  REQUIRE(upper != lower);
  CHECK(verify(upper, vector_resource));
  CHECK(verify(lower, vector_resource));

  // The HMAC covers sr as received: the upper-case token's signature under a lower-case sr fails.
  std::string mixed = upper;
  mixed.replace(mixed.find("%2Fdevices%2F"), 13, "%2fdevices%2f");
  CHECK(verify(mixed, vector_resource).error() == auth_errc::bad_signature);
}

TEST_CASE("a signature left unencoded in the token still verifies", "[auth][sas]") {
  // '+', '/' and '=' decode to themselves: '+' is not form-decoded to a space.
  const std::string raw = "SharedAccessSignature sr=myhub.azure-devices.net%2fdevices%2fdevice1&sig=" +
                          std::string(vector_lower_sig) + "&se=1700000000";
  CHECK(verify(raw, vector_resource));
}

TEST_CASE("verify returns the parsed token", "[auth][sas]") {
  const std::string token = make_token("myhub.azure-devices.net", "service");
  const auto verified = auth::verify_sas_token(token, vector_key, "myhub.azure-devices.net/twins/d1", before_expiry);
  REQUIRE(verified);
  CHECK(verified->signer() == auth::sas_signer::policy);
  CHECK(verified->policy_name == "service");
}

TEST_CASE("a token signed with another key is a bad signature", "[auth][sas]") {
  const std::string other_key = auth::base64_encode(std::string(32, 'k'));
  CHECK(verify(vector_upper_token, vector_resource, before_expiry, other_key).error() == auth_errc::bad_signature);
  CHECK(verify(vector_upper_token, vector_resource, before_expiry, "###").error() == auth_errc::invalid_key);
}

TEST_CASE("a token altered after signing is a bad signature", "[auth][sas]") {
  std::string later = std::string(vector_upper_token);
  later.replace(later.find("se=1700000000"), 13, "se=1800000000");
  CHECK(verify(later, vector_resource).error() == auth_errc::bad_signature);

  std::string other_device = std::string(vector_upper_token);
  other_device.replace(other_device.find("device1"), 7, "device2");
  CHECK(verify(other_device, "myhub.azure-devices.net/devices/device2").error() == auth_errc::bad_signature);

  // A valid base64 signature of the right length, but not the right one.
  std::string flipped = std::string(vector_upper_token);
  flipped.replace(flipped.find("sig=g"), 5, "sig=h");
  CHECK(verify(flipped, vector_resource).error() == auth_errc::bad_signature);
}

TEST_CASE("expiry is checked after signature and resource", "[auth][sas]") {
  const auto at_expiry = std::chrono::system_clock::time_point{vector_expiry};
  CHECK(verify(vector_upper_token, vector_resource, at_expiry - 1s));
  CHECK(verify(vector_upper_token, vector_resource, at_expiry - 1ms));
  CHECK(verify(vector_upper_token, vector_resource, at_expiry).error() == auth_errc::expired);
  CHECK(verify(vector_upper_token, vector_resource, at_expiry + 24h).error() == auth_errc::expired);
  // Wrong resource wins over expired; bad signature wins over both.
  CHECK(verify(vector_upper_token, "myhub.azure-devices.net/devices/device2", at_expiry).error() ==
        auth_errc::wrong_resource);
  CHECK(verify(vector_upper_token, vector_resource, at_expiry, auth::base64_encode("x")).error() ==
        auth_errc::bad_signature);
}

TEST_CASE("sr must be a path-segment prefix of the accessed resource", "[auth][sas]") {
  const std::string devices = make_token("myhub.azure-devices.net/devices");
  CHECK(verify(devices, "myhub.azure-devices.net/devices"));
  CHECK(verify(devices, "myhub.azure-devices.net/devices/device1"));
  CHECK(verify(devices, "myhub.azure-devices.net/devices/device1/modules/m1"));
  CHECK(verify(devices, "myhub.azure-devices.net/devicesX").error() == auth_errc::wrong_resource);
  CHECK(verify(devices, "myhub.azure-devices.net/device").error() == auth_errc::wrong_resource);
  CHECK(verify(devices, "myhub.azure-devices.net").error() == auth_errc::wrong_resource);
  CHECK(verify(devices, "otherhub.azure-devices.net/devices/device1").error() == auth_errc::wrong_resource);

  const std::string device1 = make_token(vector_resource);
  CHECK(verify(device1, "myhub.azure-devices.net/devices/device10").error() == auth_errc::wrong_resource);
  CHECK(verify(device1, "myhub.azure-devices.net/devices/device1/modules/m1"));

  const std::string hub = make_token("myhub.azure-devices.net", "iothubowner");
  CHECK(verify(hub, "myhub.azure-devices.net/devices/anything"));
  CHECK(verify(hub, "myhub.azure-devices.net.evil.example/devices/d").error() == auth_errc::wrong_resource);
}

TEST_CASE("the resource comparison ignores case", "[auth][sas]") {
  const std::string token = make_token("MyHub.Azure-Devices.net/Devices/Device1");
  CHECK(verify(token, "myhub.azure-devices.net/devices/device1"));
  CHECK(verify(token, "MYHUB.AZURE-DEVICES.NET/DEVICES/DEVICE1/modules/x"));
}

TEST_CASE("sas_resource_covers works by whole segments", "[auth][sas]") {
  CHECK(auth::sas_resource_covers("/a/b", "/a/b"));
  CHECK(auth::sas_resource_covers("/a/b", "/a/b/c"));
  CHECK(auth::sas_resource_covers("/a/b/", "/a/b/c"));
  CHECK(auth::sas_resource_covers("/A/b", "/a/B/c"));
  CHECK_FALSE(auth::sas_resource_covers("/a/b", "/a/bc"));
  CHECK_FALSE(auth::sas_resource_covers("/a/b/c", "/a/b"));
  CHECK_FALSE(auth::sas_resource_covers("", "/a"));
}

TEST_CASE("tokens round-trip for awkward resources and policy names", "[auth][sas]") {
  for (const auto encoding : {auth::hex_case::upper, auth::hex_case::lower}) {
    const std::string resource = "hub.azure-devices.net/devices/dev ice+1%/modules/m~1";
    const std::string token = make_token(resource, "my policy&co", encoding);
    const auto parsed = auth::parse_sas_token(token);
    REQUIRE(parsed);
    CHECK(parsed->resource == resource);
    CHECK(parsed->policy_name == "my policy&co");
    CHECK(verify(token, resource));
    CHECK(verify(token, resource + "/twin"));
  }
}

TEST_CASE("derive_device_key follows DPS group enrollment", "[auth][sas]") {
  // base64(HMAC-SHA256(bytes 0x00..0x1f, "device-007")), computed with Python's hmac module.
  CHECK(auth::derive_device_key(vector_key, "device-007").value() == "MO1SVpkN6ZJZ88hF3ENqPaawVW5W81N2/7WHKgWyWls=");
  CHECK(auth::derive_device_key("@@", "device-007").error() == auth_errc::invalid_key);

  // A derived key signs tokens like any device key.
  const std::string device_key = auth::derive_device_key(vector_key, "device-007").value();
  auth::sas_token_request r = vector_request(auth::hex_case::upper);
  r.resource_uri = "myhub.azure-devices.net/devices/device-007";
  r.key_base64 = device_key;
  const std::string token = auth::create_sas_token(r).value();
  CHECK(auth::verify_sas_token(token, device_key, r.resource_uri, before_expiry));
  CHECK(auth::verify_sas_token(token, vector_key, r.resource_uri, before_expiry).error() == auth_errc::bad_signature);
}

TEST_CASE("auth errors have a category and readable messages", "[auth][sas]") {
  const boost::system::error_code ec = auth_errc::expired;
  CHECK(ec.category().name() == std::string("twinfleet.auth"));
  CHECK(ec.message() == "expired");
  CHECK(boost::system::error_code(auth_errc::wrong_resource).message() == "token does not cover the resource");
}
