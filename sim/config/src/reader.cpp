#include <twinfleet/config/reader.hpp>
#include <twinfleet/config/units.hpp>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

namespace twinfleet::config {

namespace detail {

struct doc_state {
  std::string file;
  diagnostics* sink = nullptr;
  YAML::Node root;
};

struct node_data {
  std::shared_ptr<doc_state> doc;
  YAML::Node yaml;       // invalid (default) for a missing node
  bool missing = false;
  std::string path;
  location anchor;       // the key's location (null values), or the asking map's (missing keys)
};

struct map_state {
  node self;
  std::vector<std::pair<std::string, node>> entries;
  std::vector<std::string> known;
  bool finished = false;
};

}  // namespace detail

namespace {

location to_location(const std::string& file, const YAML::Mark& m) {
  if (m.is_null() || m.line < 0) return location{file, 0, 0};
  return location{file, m.line + 1, m.column + 1};
}

std::string quote(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 60)) out += c;
  if (s.size() > 60) out += "...";
  return out + "'";
}

bool is_plain_int(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    return std::all_of(s.begin() + 2, s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
  }
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_plain_float(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  std::size_t i = 0;
  bool digits = false;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, digits = true;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, digits = true;
  }
  if (!digits) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return false;
  }
  return i == s.size();
}

std::optional<std::int64_t> to_int(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  }
  std::uint64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (r.ec != std::errc{} || r.ptr != s.data() + s.size()) return std::nullopt;
  if (negative) {
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + 1) return std::nullopt;
    return static_cast<std::int64_t>(0 - v);
  }
  if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
  return static_cast<std::int64_t>(v);
}

bool is_null_word(std::string_view s) { return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL"; }
std::optional<bool> bool_word(std::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}
bool is_yaml11_bool(std::string_view s) {
  static constexpr std::string_view words[] = {"yes", "no", "on", "off", "y", "n", "Yes", "No", "On", "Off", "YES", "NO", "ON", "OFF"};
  return std::find(std::begin(words), std::end(words), s) != std::end(words);
}

std::string format_number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

template <class T>
std::string range_text(T min, T max, T lowest, T highest, auto fmt) {
  if (min != lowest && max != highest) return "must lie in [" + fmt(min) + ", " + fmt(max) + "]";
  if (min != lowest) return "must be at least " + fmt(min);
  return "must be at most " + fmt(max);
}

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) {
    if (!s.empty()) s += ", ";
    s += i;
  }
  return s;
}

}  // namespace

std::string child_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string s(parent);
  s += '.';
  s += key;
  return s;
}

std::string index_path(std::string_view parent, std::size_t index) {
  return std::string(parent) + '[' + std::to_string(index) + ']';
}

// ---- node -------------------------------------------------------------------------------

node::kind node::type() const noexcept {
  if (!d_ || d_->missing) return kind::missing;
  switch (d_->yaml.Type()) {
    case YAML::NodeType::Undefined:
      return kind::missing;
    case YAML::NodeType::Null:
      return kind::null;
    case YAML::NodeType::Scalar:
      return kind::scalar;
    case YAML::NodeType::Sequence:
      return kind::sequence;
    case YAML::NodeType::Map:
      return kind::map;
  }
  return kind::missing;
}

bool node::is_quoted() const noexcept { return is_scalar() && d_->yaml.Tag() != "?"; }

bool node::has_key(std::string_view key) const {
  if (!is_map()) return false;
  for (auto it = d_->yaml.begin(); it != d_->yaml.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key) return true;
  }
  return false;
}

const std::string& node::path() const noexcept {
  static const std::string empty;
  return d_ ? d_->path : empty;
}

location node::where() const {
  if (!d_) return {};
  if (d_->missing || is_null()) {
    if (d_->anchor.line > 0 || d_->missing) return d_->anchor;
  }
  auto at = to_location(d_->doc->file, d_->yaml.Mark());
  return at.line > 0 ? at : d_->anchor;
}

diagnostics& node::sink() const noexcept { return *d_->doc->sink; }

void node::error(std::string message) const {
  if (!d_) return;
  sink().add(where(), path(), std::move(message));
}

std::string node::scalar() const { return is_scalar() ? d_->yaml.Scalar() : std::string{}; }

std::string node::describe() const {
  switch (type()) {
    case kind::missing:
      return "nothing";
    case kind::null:
      return "an empty value";
    case kind::sequence:
      return "a sequence";
    case kind::map:
      return "a map";
    case kind::scalar:
      break;
  }
  const std::string s = scalar();
  if (is_quoted()) return "the string " + quote(s);
  return quote(s);
}

