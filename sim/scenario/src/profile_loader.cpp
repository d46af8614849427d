#include <twinfleet/scenario/profile_loader.hpp>

#include "sections.hpp"

#include <twinfleet/config/reader.hpp>
#include <twinfleet/device/desired.hpp>
#include <twinfleet/twin/names.hpp>

#include <cmath>
#include <set>

namespace twinfleet::scenario {

namespace {

using namespace std::chrono_literals;
namespace dv = twinfleet::device;
using config::node;

std::optional<int> read_decimals(config::map_reader& m) {
  const auto v = m.get("decimals").as_int(0, 10);
  return v ? std::optional<int>(static_cast<int>(*v)) : std::nullopt;
}

#define TWINFLEET_GENERATOR_KEYS {"constant", "walk", "sine", "uniform", "cycle", "counter", "mirror"}

// Reads the one generator key of map `m`; nullopt (with a diagnostic) when none or several.
std::optional<dv::generator_spec> read_generator(config::map_reader& m, const node& owner) {
  const auto count = m.at_most_one_of(TWINFLEET_GENERATOR_KEYS);
  if (count == 0) {
    m.allow(TWINFLEET_GENERATOR_KEYS);
    owner.error("needs a generator: one of constant, walk, sine, uniform, cycle, counter, mirror");
    return std::nullopt;
  }
  if (count > 1) return std::nullopt;
  if (const auto n = m.get("constant"); n.present()) {
    auto v = n.as_json();
    if (!v) return std::nullopt;
    return dv::constant_generator{std::move(*v)};
  }
  if (const auto n = m.get("walk"); n.present()) {
    auto g = n.map();
    dv::walk_generator w;
    const auto start = g.require("start").as_double();
    const auto step = g.require("step").as_double(0, 1e12);
    const auto min = g.require("min").as_double();
    const auto max = g.require("max").as_double();
    if (auto t = g.get("toward").as_string()) w.toward = std::move(*t);
    w.decimals = read_decimals(g);
    if (!start || !step || !min || !max) return std::nullopt;
    if (*max < *min) {
      g.get("max").error("must be at least min (" + g.get("min").scalar() + ")");
      return std::nullopt;
    }
    if (*start < *min || *start > *max) {
      g.get("start").error("must lie in [min, max] = [" + g.get("min").scalar() + ", " + g.get("max").scalar() + "]");
      return std::nullopt;
    }
    w.start = *start;
    w.step = *step;
    w.min = *min;
    w.max = *max;
    return w;
  }
  if (const auto n = m.get("sine"); n.present()) {
    auto g = n.map();
    dv::sine_generator s;
    const auto mean = g.require("mean").as_double();
    const auto amplitude = g.require("amplitude").as_double(0, 1e300);
    const auto period = g.require("period").as_duration(1ms);
    if (const auto v = g.get("noise").as_double(0, 1e300)) s.noise = *v;
    if (const auto v = g.get("random_phase").as_bool()) s.random_phase = *v;
    s.decimals = read_decimals(g);
    if (!mean || !amplitude || !period) return std::nullopt;
    s.mean = *mean;
    s.amplitude = *amplitude;
    s.period = *period;
    return s;
  }
  if (const auto n = m.get("uniform"); n.present()) {
    auto g = n.map();
    dv::uniform_generator u;
    const auto min = g.require("min").as_double();
    const auto max = g.require("max").as_double();
    u.decimals = read_decimals(g);
    if (!min || !max) return std::nullopt;
    if (*max < *min) {
      g.get("max").error("must be at least min");
      return std::nullopt;
    }
    u.min = *min;
    u.max = *max;
    return u;
  }
  if (const auto n = m.get("cycle"); n.present()) {
    dv::cycle_generator c;
    node values = n;
    config::map_reader g;
    if (n.is_map()) {
      g = n.map();
      values = g.require("values");
      if (const auto v = g.get("random").as_bool()) c.random = *v;
    }
    if (!values.present()) return std::nullopt;
    if (!values.is_sequence()) {
      values.error("expected a list of values to cycle through, got " + values.describe());
      return std::nullopt;
    }
    for (const auto& item : values.items()) {
      if (auto v = item.as_json()) c.values.push_back(std::move(*v));
    }
    if (c.values.empty()) {
      values.error("needs at least one value");
      return std::nullopt;
    }
    return c;
  }
  if (const auto n = m.get("counter"); n.present()) {
    auto g = n.map();
    dv::counter_generator c;
    if (const auto v = g.get("start").as_int()) c.start = *v;
    if (const auto v = g.get("step").as_int()) c.step = *v;
    if (const auto v = g.get("wrap").as_int()) c.wrap = *v;
    if (c.step == 0 && g.has("step")) g.get("step").error("must not be 0");
    return c;
  }
  const auto n = m.get("mirror");
  auto name = n.as_nonempty_string();
  if (!name) return std::nullopt;
  return dv::mirror_generator{std::move(*name), nullptr};
}

// A field or property reference "reported.x" / "desired.x".
bool is_reference(const node& n) {
  if (!n.is_scalar() || n.is_quoted()) return false;
  const auto s = n.scalar();
  return s.starts_with("reported.") || s.starts_with("desired.");
}

std::optional<dv::property_schema> read_schema(const node& n, const std::string& name, int depth);

std::optional<dv::property_schema> read_schema_map(config::map_reader& m, const node& n, const std::string& name, int depth) {
  dv::property_schema s;
  s.name = name;
  const auto type = m.require("type").as_enum({"boolean", "integer", "number", "string", "object"});
  if (!type) {
    m.allow({"min", "max", "enum", "max_length", "unit", "fields"});
    return std::nullopt;
  }
  s.type = static_cast<dv::value_type>(*type);
  const bool numeric = s.type == dv::value_type::integer || s.type == dv::value_type::number;
  auto only_for = [&](const char* key, bool ok, const char* types) {
    if (m.has(key) && !ok) {
      m.get(key).error(std::string("applies to ") + types + " properties only, not " + dv::to_string(s.type));
      return false;
    }
    return true;
  };
  bool ok = true;
  if (only_for("min", numeric, "integer and number")) s.min = m.get("min").as_double();
  if (only_for("max", numeric, "integer and number")) s.max = m.get("max").as_double();
  if (s.min && s.max && *s.max < *s.min) {
    m.get("max").error("must be at least min");
    ok = false;
  }
  if (only_for("max_length", s.type == dv::value_type::string, "string")) {
    if (const auto v = m.get("max_length").as_int(1, 1 << 20)) s.max_length = static_cast<std::size_t>(*v);
  }
  if (only_for("unit", numeric, "integer and number")) {
    if (const auto u = m.get("unit").as_enum({"ms", "s", "m", "h"})) {
      static constexpr dv::duration units[] = {1ms, 1s, 1min, 1h};
      s.unit = units[*u];
    }
  }
  if (only_for("enum", s.type != dv::value_type::object && s.type != dv::value_type::boolean, "integer, number and string")) {
    const auto e = m.get("enum");
    const auto enum_items = e.items();
    for (const auto& item : enum_items) {
      auto v = item.as_json();
      if (!v) continue;
      dv::property_schema plain = s;
      plain.allowed.clear();
      if (auto why = dv::check_value(plain, *v)) {
        item.error("enum value does not fit the property: " + *why);
        ok = false;
        continue;
      }
      s.allowed.push_back(std::move(*v));
    }
    if (e.is_sequence() && enum_items.empty()) e.error("needs at least one value");
  }
  if (s.type == dv::value_type::object) {
    const auto f = m.require("fields");
    if (depth > 4) {
      f.error("objects nest at most 4 deep");
      return std::nullopt;
    }
    auto fm = f.map();
    for (auto& [field_name, field] : fm.entries()) {
      if (!detail::check_name(field, field_name, "field")) {
        ok = false;
        continue;
      }
      if (auto fs = read_schema(field, field_name, depth + 1)) {
        s.fields.push_back(std::move(*fs));
      } else {
        ok = false;
      }
    }
    if (f.is_map() && s.fields.empty()) f.error("an object property needs at least one field");
  } else {
    only_for("fields", false, "object");
  }
  (void)n;
  if (!ok) return std::nullopt;
  return s;
}

std::optional<dv::property_schema> read_schema(const node& n, const std::string& name, int depth) {
  if (!n.is_map()) {
    n.error("expected a map with a type (boolean, integer, number, string, object), got " + n.describe());
    return std::nullopt;
  }
  auto m = n.map();
  return read_schema_map(m, n, name, depth);
}

std::vector<dv::effect> read_effects(const node& n) {
  std::vector<dv::effect> out;
  if (!n.present()) return out;
  for (const auto& item : n.items()) {
    auto m = item.map();
    if (!item.is_map()) continue;
    const auto count = m.at_most_one_of({"set", "reboot", "blink", "telemetry"});
    if (count == 0) {
      m.allow({"set", "reboot", "blink", "telemetry"});
      item.error("an effect needs one of: set, reboot, blink, telemetry");
      continue;
    }
    if (count > 1) continue;
    if (const auto s = m.get("set"); s.present()) {
      auto sm = s.map();
      for (auto& [prop, value] : sm.entries()) {
        if (auto v = value.as_json()) out.emplace_back(dv::set_effect{prop, std::move(*v)});
      }
    } else if (const auto r = m.get("reboot"); r.present()) {
      dv::reboot_effect e;
      if (r.has_key("after")) {
        auto rm = r.map();
        if (auto d = detail::read_distribution(rm.get("after"))) e.after = *d;
      } else if (auto d = detail::read_distribution(r)) {
        e.after = *d;
      }
      out.emplace_back(e);
    } else if (const auto b = m.get("blink"); b.present()) {
      dv::blink_effect e;
      if (b.is_scalar()) {
        e.property = b.scalar();
      } else {
        auto bm = b.map();
        if (auto p = bm.require("property").as_nonempty_string()) e.property = *p;
        if (const auto c = bm.get("count").as_int(1, 100)) e.count = static_cast<int>(*c);
        if (const auto t = bm.get("on_time").as_duration(1ms, 1min)) e.on_time = *t;
      }
      out.emplace_back(e);
    } else {
      if (const auto t = m.get("telemetry").as_enum({"start", "stop"})) out.emplace_back(dv::telemetry_effect{*t == 0});
    }
  }
  return out;
}

// Where each effect came from, for cross-checks: the effects list node.
struct effects_ref {
  node at;
  const std::vector<dv::effect>* effects;
};

class profile_reader {
 public:
  profile_reader(const node& root, std::string default_name) : root_(root), default_name_(std::move(default_name)) {}

