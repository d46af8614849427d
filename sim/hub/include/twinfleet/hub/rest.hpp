// The hub's HTTP(S) service APIs: the Azure IoT Hub service REST API (twins, direct methods,
// identity registry; PROTOCOLS.md A8, A11) and the AWS IoT data-plane shadow API (B8), served
// from one listener, as back-end SDKs (azure-iothub, aws-sdk iot-data) call them (Part E).
//
// Two layers:
// - `rest_router`: sans-I/O. Takes a parsed request, authorizes it, calls hub_core, and
//   produces the response the platform would send. Unit tests use it without sockets.
// - `rest_server`: the Asio/Beast shell around a router: listener, HTTP/1.1 keep-alive,
//   optional TLS, size limits, timeouts, graceful stop.
//
// Routes (a query's api-version is accepted and ignored; unknown paths 404, known paths with
// another method 405 with an Allow header):
//   Azure — `Authorization: SharedAccessSignature …` with a policy (skn) token:
//     GET|PATCH|PUT /twins/{id}            service_connect; If-Match (quoted) on PATCH/PUT
//     POST          /twins/{id}/methods    service_connect; A8 body
//     GET|PUT|DELETE /devices/{id}         registry_read / registry_write; If-Match on PUT/DELETE
//     GET           /devices?top=N         registry_read (N defaults to 1000, at most 1000)
//     POST          /devices               registry_write; bulk registry subset (see rest_azure.cpp)
//     /twins/{id}/modules/...              404 ModuleNotFound (modules are not emulated yet)
//   AWS — SigV4 (header or presigned; service iotdata or iotdevicegateway):
//     GET|POST|DELETE /things/{thing}/shadow[?name=S]
//     GET /api/things/shadow/ListNamedShadowsForThing/{thing}[?nextToken=&pageSize=]
//     POST /topics/{topic}[?qos=0|1]     HTTPS publish; {"message":"OK"}
//
// Error bodies:
//   Azure: status = code / 1000, header `iothub-errorcode: <Name>`, body
//     {"Message":"ErrorCode:<Name>;<message>","ExceptionMessage":"Tracking ID:<hex>-TimeStamp:<utc>",
//      "errorCode":<6 digits>,"message":"<message>"}
//     (both shapes seen in the wild, so every SDK finds what it parses).
//   AWS: status = the shadow error code, header `x-amzn-ErrorType: <Name>Exception`, body
//     {"message":"<AWS message>"}.
//   HTTP that does not parse: 400 (431 for headers over the limit) with {"message":"…"}, then
//   the connection closes.
// Choices where the platforms document nothing:
//   - 403100 (a twin section over its size, as IoT Hub sends it) is named ArgumentInvalid: it is
//     the caller's document, and quota-like names make SDKs retry.
//   - 404000 NotFound (no such path) and 405000 MethodNotAllowed are the local hub's own codes.
//   - POST /devices/query (twin queries) is not served yet: 404 in Azure's shape.
//   - ListNamedShadowsForThing without pageSize returns pages of 100 (AWS's maximum).
#pragma once

#include <twinfleet/auth/sigv4.hpp>

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio {
class any_io_executor;
namespace ssl {
class context;
}
}  // namespace boost::asio

namespace twinfleet::hub {

class hub_core;

// One HTTP request as the server received it. `target` is the request-target exactly as sent
// (path, then optionally '?' and the raw query): SigV4 covers it byte for byte.
struct rest_request {
  std::string method;  // upper-case token: "GET", "PATCH", ...
  std::string target;
  std::vector<auth::http_header> headers;  // as received, names in any case
  std::string body;

  // The first header named `name` (ASCII case-insensitive), or nullopt.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const;
};

// One HTTP response. The server adds Content-Length, Date, Server and Connection.
struct rest_response {
  int status = 200;
  std::vector<auth::http_header> headers;  // includes Content-Type when there is a body
  std::string body;

  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const;
};

using rest_handler = std::function<void(rest_response)>;

// Which platform's conventions a path follows: decides the error shape of responses the
// router did not produce itself (oversized or malformed requests caught by the server).
enum class rest_platform { azure, aws };
[[nodiscard]] rest_platform platform_of(std::string_view target) noexcept;

// Error responses in each platform's shape (see the file comment). `code` is a six-digit
// IoT Hub code for Azure and the HTTP-like shadow code for AWS.
[[nodiscard]] rest_response azure_error_response(int code, std::string_view message);
[[nodiscard]] rest_response aws_error_response(int code, std::string_view message);
// 413 for a body over the server's limit, in the shape of the platform `target` belongs to.
[[nodiscard]] rest_response payload_too_large_response(std::string_view target);

// The IoT Hub error name for a code ("DeviceNotFound" for 404001); for a code it does not
// know, a name for its HTTP status.
[[nodiscard]] std::string_view azure_error_name(int code) noexcept;
// The AWS exception name for an HTTP status ("ResourceNotFoundException" for 404).
[[nodiscard]] std::string_view aws_exception_name(int status) noexcept;

// Maps requests to hub_core operations.
//
// Thread-safety: none; lives on the hub_core's executor and is called only from there, as
// hub_core itself. Keeps a reference to `core`, which must outlive it and every pending
// handler.
class rest_router {
 public:
  using clock_function = std::function<std::chrono::system_clock::time_point()>;

