// One simulated device's Azure IoT Hub session over MQTT 3.1.1 (PROTOCOLS.md A4-A7, E): the
// CONNECT with SAS or X.509, the $iothub subscriptions, twin GET and reported PATCH correlated
// by $rid, desired notifications, direct methods, telemetry with a property bag, and SAS token
// renewal by reconnecting. Pure protocol: what to subscribe when, what to report, and how to
// reconcile (reconcile.hpp) is the device coroutine's business.
//
//   backends::azure_device_session s(co_await asio::this_coro::executor, config);
//   s.set_desired_handler([&](backends::desired_patch& p) { ... });
//   if (auto ec = co_await s.async_connect(endpoint, transport, 10s)) ...;
//   auto ec = co_await s.async_subscribe(backends::azure_subscription::twin_responses |
//                                        backends::azure_subscription::desired);
//   auto twin = co_await s.async_get_twin(5s);         // device_result<azure_twin_properties>
//   auto v = co_await s.async_patch_reported(patch, std::nullopt, 5s);  // new reported $version
//
// Threading: every member is called on the session's executor (the device's io_context thread
// or strand), and every handler runs there; nothing is thread-safe. Arguments passed by
// reference must stay valid until the co_await completes (they do when awaited directly).
// GCC 12: await into a local (`auto r = co_await ...;`), never inside a Catch macro or with an
// aggregate temporary in the co_await expression.
//
// Requests (GET, PATCH) complete exactly once: with the hub's answer, with
// device_errc::timeout after their timeout (the request may still be served; a late answer is
// dropped), net_errc::connection_lost when the connection ends first, device_errc::not_connected
// or not_subscribed at once, or operation_aborted when the awaiting coroutine is cancelled.
// Several requests may be outstanding at once; each has its own $rid (a per-session counter).
//
// Memory: one shared_ptr to the state (the configuration's strings, the MQTT connection, the
// handlers); requests in flight cost a timer each, on the awaiting coroutine's frame.
#pragma once

#include <twinfleet/backends/device_types.hpp>
#include <twinfleet/net/client.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace twinfleet::backends {

struct azure_device_config {
  // The IoT Hub host name: the username's first part and the SAS token's resource
  // ("{host_name}/devices/{device_id}"). The local hub checks only the path part.
  std::string host_name = "localhost";
  std::string device_id;  // also the MQTT client id
  // SAS authentication: the device's symmetric key (base64), e.g. from
  // auth::derive_device_key(group key, device id). Empty: X.509, no password; the device
  // certificate then rides in the TLS context of the transport given to async_connect().
  std::string sas_key;
  std::chrono::seconds token_lifetime{3600};  // SAS `se` = connect time + this (A4: C SDK 3600 s)
  std::string model_id;                       // Plug and Play DTMI, sent as &model-id= (A7); empty: none
  std::string api_version = "2021-04-12";
  std::uint16_t keep_alive = 180;  // seconds (the Node SDK's default, E)
  bool clean_session = false;      // the SDKs connect with 0 (A4)
  // QoS of the $iothub subscriptions (the hub answers twin requests and pushes desired
  // patches at this QoS) and of the twin request publishes. The SDKs use 0 for both (E).
  mqtt::qos subscribe_qos = mqtt::qos::at_most_once;
  mqtt::qos request_qos = mqtt::qos::at_most_once;
};

// The $iothub subscriptions (A5), combinable: twin_responses | desired.
enum class azure_subscription : std::uint8_t {
  none = 0,
  twin_responses = 1,  // $iothub/twin/res/#: answers to GET and reported PATCH
  desired = 2,         // $iothub/twin/PATCH/properties/desired/#
  methods = 4,         // $iothub/methods/POST/#
};
[[nodiscard]] constexpr azure_subscription operator|(azure_subscription a, azure_subscription b) noexcept {
  return static_cast<azure_subscription>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}
