// The profile and scenario loaders: shipped files load, bad files give every error at once
// with file:line:column and the key path.
#include <twinfleet/scenario/plan.hpp>
#include <twinfleet/scenario/profile_loader.hpp>
#include <twinfleet/scenario/scenario_loader.hpp>

#include "test_data.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

namespace fs = std::filesystem;
namespace sc = twinfleet::scenario;
namespace dv = twinfleet::device;
namespace config = twinfleet::config;
using namespace std::chrono_literals;
using twinfleet::test::data_dir;

namespace {

fs::path repo() { return (data_dir() / ".." / "..").lexically_normal(); }

std::vector<fs::path> yaml_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".yaml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> lines(const config::diagnostics& d) {
  std::vector<std::string> out;
  for (const auto& x : d.items()) out.push_back(x.to_string());
  return out;
}

sc::load_options shipped_profiles() { return sc::load_options{{repo() / "device-profiles"}}; }

}  // namespace

TEST_CASE("every shipped profile loads without errors", "[scenario][shipped]") {
  const auto files = yaml_files(repo() / "device-profiles");
  REQUIRE(files.size() >= 4);
  for (const auto& f : files) {
    CAPTURE(f);
    config::diagnostics diags;
    const auto p = sc::load_profile(f, diags);
    INFO(diags.to_string());
    REQUIRE(p);
    CHECK(p->name == f.stem().string());
    CHECK(sc::detect_file_kind(f) == sc::file_kind::profile);
    CHECK_FALSE(p->quirks.any());  // quirks are off in shipped profiles
  }
}

TEST_CASE("every shipped scenario loads without errors", "[scenario][shipped]") {
  const auto files = yaml_files(repo() / "scenarios");
  REQUIRE(files.size() >= 2);
  for (const auto& f : files) {
    CAPTURE(f);
    config::diagnostics diags;
    const auto s = sc::load_scenario(f, diags);  // default profile dirs: ../device-profiles
    INFO(diags.to_string());
    REQUIRE(s);
    CHECK(sc::detect_file_kind(f) == sc::file_kind::scenario);
    CHECK(s->device_count() > 0);
    CHECK(s->total_duration() > 0s);
  }
}

TEST_CASE("the shipped profiles have what issue 4 asks of them", "[scenario][shipped]") {
  config::diagnostics diags;
  const auto bulb = sc::load_profile(repo() / "device-profiles/lightbulb.yaml", diags);
  const auto thermo = sc::load_profile(repo() / "device-profiles/thermostat.yaml", diags);
  const auto pi = sc::load_profile(repo() / "device-profiles/raspberry-pi.yaml", diags);
  const auto kit = sc::load_profile(repo() / "device-profiles/mxchip-devkit.yaml", diags);
  REQUIRE(diags.empty());
  CHECK(bulb->find_desired("on"));
  CHECK(bulb->find_desired("brightness"));
  CHECK(bulb->find_desired("colour"));
  CHECK(bulb->find_command("blink"));
  CHECK(bulb->device_id(42) == "bulb-00042");
  CHECK(thermo->find_desired("target_temperature"));
  CHECK(thermo->find_desired("mode"));
  const auto* temperature = thermo->find_reported("temperature");
  REQUIRE(temperature);
  CHECK(*dv::desired_dependency(temperature->generator) == "target_temperature");
  const auto* bme = pi->find_telemetry("bme280");
  REQUIRE(bme);
  CHECK(bme->every_from == "send_interval");
  CHECK(bme->every == dv::duration_distribution::constant(2s));
  CHECK(std::holds_alternative<dv::blink_effect>(bme->on_send.at(0)));
  CHECK(pi->find_command("start"));
  CHECK(pi->find_command("stop"));
  CHECK(kit->find_desired("rgb_led")->schema.type == dv::value_type::object);
  CHECK(kit->find_command("display"));
  CHECK(kit->find_telemetry("button_a"));
  CHECK(kit->find_telemetry("button_b"));
  CHECK(kit->find_telemetry("sensors")->fields.size() == 12);
  CHECK(thermo->identity.aws.groups == std::vector<std::vector<std::string>>{{"building-43"}, {"building-43", "floor-1"}});
}

