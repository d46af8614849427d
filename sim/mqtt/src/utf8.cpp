#include <twinfleet/mqtt/codec.hpp>

#include <cstdint>
#include <cstring>

namespace twinfleet::mqtt {

bool is_valid_mqtt_utf8(std::string_view s) noexcept {
  // The ranges of the second byte follow the Unicode well-formed byte sequences table
  // (Unicode 15, table 3-7), which excludes overlong forms, surrogates (ED A0..BF) and code
  // points above U+10FFFF in one place.
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  const auto continuation = [&](std::size_t at) noexcept { return at < n && (p[at] & 0xC0) == 0x80; };
  const auto in_range = [&](std::size_t at, unsigned char lo, unsigned char hi) noexcept {
    return at < n && p[at] >= lo && p[at] <= hi;
  };
  // Eight ASCII bytes at a time while there are (topics, JSON, ids): no high bit and no zero byte.
  constexpr std::uint64_t high = 0x8080808080808080ULL;
  constexpr std::uint64_t low = 0x0101010101010101ULL;
  while (i + 8 <= n) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    if ((w & high) != 0 || ((w - low) & ~w & high) != 0) break;  // a high bit, or a zero byte
    i += 8;
  }
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      if (c == 0) return false;
      i += 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      if (!continuation(i + 1)) return false;
      i += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
      const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
      if (!in_range(i + 1, lo, hi) || !continuation(i + 2)) return false;
      i += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
      const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
      if (!in_range(i + 1, lo, hi) || !continuation(i + 2) || !continuation(i + 3)) return false;
      i += 4;
    } else {
      return false;  // a stray continuation byte, C0/C1 (always overlong), or F5..FF
    }
  }
  return true;
}

}  // namespace twinfleet::mqtt
