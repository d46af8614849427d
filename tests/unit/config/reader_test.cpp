// The YAML reading toolkit: typed getters, key paths, locations and every error at once.
#include <twinfleet/config/reader.hpp>
#include <twinfleet/config/units.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace config = twinfleet::config;
using namespace std::chrono_literals;

namespace {

// Loads `text` as "t.yaml"; the test reads through the root and then inspects diags.
struct loaded {
  config::diagnostics diags;
  std::optional<config::document> doc;
  explicit loaded(std::string_view text) : doc(config::document::load_string(text, "t.yaml", diags)) {}
  config::node root() const { return doc->root(); }
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    for (const auto& d : diags.items()) out.push_back(d.to_string());
    return out;
  }
};

}  // namespace

TEST_CASE("durations, rates and percentages parse in every documented form", "[config][units]") {
  CHECK(config::parse_duration("250ms") == 250ms);
  CHECK(config::parse_duration("5s") == 5s);
  CHECK(config::parse_duration("2m") == 2min);
  CHECK(config::parse_duration("2min") == 2min);
  CHECK(config::parse_duration("1h30m") == 90min);
  CHECK(config::parse_duration("1.5s") == 1500ms);
  CHECK(config::parse_duration("100us") == 100us);
  CHECK(config::parse_duration(" 0 ") == 0ns);
  CHECK(config::parse_duration("1d") == 24h);
  CHECK_FALSE(config::parse_duration("250"));
  CHECK_FALSE(config::parse_duration("-5s"));
  CHECK_FALSE(config::parse_duration("5 parsecs"));
  CHECK_FALSE(config::parse_duration(""));
  CHECK_FALSE(config::parse_duration("ms"));

  CHECK(config::parse_rate("100/s") == Approx(100));
  CHECK(config::parse_rate("6/m") == Approx(0.1));
  CHECK(config::parse_rate("36/h") == Approx(0.01));
  CHECK(config::parse_rate("0.5/s") == Approx(0.5));
  CHECK(config::parse_rate("0") == Approx(0));
  CHECK_FALSE(config::parse_rate("100"));
  CHECK_FALSE(config::parse_rate("100/fortnight"));
  CHECK_FALSE(config::parse_rate("/s"));

  CHECK(config::parse_percent("12.5%") == Approx(0.125));
  CHECK(config::parse_percent("100 %") == Approx(1.0));
  CHECK_FALSE(config::parse_percent("12.5"));

  CHECK(config::format_duration(1500ms) == "1500ms");
  CHECK(config::format_duration(2min) == "2m");
  CHECK(config::format_duration(0ns) == "0s");
  for (std::chrono::nanoseconds d : {std::chrono::nanoseconds(1ns), std::chrono::nanoseconds(7us), std::chrono::nanoseconds(250ms),
                                     std::chrono::nanoseconds(5s), std::chrono::nanoseconds(90s), std::chrono::nanoseconds(3h)}) {
    CHECK(config::parse_duration(config::format_duration(d)) == d);
  }
}

TEST_CASE("typed getters read good values", "[config][reader]") {
  loaded l(R"(n: 42
hex: 0x1F
x: 1.5
b: true
d: 250ms
r: 100/s
p: 12.5%
f: 0.25
e: aws
s: hello
q: '5'
list: [a, b]
one: solo
seed: 18446744073709551615
)");
  auto m = l.root().map();
  CHECK(m.get("n").as_int() == 42);
  CHECK(m.get("hex").as_int() == 31);
  CHECK(m.get("x").as_double() == Approx(1.5));
  CHECK(m.get("n").as_double() == Approx(42));
  CHECK(m.get("b").as_bool() == true);
  CHECK(m.get("d").as_duration() == 250ms);
  CHECK(m.get("r").as_rate() == Approx(100));
  CHECK(m.get("p").as_fraction() == Approx(0.125));
  CHECK(m.get("f").as_fraction() == Approx(0.25));
  CHECK(m.get("e").as_enum({"azure", "aws"}) == 1u);
  CHECK(m.get("s").as_string() == "hello");
  CHECK(m.get("q").as_string() == "5");
  CHECK(m.get("q").is_quoted());
  CHECK(m.get("list").as_string_list() == std::vector<std::string>{"a", "b"});
  CHECK(m.get("one").as_string_list() == std::vector<std::string>{"solo"});
  CHECK(m.get("seed").as_uint64() == 18446744073709551615ULL);
  CHECK_FALSE(m.get("absent").as_int());  // absent: nothing, and no error
  m.finish();
  CHECK(l.diags.empty());
}

TEST_CASE("each kind of error names file, line, column and key path", "[config][reader]") {
  loaded l(R"(server:
  port: 70000
  host: [a, b]
  every: 250
  rate: 100
  enabled: yes
  mode: fsat
  share: 150%
  count: '12'
  prot: 1
fleet:
  - profile: x
  - {}
)");
  auto top = l.root().map();
  auto server = top.get("server").map();
  (void)server.get("port").as_int(1, 65535);
  (void)server.get("host").as_string();
  (void)server.get("every").as_duration();
  (void)server.get("rate").as_rate();
  (void)server.get("enabled").as_bool();
  (void)server.get("mode").as_enum({"fast", "slow"});
  (void)server.get("share").as_fraction();
  (void)server.get("count").as_int();
  (void)server.get("port");
  server.finish();
  const auto fleet = top.get("fleet").items();
  REQUIRE(fleet.size() == 2);
  for (const auto& entry : fleet) {
    auto e = entry.map();
    (void)e.require("profile").as_string();
  }
  top.finish();

  const std::vector<std::string> expected = {
      "t.yaml:2:9: server.port: 70000 is out of range: must lie in [1, 65535]",
      "t.yaml:3:9: server.host: expected a string, got a sequence",
      "t.yaml:4:10: server.every: a duration needs a unit (ns, us, ms, s, m, h, d), such as 250ms or 250s; got 250",
      "t.yaml:5:9: server.rate: a rate needs a unit of time, such as 100/s; got 100",
      "t.yaml:6:12: server.enabled: expected true or false, got 'yes' (YAML 1.2 reads yes/no/on/off as strings)",
      "t.yaml:7:9: server.mode: unknown value 'fsat' (did you mean 'fast'?); expected one of: fast, slow",
      "t.yaml:8:10: server.share: 150% is out of range: must lie in [0%, 100%]",
      "t.yaml:9:10: server.count: expected an integer, got the string '12'",
      "t.yaml:10:3: server.prot: unknown key 'prot' (did you mean 'port'?)",
      "t.yaml:13:5: fleet[1]: missing required key 'profile'",
  };
  CHECK(l.lines() == expected);
}