  std::shared_ptr<dv::profile> read() {
    auto p = std::make_shared<dv::profile>();
    p->source = root_.where().file;
    auto top = root_.map();
    if (!root_.is_map()) {
      if (root_.is_null()) root_.error("the profile is empty");
      return nullptr;
    }
    p->name = top.get("name").as_nonempty_string().value_or(default_name_);
    if (top.has("name")) detail::check_name(top.get("name"), p->name, "profile");
    p->description = top.get("description").as_string().value_or("");
    // Desired first: reported generators and telemetry refer to desired properties.
    read_desired(top.get("desired"), *p);
    read_identity(top.get("identity"), *p);
    read_reported(top.get("reported"), *p);
    read_commands(top.get("commands"), *p);
    read_telemetry(top.get("telemetry"), *p);
    p->lifecycle = detail::read_lifecycle(top.get("lifecycle"), {});
    p->quirks = detail::read_quirks(top.get("quirks"), {});
    top.finish();
    cross_check(*p);
    return p;
  }

 private:
  void read_identity(const node& n, dv::profile& p) {
    auto m = n.map();
    std::string error;
    const auto id_node = m.get("id");
    const std::string pattern = id_node.as_nonempty_string().value_or(p.name + "-{index:05}");
    if (auto t = dv::parse_id_pattern(pattern, error)) {
      p.identity.id = std::move(*t);
      // The same profile must run on both clouds: check the pattern against both rule sets
      // (index 0 and a large index cover the digits' widths).
      for (std::uint64_t index : {std::uint64_t{0}, std::uint64_t{999999}}) {
        dv::template_context ctx;
        ctx.index = index;
        ctx.profile = p.name;
        const auto id = p.identity.id.expand(ctx);
        if (!twin::is_valid_device_id(id) || !twin::is_valid_thing_name(id)) {
          (id_node.present() ? id_node : n).error(
              "the id pattern gives '" + id + "', which is not a valid Azure device id and AWS thing name "
              "(1 to 128 of letters, digits, ':', '_', '-')");
          break;
        }
      }
    } else {
      id_node.error(error);
    }
    const auto azure = m.get("azure");
    auto am = azure.map();
    if (const auto tags = am.get("tags"); tags.present()) {
      if (!tags.is_map()) {
        tags.error("expected a map of tags, got " + tags.describe());
      } else if (auto v = tags.as_json()) {
        if (!dv::check_json_template(*v, dv::label_placeholders, error)) {
          tags.error(error);
        } else {
          p.identity.azure.tags = v->as_object();
        }
      }
    }
    if (auto model = am.get("model_id").as_string()) {
      // dtmi:<segment>(:<segment>)*;<version> (the DTDL v2 identifier form, simplified).
      const auto semi = model->rfind(';');
      if (!model->starts_with("dtmi:") || semi == std::string::npos || semi + 1 == model->size() ||
          model->find_first_not_of("0123456789", semi + 1) != std::string::npos) {
        am.get("model_id").error("expected a DTMI such as dtmi:com:example:Thermostat;1, got '" + *model + "'");
      } else {
        p.identity.azure.model_id = *model;
      }
    }
    const auto aws = m.get("aws");
    auto wm = aws.map();
    if (auto t = wm.get("thing_type").as_string()) {
      if (!twin::is_valid_thing_name(*t)) {
        wm.get("thing_type").error("'" + *t + "' is not a valid thing type name (1 to 128 of letters, digits, ':', '_', '-')");
      } else {
        p.identity.aws.thing_type = *t;
      }
    }
    auto attrs = wm.get("attributes").map();
    for (auto& [key, value] : attrs.entries()) {
      const bool name_ok = !key.empty() && key.size() <= 128 && key.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,@/:#-") == std::string::npos;
      if (!name_ok) {
        value.error("'" + key + "' is not a valid AWS attribute name (1 to 128 of letters, digits and _.,@/:#-)");
        continue;
      }
      if (auto text = value.as_string()) {
        if (auto t = dv::string_template::parse(*text, dv::label_placeholders, error)) {
          p.identity.aws.attributes.emplace_back(key, std::move(*t));
        } else {
          value.error(error);
        }
      }
    }
    const auto groups = wm.get("groups");
    for (const auto& g : groups.present() && groups.is_scalar() ? std::vector<node>{groups} : groups.items()) {
      auto text = g.as_nonempty_string();
      if (!text) continue;
      std::vector<std::string> path;
      std::size_t start = 0;
      bool ok = true;
      while (true) {
        const auto slash = text->find('/', start);
        auto segment = text->substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        if (!twin::is_valid_thing_name(segment)) {
          g.error("'" + segment + "' is not a valid thing group name (1 to 128 of letters, digits, ':', '_', '-'; "
                  "'/' separates a group from its parent)");
          ok = false;
          break;
        }
        path.push_back(std::move(segment));
        if (slash == std::string::npos) break;
        start = slash + 1;
      }
      if (ok) p.identity.aws.groups.push_back(std::move(path));
    }
  }

