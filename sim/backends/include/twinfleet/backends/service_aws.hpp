// The AWS IoT Device Shadow data plane, as a solution back end calls it (PROTOCOLS.md B8, B10):
// GET/POST/DELETE /things/{thing}/shadow[?name=S], ListNamedShadowsForThing and HTTPS
// publish (POST /topics/{topic}), signed with
// SigV4 (service "iotdata", as the AWS SDKs sign iot-data), over HTTPS with a CA.
//
//   backends::aws_service_options o;
//   o.endpoint = hub_json["aws"]["endpoint"]; o.port = hub_json["aws"]["https_port"];
//   o.region = hub_json["aws"]["region"];
//   o.credentials = {hub_json["aws"]["access_key_id"], hub_json["aws"]["secret_access_key"], ""};
//   o.http.ca_file = hub_json["ca_file"];
//   auto client = backends::aws_service_client::create(executor, o);
//   auto accepted = co_await (*client)->async_update_shadow("thermo-1", "", document);
//   if (!accepted && accepted.error().conflict()) ...;   // 409 Version conflict
//
// Threading, pooling, deadlines and errors: as azure_service_client (service_azure.hpp). Errors
// keep the HTTP status, AWS's exception type (x-amzn-ErrorType, e.g. "ConflictException") and
// its message ("Version conflict", "No shadow exists with name: 'x'").
#pragma once

#include <twinfleet/auth/sigv4.hpp>
#include <twinfleet/backends/service_error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::backends {

struct aws_service_options {
  std::string endpoint;  // host name, e.g. "abc-ats.iot.us-east-1.amazonaws.com" or "localhost"
  std::uint16_t port = 443;
  std::string region = "us-east-1";
  auth::aws_credentials credentials;
  std::string signing_service = "iotdata";  // the docs' "iotdevicegateway" also works on AWS
  http_client_options http;
};

// One page of ListNamedShadowsForThing.
struct named_shadow_page {
  std::vector<std::string> names;
  std::string next_token;  // empty on the last page
  std::int64_t timestamp = 0;
};

class aws_service_client {
 public:
  // Errors: missing endpoint, region or credentials (bad_request); a TLS context that cannot
  // be made (tls).
  [[nodiscard]] static service_result<std::unique_ptr<aws_service_client>> create(
      boost::asio::any_io_executor executor, const aws_service_options& options);
  ~aws_service_client();  // closes the pool; requests still in flight fail with `cancelled`
  aws_service_client(const aws_service_client&) = delete;
  aws_service_client& operator=(const aws_service_client&) = delete;

  // `shadow` empty: the classic shadow. Views must stay valid until the co_await completes.

  // GET: the B3.3 document (state, metadata, version, timestamp).
  // Errors: 404 ResourceNotFoundException ("No shadow exists with name: …"), 403, 429.
  boost::asio::awaitable<service_result<boost::json::object>> async_get_shadow(std::string_view thing,
                                                                              std::string_view shadow);
  // POST `document` ({"state":{…}, "version"?, "clientToken"?}): the B3.2 accepted body.
  // Errors: 409 ConflictException ("Version conflict": conflict()), 400, 413, 429.
  boost::asio::awaitable<service_result<boost::json::object>> async_update_shadow(std::string_view thing,
                                                                                 std::string_view shadow,
                                                                                 const boost::json::object& document);
  // DELETE: {"version":N,"timestamp":T}. Errors: 404.
  boost::asio::awaitable<service_result<boost::json::object>> async_delete_shadow(std::string_view thing,
                                                                                 std::string_view shadow);
  // GET /api/things/shadow/ListNamedShadowsForThing/{thing}; page_size 0: the service's
  // default (the local hub: 100). An unknown thing gives an empty list.
  boost::asio::awaitable<service_result<named_shadow_page>> async_list_named_shadows(std::string_view thing,
                                                                                    std::string_view next_token,
                                                                                    std::uint32_t page_size);

  // POST /topics/{topic}?qos=0|1 (HTTPS publish, B8): how a back end sends commands to AWS
  // devices on a topic they subscribe to. `qos` 0 or 1. Errors: 400 (bad topic or qos), 403, 429.
  boost::asio::awaitable<service_result<void>> async_publish(std::string_view topic, std::string_view payload,
                                                             int qos);

  [[nodiscard]] http_pool_stats pool_stats() const;

  struct impl;

 private:
  explicit aws_service_client(std::shared_ptr<impl> state);
  std::shared_ptr<impl> impl_;  // shared with running operations, so they outlive the handle
};

}  // namespace twinfleet::backends
