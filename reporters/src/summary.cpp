#include <twinfleet/reporters/summary.hpp>

#include "format.hpp"

#include <boost/json.hpp>

#include <fmt/core.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

namespace twinfleet::reporters {

namespace json = boost::json;

namespace {

const char* kind_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "?";
}

enum class want : std::uint8_t { number, string, boolean, object, array };

const char* want_name(want w) {
  switch (w) {
    case want::number:
      return "a number";
    case want::string:
      return "a string";
    case want::boolean:
      return "a boolean";
    case want::object:
      return "an object";
    case want::array:
      return "an array";
  }
  return "?";
}

bool is(const json::value& v, want w) {
  switch (w) {
    case want::number:
      return v.is_number();
    case want::string:
      return v.is_string();
    case want::boolean:
      return v.is_bool();
    case want::object:
      return v.is_object();
    case want::array:
      return v.is_array();
  }
  return false;
}

// Walks the known fields and stops at the first that breaks the schema; the path it reports is
// the one a person would type to find the field.
class checker {
 public:
  explicit checker(std::string_view source) : source_(source) {}

  [[nodiscard]] bool failed() const { return !error_.empty(); }
  [[nodiscard]] const std::string& error() const { return error_; }

  // The field `key` of `o` at `path`: absent is fine unless `required`; otherwise its type.
  const json::value* field(const json::object& o, const std::string& path, std::string_view key, want w, bool required = false) {
    if (failed()) return nullptr;
    const auto full = path.empty() ? std::string(key) : path + "." + std::string(key);
    const auto* v = o.if_contains(key);
    if (!v) {
      if (required) fail(full, "missing (a run's summary always has it)");
      return nullptr;
    }
    if (!is(*v, w)) {
      fail(full, fmt::format("expected {}, got {}", want_name(w), kind_name(*v)));
      return nullptr;
    }
    return v;
  }

  // Every member of an object field must be `w`.
  void all_members(const json::value* v, const std::string& path, want w) {
    if (!v || failed()) return;
    for (const auto& [k, m] : v->get_object()) {
      if (!is(m, w)) {
        fail(path + "." + std::string(k), fmt::format("expected {}, got {}", want_name(w), kind_name(m)));
        return;
      }
    }
  }

  void fail(const std::string& path, const std::string& what) {
    if (!failed()) error_ = fmt::format("{}: {}: {}", source_, path, what);
  }

 private:
  std::string source_;
  std::string error_;
};

void check_numbers(checker& c, const json::object& o, const std::string& path, std::initializer_list<std::string_view> keys) {
  for (const auto k : keys) (void)c.field(o, path, k, want::number);
}

}  // namespace

twin::result<void> check_summary(const json::object& s, std::string_view source) {
  checker c(source);
  if (const auto* v = c.field(s, "", "schema", want::number)) {
    const auto n = detail::as_number(v);
    if (*n != summary_schema) c.fail("schema", fmt::format("this twinfleet reads schema {}, the file has {}", summary_schema, detail::format_number(*n)));
  }
  (void)c.field(s, "", "scenario", want::string, true);
  (void)c.field(s, "", "seed", want::number);
  (void)c.field(s, "", "target", want::string);
  (void)c.field(s, "", "started_at", want::string);
  (void)c.field(s, "", "duration_s", want::number, true);
  (void)c.field(s, "", "interrupted", want::boolean);

  if (const auto* d = c.field(s, "", "devices", want::object)) {
    check_numbers(c, d->get_object(), "devices", {"planned", "connected_peak", "connect_failures", "disconnects"});
    if (const auto* g = c.field(d->get_object(), "devices", "by_group", want::array)) {
      std::size_t i = 0;
      for (const auto& e : g->get_array()) {
        const auto path = fmt::format("devices.by_group[{}]", i++);
        if (!e.is_object()) {
          c.fail(path, fmt::format("expected an object, got {}", kind_name(e)));
          break;
        }
        check_numbers(c, e.get_object(), path, {"planned", "connected_peak"});
      }
    }
  }

  if (const auto* ops = c.field(s, "", "operations", want::object, true)) {
    for (const auto& [name, op] : ops->get_object()) {
      const auto path = "operations." + std::string(name);
      if (!op.is_object()) {
        c.fail(path, fmt::format("expected an object, got {}", kind_name(op)));
        break;
      }
      const auto& o = op.get_object();
      (void)c.field(o, path, "count", want::number, true);
      (void)c.field(o, path, "errors", want::number);
      c.all_members(c.field(o, path, "latency_ms", want::object), path + ".latency_ms", want::number);
      (void)c.field(o, path, "histogram", want::object);
    }
  }

  if (const auto* sy = c.field(s, "", "sync", want::object)) {
    const auto& o = sy->get_object();
    check_numbers(c, o, "sync", {"desired_writes", "converged", "convergence_ratio", "deadline_s", "converged_within_deadline"});
    c.all_members(c.field(o, "sync", "anomalies", want::object), "sync.anomalies", want::number);
    c.all_members(c.field(o, "sync", "examples", want::object), "sync.examples", want::array);
    c.all_members(c.field(o, "sync", "observed", want::object), "sync.observed", want::number);
  }

  if (const auto* en = c.field(s, "", "engine", want::object)) {
    const auto& o = en->get_object();
    check_numbers(c, o, "engine", {"threads", "rss_bytes_peak", "workers"});
    c.all_members(c.field(o, "engine", "lag_ms", want::object), "engine.lag_ms", want::number);
    (void)c.field(o, "engine", "lag_histogram", want::object);
  }

  if (const auto* tl = c.field(s, "", "timeline", want::array)) {
    std::size_t i = 0;
    for (const auto& e : tl->get_array()) {
      const auto path = fmt::format("timeline[{}]", i++);
      if (!e.is_object()) {
        c.fail(path, fmt::format("expected an object, got {}", kind_name(e)));
        break;
      }
      (void)c.field(e.get_object(), path, "t_s", want::number, true);
      (void)c.field(e.get_object(), path, "connected", want::number);
      if (const auto* ops = c.field(e.get_object(), path, "ops", want::object)) {
        c.all_members(ops, path + ".ops", want::object);
      }
      if (c.failed()) break;
    }
  }

  if (const auto* th = c.field(s, "", "thresholds", want::array)) {
    std::size_t i = 0;
    for (const auto& e : th->get_array()) {
      const auto path = fmt::format("thresholds[{}]", i++);
      if (!e.is_object()) {
        c.fail(path, fmt::format("expected an object, got {}", kind_name(e)));
        break;
      }
      (void)c.field(e.get_object(), path, "name", want::string, true);
      (void)c.field(e.get_object(), path, "expr", want::string);
      (void)c.field(e.get_object(), path, "ok", want::boolean, true);
      (void)c.field(e.get_object(), path, "message", want::string);
    }
  }

  if (c.failed()) return twin::error{report_code::bad_input, c.error()};
  return {};
}

