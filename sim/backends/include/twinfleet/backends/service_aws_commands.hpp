// The back end's side of twinfleet's AWS command-topic convention (docs/PROFILES.md, "commands"):
// AWS IoT has no direct methods, so a command is a request published to
//   twinfleet/things/{thing}/commands/{name}            {"requestId": "…", "payload": …}
// through the data plane's HTTPS publish (aws_service_client::async_publish, QoS 1, as a real
// back end calls iot-data Publish), and the device's answer
//   twinfleet/things/{thing}/commands/{name}/response   {"requestId": "…", "status": N, "payload": …}
// is read on one MQTT connection of the back end subscribed to
//   twinfleet/things/+/commands/+/response
// and matched to its request by requestId.
//
//   backends::aws_command_options o;
//   o.broker = endpoint; o.transport = transport;   // TLS: a context with the back end's certificate
//   backends::aws_command_client commands(executor, *aws_service, o);
//   auto r = co_await commands.async_invoke("lamp-1", "blink", payload, 10s);
//   if (r && r->status < 400) ...;
//
// The MQTT connection is opened at the first call (the subscription is granted before the
// first request goes out, so no answer is missed) and again at a later call after it was lost
// (at most once a second). On AWS IoT the policy of the certificate must allow that client id
// and the subscription; the local hub grants ordinary topics to every connection.
//
// Threading: one executor; call from coroutines running there. The service client must outlive
// this one.
#pragma once

#include <twinfleet/backends/service_aws.hpp>
#include <twinfleet/net/client.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace twinfleet::backends {

struct aws_command_options {
  boost::asio::ip::tcp::endpoint broker;  // the MQTT endpoint devices connect to
  net::client_transport transport;        // tcp, or tls (the context must outlive the client)
  std::string client_id = "twinfleet-backend-commands";
  std::uint16_t keep_alive = 60;
  std::chrono::milliseconds connect_timeout{10'000};  // connect + CONNACK, and the SUBACK
};

// A device's answer: its status and payload, as sent.
struct aws_command_response {
  int status = 0;
  boost::json::value payload;
};

// "twinfleet/things/{thing}/commands/{name}" and the responses' filter.
[[nodiscard]] std::string aws_command_topic(std::string_view thing, std::string_view name);
inline constexpr std::string_view aws_command_response_filter = "twinfleet/things/+/commands/+/response";

class aws_command_client {
 public:
  aws_command_client(boost::asio::any_io_executor executor, aws_service_client& publisher, aws_command_options options);
  ~aws_command_client();  // aborts the connection; calls still waiting end with `cancelled`
  aws_command_client(const aws_command_client&) = delete;
  aws_command_client& operator=(const aws_command_client&) = delete;

  // Publishes the request and waits for its response, `timeout` in all.
  // Errors: bad_request (empty thing or name); connect (the MQTT connection could not be made
  // or its subscription was refused; `transport` says why); the publish's errors
  // (aws_service_client::async_publish); io (the MQTT connection was lost before the answer);
  // timeout (no answer in time: an offline device, a device without the convention).
  boost::asio::awaitable<service_result<aws_command_response>> async_invoke(std::string_view thing,
                                                                            std::string_view name,
                                                                            const boost::json::value& payload,
                                                                            std::chrono::milliseconds timeout);
  // DISCONNECT (bounded); calls still waiting end with `io`.
  boost::asio::awaitable<void> async_stop();

  [[nodiscard]] bool connected() const noexcept;
  [[nodiscard]] std::size_t pending() const noexcept;  // calls waiting for an answer

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace twinfleet::backends
