// What the service-side clients (azure_service_client, aws_service_client) return: a value or a
// service_error that keeps everything the platform said (HTTP status, IoT Hub's six-digit
// errorCode or AWS's exception type, the message, Retry-After), or why no answer came.
//
// Expected failures are values, never exceptions: a 412 on a stale etag, a 404103 for an
// offline device, a 409 version conflict and a 429 are what a load test counts.
#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

namespace twinfleet::backends {

// Where a request failed.
enum class service_failure {
  http,          // the service answered with a status >= 300 (see http_status and the codes)
  timeout,       // no answer within the request's deadline (pool wait, connect, TLS, I/O)
  connect,       // resolve or TCP connect failed
  tls,           // the TLS handshake failed (certificate, name, protocol)
  io,            // the connection broke mid-request (and the one retry did not help)
  bad_response,  // a 2xx answer whose body is not what the API promises (not JSON, ...)
  bad_request,   // refused before sending: bad argument (empty id, payload not JSON, ...)
  cancelled,     // the awaiting coroutine was cancelled or the client was closed
};

[[nodiscard]] const char* to_string(service_failure f) noexcept;

struct service_error {
  service_failure kind = service_failure::http;
  int http_status = 0;           // 0 when no HTTP answer arrived
  std::int64_t azure_code = 0;   // IoT Hub's errorCode (412001, 404103, 429001, ...); 0 when none
  std::string error_type;        // IoT Hub's error name ("PreconditionFailed", iothub-errorcode) or
                                 // AWS's x-amzn-ErrorType without ':…' ("ConflictException")
  std::string message;           // the platform's message, or what went wrong locally
  std::optional<std::chrono::milliseconds> retry_after;  // from Retry-After (seconds), if sent
  boost::system::error_code transport;  // the I/O error behind timeout/connect/tls/io

  [[nodiscard]] bool throttled() const noexcept { return http_status == 429; }
  [[nodiscard]] bool precondition_failed() const noexcept { return http_status == 412; }  // Azure 412001
  [[nodiscard]] bool conflict() const noexcept { return http_status == 409; }             // AWS version
  [[nodiscard]] bool not_found() const noexcept { return http_status == 404; }
  // Azure direct methods: the device is not connected (404103), or did not answer in time (504101).
  [[nodiscard]] bool device_offline() const noexcept { return azure_code == 404103; }
  [[nodiscard]] bool gateway_timeout() const noexcept { return http_status == 504; }

  // "http 412 412001 PreconditionFailed: message", for logs and test failures.
  friend std::ostream& operator<<(std::ostream& os, const service_error& e);
};

template <class T>
using service_result = boost::system::result<T, service_error>;

// result<T>::value() on an error is a bug at the caller: it throws std::runtime_error.
[[noreturn]] void throw_exception_from_error(const service_error& e, const boost::source_location&);

// How to reach an HTTP(S) service endpoint; shared by both clients.
struct http_client_options {
  // Dial this host or address instead of the service's host name (which stays in the Host
  // header, the SAS resource, SigV4 and the TLS name check). Empty: the service host.
  std::string connect_host;
  bool use_tls = true;               // false: plain HTTP (the local hub's http listener, load tests)
  std::filesystem::path ca_file;     // HTTPS trust anchors; empty: the system's
  bool verify_server = true;
  // Keep-alive connections kept per client. Requests beyond this many in flight wait (FIFO)
  // for a free connection, inside their own deadline.
  std::size_t max_connections = 4;
  // The whole request: waiting for a connection, connecting, TLS, writing, reading.
  std::chrono::milliseconds request_timeout{30'000};
  std::string user_agent = "twinfleet/0.1";
};

// Counters of a client's connection pool (for tests and the engine's report).
struct http_pool_stats {
  std::uint64_t requests = 0;            // HTTP exchanges started (retries count again)
  std::uint64_t connections_opened = 0;  // TCP (+TLS) connections established
  std::uint64_t reused = 0;              // exchanges served by an already open connection
  std::uint64_t retries = 0;             // a reused connection found closed, retried on a new one
  std::uint64_t waited = 0;              // requests that queued for a free connection
  std::size_t open = 0;                  // connections open now
};

}  // namespace twinfleet::backends
