// runtime/config.hpp: shardwire's options and the CAF defaults it changes,
// parsed the CAF way (--name=value), overridable from the command line.
#include "runtime/config.hpp"

#include <catch2/catch.hpp>

#include <caf/settings.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <iostream>
#include <optional>
#include <sstream>
#include <sys/resource.h>
#include <thread>
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

// Runs `parse` with std::cout and std::cerr captured.
struct captured {
  std::optional<int> rc;
  std::string out;
  std::string err;
};

captured parse_captured(runtime_config& cfg, std::vector<std::string> args,
                        const std::function<bool()>& validate = {}) {
  std::ostringstream out;
  std::ostringstream err;
  auto* old_out = std::cout.rdbuf(out.rdbuf());
  auto* old_err = std::cerr.rdbuf(err.rdbuf());
  std::vector<char*> argv;
  std::string prog = "config_test";
  argv.push_back(prog.data());
  for (auto& a : args)
    argv.push_back(a.data());
  auto rc = parse_args(cfg, static_cast<int>(argv.size()), argv.data(),
                       validate);
  std::cout.rdbuf(old_out);
  std::cerr.rdbuf(old_err);
  return {rc, out.str(), err.str()};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
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

TEST_CASE("--help prints CAF's help text on stderr and exits 0") {
  runtime_config cfg;
  auto r = parse_captured(cfg, {"--help"});
  CHECK(r.rc == 0);
  CHECK(r.out.empty());
  CHECK(contains(r.err, "--shards"));
}

TEST_CASE("a stray positional argument is refused, not dropped") {
  runtime_config cfg;
  auto r = parse_captured(cfg, {"18997"});
  CHECK(r.rc == 1);
  CHECK(contains(r.err, "error: unexpected argument '18997'"));
}

TEST_CASE("CAF's parser errors become messages that name the option") {
  runtime_config cfg;
  SECTION("garbage") {
    auto r = parse_captured(cfg, {"--shards=abc"});
    CHECK(r.rc == 1);
    CHECK(contains(r.err, "error: --shards: 'abc'"));
  }
  SECTION("unknown option") {
    auto r = parse_captured(cfg, {"--no-such-thing=1"});
    CHECK(r.rc == 1);
    CHECK(contains(r.err, "error: --no-such-thing: unknown option"));
  }
  SECTION("empty value") {
    auto r = parse_captured(cfg, {"--shardwire.read-chunk-size="});
    CHECK(r.rc == 1);
    CHECK(contains(r.err, "error: --shardwire.read-chunk-size: needs a value"));
  }
  SECTION("a short option with no value") {
    auto r = parse_captured(cfg, {"-s"});
    CHECK(r.rc == 1);
    CHECK(contains(r.err, "error: --shards: needs a value"));
  }
}

TEST_CASE("an unsigned option's wrapped-around maximum is refused") {
  // CAF 0.17 reads 2^64-1 as -1 and silently keeps the default.
  runtime_config cfg;
  auto r = parse_captured(cfg, {"--shards=18446744073709551615"});
  CHECK(r.rc == 1);
  CHECK(contains(r.err, "error: --shards:"));
}

TEST_CASE("the shard count is bounded by the machine and the fd limit") {
  auto bound = max_shards();
  CHECK(bound >= 1);
  CHECK(bound <= 16 * std::max(1u, std::thread::hardware_concurrency()));
  {
    runtime_config cfg;
    auto r = parse_captured(cfg, {"--shards=" + std::to_string(bound)});
    CHECK_FALSE(r.rc);
  }
  {
    runtime_config cfg;
    auto r = parse_captured(cfg, {"--shards=" + std::to_string(bound + 1)});
    CHECK(r.rc == 1);
    CHECK(contains(r.err, "error: --shards: " + std::to_string(bound + 1)));
    CHECK(contains(r.err, "accepted 1 to " + std::to_string(bound)));
  }
  // A lower descriptor limit lowers the bound.
  rlimit saved{};
  ::getrlimit(RLIMIT_NOFILE, &saved);
  rlimit low = saved;
  low.rlim_cur = 128;
  ::setrlimit(RLIMIT_NOFILE, &low);
  auto low_bound = max_shards();
  ::setrlimit(RLIMIT_NOFILE, &saved);
  CHECK(low_bound == 2);
}

TEST_CASE("an unknown log level is refused") {
  runtime_config cfg;
  auto r = parse_captured(cfg, {"--log-level=bogus"});
  CHECK(r.rc == 1);
  CHECK(contains(r.err, "error: --log-level: 'bogus'"));
}

TEST_CASE("--metrics takes HOST:PORT with a host, or nothing") {
  for (auto bad : {"9100", "localhost", ":9100", "127.0.0.1:65536",
                   "127.0.0.1:x", "::1:9100"}) {
    runtime_config cfg;
    auto r = parse_captured(cfg, {std::string{"--metrics="} + bad});
    INFO(bad);
    CHECK(r.rc == 1);
    CHECK(contains(r.err, "error: --metrics: '"));
  }
  for (auto good : {"127.0.0.1:0", "localhost:9100", "[::1]:65535"}) {
    runtime_config cfg;
    auto r = parse_captured(cfg, {std::string{"--metrics="} + good});
    INFO(good);
    CHECK_FALSE(r.rc);
    CHECK(cfg.metrics == good);
  }
  runtime_config off;
  CHECK_FALSE(parse_captured(off, {}).rc);
  CHECK(off.metrics.empty());
  CHECK(refuse_metrics_option(off));
}

TEST_CASE("read-low-water above read-high-water is refused") {
  runtime_config cfg;
  auto r = parse_captured(cfg, {"--shardwire.read-high-water=1000",
                                "--shardwire.read-low-water=2000"});
  CHECK(r.rc == 1);
  CHECK(contains(r.err, "error: --shardwire.read-low-water: 2000 is above"));
}

TEST_CASE("every problem is reported in one run, the program's own too") {
  runtime_config cfg;
  bool called = false;
  auto r = parse_captured(cfg, {"--log-level=loud", "--shardwire.max-throughput=0"},
                          [&] {
                            called = true;
                            return check_option(false, "port", "must be > 0");
                          });
  CHECK(r.rc == 1);
  CHECK(called);
  CHECK(contains(r.err, "error: --log-level:"));
  CHECK(contains(r.err, "error: --shardwire.max-throughput: 0 is out of range"));
  CHECK(contains(r.err, "error: --port: must be > 0 (see --help)"));
}

TEST_CASE("a validator that accepts lets the program continue") {
  runtime_config cfg;
  auto r = parse_captured(cfg, {"--shards=2"}, [] { return true; });
  CHECK_FALSE(r.rc);
  CHECK(r.err.empty());
}

TEST_CASE("a write buffer cap below the default high-water mark is refused") {
  {
    runtime_config cfg;
    auto r = parse_captured(cfg, {"--shardwire.write-buffer-cap=1000"});
    CHECK(r.rc == 1);
    CHECK(contains(r.err, "error: --shardwire.write-buffer-cap: 1000"));
  }
  for (auto ok : {"0", "65536", "1073741824"}) {
    runtime_config cfg;
    auto r = parse_captured(cfg, {std::string{"--shardwire.write-buffer-cap="} + ok});
    CHECK_FALSE(r.rc);
  }
}
