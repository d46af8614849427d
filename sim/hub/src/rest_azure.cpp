// Azure IoT Hub's service REST API (PROTOCOLS.md A8, A11, Part E): twins, direct methods and
// the identity registry, over hub_core.
//
// Order of checks on every route, as IoT Hub answers: route and method (404/405), then the
// SAS policy token (401), then the body (400), then the operation's own errors.
#include "rest_routes.hpp"

#include <boost/json/parse.hpp>

#include <charconv>
#include <set>

namespace twinfleet::hub::detail {

namespace json = boost::json;

namespace {

// IoT Hub's list and bulk limits (REST reference: "top" at most 1000; bulk at most 100).
constexpr std::size_t max_list_top = 1000;
constexpr std::size_t max_bulk_devices = 100;

void answer_error(route_context& ctx, const twin::error& e) { ctx.done(azure_error_response(e.code, e.message)); }

bool authorize(route_context& ctx, std::string_view device_id, permission needed) {
  const auto header = ctx.request.header("Authorization");
  auto ok = ctx.core.authorize_azure(header.value_or(std::string_view()), device_id, needed, ctx.now);
  if (ok) return true;
  ++ctx.core.counters().rest_unauthorized;
  answer_error(ctx, ok.error());
  return false;
}

// The body as JSON, or a 400004 answer. IoT Hub refuses an empty body where one is expected.
std::optional<json::value> parse_body(route_context& ctx) {
  boost::system::error_code ec;
  auto value = json::parse(ctx.request.body, ec);
  if (ec) {
    ctx.done(azure_error_response(400004, "The request body is not valid JSON: " + ec.message() + "."));
    return std::nullopt;
  }
  return value;
}

twin::if_match if_match_of(const route_context& ctx) {
  const auto header = ctx.request.header("If-Match");
  return header ? twin::if_match::parse(*header) : twin::if_match{};
}

// The resource's etag, quoted, as IoT Hub sends it in the ETag header.
rest_response with_etag(rest_response r, const json::object& resource) {
  if (const auto* etag = resource.if_contains("etag"); etag != nullptr && etag->is_string()) {
    r.headers.push_back({"ETag", "\"" + std::string(etag->get_string()) + "\""});
  }
  return r;
}

rest_response ok_json(const json::object& body) {
  return with_etag(json_response(200, body, azure_content_type), body);
}

// ---- /twins/{id} -------------------------------------------------------------------------

void serve_twin(route_context& ctx, const std::string& device_id) {
  const auto& method = ctx.request.method;
  if (method != "GET" && method != "PATCH" && method != "PUT") {
    ctx.done(azure_method_not_allowed("GET, PATCH, PUT"));
    return;
  }
  if (!authorize(ctx, device_id, permission::service_connect)) return;
  if (method == "GET") {
    auto twin = ctx.core.azure_get_twin(device_id);
    if (!twin) return answer_error(ctx, twin.error());
    ctx.done(ok_json(*twin));
    return;
  }
  auto body = parse_body(ctx);
  if (!body) return;
  auto twin = ctx.core.azure_update_twin(device_id, *body, if_match_of(ctx), method == "PUT", ctx.now);
  if (!twin) return answer_error(ctx, twin.error());
  ctx.done(ok_json(*twin));
}

// ---- /twins/{id}/methods -----------------------------------------------------------------

void serve_method(route_context& ctx, const std::string& device_id) {
  if (ctx.request.method != "POST") {
    ctx.done(azure_method_not_allowed("POST"));
    return;
  }
  if (!authorize(ctx, device_id, permission::service_connect)) return;
  auto body = parse_body(ctx);
  if (!body) return;
  // The route context dies when this function returns; the callback keeps its own handler.
  ctx.core.azure_invoke_method(device_id, *body, ctx.now, [done = ctx.done](twin::result<method_response> r) {
    if (!r) {
      done(azure_error_response(r.error().code, r.error().message));
      return;
    }
    json::object answer;
    answer["status"] = r->status;
    answer["payload"] = std::move(r->payload);
    done(json_response(200, answer, azure_content_type));
  });
}

// ---- /devices/{id} -----------------------------------------------------------------------

void serve_device(route_context& ctx, const std::string& device_id) {
  const auto& method = ctx.request.method;
  if (method == "GET") {
    if (!authorize(ctx, device_id, permission::registry_read)) return;
    auto device = ctx.core.azure_get_device(device_id);
    if (!device) return answer_error(ctx, device.error());
    ctx.done(ok_json(*device));
  } else if (method == "PUT") {
    if (!authorize(ctx, device_id, permission::registry_write)) return;
    auto body = parse_body(ctx);
    if (!body) return;
    auto device = ctx.core.azure_put_device(device_id, *body, if_match_of(ctx), ctx.now);
    if (!device) return answer_error(ctx, device.error());
    ctx.done(ok_json(*device));
  } else if (method == "DELETE") {
    if (!authorize(ctx, device_id, permission::registry_write)) return;
    auto removed = ctx.core.azure_delete_device(device_id, if_match_of(ctx), ctx.now);
    if (!removed) return answer_error(ctx, removed.error());
    rest_response r;
    r.status = 204;
    ctx.done(std::move(r));
  } else if (method == "POST" && device_id == "query") {
    // POST /devices/query is IoT Hub's twin query; the local hub does not run queries yet.
    ctx.done(azure_error_response(404000, "Twin queries (POST /devices/query) are not supported by the local hub."));
  } else {
    ctx.done(azure_method_not_allowed("GET, PUT, DELETE"));
  }
}

// ---- GET /devices?top=N ------------------------------------------------------------------

void serve_list(route_context& ctx) {
  if (!authorize(ctx, {}, permission::registry_read)) return;
  std::size_t top = max_list_top;
  if (const auto text = ctx.target.param("top"); text && !text->empty()) {
    std::size_t n = 0;
    const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
    if (ec != std::errc{} || end != text->data() + text->size() || n == 0 || n > max_list_top) {
      ctx.done(azure_error_response(400004, "top must be an integer from 1 to 1000."));
      return;
    }
    top = n;
  }
  ctx.done(json_response(200, ctx.core.azure_list_devices(top), azure_content_type));
}

// ---- POST /devices (bulk registry) ------------------------------------------------------
//
// A subset of IoT Hub's bulk registry operation: a JSON array (or {"devices":[…]}) of
// ExportImportDevice objects, at most 100, each {"id", "importMode", "status"?,
// "authentication"?, "eTag"?}. importMode: create, update, createOrUpdate (the default, as
// in the SDKs), updateIfMatchETag, delete, deleteIfMatchETag. The answer is always 200
// {"isSuccessful":bool,"errors":[{"deviceId","errorCode","errorStatus"}],"warnings":[]};
// a malformed request as a whole is 400004, more than 100 devices 413002, a repeated id 400011.

enum class import_mode { create, update, create_or_update, update_if_match, remove, remove_if_match };

std::optional<import_mode> parse_import_mode(std::string_view s) {
  if (s == "create") return import_mode::create;
  if (s == "update") return import_mode::update;
  if (s == "createOrUpdate") return import_mode::create_or_update;
  if (s == "updateIfMatchETag") return import_mode::update_if_match;
  if (s == "delete") return import_mode::remove;
  if (s == "deleteIfMatchETag") return import_mode::remove_if_match;
  return std::nullopt;
}

struct bulk_item {
  std::string id;
  import_mode mode = import_mode::create_or_update;
  std::string etag;
  json::object identity;  // the body handed to azure_put_device
};

twin::result<std::vector<bulk_item>> parse_bulk(const json::value& body) {
  const json::array* devices = nullptr;
  if (body.is_array()) {
    devices = &body.get_array();
  } else if (const auto* o = body.if_object(); o != nullptr) {
    if (const auto* d = o->if_contains("devices"); d != nullptr && d->is_array()) devices = &d->get_array();
  }
  if (devices == nullptr) return twin::error{400004, "The body must be an array of devices (or {\"devices\":[…]})."};
  if (devices->size() > max_bulk_devices) {
    return twin::error{413002, "A bulk registry operation takes at most 100 devices."};
  }
  std::vector<bulk_item> items;
  std::set<std::string, std::less<>> seen;
  for (const auto& entry : *devices) {
    const auto* o = entry.if_object();
    if (o == nullptr) return twin::error{400004, "Every device in a bulk operation must be a JSON object."};
    bulk_item item;
    const auto* id = o->if_contains("id");
    if (id == nullptr || !id->is_string()) return twin::error{400004, "Every device needs a string \"id\"."};
    item.id = std::string(id->get_string());
    if (!seen.insert(item.id).second) {
      return twin::error{400011, "The device '" + item.id + "' appears more than once."};
    }
    if (const auto* mode = o->if_contains("importMode"); mode != nullptr && !mode->is_null()) {
      const auto parsed = mode->is_string() ? parse_import_mode(mode->get_string()) : std::nullopt;
      if (!parsed) return twin::error{400004, "Unknown importMode for device '" + item.id + "'."};
      item.mode = *parsed;
    }
    if (const auto* etag = o->if_contains("eTag"); etag != nullptr && etag->is_string()) {
      item.etag = std::string(etag->get_string());
    }
    item.identity["deviceId"] = item.id;
    for (std::string_view key : {"status", "authentication", "capabilities"}) {
      if (const auto* v = o->if_contains(key)) item.identity[key] = *v;
    }
    items.push_back(std::move(item));
  }
  return items;
}

twin::result<void> apply_bulk_item(route_context& ctx, const bulk_item& item) {
  twin::if_match match;
  switch (item.mode) {
    case import_mode::create: break;  // absent: hub_core refuses an existing id with 409001
    case import_mode::update:
    case import_mode::create_or_update:
    case import_mode::remove: match.what = twin::if_match::kind::any; break;
    case import_mode::update_if_match:
    case import_mode::remove_if_match:
      match.what = twin::if_match::kind::tag;
      match.tag = item.etag;
      break;
  }
  if (item.mode == import_mode::remove || item.mode == import_mode::remove_if_match) {
    return ctx.core.azure_delete_device(item.id, match, ctx.now);
  }
  auto put = ctx.core.azure_put_device(item.id, item.identity, match, ctx.now);
  if (!put) return put.error();
  return {};
}

void serve_bulk(route_context& ctx) {
  if (!authorize(ctx, {}, permission::registry_write)) return;
  auto body = parse_body(ctx);
  if (!body) return;
  auto items = parse_bulk(*body);
  if (!items) return answer_error(ctx, items.error());
  json::array errors;
  for (const auto& item : *items) {
    auto applied = apply_bulk_item(ctx, item);
    if (applied) continue;
    errors.push_back(json::object{
        {"deviceId", item.id}, {"errorCode", applied.error().code}, {"errorStatus", applied.error().message}});
  }
  json::object answer;
  answer["isSuccessful"] = errors.empty();
  answer["errors"] = std::move(errors);
  answer["warnings"] = json::array();
  ctx.done(json_response(200, answer, azure_content_type));
}

}  // namespace

void serve_azure(route_context& ctx) {
  const auto& s = ctx.target.segments;
  const auto not_found = [&] {
    ctx.done(azure_error_response(404000, "No IoT Hub service API at this path."));
  };
  if (s.empty()) return not_found();
  if (s[0] == "twins" && s.size() >= 2 && !s[1].empty()) {
    if (s.size() == 2) return serve_twin(ctx, s[1]);
    if (s.size() == 3 && s[2] == "methods") return serve_method(ctx, s[1]);
    if (s[2] == "modules" && s.size() >= 4) {
      // Module identities are not emulated: every module is unknown, after the same
      // authorization a device twin needs.
      if (!authorize(ctx, s[1], permission::service_connect)) return;
      ctx.done(azure_error_response(404010, "Module " + s[1] + "/" + s[3] + " not found."));
      return;
    }
    return not_found();
  }
  if (s[0] == "devices") {
    if (s.size() == 1) {
      if (ctx.request.method == "GET") return serve_list(ctx);
      if (ctx.request.method == "POST") return serve_bulk(ctx);
      ctx.done(azure_method_not_allowed("GET, POST"));
      return;
    }
    if (s[1].empty()) return not_found();
    if (s.size() == 2) return serve_device(ctx, s[1]);
    if (s[2] == "modules") {
      const bool write = ctx.request.method != "GET";
      if (!authorize(ctx, s[1], write ? permission::registry_write : permission::registry_read)) return;
      ctx.done(azure_error_response(404010, "Modules are not supported by the local hub."));
      return;
    }
    return not_found();
  }
  not_found();
}

}  // namespace twinfleet::hub::detail
