// What one twin or shadow operation costs the hub: the document rules against the baseline of
// merely parsing and re-serializing the same request, which any hub must do anyway.
//
// Run: make bench (or build/bench/twin_bench). Figures are medians of 9 samples.
#include <twinfleet/twin/aws_shadow.hpp>
#include <twinfleet/twin/azure_twin.hpp>

#include "bench_util.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <string>

using namespace twinfleet::twin;
using twinfleet::bench::keep;
using twinfleet::bench::measure;

namespace {

// A thermostat-like section of `entries` objects of three leaves each (~50 bytes apiece): 4 is
// a typical device's twin, 40 about 2 KB, near the heavy end of real shadows.
json::object sizeable_section(const char* prefix, int entries) {
  json::object o;
  for (int i = 0; i < entries; ++i) {
    json::object nested;
    nested["value"] = i * 1.5;
    nested["unit"] = "celsius";
    nested["enabled"] = (i % 2) == 0;
    o[std::string(prefix) + std::to_string(i)] = std::move(nested);
  }
  return o;
}

// One table per twin size: the same operations on a small and on a large document.
void run(int entries, const char* title) {
  const auto now = std::chrono::system_clock::now();
  const std::string desired_request =
      R"({"properties":{"desired":{"targetTemperature":21.5,"mode":"heat","schedule":{"start":"06:00","end":"22:00"}}}})";
  const std::string reported_patch = R"({"currentTemperature":20.8,"mode":"heat","fw":{"version":"1.4.2"}})";
  const std::string shadow_update =
      R"({"state":{"desired":{"targetTemperature":21.5,"mode":"heat"},"reported":{"currentTemperature":20.8}},"clientToken":"tok-1"})";

  azure_twin twin("thermo-00001", now);
  (void)twin.service_patch(json::object{{"properties", json::object{{"desired", sizeable_section("d", entries)}}}},
                           if_match{}, now);
  (void)twin.patch_reported(sizeable_section("r", entries), std::nullopt, now);

  aws_shadow shadow("thermo-00001");
  {
    json::object seed;
    seed["state"] = json::object{{"desired", sizeable_section("d", entries)}, {"reported", sizeable_section("d", entries)}};
    (void)shadow.update(seed, now);
  }
  std::vector<twinfleet::bench::sample_set> rows;
  rows.push_back(measure("baseline: parse + serialize the request", [&] {
    auto v = json::parse(desired_request);
    keep(json::serialize(v));
  }));
  rows.push_back(measure("azure service PATCH desired + notification", [&] {
    auto change = twin.service_patch(json::parse(desired_request), if_match{}, now);
    keep(json::serialize(*change->notification));
  }));
  rows.push_back(measure("azure device PATCH reported", [&] {
    auto v = twin.patch_reported(json::parse(reported_patch), std::nullopt, now);
    keep(v);
  }));
  rows.push_back(measure("azure device GET (view + serialize)", [&] { keep(json::serialize(twin.device_view())); }));
  rows.push_back(measure("azure service GET (full twin + serialize)", [&] { keep(json::serialize(twin.to_json())); }));
  rows.push_back(measure("aws update (accepted + delta + documents)", [&] {
    auto outcome = shadow.update(shadow_update, now);
    keep(json::serialize(outcome->accepted));
    if (outcome->delta) keep(json::serialize(*outcome->delta));
    keep(json::serialize(outcome->documents));
  }));
  rows.push_back(measure("aws get (with delta + serialize)", [&] {
    auto doc = shadow.get(std::string_view("tok"), now);
    keep(json::serialize(*doc));
  }));
  twinfleet::bench::report(title, rows);
}

}  // namespace

int main() {
  run(4, "twin_bench: document rules per operation, small twin (4 entries, ~200 B per section)");
  run(40, "twin_bench: document rules per operation, large twin (40 entries, ~2 KB per section)");
  return 0;
}
