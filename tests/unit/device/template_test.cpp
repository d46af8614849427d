// Id patterns and text templates.
#include <twinfleet/device/template.hpp>

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <set>

namespace dv = twinfleet::device;
namespace json = boost::json;

namespace {
dv::string_template parse(std::string_view text, unsigned allowed) {
  std::string error;
  auto t = dv::string_template::parse(text, allowed, error);
  INFO(error);
  REQUIRE(t);
  return *t;
}
}  // namespace

TEST_CASE("id patterns pad the index", "[device][template]") {
  std::string error;
  const auto t = dv::parse_id_pattern("bulb-{index:05}", error);
  REQUIRE(t);
  dv::template_context ctx;
  ctx.index = 42;
  CHECK(t->expand(ctx) == "bulb-00042");
  ctx.index = 1234567;
  CHECK(t->expand(ctx) == "bulb-1234567");  // wider than the pad: all digits kept
  const auto plain = dv::parse_id_pattern("{profile}_{index}", error);
  REQUIRE(plain);
  ctx.index = 7;
  ctx.profile = "thermostat";
  CHECK(plain->expand(ctx) == "thermostat_7");
}

TEST_CASE("bad id patterns say what is wrong", "[device][template]") {
  std::string error;
  CHECK_FALSE(dv::parse_id_pattern("bulb", error));
  CHECK(error.find("needs {index}") != std::string::npos);
  CHECK_FALSE(dv::parse_id_pattern("bulb-{index:0x}", error));
  CHECK(error.find("bad index format {index:0x}") != std::string::npos);
  CHECK_FALSE(dv::parse_id_pattern("bulb-{idx}", error));
  CHECK(error == "unknown placeholder {idx}; this text may use {index}, {index:05}, {profile}");
  CHECK_FALSE(dv::parse_id_pattern("bulb-{id}-{index}", error));
  CHECK(error.starts_with("placeholder {id} cannot be used here"));
  CHECK_FALSE(dv::parse_id_pattern("bulb-{index", error));
  CHECK(error.find("unclosed") != std::string::npos);
  CHECK_FALSE(dv::parse_id_pattern("bulb}-{index}", error));
  CHECK(error.find("unmatched '}'") != std::string::npos);
}

TEST_CASE("choices are stable per device seed and spread over devices", "[device][template]") {
  const auto t = parse("{choice:lab,plant,office}", dv::label_placeholders);
  std::set<std::string> seen;
  for (std::uint64_t seed = 0; seed < 100; ++seed) {
    dv::template_context ctx;
    ctx.seed = seed;
    const auto a = t.expand(ctx);
    CHECK(a == t.expand(ctx));
    seen.insert(a);
  }
  CHECK(seen == std::set<std::string>{"lab", "office", "plant"});
}

TEST_CASE("topics, literal braces and responses", "[device][template]") {
  dv::template_context ctx;
  ctx.id = "rpi-00001";
  ctx.profile = "raspberry-pi";
  ctx.message = "bme280";
  CHECK(parse("twinfleet/{profile}/{id}/{message}", dv::topic_placeholders).expand(ctx) == "twinfleet/raspberry-pi/rpi-00001/bme280");
  CHECK(parse("{{literal}}", dv::topic_placeholders).expand(ctx) == "{literal}");

  const json::value request = json::parse(R"({"times": 3, "text": "hi"})");
  ctx.request = &request;
  const json::value tmpl = json::parse(R"({"times": "{request.times}", "echo": "{request}", "msg": "{id} says {request.text}", "n": [1, "{request.missing}"]})");
  std::string error;
  CHECK(dv::check_json_template(tmpl, dv::response_placeholders, error));
  const auto out = dv::render_json_template(tmpl, ctx);
  CHECK(out.at("times") == json::value(3));  // a number stays a number
  CHECK(out.at("echo") == request);
  CHECK(out.at("msg") == json::value("rpi-00001 says hi"));
  CHECK(out.at("n").as_array()[1].is_null());

  CHECK_FALSE(dv::check_json_template(json::parse(R"({"a": {"b": "{bogus}"}})"), dv::response_placeholders, error));
  CHECK(error.starts_with("a.b: unknown placeholder {bogus}"));
}
