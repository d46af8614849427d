// Desired-value validation and the acknowledgement shapes of both platforms.
#include <twinfleet/device/desired.hpp>

#include <catch2/catch.hpp>

#include <boost/json.hpp>

namespace dv = twinfleet::device;
namespace json = boost::json;

namespace {
dv::writable_property brightness() {
  dv::writable_property p;
  p.name = "brightness";
  p.schema.type = dv::value_type::integer;
  p.schema.min = 0;
  p.schema.max = 100;
  p.initial = 80;
  return p;
}
dv::writable_property led() {
  dv::writable_property p;
  p.name = "rgb_led";
  p.schema.type = dv::value_type::object;
  for (const char* c : {"r", "g", "b"}) {
    dv::property_schema f;
    f.name = c;
    f.type = dv::value_type::integer;
    f.min = 0;
    f.max = 255;
    p.schema.fields.push_back(f);
  }
  p.initial = json::parse(R"({"r":0,"g":0,"b":0})");
  return p;
}
}  // namespace

TEST_CASE("check_value checks type, range, enum and object members", "[device][desired]") {
  const auto b = brightness();
  CHECK_FALSE(dv::check_value(b.schema, 50));
  CHECK_FALSE(dv::check_value(b.schema, 50.0));  // a whole-valued number is an integer
  CHECK(dv::check_value(b.schema, 50.5) == "expected an integer, got 50.5");
  CHECK(dv::check_value(b.schema, 150) == "must lie in [0, 100], got 150");
  CHECK(dv::check_value(b.schema, "50") == "expected an integer, got \"50\"");

  dv::property_schema colour;
  colour.type = dv::value_type::string;
  colour.allowed = {"red", "green"};
  CHECK_FALSE(dv::check_value(colour, "red"));
  CHECK(dv::check_value(colour, "blue") == "must be one of \"red\", \"green\", got \"blue\"");

  const auto l = led();
  CHECK_FALSE(dv::check_value(l.schema, json::parse(R"({"r": 255})")));
  CHECK(dv::check_value(l.schema, json::parse(R"({"r": 256})")) == "r: must lie in [0, 255], got 256");
  CHECK(dv::check_value(l.schema, json::parse(R"({"w": 1})")) == "unknown member 'w'");
}

TEST_CASE("Azure PnP acks and AWS mirrors for accepted and refused writes", "[device][desired]") {
  const auto b = brightness();
  const auto ok = dv::decide_desired(b, 40, 80);
  CHECK(ok.accepted);
  CHECK(ok.value == json::value(40));
  CHECK(dv::azure_ack_patch("brightness", ok, 7) == json::parse(R"({"brightness":{"value":40,"ac":200,"av":7,"ad":"applied"}})"));
  CHECK(dv::aws_reported_mirror("brightness", ok) == json::parse(R"({"brightness":40})").as_object());

  // Refused: the value in force stays, on both platforms.
  const auto bad = dv::decide_desired(b, 400, 80);
  CHECK_FALSE(bad.accepted);
  CHECK(dv::azure_ack(bad, 8) == json::parse(R"({"value":80,"ac":400,"av":8,"ad":"must lie in [0, 100], got 400"})"));
  CHECK(dv::aws_reported_mirror("brightness", bad) == json::parse(R"({"brightness":80})").as_object());

  CHECK(dv::azure_pending_ack(40, 9) == json::parse(R"({"value":40,"ac":202,"av":9,"ad":"applying"})"));

  // Deleting the desired property returns to the initial value.
  CHECK(dv::decide_desired(b, nullptr, 40).value == json::value(80));
}

TEST_CASE("a partial object write merges into the value in force", "[device][desired]") {
  const auto l = led();
  const auto d = dv::decide_desired(l, json::parse(R"({"g": 128})"), json::parse(R"({"r":10,"g":0,"b":0})"));
  CHECK(d.accepted);
  CHECK(d.value == json::parse(R"({"r":10,"g":128,"b":0})"));
  const auto bad = dv::decide_desired(l, json::parse(R"({"g": 999})"), json::parse(R"({"r":10,"g":0,"b":0})"));
  CHECK_FALSE(bad.accepted);
  CHECK(bad.value == json::parse(R"({"r":10,"g":0,"b":0})"));
}
