// Shared JSON helpers of the document model.
#include <twinfleet/twin/json_util.hpp>

#include "json_test_util.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

using namespace twinfleet::twin;
using twinfleet::test::at;
using twinfleet::test::jo;
using twinfleet::test::jv;

TEST_CASE("merge_patch: members overwrite, objects merge, null deletes, arrays replace", "[twin][json]") {
  auto doc = jo(R"({"a":1,"b":{"c":2,"d":[1,2]},"e":"keep"})");
  merge_patch(doc, jo(R"({"a":null,"b":{"c":3,"d":[3]},"f":{"g":null,"h":1},"e":"keep"})"));
  CHECK(json::value(doc) == jv(R"({"b":{"c":3,"d":[3]},"e":"keep","f":{"h":1}})"));
  merge_patch(doc, jo(R"({"b":5})"));
  CHECK(json::value(doc) == jv(R"({"b":5,"e":"keep","f":{"h":1}})"));
  merge_patch(doc, jo(R"({"b":{"x":null}})"));  // an object over a scalar, nulls dropped
  CHECK(json::value(doc) == jv(R"({"b":{},"e":"keep","f":{"h":1}})"));
}

TEST_CASE("json_equal compares numbers by value and objects regardless of order", "[twin][json]") {
  CHECK(json_equal(jv("1"), jv("1.0")));
  CHECK(json_equal(jv("18446744073709551615"), jv("18446744073709551615")));
  CHECK_FALSE(json_equal(jv("-1"), jv("18446744073709551615")));
  CHECK(json_equal(json::value(std::int64_t{5}), json::value(std::uint64_t{5})));
  CHECK(json_equal(jv(R"({"a":1,"b":[1,{"c":true}]})"), jv(R"({"b":[1,{"c":true}],"a":1})")));
  CHECK_FALSE(json_equal(jv("[1,2]"), jv("[2,1]")));
  CHECK_FALSE(json_equal(jv(R"({"a":1})"), jv(R"({"a":1,"b":null})")));
  CHECK_FALSE(json_equal(jv("\"1\""), jv("1")));
  CHECK_FALSE(json_equal(jv("null"), jv("false")));
  CHECK(json_equal(jv("null"), jv("null")));
}

TEST_CASE("is_valid_utf8 accepts well-formed text and refuses the classic malformations", "[twin][json]") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain ascii"));
  CHECK(is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  CHECK_FALSE(is_valid_utf8("\xc3"));              // truncated
  CHECK_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xed\xa0\x80"));      // UTF-16 surrogate
  CHECK_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xff"));
  CHECK_FALSE(is_valid_utf8("a\x80"));  // stray continuation byte
  CHECK(utf8_length("caf\xc3\xa9") == 4);
}

TEST_CASE("timestamps: seven fractional digits for Azure, whole epoch seconds for AWS", "[twin][json]") {
  CHECK(format_iso8601(at(0)) == "2024-01-15T10:00:00.0000000Z");
  CHECK(format_iso8601(at(52.3167248)) == "2024-01-15T10:00:52.3167248Z");
  CHECK(epoch_seconds(at(0)) == 1705312800);
  CHECK(epoch_seconds(at(1.9)) == 1705312801);
  CHECK(join_path("", "a") == "a");
  CHECK(join_path("properties.desired", "a") == "properties.desired.a");
}

TEST_CASE("timestamps: format_iso8601 agrees with gmtime_r over three centuries, leap days included",
          "[twin][json]") {
  // The reference: the C library's calendar, as format_iso8601 itself used to do it.
  const auto reference = [](time_point t) {
    using namespace std::chrono;
    const auto secs = floor<seconds>(t.time_since_epoch());
    const auto ticks = duration_cast<duration<std::int64_t, std::ratio<1, 10'000'000>>>(t.time_since_epoch() - secs).count();
    const std::time_t tt = static_cast<std::time_t>(secs.count());
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[80];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%07lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(ticks));
    return std::string(buf);
  };
  std::mt19937_64 rng(42);
  // 1900-01-01 .. 2200-01-01, in 100 ns steps, plus the edges of leap days and years.
  std::uniform_int_distribution<std::int64_t> when(-2'208'988'800LL * 10'000'000, 7'258'118'400LL * 10'000'000);
  std::vector<std::int64_t> samples;
  for (int i = 0; i < 20'000; ++i) samples.push_back(when(rng));
  for (std::int64_t s : {0LL, -1LL, 951'782'399LL, 951'782'400LL, 951'868'800LL, 1'709'251'199LL, 1'709'251'200LL,
                         4'102'444'799LL, 4'102'444'800LL, -2'208'988'800LL}) {
    samples.push_back(s * 10'000'000);
    samples.push_back(s * 10'000'000 + 9'999'999);
  }
  for (const auto ticks : samples) {
    const time_point t{std::chrono::duration_cast<time_point::duration>(
        std::chrono::duration<std::int64_t, std::ratio<1, 10'000'000>>(ticks))};
    INFO(ticks);
    REQUIRE(format_iso8601(t) == reference(t));
  }
  CHECK(format_iso8601(time_point{}) == "1970-01-01T00:00:00.0000000Z");
  CHECK(format_iso8601(time_point{std::chrono::seconds(951'782'400)}) == "2000-02-29T00:00:00.0000000Z");
}
