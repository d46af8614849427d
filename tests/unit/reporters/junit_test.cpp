// junit.xml parsed back with libxml2 (a real XML parser, not our own): the structure CI
// systems read, one test case per threshold, failure messages, and escaping of hostile text.
#include "sample_summary.hpp"

#include <twinfleet/reporters/junit.hpp>
#include <twinfleet/reporters/thresholds.hpp>

#include <json_test_util.hpp>
#include <test_data.hpp>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <memory>
#include <string>
#include <vector>

using namespace twinfleet;
using namespace twinfleet::test;
using Catch::Matchers::Contains;

namespace {

struct doc_deleter {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
using xml_doc = std::unique_ptr<xmlDoc, doc_deleter>;

// Parses strictly: any well-formedness error fails the test with libxml2's message.
xml_doc parse(const std::string& text) {
  xmlDoc* d = xmlReadMemory(text.data(), static_cast<int>(text.size()), "junit.xml", "UTF-8", XML_PARSE_NONET | XML_PARSE_NOBLANKS);
  if (!d) {
    const xmlError* e = xmlGetLastError();
    FAIL("junit.xml is not well-formed XML: " << (e && e->message ? e->message : "?") << "\n" << text);
  }
  return xml_doc(d);
}

std::string name_of(const xmlNode* n) { return reinterpret_cast<const char*>(n->name); }

std::string attr(const xmlNode* n, const char* name) {
  xmlChar* v = xmlGetProp(n, reinterpret_cast<const xmlChar*>(name));
  if (!v) return "<absent>";
  std::string s(reinterpret_cast<const char*>(v));
  xmlFree(v);
  return s;
}

std::string text_of(const xmlNode* n) {
  xmlChar* v = xmlNodeGetContent(n);
  std::string s(v ? reinterpret_cast<const char*>(v) : "");
  xmlFree(v);
  return s;
}

std::vector<const xmlNode*> children(const xmlNode* n, const char* name) {
  std::vector<const xmlNode*> out;
  for (const xmlNode* c = n->children; c; c = c->next) {
    if (c->type == XML_ELEMENT_NODE && name_of(c) == name) out.push_back(c);
  }
  return out;
}

std::vector<reporters::threshold_result> evaluate(const boost::json::object& s, std::vector<scenario::threshold> ts) {
  return reporters::evaluate_thresholds(ts, s);
}

}  // namespace

TEST_CASE("junit.xml has one test case per threshold, failures with the message", "[reporters][junit]") {
  const auto s = sample_summary();
  const auto results = evaluate(s, {condition("reported_patch", "p50 < 60ms"), condition("reported_patch", "p99 < 50ms"),
                                    condition("", "anomalies.lost_update == 0")});
  const auto doc = parse(reporters::junit_xml(s, results));
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  REQUIRE(name_of(root) == "testsuites");
  CHECK(attr(root, "tests") == "3");
  CHECK(attr(root, "failures") == "1");
  CHECK(attr(root, "errors") == "0");
  CHECK(attr(root, "time") == "10");
  const auto suites = children(root, "testsuite");
  REQUIRE(suites.size() == 1);
  const xmlNode* suite = suites[0];
  CHECK(attr(suite, "name") == "twinfleet.unit");
  CHECK(attr(suite, "tests") == "3");
  CHECK(attr(suite, "failures") == "1");
  CHECK(attr(suite, "timestamp") == "2026-11-29T12:00:00Z");

  const auto props = children(suite, "properties");
  REQUIRE(props.size() == 1);
  std::vector<std::string> names;
  for (const auto* p : children(props[0], "property")) names.push_back(attr(p, "name") + "=" + attr(p, "value"));
  CHECK(names == std::vector<std::string>{"scenario=unit", "seed=42", "target=local", "interrupted=false"});

  const auto cases = children(suite, "testcase");
  REQUIRE(cases.size() == 3);
  CHECK(attr(cases[0], "name") == "reported_patch p50 < 60ms");
  CHECK(attr(cases[0], "classname") == "twinfleet.unit.thresholds");
  CHECK(children(cases[0], "failure").empty());
  const auto failures = children(cases[1], "failure");
  REQUIRE(failures.size() == 1);
  CHECK(attr(cases[1], "name") == "reported_patch p99 < 50ms");
  CHECK(attr(failures[0], "type") == "threshold");
  CHECK_THAT(attr(failures[0], "message"), Contains("reported_patch p99 = ") && Contains("limit < 50 ms (over by"));
  CHECK(text_of(failures[0]) == results[1].message);
  CHECK(children(cases[2], "failure").empty());
  const auto out = children(suite, "system-out");
  REQUIRE(out.size() == 1);
  CHECK_THAT(text_of(out[0]), Contains("\u2717 reported_patch p99 < 50ms"));
}

TEST_CASE("junit.xml without thresholds: one passing 'run completed'", "[reporters][junit]") {
  auto s = sample_summary();
  s["interrupted"] = true;
  const auto doc = parse(reporters::junit_xml(s, {}));
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  CHECK(attr(root, "tests") == "1");
  CHECK(attr(root, "failures") == "0");
  const auto cases = children(children(root, "testsuite").at(0), "testcase");
  REQUIRE(cases.size() == 1);
  CHECK(attr(cases[0], "name") == "run completed");
  CHECK(children(cases[0], "failure").empty());
  CHECK_THAT(text_of(children(root, "testsuite").at(0)), Contains("interrupted"));
}

TEST_CASE("junit.xml escapes markup, quotes and control characters from the data", "[reporters][junit]") {
  auto s = sample_summary();
  const std::string hostile = "a<b>&\"c'\x01</testsuite>]]>";
  s["scenario"] = hostile;
  s["target"] = "x\" injected=\"1";
  reporters::threshold_result r;
  r.name = "anomalies.<kind>";
  r.expr = "== 0 & \"quoted\"";
  r.ok = false;
  r.message = "<failure message='x'/> & \x02 done";
  const auto doc = parse(reporters::junit_xml(s, {r}));
  const xmlNode* suite = children(xmlDocGetRootElement(doc.get()), "testsuite").at(0);
  // The control character, which XML 1.0 cannot carry, became U+FFFD; the rest is intact.
  CHECK(attr(suite, "name") == "twinfleet.a<b>&\"c'\uFFFD</testsuite>]]>");
  const auto props = children(children(suite, "properties").at(0), "property");
  CHECK(attr(props.at(2), "value") == "x\" injected=\"1");
  CHECK(attr(props.at(2), "injected") == "<absent>");
  const auto cases = children(suite, "testcase");
  REQUIRE(cases.size() == 1);
  CHECK(attr(cases[0], "name") == "anomalies.<kind> == 0 & \"quoted\"");
  const auto failure = children(cases[0], "failure").at(0);
  CHECK(attr(failure, "message") == "<failure message='x'/> & \uFFFD done");
  CHECK(text_of(failure) == "<failure message='x'/> & \uFFFD done");
}

TEST_CASE("write_junit writes the file and says which path it could not write", "[reporters][junit]") {
  temp_dir dir;
  const auto s = sample_summary();
  REQUIRE(reporters::write_junit(s, {}, dir.path() / "junit.xml"));
  CHECK_THAT(read_file(dir.path() / "junit.xml"), Contains("<testcase"));
  const auto bad = reporters::write_junit(s, {}, dir.path() / "missing" / "junit.xml");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Contains("missing/junit.xml"));
}
