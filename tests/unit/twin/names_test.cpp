// Name rules of both platforms (PROTOCOLS.md A1, A8, B1, B7).
#include <catch2/catch.hpp>

#include <twinfleet/twin/names.hpp>

#include <string>

using namespace twinfleet::twin;

namespace {

// Every byte value that is not in `allowed`, as one-character names.
std::string outside(std::string_view allowed) {
  std::string out;
  for (int b = 1; b < 256; ++b) {
    const char c = static_cast<char>(b);
    if (allowed.find(c) == std::string_view::npos) out.push_back(c);
  }
  return out;
}

const std::string alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

}  // namespace

TEST_CASE("thing names are 1-128 characters of letters, digits, colon, underscore and hyphen",
          "[twin][names][aws]") {
  CHECK(is_valid_thing_name("mySimulatedThing"));
  CHECK(is_valid_thing_name("thermo-00042"));
  CHECK(is_valid_thing_name("a:b_c-D9"));
  CHECK(is_valid_thing_name(alnum));
  CHECK(is_valid_thing_name("x"));
  CHECK(is_valid_thing_name(std::string(128, 'x')));

  CHECK_FALSE(is_valid_thing_name(""));
  CHECK_FALSE(is_valid_thing_name(std::string(129, 'x')));
  CHECK_FALSE(is_valid_thing_name("$thing"));  // `$` is for shadow names only
  CHECK_FALSE(is_valid_thing_name("my thing"));
  CHECK_FALSE(is_valid_thing_name("a/b"));
  CHECK_FALSE(is_valid_thing_name("a.b"));
  CHECK_FALSE(is_valid_thing_name("a+b"));
  CHECK_FALSE(is_valid_thing_name("a#"));
  CHECK_FALSE(is_valid_thing_name("caf\xc3\xa9"));  // non-ASCII letter
  CHECK_FALSE(is_valid_thing_name(std::string("a\0b", 3)));
}

TEST_CASE("no character outside the thing-name set is accepted", "[twin][names][aws]") {
  for (const char c : outside(alnum + ":_-")) {
    INFO("byte " << static_cast<int>(static_cast<unsigned char>(c)));
    CHECK_FALSE(is_valid_thing_name(std::string("ok") + c));
  }
}

TEST_CASE("shadow names are 1-64 characters and may also contain a dollar sign", "[twin][names][aws]") {
  CHECK(is_valid_shadow_name("simShadow1"));
  CHECK(is_valid_shadow_name("$config"));
  CHECK(is_valid_shadow_name("a:b_c-$"));
  CHECK(is_valid_shadow_name(std::string(64, 's')));

  CHECK_FALSE(is_valid_shadow_name(""));
  CHECK_FALSE(is_valid_shadow_name(std::string(65, 's')));
  CHECK_FALSE(is_valid_shadow_name("name/x"));  // would change the topic's shape
  CHECK_FALSE(is_valid_shadow_name("a b"));
  CHECK_FALSE(is_valid_shadow_name("+"));
  CHECK_FALSE(is_valid_shadow_name("#"));
  for (const char c : outside(alnum + "$:_-")) {
    INFO("byte " << static_cast<int>(static_cast<unsigned char>(c)));
    CHECK_FALSE(is_valid_shadow_name(std::string(1, c)));
  }
}

TEST_CASE("Azure device ids are up to 128 ASCII letters, digits and the documented specials",
          "[twin][names][azure]") {
  const std::string specials = "-:.+%_#*?!(),=@;$'";
  CHECK(is_valid_device_id("devA"));
  CHECK(is_valid_device_id("thermo-00042"));
  CHECK(is_valid_device_id(specials));
  CHECK(is_valid_device_id(std::string(128, 'd')));

  CHECK_FALSE(is_valid_device_id(""));
  CHECK_FALSE(is_valid_device_id(std::string(129, 'd')));
  CHECK_FALSE(is_valid_device_id("dev/A"));  // would split the MQTT client id of a module
  CHECK_FALSE(is_valid_device_id("dev A"));
  CHECK_FALSE(is_valid_device_id("dev\"A"));
  CHECK_FALSE(is_valid_device_id("d\xc3\xa9v"));
  for (const char c : outside(alnum + specials)) {
    INFO("byte " << static_cast<int>(static_cast<unsigned char>(c)));
    CHECK_FALSE(is_valid_device_id(std::string("d") + c));
  }
}

TEST_CASE("Azure method and property names are printable ASCII without separators", "[twin][names][azure]") {
  CHECK(is_valid_method_name("reboot"));
  CHECK(is_valid_method_name("thermostat*getMaxMinReport"));  // component*command (A7)
  CHECK(is_valid_method_name("set-interval_2.0!~'`^|&%#+*"));
  CHECK(is_valid_property_name("temperatureAlert"));

  CHECK_FALSE(is_valid_method_name(""));
  CHECK_FALSE(is_valid_property_name(""));
  CHECK_FALSE(is_valid_method_name("re boot"));
  CHECK_FALSE(is_valid_method_name("re\tboot"));
  CHECK_FALSE(is_valid_method_name("r\xc3\xa9"));
  CHECK_FALSE(is_valid_method_name(std::string("a\x7f", 2)));  // DEL is not printable

  const std::string forbidden = "$()<>@,;:\\\"/[]?={}";
  for (const char c : forbidden) {
    INFO("character " << c);
    CHECK_FALSE(is_valid_method_name(std::string("m") + c));
    CHECK_FALSE(is_valid_property_name(std::string(1, c) + "p"));
  }
  // Every other printable character is allowed.
  for (char c = '!'; c <= '~'; ++c) {
    if (forbidden.find(c) != std::string::npos) continue;
    INFO("character " << c);
    CHECK(is_valid_method_name(std::string(1, c)));
    CHECK(is_valid_property_name(std::string(1, c)));
  }
  for (int b = 0; b < 0x20; ++b) {
    CHECK_FALSE(is_valid_method_name(std::string(1, static_cast<char>(b))));
  }
}
