#include <twinfleet/scenario/scenario_loader.hpp>
#include <twinfleet/scenario/profile_loader.hpp>

#include "sections.hpp"

#include <twinfleet/config/reader.hpp>
#include <twinfleet/config/units.hpp>
#include <twinfleet/twin/names.hpp>

#include <cstdlib>
#include <map>
#include <unordered_map>
#include <unordered_set>

namespace twinfleet::scenario {

namespace fs = std::filesystem;
using config::node;
using namespace std::chrono_literals;

const char* to_string(dialect d) noexcept { return d == dialect::azure ? "azure" : "aws"; }

const char* target_name(const target_spec& t) noexcept {
  static constexpr const char* names[] = {"local", "hub", "azure", "aws"};
  return names[t.index()];
}

std::optional<std::string> resolve_secret(const std::string& value) {
  if (!value.starts_with("env:")) return value;
  const char* v = std::getenv(value.c_str() + 4);
  if (!v) return std::nullopt;
  return std::string(v);
}

std::uint64_t scenario::device_count() const noexcept {
  std::uint64_t n = 0;
  for (const auto& e : fleet) n += e.count;
  return n;
}

duration scenario::total_duration() const noexcept {
  duration d{0};
  for (const auto& p : phases) d += p.length;
  return d;
}

std::vector<fs::path> default_profile_dirs(const fs::path& scenario_file) {
  std::vector<fs::path> dirs;
  const fs::path dir = scenario_file.parent_path();
  dirs.push_back((dir / ".." / "device-profiles").lexically_normal());
  dirs.push_back((dir / "device-profiles").lexically_normal());
  if (const char* env = std::getenv("TWINFLEET_PROFILES")) {
    std::string_view rest = env;
    while (!rest.empty()) {
      const auto colon = rest.find(':');
      if (colon != 0) dirs.emplace_back(std::string(rest.substr(0, colon)));
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  dirs.emplace_back("device-profiles");
  dirs.emplace_back("/usr/local/share/twinfleet/device-profiles");
  dirs.emplace_back("/usr/share/twinfleet/device-profiles");
  return dirs;
}

namespace {

// A secret written literally or as env:NAME.
bool check_secret_syntax(const node& at, const std::string& value) {
  if (!value.starts_with("env:")) return true;
  const std::string name = value.substr(4);
  const bool ok = !name.empty() && (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
                  name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos;
  if (!ok) at.error("'" + value + "' is not a valid environment reference: write env:NAME with NAME of letters, digits and '_'");
  return ok;
}

class scenario_reader {
 public:
  scenario_reader(const node& root, fs::path file, config::diagnostics& diags, const load_options& options)
      : root_(root), file_(std::move(file)), diags_(diags), dirs_(options.profile_dirs) {
    if (dirs_.empty()) dirs_ = default_profile_dirs(file_);
  }

  std::optional<scenario> read() {
    scenario s;
    s.source = file_;
    if (!root_.is_map()) {
      root_.error(root_.is_null() ? std::string("the scenario is empty") : "expected a map, got " + root_.describe());
      return std::nullopt;
    }
    auto top = root_.map();
    s.name = top.get("name").as_nonempty_string().value_or(file_.stem().string());
    s.description = top.get("description").as_string().value_or("");
    if (const auto seed = top.get("seed").as_uint64()) s.seed = *seed;
    read_target(top.get("target"), s);
    read_fleet(top.require("fleet"), s);
    read_ramp(top.get("ramp"), s);
    read_phases(top.require("phases"), s);
    read_faults(top.get("faults"), s);
    read_thresholds(top.get("thresholds"), s);
    read_aws_observer(top.get("aws_observer"), s);
    top.finish();
    return s;
  }

 private:
  transport read_transport(config::map_reader& m) {
    const auto t = m.get("transport").as_enum({"tls", "tcp"});
    return t && *t == 1 ? transport::tcp : transport::tls;
  }

  fs::path relative_to_file(const std::string& p) const {
    const fs::path path(p);
    return path.is_absolute() ? path : (file_.parent_path() / path).lexically_normal();
  }

  // "host:port" of a target's endpoint override; "" when absent or wrong (reported).
  std::string read_host_port(config::map_reader& m, const char* key) {
    const auto at = m.get(key);
    const auto text = at.as_nonempty_string();
    if (!text) return {};
    const auto colon = text->rfind(':');
    const std::string port = colon == std::string::npos ? std::string() : text->substr(colon + 1);
    const bool ok = colon != std::string::npos && colon > 0 && !port.empty() && port.size() <= 5 &&
                    port.find_first_not_of("0123456789") == std::string::npos && std::stoul(port) >= 1 &&
                    std::stoul(port) <= 65535;
    if (!ok) {
      at.error("expected host:port, as in 127.0.0.1:8883");
      return {};
    }
    return *text;
  }

  void read_target(const node& n, scenario& s) {
    if (!n.present()) return;
    static const std::vector<std::string> kinds = {"local", "hub", "azure", "aws"};
    if (n.is_scalar()) {
      const auto k = n.as_enum(kinds);
      if (!k) return;
      if (*k == 0) s.target = local_target{};
      if (*k == 1) s.target = hub_target{relative_to_file("hub.json"), transport::tls};
      if (*k >= 2) {
        n.error(std::string("target ") + kinds[*k] + " needs settings: write target: { type: " + kinds[*k] +
                (*k == 2 ? ", connection_string: env:IOTHUB_CONNECTION_STRING }" : ", endpoint: …, region: …, ca: …, certificate: …, key: … }"));
      }
      return;
    }
    auto m = n.map();
    if (!n.is_map()) return;
    const auto type = m.require("type").as_enum(kinds);
    if (!type) {
      m.allow({"transport", "hub_json", "connection_string", "group_key", "create_devices", "registry_rate", "endpoint",
               "region", "ca", "certificate", "key", "certificate_dir", "access_key_id", "secret_access_key", "session_token",
               "device_endpoint", "rest_endpoint"});
      return;
    }
    switch (*type) {
      case 0:
        s.target = local_target{read_transport(m)};
        return;
      case 1: {
        hub_target h;
        h.via = read_transport(m);
        h.hub_json = relative_to_file(m.get("hub_json").as_nonempty_string().value_or("hub.json"));
        s.target = h;
        return;
      }
      case 2: {
        azure_target a;
        const auto cs = m.require("connection_string");
        if (auto text = cs.as_nonempty_string()) {
          if (check_secret_syntax(cs, *text) && !text->starts_with("env:")) {
            for (const char* part : {"HostName=", "SharedAccessKeyName=", "SharedAccessKey="}) {
              if (text->find(part) == std::string::npos) {
                cs.error(std::string("not an IoT Hub service connection string: no ") + part +
                         " (expected HostName=…;SharedAccessKeyName=…;SharedAccessKey=…, or env:NAME)");
                break;
              }
            }
          }
          a.connection_string = *text;
        }
        if (auto gk = m.get("group_key").as_nonempty_string()) {
          check_secret_syntax(m.get("group_key"), *gk);
          a.group_key = *gk;
        }
        if (const auto c = m.get("create_devices").as_bool()) a.create_devices = *c;
        if (const auto r = m.get("registry_rate").as_rate(0.01, 10000)) a.registry_rate = *r;
        a.device_endpoint = read_host_port(m, "device_endpoint");
        a.rest_endpoint = read_host_port(m, "rest_endpoint");
        if (auto ca = m.get("ca").as_nonempty_string()) a.ca = relative_to_file(*ca);
        s.target = a;
        return;
      }
      default: {
        aws_target a;
        if (auto e = m.require("endpoint").as_nonempty_string()) {
          a.endpoint = *e;
          // abc123-ats.iot.eu-west-1.amazonaws.com names its region.
          const auto iot = e->find(".iot.");
          const auto amazon = e->find(".amazonaws.com");
          if (iot != std::string::npos && amazon != std::string::npos && amazon > iot + 5) {
            a.region = e->substr(iot + 5, amazon - iot - 5);
          }
        }
        if (auto r = m.get("region").as_nonempty_string()) a.region = *r;
        if (a.region.empty() && m.has("endpoint")) {
          n.error("missing required key 'region' (the endpoint does not name one)");
        }
        if (auto ca = m.require("ca").as_nonempty_string()) a.ca = relative_to_file(*ca);
        const bool shared = m.has("certificate") || m.has("key");
        const bool per_device = m.has("certificate_dir");
        if (shared && per_device) {
          m.get("certificate_dir").error("give either certificate and key (shared by every device) or certificate_dir (one per device), not both");
        } else if (!shared && !per_device) {
          n.error("missing the device credentials: certificate and key (shared), or certificate_dir (one per device)");
        }
        if (shared) {
          if (auto c = m.require("certificate").as_nonempty_string()) a.certificate = relative_to_file(*c);
          if (auto k = m.require("key").as_nonempty_string()) a.key = relative_to_file(*k);
        }
        if (auto d = m.get("certificate_dir").as_nonempty_string()) a.certificate_dir = relative_to_file(*d);
        for (auto [key, out] : {std::pair{"access_key_id", &a.access_key_id}, std::pair{"secret_access_key", &a.secret_access_key},
                                std::pair{"session_token", &a.session_token}}) {
          if (auto v = m.get(key).as_nonempty_string()) {
            check_secret_syntax(m.get(key), *v);
            *out = *v;
          }
        }
        if (a.access_key_id.empty() != a.secret_access_key.empty()) {
          n.error("access_key_id and secret_access_key go together (or leave both out to use the AWS_* environment variables)");
        }
        a.device_endpoint = read_host_port(m, "device_endpoint");
        a.rest_endpoint = read_host_port(m, "rest_endpoint");
        s.target = a;
        return;
      }
    }
  }

  std::shared_ptr<const device::profile> resolve_profile(const node& at, const std::string& ref) {
    fs::path found;
    const bool is_path = ref.find('/') != std::string::npos || ref.ends_with(".yaml") || ref.ends_with(".yml");
    if (is_path) {
      found = relative_to_file(ref);
      if (!fs::exists(found)) {
        at.error("profile file '" + found.string() + "' does not exist");
        return nullptr;
      }
    } else {
      std::string tried;
      for (const auto& dir : dirs_) {
        const auto candidate = dir / (ref + ".yaml");
        if (fs::exists(candidate)) {
          found = candidate;
          break;
        }
        tried += (tried.empty() ? "" : ", ") + dir.string();
      }
      if (found.empty()) {
        std::string message = "unknown profile '" + ref + "'";
        std::vector<std::string> names;
        for (const auto& dir : dirs_) {
          std::error_code ec;
          for (const auto& e : fs::directory_iterator(dir, ec)) {
            if (e.path().extension() == ".yaml") names.push_back(e.path().stem().string());
          }
        }
        if (auto hint = config::closest_match(ref, names); !hint.empty()) message += " (did you mean '" + hint + "'?)";
        at.error(message + "; looked for " + ref + ".yaml in " + tried);
        return nullptr;
      }
    }
    const auto key = fs::weakly_canonical(found).string();
    if (const auto it = cache_.find(key); it != cache_.end()) return it->second;
    auto p = load_profile(found, diags_, found.lexically_normal().string());
    cache_[key] = p;
    return p;
  }

  void read_fleet(const node& n, scenario& s) {
    if (n.present() && !n.is_sequence()) {
      n.error("expected a list of fleet entries ({profile, count, dialect}), got " + n.describe());
      return;
    }
    const auto items = n.items();
    if (n.present() && items.empty()) n.error("the fleet needs at least one entry");
    std::unordered_map<std::string, std::size_t> ids;  // id → fleet entry
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < items.size(); ++i) {
      const auto& item = items[i];
      auto m = item.map();
      if (!item.is_map()) continue;
      fleet_entry e;
      const auto profile_node = m.require("profile");
      if (auto ref = profile_node.as_nonempty_string()) {
        e.profile_ref = *ref;
        e.profile = resolve_profile(profile_node, *ref);
      }
      const auto count = m.require("count").as_int(1, 1'000'000);
      if (count) e.count = static_cast<std::uint64_t>(*count);
      if (const auto d = m.get("dialect").as_enum({"azure", "aws"})) e.via = *d == 0 ? dialect::azure : dialect::aws;
      if (const auto f = m.get("first_index").as_int(0, 1'000'000'000)) e.first_index = static_cast<std::uint64_t>(*f);
      const auto id_node = m.get("id");
      bool id_ok = true;
      if (auto pattern = id_node.as_nonempty_string()) {
        std::string error;
        if (auto t = device::parse_id_pattern(*pattern, error)) {
          e.id = std::move(*t);
        } else {
          id_node.error(error);
          id_ok = false;
        }
      } else if (id_node.present()) {
        id_ok = false;
      } else if (e.profile) {
        e.id = e.profile->identity.id;
      } else {
        id_ok = false;
      }
      const auto shadows = m.get("shadows");
      if (shadows.present()) {
        if (e.via != dialect::aws) {
          shadows.error("shadows apply to the aws dialect only (Azure devices have one twin)");
        } else if (auto list = shadows.as_string_list()) {
          e.shadows.clear();
          const auto list_items = shadows.is_sequence() ? shadows.items() : std::vector<node>{shadows};
          for (std::size_t k = 0; k < list->size(); ++k) {
            const std::string name = (*list)[k] == "classic" ? std::string{} : (*list)[k];
            if (!name.empty() && !twin::is_valid_shadow_name(name)) {
              list_items[k].error("'" + name + "' is not a valid shadow name (1 to 64 of letters, digits, '$', ':', '_', '-'; "
                                  "write classic for the unnamed shadow)");
              continue;
            }
            if (std::find(e.shadows.begin(), e.shadows.end(), name) != e.shadows.end()) {
              list_items[k].error("shadow '" + (*list)[k] + "' is listed twice");
              continue;
            }
            e.shadows.push_back(name);
          }
          if (list->empty()) shadows.error("a device needs at least one shadow");
          // A device subscribes to 7 response topics a shadow and to its commands on one
          // connection; AWS IoT (and the local hub) refuse a connection's 51st subscription.
          if (const auto subscriptions = 7 * e.shadows.size() + 1; subscriptions > 50) {
            shadows.error(std::to_string(e.shadows.size()) + " shadows take " + std::to_string(subscriptions) +
                          " subscriptions on a device's connection (7 a shadow, 1 for commands); AWS IoT allows 50: "
                          "at most 7 shadows a device");
          }
        }
      }
      const auto overrides = m.get("overrides");
      if (overrides.present() && e.profile) {
        auto om = overrides.map();
        auto copy = std::make_shared<device::profile>(*e.profile);
        copy->quirks = detail::read_quirks(om.get("quirks"), copy->quirks);
        copy->lifecycle = detail::read_lifecycle(om.get("lifecycle"), copy->lifecycle);
        e.profile = std::move(copy);
      } else if (overrides.present()) {
        auto om = overrides.map();  // still check its own shape
        (void)detail::read_quirks(om.get("quirks"), {});
        (void)detail::read_lifecycle(om.get("lifecycle"), {});
      }
      m.allow({"name"});
      (void)m.get("name").as_string();
      total += e.count;
      if (id_ok && e.count > 0 && e.profile) check_ids(item, id_node, i, e, ids);
      s.fleet.push_back(std::move(e));
    }
    if (total > 10'000'000) n.error("the fleet has " + std::to_string(total) + " devices; at most 10,000,000 are supported");
  }

  void check_ids(const node& item, const node& id_node, std::size_t entry, const fleet_entry& e,
                 std::unordered_map<std::string, std::size_t>& ids) {
    const node& at = id_node.present() ? id_node : item;
    device::template_context ctx;
    ctx.profile = e.profile->name;
    bool reported_invalid = false;
    for (std::uint64_t k = 0; k < e.count; ++k) {
      ctx.index = e.first_index + k;
      std::string id = e.id.expand(ctx);
      if (!reported_invalid && (k == 0 || k + 1 == e.count)) {
        const bool ok = e.via == dialect::azure ? twin::is_valid_device_id(id) : twin::is_valid_thing_name(id);
        if (!ok) {
          at.error("device id '" + id + "' is not a valid " +
                   (e.via == dialect::azure ? std::string("Azure device id") : std::string("AWS thing name")));
          reported_invalid = true;
        }
      }
      const auto [it, inserted] = ids.emplace(std::move(id), entry);
      if (!inserted) {
        at.error("device id '" + it->first + "' is also made by fleet[" + std::to_string(it->second) +
                 "]; give this entry its own id pattern (id: …) or a first_index past the other's");
        return;
      }
    }
  }

  void read_aws_observer(const node& n, scenario& s) {
    if (!n.present()) return;
    auto m = n.map();
    // At most 50: AWS IoT's subscriptions per connection, one exact filter per shadow.
    if (const auto k = m.get("shadows_per_connection").as_int(0, 50)) s.aws_observer.shadows_per_connection = static_cast<std::uint32_t>(*k);
  }

  void read_ramp(const node& n, scenario& s) {
    auto m = n.map();
    if (m.at_most_one_of({"rate", "duration"}) > 1) return;
    if (const auto r = m.get("rate").as_rate(0.001, 1e7)) s.ramp.rate = *r;
    if (const auto d = m.get("duration").as_duration(0ns, 24h)) s.ramp.over = *d;
    if (const auto j = m.get("jitter").as_fraction(0, 1)) s.ramp.jitter = *j;
    if (const auto c = m.get("max_connecting").as_int(0, 10'000'000)) s.ramp.max_connecting = static_cast<std::uint64_t>(*c);
  }

  load_rate read_load(const node& n, const char* names_key, node* names_node = nullptr) {
    load_rate l;
    if (!n.present()) return l;
    if (n.is_scalar()) {
      l.rate = n.as_rate().value_or(0);
      return l;
    }
    auto m = n.map();
    if (!n.is_map()) return l;
    l.rate = m.require("rate").as_rate().value_or(0);
    if (const auto per = m.get("per").as_enum({"fleet", "device"})) l.per_device = *per == 1;
    if (names_key) {
      const auto list = m.get(names_key);
      if (auto names = list.as_string_list()) l.names = *names;
      if (names_node) *names_node = list;
    }
    return l;
  }

  void read_phases(const node& n, scenario& s) {
    if (n.present() && !n.is_sequence()) {
      n.error("expected a list of phases ({name, duration, backend}), got " + n.describe());
      return;
    }
    const auto items = n.items();
    if (n.present() && items.empty()) n.error("a scenario needs at least one phase");
    for (const auto& item : items) {
      auto m = item.map();
      if (!item.is_map()) continue;
      phase p;
      const auto name = m.require("name");
      if (auto text = name.as_nonempty_string()) {
        p.name = *text;
        for (const auto& other : s.phases) {
          if (other.name == p.name) name.error("phase '" + p.name + "' is named twice");
        }
      }
      if (const auto d = m.require("duration").as_duration(1ms, 24h * 30)) p.length = *d;
      const auto backend = m.get("backend");
      auto bm = backend.map();
      const auto writes = bm.get("desired_writes");
      node write_names;
      p.backend.desired_writes = read_load(writes, "properties", &write_names);
      const auto methods = bm.get("method_calls");
      node method_names;
      p.backend.method_calls = read_load(methods, "methods", &method_names);
      p.backend.twin_reads = read_load(bm.get("twin_reads"), nullptr);
      if (const auto t = m.get("telemetry").as_double(0, 1000)) p.telemetry_multiplier = *t;
      check_names(writes, write_names, p.backend.desired_writes, s, true);
      check_names(methods, method_names, p.backend.method_calls, s, false);
      s.phases.push_back(std::move(p));
    }
  }

  // A phase may only write properties, and call methods, that some fleet profile has.
  void check_names(const node& at, const node& list_node, const load_rate& l, const scenario& s, bool desired) {
    if (!l.any()) return;
    std::vector<std::string> available;
    for (const auto& e : s.fleet) {
      if (!e.profile) continue;  // an unresolved profile: its own error says enough
      if (desired) {
        for (const auto& d : e.profile->desired) available.push_back(d.name);
      } else {
        for (const auto& c : e.profile->commands) available.push_back(c.name);
      }
    }
    const char* what = desired ? "desired property" : "method";
    if (available.empty()) {
      at.error(std::string("no profile in the fleet has a ") + what + " to " + (desired ? "write" : "call"));
      return;
    }
    const auto items = list_node.is_sequence() ? list_node.items() : std::vector<node>{};
    for (std::size_t k = 0; k < l.names.size(); ++k) {
      const auto& name = l.names[k];
      if (std::find(available.begin(), available.end(), name) != available.end()) continue;
      std::string message = std::string("no profile in the fleet has a ") + what + " '" + name + "'";
      if (auto hint = config::closest_match(name, available); !hint.empty()) message += " (did you mean '" + hint + "'?)";
      (k < items.size() ? items[k] : list_node.present() ? list_node : at).error(message);
    }
  }

  void read_faults(const node& n, scenario& s) {
    const auto end = s.total_duration();
    for (const auto& item : n.items()) {
      auto m = item.map();
      if (!item.is_map()) continue;
      fault f;
      const auto at = m.require("at");
      if (const auto d = at.as_duration()) {
        f.at = *d;
        if (end.count() > 0 && f.at >= end) {
          at.error(at.scalar() + " is past the end of the phases (" + config::format_duration(end) + ")");
        }
      }
      if (const auto drop = m.get("drop").as_fraction(0, 1)) f.drop = *drop;
      if (const auto only = m.get("dialect").as_enum({"azure", "aws"})) f.only = *only == 0 ? dialect::azure : dialect::aws;
      const auto hub = m.get("hub");
      if (hub.present()) {
        if (!hub.is_map()) {
          hub.error("expected a map of hub fault settings (docs/HUB.md), got " + hub.describe());
        } else if (auto v = hub.as_json()) {
          f.hub = v->as_object();
        }
        if (!std::holds_alternative<local_target>(s.target) && !std::holds_alternative<hub_target>(s.target)) {
          hub.error(std::string("hub fault settings need target local or hub; the target is ") + target_name(s.target));
        }
      }
      if (!m.has("drop") && !hub.present()) item.error("a fault needs drop (a share of connections) or hub (fault settings)");
      s.faults.push_back(std::move(f));
    }
  }

  void read_thresholds(const node& n, scenario& s) {
    if (n.is_sequence()) {
      // The list form: each item names its metric ("anomalies.lost_update == 0").
      for (const auto& c : n.items()) {
        auto text = c.as_nonempty_string();
        if (!text) continue;
        std::string error;
        if (auto t = parse_threshold("", *text, error)) {
          s.thresholds.push_back(std::move(*t));
        } else {
          c.error(error);
        }
      }
      return;
    }
    auto m = n.map();
    for (auto& [metric, value] : m.entries()) {
      const auto conditions = value.is_sequence() ? value.items() : std::vector<node>{value};
      for (const auto& c : conditions) {
        auto text = c.as_nonempty_string();
        if (!text) continue;
        std::string error;
        if (auto t = parse_threshold(metric, *text, error)) {
          s.thresholds.push_back(std::move(*t));
        } else {
          c.error(error);
        }
      }
    }
  }

  node root_;
  fs::path file_;
  config::diagnostics& diags_;
  std::vector<fs::path> dirs_;
  std::map<std::string, std::shared_ptr<const device::profile>> cache_;
};

std::optional<scenario> finish(std::optional<config::document> doc, const fs::path& file, config::diagnostics& diags,
                               const load_options& options) {
  if (!doc) return std::nullopt;
  const auto before = diags.size();
  for (const auto& [path, value] : options.overrides) (void)doc->set(path, value, diags);
  if (diags.size() != before) return std::nullopt;
  auto s = scenario_reader(doc->root(), file, diags, options).read();
  if (diags.size() != before) return std::nullopt;
  return s;
}

}  // namespace

std::optional<scenario> load_scenario(const fs::path& file, config::diagnostics& diags, const load_options& options) {
  return finish(config::document::load_file(file, diags), file, diags, options);
}

std::optional<scenario> load_scenario_string(std::string_view text, const std::string& display_name, config::diagnostics& diags,
                                             const load_options& options) {
  return finish(config::document::load_string(text, display_name, diags), fs::path(display_name), diags, options);
}

file_kind detect_file_kind(const fs::path& file) {
  config::diagnostics ignored;
  const auto doc = config::document::load_file(file, ignored);
  if (!doc || !doc->root().is_map()) return file_kind::unknown;
  auto m = doc->root().map();
  m.allow({});
  file_kind kind = file_kind::unknown;
  for (const char* key : {"fleet", "phases", "target"}) {
    if (m.has(key)) kind = file_kind::scenario;
  }
  if (kind == file_kind::unknown) {
    for (const char* key : {"identity", "reported", "desired", "commands", "telemetry"}) {
      if (m.has(key)) kind = file_kind::profile;
    }
  }
  (void)m.entries();  // nothing to report: this is a peek, not a load
  return kind;
}

}  // namespace twinfleet::scenario
