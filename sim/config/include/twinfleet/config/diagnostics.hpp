// Load-time error reports: where (file, line, column, key path) and what.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::config {

// A place in a file. Lines and columns count from 1; 0 means unknown.
struct location {
  std::string file;
  int line = 0;
  int column = 0;
};

// One problem found while loading.
struct diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem is about the whole file
  int column = 0;  // 1-based
  std::string path;  // "fleet[2].profile"; "" for the top level or the whole file
  std::string message;

  // "file:line:column: path: message"; without ":line:column" when the line is unknown and
  // without "path: " when the path is empty.
  [[nodiscard]] std::string to_string() const;
  friend bool operator==(const diagnostic&, const diagnostic&) = default;
};

// Every problem found, in the order found. Not thread-safe.
class diagnostics {
 public:
  void add(diagnostic d);
  void add(const location& at, std::string path, std::string message);
  // Appends every diagnostic of `other`.
  void append(const diagnostics& other);

  [[nodiscard]] const std::vector<diagnostic>& items() const noexcept { return items_; }
  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  // Orders by file, line, column (stable otherwise): the order an editor lists them in.
  void sort();
  // Every diagnostic's to_string(), one per line.
  [[nodiscard]] std::string to_string() const;

 private:
  std::vector<diagnostic> items_;
};

// Edit distance (optimal string alignment: a swap of neighbours counts as one edit), for "did you mean" suggestions.
[[nodiscard]] std::size_t edit_distance(std::string_view a, std::string_view b);
// The candidate closest to `word` when it is close enough to be a plausible typo (distance at
// most max(1, size/3), or one is a case-insensitive match of the other); "" otherwise.
[[nodiscard]] std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace twinfleet::config