TEST_CASE("a bad profile reports every error with its position and key path", "[scenario][profile][errors]") {
  config::diagnostics diags;
  const auto file = data_dir() / "yaml/bad-profile.yaml";
  CHECK_FALSE(sc::load_profile(file, diags, "bad-profile.yaml"));
  diags.sort();
  const std::vector<std::string> expected = {
      "bad-profile.yaml:4:7: identity.id: unknown placeholder {idx}; this text may use {index}, {index:05}, {profile}",
      "bad-profile.yaml:6:59: desired.brightness.initial: the initial value does not fit the property: must lie in [0, 100], got 150",
      "bad-profile.yaml:7:17: desired.mode.type: unknown value 'strng' (did you mean 'string'?); expected one of: boolean, integer, number, string, object",
      "bad-profile.yaml:9:59: reported.power.evry: unknown key 'evry' (did you mean 'every'?)",
      "bad-profile.yaml:10:10: reported.level: refers to desired property 'brightnes', which the profile does not have (desired: brightness)",
      "bad-profile.yaml:13:14: commands.blink.latency: a duration needs a unit (ns, us, ms, s, m, h, d), such as 50ms or 50s; got 50",
      "bad-profile.yaml:18:10: telemetry.main.fields.p: refers to reported property 'pwr', which the profile does not have",
      "bad-profile.yaml:20:15: lifecycle.keep_alive: 0s is out of range: must lie in [1s, 65535s]",
      "bad-profile.yaml:22:30: quirks.no_reconcile_on_reconnect: expected true or false, got 'yes' (YAML 1.2 reads yes/no/on/off as strings)",
  };
  CHECK(lines(diags) == expected);
}

TEST_CASE("profile cross-checks", "[scenario][profile][errors]") {
  auto errors = [](std::string_view text) {
    config::diagnostics diags;
    CHECK_FALSE(sc::load_profile_string(text, "p.yaml", diags));
    return lines(diags);
  };
  CHECK(errors("desired: { on: { type: boolean } }\nreported: { on: { constant: true } }\n") ==
        std::vector<std::string>{"p.yaml:2:17: reported.on: 'on' is also a desired property: a writable property reports "
                                 "itself through its acknowledgement, so list it under desired only"});
  CHECK(errors("reported: { x: { every: 5s } }\n") ==
        std::vector<std::string>{"p.yaml:1:16: reported.x: needs a generator: one of constant, walk, sine, uniform, cycle, counter, mirror"});
  CHECK(errors("reported: { x: { constant: 1, counter: {} } }\n") ==
        std::vector<std::string>{"p.yaml:1:40: reported.x.counter: 'constant' and 'counter' exclude each other; give only one"});
  CHECK(errors("reported: { x: { walk: { start: 50, step: 1, min: 0, max: 10 } } }\n") ==
        std::vector<std::string>{"p.yaml:1:33: reported.x.walk.start: must lie in [min, max] = [0, 10]"});
  CHECK(errors("commands: { blink: { effects: [ { blink: led } ] } }\n") ==
        std::vector<std::string>{"p.yaml:1:31: commands.blink.effects: blink: the profile has no boolean property 'led' "
                                 "(add it under reported, e.g. { constant: false })"});
  CHECK(errors("desired: { i: { type: integer } }\ntelemetry: { t: { every: desired.i, fields: { a: 1 } } }\n") ==
        std::vector<std::string>{"p.yaml:2:26: telemetry.t.every: desired property 'i' has no unit (add unit: ms, s, m or h) so it cannot give an interval"});
  CHECK(errors("identity: { aws: { groups: [\"a/b c\"] } }\n") ==
        std::vector<std::string>{"p.yaml:1:29: identity.aws.groups[0]: 'b c' is not a valid thing group name (1 to 128 of letters, "
                                 "digits, ':', '_', '-'; '/' separates a group from its parent)"});
  CHECK(errors("desired: { s: { type: string, min: 1 } }\n") ==
        std::vector<std::string>{"p.yaml:1:36: desired.s.min: applies to integer and number properties only, not string"});
}

