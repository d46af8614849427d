// Shared by the REST router's files (rest_router.cpp, rest_azure.cpp, rest_aws.cpp). Not a
// public header; no Beast here either: the routes are plain functions over rest_request.
#pragma once

#include <twinfleet/hub/core.hpp>
#include <twinfleet/hub/rest.hpp>

#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::hub::detail {

// A request-target taken apart: path segments percent-decoded, query parameters decoded.
struct parsed_target {
  std::vector<std::string> segments;  // "/twins/d1" → {"twins", "d1"}
  std::vector<auth::query_param> query;

  // The first parameter named `name` (exact case), or nullopt.
  [[nodiscard]] std::optional<std::string_view> param(std::string_view name) const;
};

// Everything one route needs; lives for the duration of the synchronous part of a request.
struct route_context {
  hub_core& core;
  const rest_request& request;
  const parsed_target& target;
  time_point now;
  rest_handler& done;
};

inline constexpr std::string_view azure_content_type = "application/json; charset=utf-8";
inline constexpr std::string_view aws_content_type = "application/json";

// A 200-family JSON response.
[[nodiscard]] rest_response json_response(int status, const boost::json::value& body, std::string_view content_type);

// RFC 7230 tokens compare case-sensitively for methods; header names case-insensitively.
[[nodiscard]] bool iequals(std::string_view a, std::string_view b) noexcept;

// The platforms' route tables. Each answers through ctx.done exactly once.
void serve_azure(route_context& ctx);
void serve_aws(route_context& ctx);

// The admin endpoint (rest_admin.cpp): /admin/faults, /admin/throttle, /admin/disconnect.
void serve_admin(route_context& ctx);

// Which throttle bucket a service request is metered by (A14: twin reads and updates, direct
// methods in 4 KB units, registry operations; B7: shadow requests per thing), or nullopt.
struct rest_meter {
  throttle_class c;
  std::string key;
  double cost = 1;
};
[[nodiscard]] std::optional<rest_meter> meter_of(const rest_request& request, const parsed_target& target,
                                                 rest_platform platform);

// 405 with an Allow header, in each platform's shape.
[[nodiscard]] rest_response azure_method_not_allowed(std::string_view allow);
[[nodiscard]] rest_response aws_method_not_allowed(std::string_view allow);

}  // namespace twinfleet::hub::detail
