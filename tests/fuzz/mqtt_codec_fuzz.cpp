// libFuzzer target: arbitrary bytes into the MQTT codec and both session roles. The checks
// live in tests/unit/mqtt/fuzz_entry.cpp, which the unit tests also run on fixed inputs.
#include "../unit/mqtt/fuzz_entry.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return twinfleet_mqtt_fuzz_one(data, size);
}