std::optional<std::string> node::as_string() const {
  if (!present()) return std::nullopt;
  if (!is_scalar()) {
    error("expected a string, got " + describe());
    return std::nullopt;
  }
  return scalar();
}

std::optional<std::string> node::as_nonempty_string() const {
  auto s = as_string();
  if (s && s->empty()) {
    error("must not be empty");
    return std::nullopt;
  }
  return s;
}

std::optional<std::int64_t> node::as_int(std::int64_t min, std::int64_t max) const {
  if (!present()) return std::nullopt;
  const std::string s = scalar();
  if (!is_scalar() || is_quoted() || !is_plain_int(s)) {
    error("expected an integer, got " + describe());
    return std::nullopt;
  }
  const auto v = to_int(s);
  if (!v || *v < min || *v > max) {
    error(s + " is out of range: " +
          range_text<std::int64_t>(min, max, std::numeric_limits<std::int64_t>::min(),
                                   std::numeric_limits<std::int64_t>::max(),
                                   [](std::int64_t x) { return std::to_string(x); }));
    return std::nullopt;
  }
  return v;
}

std::optional<std::uint64_t> node::as_uint64() const {
  if (!present()) return std::nullopt;
  const std::string s = scalar();
  if (!is_scalar() || is_quoted() || s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    error("expected a non-negative integer, got " + describe());
    return std::nullopt;
  }
  std::uint64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc{}) {
    error(s + " is out of range: must be at most 18446744073709551615");
    return std::nullopt;
  }
  return v;
}

std::optional<double> node::as_double(double min, double max) const {
  if (!present()) return std::nullopt;
  const std::string s = scalar();
  if (!is_scalar() || is_quoted() || !(is_plain_float(s) || is_plain_int(s))) {
    error("expected a number, got " + describe());
    return std::nullopt;
  }
  double v = 0;
  if (is_plain_int(s)) {
    const auto i = to_int(s);
    v = i ? static_cast<double>(*i) : std::strtod(s.c_str(), nullptr);
  } else {
    v = std::strtod(s.c_str(), nullptr);
  }
  if (!std::isfinite(v) || v < min || v > max) {
    error(s + " is out of range: " +
          range_text<double>(min, max, -std::numeric_limits<double>::max(), std::numeric_limits<double>::max(), format_number));
    return std::nullopt;
  }
  return v;
}

std::optional<bool> node::as_bool() const {
  if (!present()) return std::nullopt;
  const std::string s = scalar();
  if (is_scalar() && !is_quoted()) {
    if (auto b = bool_word(s)) return b;
    if (is_yaml11_bool(s)) {
      error("expected true or false, got " + describe() + " (YAML 1.2 reads yes/no/on/off as strings)");
      return std::nullopt;
    }
  }
  error("expected true or false, got " + describe());
  return std::nullopt;
}

std::optional<duration> node::as_duration(duration min, duration max) const {
  if (!present()) return std::nullopt;
  const std::string s = scalar();
  if (!is_scalar()) {
    error("expected a duration such as 250ms, 5s or 2m, got " + describe());
    return std::nullopt;
  }
  const auto d = parse_duration(s);
  if (!d) {
    if (!is_quoted() && (is_plain_int(s) || is_plain_float(s))) {
      error("a duration needs a unit (ns, us, ms, s, m, h, d), such as " + s + "ms or " + s + "s; got " + s);
    } else {
      error("expected a duration such as 250ms, 5s or 2m, got " + describe());
    }
    return std::nullopt;
  }
  if (*d < min || *d > max) {
    error(s + " is out of range: " + range_text<duration>(min, max, duration::zero(), duration::max(), format_duration));
    return std::nullopt;
  }
  return d;
}

std::optional<double> node::as_rate(double min_per_second, double max_per_second) const {
  if (!present()) return std::nullopt;
  const std::string s = scalar();
  if (!is_scalar()) {
    error("expected a rate such as 100/s, 5/m or 12/h, got " + describe());
    return std::nullopt;
  }
  const auto r = parse_rate(s);
  if (!r) {
    if (!is_quoted() && (is_plain_int(s) || is_plain_float(s))) {
      error("a rate needs a unit of time, such as " + s + "/s; got " + s);
    } else {
      error("expected a rate such as 100/s, 5/m or 12/h, got " + describe());
    }
    return std::nullopt;
  }
  if (*r < min_per_second || *r > max_per_second) {
    error(s + " is out of range: " +
          range_text<double>(min_per_second, max_per_second, 0, std::numeric_limits<double>::max(),
                             [](double x) { return format_number(x) + "/s"; }));
    return std::nullopt;
  }
  return r;
}