TEST_CASE("unknown keys without a close match list the known keys", "[config][reader]") {
  loaded l("alpha: 1\nzzz: 2\n");
  auto m = l.root().map();
  (void)m.get("alpha").as_int();
  (void)m.get("beta").as_int();
  m.finish();
  REQUIRE(l.diags.size() == 1);
  CHECK(l.diags.items()[0].to_string() == "t.yaml:2:1: zzz: unknown key 'zzz'; expected one of: alpha, beta");
}

TEST_CASE("duplicate keys, wrong containers and syntax errors are reported", "[config][reader]") {
  SECTION("a duplicated key") {
    loaded l("a: 1\nb: 2\na: 3\n");
    auto m = l.root().map();
    CHECK(m.get("a").as_int() == 1);
    (void)m.get("b");
    m.finish();
    REQUIRE(l.diags.size() == 1);
    CHECK(l.diags.items()[0].to_string() == "t.yaml:3:1: a: duplicate key 'a' (first at line 1); remove one");
  }
  SECTION("a map where a list belongs and a list where a map belongs") {
    loaded l("items: {a: 1}\nconf: [1]\n");
    auto m = l.root().map();
    CHECK(m.get("items").items().empty());
    auto conf = m.get("conf").map();
    m.finish();
    CHECK(l.lines() == std::vector<std::string>{"t.yaml:1:8: items: expected a sequence, got a map",
                                                "t.yaml:2:7: conf: expected a map, got a sequence"});
  }
  SECTION("a syntax error stops the load with its position") {
    config::diagnostics diags;
    CHECK_FALSE(config::document::load_string("a: [1, 2\nb: 3\n", "s.yaml", diags));
    REQUIRE(diags.size() == 1);
    CHECK(diags.items()[0].file == "s.yaml");
    CHECK(diags.items()[0].line == 2);
    CHECK(diags.items()[0].message.starts_with("YAML syntax error: "));
  }
  SECTION("two documents in one file") {
    config::diagnostics diags;
    CHECK_FALSE(config::document::load_string("a: 1\n---\nb: 2\n", "m.yaml", diags));
    REQUIRE(diags.size() == 1);
    CHECK(diags.items()[0].to_string() == "m.yaml: holds 2 YAML documents (separated by ---); one file holds one");
  }
  SECTION("an unreadable file") {
    config::diagnostics diags;
    CHECK_FALSE(config::document::load_file("/nonexistent/x.yaml", diags));
    REQUIRE(diags.size() == 1);
    CHECK(diags.items()[0].to_string().starts_with("/nonexistent/x.yaml: cannot read the file: "));
  }
}

TEST_CASE("an empty value points at its key", "[config][reader]") {
  loaded l("a:\nb: 1\n");
  auto m = l.root().map();
  (void)m.get("a").as_int();
  (void)m.get("b");
  m.finish();
  CHECK(l.lines() == std::vector<std::string>{"t.yaml:1:1: a: expected an integer, got an empty value"});
}

TEST_CASE("as_json reads YAML 1.2 core scalars", "[config][reader]") {
  loaded l("v: {i: 3, d: 2.5, t: true, n: null, s: text, q: '7', l: [1, off]}\n");
  auto m = l.root().map();
  const auto v = m.get("v").as_json();
  REQUIRE(v);
  const auto& o = v->as_object();
  CHECK(o.at("i").as_int64() == 3);
  CHECK(o.at("d").as_double() == 2.5);
  CHECK(o.at("t").as_bool());
  CHECK(o.at("n").is_null());
  CHECK(o.at("s").as_string() == "text");
  CHECK(o.at("q").as_string() == "7");
  CHECK(o.at("l").as_array()[1].as_string() == "off");
  m.finish();
  CHECK(l.diags.empty());
}

TEST_CASE("at_most_one_of and closest_match", "[config][reader]") {
  loaded l("ramp: {rate: 10/s, duration: 5s}\n");
  auto m = l.root().map();
  auto ramp = m.get("ramp").map();
  CHECK(ramp.at_most_one_of({"rate", "duration"}) == 2);
  (void)ramp.get("rate");
  ramp.finish();
  m.finish();
  CHECK(l.lines() == std::vector<std::string>{"t.yaml:1:30: ramp.duration: 'rate' and 'duration' exclude each other; give only one"});

  CHECK(config::closest_match("evry", {"every", "on"}) == "every");
  CHECK(config::closest_match("keep-alive", {"keep_alive"}) == "keep_alive");
  CHECK(config::closest_match("xyz", {"every", "on"}).empty());
  CHECK(config::edit_distance("kitten", "sitting") == 3);
}
