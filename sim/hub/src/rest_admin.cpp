// The hub's admin endpoint: fault injection and throttling changed at run time, and forced
// disconnects on demand (docs/HUB.md, "Faults and throttling"). Like /metrics it takes no
// credentials: the hub listens on loopback unless told otherwise, and a load test or a race
// scenario must be able to turn the knobs from a script with curl.
//
//   GET  /admin/faults       → the fault settings
//   PUT  /admin/faults       ← fault settings (JSON, faults.hpp); replaces them, restarts the seed
//   GET  /admin/throttle     → the throttle settings
//   PUT  /admin/throttle     ← throttle settings, or {"azure_tier":"S1","azure_units":1}
//   POST /admin/disconnect   ← {"fraction":0.25,"backend":"azure"} or {"id":"device-7"}
//                            → {"disconnected": n}
//
// Errors: {"error": "<key path>: <what>"} with 400, 404 for other paths, 405 with Allow.
#include "rest_routes.hpp"

#include <boost/json/parse.hpp>

#include <cmath>

namespace twinfleet::hub::detail {

namespace json = boost::json;

namespace {

rest_response admin_error(int status, std::string_view message) {
  return json_response(status, json::object{{"error", message}}, aws_content_type);
}

rest_response not_allowed(std::string_view allow) {
  auto r = admin_error(405, "method not allowed; use " + std::string(allow));
  r.headers.push_back({"Allow", std::string(allow)});
  return r;
}

std::optional<json::value> body_json(route_context& ctx) {
  boost::system::error_code ec;
  auto value = json::parse(ctx.request.body, ec);
  if (ec) {
    ctx.done(admin_error(400, "the body is not valid JSON: " + ec.message()));
    return std::nullopt;
  }
  return value;
}

void serve_disconnect(route_context& ctx) {
  auto body = body_json(ctx);
  if (!body) return;
  if (!body->is_object()) return ctx.done(admin_error(400, "the body must be a JSON object"));
  const auto& o = body->get_object();
  for (const auto& [key, value] : o) {
    if (key != "fraction" && key != "backend" && key != "id") {
      return ctx.done(admin_error(400, std::string(key) + ": unknown key"));
    }
  }
  if (const auto* id = o.if_contains("id")) {
    if (!id->is_string()) return ctx.done(admin_error(400, "id: must be a string"));
    const bool done = ctx.core.force_disconnect(id->get_string());
    return ctx.done(json_response(200, json::object{{"disconnected", done ? 1 : 0}}, aws_content_type));
  }
  const auto* fraction = o.if_contains("fraction");
  if (fraction == nullptr || !fraction->is_number()) {
    return ctx.done(admin_error(400, "fraction: a number in [0, 1] (or id) is required"));
  }
  const double f = fraction->to_number<double>();
  if (!(f >= 0 && f <= 1)) return ctx.done(admin_error(400, "fraction: must lie in [0, 1]"));
  std::optional<dialect> backend;
  if (const auto* b = o.if_contains("backend")) {
    if (!b->is_string() || (b->get_string() != "azure" && b->get_string() != "aws")) {
      return ctx.done(admin_error(400, "backend: must be \"azure\" or \"aws\""));
    }
    backend = b->get_string() == "aws" ? dialect::aws : dialect::azure;
  }
  const auto n = ctx.core.force_disconnect(f, backend);
  ctx.done(json_response(200, json::object{{"disconnected", n}}, aws_content_type));
}

}  // namespace

void serve_admin(route_context& ctx) {
  const auto& segments = ctx.target.segments;
  const auto& method = ctx.request.method;
  if (segments.size() != 2) return ctx.done(admin_error(404, "no such admin resource"));
  if (segments[1] == "faults") {
    if (method == "GET") return ctx.done(json_response(200, to_json(ctx.core.faults()), aws_content_type));
    if (method != "PUT") return ctx.done(not_allowed("GET, PUT"));
    auto body = body_json(ctx);
    if (!body) return;
    auto faults = fault_settings_from_json(*body);
    if (!faults) return ctx.done(admin_error(400, faults.error().message));
    ctx.core.set_faults(std::move(*faults), ctx.now);
    return ctx.done(json_response(200, to_json(ctx.core.faults()), aws_content_type));
  }
  if (segments[1] == "throttle") {
    if (method == "GET") return ctx.done(json_response(200, to_json(ctx.core.throttle()), aws_content_type));
    if (method != "PUT") return ctx.done(not_allowed("GET, PUT"));
    auto body = body_json(ctx);
    if (!body) return;
    auto throttle = throttle_settings_from_json(*body);
    if (!throttle) return ctx.done(admin_error(400, throttle.error().message));
    ctx.core.set_throttle(std::move(*throttle));
    return ctx.done(json_response(200, to_json(ctx.core.throttle()), aws_content_type));
  }
  if (segments[1] == "disconnect") {
    if (method != "POST") return ctx.done(not_allowed("POST"));
    return serve_disconnect(ctx);
  }
  ctx.done(admin_error(404, "no such admin resource"));
}

std::optional<rest_meter> meter_of(const rest_request& request, const parsed_target& target, rest_platform platform) {
  const auto& s = target.segments;
  if (s.empty() || s[0] == "admin") return std::nullopt;
  if (platform == rest_platform::aws) {
    // /things/{thing}/shadow: every shadow API call counts against the thing (B7).
    if (s.size() == 3 && s[0] == "things" && s[2] == "shadow") return rest_meter{throttle_class::aws_shadow_per_thing, s[1], 1};
    return std::nullopt;
  }
  if (s[0] == "twins" && s.size() == 2) {
    if (request.method == "GET") return rest_meter{throttle_class::azure_twin_reads, {}, 1};
    if (request.method == "PATCH" || request.method == "PUT") return rest_meter{throttle_class::azure_twin_updates, {}, 1};
    return std::nullopt;
  }
  if (s[0] == "twins" && s.size() == 3 && s[2] == "methods" && request.method == "POST") {
    // Metered in 4 KB units: up to 4 KB counts as one (A14).
    const double units = std::max(1.0, std::ceil(static_cast<double>(request.body.size()) / 4096.0));
    return rest_meter{throttle_class::azure_methods, {}, units};
  }
  if (s[0] == "devices") return rest_meter{throttle_class::azure_registry, {}, 1};
  return std::nullopt;
}

}  // namespace twinfleet::hub::detail
