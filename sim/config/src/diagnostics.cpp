#include <twinfleet/config/diagnostics.hpp>

#include <algorithm>
#include <cctype>
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
  // Optimal string alignment: insertions, deletions, substitutions and transpositions of
  // neighbours ("prot" → "port") each cost 1.
  const std::size_t w = b.size() + 1;
  std::vector<std::size_t> d((a.size() + 1) * w);
  for (std::size_t i = 0; i <= a.size(); ++i) d[i * w] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      std::size_t v = std::min({d[(i - 1) * w + j] + 1, d[i * w + j - 1] + 1, d[(i - 1) * w + j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) v = std::min(v, d[(i - 2) * w + j - 2] + 1);
      d[i * w + j] = v;
    }
  }
  return d[a.size() * w + b.size()];
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
