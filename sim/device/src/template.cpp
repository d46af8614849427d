#include <twinfleet/device/template.hpp>
#include <twinfleet/device/random.hpp>

#include <boost/json/serialize.hpp>

#include <charconv>

namespace twinfleet::device {

namespace {

const char* placeholder_list(unsigned allowed) {
  // The most common sets get a fixed text, so messages stay short and exact.
  if (allowed == id_placeholders) return "{index}, {index:05}, {profile}";
  if (allowed == label_placeholders) return "{index}, {index:05}, {id}, {profile}, {choice:a,b}";
  if (allowed == topic_placeholders) return "{index}, {id}, {profile}, {message}";
  if (allowed == response_placeholders) return "{index}, {id}, {profile}, {request}, {request.key}";
  return "{index}, {id}, {profile}";
}

}  // namespace

std::optional<string_template> string_template::parse(std::string_view text, unsigned allowed, std::string& error) {
  string_template t;
  t.text_ = std::string(text);
  std::string literal;
  auto flush = [&] {
    if (!literal.empty()) {
      t.parts_.push_back(part{part_kind::literal, 0, std::move(literal), {}});
      literal.clear();
    }
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '}' ) {
      if (i + 1 < text.size() && text[i + 1] == '}') {
        literal += '}';
        ++i;
        continue;
      }
      error = "unmatched '}' at offset " + std::to_string(i) + " (write }} for a literal brace)";
      return std::nullopt;
    }
    if (c != '{') {
      literal += c;
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '{') {
      literal += '{';
      ++i;
      continue;
    }
    const auto close = text.find('}', i);
    if (close == std::string_view::npos) {
      error = "unclosed '{' at offset " + std::to_string(i);
      return std::nullopt;
    }
    const std::string_view inner = text.substr(i + 1, close - i - 1);
    const std::string_view name = inner.substr(0, inner.find(':'));
    const std::string_view arg = inner.find(':') == std::string_view::npos ? std::string_view{} : inner.substr(inner.find(':') + 1);
    part p;
    placeholder needed{};
    if (name == "index") {
      p.kind = part_kind::index;
      needed = placeholder::index;
      if (inner.find(':') != std::string_view::npos) {
        int width = 0;
        const auto r = std::from_chars(arg.data(), arg.data() + arg.size(), width);
        if (arg.empty() || r.ec != std::errc{} || r.ptr != arg.data() + arg.size() || width < 1 || width > 20) {
          error = "bad index format {" + std::string(inner) + "}: write {index} or {index:05} (a width of 1 to 20 digits)";
          return std::nullopt;
        }
        p.width = width;
      }
    } else if (name == "id" && arg.empty()) {
      p.kind = part_kind::id;
      needed = placeholder::id;
    } else if (name == "profile" && arg.empty()) {
      p.kind = part_kind::profile;
      needed = placeholder::profile;
    } else if (name == "message" && arg.empty()) {
      p.kind = part_kind::message;
      needed = placeholder::message;
    } else if (name == "choice") {
      p.kind = part_kind::choice;
      needed = placeholder::choice;
      std::string_view rest = arg;
      while (true) {
        const auto comma = rest.find(',');
        p.choices.emplace_back(rest.substr(0, comma));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
      for (const auto& word : p.choices) {
        if (word.empty()) {
          error = "{" + std::string(inner) + "}: every choice needs a word ({choice:a,b,c})";
          return std::nullopt;
        }
      }
    } else if (inner == "request" || inner.starts_with("request.")) {
      p.kind = part_kind::request;
      needed = placeholder::request;
      p.text = inner == "request" ? std::string{} : std::string(inner.substr(8));
    } else {
      error = "unknown placeholder {" + std::string(inner) + "}; this text may use " + placeholder_list(allowed);
      return std::nullopt;
    }
    if ((allowed & static_cast<unsigned>(needed)) == 0) {
      error = "placeholder {" + std::string(inner) + "} cannot be used here; this text may use " + placeholder_list(allowed);
      return std::nullopt;
    }
    flush();
    t.parts_.push_back(std::move(p));
    i = close;
  }
  flush();
  return t;
}

bool string_template::uses(placeholder p) const noexcept {
  for (const auto& pt : parts_) {
    switch (pt.kind) {
      case part_kind::index:
        if (p == placeholder::index) return true;
        break;
      case part_kind::id:
        if (p == placeholder::id) return true;
        break;
      case part_kind::profile:
        if (p == placeholder::profile) return true;
        break;
      case part_kind::choice:
        if (p == placeholder::choice) return true;
        break;
      case part_kind::message:
        if (p == placeholder::message) return true;
        break;
      case part_kind::request:
        if (p == placeholder::request) return true;
        break;
      case part_kind::literal:
        break;
    }
  }
  return false;
}

void string_template::expand_to(std::string& out, const template_context& ctx) const {
  for (std::size_t n = 0; n < parts_.size(); ++n) {
    const part& p = parts_[n];
    switch (p.kind) {
      case part_kind::literal:
        out += p.text;
        break;
      case part_kind::index: {
        char digits[24];
        const auto r = std::to_chars(digits, digits + sizeof digits, ctx.index);
        const auto len = static_cast<int>(r.ptr - digits);
        if (len < p.width) out.append(static_cast<std::size_t>(p.width - len), '0');
        out.append(digits, r.ptr);
        break;
      }
      case part_kind::id:
        out += ctx.id;
        break;
      case part_kind::profile:
        out += ctx.profile;
        break;
      case part_kind::message:
        out += ctx.message;
        break;
      case part_kind::choice: {
        // Keyed by the device seed and the part's position: stable per device, independent of
        // how often or in which order templates are expanded.
        const auto pick = mix_seed(ctx.seed, n) % p.choices.size();
        out += p.choices[pick];
        break;
      }
      case part_kind::request: {
        const boost::json::value* v = ctx.request;
        if (v && !p.text.empty()) v = v->is_object() ? v->as_object().if_contains(p.text) : nullptr;
        if (!v) break;
        if (v->is_string()) {
          out += v->as_string();
        } else {
          out += boost::json::serialize(*v);
        }
        break;
      }
    }
  }
}

std::string string_template::expand(const template_context& ctx) const {
  std::string out;
  expand_to(out, ctx);
  return out;
}

std::optional<string_template> parse_id_pattern(std::string_view text, std::string& error) {
  auto t = string_template::parse(text, id_placeholders, error);
  if (!t) return t;
  if (!t->uses(placeholder::index)) {
    error = "an id pattern needs {index} (for example \"" + std::string(text) + "-{index:05}\"), or every device would get the same id";
    return std::nullopt;
  }
  return t;
}

namespace {

bool check_json(const boost::json::value& v, unsigned allowed, const std::string& path, std::string& error) {
  if (v.is_string()) {
    std::string e;
    if (!string_template::parse(v.as_string(), allowed, e)) {
      error = (path.empty() ? "" : path + ": ") + e;
      return false;
    }
    return true;
  }
  if (v.is_object()) {
    for (const auto& m : v.as_object()) {
      if (!check_json(m.value(), allowed, path.empty() ? std::string(m.key()) : path + "." + std::string(m.key()), error)) return false;
    }
  }
  if (v.is_array()) {
    std::size_t i = 0;
    for (const auto& e : v.as_array()) {
      if (!check_json(e, allowed, path + "[" + std::to_string(i++) + "]", error)) return false;
    }
  }
  return true;
}

}  // namespace

bool check_json_template(const boost::json::value& tmpl, unsigned allowed, std::string& error) {
  return check_json(tmpl, allowed, "", error);
}

boost::json::value render_json_template(const boost::json::value& tmpl, const template_context& ctx) {
  if (tmpl.is_string()) {
    const std::string_view s = tmpl.as_string();
    if (ctx.request && s.starts_with("{request") && s.ends_with("}") && s.find('}') == s.size() - 1) {
      const std::string_view inner = s.substr(1, s.size() - 2);
      if (inner == "request") return *ctx.request;
      if (inner.starts_with("request.") && ctx.request->is_object()) {
        if (const auto* m = ctx.request->as_object().if_contains(inner.substr(8))) return *m;
        return nullptr;
      }
    }
    std::string error;
    const auto t = string_template::parse(s, response_placeholders | placeholder::choice | placeholder::message, error);
    return t ? boost::json::value(t->expand(ctx)) : tmpl;
  }
  if (tmpl.is_object()) {
    boost::json::object o;
    for (const auto& m : tmpl.as_object()) o[m.key()] = render_json_template(m.value(), ctx);
    return o;
  }
  if (tmpl.is_array()) {
    boost::json::array a;
    for (const auto& e : tmpl.as_array()) a.push_back(render_json_template(e, ctx));
    return a;
  }
  return tmpl;
}

}  // namespace twinfleet::device
