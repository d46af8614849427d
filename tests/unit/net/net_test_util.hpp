// Test support for sim/net: running a test coroutine on an io_context with a bound, a small
// broker as server_handler, and a development CA with TLS contexts.
//
// In test coroutines, never co_await inside a Catch assertion macro: the macro repeats its
// argument in a never-taken `false && (...)` branch, and GCC 12 evaluates a co_await there
// anyway (twice the operation, temporaries destroyed twice). Await into a local first:
//   const auto ec = co_await c.async_connect(...);
//   REQUIRE_FALSE(ec);
// Nor put an aggregate-initialized temporary with non-trivial members (a std::string inside)
// into a co_await expression: GCC 12 destroys it wrongly. client_transport is not an aggregate
// for that reason.
#pragma once

#include <twinfleet/auth/dev_ca.hpp>
#include <twinfleet/auth/tls.hpp>
#include <twinfleet/mqtt/codec.hpp>
#include <twinfleet/mqtt/topic.hpp>
#include <twinfleet/net/client.hpp>
#include <twinfleet/net/server.hpp>

#include "test_data.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace twinfleet::net::test {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

// Runs `body` on `io` until it completes, at most `limit`; rethrows what it threw (failed
// REQUIREs included). Fails the test when the limit passes first.
inline void run(asio::io_context& io, asio::awaitable<void> body, std::chrono::milliseconds limit = 20s) {
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(body), [&](std::exception_ptr e) {
    done = true;
    error = e;
  });
  const auto deadline = std::chrono::steady_clock::now() + limit;
  io.restart();
  while (!done && std::chrono::steady_clock::now() < deadline) {
    io.run_one_for(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
  }
  if (error) std::rethrow_exception(error);
  if (!done) FAIL("the test coroutine did not finish within " << limit.count() << " ms");
}

// Runs the io_context for a while (lets connections finish closing).
inline void drain(asio::io_context& io, std::chrono::milliseconds d = 100ms) {
  io.restart();
  io.run_for(d);
}

inline asio::awaitable<void> sleep(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// Polls `condition` every 5 ms until it holds or `limit` passes; returns it.
inline asio::awaitable<bool> eventually(std::function<bool()> condition, std::chrono::milliseconds limit = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    co_await sleep(5ms);
  }
  co_return true;
}

inline mqtt::connect_packet hello(std::string_view client_id, std::uint16_t keep_alive = 30) {
  mqtt::connect_packet c;
  c.client_id = client_id;
  c.keep_alive = keep_alive;
  return c;
}

// A small broker: accepts (or refuses or defers) CONNECTs, grants subscriptions up to QoS 1,
// routes publishes to matching subscribers, and records what happened. Thread-safe for
// reading its records from another thread (the Paho tests), via `mutex`.
struct test_broker final : server_handler {
  struct received_message {
    std::string client_id;
    std::string topic;
    std::string payload;
    mqtt::qos qos;
  };
  struct closed_connection {
    std::string client_id;
    error_code reason;
  };
  struct client_state {
    std::string client_id;
    std::vector<std::pair<std::string, mqtt::qos>> subscriptions;
  };

  // Configuration.
  std::set<std::string> refused_ids;   // refuse(not_authorized)
  std::set<std::string> deferred_ids;  // neither accepted nor refused: see `pending`
  std::string abort_on_topic;          // conn.abort() on a publish there
  std::string close_on_topic;          // conn.close() on a publish there
  std::string throw_on_topic;          // throws from on_publish
  std::string echo_prefix;             // when set, every publish is also sent back to its sender
                                       // on echo_prefix + topic, with its QoS

  // Records.
  mutable std::mutex mutex;
  int connects = 0;
  std::vector<std::string> connect_ids;
  std::vector<received_message> received;
  std::vector<closed_connection> closed;
  std::vector<std::shared_ptr<server_connection>> live;     // accepted and not closed
  std::vector<std::shared_ptr<server_connection>> pending;  // deferred
  std::vector<std::uint16_t> pubacks;
  std::vector<boost::asio::ip::tcp::endpoint> peers;  // each CONNECT's source

  void on_connect(server_connection& conn, const mqtt::connect_packet& packet) override {
    const std::lock_guard lock(mutex);
    ++connects;
    const std::string id(packet.client_id);
    connect_ids.push_back(id);
    peers.push_back(conn.remote_endpoint());
    conn.user_data() = client_state{id, {}};
    if (refused_ids.count(id) != 0) {
      const auto ec = conn.refuse(mqtt::connect_return_code::not_authorized);
      if (ec) throw std::runtime_error("refuse failed: " + ec.message());
    } else if (deferred_ids.count(id) != 0) {
      pending.push_back(conn.shared());
    } else {
      const auto ec = conn.accept();
      if (ec) throw std::runtime_error("accept failed: " + ec.message());
      live.push_back(conn.shared());
    }
  }

  // Accepts a deferred connection (on its executor).
  void accept_pending(std::size_t index) {
    const std::lock_guard lock(mutex);
    auto conn = pending.at(index);
    if (!conn->accept()) live.push_back(conn);
  }

