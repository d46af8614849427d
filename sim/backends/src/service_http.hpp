// The HTTP/1.1 keep-alive connection pool under the service clients (private to sim/backends).
// Its .cpp is the module's one translation unit that includes Beast and Asio SSL.
#pragma once

#include <twinfleet/auth/sigv4.hpp>
#include <twinfleet/backends/service_error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::backends::detail {

struct http_request {
  std::string method;  // "GET", "PATCH", ...
  std::string target;  // path and query as sent
  std::vector<auth::http_header> headers;  // Host, Content-Length and Connection are added by the pool
  std::string body;
};

struct http_response {
  int status = 0;
  std::vector<auth::http_header> headers;
  std::string body;
  // First header named `name`, ASCII case-insensitive.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const;
};

// What the pool needs to know about the far end.
struct http_pool_config {
  std::string host;  // Host header and TLS name
  std::uint16_t port = 443;
  http_client_options options;
};

// Up to options.max_connections keep-alive connections to one host:port, shared by any number
// of coroutines on one executor; a request takes an idle connection, opens a new one while
// under the limit, or waits FIFO for one to be released. A reused connection that turns out to
// be closed by the server (end of stream or reset before an answer) is replaced and the request
// retried once on a fresh connection: servers close idle connections only between requests.
//
// Thread-safety: none; create and use on one executor (or a strand). The pool's state is
// shared with its running operations, so destroying the handle while requests are in flight
// is safe: close() fails them with service_failure::cancelled.
class http_pool {
 public:
  // Errors (service_failure::tls): the TLS client context could not be made (a CA file that is
  // missing or does not load).
  static service_result<std::shared_ptr<http_pool>> create(boost::asio::any_io_executor executor,
                                                           http_pool_config config);
  ~http_pool();

  // One exchange within `timeout` (the whole of it: waiting, connecting, writing, reading).
  // A non-2xx answer is a response, not an error. Errors: timeout, connect, tls, io, cancelled.
  // `request` must stay valid until the co_await completes (await the call directly).
  boost::asio::awaitable<service_result<http_response>> async_request(const http_request& request,
                                                                      std::chrono::milliseconds timeout);

  [[nodiscard]] http_pool_stats stats() const;
  [[nodiscard]] const http_pool_config& config() const noexcept;
  // Closes every connection and fails every waiting and running request.
  void close();

  struct impl;

 private:
  explicit http_pool(std::shared_ptr<impl> state);
  std::shared_ptr<impl> impl_;
};

// "HostName[:port]" for the Host header (the port only when not the scheme's default).
[[nodiscard]] std::string host_header(const http_pool_config& config);

}  // namespace twinfleet::backends::detail