TEST_CASE("a bad scenario reports every error, including cross-references", "[scenario][errors]") {
  config::diagnostics diags;
  const auto file = data_dir() / "yaml/bad-scenario.yaml";
  CHECK_FALSE(sc::load_scenario(file, diags, shipped_profiles()));
  diags.sort();
  const std::string f = file.string();
  const std::vector<std::string> expected = {
      f + ":2:7: seed: expected a non-negative integer, got '-1'",
      f + ":3:43: target.connection_string: not an IoT Hub service connection string: no SharedAccessKeyName= "
          "(expected HostName=…;SharedAccessKeyName=…;SharedAccessKey=…, or env:NAME)",
      f + ":5:16: fleet[0].profile: unknown profile 'lightbulp' (did you mean 'lightbulb'?); looked for lightbulp.yaml in " +
          (repo() / "device-profiles").string(),
      f + ":6:35: fleet[1].count: 0 is out of range: must lie in [1, 1000000]",
      f + ":6:63: fleet[1].shadows: shadows apply to the aws dialect only (Azure devices have one twin)",
      f + ":7:71: fleet[2].shadows[1]: 'bad name' is not a valid shadow name (1 to 64 of letters, digits, '$', ':', '_', '-'; write classic for the unnamed shadow)",
      f + ":8:5: fleet[3]: device id 'thermo-00000' is also made by fleet[2]; give this entry its own id pattern (id: …) or a first_index past the other's",
      f + ":9:32: ramp.duration: 'rate' and 'duration' exclude each other; give only one",
      f + ":14:50: phases[0].backend.desired_writes.properties[0]: no profile in the fleet has a desired property 'target_temperatur' (did you mean 'target_temperature'?)",
      f + ":16:11: faults[0].at: 45s is past the end of the phases (30s)",
      f + ":18:19: thresholds.reported_patch: a latency bound needs a unit, as in 50ms",
      f + ":19:16: thresholds.convergence: a convergence ratio needs a deadline, as in \"ratio >= 0.999 within 5s\"",
      f + ":20:41: aws_observer.shadows_per_connection: 51 is out of range: must lie in [0, 50]",
  };
  CHECK(lines(diags) == expected);
}

TEST_CASE("a profile referenced by path and overrides per fleet entry", "[scenario]") {
  twinfleet::test::temp_dir dir;
  fs::create_directories(dir.path() / "profiles");
  fs::copy_file(repo() / "device-profiles/lightbulb.yaml", dir.path() / "profiles/bulb.yaml");
  config::diagnostics diags;
  const auto s = sc::load_scenario_string(R"(
fleet:
  - { profile: profiles/bulb.yaml, count: 3 }
  - profile: profiles/bulb.yaml
    count: 2
    id: "racy-{index:03}"
    overrides: { quirks: { no_reconcile_on_reconnect: true }, lifecycle: { keep_alive: 30s } }
phases: [ { name: only, duration: 10s } ]
)", (dir.path() / "s.yaml").string(), diags);
  INFO(diags.to_string());
  REQUIRE(s);
  REQUIRE(s->fleet.size() == 2);
  CHECK_FALSE(s->fleet[0].profile->quirks.any());
  CHECK(s->fleet[1].profile->quirks.no_reconcile_on_reconnect);
  CHECK(s->fleet[1].profile->lifecycle.keep_alive == 30s);
  CHECK(s->fleet[0].profile->lifecycle.keep_alive == 60s);
  CHECK(std::holds_alternative<sc::local_target>(s->target));
  CHECK(s->seed == 1);

  const auto devices = sc::expand_fleet(*s);
  REQUIRE(devices.size() == 5);
  CHECK(devices[0].id == "bulb-00000");
  CHECK(devices[2].id == "bulb-00002");
  CHECK(devices[3].id == "racy-000");
  CHECK(devices[4].entry == 1);
  CHECK(devices[4].index == 4);
  std::set<std::uint64_t> seeds;
  for (const auto& d : devices) seeds.insert(d.seed);
  CHECK(seeds.size() == devices.size());
  // The same scenario and seed give the same plan.
  CHECK(sc::expand_fleet(*s)[3].seed == devices[3].seed);
}

