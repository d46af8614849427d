// AWS IoT's data plane (PROTOCOLS.md B8, B6, B10) over hub_core: shadows and HTTPS publish.
//
// Order of checks: route and method (404/405), then SigV4 (403), then the operation, whose
// errors (bad JSON, version conflict, missing shadow, size) carry AWS's own codes and texts.
#include "rest_routes.hpp"

#include <twinfleet/auth/encoding.hpp>

#include <charconv>

namespace twinfleet::hub::detail {

namespace {

// ListNamedShadowsForThing's pageSize: AWS takes 1 to 100; the hub uses the largest page when
// none is asked for.
constexpr std::size_t max_page_size = 100;

void answer_error(route_context& ctx, const twin::error& e) { ctx.done(aws_error_response(e.code, e.message)); }

bool authorize(route_context& ctx) {
  const auto& r = ctx.request;
  const auth::sigv4_received_request received{r.method, r.target, r.headers, r.body};
  auto ok = ctx.core.authorize_aws(received, ctx.now);
  if (ok) return true;
  ++ctx.core.counters().rest_unauthorized;
  answer_error(ctx, ok.error());
  return false;
}

void answer_document(route_context& ctx, const twin::result<json::object>& document) {
  if (!document) return answer_error(ctx, document.error());
  ctx.done(json_response(200, *document, aws_content_type));
}

// /things/{thing}/shadow[?name=S]; no name (or an empty one) is the classic shadow.
void serve_shadow(route_context& ctx, const std::string& thing) {
  const auto& method = ctx.request.method;
  if (method != "GET" && method != "POST" && method != "DELETE") {
    ctx.done(aws_method_not_allowed("GET, POST, DELETE"));
    return;
  }
  if (!authorize(ctx)) return;
  const auto shadow = ctx.target.param("name").value_or(std::string_view());
  if (method == "GET") return answer_document(ctx, ctx.core.aws_get_shadow(thing, shadow, ctx.now));
  if (method == "POST") return answer_document(ctx, ctx.core.aws_update_shadow(thing, shadow, ctx.request.body, ctx.now));
  answer_document(ctx, ctx.core.aws_delete_shadow(thing, shadow, ctx.now));
}

// /api/things/shadow/ListNamedShadowsForThing/{thing}[?nextToken=&pageSize=]
void serve_list(route_context& ctx, const std::string& thing) {
  if (ctx.request.method != "GET") {
    ctx.done(aws_method_not_allowed("GET"));
    return;
  }
  if (!authorize(ctx)) return;
  std::size_t page_size = max_page_size;
  if (const auto text = ctx.target.param("pageSize"); text && !text->empty()) {
    std::size_t n = 0;
    const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
    if (ec != std::errc{} || end != text->data() + text->size() || n == 0 || n > max_page_size) {
      ctx.done(aws_error_response(400, "pageSize must be an integer from 1 to 100"));
      return;
    }
    page_size = n;
  }
  const auto next_token = ctx.target.param("nextToken").value_or(std::string_view());
  ctx.done(json_response(200, ctx.core.aws_list_named_shadows(thing, next_token, page_size, ctx.now),
                         aws_content_type));
}

// POST /topics/{topic}?qos=0|1: HTTPS publish (B8). SDKs send the topic as one encoded label
// ("a%2Fb"), curl users often raw ("a/b"): both are the raw path after /topics/, decoded
// whole, so a trailing '/' or an empty level survives as it would over MQTT.
void serve_publish(route_context& ctx) {
  if (ctx.request.method != "POST") {
    ctx.done(aws_method_not_allowed("POST"));
    return;
  }
  if (!authorize(ctx)) return;
  constexpr std::string_view prefix = "/topics/";
  std::string_view raw = ctx.request.target;
  raw = raw.substr(0, raw.find('?'));
  const auto at = raw.find(prefix);  // after an absolute-form "http://host" if any
  auto topic = auth::url_decode(at == std::string_view::npos ? std::string_view() : raw.substr(at + prefix.size()));
  if (!topic || topic->empty()) {
    ctx.done(aws_error_response(400, "Invalid topic name"));
    return;
  }
  auto qos = mqtt::qos::at_most_once;
  if (const auto text = ctx.target.param("qos"); text && !text->empty()) {
    if (*text == "1") {
      qos = mqtt::qos::at_least_once;
    } else if (*text != "0") {
      ctx.done(aws_error_response(400, "qos must be 0 or 1"));
      return;
    }
  }
  auto published = ctx.core.aws_publish(*topic, ctx.request.body, qos, ctx.now);
  if (!published) return answer_error(ctx, published.error());
  // AWS answers a publish with this body (and a trace id the hub has no use for).
  ctx.done(json_response(200, json::object{{"message", "OK"}}, aws_content_type));
}

}  // namespace

void serve_aws(route_context& ctx) {
  const auto& s = ctx.target.segments;
  if (s.size() == 3 && s[0] == "things" && !s[1].empty() && s[2] == "shadow") return serve_shadow(ctx, s[1]);
  if (s.size() == 5 && s[0] == "api" && s[1] == "things" && s[2] == "shadow" &&
      s[3] == "ListNamedShadowsForThing" && !s[4].empty()) {
    return serve_list(ctx, s[4]);
  }
  if (s.size() >= 2 && s[0] == "topics") return serve_publish(ctx);
  ctx.done(aws_error_response(404, "Not Found"));
}

}  // namespace twinfleet::hub::detail
