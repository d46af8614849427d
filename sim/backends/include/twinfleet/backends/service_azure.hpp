// The Azure IoT Hub service side, as a solution back end drives it (PROTOCOLS.md A8, A9, A11,
// A14, Part E): twins over REST (GET, PATCH desired with If-Match, PUT), direct methods, and
// the identity registry, with SAS policy tokens, api-version=2021-04-12 and the headers
// azure-iothub sends (Authorization, Request-Id, User-Agent, Host).
//
//   backends::azure_service_options o;
//   o.connection_string = hub_json["azure"]["service_connection_string"];
//   o.http.ca_file = hub_json["ca_file"];
//   auto client = backends::azure_service_client::create(executor, o);   // result
//   auto twin = co_await (*client)->async_get_twin("bulb-00001");
//   auto patched = co_await (*client)->async_patch_twin_desired("bulb-00001", desired, twin->etag);
//   if (!patched && patched.error().precondition_failed()) ...;            // 412001
//
// Threading: a client lives on one executor; call every member from coroutines running there.
// Arguments passed by view or reference must stay valid until the co_await completes (as they
// do when the call is awaited directly). GCC 12: pass locals, not temporaries with destructors,
// inside a co_await expression (STYLE and common brief); string literals are fine.
// Any number of coroutines may have requests in flight at once: they share a pool of
// http.max_connections keep-alive connections (HTTP/1.1, one request per connection at a
// time), so hundreds of requests per second pay no TLS handshake each.
//
// Every operation completes once, within http.request_timeout (methods: their own timeouts
// plus that), with a value or a service_error that keeps the HTTP status, IoT Hub's errorCode
// and error name, the message, and Retry-After (see service_error.hpp). Cancelling the
// awaiting coroutine (e.g. `op || timer`) abandons the request's connection.
#pragma once

#include <twinfleet/backends/service_error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace twinfleet::backends {

// `HostName=host[:port];SharedAccessKeyName=policy;SharedAccessKey=base64` (keys in any order,
// others ignored). The port defaults to 443.
struct azure_service_connection {
  std::string host_name;  // without the port: the SAS resource and the Host header's name
  std::uint16_t port = 443;
  std::string policy_name;
  std::string policy_key;  // base64
};

// Errors (twin::error-like message in service_error, kind bad_request): a missing HostName,
// SharedAccessKeyName or SharedAccessKey, or a port that is not 1..65535.
[[nodiscard]] service_result<azure_service_connection> parse_azure_service_connection_string(std::string_view text);

struct azure_service_options {
  std::string connection_string;
  http_client_options http;  // TLS/CA, connect_host, pool size, request timeout
  // Overrides the connection string's port (e.g. the local hub's plain http listener).
  std::optional<std::uint16_t> port;
  // SAS policy tokens: lifetime of each, renewed this long before expiry.
  std::chrono::seconds token_lifetime{3600};
  std::chrono::seconds token_renew_before{300};
  // Client-side pacing of registry operations (create_or_update_device, get_device,
  // delete_device): a token bucket of this rate and burst; 0 = unpaced. IoT Hub allows
  // 1.67/s per S1/S2 unit (PROTOCOLS.md A14).
  double registry_rate_per_second = 0;
  double registry_burst = 1;
};

// A twin as the service API returns it.
struct twin_document {
  boost::json::object twin;  // deviceId, etag, version, properties{desired, reported}, tags, ...
  std::string etag;          // unquoted ("AAAAAAAAAAc="); from the body, else the ETag header
  [[nodiscard]] std::int64_t desired_version() const;   // properties.desired.$version, or 0
  [[nodiscard]] std::int64_t reported_version() const;  // properties.reported.$version, or 0
};

// A direct method's answer: the status and payload the device chose.
struct method_result {
  int status = 0;
  boost::json::value payload;
};

// Symmetric keys for a device identity (base64).
struct device_keys {
  std::string primary_key;
  std::string secondary_key;
};

