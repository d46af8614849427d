// The HTTP(S) shell around rest_router: Beast HTTP/1.1 on Asio coroutines, one coroutine per
// connection, all on the hub_core's executor. Beast and Asio SSL are included here and in no
// header, so the rest of the hub (and everything that includes rest.hpp) compiles without them.
#include <twinfleet/hub/core.hpp>
#include <twinfleet/hub/rest.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <array>
#include <cstdio>
#include <ctime>
#include <list>

namespace twinfleet::hub {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// A short bound for closing handshakes: a peer that never answers close_notify must not hold
// a connection slot for a full io_timeout.
constexpr std::chrono::milliseconds close_timeout{2000};
// After an error answer the request's unread body may still be arriving; reading it away
// before closing keeps the kernel from resetting the connection before the client has read
// the answer.
constexpr std::chrono::milliseconds linger_timeout{500};
constexpr std::size_t linger_max_bytes = 1024 * 1024;

// One open connection as the server tracks it, for graceful and forced stops.
struct connection_entry {
  bool busy = false;                      // from a request's header to the end of its answer
  tcp::socket* socket = nullptr;          // closing it ends every pending operation on it
  asio::steady_timer* pending = nullptr;  // set while waiting for the router (direct methods)

  void close() {
    boost::system::error_code ignored;
    if (socket != nullptr) socket->close(ignored);
    if (pending != nullptr) pending->cancel();
  }
};

// RFC 7231 IMF-fixdate, written by hand so the C locale of strftime cannot change it.
std::string http_date() {
  static constexpr std::array<const char*, 7> days{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::array<char, 40> text{};
  const int n = std::snprintf(text.data(), text.size(), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                              days[static_cast<std::size_t>(utc.tm_wday)], utc.tm_mday,
                              months[static_cast<std::size_t>(utc.tm_mon)], utc.tm_year + 1900, utc.tm_hour,
                              utc.tm_min, utc.tm_sec);
  return std::string(text.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
}

rest_response plain_error(int status, std::string_view message) {
  rest_response r;
  r.status = status;
  r.headers.push_back({"Content-Type", "application/json"});
  r.body = "{\"message\":\"" + std::string(message) + "\"}";
  return r;
}

bool is_quiet_close(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
         ec == asio::error::bad_descriptor || ec == asio::ssl::error::stream_truncated;
}

}  // namespace

struct rest_server::impl : std::enable_shared_from_this<impl> {
  impl(const asio::any_io_executor& ex, hub_core& core, rest_server_options o, rest_router::clock_function now)
      : executor(ex), acceptor(ex), router(core, std::move(now)), options(std::move(o)), grace_timer(ex) {}

  asio::any_io_executor executor;
  tcp::acceptor acceptor;
  rest_router router;
  rest_server_options options;
  rest_server_stats stats;
  rest_endpoint endpoint;
  std::list<connection_entry> connections;  // stable addresses: coroutines keep references
  bool started = false;
  bool stopping = false;
  std::vector<std::function<void()>> stop_waiters;
  asio::steady_timer grace_timer;

  void log(std::string_view text) const {
    if (options.log) {
      options.log(text);
    } else {
      std::fprintf(stderr, "twinfleet hub rest: %.*s\n", static_cast<int>(text.size()), text.data());
    }
  }

  void maybe_finish_stop() {
    if (!stopping || !connections.empty() || stop_waiters.empty()) return;
    grace_timer.cancel();
    for (auto& waiter : std::exchange(stop_waiters, {})) asio::post(executor, std::move(waiter));
  }

  // The completion handler of every coroutine this server spawns: nothing escapes silently.
  auto on_coroutine_end() {
    return [self = shared_from_this()](std::exception_ptr e) {
      if (!e) return;
      ++self->stats.internal_errors;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        self->log(std::string("connection failed: ") + ex.what());
      } catch (...) {
        self->log("connection failed with an unknown exception");
      }
    };
  }
};

namespace {

using impl_ptr = std::shared_ptr<rest_server::impl>;

template <class Stream>
asio::awaitable<bool> write_response(rest_server::impl& s, Stream& stream, const rest_response& r, unsigned version,
                                     bool keep_alive) {
  http::response<http::string_body> res;
  res.version(version);
  res.result(static_cast<unsigned>(r.status));
  for (const auto& h : r.headers) res.insert(h.name, h.value);
  res.set(http::field::server, "twinfleet-hub");
  res.set(http::field::date, http_date());
  res.body() = r.body;
  res.keep_alive(keep_alive);
  res.prepare_payload();
  beast::get_lowest_layer(stream).expires_after(s.options.io_timeout);
  auto [ec, n] = co_await http::async_write(stream, res, use_tuple);
  (void)n;
  if (ec == beast::error::timeout) ++s.stats.timeouts;
  co_return !ec;
}

// Hands the request to the router and waits for its answer: at once for most routes, when the
// device answers for a direct method. The wait is bounded by max_pending_time and ends early
// when the connection is closed by a forced stop.
asio::awaitable<rest_response> dispatch(rest_server::impl& s, connection_entry& entry, const rest_request& request) {
  struct reply_slot {
    std::optional<rest_response> response;
    asio::steady_timer* waiter = nullptr;
  };
  // Shared with the callback, which hub_core may hold after this connection is gone.
  auto slot = std::make_shared<reply_slot>();
  asio::steady_timer timer(s.executor);
  slot->waiter = &timer;
  s.router.async_handle(request, [slot](rest_response r) {
    if (slot->response) return;
    slot->response = std::move(r);
    if (slot->waiter != nullptr) slot->waiter->cancel();
  });
  if (!slot->response) {
    entry.pending = &timer;
    timer.expires_after(s.options.max_pending_time);
    co_await timer.async_wait(use_tuple);
    entry.pending = nullptr;
  }
  slot->waiter = nullptr;
  if (slot->response) co_return std::move(*slot->response);
  co_return azure_error_response(504101, "Timed out waiting for the response from device.");
}

rest_request to_rest_request(http::request<http::string_body>&& req) {
  rest_request out;
  out.method = std::string(req.method_string());
  out.target = std::string(req.target());
  out.headers.reserve(static_cast<std::size_t>(std::distance(req.begin(), req.end())));
  for (const auto& field : req) out.headers.push_back({std::string(field.name_string()), std::string(field.value())});
  out.body = std::move(req.body());
  return out;
}

// Reads away what the client is still sending (at most linger_max_bytes, at most
// linger_timeout), after our side has said it is done.
template <class Stream>
asio::awaitable<void> linger(Stream& stream) {
  auto& lowest = beast::get_lowest_layer(stream);
  lowest.expires_after(linger_timeout);
  std::array<char, 4096> sink{};
  std::size_t total = 0;
  while (total < linger_max_bytes) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), use_tuple);
    if (ec) break;
    total += n;
  }
}

