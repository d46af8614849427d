// The hub's REST listener on 127.0.0.1:0, over HTTP and HTTPS, driven by a small Beast client
// and by raw sockets: keep-alive, limits, malformed input, timeouts, direct methods answered
// by a fake device, graceful stop. Every wait is bounded.
#include "../../unit/hub/rest_test_util.hpp"
#include "test_data.hpp"

#include <twinfleet/auth/dev_ca.hpp>
#include <twinfleet/auth/tls.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

using namespace twinfleet;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using test::jv;

// GCC 12 miscompiles some full-expressions that hold a co_await: braced lists ("array used as
// initializer") and default-argument temporaries (destroyed twice). Every request is therefore
// built in a statement of its own, then co_awaited.

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr auto client_timeout = 5s;

using http_response = http::response<http::string_body>;

http::request<http::string_body> to_beast(const hub::rest_request& r, bool keep_alive = true) {
  http::request<http::string_body> out;
  out.method_string(r.method);
  out.target(r.target);
  out.version(11);
  for (const auto& h : r.headers) out.insert(h.name, h.value);
  out.body() = r.body;
  out.keep_alive(keep_alive);
  out.prepare_payload();
  return out;
}

// One client connection: plain or TLS, requests one after the other.
template <class Stream>
struct http_client {
  Stream stream;
  beast::flat_buffer buffer;

  asio::awaitable<http_response> exchange(http::request<http::string_body> request) {
    beast::get_lowest_layer(stream).expires_after(client_timeout);
    co_await http::async_write(stream, request, asio::use_awaitable);
    co_return co_await read();
  }
  asio::awaitable<void> send(http::request<http::string_body> request) {
    beast::get_lowest_layer(stream).expires_after(client_timeout);
    co_await http::async_write(stream, request, asio::use_awaitable);
  }
  asio::awaitable<http_response> read() {
    http_response response;
    beast::get_lowest_layer(stream).expires_after(client_timeout);
    co_await http::async_read(stream, buffer, response, asio::use_awaitable);
    co_return response;
  }
  // True when the server closed the connection (end of stream) before `client_timeout`.
  asio::awaitable<bool> closed_by_server() {
    std::array<char, 256> sink{};
    beast::get_lowest_layer(stream).expires_after(client_timeout);
    for (;;) {
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), use_tuple);
      (void)n;
      if (ec == beast::error::timeout) co_return false;
      if (ec) co_return true;
    }
  }
};

asio::awaitable<http_client<beast::tcp_stream>> connect_plain(hub::rest_endpoint at) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(client_timeout);
  co_await stream.async_connect(tcp::endpoint(asio::ip::make_address(at.address), at.port), asio::use_awaitable);
  stream.socket().set_option(tcp::no_delay(true));
  co_return http_client<beast::tcp_stream>{std::move(stream), {}};
}

asio::awaitable<http_client<beast::ssl_stream<beast::tcp_stream>>> connect_tls(hub::rest_endpoint at,
                                                                               asio::ssl::context& ctx) {
  beast::ssl_stream<beast::tcp_stream> stream(co_await asio::this_coro::executor, ctx);
  REQUIRE(auth::set_tls_server_name(stream.native_handle(), at.address));
  auto& lowest = beast::get_lowest_layer(stream);
  lowest.expires_after(client_timeout);
  co_await lowest.async_connect(tcp::endpoint(asio::ip::make_address(at.address), at.port), asio::use_awaitable);
  co_await stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
  co_return http_client<beast::ssl_stream<beast::tcp_stream>>{std::move(stream), {}};
}

// Sends raw bytes and returns everything the server sends until it closes (or the timeout).
struct raw_result {
  std::string received;
  bool closed = false;
};
asio::awaitable<raw_result> raw_exchange(hub::rest_endpoint at, std::string bytes) {
  auto client = co_await connect_plain(at);
  co_await asio::async_write(client.stream, asio::buffer(bytes), asio::use_awaitable);
  raw_result out;
  std::array<char, 4096> chunk{};
  client.stream.expires_after(client_timeout);
  for (;;) {
    auto [ec, n] = co_await client.stream.async_read_some(asio::buffer(chunk), use_tuple);
    out.received.append(chunk.data(), n);
    if (ec) {
      out.closed = ec != beast::error::timeout;
      break;
    }
  }
  co_return out;
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(asio::use_awaitable);
}

