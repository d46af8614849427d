// summary.json, the one result file of a run (docs/REPORTS.md describes it field by field):
// reading it back with every field's type checked, and writing it readably.
#pragma once

#include <twinfleet/twin/error.hpp>

#include <boost/json/object.hpp>

#include <filesystem>
#include <string_view>

namespace twinfleet::reporters {

// The summary.json schema this code reads and writes.
inline constexpr int summary_schema = 1;

// Error codes of this module, chosen to be the exit codes `twinfleet report` maps them to:
// bad input (a missing or unreadable file, not JSON, the wrong schema) and failure to write.
namespace report_code {
inline constexpr int io_failure = 1;
inline constexpr int bad_input = 2;
}  // namespace report_code

// Checks that `summary` has the shape docs/REPORTS.md documents: "scenario" (string),
// "duration_s" (number) and "operations" (object of objects with a numeric "count") are
// required; every other known field is optional but must have its documented type when
// present; "schema", when present, must be 1. Unknown fields are allowed (later schema
// additions). The error (report_code::bad_input) names `source` and the field path:
// "a/summary.json: operations.connect.count: expected a number, got a string".
[[nodiscard]] twin::result<void> check_summary(const boost::json::object& summary, std::string_view source);

// Reads `path` as one JSON object and checks it as above. Errors (report_code::bad_input)
// name the file: it is missing, unreadable, not JSON (with the parser's reason), not an
// object, or a field has the wrong type.
[[nodiscard]] twin::result<boost::json::object> load_summary(const std::filesystem::path& path);

// JSON indented two spaces per level, one field per line; arrays of plain values on one line.
[[nodiscard]] std::string pretty_json(const boost::json::value& v);

// Writes `text` to `path` through a temporary file and a rename, so a reader never sees half a
// report. Error report_code::io_failure names the path and the system's reason.
[[nodiscard]] twin::result<void> write_text_file(const std::filesystem::path& path, std::string_view text);

}  // namespace twinfleet::reporters
