// The hub core's state file (core_persist.cpp): a hub loaded from what another saved serves
// the same identities, twins and shadows, and a bad file is refused whole, naming the line.
#include <twinfleet/auth/sas.hpp>
#include <twinfleet/hub/core.hpp>

#include "catch_printers.hpp"
#include "fake_link.hpp"
#include "json_test_util.hpp"
#include "test_data.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <sstream>

using namespace twinfleet;
using hub::hub_core;
using test::at;
using test::fake_link;
using test::jv;
namespace json = boost::json;

namespace {

constexpr auto accepted = mqtt::connect_return_code::accepted;
constexpr auto not_authorized = mqtt::connect_return_code::not_authorized;
const std::string key_a = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

hub::hub_settings strict_settings() {
  hub::hub_settings s;
  s.auth = hub::auth_mode::strict;
  // Another group key than the saving hub would have: registered keys must come from the file.
  s.group_key = hub::random_key();
  return s;
}

struct azure_connect {
  std::string id, username, password;
  mqtt::connect_packet packet() const {
    mqtt::connect_packet p;
    p.keep_alive = 60;
    p.client_id = id;
    p.username = username;
    p.password = password;
    return p;
  }
};

azure_connect device_connect(std::string id, std::string_view key) {
  const auto expiry = std::chrono::floor<std::chrono::seconds>(at(3600));
  auto password = auth::create_sas_token({"localhost/devices/" + id, key, expiry, std::nullopt, auth::hex_case::upper});
  return {id, "localhost/" + id + "/?api-version=2021-04-12", password.value()};
}

std::string saved(const hub_core& core, double when = 100) {
  std::ostringstream out;
  core.save_state(out, at(when));
  return out.str();
}

twin::result<void> load(hub_core& core, const std::string& text) {
  std::istringstream in(text);
  return core.load_state(in);
}

// A hub with one registered device (twin written by service and device), a deleted and
// re-created named shadow, a deleted classic shadow, and a self-signed identity.
void populate(hub_core& core) {
  REQUIRE(core.azure_put_device("dev1", jv(R"({"authentication":{"type":"sas","symmetricKey":{"primaryKey":")" + key_a +
                                           R"(","secondaryKey":")" + key_a + R"("}}})"),
                                {}, at(1)));
  REQUIRE(core.azure_put_device("cam1", jv(R"({"authentication":{"type":"selfSigned","x509Thumbprint":
                                           {"primaryThumbprint":"AB12","secondaryThumbprint":"CD34"}},"status":"disabled"})"),
                                {}, at(1)));
  REQUIRE(core.azure_update_twin("dev1", jv(R"({"tags":{"site":"lab"},"properties":{"desired":{"interval":5}}})"), {},
                                 false, at(2)));
  fake_link device;
  REQUIRE(core.on_connect(device, device_connect("dev1", key_a).packet(), at(3)) == accepted);
  mqtt::publish_packet p;
  p.topic = "$iothub/twin/PATCH/properties/reported/?$rid=1";
  p.payload = R"({"temp":21.5})";
  core.on_publish(device, p, at(4));
  core.on_disconnect(device, at(5));

  for (int i = 0; i < 3; ++i) REQUIRE(core.aws_update_shadow("lamp-1", "cfg", R"({"state":{"desired":{"on":true}}})", at(6)));
  REQUIRE(core.aws_delete_shadow("lamp-1", "cfg", at(7)));
  REQUIRE(core.aws_update_shadow("lamp-1", "", R"({"state":{"reported":{"on":false}}})", at(7)));
  REQUIRE(core.aws_update_shadow("lamp-2", "", R"({"state":{"reported":{"on":false}}})", at(7)));
  REQUIRE(core.aws_delete_shadow("lamp-2", "", at(8)));
}

}  // namespace

