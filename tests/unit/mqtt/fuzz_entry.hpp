// One fuzz input through the MQTT codec and both session roles, checking the properties that
// must hold for any bytes a peer can send. Used by the property test here and, later, by a
// libFuzzer target (`twinfleet_mqtt_fuzz_one` has the signature LLVMFuzzerTestOneInput needs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace twinfleet::mqtt::test {

// Empty when every property held, else a description of the first one that broke:
// - decode never consumes more than it was given, and needs more only with nothing consumed;
// - a decoded packet re-encodes, no longer than it came, to bytes that decode to an equal
//   packet and re-encode to the same bytes;
// - a server and a client session fed the bytes never consume past them, never stall, and only
//   ever send bytes that decode.
// Crashes, over-reads and undefined behaviour are for the sanitizers to catch.
std::string fuzz_check(std::span<const std::uint8_t> data);

}  // namespace twinfleet::mqtt::test

// Runs fuzz_check and traps when a property breaks. Always returns 0, as libFuzzer expects.
extern "C" int twinfleet_mqtt_fuzz_one(const std::uint8_t* data, std::size_t size);
