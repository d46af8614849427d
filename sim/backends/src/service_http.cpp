// The keep-alive HTTP/1.1 pool of the service clients: Beast over TCP or TLS, on Asio
// coroutines. The only file of sim/backends that includes Beast and Asio SSL, so that the
// clients' own translation units (and everything that includes their headers) stay light.
#include "service_http.hpp"

#include <twinfleet/auth/tls.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <deque>
#include <set>

namespace twinfleet::backends::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// Answers larger than this are refused (a twin is at most ~72 KB, a method payload 128 KB).
constexpr std::uint64_t max_response_body = 8 * 1024 * 1024;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

service_error transport_error(service_failure kind, boost::system::error_code ec, std::string what) {
  service_error e;
  e.kind = kind;
  e.transport = ec;
  e.message = std::move(what);
  return e;
}

// A kept-alive connection that the server closed while it sat idle shows one of these on the
// next exchange, before any answer.
bool is_stale_connection(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::ssl::error::stream_truncated;
}

struct connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  bool used = false;  // has served an exchange: a failure may mean the server closed it idle

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  void close() {
    boost::system::error_code ignored;
    lowest().socket().close(ignored);
  }
};

struct waiter {
  explicit waiter(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  std::unique_ptr<connection> handed;  // an idle connection given by release()
  bool may_open = false;               // a slot freed: open a new connection
};

}  // namespace

std::optional<std::string_view> http_response::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) return std::string_view(h.value);
  }
  return std::nullopt;
}

std::string host_header(const http_pool_config& config) {
  const std::uint16_t default_port = config.options.use_tls ? 443 : 80;
  return config.port == default_port ? config.host : config.host + ":" + std::to_string(config.port);
}

struct http_pool::impl : std::enable_shared_from_this<impl> {
  impl(asio::any_io_executor ex, http_pool_config c) : executor(std::move(ex)), config(std::move(c)) {}

  asio::any_io_executor executor;
  http_pool_config config;
  std::unique_ptr<asio::ssl::context> ssl;
  std::vector<std::unique_ptr<connection>> idle;  // last released first: the warmest socket
  std::set<connection*> busy;                      // for close()
  std::deque<std::shared_ptr<waiter>> waiters;
  std::size_t slots = 0;  // connections open or being opened, idle or busy
  http_pool_stats stats;
  bool closed = false;

  // A connection (nullptr: the caller owns a slot and opens one), or an error.
  struct lease {
    std::unique_ptr<connection> conn;
  };

  asio::awaitable<service_result<lease>> acquire(clock_type::time_point deadline) {
    if (closed) co_return transport_error(service_failure::cancelled, asio::error::operation_aborted, "client closed");
    if (!idle.empty()) {
      lease l{std::move(idle.back())};
      idle.pop_back();
      co_return l;
    }
    if (slots < config.options.max_connections) {
      ++slots;
      co_return lease{};
    }
    ++stats.waited;
    auto w = std::make_shared<waiter>(executor);
    waiters.push_back(w);
    w->timer.expires_at(deadline);
    auto [ec] = co_await w->timer.async_wait(use_tuple);
    if (w->handed) co_return lease{std::move(w->handed)};
    if (w->may_open) co_return lease{};
    waiters.erase(std::remove(waiters.begin(), waiters.end(), w), waiters.end());
    if (closed) co_return transport_error(service_failure::cancelled, asio::error::operation_aborted, "client closed");
    if (ec == asio::error::operation_aborted && clock_type::now() < deadline) {
      co_return transport_error(service_failure::cancelled, ec, "cancelled while waiting for a connection");
    }
    co_return transport_error(service_failure::timeout, asio::error::timed_out,
                              "timed out waiting for a free connection");
  }

  // Gives a connection back (reusable) or its slot (not reusable, or nullptr after a failed open).
  void release(std::unique_ptr<connection> conn, bool reusable) {
    if (conn) busy.erase(conn.get());
    if (conn && reusable && !closed) {
      if (!waiters.empty()) {
        auto w = std::move(waiters.front());
        waiters.pop_front();
        w->handed = std::move(conn);
        w->timer.cancel();
      } else {
        idle.push_back(std::move(conn));
      }
      return;
    }
    if (conn) conn->close();
    --slots;
    if (!waiters.empty() && !closed) {
      auto w = std::move(waiters.front());
      waiters.pop_front();
      w->may_open = true;
      ++slots;
      w->timer.cancel();
    }
  }