TEST_CASE("thresholds as a map or as a list of full conditions", "[scenario][threshold]") {
  config::diagnostics diags;
  const auto s = sc::load_scenario_string(R"(
fleet: [ { profile: lightbulb, count: 1 } ]
phases: [ { name: p, duration: 1s } ]
thresholds: ["anomalies.lost_update == 0", "reported_patch p99 < 20ms", "bogus > 1"]
)", "t.yaml", diags, shipped_profiles());
  CHECK_FALSE(s);
  REQUIRE(diags.size() == 1);
  CHECK(diags.items()[0].to_string().starts_with("t.yaml:4:73: thresholds[2]: unknown metric 'bogus'"));

  config::diagnostics ok_diags;
  const auto ok = sc::load_scenario_string(R"(
fleet: [ { profile: lightbulb, count: 1 } ]
phases: [ { name: p, duration: 1s } ]
thresholds:
  connect: [p50 < 20ms, p99 < 200ms]
  anomalies.lost_update: == 0
)", "t.yaml", ok_diags, shipped_profiles());
  INFO(ok_diags.to_string());
  REQUIRE(ok);
  REQUIRE(ok->thresholds.size() == 3);
  CHECK(ok->thresholds[1].percentile == 99);
  CHECK(ok->thresholds[2].metric == "anomalies.lost_update");
}

TEST_CASE("targets", "[scenario]") {
  config::diagnostics diags;
  const auto s = sc::load_scenario_string(R"(
target:
  type: aws
  endpoint: abc-ats.iot.eu-west-1.amazonaws.com
  ca: certs/ca.pem
  certificate_dir: certs/devices
  access_key_id: env:AWS_KEY
  secret_access_key: env:AWS_SECRET
fleet: [ { profile: thermostat, count: 1, dialect: aws, shadows: [classic, cfg] } ]
phases: [ { name: p, duration: 1s } ]
aws_observer: { shadows_per_connection: 25 }
)", "/tmp/x/s.yaml", diags, shipped_profiles());
  INFO(diags.to_string());
  REQUIRE(s);
  const auto& aws = std::get<sc::aws_target>(s->target);
  CHECK(aws.region == "eu-west-1");
  CHECK(aws.ca == "/tmp/x/certs/ca.pem");
  CHECK(aws.certificate_dir == "/tmp/x/certs/devices");
  CHECK(s->fleet[0].shadows == std::vector<std::string>{"", "cfg"});
  CHECK(s->aws_observer.shadows_per_connection == 25);

  // Eight shadows: more subscriptions than one AWS connection holds.
  config::diagnostics many;
  CHECK_FALSE(sc::load_scenario_string(
      "fleet: [ { profile: thermostat, count: 1, dialect: aws, shadows: [classic, a, b, c, d, e, f, g] } ]\n"
      "phases: [ { name: p, duration: 1s } ]\n",
      "m.yaml", many, shipped_profiles()));
  CHECK(lines(many) == std::vector<std::string>{
                           "m.yaml:1:66: fleet[0].shadows: 8 shadows take 57 subscriptions on a device's connection (7 a "
                           "shadow, 1 for commands); AWS IoT allows 50: at most 7 shadows a device"});

  config::diagnostics bad;
  CHECK_FALSE(sc::load_scenario_string("target: azure\nfleet: [ { profile: lightbulb, count: 1 } ]\nphases: [ { name: p, duration: 1s } ]\n",
                                       "t.yaml", bad, shipped_profiles()));
  CHECK(lines(bad) == std::vector<std::string>{
                          "t.yaml:1:9: target: target azure needs settings: write target: { type: azure, connection_string: env:IOTHUB_CONNECTION_STRING }"});
  ::setenv("TWINFLEET_TEST_SECRET", "s3cret", 1);
  CHECK(sc::resolve_secret("env:TWINFLEET_TEST_SECRET") == "s3cret");
  CHECK(sc::resolve_secret("literal") == "literal");
  CHECK_FALSE(sc::resolve_secret("env:TWINFLEET_TEST_UNSET_VARIABLE"));
}

