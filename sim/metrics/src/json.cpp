#include <twinfleet/metrics/json.hpp>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <optional>
#include <string>

namespace twinfleet::metrics {

namespace json = boost::json;

namespace {

json::object layout_json() {
  json::object l;
  l["unit_shift"] = layout::unit_shift;
  l["sub_bucket_bits"] = layout::sub_bucket_bits;
  l["highest_ns"] = layout::highest_ns;
  l["bucket_count"] = layout::bucket_count;
  return l;
}

twin::error malformed(const std::string& what) {
  return twin::error{error_code::malformed, "histogram JSON: " + what};
}

// A non-negative integer however Boost.JSON stored it (int64 or uint64); no fractions.
std::optional<std::uint64_t> as_count(const json::value& v) {
  if (v.is_uint64()) return v.get_uint64();
  if (v.is_int64() && v.get_int64() >= 0) return static_cast<std::uint64_t>(v.get_int64());
  return std::nullopt;
}

result<std::uint64_t> member_count(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return malformed("missing \"" + std::string(key) + "\"");
  auto n = as_count(*v);
  if (!n) return malformed("\"" + std::string(key) + "\" must be a non-negative integer");
  return *n;
}

}  // namespace

json::object to_json(const histogram& h) {
  json::object o;
  o["format"] = histogram_format;
  o["version"] = histogram_format_version;
  o["layout"] = layout_json();
  o["count"] = h.count();
  o["sum_ns"] = h.sum_ns();
  o["min_ns"] = h.min_ns();
  o["max_ns"] = h.max_ns();
  o["overflow"] = h.overflow_count();
  json::array buckets;
  const auto counts = h.buckets();
  for (std::size_t i = 0; i < counts.size(); ++i)
    if (counts[i] != 0) buckets.push_back(json::array{i, counts[i]});
  o["buckets"] = std::move(buckets);
  return o;
}

result<histogram> from_json(const json::value& v) {
  const auto* o = v.if_object();
  if (!o) return malformed("not an object");

  const auto* format = o->if_contains("format");
  if (!format || !format->is_string() || format->get_string() != histogram_format)
    return twin::error{error_code::incompatible_layout,
                       "histogram JSON: \"format\" must be \"" + std::string(histogram_format) + "\""};
  const auto* version = o->if_contains("version");
  if (!version || as_count(*version) != std::optional<std::uint64_t>(histogram_format_version))
    return twin::error{error_code::incompatible_layout,
                       "histogram JSON: unsupported \"version\" (this build reads version " +
                           std::to_string(histogram_format_version) + ")"};
  const auto* l = o->if_contains("layout");
  if (!l || !l->is_object()) return malformed("missing \"layout\" object");
  for (const auto& [key, expected] : layout_json()) {
    const auto* got = l->get_object().if_contains(key);
    const auto n = got ? as_count(*got) : std::nullopt;
    if (!n || *n != expected.to_number<std::uint64_t>())
      return twin::error{error_code::incompatible_layout,
                         "histogram JSON: layout." + std::string(key) + " is " +
                             (got ? json::serialize(*got) : std::string("missing")) + ", this build uses " +
                             json::serialize(expected) + ": the histogram was written with another bucket layout"};
  }

  histogram::totals t;
  for (auto [key, field] : {std::pair{"count", &t.count}, std::pair{"sum_ns", &t.sum_ns},
                            std::pair{"min_ns", &t.min_ns}, std::pair{"max_ns", &t.max_ns},
                            std::pair{"overflow", &t.overflow}}) {
    auto n = member_count(*o, key);
    if (!n) return n.error();
    *field = *n;
  }

  const auto* b = o->if_contains("buckets");
  if (!b || !b->is_array()) return malformed("missing \"buckets\" array");
  histogram h;
  std::uint64_t total = 0;
  std::optional<std::size_t> first;
  std::size_t last = 0;
  const auto& arr = b->get_array();
  for (std::size_t k = 0; k < arr.size(); ++k) {
    const std::string at = "buckets[" + std::to_string(k) + "]";
    const auto* pair = arr[k].if_array();
    if (!pair || pair->size() != 2) return malformed(at + " must be an [index, count] pair");
    const auto index = as_count((*pair)[0]);
    const auto n = as_count((*pair)[1]);
    if (!index || !n) return malformed(at + " must hold two non-negative integers");
    if (*index >= layout::bucket_count)
      return malformed(at + ": index " + std::to_string(*index) + " outside the layout's " +
                       std::to_string(layout::bucket_count) + " buckets");
    if (first && *index <= last) return malformed(at + ": indexes must be strictly ascending");
    if (*n == 0) return malformed(at + ": a listed bucket must have a non-zero count");
    if (total + *n < total) return malformed(at + ": the counts overflow 64 bits");
    total += *n;
    if (!first) first = *index;
    last = *index;
    h.unchecked_add_bucket(*index, *n);
  }
  if (total != t.count)
    return malformed("the bucket counts add up to " + std::to_string(total) + ", \"count\" says " +
                     std::to_string(t.count));
  if (t.overflow > t.count) return malformed("\"overflow\" exceeds \"count\"");
  if (t.count == 0) {
    if (t.sum_ns != 0 || t.min_ns != 0 || t.max_ns != 0)
      return malformed("an empty histogram must have sum_ns, min_ns and max_ns 0");
  } else {
    if (layout::index_of(t.min_ns) != *first || t.min_ns > layout::highest_ns)
      return malformed("\"min_ns\" " + std::to_string(t.min_ns) + " is not in the first non-empty bucket");
    if (layout::index_of(t.max_ns) != last || t.max_ns > layout::highest_ns)
      return malformed("\"max_ns\" " + std::to_string(t.max_ns) + " is not in the last non-empty bucket");
  }
  h.unchecked_set_totals(t);
  return h;
}

}  // namespace twinfleet::metrics
