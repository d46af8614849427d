// Reading YAML configuration files with every error reported at once.
//
// The toolkit wraps yaml-cpp (which never appears in this header) for loaders that turn a YAML
// file into plain structs: device profiles, scenarios, the hub's hub.yaml. A loader walks the
// tree with `node` and `map_reader`, asks for typed values, and every problem it meets — a
// wrong type, a value out of range, an unknown key, a missing required key, a duplicated key,
// a YAML syntax error — is appended to one `diagnostics` list with the file, the 1-based line
// and column and the key path ("fleet[2].profile"). Loading never stops at the first error:
// a getter that fails records a diagnostic and returns nothing, and the loader carries on.
//
// Usage:
//
//   config::diagnostics diags;
//   auto doc = config::document::load_file("hub.yaml", diags);   // nullopt on a syntax error
//   if (doc) {
//     auto top = doc->root().map();                       // "expected a map" if it is not one
//     auto port = top.get("port").as_int(1, 65535);       // nullopt when absent or bad
//     auto every = top.get("every").as_duration().value_or(5s);
//     auto name = top.require("name").as_string();        // "missing required key 'name'"
//     top.finish();                                        // "unknown key 'prot' (did you mean 'port'?)"
//   }
//   for (const auto& d : diags.items()) std::cerr << d.to_string() << '\n';
//
// Getters on an absent key (a `missing` node) return nullopt without a diagnostic, so
// `get(key).as_x().value_or(default)` reads an optional key. Getters on a present but bad value
// record a diagnostic and return nullopt.
//
// Thread-safety: a document and the nodes taken from it belong to one thread.
#pragma once

#include <twinfleet/config/diagnostics.hpp>

#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace twinfleet::config {

using duration = std::chrono::nanoseconds;

namespace detail {
struct node_data;
struct map_state;
}  // namespace detail

class map_reader;

// One value in a loaded document, with its key path and location. Cheap to copy (shared
// handles). A node taken for an absent key is `missing`: it knows its would-be path and the
// location of the map it was asked from.
class node {
 public:
  enum class kind { missing, null, scalar, sequence, map };

  node() = default;

  [[nodiscard]] kind type() const noexcept;
  [[nodiscard]] bool present() const noexcept { return type() != kind::missing; }
  [[nodiscard]] bool is_null() const noexcept { return type() == kind::null; }
  [[nodiscard]] bool is_scalar() const noexcept { return type() == kind::scalar; }
  [[nodiscard]] bool is_sequence() const noexcept { return type() == kind::sequence; }
  [[nodiscard]] bool is_map() const noexcept { return type() == kind::map; }
  // True for a quoted scalar ('5', "true"): YAML says it is a string, whatever it looks like.
  [[nodiscard]] bool is_quoted() const noexcept;

  // True when this is a map with `key` (a peek: marks nothing known, reports nothing).
  [[nodiscard]] bool has_key(std::string_view key) const;

  // "fleet[2].profile"; "" for the document root.
  [[nodiscard]] const std::string& path() const noexcept;
  // Where the value starts (for a null value, where its key is; for a missing key, where the
  // map that lacks it is).
  [[nodiscard]] location where() const;
  // The list every diagnostic about this document goes to.
  [[nodiscard]] diagnostics& sink() const noexcept;

  // Records `message` at this node: "file:line:column: path: message".
  void error(std::string message) const;

  // The raw scalar text; "" when not a scalar.
  [[nodiscard]] std::string scalar() const;
  // "a map", "a sequence", "a string", "an empty value", for "expected X, got Y" messages.
  [[nodiscard]] std::string describe() const;

  // Typed getters. Each returns nullopt without a diagnostic when the node is missing, and
  // nullopt with one diagnostic when it is present but not of the type or not in range.
  // Ranges are inclusive.

  // Any scalar, as written (numbers and booleans too: `firmware: 1.4` reads as "1.4").
  [[nodiscard]] std::optional<std::string> as_string() const;
  // A non-empty string.
  [[nodiscard]] std::optional<std::string> as_nonempty_string() const;
  // A plain (unquoted) integer in decimal, or 0x hexadecimal.
  [[nodiscard]] std::optional<std::int64_t> as_int(std::int64_t min = std::numeric_limits<std::int64_t>::min(),
                                                   std::int64_t max = std::numeric_limits<std::int64_t>::max()) const;
  // A plain unsigned integer up to 2^64-1 (seeds).
  [[nodiscard]] std::optional<std::uint64_t> as_uint64() const;
  // A plain number (integers included), finite.
  [[nodiscard]] std::optional<double> as_double(double min = -std::numeric_limits<double>::max(),
                                                double max = std::numeric_limits<double>::max()) const;
  // A plain `true` or `false` (yes/no/on/off are refused with a hint: YAML 1.2 reads them as strings).
  [[nodiscard]] std::optional<bool> as_bool() const;
  // A duration with a unit: "250ms", "5s", "2m", "1h30m", "1.5s", "100us", "0". See parse_duration.
  [[nodiscard]] std::optional<duration> as_duration(duration min = duration::zero(),
                                                    duration max = duration::max()) const;
  // A rate: "100/s", "5/m", "12/h", "0.5/s", or "0"; returned per second. See parse_rate.
  [[nodiscard]] std::optional<double> as_rate(double min_per_second = 0,
                                              double max_per_second = std::numeric_limits<double>::max()) const;
  // A percentage "12.5%", returned as a fraction (0.125); a plain number is read as a fraction
  // already ("0.125"). The range is in fractions.
  [[nodiscard]] std::optional<double> as_fraction(double min = 0, double max = 1) const;
  // One of `choices`; returns its index. The message lists the choices and suggests the
  // closest one.
  [[nodiscard]] std::optional<std::size_t> as_enum(std::initializer_list<std::string_view> choices) const;
  [[nodiscard]] std::optional<std::size_t> as_enum(const std::vector<std::string>& choices) const;
  // A sequence of scalars; a single scalar is accepted as a one-element list.
  [[nodiscard]] std::optional<std::vector<std::string>> as_string_list() const;
  // Any value as JSON: quoted scalars are strings; plain scalars become null, true/false,
  // integers, numbers or strings, as a YAML 1.2 core schema reader reads them; maps become
  // objects (keys as strings) and sequences arrays.
  [[nodiscard]] std::optional<boost::json::value> as_json() const;

