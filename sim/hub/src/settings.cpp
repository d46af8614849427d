#include <twinfleet/hub/settings.hpp>

#include <twinfleet/auth/encoding.hpp>

#include <openssl/rand.h>

#include <array>
#include <stdexcept>
#include <string_view>

namespace twinfleet::hub {

std::string random_key() {
  std::array<unsigned char, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    throw std::runtime_error("OpenSSL could not produce random bytes for a key");
  }
  return auth::base64_encode(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::vector<access_policy> default_policies() {
  // IoT Hub's five default policies and what each grants (PROTOCOLS.md A9).
  auto make = [](std::string name, bool rr, bool rw, bool sc, bool dc) {
    return access_policy{std::move(name), random_key(), random_key(), rr, rw, sc, dc};
  };
  return {
      make("iothubowner", true, true, true, true),
      make("service", false, false, true, false),
      make("device", false, false, false, true),
      make("registryRead", true, false, false, false),
      make("registryReadWrite", true, true, false, false),
  };
}

}  // namespace twinfleet::hub
