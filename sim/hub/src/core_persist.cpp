// hub_core's state file: the identities, twins and shadows, so that a restarted hub carries on
// where it stopped (docs/HUB.md, "State file"). Connections, subscriptions, pending methods
// and counters are not state: they end with the process.
//
// The file is JSON Lines: a header line, then one line per Azure identity (with its twin) and
// one per AWS thing (with its shadows). One record at a time is built, written, read and
// parsed, so saving or loading 100,000 twins never holds a JSON tree of the whole store (see
// bench/state_bench.cpp for what a whole-store tree would cost). The header counts the records,
// so a truncated file is refused rather than half loaded.
#include "core_state.hpp"

#include <twinfleet/auth/encoding.hpp>
#include <twinfleet/twin/names.hpp>

#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <istream>
#include <ostream>

namespace twinfleet::hub {

namespace {

constexpr std::string_view format_name = "twinfleet-hub-state";
constexpr std::int64_t format_version = 1;

twin::error state_error(std::string message) { return twin::error{0, std::move(message)}; }

json::object device_record(const azure_device& d) {
  json::object out;
  out["deviceId"] = d.device_id;
  out["authType"] = auth_type_name(d.auth_type);
  out["primaryKey"] = d.primary_key;
  out["secondaryKey"] = d.secondary_key;
  out["primaryThumbprint"] = d.primary_thumbprint;
  out["secondaryThumbprint"] = d.secondary_thumbprint;
  out["enabled"] = d.enabled;
  out["identityVersion"] = d.identity_version;
  out["created"] = twin::format_iso8601(d.created);
  out["twin"] = d.twin.to_snapshot();
  return out;
}

json::object thing_record(std::string_view name, const aws_thing& thing) {
  json::array shadows;
  shadows.reserve(thing.shadows.size());
  for (const auto& [shadow_name, shadow] : thing.shadows) shadows.push_back(shadow.to_snapshot());
  json::object out;
  out["thingName"] = name;
  out["shadows"] = std::move(shadows);
  return out;
}

// A member of a record, typed; the error names it.
template <class T>
twin::result<T> member(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return state_error(std::string(key) + ": missing");
  if constexpr (std::is_same_v<T, std::string>) {
    if (!v->is_string()) return state_error(std::string(key) + ": must be a string");
    return std::string(v->get_string());
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!v->is_bool()) return state_error(std::string(key) + ": must be true or false");
    return v->get_bool();
  } else if constexpr (std::is_same_v<T, std::int64_t>) {
    if (!v->is_int64()) return state_error(std::string(key) + ": must be an integer");
    return v->get_int64();
  } else if constexpr (std::is_same_v<T, const json::object*>) {
    if (!v->is_object()) return state_error(std::string(key) + ": must be a JSON object");
    return &v->get_object();
  } else {
    static_assert(std::is_same_v<T, const json::array*>);
    if (!v->is_array()) return state_error(std::string(key) + ": must be a JSON array");
    return &v->get_array();
  }
}

twin::result<void> only_members(const json::object& o, std::initializer_list<std::string_view> known) {
  for (const auto& m : o) {
    if (std::find(known.begin(), known.end(), m.key()) == known.end()) {
      return state_error(std::string(m.key()) + ": unknown member");
    }
  }
  return {};
}

// Reads one identity record into `devices`. Keys must be base64 as the registry requires;
// the twin must be the identity's, with the same status.
twin::result<void> read_device(const json::object& record, const hub_settings& settings,
                               string_map<azure_device>& devices) {
  if (auto r = only_members(record, {"deviceId", "authType", "primaryKey", "secondaryKey", "primaryThumbprint",
                                     "secondaryThumbprint", "enabled", "identityVersion", "created", "twin"});
      !r) {
    return r;
  }
  auto id = member<std::string>(record, "deviceId");
  if (!id) return id.error();
  if (!twin::is_valid_device_id(*id)) return state_error("deviceId: '" + *id + "' is not a valid device id");
  const auto in_device = [&](const twin::error& e) { return state_error("device '" + *id + "': " + e.message); };
  if (devices.contains(*id)) return in_device(state_error("appears twice"));

  auto type_name = member<std::string>(record, "authType");
  auto primary = member<std::string>(record, "primaryKey");
  auto secondary = member<std::string>(record, "secondaryKey");
  auto thumb1 = member<std::string>(record, "primaryThumbprint");
  auto thumb2 = member<std::string>(record, "secondaryThumbprint");
  auto enabled = member<bool>(record, "enabled");
  auto identity_version = member<std::int64_t>(record, "identityVersion");
  auto created_text = member<std::string>(record, "created");
  auto twin_snapshot = member<const json::object*>(record, "twin");
  if (!type_name) return in_device(type_name.error());
  if (!primary) return in_device(primary.error());
  if (!secondary) return in_device(secondary.error());
  if (!thumb1) return in_device(thumb1.error());
  if (!thumb2) return in_device(thumb2.error());
  if (!enabled) return in_device(enabled.error());
  if (!identity_version) return in_device(identity_version.error());
  if (!created_text) return in_device(created_text.error());
  if (!twin_snapshot) return in_device(twin_snapshot.error());

  azure_auth_type type = azure_auth_type::sas;
  if (*type_name == "selfSigned") {
    type = azure_auth_type::self_signed;
  } else if (*type_name == "certificateAuthority") {
    type = azure_auth_type::certificate_authority;
  } else if (*type_name != "sas") {
    return in_device(state_error("authType: '" + *type_name + "' is not sas, selfSigned or certificateAuthority"));
  }
  for (const auto& [name, key] : {std::pair{"primaryKey", &*primary}, std::pair{"secondaryKey", &*secondary}}) {
    if (!key->empty() && !auth::base64_decode(*key)) return in_device(state_error(std::string(name) + ": not base64"));
  }
  if (*identity_version < 1) return in_device(state_error("identityVersion: must be at least 1"));
  const auto created = twin::parse_iso8601(*created_text);
  if (!created) return in_device(state_error("created: '" + *created_text + "' is not a UTC time"));

  // No connection survives a restart: the twin says Disconnected, its last activity kept.
  json::object snapshot = **twin_snapshot;
  if (auto* c = snapshot.if_contains("connected"); c != nullptr && c->is_bool()) *c = false;
  auto restored = twin::azure_twin::from_snapshot(snapshot, settings.azure_limits);
  if (!restored) return in_device(state_error("twin." + restored.error().message));
  if (restored->device_id() != *id) {
    return in_device(state_error("twin.deviceId: '" + restored->device_id() + "' is another device's twin"));
  }
  if (restored->enabled() != *enabled) return in_device(state_error("twin.enabled: differs from the identity's status"));

  auto [it, inserted] = devices.try_emplace(*id, *id, *created, settings.azure_limits);
  auto& d = it->second;
  d.auth_type = type;
  d.primary_key = std::move(*primary);
  d.secondary_key = std::move(*secondary);
  d.primary_thumbprint = std::move(*thumb1);
  d.secondary_thumbprint = std::move(*thumb2);
  d.enabled = *enabled;
  d.identity_version = *identity_version;
  d.twin = std::move(*restored);
  return {};
}

twin::result<void> read_thing(const json::object& record, const hub_settings& settings,
                              string_map<aws_thing>& things) {
  if (auto r = only_members(record, {"thingName", "shadows"}); !r) return r;
  auto name = member<std::string>(record, "thingName");
  if (!name) return name.error();
  if (!twin::is_valid_thing_name(*name)) return state_error("thingName: '" + *name + "' is not a valid thing name");
  const auto in_thing = [&](const twin::error& e) { return state_error("thing '" + *name + "': " + e.message); };
  if (things.contains(*name)) return in_thing(state_error("appears twice"));
  auto shadows = member<const json::array*>(record, "shadows");
  if (!shadows) return in_thing(shadows.error());

  aws_thing thing;
  std::size_t i = 0;
  for (const auto& s : **shadows) {
    const std::string where = "shadows[" + std::to_string(i++) + "]";
    if (!s.is_object()) return in_thing(state_error(where + ": must be a JSON object"));
    auto shadow = twin::aws_shadow::from_snapshot(s.get_object(), settings.aws_limits);
    if (!shadow) return in_thing(state_error(where + "." + shadow.error().message));
    if (shadow->thing_name() != *name) {
      return in_thing(state_error(where + ".thingName: '" + shadow->thing_name() + "' is another thing's shadow"));
    }
    auto shadow_name = shadow->shadow_name();
    if (!thing.shadows.emplace(shadow_name, std::move(*shadow)).second) {
      return in_thing(state_error(where + ": the shadow '" + shadow_name + "' appears twice"));
    }
  }
  things.emplace(std::move(*name), std::move(thing));
  return {};
}

}  // namespace

