// runtime/config.hpp: shardwire's options and the CAF defaults it changes,
// parsed the CAF way (--name=value), overridable from the command line.
#include "runtime/config.hpp"

#include <catch2/catch.hpp>

#include <caf/settings.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

using namespace shardwire;
using namespace std::chrono_literals;

namespace {

// Parses `args` (without the program name) into `cfg`.
std::optional<int> parse(runtime_config& cfg, std::vector<std::string> args) {
  std::vector<char*> argv;
  std::string prog = "config_test";
  argv.push_back(prog.data());
  for (auto& a : args)
    argv.push_back(a.data());
  return parse_args(cfg, static_cast<int>(argv.size()), argv.data());
}

caf::timespan relaxed_sleep(const runtime_config& cfg) {
  return caf::get_or(cfg, "work-stealing.relaxed-sleep-duration",
                     caf::timespan{0});
}

} // namespace

TEST_CASE("idle CAF workers sleep 100 ms between steal attempts by default") {
  runtime_config cfg;
  REQUIRE_FALSE(parse(cfg, {}));
  CHECK(relaxed_sleep(cfg) == caf::timespan{100ms});
}

TEST_CASE("CAF's own options still override shardwire's defaults") {
  runtime_config cfg;
  REQUIRE_FALSE(parse(cfg, {"--work-stealing.relaxed-sleep-duration=10ms",
                            "--scheduler.max-threads=3"}));
  CHECK(relaxed_sleep(cfg) == caf::timespan{10ms});
  CHECK(caf::get_or(cfg, "scheduler.max-threads", size_t{0}) == 3);
}

TEST_CASE("shardwire options parse in CAF's --name=value and -x forms") {
  runtime_config cfg;
  REQUIRE_FALSE(parse(
      cfg, {"-s", "3", "--shardwire.max-throughput=8", "--log-level=error"}));
  CHECK(cfg.shards == 3);
  CHECK(cfg.effective_shards() == 3);
  CHECK(cfg.max_throughput == 8);
  CHECK(cfg.log_level == "error");
}

TEST_CASE("a bad option is an error, --help is a clean exit") {
  runtime_config bad;
  CHECK(parse(bad, {"--shardwire.max-throughput=lots"}) == 1);
  runtime_config help;
  CHECK(parse(help, {"--help"}) == 0);
}