  // The elements of a sequence, with paths "key[0]", "key[1]"… Records "expected a sequence"
  // (and returns none) when present and not a sequence.
  [[nodiscard]] std::vector<node> items() const;
  // A reader over a map. Records "expected a map" when present and not a map (the reader is
  // then empty and reports nothing more). A missing node gives an empty reader.
  [[nodiscard]] map_reader map() const;

 private:
  friend class document;
  friend class map_reader;
  explicit node(std::shared_ptr<detail::node_data> d) : d_(std::move(d)) {}
  std::shared_ptr<detail::node_data> d_;
};

// The keys of one map, read one by one. Every key a loader asks for (get, require, allow) is
// "known"; `finish()` reports every other key of the map as unknown, suggesting the closest
// known key. Duplicated keys are reported when the reader is made. The destructor calls
// `finish()` if the loader did not. Move-only.
class map_reader {
 public:
  map_reader();
  ~map_reader();
  map_reader(map_reader&&) noexcept;
  map_reader& operator=(map_reader&&) noexcept;
  map_reader(const map_reader&) = delete;
  map_reader& operator=(const map_reader&) = delete;

  // The value under `key`, or a missing node. Marks the key known.
  [[nodiscard]] node get(std::string_view key);
  // As get, and records "missing required key 'key'" (at the map) when absent.
  [[nodiscard]] node require(std::string_view key);
  [[nodiscard]] bool has(std::string_view key) const;
  // Marks keys as known without reading them (keys read elsewhere, or reserved).
  void allow(std::initializer_list<std::string_view> keys);
  // Every entry in document order, for maps whose keys are names (property names, metric
  // names); marks them all known. A key that is not a scalar is reported and skipped.
  [[nodiscard]] std::vector<std::pair<std::string, node>> entries();
  // Records an error when more than one of `keys` is present ("'rate' and 'duration' exclude
  // each other"); returns how many are present. Marks all of `keys` known.
  std::size_t at_most_one_of(std::initializer_list<std::string_view> keys);
  // The map itself (or the missing/bad node the reader was made from).
  [[nodiscard]] const node& self() const noexcept;
  // Reports every key not asked for: "unknown key 'evry' (did you mean 'every'?)". Once.
  void finish();

 private:
  friend class node;
  explicit map_reader(node self);
  std::unique_ptr<detail::map_state> s_;
};

// A parsed YAML file. Keeps the tree alive for its nodes.
class document {
 public:
  // Diagnostics go to `diags`, which must outlive the document and every node taken from it.
  // Reads and parses `file`. A file that cannot be read, a syntax error, or more than one YAML
  // document in the file is recorded in `diags` and gives nullopt. `display_name` is the file
  // name diagnostics show (default: `file` as given).
  static std::optional<document> load_file(const std::filesystem::path& file, diagnostics& diags,
                                            std::optional<std::string> display_name = std::nullopt);
  // Parses `text` as if it were the file `display_name`.
  static std::optional<document> load_string(std::string_view text, std::string display_name, diagnostics& diags);

  // Replaces (or adds) the value at `path` — map keys and sequence indices separated by dots,
  // "phases.0.duration", or written as diagnostics write them, "phases[0].duration" — with `yaml_value` parsed as YAML ("30s", "[a, b]", "{rate: 5}"), as
  // `twinfleet run --set` does before loading. Maps on the way are created; an index must
  // exist. Problems go to the diagnostics as "--set PATH: …" and give false. Values set here
  // carry no position, so later messages about them name the key path only.
  bool set(std::string_view path, std::string_view yaml_value, diagnostics& diags);

  // The top-level value, path "". An empty file gives a null root.
  [[nodiscard]] node root() const;
  [[nodiscard]] const std::string& file() const noexcept;

 private:
  struct impl;
  explicit document(std::shared_ptr<impl> i) : i_(std::move(i)) {}
  std::shared_ptr<impl> i_;
};

// "fleet" + 2 → "fleet[2]"; "" + "seed" → "seed"; "fleet[2]" + "profile" → "fleet[2].profile".
[[nodiscard]] std::string child_path(std::string_view parent, std::string_view key);
[[nodiscard]] std::string index_path(std::string_view parent, std::size_t index);

}  // namespace twinfleet::config