TEST_CASE("persist: a loaded hub serves the same identities, twins and shadows", "[hub][persist]") {
  hub_core first(strict_settings());
  populate(first);
  const auto text = saved(first);

  hub_core second(strict_settings());
  REQUIRE(load(second, text));
  CHECK(second.twin_count() == 2);
  CHECK(second.shadow_count() == 3);
  // Saving again gives the same file: nothing was lost or changed on the way.
  CHECK(saved(second) == text);

  auto identity = second.azure_get_device("dev1");
  REQUIRE(identity);
  CHECK(*identity == *first.azure_get_device("dev1"));
  CHECK(*second.azure_get_device("cam1") == *first.azure_get_device("cam1"));
  CHECK(second.azure_get_device("cam1")->at("status") == "disabled");
  CHECK(*second.azure_get_twin("dev1") == *first.azure_get_twin("dev1"));
  CHECK(second.azure_get_twin("dev1")->at("properties").at("reported").at("temp") == 21.5);

  // The device reconnects with the same SAS key, in strict mode, with another group key.
  fake_link device;
  CHECK(second.on_connect(device, device_connect("dev1", key_a).packet(), at(200)) == accepted);
  fake_link stranger;
  CHECK(second.on_connect(stranger, device_connect("dev9", key_a).packet(), at(200)) == not_authorized);
}

TEST_CASE("persist: etags, versions and identity etags continue after a load", "[hub][persist]") {
  hub_core first(strict_settings());
  populate(first);
  const auto old_etag = first.azure_get_twin("dev1")->at("etag").as_string();
  REQUIRE(first.azure_update_twin("dev1", jv(R"({"tags":{"site":"b"}})"), {}, false, at(9)));
  const auto etag = first.azure_get_twin("dev1")->at("etag").as_string();
  const auto device_etag = first.azure_get_device("dev1")->at("etag").as_string();

  hub_core second(strict_settings());
  REQUIRE(load(second, saved(first)));
  auto stale = second.azure_update_twin("dev1", jv(R"({"tags":{"x":1}})"),
                                        twin::if_match::parse("\"" + std::string(old_etag) + "\""), false, at(10));
  REQUIRE_FALSE(stale);
  CHECK(stale.error().code == 412001);
  auto fresh = second.azure_update_twin("dev1", jv(R"({"properties":{"desired":{"interval":6}}})"),
                                        twin::if_match::parse("\"" + std::string(etag) + "\""), false, at(10));
  REQUIRE(fresh);
  CHECK(fresh->at("properties").at("desired").at("$version") == 3);
  // The identity's etag too: an update with the old deviceEtag still matches.
  CHECK(second.azure_put_device("dev1", jv(R"({"status":"enabled"})"),
                                twin::if_match::parse("\"" + std::string(device_etag) + "\""), at(10)));

  // AWS: the classic shadow continues at version 2; the deleted named shadow re-creates at 4.
  auto classic = second.aws_update_shadow("lamp-1", "", R"({"state":{"reported":{"on":true}}})", at(11));
  REQUIRE(classic);
  CHECK(classic->at("version") == 2);
  CHECK(second.aws_get_shadow("lamp-1", "cfg", at(11)).error().code == 404);
  auto recreated = second.aws_update_shadow("lamp-1", "cfg", R"({"state":{"desired":{"on":false}}})", at(11));
  REQUIRE(recreated);
  CHECK(recreated->at("version") == 4);
  auto classic2 = second.aws_update_shadow("lamp-2", "", R"({"state":{"desired":{"on":1}},"version":1})", at(11));
  REQUIRE(classic2);
  CHECK(classic2->at("version") == 2);
}

TEST_CASE("persist: a twin saved while connected comes back Disconnected", "[hub][persist]") {
  hub_core first(strict_settings());
  populate(first);
  fake_link device;
  REQUIRE(first.on_connect(device, device_connect("dev1", key_a).packet(), at(20)) == accepted);
  hub_core second(strict_settings());
  REQUIRE(load(second, saved(first)));
  CHECK(second.azure_get_twin("dev1")->at("connectionState") == "Disconnected");
  CHECK(second.connected_devices() == 0);
  // And a hub with connections refuses to load over them.
  auto r = load(first, saved(first));
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("before any device connects"));
}

