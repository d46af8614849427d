// Subscriptions indexed by topic filter, level by level, as MQTT brokers keep them. A message's
// topic finds the filters that match it in time proportional to its levels and to the wildcard
// branches along them, not to the number of subscriptions: a hub whose 10,000 AWS things each
// subscribe to `twinfleet/things/{thing}/commands/+` walks a few nodes per message instead of
// testing 10,000 filters. Matching follows topic_matches() exactly (MQTT 3.1.1 section 4.7,
// the '$' rule included); the tests check the two against each other.
//
// Filters are assumed valid (is_valid_topic_filter) and topics valid topic names. Several
// values may share a filter. Nodes left empty by erase_if() are freed, so a fleet that keeps
// connecting and leaving does not grow the tree. Not thread-safe.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace twinfleet::mqtt {

template <class T>
class subscription_tree {
 public:
  // Adds `value` under `filter`.
  void insert(std::string_view filter, T value) {
    values_of(filter, true)->push_back(std::move(value));
    ++size_;
  }

  // Removes the values under `filter` (exactly that filter) for which pred(value) holds, and
  // the nodes this leaves empty. Returns how many values it removed.
  template <class Pred>
  std::size_t erase_if(std::string_view filter, Pred pred) {
    const std::size_t removed = erase_from(root_, filter, pred);
    size_ -= removed;
    return removed;
  }

  // Calls f(T&) for each value under `filter` (exactly that filter, not the ones matching it).
  template <class F>
  void for_filter(std::string_view filter, F f) {
    if (auto* values = values_of(filter, false)) {
      for (auto& v : *values) f(v);
    }
  }

  // Calls f(T&) for each value whose filter matches `topic`, once per (filter, value). The
  // order is fixed by the tree's shape: at each level '#' filters first, then the named level,
  // then '+'.
  template <class F>
  void match(std::string_view topic, F f) {
    // Section 4.7.2: filters that start with a wildcard do not match topics that start with '$'.
    const bool dollar = !topic.empty() && topic.front() == '$';
    walk(root_, topic, dollar, f);
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

 private:
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  struct node {
    std::vector<T> values;  // filters that end at this level
    std::vector<T> multi;   // filters that end with '#' below this level ("a/#": at node "a")
    std::unordered_map<std::string, std::unique_ptr<node>, string_hash, std::equal_to<>> children;  // '+' too
    [[nodiscard]] bool unused() const noexcept { return values.empty() && multi.empty() && children.empty(); }
  };
  struct split_level {
    std::string_view level;
    std::optional<std::string_view> next;  // empty: this was the last level
  };

  // The first level of `s` and what follows its '/' ("a/" is "a" then one empty level).
  static split_level split(std::string_view s) noexcept {
    const auto slash = s.find('/');
    if (slash == std::string_view::npos) return {s, std::nullopt};
    return {s.substr(0, slash), s.substr(slash + 1)};
  }

  // Where the values of `filter` are kept: the node of its last level, or for a filter ending
  // in '#' the multi-level list of the node above. With `create`, the missing nodes are made;
  // without, null when the filter has no node.
  std::vector<T>* values_of(std::string_view filter, bool create) {
    node* n = &root_;
    for (std::string_view rest = filter;;) {
      const auto [level, next] = split(rest);
      if (level == "#") return &n->multi;
      auto it = n->children.find(level);
      if (it == n->children.end()) {
        if (!create) return nullptr;
        it = n->children.emplace(std::string(level), std::make_unique<node>()).first;
      }
      n = it->second.get();
      if (!next) return &n->values;
      rest = *next;
    }
  }

  // `rest` holds the levels not yet consumed; `root_dollar` is true only at the root of a '$'
  // topic, where wildcards do not apply.
  template <class F>
  static void walk(node& n, std::optional<std::string_view> rest, bool root_dollar, F& f) {
    if (!root_dollar) {
      for (auto& v : n.multi) f(v);  // '#' matches the parent level too: "a/#" matches "a"
    }
    if (!rest) {
      for (auto& v : n.values) f(v);
      return;
    }
    const auto [level, next] = split(*rest);
    if (auto it = n.children.find(level); it != n.children.end() && level != "+") walk(*it->second, next, false, f);
    if (root_dollar) return;
    if (auto it = n.children.find(std::string_view("+")); it != n.children.end()) walk(*it->second, next, false, f);
  }

  template <class Pred>
  static std::size_t erase_from(node& n, std::string_view rest, Pred& pred) {
    const auto [level, next] = split(rest);
    if (level == "#") return std::erase_if(n.multi, pred);
    auto it = n.children.find(level);
    if (it == n.children.end()) return 0;
    node& child = *it->second;
    const std::size_t removed = next ? erase_from(child, *next, pred) : std::erase_if(child.values, pred);
    if (child.unused()) n.children.erase(it);
    return removed;
  }

  node root_;
  std::size_t size_ = 0;
};

}  // namespace twinfleet::mqtt
