// libFuzzer target: arbitrary bytes as the documents devices and back ends send — an AWS shadow
// update, get and delete payload, and an Azure reported patch and service PATCH body — against
// shadows and twins that already hold state. Beyond the sanitizers it checks the rule every
// caller relies on: a rejected operation leaves the document exactly as it was.
#include <twinfleet/twin/aws_shadow.hpp>
#include <twinfleet/twin/azure_twin.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

using namespace twinfleet::twin;

const auto t0 = std::chrono::system_clock::time_point{} + std::chrono::hours(24 * 365 * 54);

aws_shadow seeded_shadow() {
  aws_shadow shadow("thing-1", "config");
  (void)shadow.update(std::string_view(R"({"state":{"desired":{"a":1,"b":{"c":[1,2]}},"reported":{"a":2}}})"), t0);
  return shadow;
}

azure_twin seeded_twin() {
  azure_twin twin("device-1", t0);
  (void)twin.service_patch(boost::json::parse(R"({"tags":{"t":1},"properties":{"desired":{"x":{"y":2}}}})"),
                           if_match{}, t0);
  (void)twin.patch_reported(boost::json::parse(R"({"r":true})"), std::nullopt, t0);
  return twin;
}

std::string snapshot(const aws_shadow& s) {
  return boost::json::serialize(s.desired()) + boost::json::serialize(s.reported()) +
         boost::json::serialize(s.desired_metadata()) + std::to_string(s.version()) + (s.exists() ? "1" : "0");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  const auto now = t0 + std::chrono::seconds(1);

  auto shadow = seeded_shadow();
  const auto before = snapshot(shadow);
  if (!shadow.update(payload, now) && snapshot(shadow) != before) __builtin_trap();
  if (auto fields = parse_aws_control_request(payload)) {
    (void)shadow.get(fields->client_token, now);
    auto again = seeded_shadow();
    const auto kept = snapshot(again);
    if (!again.remove(fields->client_token, fields->version, now) && snapshot(again) != kept) __builtin_trap();
  }
  (void)aws_echo_client_token(payload);

  boost::system::error_code ec;
  const auto doc = boost::json::parse(payload, ec);
  if (!ec) {
    auto twin = seeded_twin();
    const auto full = boost::json::serialize(twin.to_json());
    if (!twin.patch_reported(doc, std::nullopt, now) && boost::json::serialize(twin.to_json()) != full) {
      __builtin_trap();
    }
    auto other = seeded_twin();
    if (!other.service_patch(doc, if_match{}, now) && boost::json::serialize(other.to_json()) != full) __builtin_trap();
    auto third = seeded_twin();
    if (!third.service_replace(doc, if_match{}, now) && boost::json::serialize(third.to_json()) != full) {
      __builtin_trap();
    }
  }
  return 0;
}