  void read_desired(const node& n, dv::profile& p) {
    auto m = n.map();
    for (auto& [name, value] : m.entries()) {
      if (!detail::check_name(value, name, "property")) continue;
      if (!value.is_map()) {
        value.error("expected a map with a type (boolean, integer, number, string, object), got " + value.describe());
        continue;
      }
      auto pm = value.map();
      dv::writable_property w;
      w.name = name;
      auto schema = read_schema_map(pm, value, name, 0);
      if (const auto init = pm.get("initial"); init.present()) {
        if (auto v = init.as_json()) {
          if (schema) {
            if (auto why = dv::check_value(*schema, *v)) {
              init.error("the initial value does not fit the property: " + *why);
            }
          }
          w.initial = std::move(*v);
        }
      }
      if (auto d = detail::read_distribution(pm.get("apply_after"))) w.apply_after = *d;
      if (const auto a = pm.get("ack").as_bool()) w.ack = *a;
      pm.allow({"description"});
      (void)pm.get("description").as_string();
      if (!schema) continue;
      w.schema = std::move(*schema);
      p.desired.push_back(std::move(w));
    }
  }

  void read_reported(const node& n, dv::profile& p) {
    auto m = n.map();
    for (auto& [name, value] : m.entries()) {
      if (!detail::check_name(value, name, "property")) continue;
      if (p.find_desired(name)) {
        value.error("'" + name + "' is also a desired property: a writable property reports itself through its "
                    "acknowledgement, so list it under desired only");
        continue;
      }
      if (!value.is_map()) {
        value.error("expected a map with a generator (constant, walk, sine, uniform, cycle, counter, mirror), got " + value.describe());
        continue;
      }
      auto pm = value.map();
      auto gen = read_generator(pm, value);
      dv::reported_property r;
      r.name = name;
      const auto every = detail::read_distribution(pm.get("every"));
      const auto on = pm.get("on").as_enum({"interval", "connect", "change"});
      pm.allow({"description"});
      if (!gen) continue;
      r.generator = std::move(*gen);
      if (on) {
        r.trigger = *on == 0 ? dv::report_trigger::interval : *on == 1 ? dv::report_trigger::on_connect : dv::report_trigger::on_change;
      } else if (every) {
        r.trigger = dv::report_trigger::interval;
      } else if (std::holds_alternative<dv::constant_generator>(r.generator)) {
        r.trigger = dv::report_trigger::on_connect;
      } else if (std::holds_alternative<dv::mirror_generator>(r.generator)) {
        r.trigger = dv::report_trigger::on_change;
      }
      if (every) {
        if (r.trigger != dv::report_trigger::interval) pm.get("every").error("'every' applies only with on: interval");
        if (every->mean().count() == 0) pm.get("every").error("the interval must be longer than 0");
        r.every = *every;
      }
      generator_nodes_.emplace_back(name, value);
      p.reported.push_back(std::move(r));
    }
  }