twin::result<json::object> load_summary(const std::filesystem::path& path) {
  const auto name = path.string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return twin::error{report_code::bad_input, name + ": no such file"};
  if (std::filesystem::is_directory(path, ec)) return twin::error{report_code::bad_input, name + ": is a folder, expected a summary.json file"};
  std::ifstream in(path, std::ios::binary);
  if (!in) return twin::error{report_code::bad_input, fmt::format("{}: cannot read: {}", name, std::strerror(errno))};
  std::ostringstream text;
  text << in.rdbuf();
  json::error_code jec;
  json::value v = json::parse(text.str(), jec);
  if (jec) return twin::error{report_code::bad_input, fmt::format("{}: not JSON: {}", name, jec.message())};
  if (!v.is_object()) return twin::error{report_code::bad_input, fmt::format("{}: expected a JSON object, got {}", name, kind_name(v))};
  if (auto ok = check_summary(v.get_object(), name); !ok) return ok.error();
  return std::move(v.get_object());
}

namespace {

bool is_flat(const json::array& a) {
  for (const auto& e : a) {
    if (e.is_object() || e.is_array()) return false;
  }
  return true;
}

void pretty(std::string& out, const json::value& v, int indent) {
  const std::string pad(static_cast<std::size_t>(indent) * 2, ' ');
  const std::string inner(static_cast<std::size_t>(indent + 1) * 2, ' ');
  if (v.is_object() && !v.get_object().empty()) {
    out += "{\n";
    bool first = true;
    for (const auto& [k, m] : v.get_object()) {
      if (!first) out += ",\n";
      first = false;
      out += inner + json::serialize(json::string_view(k)) + ": ";
      pretty(out, m, indent + 1);
    }
    out += "\n" + pad + "}";
  } else if (v.is_array() && !v.get_array().empty() && !is_flat(v.get_array())) {
    out += "[\n";
    bool first = true;
    for (const auto& e : v.get_array()) {
      if (!first) out += ",\n";
      first = false;
      out += inner;
      pretty(out, e, indent + 1);
    }
    out += "\n" + pad + "]";
  } else {
    out += json::serialize(v);
  }
}

}  // namespace

std::string pretty_json(const json::value& v) {
  std::string out;
  pretty(out, v, 0);
  out += "\n";
  return out;
}

twin::result<void> write_text_file(const std::filesystem::path& path, std::string_view text) {
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return twin::error{report_code::io_failure, fmt::format("{}: cannot write: {}", path.string(), std::strerror(errno))};
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.flush();
    if (!out) return twin::error{report_code::io_failure, fmt::format("{}: write failed: {}", path.string(), std::strerror(errno))};
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return twin::error{report_code::io_failure, fmt::format("{}: cannot write: {}", path.string(), ec.message())};
  }
  return {};
}

}  // namespace twinfleet::reporters
