// The back end's AWS command client (service_aws_commands.hpp): requests through the data
// plane's HTTPS publish, answers on one MQTT connection, matched by requestId.
#include <twinfleet/backends/service_aws_commands.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <optional>
#include <span>
#include <unordered_map>

namespace twinfleet::backends {

namespace asio = boost::asio;
namespace json = boost::json;
using boost::system::error_code;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::string_view things_prefix = "twinfleet/things/";
constexpr std::string_view response_suffix = "/response";
// After a failed connect, calls fail at once with its error for this long (no reconnect storm).
constexpr auto reconnect_pause = std::chrono::seconds(1);

service_error local_error(service_failure kind, std::string message, error_code transport = {}) {
  service_error e;
  e.kind = kind;
  e.message = std::move(message);
  e.transport = transport;
  return e;
}

}  // namespace

std::string aws_command_topic(std::string_view thing, std::string_view name) {
  std::string t(things_prefix);
  t += thing;
  t += "/commands/";
  t += name;
  return t;
}

struct aws_command_client::impl {
  impl(asio::any_io_executor ex, aws_service_client& p, aws_command_options o)
      : executor(ex), publisher(&p), options(std::move(o)), connection(ex), start_done(ex) {}

  // One call waiting for its answer.
  struct waiting {
    explicit waiting(asio::any_io_executor ex) : timer(ex) {}
    asio::steady_timer timer;  // the deadline; cancelled when the answer (or the end) comes
    std::optional<aws_command_response> response;
    bool lost = false;
  };

  asio::any_io_executor executor;
  aws_service_client* publisher;
  aws_command_options options;
  net::client_connection connection;
  std::unordered_map<std::string, waiting*> calls;
  std::uint64_t next_id = 1;
  bool starting = false;
  bool closed = false;
  error_code last_start_error;
  steady::time_point retry_at{};
  asio::steady_timer start_done;  // waiters for a start in progress; cancelled when it ends

  void on_message(const mqtt::publish_packet& p) {
    if (!p.topic.starts_with(things_prefix) || !p.topic.ends_with(response_suffix)) return;
    error_code ec;
    auto body = json::parse(p.payload, ec);
    if (ec || !body.is_object()) return;
    const auto& o = body.get_object();
    const auto* id = o.if_contains("requestId");
    if (id == nullptr || !id->is_string()) return;
    auto it = calls.find(std::string(id->get_string()));
    if (it == calls.end()) return;  // too late, or another back end's
    aws_command_response r;
    if (const auto* s = o.if_contains("status"); s != nullptr && s->is_number()) r.status = s->to_number<int>();
    if (const auto* payload = o.if_contains("payload")) r.payload = *payload;
    it->second->response = std::move(r);
    it->second->timer.cancel();
  }

  void fail_all() {
    for (auto& [id, w] : calls) {
      w->lost = true;
      w->timer.cancel();
    }
  }

  // Connects and subscribes to the responses' filter unless connected; concurrent callers
  // share one attempt.
  asio::awaitable<error_code> ensure_started() {
    using namespace asio::experimental::awaitable_operators;
    if (connection.connected()) co_return error_code{};
    if (starting) {
      (void)co_await start_done.async_wait(asio::as_tuple(asio::use_awaitable));
      co_return connection.connected() ? error_code{} : last_start_error;
    }
    if (steady::now() < retry_at) co_return last_start_error;
    starting = true;
    start_done.expires_at(steady::time_point::max());
    mqtt::connect_packet hello;
    hello.client_id = options.client_id;
    hello.keep_alive = options.keep_alive;
    hello.clean_session = true;
    auto ec = co_await connection.async_connect(options.broker, options.transport, hello, options.connect_timeout);
    if (!ec) {
      mqtt::subscription sub;
      sub.filter = aws_command_response_filter;
      sub.qos = mqtt::qos::at_least_once;
      const std::span<const mqtt::subscription> subs(&sub, 1);
      asio::steady_timer timer(executor, options.connect_timeout);
      auto raced = co_await (connection.async_subscribe(subs) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (raced.index() == 1) {
        ec = make_error_code(boost::system::errc::timed_out);
      } else if (auto& codes = std::get<0>(raced); !codes) {
        ec = codes.error();
      } else if (codes->empty() || codes->front() == mqtt::suback_code::failure) {
        ec = make_error_code(boost::system::errc::permission_denied);
      }
      if (ec) connection.abort();
    }
    last_start_error = ec;
    if (ec) retry_at = steady::now() + reconnect_pause;
    starting = false;
    start_done.cancel();
    co_return ec;
  }
};

aws_command_client::aws_command_client(asio::any_io_executor executor, aws_service_client& publisher,
                                       aws_command_options options)
    : impl_(std::make_shared<impl>(std::move(executor), publisher, std::move(options))) {
  auto* raw = impl_.get();
  impl_->connection.set_message_handler([raw](const mqtt::publish_packet& p) { raw->on_message(p); });
  // The answers of calls still waiting can no longer arrive.
  impl_->connection.set_closed_handler([raw](error_code) { raw->fail_all(); });
}

aws_command_client::~aws_command_client() {
  if (!impl_) return;
  impl_->closed = true;
  impl_->fail_all();
  impl_->connection.abort();
}

asio::awaitable<service_result<aws_command_response>> aws_command_client::async_invoke(std::string_view thing,
                                                                                       std::string_view name,
                                                                                       const json::value& payload,
                                                                                       std::chrono::milliseconds timeout) {
  const auto self = impl_;  // the client may be destroyed while this runs
  auto& m = *self;
  if (thing.empty() || name.empty()) co_return local_error(service_failure::bad_request, "empty thing or command name");
  if (m.closed) co_return local_error(service_failure::cancelled, "the command client is closed");
  const auto deadline = steady::now() + timeout;
  const std::string topic = aws_command_topic(thing, name);
  const auto started = co_await m.ensure_started();
  if (started) {
    co_return local_error(service_failure::connect, "the back end's MQTT connection for command responses: " + started.message(),
                          started);
  }
  impl::waiting w(m.executor);
  w.timer.expires_at(deadline);
  const std::string id = m.options.client_id + "-" + std::to_string(m.next_id++);
  m.calls.emplace(id, &w);
  struct erase_on_exit {
    impl& m;
    const std::string& id;
    ~erase_on_exit() { m.calls.erase(id); }
  } guard{m, id};
  const json::object request{{"requestId", id}, {"payload", payload}};
  const std::string body = json::serialize(request);
  auto published = co_await m.publisher->async_publish(topic, body, 1);
  if (!published) co_return published.error();
  if (!w.response && !w.lost) (void)co_await w.timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (w.response) co_return std::move(*w.response);
  if (m.closed) co_return local_error(service_failure::cancelled, "the command client is closed");
  if (w.lost) co_return local_error(service_failure::io, "the MQTT connection for command responses was lost before the answer");
  co_return local_error(service_failure::timeout,
                        "no response to " + topic + " within " + std::to_string(timeout.count()) + " ms");
}

asio::awaitable<void> aws_command_client::async_stop() {
  const auto self = impl_;
  if (!self->connection.connected()) {
    self->connection.abort();
    co_return;
  }
  (void)co_await self->connection.async_disconnect();
}

bool aws_command_client::connected() const noexcept { return impl_->connection.connected(); }
std::size_t aws_command_client::pending() const noexcept { return impl_->calls.size(); }

}  // namespace twinfleet::backends