  void read_commands(const node& n, dv::profile& p) {
    auto m = n.map();
    for (auto& [name, value] : m.entries()) {
      if (!twin::is_valid_method_name(name)) {
        value.error("'" + name + "' is not a valid method name (printable ASCII without spaces or $()<>@,;:\\\"/[]?={})");
        continue;
      }
      dv::command c;
      c.name = name;
      auto cm = value.map();
      if (auto d = detail::read_distribution(cm.get("latency"))) c.latency = *d;
      if (const auto s = cm.get("status").as_int(100, 599)) c.status = static_cast<int>(*s);
      if (const auto r = cm.get("response"); r.present()) {
        if (auto v = r.as_json()) {
          std::string error;
          if (!dv::check_json_template(*v, dv::response_placeholders, error)) {
            r.error(error);
          } else {
            c.response = std::move(*v);
          }
        }
      }
      const auto effects = cm.get("effects");
      c.effects = read_effects(effects);
      cm.allow({"description"});
      effect_nodes_.push_back(effects.present() ? effects : value);
      p.commands.push_back(std::move(c));
    }
  }

  void read_telemetry(const node& n, dv::profile& p) {
    auto m = n.map();
    for (auto& [name, value] : m.entries()) {
      if (!detail::check_name(value, name, "telemetry message")) continue;
      auto tm = value.map();
      if (!value.is_map()) continue;
      dv::telemetry_message t;
      t.name = name;
      const auto every = tm.get("every");
      if (is_reference(every)) {
        const auto ref = every.scalar();
        if (!ref.starts_with("desired.")) {
          every.error("a telemetry interval can come from a desired property (desired.name), not '" + ref + "'");
        } else {
          t.every_from = ref.substr(8);
          every_nodes_.emplace_back(p.telemetry.size(), every);
        }
      } else if (auto d = detail::read_distribution(every)) {
        if (d->mean().count() == 0) every.error("the interval must be longer than 0");
        t.every = *d;
      }
      const auto fields = tm.require("fields");
      auto fm = fields.map();
      for (auto& [field_name, field] : fm.entries()) {
        dv::telemetry_field f;
        f.name = field_name;
        if (is_reference(field)) {
          const auto ref = field.scalar();
          f.from = ref.starts_with("reported.") ? dv::telemetry_field::source::reported : dv::telemetry_field::source::desired;
          f.property = ref.substr(ref.find('.') + 1);
          field_refs_.emplace_back(f.from, f.property, field);
        } else if (field.is_map()) {
          auto gm = field.map();
          auto gen = read_generator(gm, field);
          if (!gen) continue;
          f.generator = std::move(*gen);
          generator_nodes_.emplace_back(field_name, field);
        } else if (auto v = field.as_json()) {
          f.generator = dv::constant_generator{std::move(*v)};
        } else {
          continue;
        }
        t.fields.push_back(std::move(f));
      }
      if (fields.is_map() && t.fields.empty() && fm.entries().empty()) fields.error("a telemetry message needs at least one field");
      if (auto ct = tm.get("content_type").as_nonempty_string()) t.content_type = *ct;
      if (auto ce = tm.get("content_encoding").as_nonempty_string()) t.content_encoding = *ce;
      std::string error;
      auto props = tm.get("properties").map();
      for (auto& [key, value2] : props.entries()) {
        if (!twin::is_valid_property_name(key)) {
          value2.error("'" + key + "' is not a valid message property name (printable ASCII without spaces or $()<>@,;:\\\"/[]?={})");
          continue;
        }
        if (auto text = value2.as_string()) {
          if (auto tt = dv::string_template::parse(*text, dv::label_placeholders | dv::placeholder::message, error)) {
            t.properties.emplace_back(key, std::move(*tt));
          } else {
            value2.error(error);
          }
        }
      }
      const std::string topic = tm.get("aws_topic").as_nonempty_string().value_or("twinfleet/{profile}/{id}/{message}");
      if (auto tt = dv::string_template::parse(topic, dv::topic_placeholders, error)) {
        if (topic.starts_with("$") || topic.find_first_of("+#") != std::string::npos) {
          tm.get("aws_topic").error("a telemetry topic must not start with '$' (reserved) or contain the wildcards + and #");
        }
        t.aws_topic = std::move(*tt);
      } else {
        tm.get("aws_topic").error(error);
      }
      const auto on_send = tm.get("on_send");
      t.on_send = read_effects(on_send);
      effect_nodes_.push_back(on_send.present() ? on_send : value);
      if (const auto e = tm.get("enabled").as_bool()) t.enabled = *e;
      p.telemetry.push_back(std::move(t));
    }
  }