// A request that could not be read: answer what deserves an answer (413, 431, 400), then the
// connection closes. Returns whether a polite close may follow.
template <class Stream>
asio::awaitable<bool> answer_read_failure(rest_server::impl& s, Stream& stream,
                                          const http::request_parser<http::string_body>& parser,
                                          boost::system::error_code ec) {
  if (ec == beast::error::timeout) {
    ++s.stats.timeouts;
    co_return false;
  }
  if (is_quiet_close(ec)) co_return false;
  const auto& header = parser.get();
  const unsigned version = header.version() == 10 ? 10 : 11;
  rest_response answer;
  if (ec == http::error::body_limit) {
    ++s.stats.oversized_requests;
    ++s.router.core().counters().rest_requests;
    answer = payload_too_large_response(header.target());
  } else if (ec == http::error::header_limit) {
    ++s.stats.oversized_requests;
    answer = plain_error(431, "Request header fields too large");
  } else {
    ++s.stats.malformed_requests;
    answer = plain_error(400, "Bad Request");
  }
  co_return co_await write_response(s, stream, answer, version, false);
}

// Serves requests on one connection until the client leaves, an error, a timeout or a stop.
// Returns whether the connection ended in a way that still allows a polite close.
template <class Stream>
asio::awaitable<bool> serve_requests(rest_server::impl& s, Stream& stream, connection_entry& entry) {
  auto& lowest = beast::get_lowest_layer(stream);
  beast::flat_buffer buffer;
  for (;;) {
    entry.busy = false;
    if (s.stopping) co_return true;

    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(s.options.max_header_bytes, UINT32_MAX)));
    parser.body_limit(static_cast<std::uint64_t>(s.options.max_body_bytes));
    lowest.expires_after(s.options.idle_timeout);
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
    (void)n;
    entry.busy = true;

    if (ec) co_return co_await answer_read_failure(s, stream, parser, ec);

    auto& header = parser.get();
    if (const auto expect = header[http::field::expect]; !expect.empty()) {
      // Only 100-continue is defined; curl and .NET send it before large bodies and wait.
      if (beast::iequals(expect, "100-continue")) {
        http::response<http::empty_body> go_on{http::status::continue_, header.version()};
        lowest.expires_after(s.options.io_timeout);
        auto [wec, wn] = co_await http::async_write(stream, go_on, use_tuple);
        (void)wn;
        if (wec) co_return false;
      } else {
        if (!co_await write_response(s, stream, plain_error(417, "Expectation Failed"), header.version(), false)) {
          co_return false;
        }
        co_return true;
      }
    }
    if (!parser.is_done()) {
      lowest.expires_after(s.options.io_timeout);
      auto [bec, bn] = co_await http::async_read(stream, buffer, parser, use_tuple);
      (void)bn;
      if (bec) co_return co_await answer_read_failure(s, stream, parser, bec);
    }

    auto message = parser.release();
    const unsigned version = message.version();
    bool keep_alive = message.keep_alive();
    const auto request = to_rest_request(std::move(message));
    const auto response = co_await dispatch(s, entry, request);
    keep_alive = keep_alive && !s.stopping;
    if (!co_await write_response(s, stream, response, version, keep_alive)) co_return false;
    if (!keep_alive) co_return true;
  }
}

