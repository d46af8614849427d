// hub.yaml: every knob read into the hub's settings, every mistake reported at once with
// file:line:column and key path.
#include <twinfleet/hub/hub_config.hpp>

#include <catch2/catch.hpp>

using namespace twinfleet;
using namespace std::chrono_literals;

namespace {

struct loaded {
  hub::hub_file_config config;
  config::diagnostics diags;
};

loaded load(std::string_view yaml) {
  loaded out;
  auto doc = config::document::load_string(yaml, "hub.yaml", out.diags);
  REQUIRE(doc.has_value());
  out.config = hub::read_hub_config(doc->root());
  return out;
}

}  // namespace

TEST_CASE("hub.yaml: listeners, auth, faults and throttling", "[hub][config]") {
  const auto r = load(R"(
hub_name: myhub.local
auth: strict
state_file: state.jsonl
listen: {mqtts: 127.0.0.1:9883, https: "off", mqtt: 127.0.0.2:1883}
faults:
  seed: 9
  delivery:
    - kinds: [azure.desired_patch, aws.delta]
      delay: 20ms
      jitter: 1s
      drop: 1%
      duplicate: 0.5
      reorder: 2%
      reorder_hold: 70ms
  aws_swap_accepted_delta: 50%
  azure_skip_desired_versions: 10%
  azure_skip_max: 4
  subscription_activation_delay: 200ms
  reported_reorder: 5%
  reported_reorder_hold: 300ms
  takeover_grace: 250ms
  disconnects: 30/m
  disconnect_schedule:
    - {at: 1m, fraction: 10%, backend: aws}
    - {at: 30s, fraction: 5%}
throttle:
  azure_tier: S2
  azure_units: 10
  azure_twin_updates: {rate: 7/s, queue: 3}
  aws: true
  aws_shadow_account: {rate: 400/s, burst: 100, queue: 50}
)");
  INFO(r.diags.to_string());
  REQUIRE(r.diags.empty());
  const auto& c = r.config;
  CHECK(c.hub_name == "myhub.local");
  CHECK(c.auth == "strict");
  CHECK(c.state_file == "state.jsonl");
  CHECK(c.listen.at("mqtts") == "127.0.0.1:9883");
  CHECK(c.listen.at("https") == "off");
  CHECK(c.listen.at("mqtt") == "127.0.0.2:1883");
  REQUIRE(c.faults.has_value());
  const auto& f = *c.faults;
  CHECK(f.seed == 9);
  REQUIRE(f.delivery.size() == 1);
  CHECK(f.delivery[0].kinds == std::vector{hub::outbound_kind::azure_desired_patch, hub::outbound_kind::aws_delta});
  CHECK(f.delivery[0].delay == 20ms);
  CHECK(f.delivery[0].jitter == 1s);
  CHECK(f.delivery[0].drop == Approx(0.01));
  CHECK(f.delivery[0].duplicate == Approx(0.5));
  CHECK(f.delivery[0].reorder_hold == 70ms);
  CHECK(f.aws_swap_accepted_delta == Approx(0.5));
  CHECK(f.azure_skip_max == 4);
  CHECK(f.subscription_activation_delay == 200ms);
  CHECK(f.reported_reorder == Approx(0.05));
  CHECK(f.reported_reorder_hold == 300ms);
  CHECK(f.takeover_grace == 250ms);
  CHECK(f.disconnects_per_second == Approx(0.5));
  REQUIRE(f.disconnect_schedule.size() == 2);
  CHECK(f.disconnect_schedule[0].at == 30s);  // in time order
  CHECK(f.disconnect_schedule[1].backend == "aws");
  REQUIRE(c.throttle.has_value());
  const auto& t = *c.throttle;
  CHECK(t.azure_twin_reads.per_second == 100);  // the S2 preset: max(100, 10/unit)
  CHECK(t.azure_connects.per_second == 1200);
  CHECK(t.azure_twin_updates.per_second == 7);  // overridden
  CHECK(t.azure_twin_updates.queue == 3);
  CHECK(t.aws_enabled);
  CHECK(t.aws_shadow_account.per_second == 400);
  CHECK(t.aws_shadow_account.burst == 100);
}

TEST_CASE("hub.yaml: every mistake at once, each with its line, column and key path", "[hub][config]") {
  const auto r = load(R"(auth: lenient
listen: {mqtts: 127.0.0.1:9883, htps: x}
faults:
  delivery:
    - kinds: [azure.nope]
      drop: 150%
      delay: 5
  disconnect_schedule:
    - {fraction: 10%}
throttle:
  azure_tier: S9
)");
  const auto text = r.diags.to_string();
  INFO(text);
  CHECK(r.diags.size() == 7);
  CHECK(text.find("hub.yaml:1:7: auth:") != std::string::npos);
  CHECK(text.find("listen.htps") != std::string::npos);
  CHECK(text.find("faults.delivery[0].kinds[0]") != std::string::npos);
  CHECK(text.find("faults.delivery[0].drop") != std::string::npos);
  CHECK(text.find("faults.delivery[0].delay") != std::string::npos);
  CHECK(text.find("missing required key 'at'") != std::string::npos);
  CHECK(text.find("throttle.azure_tier") != std::string::npos);
}