  void check_effects(const dv::profile& p, const node& at, const std::vector<dv::effect>& effects) {
    for (const auto& e : effects) {
      if (const auto* s = std::get_if<dv::set_effect>(&e)) {
        if (const auto* d = p.find_desired(s->property)) {
          if (auto why = dv::check_value(d->schema, s->value)) at.error("set " + s->property + ": " + *why);
        } else if (!p.find_reported(s->property)) {
          at.error("set: the profile has no property '" + s->property + "'");
        }
      } else if (const auto* b = std::get_if<dv::blink_effect>(&e)) {
        const auto* d = p.find_desired(b->property);
        if (!p.find_reported(b->property) && !(d && d->schema.type == dv::value_type::boolean)) {
          at.error("blink: the profile has no boolean property '" + b->property + "' (add it under reported, e.g. { constant: false })");
        }
      }
    }
  }

  void cross_check(dv::profile& p) {
    auto desired_names = [&] {
      std::string s;
      for (const auto& d : p.desired) s += (s.empty() ? "" : ", ") + d.name;
      return s.empty() ? std::string("none") : s;
    };
    // Generators that read desired properties: the property must exist (mirror's fallback is
    // its initial value).
    auto fix_generator = [&](dv::generator_spec& g, const node& at) {
      if (const auto* dep = dv::desired_dependency(g)) {
        const auto* d = p.find_desired(*dep);
        if (!d) {
          at.error("refers to desired property '" + *dep + "', which the profile does not have (desired: " + desired_names() + ")");
          return;
        }
        if (auto* mirror = std::get_if<dv::mirror_generator>(&g)) mirror->fallback = d->initial;
        if (std::holds_alternative<dv::walk_generator>(g) && d->schema.type != dv::value_type::integer &&
            d->schema.type != dv::value_type::number) {
          at.error("walk.toward needs a numeric desired property; '" + *dep + "' is " + dv::to_string(d->schema.type));
        }
      }
    };
    auto node_for = [&](const std::string& name) -> node {
      for (const auto& [n, at] : generator_nodes_) {
        if (n == name) return at;
      }
      return root_;
    };
    for (auto& r : p.reported) fix_generator(r.generator, node_for(r.name));
    for (auto& t : p.telemetry) {
      for (auto& f : t.fields) {
        if (f.from == dv::telemetry_field::source::generator) fix_generator(f.generator, node_for(f.name));
      }
    }
    for (const auto& [from, property, at] : field_refs_) {
      const bool found = from == dv::telemetry_field::source::reported ? p.find_reported(property) != nullptr : p.find_desired(property) != nullptr;
      if (!found) {
        at.error(std::string("refers to ") + (from == dv::telemetry_field::source::reported ? "reported" : "desired") +
                 " property '" + property + "', which the profile does not have");
      }
    }
    for (const auto& [index, at] : every_nodes_) {
      auto& t = p.telemetry[index];
      const auto* d = p.find_desired(*t.every_from);
      if (!d) {
        at.error("refers to desired property '" + *t.every_from + "', which the profile does not have (desired: " + desired_names() + ")");
      } else if (!d->schema.unit) {
        at.error("desired property '" + d->name + "' has no unit (add unit: ms, s, m or h) so it cannot give an interval");
      } else if (d->initial.is_null()) {
        at.error("desired property '" + d->name + "' needs an initial value: the interval before any desired write");
      } else {
        const double v = d->initial.is_double() ? d->initial.as_double() : static_cast<double>(d->initial.to_number<double>());
        t.every = dv::duration_distribution::constant(dv::duration(static_cast<dv::duration::rep>(std::llround(v * static_cast<double>(d->schema.unit->count())))));
        if (t.every.a.count() <= 0) at.error("the interval from '" + d->name + "' must be longer than 0");
      }
    }
    std::size_t e = 0;
    for (const auto& c : p.commands) check_effects(p, effect_nodes_.at(e++), c.effects);
    for (const auto& t : p.telemetry) check_effects(p, effect_nodes_.at(e++), t.on_send);
  }

