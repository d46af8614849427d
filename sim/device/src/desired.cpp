#include <twinfleet/device/desired.hpp>

#include <twinfleet/twin/json_util.hpp>

#include <boost/json/serialize.hpp>

#include <cmath>
#include <sstream>

namespace twinfleet::device {

namespace {

std::string number_text(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string shown(const boost::json::value& v) {
  // Boost.JSON writes doubles as 5.05E1; people wrote 50.5.
  std::string s = v.is_double() ? number_text(v.as_double()) : boost::json::serialize(v);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

std::optional<double> as_number(const boost::json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  if (v.is_double()) return v.as_double();
  return std::nullopt;
}

}  // namespace

std::optional<std::string> check_value(const property_schema& schema, const boost::json::value& value) {
  const auto expected = [&] { return std::string("expected ") + (schema.type == value_type::integer ? "an " : "a ") + to_string(schema.type) + ", got " + shown(value); };
  switch (schema.type) {
    case value_type::boolean:
      if (!value.is_bool()) return expected();
      break;
    case value_type::string:
      if (!value.is_string()) return expected();
      if (schema.max_length && value.as_string().size() > *schema.max_length) {
        return "longer than " + std::to_string(*schema.max_length) + " characters";
      }
      break;
    case value_type::integer:
    case value_type::number: {
      const auto n = as_number(value);
      if (!n) return expected();
      if (schema.type == value_type::integer && std::floor(*n) != *n) return expected();
      if ((schema.min && *n < *schema.min) || (schema.max && *n > *schema.max)) {
        if (schema.min && schema.max) return "must lie in [" + number_text(*schema.min) + ", " + number_text(*schema.max) + "], got " + shown(value);
        if (schema.min) return "must be at least " + number_text(*schema.min) + ", got " + shown(value);
        return "must be at most " + number_text(*schema.max) + ", got " + shown(value);
      }
      break;
    }
    case value_type::object: {
      if (!value.is_object()) return expected();
      for (const auto& member : value.as_object()) {
        const property_schema* field = nullptr;
        for (const auto& f : schema.fields) {
          if (f.name == member.key()) field = &f;
        }
        if (!field) return "unknown member '" + std::string(member.key()) + "'";
        if (auto why = check_value(*field, member.value())) return std::string(member.key()) + ": " + *why;
      }
      break;
    }
  }
  if (!schema.allowed.empty()) {
    for (const auto& a : schema.allowed) {
      if (twin::json_equal(a, value)) return std::nullopt;
    }
    std::string list;
    for (const auto& a : schema.allowed) list += (list.empty() ? "" : ", ") + shown(a);
    return "must be one of " + list + ", got " + shown(value);
  }
  return std::nullopt;
}

desired_decision decide_desired(const writable_property& property, const boost::json::value& requested,
                                const boost::json::value& current) {
  desired_decision d;
  boost::json::value candidate = requested;
  if (requested.is_null()) {
    candidate = property.initial;
  } else if (property.schema.type == value_type::object && requested.is_object() && current.is_object()) {
    boost::json::object merged = current.as_object();
    twin::merge_patch(merged, requested.as_object());
    candidate = std::move(merged);
  }
  if (candidate.is_null()) {
    d.accepted = true;
    d.status = 200;
    d.description = "reset";
    return d;
  }
  if (auto why = check_value(property.schema, candidate)) {
    d.accepted = false;
    d.value = current;
    d.status = 400;
    d.description = std::move(*why);
    return d;
  }
  d.accepted = true;
  d.value = std::move(candidate);
  d.status = 200;
  d.description = "applied";
  return d;
}

boost::json::object azure_ack(const desired_decision& d, std::int64_t desired_version) {
  boost::json::object o;
  o["value"] = d.value;
  o["ac"] = d.status;
  o["av"] = desired_version;
  o["ad"] = d.description;
  return o;
}

boost::json::object azure_pending_ack(const boost::json::value& requested, std::int64_t desired_version) {
  boost::json::object o;
  o["value"] = requested;
  o["ac"] = 202;
  o["av"] = desired_version;
  o["ad"] = "applying";
  return o;
}

boost::json::object azure_ack_patch(std::string_view name, const desired_decision& d, std::int64_t desired_version) {
  boost::json::object o;
  o[name] = azure_ack(d, desired_version);
  return o;
}

boost::json::object aws_reported_mirror(std::string_view name, const desired_decision& d) {
  boost::json::object o;
  o[name] = d.value;
  return o;
}

}  // namespace twinfleet::device