class azure_service_client {
 public:
  // Errors: a bad connection string (bad_request); a TLS context that cannot be made (tls).
  [[nodiscard]] static service_result<std::unique_ptr<azure_service_client>> create(
      boost::asio::any_io_executor executor, const azure_service_options& options);
  ~azure_service_client();  // closes the pool; requests still in flight fail with `cancelled`
  azure_service_client(const azure_service_client&) = delete;
  azure_service_client& operator=(const azure_service_client&) = delete;

  // GET /twins/{id}. Errors: 404001 DeviceNotFound, 401003, 429001, transport.
  boost::asio::awaitable<service_result<twin_document>> async_get_twin(std::string_view device_id);

  // PATCH /twins/{id} with {"properties":{"desired": desired}}: merge, null deletes. `etag`:
  // empty or "*" → If-Match "*" (unconditional, as azure-iothub sends); otherwise the etag,
  // quoted (quotes already there are kept). Returns the updated twin (its desired $version and
  // new etag). Errors: 412001 (stale etag: precondition_failed()), 400004, 404001, 429001, ...
  boost::asio::awaitable<service_result<twin_document>> async_patch_twin_desired(std::string_view device_id,
                                                                                 const boost::json::object& desired,
                                                                                 std::string_view etag = {});

  // PATCH /twins/{id} with any patch body ({"tags":…, "properties":{"desired":…}}).
  boost::asio::awaitable<service_result<twin_document>> async_patch_twin(std::string_view device_id,
                                                                         const boost::json::object& patch,
                                                                         std::string_view etag = {});

  // PUT /twins/{id}: replaces tags and desired with `twin`'s. Same etag rules and errors.
  boost::asio::awaitable<service_result<twin_document>> async_replace_twin(std::string_view device_id,
                                                                           const boost::json::object& twin,
                                                                           std::string_view etag = {});

  // POST /twins/{id}/methods. The HTTP deadline is response_timeout + connect_timeout +
  // http.request_timeout, so the hub's own verdict (504101) arrives first.
  // Errors: 404103 DeviceNotOnline (device_offline()), 504101 (gateway_timeout()), 400004
  // (timeout out of range, bad name), 404001, 429001.
  boost::asio::awaitable<service_result<method_result>> async_invoke_method(
      std::string_view device_id, std::string_view method_name, const boost::json::value& payload,
      std::chrono::seconds response_timeout = std::chrono::seconds(30),
      std::chrono::seconds connect_timeout = std::chrono::seconds(0));

  // PUT /devices/{id} with If-Match "*" (creates or updates), SAS authentication with `keys`
  // (empty primary_key, or the one-argument form: the hub generates them). Paced by
  // registry_rate_per_second. Returns the identity (deviceId, etag, status,
  // authentication.symmetricKey{primaryKey, secondaryKey}, ...).
  boost::asio::awaitable<service_result<boost::json::object>> async_create_or_update_device(
      std::string_view device_id, const device_keys& keys);
  boost::asio::awaitable<service_result<boost::json::object>> async_create_or_update_device(
      std::string_view device_id);
  // GET /devices/{id} (paced). Errors: 404001.
  boost::asio::awaitable<service_result<boost::json::object>> async_get_device(std::string_view device_id);
  // DELETE /devices/{id} with If-Match "*" (paced). Errors: 404001.
  boost::asio::awaitable<service_result<void>> async_delete_device(std::string_view device_id);

  [[nodiscard]] const azure_service_connection& connection() const noexcept;
  [[nodiscard]] http_pool_stats pool_stats() const;
  // Registry operations that waited for the pacing bucket.
  [[nodiscard]] std::uint64_t registry_paced() const noexcept;

  struct impl;

 private:
  explicit azure_service_client(std::shared_ptr<impl> state);
  std::shared_ptr<impl> impl_;  // shared with running operations, so they outlive the handle
};

}  // namespace twinfleet::backends
