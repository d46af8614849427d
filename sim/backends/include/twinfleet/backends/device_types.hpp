// What the device sessions (azure_device_session.hpp, aws_device_session.hpp) and the reconcile
// helpers (reconcile.hpp) hand to their callers: request errors, desired notifications,
// shadow deltas. Plain data; no I/O.
#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/json/object.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <type_traits>

namespace twinfleet::backends {

namespace json = boost::json;
// Receive times are steady-clock instants: the engine measures latencies on that clock.
using steady_time = std::chrono::steady_clock::time_point;

// The session's own reasons, in the "twinfleet.backends.device" category. The broker's and the
// transport's errors (sim/net: connection_lost, connect_timeout, connack_errc, ...) pass through
// unchanged.
enum class device_errc {
  rejected = 1,       // the hub answered the request with an error status (see device_error)
  timeout,            // no answer within the request's timeout (the request may still be served)
  not_connected,      // the session has no live connection
  subscribe_refused,  // a SUBACK refused at least one filter
  bad_response,       // an answer that does not parse (a status that is not a number, bad JSON)
  not_subscribed,     // a request whose answer topic the session has not subscribed to
};

[[nodiscard]] const boost::system::error_category& device_category() noexcept;
[[nodiscard]] inline boost::system::error_code make_error_code(device_errc e) noexcept {
  return {static_cast<int>(e), device_category()};
}

// Why a request failed. Either the hub answered with an error (ec == device_errc::rejected,
// with the status and the body's code and message), or no answer came (ec says why: timeout,
// not_connected, net_errc::connection_lost, operation_aborted when the awaiting coroutine was
// cancelled, ...; status and code are 0).
struct device_error {
  boost::system::error_code ec;
  // Azure: the status of the response topic ($iothub/twin/res/{status}/: 400, 412, 429, 5xx).
  // AWS: the error document's "code" (400, 404, 409, 429, ...).
  int status = 0;
  // Azure: the body's "errorCode" (400004, 412001, ...) when present, else `status`.
  // AWS: the same as `status`.
  int code = 0;
  std::string message;  // the body's "message", or ec.message() for local errors

  [[nodiscard]] bool rejected() const noexcept;  // the hub answered with an error status

  friend std::ostream& operator<<(std::ostream& os, const device_error& e) {
    return os << e.ec.message() << " (status " << e.status << ", code " << e.code << "): " << e.message;
  }
};

template <class T>
using device_result = boost::system::result<T, device_error>;

// Lets device_result<T>::value() throw when it holds an error (a bug at the caller).
[[noreturn]] void throw_exception_from_error(const device_error& e, const boost::source_location&);

// An Azure desired-properties notification ($iothub/twin/PATCH/properties/desired/?$version=n).
struct desired_patch {
  json::object patch;        // the body without its "$version" member; null members delete keys
  std::int64_t version = 0;  // the desired $version after this patch
  steady_time received{};
};

// An AWS /update/delta message of one shadow.
struct shadow_delta {
  std::string shadow;        // "" for the classic shadow
  std::int64_t version = 0;  // the shadow version the delta belongs to (shared with its accepted)
  json::object state;        // the delta: desired values that differ from reported
  json::object document;     // the whole message (metadata, timestamp, clientToken)
  steady_time received{};
};

}  // namespace twinfleet::backends

template <>
struct boost::system::is_error_code_enum<twinfleet::backends::device_errc> : std::true_type {};