std::optional<double> node::as_fraction(double min, double max) const {
  if (!present()) return std::nullopt;
  const std::string s = scalar();
  std::optional<double> v;
  if (is_scalar()) {
    v = parse_percent(s);
    if (!v && !is_quoted() && (is_plain_float(s) || is_plain_int(s))) v = std::strtod(s.c_str(), nullptr);
  }
  if (!v) {
    error("expected a percentage such as 5% (or a fraction such as 0.05), got " + describe());
    return std::nullopt;
  }
  if (*v < min || *v > max) {
    error(s + " is out of range: " +
          range_text<double>(min, max, -1, 2, [](double x) { return format_number(x * 100) + "%"; }));
    return std::nullopt;
  }
  return v;
}

std::optional<std::size_t> node::as_enum(std::initializer_list<std::string_view> choices) const {
  return as_enum(std::vector<std::string>(choices.begin(), choices.end()));
}

std::optional<std::size_t> node::as_enum(const std::vector<std::string>& choices) const {
  if (!present()) return std::nullopt;
  const std::string s = scalar();
  if (is_scalar()) {
    for (std::size_t i = 0; i < choices.size(); ++i) {
      if (choices[i] == s) return i;
    }
  }
  std::string message = is_scalar() ? "unknown value " + quote(s) : "expected one of " + join(choices) + ", got " + describe();
  if (is_scalar()) {
    if (const auto hint = closest_match(s, choices); !hint.empty()) message += " (did you mean '" + hint + "'?)";
    message += "; expected one of: " + join(choices);
  }
  error(std::move(message));
  return std::nullopt;
}