asio::awaitable<void> run_connection(impl_ptr self, tcp::socket socket) {
  auto& s = *self;
  const auto entry = s.connections.emplace(s.connections.end());
  s.stats.open_connections = s.connections.size();
  // Whatever way this coroutine ends, the server forgets the connection.
  struct forget {
    rest_server::impl& s;
    std::list<connection_entry>::iterator entry;
    ~forget() {
      s.connections.erase(entry);
      s.stats.open_connections = s.connections.size();
      s.maybe_finish_stop();
    }
  } forget_on_exit{s, entry};

  if (s.options.tls == nullptr) {
    beast::tcp_stream stream(std::move(socket));
    entry->socket = &stream.socket();
    const bool polite = co_await serve_requests(s, stream, *entry);
    if (polite && stream.socket().is_open()) {
      // Half-close first, so the client reads our last answer before it sees the end.
      boost::system::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      co_await linger(stream);
    }
    entry->socket = nullptr;
    co_return;
  }

  beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *s.options.tls);
  entry->socket = &beast::get_lowest_layer(stream).socket();
  beast::get_lowest_layer(stream).expires_after(s.options.io_timeout);
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, use_tuple);
  if (hec) {
    if (hec == beast::error::timeout) ++s.stats.timeouts;
    ++s.stats.tls_handshake_failures;
    entry->socket = nullptr;
    co_return;
  }
  const bool polite = co_await serve_requests(s, stream, *entry);
  if (polite && beast::get_lowest_layer(stream).socket().is_open()) {
    beast::get_lowest_layer(stream).expires_after(close_timeout);
    auto [sec] = co_await stream.async_shutdown(use_tuple);
    (void)sec;
  }
  entry->socket = nullptr;
}

asio::awaitable<void> accept_loop(impl_ptr self) {
  auto& s = *self;
  for (;;) {
    auto [ec, socket] = co_await s.acceptor.async_accept(use_tuple);
    if (s.stopping || !s.acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors or a connection reset before accept: pause rather than spin, the
      // listener stays up.
      asio::steady_timer pause(s.executor, std::chrono::milliseconds(50));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    if (s.connections.size() >= s.options.max_connections) {
      ++s.stats.connections_refused;
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    ++s.stats.connections_accepted;
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);  // DESIGN.md: Nagle costs ~40 ms per answer
    asio::co_spawn(s.executor, run_connection(self, std::move(socket)), s.on_coroutine_end());
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

boost::system::result<std::unique_ptr<rest_server>> rest_server::create(const asio::any_io_executor& executor,
                                                                        hub_core& core, rest_server_options options,
                                                                        rest_router::clock_function now) {
  auto state = std::make_shared<impl>(executor, core, std::move(options), std::move(now));
  boost::system::error_code ec;
  const auto& text = state->options.address;
  const auto address = text == "localhost" ? asio::ip::address(asio::ip::address_v4::loopback())
                                           : asio::ip::make_address(text, ec);
  if (ec) return ec;
  const tcp::endpoint endpoint(address, state->options.port);
  auto& acceptor = state->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return ec;
  const auto bound = acceptor.local_endpoint(ec);
  if (ec) return ec;
  state->endpoint = rest_endpoint{bound.address().to_string(), bound.port()};
  return std::unique_ptr<rest_server>(new rest_server(std::move(state)));
}

rest_server::rest_server(std::shared_ptr<impl> state) : impl_(std::move(state)) {}

rest_server::~rest_server() {
  auto& s = *impl_;
  s.stopping = true;
  s.stop_waiters.clear();
  boost::system::error_code ignored;
  s.acceptor.close(ignored);
  s.grace_timer.cancel();
  for (auto& c : s.connections) c.close();
}

void rest_server::start() {
  auto& s = *impl_;
  if (s.started || s.stopping) return;
  s.started = true;
  asio::co_spawn(s.executor, accept_loop(impl_), s.on_coroutine_end());
}

void rest_server::async_stop(std::chrono::milliseconds grace, std::function<void()> done) {
  auto& s = *impl_;
  if (done) s.stop_waiters.push_back(std::move(done));
  if (!s.stopping) {
    s.stopping = true;
    boost::system::error_code ignored;
    s.acceptor.close(ignored);
    for (auto& c : s.connections) {
      if (!c.busy) c.close();
    }
    s.grace_timer.expires_after(grace);
    s.grace_timer.async_wait([weak = std::weak_ptr<impl>(impl_)](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (ec || !self) return;
      for (auto& c : self->connections) c.close();
    });
  }
  s.maybe_finish_stop();
}

rest_endpoint rest_server::local_endpoint() const { return impl_->endpoint; }
bool rest_server::is_tls() const noexcept { return impl_->options.tls != nullptr; }
const rest_server_stats& rest_server::stats() const noexcept { return impl_->stats; }

}  // namespace twinfleet::hub