  // Every idle connection is probably as stale as the one that just failed (same server idle
  // timeout): drop them so the retry opens a fresh one.
  void drop_idle() {
    for (auto& c : idle) {
      c->close();
      --slots;
    }
    idle.clear();
  }

  asio::awaitable<service_result<std::unique_ptr<connection>>> open(clock_type::time_point deadline) {
    using namespace asio::experimental::awaitable_operators;
    const std::string& dial = config.options.connect_host.empty() ? config.host : config.options.connect_host;
    std::vector<tcp::endpoint> endpoints;
    boost::system::error_code parse_ec;
    const auto address = asio::ip::make_address(dial, parse_ec);
    if (!parse_ec) {
      endpoints.emplace_back(address, config.port);
    } else {
      tcp::resolver resolver(executor);
      asio::steady_timer timer(executor, deadline);
      const std::string service = std::to_string(config.port);
      auto raced = co_await (resolver.async_resolve(dial, service, use_tuple) ||
                             timer.async_wait(use_tuple));
      if (raced.index() == 1) {
        co_return transport_error(service_failure::timeout, asio::error::timed_out, "timed out resolving " + dial);
      }
      auto [rec, results] = std::get<0>(raced);
      if (rec) co_return transport_error(service_failure::connect, rec, "cannot resolve " + dial);
      for (const auto& r : results) endpoints.push_back(r.endpoint());
    }

    auto conn = std::make_unique<connection>();
    if (ssl) {
      conn->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(executor, *ssl);
    } else {
      conn->plain = std::make_unique<beast::tcp_stream>(executor);
    }
    auto& lowest = conn->lowest();
    lowest.expires_at(deadline);
    auto [cec, ep] = co_await lowest.async_connect(endpoints, use_tuple);
    (void)ep;
    if (cec == beast::error::timeout) {
      co_return transport_error(service_failure::timeout, cec, "timed out connecting to " + dial);
    }
    if (cec) co_return transport_error(service_failure::connect, cec, "cannot connect to " + dial);
    boost::system::error_code ignored;
    lowest.socket().set_option(tcp::no_delay(true), ignored);  // DESIGN.md: Nagle costs ~40 ms
    if (conn->tls) {
      if (auto named = auth::set_tls_server_name(conn->tls->native_handle(), config.host); !named) {
        co_return transport_error(service_failure::tls, named.error(), "bad TLS server name " + config.host);
      }
      auto [hec] = co_await conn->tls->async_handshake(asio::ssl::stream_base::client, use_tuple);
      if (hec == beast::error::timeout) co_return transport_error(service_failure::timeout, hec, "timed out in the TLS handshake");
      if (hec) co_return transport_error(service_failure::tls, hec, "TLS handshake with " + config.host + " failed");
    }
    ++stats.connections_opened;
    co_return conn;
  }