[[nodiscard]] constexpr azure_subscription operator&(azure_subscription a, azure_subscription b) noexcept {
  return static_cast<azure_subscription>(static_cast<std::uint8_t>(a) & static_cast<std::uint8_t>(b));
}
[[nodiscard]] constexpr bool contains(azure_subscription set, azure_subscription which) noexcept {
  return which != azure_subscription::none && (set & which) == which;
}

// A twin GET's answer (A5): the properties only, with the $version members taken out.
struct azure_twin_properties {
  json::object desired;
  json::object reported;
  std::int64_t desired_version = 0;
  std::int64_t reported_version = 0;
};

// A direct method request ($iothub/methods/POST/{name}/?$rid={rid}); answer it with
// async_respond_method(rid, ...).
struct method_request {
  std::string name;
  std::string rid;     // the hub's request id, as received
  json::value payload; // the body parsed as JSON; null when empty; a string when not JSON
  steady_time received{};
};

// Telemetry properties (A5): system properties as $.xx, application properties as k=v.
struct telemetry_properties {
  std::string content_type;      // $.ct, e.g. "application/json"
  std::string content_encoding;  // $.ce, e.g. "utf-8"
  std::string message_id;        // $.mid
  std::string correlation_id;    // $.cid
  std::string component;         // $.sub (Plug and Play component)
  std::vector<std::pair<std::string, std::string>> application;  // in order
};

// "devices/{id}/messages/events/" followed by the property bag: each key and value
// percent-encoded (RFC 3986, '$' of system keys as %24), joined k=v&k2=v2; system properties
// first ($.mid, $.cid, $.ct, $.ce, $.sub), then the application ones in order. Empty strings
// leave a system property out.
[[nodiscard]] std::string azure_telemetry_topic(std::string_view device_id, const telemetry_properties& properties);

// "{host}/{device}/?api-version={v}[&model-id={percent-encoded DTMI}]".
[[nodiscard]] std::string azure_username(const azure_device_config& config);

// A $iothub/twin/res/{status}/?$rid={rid}[&$version={v}] topic taken apart; nothing when the
// topic is not of that form or the status is not a number.
struct azure_twin_response_topic {
  int status = 0;
  std::string_view rid;
  std::optional<std::int64_t> version;
};
[[nodiscard]] std::optional<azure_twin_response_topic> parse_azure_twin_response_topic(std::string_view topic);

class azure_device_session {
 public:
  // Called on the session's executor, inside the connection's reader: move what you keep out
  // of the argument; do not block. They may start requests (co_spawn) and publish.
  using desired_handler = std::function<void(desired_patch&)>;
  using method_handler = std::function<void(method_request&)>;
  // The connection ended without async_disconnect() (or the renewal's own reconnect): the
  // hub closed it (SAS expiry, takeover, a fault), keep-alive, transport error. Pending
  // requests have completed with connection_lost before this is called.
  using closed_handler = std::function<void(boost::system::error_code)>;

  azure_device_session(boost::asio::any_io_executor executor, azure_device_config config,
                       const net::client_options& options = {});
  // Drops the handlers, then aborts a live connection: no handler runs once the session is
  // gone, so a handler may refer to what owns the session without keeping it alive.
  ~azure_device_session();
  azure_device_session(azure_device_session&&) noexcept;
  azure_device_session& operator=(azure_device_session&&) noexcept;
  azure_device_session(const azure_device_session&) = delete;
  azure_device_session& operator=(const azure_device_session&) = delete;

  void set_desired_handler(desired_handler handler);
  void set_method_handler(method_handler handler);
  void set_closed_handler(closed_handler handler);

  // CONNECT as device_id with azure_username() and, with a SAS key, a fresh token valid for
  // token_lifetime. `transport` (tcp, or tls with a context holding the CA and for X.509 the
  // device certificate) is read during the call only. Subscriptions start empty.
  // Errors: those of net::client_connection::async_connect (connack_errc::not_authorized for
  // bad credentials, connect_timeout, ...), auth_errc::invalid_key for a SAS key that is not
  // base64.
  boost::asio::awaitable<boost::system::error_code> async_connect(const boost::asio::ip::tcp::endpoint& server,
                                                                  const net::client_transport& transport,
                                                                  std::chrono::milliseconds timeout);
  boost::asio::awaitable<boost::system::error_code> async_connect(std::string_view host, std::uint16_t port,
                                                                  const net::client_transport& transport,
                                                                  std::chrono::milliseconds timeout);