// A device connection that answers direct methods on its own, one turn of the executor
// later (as a real device would, after the hub's send() has returned), or not at all.
class method_device : public hub::link {
 public:
  method_device(asio::io_context& ioc, hub::hub_core& core, bool auto_answer)
      : ioc_(ioc), core_(core), auto_answer_(auto_answer) {}

  void send(std::string_view topic, std::string_view, mqtt::qos) override {
    if (!topic.starts_with("$iothub/methods/POST/")) return;
    rids.push_back(test::rid_of(topic));
    if (auto_answer_) answer(rids.back(), 200, R"({"ok":true})");
  }
  void close() override { closed = true; }
  [[nodiscard]] const hub::link_info& info() const override { return info_; }

  void answer(std::string rid, int status, std::string payload) {
    asio::post(ioc_, [this, rid = std::move(rid), status, payload = std::move(payload)] {
      const auto topic = "$iothub/methods/res/" + std::to_string(status) + "/?$rid=" + rid;
      mqtt::publish_packet p;
      p.topic = topic;
      p.payload = payload;
      core_.on_publish(*this, p, std::chrono::system_clock::now());
    });
  }

  std::vector<std::string> rids;
  bool closed = false;

 private:
  asio::io_context& ioc_;
  hub::hub_core& core_;
  bool auto_answer_;
  hub::link_info info_;
};

struct server_fixture {
  asio::io_context ioc;
  hub::hub_core core{test::rest_settings()};
  test::rest_client_factory client{core, std::chrono::system_clock::now()};
  std::unique_ptr<hub::rest_server> server;

  void start(hub::rest_server_options options = {}) {
    options.address = "127.0.0.1";
    options.port = 0;
    auto created = hub::rest_server::create(ioc.get_executor(), core, std::move(options));
    REQUIRE(created.has_value());
    server = std::move(*created);
    server->start();
  }

  hub::rest_endpoint at() const { return server->local_endpoint(); }

  // Runs `test` on the io_context to completion, within `limit`; rethrows its failures.
  void run(std::function<asio::awaitable<void>()> test, std::chrono::seconds limit = 20s) {
    bool finished = false;
    std::exception_ptr failure;
    asio::co_spawn(ioc, test(), [&](std::exception_ptr e) {
      finished = true;
      failure = e;
      ioc.stop();
    });
    ioc.restart();
    ioc.run_for(limit);
    REQUIRE(finished);
    if (failure) std::rethrow_exception(failure);
  }

  http::request<http::string_body> create_device_request(const std::string& id) {
    return to_beast(client.azure("PUT", "/devices/" + id, R"({"deviceId":")" + id + R"("})",
                                 client.sas("registryReadWrite")));
  }
};

std::string header_of(const http_response& r, std::string_view name) { return std::string(r[name]); }

}  // namespace

