// Shared JSON helpers of the document model.
#include <twinfleet/twin/json_util.hpp>

#include "json_test_util.hpp"

#include <catch2/catch.hpp>

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