void hub_core::save_state(std::ostream& out, time_point now) const {
  const auto& st = *state_;
  // Sorted, so that two saves of the same store give the same file (diffable, testable).
  std::vector<const azure_device*> devices;
  devices.reserve(st.azure_devices.size());
  for (const auto& [id, d] : st.azure_devices) devices.push_back(&d);
  std::sort(devices.begin(), devices.end(), [](auto* a, auto* b) { return a->device_id < b->device_id; });
  std::vector<std::pair<std::string_view, const aws_thing*>> things;
  things.reserve(st.aws_things.size());
  for (const auto& [name, thing] : st.aws_things) {
    if (!thing.shadows.empty()) things.emplace_back(name, &thing);  // a refused first update leaves an empty thing
  }
  std::sort(things.begin(), things.end());

  json::object header;
  header["format"] = format_name;
  header["version"] = format_version;
  header["saved"] = twin::format_iso8601(now);
  header["azureDevices"] = devices.size();
  header["awsThings"] = things.size();
  out << json::serialize(header) << '\n';
  for (const auto* d : devices) out << json::serialize(json::object{{"azureDevice", device_record(*d)}}) << '\n';
  for (const auto& [name, thing] : things) {
    out << json::serialize(json::object{{"awsThing", thing_record(name, *thing)}}) << '\n';
  }
}

