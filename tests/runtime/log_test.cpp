// The log sink: lines reach an installed sink without prefix, only when
// their level is enabled, and stderr again once the sink is removed.
#include "runtime/log.hpp"
#include "tests/support/log_capture.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace shardwire;

TEST_CASE("log: a sink gets enabled lines without prefix; removing it "
          "restores the previous one") {
  auto level_before = log::current();
  std::vector<std::string> got;
  auto prev = log::set_sink([&](log::level lvl, std::string_view line) {
    got.push_back(std::to_string(static_cast<int>(lvl)) + ":" +
                  std::string{line});
  });
  CHECK_FALSE(prev); // stderr was in use
  log::set_level(log::level::warning);
  log::warning("drop ", 3);
  log::debug("not enabled");
  log::error("boom");
  auto mine = log::set_sink({});
  REQUIRE(mine); // the sink installed above comes back
  log::set_level(level_before);
  CHECK(got == std::vector<std::string>{"2:drop 3", "1:boom"});
}

TEST_CASE("log: log_capture nests, filters by its level and restores") {
  log::set_level(log::level::error);
  {
    test::log_capture outer{log::level::warning};
    log::warning("outer one");
    {
      test::log_capture inner{log::level::debug};
      log::debug("inner one");
      CHECK(inner.count("inner one") == 1);
      CHECK(inner.wait_for("inner one"));
    }
    log::debug("dropped: outer level is warning");
    log::warning("outer two");
    CHECK(outer.lines() ==
          std::vector<std::string>{"WARN outer one", "WARN outer two"});
    CHECK_FALSE(outer.wait_for("never", 1, std::chrono::milliseconds(1)));
  }
  CHECK(log::current() == log::level::error);
  CHECK_FALSE(log::set_sink({}));
}
