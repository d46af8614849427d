// Topic names, filters and matching (MQTT 3.1.1 section 4.7), including the topics the Azure and
// AWS dialects subscribe to.
#include <twinfleet/mqtt/topic.hpp>

#include <catch2/catch.hpp>

using namespace twinfleet::mqtt;

TEST_CASE("topic filters follow the wildcard rules", "[mqtt][topic]") {
  for (const char* valid : {"#", "+", "a", "a/b", "a/#", "+/+", "/+", "+/", "a/+/c", "sport/tennis/+/#", "/", "//",
                            "$iothub/twin/res/#", "$aws/things/+/shadow/update/delta", "a b/ c"}) {
    INFO(valid);
    CHECK(is_valid_topic_filter(valid));
  }
  for (const char* invalid : {"", "a#", "#/a", "a/#/b", "a/b#", "##", "a+", "+a", "a/+b", "a/b+/c", "++", "#+"}) {
    INFO(invalid);
    CHECK_FALSE(is_valid_topic_filter(invalid));
  }
}

TEST_CASE("topic names have no wildcards", "[mqtt][topic]") {
  for (const char* valid : {"a", "/", "a/b", "$SYS/broker", "devices/d1/messages/events/", " "}) {
    INFO(valid);
    CHECK(is_valid_topic_name(valid));
  }
  for (const char* invalid : {"", "+", "#", "a/+", "a/#", "a+b"}) {
    INFO(invalid);
    CHECK_FALSE(is_valid_topic_name(invalid));
  }
  // A wildcard anywhere in a long name, as the dialects' topics are.
  const std::string patch = "$iothub/twin/PATCH/properties/reported/?$rid=139";
  CHECK(is_valid_topic_name(patch));
  for (std::size_t at = 0; at <= patch.size(); ++at) {
    for (const char* wildcard : {"+", "#"}) {
      INFO(at << " " << wildcard);
      CHECK_FALSE(is_valid_topic_name(patch.substr(0, at) + wildcard + patch.substr(at)));
    }
  }
}

TEST_CASE("topic matching table", "[mqtt][topic]") {
  struct row {
    const char* filter;
    const char* name;
    bool matches;
  };
  const row table[] = {
      // exact
      {"a/b", "a/b", true},
      {"a/b", "a/c", false},
      {"a/b", "a/b/c", false},
      {"a/b/c", "a/b", false},
      {"a/b", "a/b/", false},  // a trailing slash adds an empty level
      {"a/b/", "a/b/", true},
      {"/", "/", true},
      {"A", "a", false},  // case-sensitive
      // + : exactly one level, possibly empty
      {"+", "a", true},
      {"+", "a/b", false},
      {"+", "/a", false},
      {"+/+", "/a", true},
      {"/+", "/a", true},
      {"a/+", "a/", true},
      {"a/+", "a", false},
      {"a/+/c", "a/b/c", true},
      {"a/+/c", "a/b/d", false},
      {"sport/tennis/+", "sport/tennis/player1", true},
      {"sport/tennis/+", "sport/tennis/player1/ranking", false},
      {"sport/+", "sport", false},
      {"sport/+", "sport/", true},
      // # : the parent and everything below
      {"#", "a", true},
      {"#", "a/b/c", true},
      {"#", "/", true},
      {"a/#", "a", true},
      {"a/#", "a/", true},
      {"a/#", "a/b/c", true},
      {"a/#", "ab", false},
      {"a/#", "b/a", false},
      {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
      {"+/#", "a", true},
      {"+/+/#", "a", false},
      // $ topics are not caught by filters starting with a wildcard (4.7.2)
      {"#", "$SYS/broker", false},
      {"+/monitor/Clients", "$SYS/monitor/Clients", false},
      {"+", "$SYS", false},
      {"$SYS/#", "$SYS/broker/load", true},
      {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
      {"a/#", "a/$b", true},  // only a leading $ is special
      // the dialects' own topics
      {"$iothub/twin/res/#", "$iothub/twin/res/200/?$rid=1", true},
      {"$iothub/twin/PATCH/properties/desired/#", "$iothub/twin/PATCH/properties/desired/?$version=7", true},
      {"$iothub/methods/POST/#", "$iothub/methods/POST/reboot/?$rid=9", true},
      {"$aws/things/+/shadow/update/delta", "$aws/things/thermo-00001/shadow/update/delta", true},
      {"$aws/things/+/shadow/update/delta", "$aws/things/t/shadow/name/config/update/delta", false},
      {"$aws/things/t/shadow/name/+/update/accepted", "$aws/things/t/shadow/name/config/update/accepted", true},
      {"#", "$aws/things/t/shadow/get", false},
  };
  for (const auto& r : table) {
    INFO(r.filter << " vs " << r.name);
    CHECK(topic_matches(r.filter, r.name) == r.matches);
  }
}