twin::result<void> hub_core::load_state(std::istream& in) {
  auto& st = *state_;
  if (!st.connections.empty()) return state_error("the state can only be loaded before any device connects");

  // Everything is read into new maps first: a bad file leaves the hub as it was.
  string_map<azure_device> devices;
  string_map<aws_thing> things;
  json::parser parser;
  std::string line;
  std::int64_t line_number = 0;
  std::int64_t expected_devices = 0;
  std::int64_t expected_things = 0;
  std::int64_t seen_devices = 0;
  std::int64_t seen_things = 0;
  const auto at_line = [&](const twin::error& e) {
    return state_error("line " + std::to_string(line_number) + ": " + e.message);
  };
  while (std::getline(in, line)) {
    ++line_number;
    if (line.empty() && line_number > 1) continue;
    boost::system::error_code ec;
    parser.reset();
    parser.write(line, ec);  // the whole line: a document cut short is an error
    if (ec) return at_line(state_error("not JSON (" + ec.message() + ")"));
    const json::value record = parser.release();
    if (!record.is_object()) return at_line(state_error("not a JSON object"));
    const auto& o = record.get_object();

    if (line_number == 1) {
      const auto* format = o.if_contains("format");
      if (format == nullptr || !format->is_string() || format->get_string() != format_name) {
        return at_line(state_error("not a twinfleet hub state file (no \"format\": \"twinfleet-hub-state\")"));
      }
      auto version = member<std::int64_t>(o, "version");
      if (!version) return at_line(version.error());
      if (*version != format_version) {
        return at_line(state_error("format version " + std::to_string(*version) + " is not supported (this hub reads " +
                                   std::to_string(format_version) + ")"));
      }
      auto nd = member<std::int64_t>(o, "azureDevices");
      if (!nd) return at_line(nd.error());
      auto nt = member<std::int64_t>(o, "awsThings");
      if (!nt) return at_line(nt.error());
      expected_devices = *nd;
      expected_things = *nt;
      continue;
    }
    if (o.size() != 1) return at_line(state_error("a record holds exactly one of azureDevice or awsThing"));
    if (const auto* d = o.if_contains("azureDevice")) {
      if (!d->is_object()) return at_line(state_error("azureDevice: must be a JSON object"));
      if (auto r = read_device(d->get_object(), st.settings, devices); !r) return at_line(r.error());
      ++seen_devices;
    } else if (const auto* t = o.if_contains("awsThing")) {
      if (!t->is_object()) return at_line(state_error("awsThing: must be a JSON object"));
      if (auto r = read_thing(t->get_object(), st.settings, things); !r) return at_line(r.error());
      ++seen_things;
    } else {
      return at_line(state_error(std::string(o.begin()->key()) + ": unknown record"));
    }
  }
  if (in.bad()) return state_error("read error after line " + std::to_string(line_number));
  if (line_number == 0) return state_error("the file is empty");
  if (seen_devices != expected_devices || seen_things != expected_things) {
    return state_error("the header announces " + std::to_string(expected_devices) + " Azure devices and " +
                       std::to_string(expected_things) + " AWS things, the file holds " + std::to_string(seen_devices) +
                       " and " + std::to_string(seen_things) + " (truncated?)");
  }
  st.azure_devices = std::move(devices);
  st.aws_things = std::move(things);
  return {};
}

twin::result<void> save_state_file(const hub_core& core, const std::filesystem::path& file, time_point now) {
  // Written beside the file and renamed over it: a crash mid-save leaves the old file whole.
  // Created 0600 before anything is written: the file holds device keys.
  auto temp = file;
  temp += ".tmp-" + std::to_string(::getpid());
  const auto fail = [&](std::string what) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    return state_error(file.string() + ": " + what);
  };
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail(std::string("cannot create ") + temp.string() + ": " + std::strerror(errno));
  ::fchmod(fd, 0600);  // an older temp file left behind with another mode
  ::close(fd);
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    core.save_state(out, now);
    out.flush();
    if (!out) return fail("cannot write " + temp.string());
  }
  const int sync_fd = ::open(temp.c_str(), O_RDONLY | O_CLOEXEC);
  if (sync_fd < 0 || ::fsync(sync_fd) != 0) {
    const int e = errno;
    if (sync_fd >= 0) ::close(sync_fd);
    return fail(std::string("cannot sync ") + temp.string() + ": " + std::strerror(e));
  }
  ::close(sync_fd);
  if (::rename(temp.c_str(), file.c_str()) != 0) return fail(std::string("cannot rename into place: ") + std::strerror(errno));
  return {};
}

twin::result<void> load_state_file(hub_core& core, const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return state_error(file.string() + ": cannot open: " + std::strerror(errno));
  auto r = core.load_state(in);
  if (!r) return state_error(file.string() + ": " + r.error().message);
  return {};
}

}  // namespace twinfleet::hub
