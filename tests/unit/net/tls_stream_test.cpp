// The TLS transport itself (sim/net/src/tls_stream.cpp: OpenSSL on the socket through a BIO of
// ours), below the MQTT connections: two streams over a real loopback TCP connection.
#include "net_test_util.hpp"
#include "streams.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>

#include <string>

using namespace twinfleet;
using namespace twinfleet::net;
using namespace twinfleet::net::test;
using tcp = boost::asio::ip::tcp;

namespace {

// What one stream operation completed with.
struct outcome final : detail::io_target {
  bool done = false;
  detail::io_event event{};
  error_code ec;
  std::size_t bytes = 0;
  void on_io(detail::io_event e, error_code c, std::size_t n) override {
    done = true;
    event = e;
    ec = c;
    bytes = n;
  }
};

struct stream_pair {
  asio::io_context& io;
  test_pki pki;
  std::unique_ptr<detail::transport_stream> server, client;

  explicit stream_pair(asio::io_context& context) : io(context) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket a(io), b(io);
    b.connect(acceptor.local_endpoint());
    acceptor.accept(a);
    server = detail::make_tls_stream(std::move(a), pki.server);
    client = detail::make_tls_stream(std::move(b), pki.client);
  }

  asio::awaitable<void> handshake() {
    using namespace asio::experimental::awaitable_operators;
    const auto [server_ec, client_ec] = co_await (server->async_server_handshake({}) && client->async_client_handshake({}));
    REQUIRE_FALSE(server_ec);
    REQUIRE_FALSE(client_ec);
  }
};

// Waits (bounded) until the operation recording into `o` has completed.
asio::awaitable<void> completion(const std::shared_ptr<outcome>& o) {
  const auto done = co_await eventually([&] { return o->done; });
  REQUIRE(done);
}

// Reads from `stream` until `want` bytes came or an operation failed; the failure, if any.
asio::awaitable<error_code> read_all(detail::transport_stream& stream, std::string& into, std::size_t want) {
  std::string chunk(16384, '\0');
  while (into.size() < want) {
    auto got = std::make_shared<outcome>();
    stream.async_read_some(asio::buffer(chunk), {got, detail::io_event::read});
    if (!co_await eventually([&] { return got->done; })) co_return asio::error::timed_out;
    if (got->ec) co_return got->ec;
    into.append(chunk.data(), got->bytes);
  }
  co_return error_code{};
}

// Two streams over a fresh loopback connection, handshaken, then `body` (a coroutine taking
// them) runs to its end on one io_context.
template <class Body>
void with_streams(Body body) {
  asio::io_context io;
  stream_pair s(io);
  auto whole = [&]() -> asio::awaitable<void> {
    co_await s.handshake();
    co_await body(s);
  };
  run(io, whole());
}

}  // namespace

TEST_CASE("TLS stream: a megabyte in partial writes arrives whole and in order, and the peer's FIN reads as connection_closed", "[net][tls]") {
  with_streams([](stream_pair& s) -> asio::awaitable<void> {
    // More than both socket buffers hold: the write goes out in pieces as the reader drains it.
    std::string sent(1 << 20, '\0');
    for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>((i * 7919) >> 5);
    auto wrote = std::make_shared<outcome>();
    s.client->async_write(asio::buffer(sent), {wrote, detail::io_event::write});
    CHECK_FALSE(wrote->done);  // never completed inside the call
    std::string received;
    const auto read_ec = co_await read_all(*s.server, received, sent.size());
    CHECK_FALSE(read_ec);
    CHECK(received == sent);
    co_await completion(wrote);
    CHECK_FALSE(wrote->ec);
    CHECK(wrote->bytes == sent.size());

    // The client ends its side with a FIN and no close_notify, as MQTT peers do.
    auto shut = std::make_shared<outcome>();
    s.client->async_shutdown({shut, detail::io_event::shutdown});
    std::string rest;
    const auto end_ec = co_await read_all(*s.server, rest, 1);
    CHECK(end_ec == net_errc::connection_closed);
    CHECK(rest.empty());
  });
}

TEST_CASE("TLS stream: a write after this side is shut down fails with EPIPE, and the process gets no SIGPIPE", "[net][tls]") {
  // SIGPIPE's default action ends the process: this test would not report, it would die.
  with_streams([](stream_pair& s) -> asio::awaitable<void> {
    auto shut = std::make_shared<outcome>();
    s.client->async_shutdown({shut, detail::io_event::shutdown});
    co_await completion(shut);
    const std::string payload = "after the end";
    auto wrote = std::make_shared<outcome>();
    s.client->async_write(asio::buffer(payload), {wrote, detail::io_event::write});
    co_await completion(wrote);
    CHECK(wrote->ec == boost::system::errc::broken_pipe);
    CHECK(wrote->bytes == 0);
  });
}

TEST_CASE("TLS stream: close() ends a pending read with operation_aborted", "[net][tls]") {
  with_streams([](stream_pair& s) -> asio::awaitable<void> {
    std::string buffer(64, '\0');
    auto got = std::make_shared<outcome>();
    s.server->async_read_some(asio::buffer(buffer), {got, detail::io_event::read});
    co_await sleep(20ms);
    CHECK_FALSE(got->done);  // nothing was sent: the read waits
    s.server->close();
    co_await completion(got);
    CHECK(got->ec == asio::error::operation_aborted);
  });
}