  // `now` is read once per request (SAS expiry, SigV4 skew, metadata timestamps); tests pass
  // a virtual clock. Defaults to the system clock.
  explicit rest_router(hub_core& core, clock_function now = {});

  // Serves one request. `done` is called exactly once: before async_handle returns for every
  // route but POST /twins/{id}/methods, which completes when the device answers, when the
  // method times out (hub_core::on_timer), or at once with 404103 when the device is offline.
  // Never throws for bad input: every failure is an error response. Counts every request in
  // hub_core.counters().rest_requests and authorization failures in rest_unauthorized.
  void async_handle(const rest_request& request, rest_handler done);

  // For routes that complete at once: the response, or nullopt when the request is still
  // pending (a direct method waiting for its device). Handy in tests.
  [[nodiscard]] std::optional<rest_response> handle(const rest_request& request);

  [[nodiscard]] hub_core& core() noexcept { return core_; }

 private:
  hub_core& core_;
  clock_function now_;
};

// Where a listener is bound.
struct rest_endpoint {
  std::string address;  // "127.0.0.1", "::1"
  std::uint16_t port = 0;
};

struct rest_server_options {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: an ephemeral port; see rest_server::local_endpoint()
  // HTTPS when set (from auth::make_tls_server_context; client_certificate_mode none or
  // request). Not owned: it must outlive the server. Null: plain HTTP.
  boost::asio::ssl::context* tls = nullptr;
  std::size_t max_body_bytes = 256 * 1024;   // beyond: 413 in the platform's shape, then close
  std::size_t max_header_bytes = 16 * 1024;  // beyond: 431, then close
  std::size_t max_connections = 1024;        // beyond: new connections are closed at once
  // Waiting for (and reading) the next request's header on a kept-alive connection.
  std::chrono::milliseconds idle_timeout{60'000};
  // Reading one request's body, writing one response, a TLS handshake or shutdown.
  std::chrono::milliseconds io_timeout{30'000};
  // How long a direct method may hold a connection before the server answers 504101 itself
  // (hub_core's own method timeout normally fires first; this bounds the wait when nobody
  // drives hub_core::on_timer).
  std::chrono::milliseconds max_pending_time{330'000};
  // Where unexpected failures (exceptions escaping a connection) are reported; stderr when
  // empty. Called on the executor.
  std::function<void(std::string_view)> log;
};

// Counters of the HTTP layer (hub_core counts the requests it serves).
struct rest_server_stats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_refused = 0;  // over max_connections
  std::uint64_t tls_handshake_failures = 0;
  std::uint64_t malformed_requests = 0;   // HTTP that did not parse: answered 400 and closed
  std::uint64_t oversized_requests = 0;   // 413 and 431
  std::uint64_t timeouts = 0;             // idle or slow connections closed
  std::uint64_t internal_errors = 0;      // exceptions caught in a connection (logged)
  std::size_t open_connections = 0;
};

// The HTTP(S) listener. Runs entirely on `executor`, which must be the hub_core's
// (single-threaded): every router and hub_core call happens there.
//
// Thread-safety: create on any thread before the executor runs, or on the executor; call
// start(), async_stop(), stats() and the destructor on the executor (or while it is not
// running).
class rest_server {
 public:
  // Opens, binds and listens (SO_REUSEADDR); nothing is accepted until start(). `address` is
  // an IPv4 or IPv6 literal, or "localhost" for 127.0.0.1.
  // Errors: invalid_argument-style errors for an address that does not parse, and the system
  // error of opening, binding or listening (e.g. address_in_use).
  [[nodiscard]] static boost::system::result<std::unique_ptr<rest_server>> create(
      const boost::asio::any_io_executor& executor, hub_core& core, rest_server_options options,
      rest_router::clock_function now = {});

  ~rest_server();  // closes the listener and every connection at once (no grace)
  rest_server(const rest_server&) = delete;
  rest_server& operator=(const rest_server&) = delete;

  // Starts accepting. Connections get TCP_NODELAY and, with TLS, a handshake bounded by
  // io_timeout.
  void start();

  // Graceful stop: stops accepting, closes connections waiting for a request, lets requests
  // in flight finish (their responses carry Connection: close), then calls `done` (posted to
  // the executor) once every connection has ended. Connections still open after `grace` are
  // closed; a direct method cut off that way is not answered. Calling it again while stopping
  // adds another `done` and keeps the first grace period; `done` may be empty. Destroying the
  // server drops the `done`s not yet called.
  void async_stop(std::chrono::milliseconds grace, std::function<void()> done);

  [[nodiscard]] rest_endpoint local_endpoint() const;
  [[nodiscard]] bool is_tls() const noexcept;
  [[nodiscard]] const rest_server_stats& stats() const noexcept;

  struct impl;  // defined in rest_server.cpp; public only so its helpers there can name it

 private:
  explicit rest_server(std::shared_ptr<impl> state);
  std::shared_ptr<impl> impl_;
};

}  // namespace twinfleet::hub