TEST_CASE("ramp schedule and phase timeline", "[scenario][plan]") {
  sc::ramp_spec ramp;
  ramp.rate = 100;
  const auto even = sc::ramp_schedule(ramp, 5, 1);
  CHECK(even == std::vector<sc::duration>{0ms, 10ms, 20ms, 30ms, 40ms});
  ramp.jitter = 0.5;
  const auto a = sc::ramp_schedule(ramp, 1000, 9);
  CHECK(a == sc::ramp_schedule(ramp, 1000, 9));
  CHECK(a != sc::ramp_schedule(ramp, 1000, 10));
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto ideal = std::chrono::duration<double, std::milli>(10.0 * static_cast<double>(i));
    REQUIRE(a[i] >= 0ns);
    REQUIRE(std::abs((std::chrono::duration<double, std::milli>(a[i]) - ideal).count()) <= 5.0 + 1e-6);
  }
  sc::ramp_spec over;
  over.over = 10s;
  CHECK(sc::ramp_rate(over, 1000) == Approx(100));
  CHECK(sc::ramp_schedule(over, 1000, 1).back() == 9990ms);

  config::diagnostics diags;
  const auto s = sc::load_scenario(repo() / "scenarios/quickstart.yaml", diags);
  REQUIRE(s);
  const auto timeline = sc::phase_timeline(*s);
  REQUIRE(timeline.size() == 3);
  CHECK(timeline[1].start == 15s);
  CHECK(timeline[1].end == 75s);
  CHECK(sc::phase_at(*s, 20s)->name == "steady");
  CHECK(sc::phase_at(*s, 90s) == nullptr);
  const auto& writes = s->phases[1].backend.desired_writes;
  CHECK(writes.per_second(sc::eligible_for_writes(*s, writes)) == Approx(100));
  CHECK(sc::eligible_for_writes(*s, writes) == 1000);  // every profile has one of the properties
  CHECK(sc::eligible_for_methods(*s, s->phases[1].backend.method_calls) == 800);  // not the devkits
  CHECK(s->device_count() == 1000);
}

TEST_CASE("overrides (--set) change the YAML before it is read, and are checked like it", "[scenario][overrides]") {
  auto options = shipped_profiles();
  {
    config::diagnostics plain;
    const auto d = sc::load_scenario(repo() / "scenarios/quickstart.yaml", plain, options);
    REQUIRE(d);
    CHECK(d->ramp.max_connecting == 500);  // the default
  }
  options.overrides = {{"seed", "77"},          {"phases[1].duration", "5s"},    {"ramp.jitter", "0.25"},
                       {"fleet.0.count", "3"}, {"ramp.max_connecting", "250"}};
  config::diagnostics diags;
  const auto s = sc::load_scenario(repo() / "scenarios/quickstart.yaml", diags, options);
  INFO(diags.to_string());
  REQUIRE(s);
  CHECK(s->seed == 77);
  CHECK(s->phases[1].length == 5s);
  CHECK(s->ramp.jitter == Approx(0.25));
  CHECK(s->fleet[0].count == 3);
  CHECK(s->ramp.max_connecting == 250);

  // Each bad override is an error naming it; a wrong value is checked like one in the file.
  options.overrides = {{"phases.9.duration", "5s"}, {"seed.x", "1"}, {"ramp.jitter", "2"}, {"", "1"}, {"name", "[unclosed"}};
  config::diagnostics bad;
  CHECK_FALSE(sc::load_scenario(repo() / "scenarios/quickstart.yaml", bad, options));
  const auto text = bad.to_string();
  INFO(text);
  CHECK(text.find("--set phases.9.duration: phases: '9' is not an index of this list of 3") != std::string::npos);
  CHECK(text.find("--set seed.x: seed: is not a map") != std::string::npos);
  CHECK(text.find("--set : expected a key path") != std::string::npos);
  CHECK(text.find("--set name: the value is not YAML") != std::string::npos);
  // ramp.jitter 2 is out of range: reported by the loader once the syntax of every --set is fine.
  options.overrides = {{"ramp.jitter", "2"}};
  config::diagnostics range;
  CHECK_FALSE(sc::load_scenario(repo() / "scenarios/quickstart.yaml", range, options));
  CHECK(range.to_string().find("ramp.jitter") != std::string::npos);
  options.overrides = {{"ramp.max_connecting", "-1"}};
  config::diagnostics negative;
  CHECK_FALSE(sc::load_scenario(repo() / "scenarios/quickstart.yaml", negative, options));
  INFO(negative.to_string());
  CHECK(negative.to_string().find("ramp.max_connecting: -1 is out of range") != std::string::npos);
}

