// The histogram's JSON form: the documented shape (sim/metrics/README.md), exact round trips,
// merging after decoding, and the errors a decoder gives for other layouts and bad documents.
#include <twinfleet/metrics/json.hpp>

#include <catch_printers.hpp>

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <random>

using namespace twinfleet;
using metrics::histogram;
namespace json = boost::json;

namespace {

histogram random_histogram(std::uint64_t seed, std::size_t n) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> e(std::log(1e2), std::log(5e12));
  histogram h;
  for (std::size_t i = 0; i < n; ++i) h.record(static_cast<std::uint64_t>(std::exp(e(rng))));
  return h;
}

// Through text, as a worker process hands it over.
metrics::result<histogram> through_text(const histogram& h) {
  return metrics::from_json(json::parse(json::serialize(metrics::to_json(h))));
}

json::object valid_doc() {
  histogram h;
  h.record(1'000);
  h.record(1'500);
  h.record(1'500);
  return metrics::to_json(h);
}

}  // namespace

TEST_CASE("metrics json: the document has the documented shape", "[metrics][json]") {
  // The README's worked example, byte for byte.
  const auto doc = valid_doc();
  CHECK(json::serialize(doc) ==
        R"({"format":"twinfleet.histogram","version":1,)"
        R"("layout":{"unit_shift":3,"sub_bucket_bits":7,"highest_ns":3600000000000,"bucket_count":2153},)"
        R"("count":3,"sum_ns":4000,"min_ns":1000,"max_ns":1500,"overflow":0,"buckets":[[125,1],[157,2]]})");
  // An empty histogram.
  const auto empty = metrics::to_json(histogram{});
  CHECK(empty.at("count") == 0);
  CHECK(empty.at("min_ns") == 0);
  CHECK(empty.at("buckets").as_array().empty());
}

TEST_CASE("metrics json: round trips are exact and sparse", "[metrics][json]") {
  for (std::size_t n : {0UL, 1UL, 10UL, 50'000UL}) {
    const auto h = random_histogram(n + 3, n);
    auto back = through_text(h);
    REQUIRE(back.has_value());
    CHECK(*back == h);
    CHECK(back->overflow_count() == h.overflow_count());
    std::size_t non_empty = 0;
    for (auto c : h.buckets()) non_empty += c != 0;
    CHECK(metrics::to_json(h).at("buckets").as_array().size() == non_empty);
  }
  // Subtracted (interval) histograms round-trip too: their min/max stay inside the buckets.
  // (The same seed records the same first 1,000 samples: `earlier` is a prefix of `later`.)
  auto later = random_histogram(5, 2'000);
  const auto earlier = random_histogram(5, 1'000);
  REQUIRE(later.subtract(earlier).has_value());
  auto back = through_text(later);
  REQUIRE(back.has_value());
  CHECK(*back == later);
}

TEST_CASE("metrics json: merging decoded histograms equals merging the originals", "[metrics][json]") {
  const auto a = random_histogram(41, 10'000);
  const auto b = random_histogram(42, 7'000);
  const auto c = random_histogram(43, 1);
  histogram direct = a;
  direct.add(b);
  direct.add(c);
  histogram decoded;
  for (const auto* h : {&a, &b, &c}) {
    auto d = through_text(*h);
    REQUIRE(d.has_value());
    decoded.add(*d);
  }
  CHECK(decoded == direct);
  CHECK(json::serialize(metrics::to_json(decoded)) == json::serialize(metrics::to_json(direct)));
}

TEST_CASE("metrics json: another layout or format or version is rejected as incompatible", "[metrics][json]") {
  auto expect_incompatible = [](json::object doc, std::string_view mentions) {
    auto r = metrics::from_json(doc);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == metrics::error_code::incompatible_layout);
    CHECK_THAT(r.error().message, Catch::Contains(std::string(mentions)));
  };
  auto doc = valid_doc();
  doc["layout"].as_object()["sub_bucket_bits"] = 8;
  expect_incompatible(doc, "layout.sub_bucket_bits is 8, this build uses 7");
  doc = valid_doc();
  doc["layout"].as_object()["highest_ns"] = 60'000'000'000;
  expect_incompatible(doc, "layout.highest_ns");
  doc = valid_doc();
  doc["layout"].as_object().erase("unit_shift");
  expect_incompatible(doc, "layout.unit_shift is missing");
  doc = valid_doc();
  doc["version"] = 2;
  expect_incompatible(doc, "version");
  doc = valid_doc();
  doc["format"] = "hdrhistogram";
  expect_incompatible(doc, "format");
}

TEST_CASE("metrics json: malformed documents give a clear error and never a histogram", "[metrics][json]") {
  auto expect_malformed = [](const json::value& doc, std::string_view mentions) {
    INFO(json::serialize(doc));
    auto r = metrics::from_json(doc);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == metrics::error_code::malformed);
    CHECK_THAT(r.error().message, Catch::Contains(std::string(mentions)));
  };
  expect_malformed(json::array{1, 2}, "not an object");
  expect_malformed(json::value(nullptr), "not an object");
  auto with = [](std::string_view key, json::value v) {
    auto doc = valid_doc();
    doc[key] = std::move(v);
    return doc;
  };
  auto without = [](std::string_view key) {
    auto doc = valid_doc();
    doc.erase(key);
    return doc;
  };
  expect_malformed(without("count"), "missing \"count\"");
  expect_malformed(without("buckets"), "missing \"buckets\"");
  expect_malformed(with("layout", 3), "layout");
  expect_malformed(with("sum_ns", -1), "\"sum_ns\" must be a non-negative integer");
  expect_malformed(with("min_ns", 1000.5), "\"min_ns\" must be a non-negative integer");
  expect_malformed(with("count", "3"), "\"count\" must be a non-negative integer");
  expect_malformed(with("count", 4), "add up to 3, \"count\" says 4");
  expect_malformed(with("buckets", json::array{json::array{125, 1}, json::array{157}}), "buckets[1]");
  expect_malformed(with("buckets", json::array{json::array{157, 2}, json::array{125, 1}}), "strictly ascending");
  expect_malformed(with("buckets", json::array{json::array{125, 1}, json::array{157, 2}, json::array{158, 0}}),
                   "non-zero count");
  expect_malformed(with("buckets", json::array{json::array{125, 1}, json::array{2153, 2}}), "outside the layout");
  expect_malformed(with("buckets", json::array{json::array{125, 1}, json::array{157, -2}}),
                   "two non-negative integers");
  expect_malformed(with("min_ns", 900), "\"min_ns\" 900 is not in the first non-empty bucket");
  expect_malformed(with("max_ns", 2000), "\"max_ns\" 2000 is not in the last non-empty bucket");
  expect_malformed(with("overflow", 5), "\"overflow\" exceeds \"count\"");
  auto empty = metrics::to_json(histogram{});
  empty["sum_ns"] = 5;
  expect_malformed(empty, "empty histogram");
}