  // Subscribes to the topics in `which` in one SUBSCRIBE and waits for the SUBACK (already
  // subscribed ones are sent again, harmlessly). Errors: device_errc::subscribe_refused when
  // the hub refused one (the others stay subscribed), the connection's errors.
  boost::asio::awaitable<boost::system::error_code> async_subscribe(azure_subscription which);

  // GET the twin ($iothub/twin/GET/?$rid=). Needs twin_responses subscribed.
  // Errors: device_errc::rejected with the status (429, 5xx) and body, and the request errors
  // above; device_errc::bad_response when a 200 body lacks desired/reported/$version.
  boost::asio::awaitable<device_result<azure_twin_properties>> async_get_twin(std::chrono::milliseconds timeout);

  // PATCH reported properties (a JSON merge patch; null deletes). With `expected_version` the
  // patch is conditional ($version= on the topic): 412 when the reported $version differs.
  // Completes with the new reported $version. Needs twin_responses subscribed.
  // Errors: device_errc::rejected with status 400/412/429/5xx and the body's errorCode and
  // message; the request errors above.
  boost::asio::awaitable<device_result<std::int64_t>> async_patch_reported(const json::object& patch,
                                                                           std::optional<std::int64_t> expected_version,
                                                                           std::chrono::milliseconds timeout);

  // Answers a direct method: $iothub/methods/res/{status}/?$rid={rid} with `payload`
  // serialized (QoS 0, A5). Completes once written. Errors: the connection's publish errors.
  boost::asio::awaitable<boost::system::error_code> async_respond_method(std::string_view rid, int status,
                                                                         const json::value& payload);
  // The same, queued without waiting (from inside a handler).
  boost::system::error_code respond_method(std::string_view rid, int status, const json::value& payload);

  // Sends telemetry on azure_telemetry_topic(). QoS 1 completes at PUBACK, QoS 0 once
  // written. Errors: the connection's publish errors.
  boost::asio::awaitable<boost::system::error_code> async_send_telemetry(std::string_view payload,
                                                                         const telemetry_properties& properties,
                                                                         mqtt::qos qos = mqtt::qos::at_least_once);

  // SAS renewal (A4, E): MQTT 3.1.1 cannot re-authenticate a live connection, so this sends
  // DISCONNECT (when connected), connects again with a new token and restores the
  // subscriptions held before. The closed handler is not called for this disconnect. Desired
  // notifications are not queued while away (C1.1): the caller should GET afterwards.
  // Errors: those of async_connect and async_subscribe.
  boost::asio::awaitable<boost::system::error_code> async_reconnect(const boost::asio::ip::tcp::endpoint& server,
                                                                    const net::client_transport& transport,
                                                                    std::chrono::milliseconds timeout);

  // Sends DISCONNECT and waits for the close (net::client_connection::async_disconnect);
  // the closed handler is not called.
  boost::asio::awaitable<boost::system::error_code> async_disconnect();
  // Drops the connection at once (the hub sees a lost device); the closed handler is called.
  void abort();

  [[nodiscard]] bool connected() const noexcept;
  [[nodiscard]] azure_subscription subscriptions() const noexcept;
  // SAS only: the current token's expiry, and when to renew it (at 80 % of its lifetime, as
  // the C SDK does, A4). Both are the epoch before the first connect or with X.509.
  [[nodiscard]] std::chrono::system_clock::time_point token_expiry() const noexcept;
  [[nodiscard]] std::chrono::system_clock::time_point token_renewal_due() const noexcept;
  [[nodiscard]] const azure_device_config& config() const noexcept;
  [[nodiscard]] net::client_connection& connection() noexcept;
  // Requests waiting for an answer now.
  [[nodiscard]] std::size_t pending_requests() const noexcept;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace twinfleet::backends