TEST_CASE("the AWS shadow documents the back end's writes make, per shadow, at the busiest phase", "[scenario][plan]") {
  const auto load = [](const std::string& text) {
    config::diagnostics diags;
    auto s = sc::load_scenario_string(text, "d.yaml", diags, shipped_profiles());
    INFO(diags.to_string());
    REQUIRE(s);
    return *s;
  };
  // 10 things with 2 shadows beside 10 Azure devices: the things take half the writes.
  const auto s = load(R"(
fleet:
  - { profile: lightbulb, count: 10, dialect: aws, shadows: [classic, cfg] }
  - { profile: lightbulb, count: 10, id: "az-{index}" }
phases:
  - { name: a, duration: 1s, backend: { desired_writes: 40/s } }
  - { name: b, duration: 1s, backend: { desired_writes: { rate: 5/s, per: device } } }
  - { name: c, duration: 1s }
)");
  // Phase b: 100 writes/s, 50 to the things, a document each and one for each acknowledgement,
  // over 20 shadows.
  CHECK(sc::aws_write_documents_per_shadow(s) == Approx(5.0));
  CHECK(sc::aws_command_calls_per_second(s) == 0);  // no method calls
  // Commands: half of 30 calls a second go to the things (both profiles have blink).
  CHECK(sc::aws_command_calls_per_second(load(R"(
fleet:
  - { profile: lightbulb, count: 10, dialect: aws }
  - { profile: lightbulb, count: 10, id: "az-{index}" }
phases: [ { name: a, duration: 1s, backend: { method_calls: 30/s } } ]
)")) == Approx(15.0));
  CHECK(sc::aws_write_documents_per_shadow(load(R"(
fleet: [ { profile: lightbulb, count: 10 } ]
phases: [ { name: a, duration: 1s, backend: { desired_writes: 40/s } } ]
)")) == 0);
}

TEST_CASE("scale_fleet (--devices) keeps each entry's share", "[scenario][plan]") {
  config::diagnostics diags;
  auto s = sc::load_scenario(repo() / "scenarios/quickstart.yaml", diags, shipped_profiles());
  REQUIRE(s);
  std::vector<std::uint64_t> before;
  for (const auto& e : s->fleet) before.push_back(e.count);
  const auto total = s->device_count();
  sc::scale_fleet(*s, 101);
  CHECK(s->device_count() == 101);
  for (std::size_t e = 0; e < s->fleet.size(); ++e) {
    const double ideal = static_cast<double>(before[e]) * 101.0 / static_cast<double>(total);
    CHECK(std::abs(static_cast<double>(s->fleet[e].count) - ideal) < 1.0);
  }
  sc::scale_fleet(*s, 20000);
  CHECK(s->device_count() == 20000);
  CHECK(sc::expand_fleet(*s).size() == 20000);
}
