// The wait for a drained socket (sim/net/src/readable_wait.hpp): it queues its own operation in
// Asio's epoll reactor and skips the re-arm, so it must still see every byte, whenever it
// arrives relative to the drain, the wait's start and the reactor's last look at the socket.
#include "readable_wait.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

namespace {

using waiter = twinfleet::net::detail::drained_waiter<std::function<void(error_code)>>;

struct socket_pair {
  tcp::socket writer, reader;
  std::unique_ptr<waiter> wait_for_reader;

  explicit socket_pair(asio::io_context& io, std::optional<asio::any_io_executor> reader_executor = std::nullopt)
      : writer(io), reader(reader_executor ? *reader_executor : io.get_executor()) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    writer.connect(acceptor.local_endpoint());
    acceptor.accept(reader);
    reader.non_blocking(true);
    wait_for_reader = std::make_unique<waiter>(reader);
  }

  // Reads until the socket would block (or ends); what was read, and whether it ended.
  std::string drain(bool* ended = nullptr) {
    std::string got;
    char buffer[4096];
    for (;;) {
      error_code ec;
      const auto n = reader.read_some(asio::buffer(buffer), ec);
      got.append(buffer, n);
      if (ec == asio::error::would_block) break;
      if (ec == asio::error::eof && ended != nullptr) *ended = true;
      if (ec) break;
    }
    return got;
  }
};

// Starts a drained wait on the reader and returns where its result lands.
std::shared_ptr<std::optional<error_code>> wait(socket_pair& s) {
  auto result = std::make_shared<std::optional<error_code>>();
  s.wait_for_reader->async_wait(s.reader, [result](error_code ec) { *result = ec; });
  return result;
}

// Runs the io_context until the wait has completed, for at most 5 s.
bool completes(asio::io_context& io, const std::shared_ptr<std::optional<error_code>>& result) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!result->has_value() && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_one_for(50ms);
  }
  return result->has_value();
}

// Lets the reactor look at its descriptors with no wait pending on the reader (a timer keeps
// it busy for a few milliseconds): an edge it sees then finds no operation to complete.
void let_reactor_look(asio::io_context& io) {
  asio::steady_timer timer(io, 5ms);
  bool fired = false;
  timer.async_wait([&](error_code) { fired = true; });
  io.restart();
  while (!fired) io.run_one();
}

}  // namespace

TEST_CASE("a drained wait sees data sent after it started, before it started, and before the reactor looked", "[net]") {
  asio::io_context io;
  socket_pair s(io);
  s.drain();
  for (int round = 0; round < 300; ++round) {
    const std::string message = "round " + std::to_string(round);
    std::shared_ptr<std::optional<error_code>> result;
    switch (round % 3) {
      case 0:  // the usual order: waiting, then the data comes
        result = wait(s);
        asio::write(s.writer, asio::buffer(message));
        break;
      case 1:  // the data is there before the wait starts; the reactor has not seen its edge
        asio::write(s.writer, asio::buffer(message));
        result = wait(s);
        break;
      case 2:  // the reactor saw the edge while nothing waited; the wait must look itself
        asio::write(s.writer, asio::buffer(message));
        let_reactor_look(io);
        result = wait(s);
        break;
    }
    INFO("round " << round);
    REQUIRE(completes(io, result));
    REQUIRE_FALSE(result->value());
    CHECK(s.drain() == message);
  }
}

TEST_CASE("a drained wait completes when the peer ends the stream, and the read then sees the end", "[net]") {
  asio::io_context io;
  socket_pair s(io);
  asio::write(s.writer, asio::buffer(std::string("last")));
  REQUIRE(completes(io, wait(s)));
  CHECK(s.drain() == "last");
  auto result = wait(s);
  s.writer.shutdown(tcp::socket::shutdown_send);
  REQUIRE(completes(io, result));
  CHECK_FALSE(result->value());
  bool ended = false;
  CHECK(s.drain(&ended).empty());
  CHECK(ended);
}

TEST_CASE("closing the socket ends a pending drained wait with operation_aborted", "[net]") {
  asio::io_context io;
  socket_pair s(io);
  auto result = wait(s);
  io.restart();
  io.poll();
  REQUIRE_FALSE(result->has_value());
  s.reader.close();
  REQUIRE(completes(io, result));
  CHECK(result->value() == asio::error::operation_aborted);
}

TEST_CASE("a drained wait on a strand's socket falls back to Asio's wait and still completes", "[net]") {
  asio::io_context io;
  socket_pair s(io, asio::make_strand(io));
  auto result = wait(s);
  asio::write(s.writer, asio::buffer(std::string("x")));
  REQUIRE(completes(io, result));
  CHECK(s.drain() == "x");
}

TEST_CASE("a drained wait still pending when the io_context goes frees its handler without calling it", "[net]") {
  auto io = std::make_unique<asio::io_context>();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  bool called = false;
  std::unique_ptr<waiter> kept;  // the operation lives in the waiter, which must outlive it
  {
    socket_pair s(*io);
    kept = std::move(s.wait_for_reader);
    kept->async_wait(s.reader, [token = std::move(token), &called](error_code) { called = true; });
    io->restart();
    io->poll();
    // The sockets close here: the wait is cancelled and its completion queued, not run.
  }
  io.reset();
  CHECK_FALSE(called);
  CHECK(watch.expired());
}

TEST_CASE("drained waits on io_contexts made one after another in the same place each use their own reactor", "[net]") {
  // A cache of the reactor per thread, keyed by the io_context's address, handed the second
  // io_context the first one's destroyed reactor.
  for (int round = 0; round < 3; ++round) {
    asio::io_context io;
    socket_pair s(io);
    auto result = wait(s);
    asio::write(s.writer, asio::buffer(std::string("again")));
    REQUIRE(completes(io, result));
    CHECK(s.drain() == "again");
  }
}
