// A device connection for the hub core's unit tests: records what the hub sends and whether
// it closed the connection. No sockets.
#pragma once

#include <twinfleet/hub/link.hpp>

#include <boost/json.hpp>

#include <string>
#include <vector>

namespace twinfleet::test {

struct sent_message {
  std::string topic;
  std::string payload;
  mqtt::qos qos;

  [[nodiscard]] boost::json::value json() const { return boost::json::parse(payload); }
};

class fake_link : public hub::link {
 public:
  explicit fake_link(hub::link_info info = {}) : info_(std::move(info)) {}

  void send(std::string_view topic, std::string_view payload, mqtt::qos qos) override {
    sent.push_back({std::string(topic), std::string(payload), qos});
  }
  void close() override { closed = true; }
  [[nodiscard]] const hub::link_info& info() const override { return info_; }

  // Removes and returns everything sent so far.
  std::vector<sent_message> take() { return std::exchange(sent, {}); }

  std::vector<sent_message> sent;
  bool closed = false;

 private:
  hub::link_info info_;
};

}  // namespace twinfleet::test
