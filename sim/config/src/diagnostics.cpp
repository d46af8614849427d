#include <twinfleet/config/diagnostics.hpp>

#include <algorithm>
#include <cctype>
#include <numeric>
#include <tuple>

namespace twinfleet::config {

std::string diagnostic::to_string() const {
  std::string s = file;
  if (line > 0) {
    s += ':' + std::to_string(line) + ':' + std::to_string(column > 0 ? column : 1);
  }
  s += ": ";
  if (!path.empty()) s += path + ": ";
  s += message;
  return s;
}

void diagnostics::add(diagnostic d) { items_.push_back(std::move(d)); }

void diagnostics::add(const location& at, std::string path, std::string message) {
  items_.push_back(diagnostic{at.file, at.line, at.column, std::move(path), std::move(message)});
}

void diagnostics::append(const diagnostics& other) {
  items_.insert(items_.end(), other.items_.begin(), other.items_.end());
}

void diagnostics::sort() {
  std::stable_sort(items_.begin(), items_.end(), [](const diagnostic& a, const diagnostic& b) {
    return std::tie(a.file, a.line, a.column) < std::tie(b.file, b.line, b.column);
  });
}

std::string diagnostics::to_string() const {
  std::string s;
  for (const auto& d : items_) s += d.to_string() + '\n';
  return s;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), std::size_t{0});
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
      diagonal = above;
    }
  }
  return row[b.size()];
}

namespace {
std::string lowered(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = std::string::npos;
  const std::string word_lower = lowered(word);
  for (const auto& c : candidates) {
    // Case and '-' versus '_' slips are the commonest typos in keys: count them as one edit.
    std::string cl = lowered(c);
    std::string wl = word_lower;
    std::replace(cl.begin(), cl.end(), '-', '_');
    std::replace(wl.begin(), wl.end(), '-', '_');
    const std::size_t d = cl == wl ? 0 : edit_distance(wl, cl);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  const std::size_t limit = std::max<std::size_t>(1, word.size() / 3);
  return best_distance <= limit ? best : std::string{};
}

}  // namespace twinfleet::config