TEST_CASE("REST over plain HTTP: both platforms on one kept-alive connection", "[hub][rest][integration]") {
  server_fixture f;
  f.start();
  REQUIRE(f.at().address == "127.0.0.1");
  REQUIRE(f.at().port != 0);
  REQUIRE_FALSE(f.server->is_tls());
  f.run([&]() -> asio::awaitable<void> {
    auto c = co_await connect_plain(f.at());
    auto request1 = f.create_device_request("dev1");
    auto created = co_await c.exchange(std::move(request1));
    REQUIRE(created.result_int() == 200);

    auto request2 = to_beast(f.client.azure("GET", "/twins/dev1?api-version=2021-04-12"));
    auto twin = co_await c.exchange(std::move(request2));
    REQUIRE(twin.result_int() == 200);
    REQUIRE(twin.keep_alive());
    REQUIRE(header_of(twin, "Content-Type") == "application/json; charset=utf-8");
    const auto etag = std::string(boost::json::parse(twin.body()).at("etag").as_string());
    REQUIRE(header_of(twin, "ETag") == "\"" + etag + "\"");
    REQUIRE(!header_of(twin, "Date").empty());

    auto patch = f.client.azure("PATCH", "/twins/dev1", R"({"properties":{"desired":{"on":true}},"tags":{}})");
    patch.headers.push_back({"If-Match", "\"" + etag + "\""});
    auto request3 = to_beast(patch);
    auto patched = co_await c.exchange(std::move(request3));
    REQUIRE(patched.result_int() == 200);
    auto request4 = to_beast(patch);
    auto stale = co_await c.exchange(std::move(request4));
    REQUIRE(stale.result_int() == 412);
    REQUIRE(header_of(stale, "iothub-errorcode") == "PreconditionFailed");

    auto request5 = to_beast(f.client.aws("POST", "/things/lamp/shadow", {}, R"({"state":{"reported":{"on":true}}})"));
    auto shadow = co_await c.exchange(std::move(request5));
    REQUIRE(shadow.result_int() == 200);
    REQUIRE(boost::json::parse(shadow.body()).at("version") == 1);
    auto missing_request = to_beast(f.client.aws("GET", "/things/lamp/shadow", {{"name", "x"}}));
    auto missing = co_await c.exchange(std::move(missing_request));
    REQUIRE(missing.result_int() == 404);
    REQUIRE(header_of(missing, "x-amzn-ErrorType") == "ResourceNotFoundException");

    // Connection: close is honoured: the answer says so and the server ends the connection.
    auto request6 = to_beast(f.client.azure("GET", "/twins/dev1"), false);
    auto last = co_await c.exchange(std::move(request6));
    REQUIRE(last.result_int() == 200);
    REQUIRE_FALSE(last.keep_alive());
    const bool c_closed = co_await c.closed_by_server();
    REQUIRE(c_closed);
  });
  REQUIRE(f.server->stats().connections_accepted == 1);
  REQUIRE(f.core.counters().rest_requests == 7);
}

TEST_CASE("REST over HTTPS with the development CA", "[hub][rest][integration]") {
  test::temp_dir dir;
  auth::dev_ca_options ca;
  ca.directory = dir.path();
  const auto written = auth::write_dev_ca(ca);
  REQUIRE(written.has_value());
  // The hub shares one context between MQTT and REST, in `request` mode (AWS clients abort
  // without a CertificateRequest): back ends without a certificate must still get through.
  const auto mode = GENERATE(auth::client_certificate_mode::none, auth::client_certificate_mode::request);
  CAPTURE(static_cast<int>(mode));
  auto server_tls = auth::make_tls_server_context(
      {written->server.certificate_file, written->server.key_file, written->ca.certificate_file, mode});
  REQUIRE(server_tls.has_value());
  auto client_tls = auth::make_tls_client_context({written->ca.certificate_file});
  REQUIRE(client_tls.has_value());

  server_fixture f;
  hub::rest_server_options options;
  options.tls = &*server_tls;
  f.start(std::move(options));
  REQUIRE(f.server->is_tls());
  f.run([&]() -> asio::awaitable<void> {
    auto c = co_await connect_tls(f.at(), *client_tls);
    auto request7 = f.create_device_request("dev1");
    const auto r1 = co_await c.exchange(std::move(request7));
    REQUIRE(r1.result_int() == 200);
    auto request8 = to_beast(f.client.azure("GET", "/twins/dev1"));
    auto twin = co_await c.exchange(std::move(request8));
    REQUIRE(twin.result_int() == 200);
    auto shadow_request =
        to_beast(f.client.aws("POST", "/things/t1/shadow", {{"name", "cfg"}}, R"({"state":{"desired":{"v":2}}})"));
    auto shadow = co_await c.exchange(std::move(shadow_request));
    REQUIRE(shadow.result_int() == 200);
    auto request9 = to_beast(f.client.azure("GET", "/twins/dev1", {}, f.client.sas("device")));
    auto unauthorized = co_await c.exchange(std::move(request9));
    REQUIRE(unauthorized.result_int() == 401);
    REQUIRE(header_of(unauthorized, "iothub-errorcode") == "IotHubUnauthorizedAccess");

    // Plain HTTP on the TLS port fails the handshake and is counted; the listener goes on.
    auto bytes10 = "GET /twins/dev1 HTTP/1.1\r\nHost: x\r\n\r\n";
    const auto plain = co_await raw_exchange(f.at(), std::move(bytes10));
    REQUIRE(plain.closed);
    REQUIRE(plain.received.find("HTTP/1.1 200") == std::string::npos);
    auto again = co_await connect_tls(f.at(), *client_tls);
    auto request11 = to_beast(f.client.azure("GET", "/twins/dev1"));
    const auto r2 = co_await again.exchange(std::move(request11));
    REQUIRE(r2.result_int() == 200);
  });
  REQUIRE(f.server->stats().tls_handshake_failures == 1);
  REQUIRE(f.core.counters().rest_unauthorized == 1);
}