  template <class Stream>
  asio::awaitable<boost::system::error_code> exchange(Stream& stream, connection& conn, const http_request& request,
                                                      http_response& out, bool& keep_alive,
                                                      clock_type::time_point deadline) {
    http::request<http::string_body> req;
    req.method_string(request.method);
    req.target(request.target);
    req.version(11);
    req.set(http::field::host, host_header(config));
    if (!config.options.user_agent.empty()) req.set(http::field::user_agent, config.options.user_agent);
    for (const auto& h : request.headers) req.insert(h.name, h.value);
    req.body() = request.body;
    req.keep_alive(true);
    req.prepare_payload();
    conn.lowest().expires_at(deadline);
    auto [wec, wn] = co_await http::async_write(stream, req, use_tuple);
    (void)wn;
    if (wec) co_return wec;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_response_body);
    auto [rec, rn] = co_await http::async_read(stream, conn.buffer, parser, use_tuple);
    (void)rn;
    if (rec) co_return rec;
    auto res = parser.release();
    out.status = static_cast<int>(res.result_int());
    out.headers.clear();
    for (const auto& f : res) out.headers.push_back({std::string(f.name_string()), std::string(f.value())});
    out.body = std::move(res.body());
    keep_alive = res.keep_alive();
    co_return boost::system::error_code{};
  }

  asio::awaitable<service_result<http_response>> run(const http_request& request, std::chrono::milliseconds timeout) {
    const auto deadline = clock_type::now() + timeout;
    for (int attempt = 0;; ++attempt) {
      auto leased = co_await acquire(deadline);
      if (!leased) co_return leased.error();
      std::unique_ptr<connection> conn = std::move(leased->conn);
      const bool reused = conn != nullptr;
      if (!conn) {
        auto opened = co_await open(deadline);
        if (!opened) {
          release(nullptr, false);
          co_return opened.error();
        }
        conn = std::move(*opened);
      }
      if (closed) {
        release(std::move(conn), false);
        co_return transport_error(service_failure::cancelled, asio::error::operation_aborted, "client closed");
      }
      busy.insert(conn.get());
      ++stats.requests;
      if (reused) ++stats.reused;
      http_response response;
      bool keep_alive = false;
      boost::system::error_code ec;
      if (conn->tls) {
        ec = co_await exchange(*conn->tls, *conn, request, response, keep_alive, deadline);
      } else {
        ec = co_await exchange(*conn->plain, *conn, request, response, keep_alive, deadline);
      }
      if (!ec) {
        conn->used = true;
        release(std::move(conn), keep_alive);
        co_return response;
      }
      release(std::move(conn), false);
      if (reused && attempt == 0 && is_stale_connection(ec) && !closed) {
        ++stats.retries;
        drop_idle();
        continue;
      }
      if (closed) co_return transport_error(service_failure::cancelled, ec, "client closed");
      if (ec == beast::error::timeout) co_return transport_error(service_failure::timeout, ec, "timed out waiting for the answer");
      if (ec == asio::error::operation_aborted) co_return transport_error(service_failure::cancelled, ec, "cancelled");
      co_return transport_error(service_failure::io, ec, "HTTP exchange failed");
    }
  }
};

service_result<std::shared_ptr<http_pool>> http_pool::create(asio::any_io_executor executor, http_pool_config config) {
  if (config.options.max_connections == 0) config.options.max_connections = 1;
  auto state = std::make_shared<impl>(std::move(executor), std::move(config));
  if (state->config.options.use_tls) {
    auth::tls_client_config tc;
    tc.ca_file = state->config.options.ca_file;
    tc.verify_server = state->config.options.verify_server;
    auto ctx = auth::make_tls_client_context(tc);
    if (!ctx) {
      return transport_error(service_failure::tls, ctx.error(),
                             "cannot make the TLS client context (CA file " + tc.ca_file.string() + ")");
    }
    state->ssl = std::make_unique<asio::ssl::context>(std::move(*ctx));
  }
  return std::shared_ptr<http_pool>(new http_pool(std::move(state)));
}

http_pool::http_pool(std::shared_ptr<impl> state) : impl_(std::move(state)) {}
http_pool::~http_pool() { close(); }

asio::awaitable<service_result<http_response>> http_pool::async_request(const http_request& request,
                                                                        std::chrono::milliseconds timeout) {
  auto self = impl_;  // the pool's state outlives the handle while this request runs
  co_return co_await self->run(request, timeout);
}

http_pool_stats http_pool::stats() const {
  auto s = impl_->stats;
  s.open = impl_->slots;
  return s;
}

const http_pool_config& http_pool::config() const noexcept { return impl_->config; }

void http_pool::close() {
  auto& s = *impl_;
  if (s.closed) return;
  s.closed = true;
  for (auto& c : s.idle) c->close();
  s.slots -= s.idle.size();
  s.idle.clear();
  for (auto* c : s.busy) c->close();
  for (auto& w : s.waiters) w->timer.cancel();
  s.waiters.clear();
}

}  // namespace twinfleet::backends::detail
