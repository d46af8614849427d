// The AWS back end's eye on shadows: one MQTT connection (mutual TLS with a certificate whose
// CN the broker treats as a back-end identity — the local hub's hub.json
// aws.backend_common_names; on AWS, a policy allowing the subscriptions) subscribed by default to
//   $aws/things/+/shadow/update/documents
//   $aws/things/+/shadow/name/+/update/documents
// or to the filters it is given (one observer of a set that shares the fleet's shadows out:
// AWS IoT delivers at most 100 messages a second to one connection, and takes at most 50
// subscriptions per connection, 8 filters per SUBSCRIBE), and handing every document
// (PROTOCOLS.md B3.5) to a handler, so a checker sees from the service side when devices
// acknowledged desired state.
//
//   auto observer = backends::aws_shadow_observer::create(executor, options);   // result
//   (*observer)->set_handler([&](const backends::shadow_document_event& e) { ... });
//   if (auto ec = co_await (*observer)->async_start()) ...;   // last_error() says why
//   ...
//   co_await (*observer)->async_stop();
//
// The connection is Paho MQTT C++ (DESIGN.md: one service connection, an independent MQTT
// implementation), not twinfleet's own client; Paho's headers stay in the .cpp. Paho runs the
// connection on its own threads: every Paho callback is posted into `executor`, and the
// operations complete through Paho's action listeners, so no member blocks the executor's
// thread. No persistence (MQTTCLIENT_PERSISTENCE_NONE), MQTT 3.1.1, clean session.
//
// Threading: one executor; call members from coroutines running there (the destructor may
// also run elsewhere once nothing runs on the executor). The handlers run on that executor:
// they must not block. Documents are parsed on Paho's thread, so the executor only pays for
// the handler. No automatic reconnect: the closed handler reports a lost connection and
// async_start() may be called again (the subscriptions are made afresh; documents published
// in between are missed).
//
// TLS: the CA file (empty: the system's trust anchors), the client certificate and key, ALPN
// (Paho C ≥ 1.3.2; Debian 12 has 1.3.12). Paho checks the server's certificate against the
// name it dials, and sends that name as SNI: `connect_host` when set, else `host` — with
// connect_host "127.0.0.1" against a local hub, its certificate names 127.0.0.1 too.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
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
  std::chrono::steady_clock::time_point received_steady;  // the same moment, on the steady clock
};

struct aws_shadow_observer_options {
  std::string host;          // the broker's name: TLS name check and SNI
  std::uint16_t port = 8883;
  std::string connect_host;  // dial this instead of `host` (e.g. "127.0.0.1"); empty: host.
                             // With TLS the certificate must name what is dialled (see above).
  bool use_tls = true;       // false: plain MQTT (a local hub in open auth mode)
  std::filesystem::path ca_file;           // empty: the system's trust anchors
  std::filesystem::path certificate_file;  // the back end's client certificate (CN = back-end name)
  std::filesystem::path private_key_file;
  std::vector<std::string> alpn;           // e.g. {"x-amzn-mqtt-ca"} for AWS IoT on port 443
  std::string client_id = "twinfleet-backend-observer";
  std::uint16_t keep_alive = 60;
  std::chrono::milliseconds connect_timeout{10'000};  // connect + CONNACK, and each SUBACK
  // What to subscribe to; empty: the two wildcard filters above. Sent in SUBSCRIBEs of at most
  // max_filters_per_subscribe filters each.
  std::vector<std::string> filters;
};

// AWS IoT's message broker quota (PROTOCOLS.md B7: not adjustable).
inline constexpr std::size_t max_filters_per_subscribe = 8;

// The documents topic of one shadow ("" is the classic shadow): what a sharded observer
// subscribes to, one exact filter per shadow.
[[nodiscard]] std::string shadow_documents_topic(std::string_view thing, std::string_view shadow);

struct aws_shadow_observer_stats {
  std::uint64_t documents = 0;  // delivered to the handler
  std::uint64_t malformed = 0;  // on a documents topic but not a B3.5 document: skipped
  std::uint64_t other = 0;      // messages on any other topic: skipped
};

class aws_shadow_observer {
 public:
  using document_handler = std::function<void(const shadow_document_event&)>;
  using closed_handler = std::function<void(boost::system::error_code)>;

  // Errors: the TLS context's (a CA, certificate or key file that is missing or does not load,
  // checked by loading them once), errc::invalid_argument when Paho refuses the address.
  [[nodiscard]] static boost::system::result<std::unique_ptr<aws_shadow_observer>> create(
      boost::asio::any_io_executor executor, const aws_shadow_observer_options& options);
  // Aborts the connection (no DISCONNECT) at once, even while an async_start() or async_stop()
  // still waits (it then ends with operation_canceled, or without effect): no handler or Paho
  // callback runs after it. Destroy it before its executor's context.
  ~aws_shadow_observer();
  aws_shadow_observer(const aws_shadow_observer&) = delete;
  aws_shadow_observer& operator=(const aws_shadow_observer&) = delete;

  void set_handler(document_handler handler);
  // Called once when an established connection is lost (not after async_stop()), with
  // net_errc::connection_lost.
  void set_closed_handler(closed_handler handler);

  // Connects and subscribes to its filters (QoS 0: see the .cpp); completes when every SUBACK
  // granted them all. Errors: connack_errc (net/error.hpp) when the broker refuses the CONNECT
  // (not_authorized when it refuses the certificate), errc::connection_refused for any other
  // connect failure (TCP, TLS; Paho's words in last_error()), errc::permission_denied when a
  // subscription was refused, errc::timed_out when CONNACK or SUBACK did not come within
  // connect_timeout. On an error the connection is closed.
  boost::asio::awaitable<boost::system::error_code> async_start();
  // DISCONNECT and wait for it to be sent (bounded: 5 s). Documents already posted to the
  // executor may still reach the handler afterwards; clear it to stop them.
  boost::asio::awaitable<void> async_stop();

  [[nodiscard]] bool connected() const noexcept;
  [[nodiscard]] const aws_shadow_observer_stats& stats() const noexcept;
  // Why the last async_start() failed, in Paho's words; empty after a success.
  [[nodiscard]] const std::string& last_error() const noexcept;

  // Parses one message: nullopt when `topic` is not a documents topic or the payload is not a
  // B3.5 document. Exposed for tests and for other transports.
  [[nodiscard]] static std::optional<shadow_document_event> parse_document(std::string_view topic,
                                                                         std::string_view payload);

  struct impl;

 private:
  explicit aws_shadow_observer(std::shared_ptr<impl> state);
  std::shared_ptr<impl> impl_;  // shared with running operations; Paho's callbacks hold it weakly
};

}  // namespace twinfleet::backends
