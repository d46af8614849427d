// Maps keyed by std::string that are searched with a std::string_view, without building a
// std::string per lookup (a device key such as "azure/bulb-00001" is past the small-string
// buffer, so each such lookup was a heap allocation).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace twinfleet::twin {

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <class T>
using string_map = std::unordered_map<std::string, T, string_hash, std::equal_to<>>;

// The entry for `key`, value-initialised when missing (operator[] for a string_view).
template <class T>
T& entry(string_map<T>& map, std::string_view key) {
  auto it = map.find(key);
  if (it == map.end()) it = map.try_emplace(std::string(key)).first;
  return it->second;
}

}  // namespace twinfleet::twin