std::optional<std::vector<std::string>> node::as_string_list() const {
  if (!present()) return std::nullopt;
  if (is_scalar()) return std::vector<std::string>{scalar()};
  if (!is_sequence()) {
    error("expected a list of strings, got " + describe());
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (const auto& item : items()) {
    if (auto s = item.as_string()) {
      out.push_back(std::move(*s));
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<boost::json::value> node::as_json() const {
  switch (type()) {
    case kind::missing:
      return std::nullopt;
    case kind::null:
      return boost::json::value(nullptr);
    case kind::scalar: {
      const std::string s = scalar();
      if (is_quoted()) return boost::json::value(s);
      if (is_null_word(s)) return boost::json::value(nullptr);
      if (auto b = bool_word(s)) return boost::json::value(*b);
      if (is_plain_int(s)) {
        if (auto i = to_int(s)) return boost::json::value(*i);
      }
      if (is_plain_float(s)) return boost::json::value(std::strtod(s.c_str(), nullptr));
      return boost::json::value(s);
    }
    case kind::sequence: {
      boost::json::array a;
      bool ok = true;
      for (const auto& item : items()) {
        if (auto v = item.as_json()) {
          a.push_back(std::move(*v));
        } else {
          ok = false;
        }
      }
      if (!ok) return std::nullopt;
      return boost::json::value(std::move(a));
    }
    case kind::map: {
      boost::json::object o;
      auto reader = map();
      bool ok = true;
      for (auto& [key, value] : reader.entries()) {
        if (auto v = value.as_json()) {
          o[key] = std::move(*v);
        } else {
          ok = false;
        }
      }
      if (!ok) return std::nullopt;
      return boost::json::value(std::move(o));
    }
  }
  return std::nullopt;
}

std::vector<node> node::items() const {
  std::vector<node> out;
  if (!present()) return out;
  if (!is_sequence()) {
    error("expected a sequence, got " + describe());
    return out;
  }
  std::size_t i = 0;
  for (auto it = d_->yaml.begin(); it != d_->yaml.end(); ++it, ++i) {
    auto d = std::make_shared<detail::node_data>();
    d->doc = d_->doc;
    d->yaml = static_cast<const YAML::Node&>(*it);
    d->path = index_path(d_->path, i);
    d->anchor = where();
    out.push_back(node(std::move(d)));
  }
  return out;
}

map_reader node::map() const { return map_reader(*this); }

// ---- map_reader -------------------------------------------------------------------------

map_reader::map_reader() : s_(std::make_unique<detail::map_state>()) { s_->finished = true; }
map_reader::~map_reader() {
  if (s_) finish();
}
map_reader::map_reader(map_reader&&) noexcept = default;
map_reader& map_reader::operator=(map_reader&& other) noexcept {
  if (this != &other) {
    if (s_) finish();
    s_ = std::move(other.s_);
  }
  return *this;
}

map_reader::map_reader(node self) : s_(std::make_unique<detail::map_state>()) {
  s_->self = std::move(self);
  const node& me = s_->self;
  if (!me.present()) {
    s_->finished = true;
    return;
  }
  if (!me.is_map()) {
    // An empty value where a map belongs (`quirks:`) reads as an empty map.
    if (!me.is_null()) me.error("expected a map, got " + me.describe());
    s_->finished = true;
    return;
  }
  const auto& doc = me.d_->doc;
  for (auto it = me.d_->yaml.begin(); it != me.d_->yaml.end(); ++it) {
    // A copy, not a reference: yaml-cpp's iterator hands out its pair through a proxy that
    // dies at the end of the expression (AddressSanitizer: stack-use-after-scope).
    const YAML::Node key = it->first;
    const location key_at = to_location(doc->file, key.Mark());
    if (!key.IsScalar()) {
      doc->sink->add(key_at, me.path(), "keys must be plain names, got a complex key");
      continue;
    }
    const std::string name = key.Scalar();
    auto d = std::make_shared<detail::node_data>();
    d->doc = doc;
    d->yaml = it->second;
    d->path = child_path(me.path(), name);
    d->anchor = key_at;
    const auto first = std::find_if(s_->entries.begin(), s_->entries.end(), [&](const auto& e) { return e.first == name; });
    if (first != s_->entries.end()) {
      const auto first_at = first->second.d_->anchor;
      doc->sink->add(key_at, d->path,
                     "duplicate key '" + name + "' (first at line " + std::to_string(first_at.line) + "); remove one");
      continue;
    }
    s_->entries.emplace_back(name, node(std::move(d)));
  }
}

node map_reader::get(std::string_view key) {
  if (std::find(s_->known.begin(), s_->known.end(), key) == s_->known.end()) s_->known.emplace_back(key);
  for (const auto& [k, v] : s_->entries) {
    if (k == key) return v;
  }
  auto d = std::make_shared<detail::node_data>();
  if (s_->self.d_) {
    d->doc = s_->self.d_->doc;
    d->anchor = s_->self.where();
  }
  d->missing = true;
  d->path = child_path(s_->self.path(), key);
  return node(std::move(d));
}

node map_reader::require(std::string_view key) {
  node n = get(key);
  const node& me = s_->self;
  // A value that is not a map at all was reported already; one error is enough.
  if (!n.present() && (me.is_map() || me.is_null())) me.error("missing required key '" + std::string(key) + "'");
  return n;
}

bool map_reader::has(std::string_view key) const {
  return std::any_of(s_->entries.begin(), s_->entries.end(), [&](const auto& e) { return e.first == key; });
}

void map_reader::allow(std::initializer_list<std::string_view> keys) {
  for (auto k : keys) {
    if (std::find(s_->known.begin(), s_->known.end(), k) == s_->known.end()) s_->known.emplace_back(k);
  }
}

std::vector<std::pair<std::string, node>> map_reader::entries() {
  for (const auto& e : s_->entries) {
    if (std::find(s_->known.begin(), s_->known.end(), e.first) == s_->known.end()) s_->known.push_back(e.first);
  }
  return s_->entries;
}

std::size_t map_reader::at_most_one_of(std::initializer_list<std::string_view> keys) {
  allow(keys);
  std::vector<std::string> present;
  for (auto k : keys) {
    if (has(k)) present.emplace_back(k);
  }
  if (present.size() > 1) {
    std::string list;
    for (std::size_t i = 0; i < present.size(); ++i) {
      list += (i == 0 ? "" : (i + 1 == present.size() ? " and " : ", ")) + ("'" + present[i] + "'");
    }
    // Reported at the second one: the first is the one the user probably meant to keep.
    get(present[1]).error(list + " exclude each other; give only one");
  }
  return present.size();
}

const node& map_reader::self() const noexcept { return s_->self; }

void map_reader::finish() {
  if (!s_ || s_->finished) return;
  s_->finished = true;
  for (const auto& [key, value] : s_->entries) {
    if (std::find(s_->known.begin(), s_->known.end(), key) != s_->known.end()) continue;
    std::string message = "unknown key '" + key + "'";
    if (const auto hint = closest_match(key, s_->known); !hint.empty()) {
      message += " (did you mean '" + hint + "'?)";
    } else if (!s_->known.empty()) {
      message += "; expected one of: " + join(s_->known);
    }
    value.d_->doc->sink->add(value.d_->anchor, value.path(), std::move(message));
  }
}

// ---- document ---------------------------------------------------------------------------

struct document::impl {
  std::shared_ptr<detail::doc_state> state;
};

std::optional<document> document::load_string(std::string_view text, std::string display_name, diagnostics& diags) {
  auto state = std::make_shared<detail::doc_state>();
  state->file = std::move(display_name);
  state->sink = &diags;
  try {
    auto docs = YAML::LoadAll(std::string(text));
    if (docs.size() > 1) {
      diags.add(location{state->file, 0, 0}, "", "holds " + std::to_string(docs.size()) +
                                                      " YAML documents (separated by ---); one file holds one");
      return std::nullopt;
    }
    state->root = docs.empty() ? YAML::Node(YAML::NodeType::Null) : docs.front();
  } catch (const YAML::Exception& e) {
    diags.add(to_location(state->file, e.mark), "", "YAML syntax error: " + e.msg);
    return std::nullopt;
  }
  return document(std::make_shared<impl>(impl{std::move(state)}));
}

std::optional<document> document::load_file(const std::filesystem::path& file, diagnostics& diags,
                                             std::optional<std::string> display_name) {
  const std::string name = display_name ? *display_name : file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    diags.add(location{name, 0, 0}, "", std::string("cannot read the file: ") + std::strerror(errno));
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return load_string(text.str(), name, diags);
}

namespace {

// A copy of `v` without source positions: a value from the command line has none in the file.
YAML::Node without_marks(const YAML::Node& v) {
  switch (v.Type()) {
    case YAML::NodeType::Map: {
      YAML::Node out(YAML::NodeType::Map);
      for (auto it = v.begin(); it != v.end(); ++it) out[YAML::Node(it->first.Scalar())] = without_marks(it->second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      YAML::Node out(YAML::NodeType::Sequence);
      for (const auto& item : v) out.push_back(without_marks(item));
      return out;
    }
    case YAML::NodeType::Scalar: {
      YAML::Node out(v.Scalar());
      out.SetTag(v.Tag());
      return out;
    }
    default: return YAML::Node(YAML::NodeType::Null);
  }
}

}  // namespace

bool document::set(std::string_view path, std::string_view yaml_value, diagnostics& diags) {
  const location nowhere{"--set " + std::string(path), 0, 0};
  YAML::Node value;
  try {
    value = without_marks(YAML::Load(std::string(yaml_value)));
  } catch (const YAML::Exception& e) {
    diags.add(nowhere, "", "the value is not YAML: " + e.msg);
    return false;
  }
  // "phases[0].duration", as diagnostics write paths, is "phases.0.duration".
  std::string dotted;
  for (char c : path) {
    if (c == '[') {
      dotted += '.';
    } else if (c != ']') {
      dotted += c;
    }
  }
  const std::string_view p = dotted;
  std::vector<std::string> keys;
  for (std::size_t begin = 0; begin <= p.size();) {
    const auto dot = std::min(p.find('.', begin), p.size());
    keys.emplace_back(p.substr(begin, dot - begin));
    begin = dot + 1;
  }
  if (keys.empty() || std::any_of(keys.begin(), keys.end(), [](const auto& k) { return k.empty(); })) {
    diags.add(nowhere, "", "expected a key path such as phases.0.duration");
    return false;
  }
  auto& root = i_->state->root;
  if (!root.IsMap()) {
    diags.add(nowhere, "", "the file's top level is not a map");
    return false;
  }
  // yaml-cpp nodes are references: walk with reset(), never with assignment (which would
  // overwrite the node referred to).
  YAML::Node at;
  at.reset(root);
  std::string walked;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto& key = keys[i];
    const bool last = i + 1 == keys.size();
    if (at.IsSequence()) {
      std::size_t index = 0;
      const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), index);
      if (ec != std::errc() || end != key.data() + key.size() || index >= at.size()) {
        diags.add(nowhere, walked, "'" + key + "' is not an index of this list of " + std::to_string(at.size()));
        return false;
      }
      if (last) {
        at[index] = value;
        return true;
      }
      YAML::Node next = at[index];
      at.reset(next);
    } else {
      if (!at.IsDefined() || at.IsNull()) at = YAML::Node(YAML::NodeType::Map);
      if (!at.IsMap()) {
        diags.add(nowhere, walked, "is not a map, so it has no key '" + key + "'");
        return false;
      }
      if (last) {
        at[key] = value;
        return true;
      }
      YAML::Node next = at[key];
      at.reset(next);
    }
    walked += (walked.empty() ? "" : ".") + key;
  }
  return true;
}

node document::root() const {
  auto d = std::make_shared<detail::node_data>();
  d->doc = i_->state;
  d->yaml = i_->state->root;
  d->anchor = location{i_->state->file, 1, 1};
  return node(std::move(d));
}

const std::string& document::file() const noexcept { return i_->state->file; }

}  // namespace twinfleet::config