TEST_CASE("A direct method over REST completes when the device answers", "[hub][rest][integration]") {
  server_fixture f;
  f.start();
  method_device device(f.ioc, f.core, true);
  const test::azure_device_login login(f.core, "dev1", std::chrono::system_clock::now());
  test::connect_method_listener(f.core, device, login, std::chrono::system_clock::now());

  f.run([&]() -> asio::awaitable<void> {
    auto c = co_await connect_plain(f.at());
    auto request12 = to_beast(f.client.azure(
        "POST", "/twins/dev1/methods?api-version=2021-04-12",
        R"({"methodName":"reboot","payload":{"in":1},"responseTimeoutInSeconds":30,"connectTimeoutInSeconds":0})"));
    auto answer = co_await c.exchange(std::move(request12));
    REQUIRE(answer.result_int() == 200);
    REQUIRE(boost::json::parse(answer.body()) == jv(R"({"status":200,"payload":{"ok":true}})"));

    auto request13 = to_beast(f.client.azure("POST", "/twins/nobody/methods", R"({"methodName":"reboot"})"));
    auto offline = co_await c.exchange(std::move(request13));
    REQUIRE(offline.result_int() == 404);
  });
  REQUIRE(device.rids.size() == 1);
  f.core.on_disconnect(device, std::chrono::system_clock::now());
}

TEST_CASE("Bodies over the limit get 413 in the platform's shape, then the connection closes",
          "[hub][rest][integration]") {
  server_fixture f;
  hub::rest_server_options options;
  options.max_body_bytes = 1024;
  f.start(std::move(options));
  f.run([&]() -> asio::awaitable<void> {
    const std::string big = R"({"tags":{"a":")" + std::string(4096, 'x') + R"("}})";
    {
      auto c = co_await connect_plain(f.at());
      auto request14 = to_beast(f.client.azure("PATCH", "/twins/dev1", big));
      auto r = co_await c.exchange(std::move(request14));
      REQUIRE(r.result_int() == 413);
      REQUIRE(header_of(r, "iothub-errorcode") == "MessageTooLarge");
      REQUIRE(boost::json::parse(r.body()).at("errorCode") == 413001);
      REQUIRE_FALSE(r.keep_alive());
      const bool c_closed = co_await c.closed_by_server();
      REQUIRE(c_closed);
    }
    {
      auto c = co_await connect_plain(f.at());
      auto request15 = to_beast(f.client.aws("POST", "/things/t1/shadow", {}, big));
      auto r = co_await c.exchange(std::move(request15));
      REQUIRE(r.result_int() == 413);
      REQUIRE(header_of(r, "x-amzn-ErrorType") == "RequestEntityTooLargeException");
    }
    // Chunked bodies are counted as they arrive.
    std::string chunked = "POST /things/t1/shadow HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 4; ++i) chunked += "200\r\n" + std::string(512, 'x') + "\r\n";
    chunked += "0\r\n\r\n";
    const auto raw = co_await raw_exchange(f.at(), chunked);
    REQUIRE(raw.received.starts_with("HTTP/1.1 413"));
    REQUIRE(raw.closed);
  });
  REQUIRE(f.server->stats().oversized_requests == 3);
}

