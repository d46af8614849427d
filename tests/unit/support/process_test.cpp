// The test support's child processes: a child that ignores its stop signal is killed after the
// grace, and err() then says where it was (what a test failing on a stuck process shows).
#include "process.hpp"

#include <catch2/catch.hpp>

#include <csignal>

using namespace std::chrono_literals;

TEST_CASE("test support: a child that ignores SIGTERM is killed after the grace and said to be stuck, blocked or busy",
          "[support]") {
  // `trap '' TERM` makes the shell ignore it, and the sleep it starts inherits that.
  twinfleet::test::child_process blocked("/bin/sh", {"-c", "trap '' TERM; echo up; sleep 30"});
  REQUIRE(blocked.wait_until([&] { return blocked.out().find("up") != std::string::npos; }, 10s));
  CHECK(blocked.stop(SIGTERM, 300ms) == 128 + SIGKILL);
  const auto said = blocked.err();
  INFO(said);
  CHECK(said.find("[test support] no exit within 300 ms of signal 15; killed.") != std::string::npos);
  CHECK(said.find("state S/S") != std::string::npos);  // sleeping: it waits on its child
  CHECK(said.find("thread ") != std::string::npos);

  twinfleet::test::child_process busy("/bin/sh", {"-c", "trap '' TERM; echo up; while :; do :; done"});
  REQUIRE(busy.wait_until([&] { return busy.out().find("up") != std::string::npos; }, 10s));
  CHECK(busy.stop(SIGTERM, 300ms) == 128 + SIGKILL);
  INFO(busy.err());
  CHECK(busy.err().find("state R/R") != std::string::npos);

  // A child that stops when asked says nothing of the kind.
  twinfleet::test::child_process quick("/bin/sh", {"-c", "echo up; sleep 30"});
  REQUIRE(quick.wait_until([&] { return quick.out().find("up") != std::string::npos; }, 10s));
  CHECK(quick.stop(SIGTERM, 5s) == 128 + SIGTERM);
  CHECK(quick.err().find("[test support]") == std::string::npos);
}