  std::vector<mqtt::suback_code> on_subscribe(server_connection& conn,
                                              std::span<const mqtt::subscription> subscriptions) override {
    const std::lock_guard lock(mutex);
    auto& state = std::any_cast<client_state&>(conn.user_data());
    std::vector<mqtt::suback_code> codes;
    for (const auto& s : subscriptions) {
      if (s.filter == "forbidden/#") {
        codes.push_back(mqtt::suback_code::failure);
        continue;
      }
      const auto granted = std::min(s.qos, mqtt::qos::at_least_once);
      state.subscriptions.emplace_back(std::string(s.filter), granted);
      codes.push_back(static_cast<mqtt::suback_code>(granted));
    }
    return codes;
  }

  void on_unsubscribe(server_connection& conn, std::span<const std::string_view> filters) override {
    const std::lock_guard lock(mutex);
    auto& subs = std::any_cast<client_state&>(conn.user_data()).subscriptions;
    for (const auto f : filters) {
      std::erase_if(subs, [&](const auto& s) { return s.first == f; });
    }
  }

  void on_publish(server_connection& conn, const mqtt::publish_packet& packet) override {
    std::vector<std::pair<std::shared_ptr<server_connection>, mqtt::qos>> targets;
    {
      const std::lock_guard lock(mutex);
      const auto& sender = std::any_cast<client_state&>(conn.user_data());
      received.push_back({sender.client_id, std::string(packet.topic), std::string(packet.payload), packet.qos});
      if (packet.topic == abort_on_topic) {
        conn.abort();
        return;
      }
      if (packet.topic == close_on_topic) {
        conn.close();
        return;
      }
      if (packet.topic == throw_on_topic) throw std::runtime_error("handler bug, on purpose");
      for (auto& c : live) {
        auto& state = std::any_cast<client_state&>(c->user_data());
        for (const auto& [filter, q] : state.subscriptions) {
          if (mqtt::topic_matches(filter, packet.topic)) {
            targets.emplace_back(c, std::min(q, packet.qos));
            break;
          }
        }
      }
    }
    for (auto& [c, q] : targets) (void)c->publish(packet.topic, packet.payload, q);
    if (!echo_prefix.empty()) {
      (void)conn.publish(echo_prefix + std::string(packet.topic), packet.payload,
                         std::min(packet.qos, mqtt::qos::at_least_once));
    }
  }

  void on_puback(server_connection&, std::uint16_t packet_id) override {
    const std::lock_guard lock(mutex);
    pubacks.push_back(packet_id);
  }

  void on_closed(server_connection& conn, error_code reason) override {
    const std::lock_guard lock(mutex);
    const auto* state = std::any_cast<client_state>(&conn.user_data());
    closed.push_back({state != nullptr ? state->client_id : std::string(), reason});
    std::erase_if(live, [&](const auto& c) { return c.get() == &conn; });
    std::erase_if(pending, [&](const auto& c) { return c.get() == &conn; });
  }

  [[nodiscard]] std::size_t closed_count() const {
    const std::lock_guard lock(mutex);
    return closed.size();
  }
  [[nodiscard]] std::size_t received_count() const {
    const std::lock_guard lock(mutex);
    return received.size();
  }
  [[nodiscard]] std::optional<error_code> closed_reason(std::string_view client_id) const {
    const std::lock_guard lock(mutex);
    for (const auto& c : closed) {
      if (c.client_id == client_id) return c.reason;
    }
    return std::nullopt;
  }
};

// A development CA in a temporary folder, with a server context (client certificates as
// `mode` says) and client contexts with and without the client certificate of "device-1".
struct test_pki {
  explicit test_pki(auth::client_certificate_mode mode = auth::client_certificate_mode::require)
      : ca(write()), server(make_server(mode)), client(make_client(true)), anonymous_client(make_client(false)) {}

  twinfleet::test::temp_dir dir;
  auth::dev_ca_result ca;
  asio::ssl::context server;
  asio::ssl::context client;            // presents device-1's certificate
  asio::ssl::context anonymous_client;  // presents none

 private:
  auth::dev_ca_result write() {
    auth::dev_ca_options o;
    o.directory = dir.path();
    o.client_common_names = {"device-1"};
    auto r = auth::write_dev_ca(o);
    if (!r) throw std::runtime_error("write_dev_ca: " + r.error().message());
    return std::move(*r);
  }
  asio::ssl::context make_server(auth::client_certificate_mode mode) {
    auth::tls_server_config c;
    c.certificate_chain_file = ca.server.certificate_file;
    c.private_key_file = ca.server.key_file;
    c.client_ca_file = ca.ca.certificate_file;
    c.client_certificates = mode;
    auto r = auth::make_tls_server_context(c);
    if (!r) throw std::runtime_error("server context: " + r.error().message());
    return std::move(*r);
  }
  asio::ssl::context make_client(bool with_certificate) {
    auth::tls_client_config c;
    c.ca_file = ca.ca.certificate_file;
    if (with_certificate) {
      c.certificate_chain_file = ca.clients.at(0).certificate_file;
      c.private_key_file = ca.clients.at(0).key_file;
    }
    auto r = auth::make_tls_client_context(c);
    if (!r) throw std::runtime_error("client context: " + r.error().message());
    return std::move(*r);
  }
};

inline bool no_delay(byte_stream* s) {
  if (s == nullptr) return false;
  asio::ip::tcp::no_delay option;
  error_code ec;
  s->socket().get_option(option, ec);
  return !ec && option.value();
}

}  // namespace twinfleet::net::test