TEST_CASE("Malformed HTTP gets 400 and a closed connection, and the server keeps serving", "[hub][rest][integration]") {
  server_fixture f;
  hub::rest_server_options options;
  options.max_header_bytes = 2048;
  f.start(std::move(options));
  const std::string garbage = GENERATE(as<std::string>{},
                                       "GARBAGE\r\n\r\n",
                                       "GET /twins/d1 HTTPS/1.1\r\n\r\n",
                                       "GET /twins/d1 HTTP/1.1\r\nBad Header Line\r\n\r\n",
                                       "GET /twins/d1 HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                                       "GET /twins/d1 HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                                       "POST /things/t/shadow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
                                       std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15),
                                       std::string("GET /\0 HTTP/1.1\r\n\r\n", 19));
  CAPTURE(garbage);
  f.run([&]() -> asio::awaitable<void> {
    const auto raw = co_await raw_exchange(f.at(), garbage);
    CAPTURE(raw.received);
    REQUIRE(raw.received.starts_with("HTTP/1.1 400"));
    REQUIRE(raw.closed);

    auto c = co_await connect_plain(f.at());
    auto request16 = to_beast(f.client.azure("GET", "/twins/nobody"));
    const auto r3 = co_await c.exchange(std::move(request16));
    REQUIRE(r3.result_int() == 404);
  });
  REQUIRE(f.server->stats().malformed_requests == 1);
}

TEST_CASE("Oversized headers get 431", "[hub][rest][integration]") {
  server_fixture f;
  hub::rest_server_options options;
  options.max_header_bytes = 2048;
  f.start(std::move(options));
  f.run([&]() -> asio::awaitable<void> {
    auto bytes17 = "GET /twins/d1 HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n";
    const auto raw = co_await raw_exchange(f.at(), std::move(bytes17));
    REQUIRE(raw.received.starts_with("HTTP/1.1 431"));
    REQUIRE(raw.closed);
  });
}

TEST_CASE("Idle and slow connections are closed by the server", "[hub][rest][integration]") {
  server_fixture f;
  hub::rest_server_options options;
  options.idle_timeout = 200ms;
  options.io_timeout = 300ms;
  f.start(std::move(options));
  f.run([&]() -> asio::awaitable<void> {
    const auto started = std::chrono::steady_clock::now();
    {
      auto idle = co_await connect_plain(f.at());
      const bool idle_closed = co_await idle.closed_by_server();
      REQUIRE(idle_closed);
    }
    {
      auto slow = co_await connect_plain(f.at());
      const std::string partial = "POST /things/t1/shadow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"st";
      co_await asio::async_write(slow.stream, asio::buffer(partial), asio::use_awaitable);
      const bool slow_closed = co_await slow.closed_by_server();
      REQUIRE(slow_closed);
    }
    REQUIRE(std::chrono::steady_clock::now() - started < 4s);
  });
  REQUIRE(f.server->stats().timeouts == 2);
}

TEST_CASE("Expect: 100-continue is answered before the body", "[hub][rest][integration]") {
  server_fixture f;
  f.start();
  f.run([&]() -> asio::awaitable<void> {
    auto c = co_await connect_plain(f.at());
    auto request = to_beast(f.client.aws("POST", "/things/t1/shadow", {}, R"({"state":{"reported":{"a":1}}})"));
    request.set(http::field::expect, "100-continue");
    http::request_serializer<http::string_body> serializer(request);
    c.stream.expires_after(client_timeout);
    co_await http::async_write_header(c.stream, serializer, asio::use_awaitable);
    http::response_parser<http::empty_body> interim_parser;
    co_await http::async_read_header(c.stream, c.buffer, interim_parser, asio::use_awaitable);
    REQUIRE(interim_parser.get().result() == http::status::continue_);
    co_await http::async_write(c.stream, serializer, asio::use_awaitable);
    auto r = co_await c.read();
    REQUIRE(r.result_int() == 200);
  });
}

