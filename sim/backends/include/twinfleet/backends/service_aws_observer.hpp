// The AWS back end's eye on shadows: one MQTT connection (mutual TLS with a certificate whose
// CN the broker treats as a back-end identity — the local hub's hub.json
// aws.backend_common_names; on AWS, a policy allowing the subscriptions) subscribed to
//   $aws/things/+/shadow/update/documents
//   $aws/things/+/shadow/name/+/update/documents
// and handing every document (PROTOCOLS.md B3.5) to a handler, so a checker sees from the
// service side when devices acknowledged desired state.
//
//   auto observer = backends::aws_shadow_observer::create(executor, options);   // result
//   (*observer)->set_handler([&](const backends::shadow_document_event& e) { ... });
//   if (auto ec = co_await (*observer)->async_start()) ...;
//   ...
//   co_await (*observer)->async_stop();
//
// Threading: one executor; call members from coroutines running there. The handler runs on
// that executor, inside the connection's reader: it must not block. No automatic reconnect:
// the closed handler reports a lost connection and async_start() may be called again (the
// subscriptions are made afresh; documents published in between are missed).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::backends {

// One /update/documents message.
struct shadow_document_event {
  std::string thing;
  std::string shadow;  // empty: the classic shadow
  std::int64_t previous_version = 0;  // 0 when `previous` was null (the update created the shadow)
  std::int64_t current_version = 0;
  boost::json::object previous_state;  // previous.state {desired, reported}; empty when none
  boost::json::object current_state;   // current.state
  std::optional<std::string> client_token;
  std::int64_t timestamp = 0;          // the service's, seconds since the epoch
  std::chrono::system_clock::time_point received_at;  // when this process read it
};

struct aws_shadow_observer_options {
  std::string host;          // the broker's name: TLS name check and SNI
  std::uint16_t port = 8883;
  std::string connect_host;  // dial this instead of `host` (e.g. "127.0.0.1"); empty: host
  bool use_tls = true;       // false: plain MQTT (a local hub in open auth mode)
  std::filesystem::path ca_file;           // empty: the system's trust anchors
  std::filesystem::path certificate_file;  // the back end's client certificate (CN = back-end name)
  std::filesystem::path private_key_file;
  std::vector<std::string> alpn;           // e.g. {"x-amzn-mqtt-ca"} for AWS IoT on port 443
  std::string client_id = "twinfleet-backend-observer";
  std::uint16_t keep_alive = 60;
  std::chrono::milliseconds connect_timeout{10'000};  // connect + CONNACK, and SUBACK
};

struct aws_shadow_observer_stats {
  std::uint64_t documents = 0;  // delivered to the handler
  std::uint64_t malformed = 0;  // on a documents topic but not a B3.5 document: skipped
  std::uint64_t other = 0;      // messages on any other topic: skipped
};

class aws_shadow_observer {
 public:
  using document_handler = std::function<void(const shadow_document_event&)>;
  using closed_handler = std::function<void(boost::system::error_code)>;

  // Errors: the TLS context's (a CA, certificate or key file that is missing or does not load).
  [[nodiscard]] static boost::system::result<std::unique_ptr<aws_shadow_observer>> create(
      boost::asio::any_io_executor executor, const aws_shadow_observer_options& options);
  ~aws_shadow_observer();  // aborts the connection (no DISCONNECT)
  aws_shadow_observer(const aws_shadow_observer&) = delete;
  aws_shadow_observer& operator=(const aws_shadow_observer&) = delete;

  void set_handler(document_handler handler);
  // Called once when an established connection ends (see net::client_connection).
  void set_closed_handler(closed_handler handler);

  // Connects and subscribes to both document filters (QoS 1); completes when both SUBACKs
  // granted. Errors: net/mqtt connect errors (connack_errc::not_authorized when the broker
  // refuses the certificate), errc::permission_denied when a subscription was refused,
  // errc::timed_out when the SUBACK did not come within connect_timeout.
  boost::asio::awaitable<boost::system::error_code> async_start();
  // DISCONNECT and wait for the close (bounded by the connection's close timeout).
  boost::asio::awaitable<void> async_stop();

  [[nodiscard]] bool connected() const noexcept;
  [[nodiscard]] const aws_shadow_observer_stats& stats() const noexcept;

  // Parses one message: nullopt when `topic` is not a documents topic or the payload is not a
  // B3.5 document. Exposed for tests and for other transports.
  [[nodiscard]] static std::optional<shadow_document_event> parse_document(std::string_view topic,
                                                                         std::string_view payload);

  struct impl;

 private:
  explicit aws_shadow_observer(std::shared_ptr<impl> state);
  std::shared_ptr<impl> impl_;  // shared with running operations, so they outlive the handle
};

}  // namespace twinfleet::backends
