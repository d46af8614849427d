// The subscription tree (the hub's index of wildcard filters) against topic_matches(), the
// reference for MQTT 3.1.1 section 4.7: hand-picked cases, then random filters and topics.
#include <twinfleet/mqtt/subscription_tree.hpp>
#include <twinfleet/mqtt/topic.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace twinfleet::mqtt;

namespace {

std::vector<int> matched(subscription_tree<int>& tree, std::string_view topic) {
  std::vector<int> out;
  tree.match(topic, [&](int v) { out.push_back(v); });
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int> expected(const std::vector<std::pair<std::string, int>>& subs, std::string_view topic) {
  std::vector<int> out;
  for (const auto& [filter, v] : subs) {
    if (topic_matches(filter, topic)) out.push_back(v);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("subscription tree: wildcards, the parent level of #, empty levels and $ topics", "[mqtt][topic]") {
  subscription_tree<int> tree;
  const std::vector<std::pair<std::string, int>> subs{
      {"#", 1},         {"+", 2},   {"a/#", 3},   {"a/+", 4},     {"+/b", 5},
      {"$aws/things/+/shadow/#", 6}, {"a/b", 7}, {"/+", 8},      {"a/+/c/#", 9}, {"a/b", 10}};
  for (const auto& [f, v] : subs) tree.insert(f, v);
  CHECK(tree.size() == subs.size());

  CHECK(matched(tree, "a") == std::vector<int>{1, 2, 3});              // "a/#" matches its parent "a"
  CHECK(matched(tree, "a/b") == std::vector<int>{1, 3, 4, 5, 7, 10});  // two values under "a/b"
  CHECK(matched(tree, "a/") == std::vector<int>{1, 3, 4});             // '+' matches an empty level
  CHECK(matched(tree, "/x") == std::vector<int>{1, 8});
  CHECK(matched(tree, "a/x/c") == std::vector<int>{1, 3, 9});
  CHECK(matched(tree, "a/x/c/d/e") == std::vector<int>{1, 3, 9});
  CHECK(matched(tree, "$aws/things/lamp/shadow/get/accepted") == std::vector<int>{6});  // not "#" nor "+"
  CHECK(matched(tree, "$SYS") == std::vector<int>{});
  CHECK(matched(tree, "b/c/d") == std::vector<int>{1});
}

TEST_CASE("subscription tree: erase removes by filter and value, and frees what it empties", "[mqtt][topic]") {
  subscription_tree<int> tree;
  tree.insert("things/lamp-1/commands/+", 1);
  tree.insert("things/lamp-2/commands/+", 2);
  tree.insert("things/+/commands/#", 3);
  tree.insert("things/+/commands/#", 4);

  CHECK(tree.erase_if("things/lamp-1/commands/#", [](int) { return true; }) == 0);  // another filter
  CHECK(tree.erase_if("things/lamp-1/commands/+", [](int v) { return v == 2; }) == 0);  // another value
  CHECK(tree.erase_if("things/+/commands/#", [](int v) { return v == 3; }) == 1);
  CHECK(matched(tree, "things/lamp-1/commands/blink") == std::vector<int>{1, 4});

  std::vector<int> seen;
  tree.for_filter("things/+/commands/#", [&](int& v) { seen.push_back(v); });
  tree.for_filter("things/lamp-2/commands/+", [&](int& v) { seen.push_back(v); });
  tree.for_filter("things/lamp-3/commands/+", [&](int& v) { seen.push_back(v); });
  CHECK(seen == std::vector<int>{4, 2});

  CHECK(tree.erase_if("things/lamp-1/commands/+", [](int) { return true; }) == 1);
  CHECK(tree.erase_if("things/lamp-2/commands/+", [](int) { return true; }) == 1);
  CHECK(tree.erase_if("things/+/commands/#", [](int) { return true; }) == 1);
  CHECK(tree.empty());
  CHECK(matched(tree, "things/lamp-1/commands/blink").empty());
  tree.insert("things/lamp-1/commands/+", 5);  // the freed path is built again
  CHECK(matched(tree, "things/lamp-1/commands/blink") == std::vector<int>{5});
}

TEST_CASE("subscription tree: random filters match as topic_matches says, before and after erasing",
          "[mqtt][topic]") {
  std::mt19937 rng(20261201);
  const std::vector<std::string> names{"a", "b", "", "$x", "lamp-1"};
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  auto random_topic = [&] {
    std::string t;
    while (t.empty()) {  // one empty level is no topic name
      const std::size_t levels = 1 + pick(4);
      for (std::size_t i = 0; i < levels; ++i) {
        if (i > 0) t += '/';
        t += names[pick(names.size())];
      }
    }
    return t;
  };
  auto random_filter = [&] {
    std::string f;
    while (f.empty()) {  // one empty level is no filter
      const std::size_t levels = 1 + pick(4);
      for (std::size_t i = 0; i < levels; ++i) {
        const std::size_t k = pick(names.size() + 2);
        std::string_view level = k < names.size() ? std::string_view(names[k]) : "+";
        if (k == names.size() + 1 && i + 1 == levels) level = "#";  // '#' only last
        if (i > 0) f += '/';
        f += level;
      }
    }
    return f;
  };

  for (int round = 0; round < 20; ++round) {
    subscription_tree<int> tree;
    std::vector<std::pair<std::string, int>> subs;
    for (int v = 0; v < 60; ++v) {
      subs.emplace_back(random_filter(), v);
      INFO(subs.back().first);
      REQUIRE(is_valid_topic_filter(subs.back().first));
      tree.insert(subs.back().first, v);
    }
    for (int i = 0; i < 200; ++i) {
      const auto topic = random_topic();
      INFO(topic);
      REQUIRE(matched(tree, topic) == expected(subs, topic));
    }
    // Erase the odd values, filter by filter.
    for (const auto& [f, v] : subs) {
      if (v % 2 == 1) tree.erase_if(f, [v = v](int x) { return x == v; });
    }
    std::erase_if(subs, [](const auto& s) { return s.second % 2 == 1; });
    REQUIRE(tree.size() == subs.size());
    for (int i = 0; i < 200; ++i) {
      const auto topic = random_topic();
      INFO(topic);
      REQUIRE(matched(tree, topic) == expected(subs, topic));
    }
  }
}