TEST_CASE("Graceful stop: idle connections close, requests in flight finish", "[hub][rest][integration]") {
  server_fixture f;
  f.start();
  method_device device(f.ioc, f.core, false);
  const test::azure_device_login login(f.core, "dev1", std::chrono::system_clock::now());
  test::connect_method_listener(f.core, device, login, std::chrono::system_clock::now());
  bool stopped = false;

  f.run([&]() -> asio::awaitable<void> {
    auto idle = co_await connect_plain(f.at());
    auto request18 = to_beast(f.client.azure("GET", "/twins/dev1"));
    const auto r4 = co_await idle.exchange(std::move(request18));
    REQUIRE(r4.result_int() == 200);

    auto busy = co_await connect_plain(f.at());
    auto request19 = to_beast(f.client.azure("POST", "/twins/dev1/methods", R"({"methodName":"slow"})"));
    co_await busy.send(std::move(request19));
    for (int i = 0; i < 200 && device.rids.empty(); ++i) co_await sleep_for(10ms);
    REQUIRE(device.rids.size() == 1);

    f.server->async_stop(5s, [&] { stopped = true; });
    const bool idle_closed = co_await idle.closed_by_server();
    REQUIRE(idle_closed);

    // The listener is closed: new connections are refused.
    tcp::socket probe(co_await asio::this_coro::executor);
    auto [connect_error] = co_await probe.async_connect(
        tcp::endpoint(asio::ip::make_address(f.at().address), f.at().port), use_tuple);
    REQUIRE(connect_error);

    REQUIRE_FALSE(stopped);
    device.answer(device.rids[0], 200, R"({"done":true})");
    auto answer = co_await busy.read();
    REQUIRE(answer.result_int() == 200);
    REQUIRE_FALSE(answer.keep_alive());
    REQUIRE(boost::json::parse(answer.body()) == jv(R"({"status":200,"payload":{"done":true}})"));
    const bool busy_closed = co_await busy.closed_by_server();
    REQUIRE(busy_closed);
    for (int i = 0; i < 200 && !stopped; ++i) co_await sleep_for(10ms);
    REQUIRE(stopped);
  });
  REQUIRE(f.server->stats().open_connections == 0);
  f.core.on_disconnect(device, std::chrono::system_clock::now());
}

TEST_CASE("A forced stop after the grace period ends requests still waiting", "[hub][rest][integration]") {
  server_fixture f;
  f.start();
  method_device device(f.ioc, f.core, false);
  const test::azure_device_login login(f.core, "dev1", std::chrono::system_clock::now());
  test::connect_method_listener(f.core, device, login, std::chrono::system_clock::now());
  bool stopped = false;
  f.run([&]() -> asio::awaitable<void> {
    auto busy = co_await connect_plain(f.at());
    auto request20 = to_beast(f.client.azure("POST", "/twins/dev1/methods", R"({"methodName":"never"})"));
    co_await busy.send(std::move(request20));
    for (int i = 0; i < 200 && device.rids.empty(); ++i) co_await sleep_for(10ms);
    f.server->async_stop(100ms, [&] { stopped = true; });
    const bool busy_closed = co_await busy.closed_by_server();
    REQUIRE(busy_closed);
    for (int i = 0; i < 200 && !stopped; ++i) co_await sleep_for(10ms);
    REQUIRE(stopped);
  });
  f.core.on_disconnect(device, std::chrono::system_clock::now());
}

TEST_CASE("Binding a port already in use is an error value", "[hub][rest][integration]") {
  server_fixture f;
  f.start();
  hub::rest_server_options options;
  options.address = "127.0.0.1";
  options.port = f.at().port;
  auto second = hub::rest_server::create(f.ioc.get_executor(), f.core, options);
  REQUIRE_FALSE(second.has_value());
  REQUIRE(second.error() == asio::error::address_in_use);
  options.address = "not an address";
  options.port = 0;
  REQUIRE_FALSE(hub::rest_server::create(f.ioc.get_executor(), f.core, options).has_value());
}