TEST_CASE("persist: a bad file is refused whole, naming the line and the member", "[hub][persist]") {
  hub_core first(strict_settings());
  populate(first);
  const auto text = saved(first);
  std::vector<std::string> lines;
  {
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  REQUIRE(lines.size() == 5);  // header, cam1, dev1, lamp-1, lamp-2
  const auto join = [](const std::vector<std::string>& ls) {
    std::string out;
    for (const auto& l : ls) out += l + "\n";
    return out;
  };
  const auto with_line = [&](std::size_t i, std::string l) {
    auto copy = lines;
    copy[i] = std::move(l);
    return join(copy);
  };
  const auto replaced = [&](std::size_t i, std::string_view from, std::string_view to) {
    auto l = lines[i];
    const auto at_pos = l.find(from);
    REQUIRE(at_pos != std::string::npos);
    l.replace(at_pos, from.size(), to);
    return with_line(i, l);
  };
  const std::pair<std::string, std::string> cases[] = {
      {"", "the file is empty"},
      {"{}\n", "line 1: not a twinfleet hub state file"},
      {replaced(0, "\"version\":1", "\"version\":2"), "line 1: format version 2 is not supported"},
      {with_line(2, lines[2].substr(0, lines[2].size() / 2)), "line 3: not JSON"},
      {join({lines[0], lines[1], lines[2], lines[3]}), "the header announces 2 Azure devices and 2 AWS things, the file holds 2 and 1"},
      {replaced(2, "\"version\":3", "\"version\":\"3\""), "line 3: device 'dev1': twin.version: must be an integer"},
      {replaced(2, R"("primaryKey":")", R"("primaryKey":"!)"), "line 3: device 'dev1': primaryKey: not base64"},
      {replaced(2, "\"deviceId\":\"dev1\",\"authType\"", "\"deviceId\":\"cam1\",\"authType\""), "line 3: device 'cam1': appears twice"},
      {replaced(1, "\"enabled\":false", "\"enabled\":true"), "line 2: device 'cam1': twin.enabled: differs"},
      {replaced(3, "\"thingName\":\"lamp-1\",\"shadowName\":\"cfg\"", "\"thingName\":\"lamp-2\",\"shadowName\":\"cfg\""),
       "line 4: thing 'lamp-1': shadows[1].thingName: 'lamp-2' is another thing's shadow"},
      {replaced(4, "\"exists\":false,\"version\":1", "\"exists\":false,\"version\":-2"),
       "line 5: thing 'lamp-2': shadows[0].version: -2 is outside"},
      {with_line(4, R"({"gcpDevice":{}})"), "line 5: gcpDevice: unknown record"},
  };
  for (const auto& [file, expected] : cases) {
    INFO(file);
    hub_core core(strict_settings());
    REQUIRE(core.azure_put_device("keep", jv("{}"), {}, at(0)));
    auto r = load(core, file);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains(expected));
    // Nothing of the bad file got in; what was there stays.
    CHECK(core.twin_count() == 1);
    CHECK(core.azure_get_device("keep"));
    CHECK(core.shadow_count() == 0);
  }
}

TEST_CASE("persist: the state file is written atomically, mode 0600, and read back", "[hub][persist]") {
  const test::temp_dir tmp;
  const auto& dir = tmp.path();
  const auto file = dir / "state.jsonl";
  hub_core first(strict_settings());
  populate(first);
  REQUIRE(hub::save_state_file(first, file, at(100)));
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // Only the file: the temporary is gone.
  CHECK(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()) == 1);
  // Overwriting keeps the mode and replaces the content.
  REQUIRE(first.azure_put_device("dev2", jv("{}"), {}, at(101)));
  REQUIRE(hub::save_state_file(first, file, at(102)));

  hub_core second(strict_settings());
  REQUIRE(hub::load_state_file(second, file));
  CHECK(second.twin_count() == 3);

  auto missing = hub::load_state_file(second, dir / "nope.jsonl");
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message, Catch::Contains("nope.jsonl: cannot open"));
  std::ofstream(dir / "bad.jsonl") << "garbage\n";
  auto bad = hub::load_state_file(second, dir / "bad.jsonl");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("bad.jsonl: line 1: not JSON"));
  auto unwritable = hub::save_state_file(first, dir / "no-such-dir" / "s.jsonl", at(103));
  REQUIRE_FALSE(unwritable);
  CHECK_THAT(unwritable.error().message, Catch::Contains("cannot create"));
}
