// Service-client options from a local hub's description: the hub.json that `twinfleet hub`
// writes, or hub::local_hub::describe() of an embedded hub (documented in docs/HUB.md). The
// `hub` and `local` targets use these; `azure` and `aws` targets fill the options themselves.
#pragma once

#include <twinfleet/backends/service_aws.hpp>
#include <twinfleet/backends/service_aws_observer.hpp>
#include <twinfleet/backends/service_azure.hpp>

#include <boost/json/object.hpp>

namespace twinfleet::backends {

// azure.service_connection_string and ca_file. With `plain_http`, the hub's first http
// endpoint instead of HTTPS (load tests without TLS on the service side).
// Errors (bad_request): a missing field, or no http endpoint when `plain_http`.
[[nodiscard]] service_result<azure_service_options> azure_service_options_from_hub_json(
    const boost::json::object& hub, bool plain_http = false);

// aws.endpoint, aws.https_port (or the http endpoint with `plain_http`), aws.region,
// aws.access_key_id, aws.secret_access_key and ca_file. Errors (bad_request): a missing field.
[[nodiscard]] service_result<aws_service_options> aws_service_options_from_hub_json(const boost::json::object& hub,
                                                                                  bool plain_http = false);

// aws.endpoint, aws.mqtt_port, ca_file, and the client certificate of the first
// aws.backend_common_names name from certs_dir (client-<name>.pem/.key). When that
// certificate is missing it is issued by the hub's CA there, as `twinfleet certs --client
// NAME` does (which also rewrites server.pem with the same CA: a running hub is unaffected).
// Blocks on file I/O. Errors (bad_request): a missing field; certificate errors (message
// names the folder).
[[nodiscard]] service_result<aws_shadow_observer_options> aws_shadow_observer_options_from_hub_json(
    const boost::json::object& hub);

}  // namespace twinfleet::backends