  node root_;
  std::string default_name_;
  std::vector<std::pair<std::string, node>> generator_nodes_;
  std::vector<std::tuple<dv::telemetry_field::source, std::string, node>> field_refs_;
  std::vector<std::pair<std::size_t, node>> every_nodes_;
  std::vector<node> effect_nodes_;
};

std::shared_ptr<const dv::profile> finish(const std::optional<config::document>& doc, const std::string& default_name,
                                          config::diagnostics& diags) {
  if (!doc) return nullptr;
  const auto before = diags.size();
  auto p = profile_reader(doc->root(), default_name).read();
  if (diags.size() != before) return nullptr;
  return p;
}

std::string stem_of(const std::string& name) {
  auto stem = std::filesystem::path(name).stem().string();
  return stem.empty() ? std::string("device") : stem;
}

}  // namespace

std::shared_ptr<const device::profile> load_profile(const std::filesystem::path& file, config::diagnostics& diags,
                                                    std::optional<std::string> display_name) {
  const auto doc = config::document::load_file(file, diags, display_name);
  return finish(doc, stem_of(file.string()), diags);
}

std::shared_ptr<const device::profile> load_profile_string(std::string_view text, const std::string& display_name,
                                                           config::diagnostics& diags) {
  const auto doc = config::document::load_string(text, display_name, diags);
  return finish(doc, stem_of(display_name), diags);
}

}  // namespace twinfleet::scenario
