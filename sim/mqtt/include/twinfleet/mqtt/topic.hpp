// Topic names, topic filters and matching one against the other (MQTT 3.1.1 section 4.7).
// Pure functions on views; thread-safe.
#pragma once

#include <string_view>

namespace twinfleet::mqtt {

// A topic name as PUBLISH carries it: non-empty, no + or #. UTF-8 is not checked here
// (see is_valid_mqtt_utf8 in codec.hpp).
[[nodiscard]] bool is_valid_topic_name(std::string_view name) noexcept;

// A topic filter as SUBSCRIBE carries it: non-empty; + only as a whole level; # only as a whole
// level and only as the last one. UTF-8 is not checked here.
[[nodiscard]] bool is_valid_topic_filter(std::string_view filter) noexcept;

// Whether `s` holds a wildcard character (+ or #): a filter that is not one exact topic.
[[nodiscard]] bool has_wildcard(std::string_view s) noexcept;

// Whether a message published on `name` reaches a subscription to `filter`.
// + matches exactly one level (possibly empty), # the parent level and any number of levels
// below it ("a/#" matches "a"), and a filter that starts with + or # never matches a name that
// starts with '$' ("#" does not match "$SYS/x" nor "$aws/things/t/shadow/get"), as section
// 4.7.2 requires. Both arguments are assumed valid; with invalid ones the answer is
// unspecified but the call is still safe.
[[nodiscard]] bool topic_matches(std::string_view filter, std::string_view name) noexcept;

}  // namespace twinfleet::mqtt
