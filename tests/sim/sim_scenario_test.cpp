// sim/scenario.hpp: the test-facing wrapper of the simulated
// network (topology, virtual deadlines, trace queries, failure report,
// seed replay).
#include "sim/scenario.hpp"

#include "tests/support/fixtures.hpp"
#include "tests/sim/sim_support.hpp"

#include <cstdlib>

using namespace shardwire;
using namespace std::chrono_literals;

namespace {

// An echo exchange of `count` pings over a scenario with sliced writes.
std::shared_ptr<test::event_log> run_echo(sim::scenario& sc, int count) {
  auto server_log = std::make_shared<test::event_log>();
  REQUIRE(!sc->listen("server", 7, test::recorder(server_log, {false, true})));
  sc->link("client", "server").slice_max = 3;
  auto log = std::make_shared<test::event_log>();
  auto conn = sc->create_connection({"client", "server", 7},
                                    test::pinger({log, count, 10ms}));
  REQUIRE(conn);
  return log;
}

} // namespace

TEST_CASE("scenario: topology, run until a condition, trace queries") {
  sim::scenario sc{7, {"client", "server"}};
  auto log = run_echo(sc, 5);
  bool done = sc.run_until([&] { return log->count("lost", true) == 1; }, 1min);
  INFO(sc.report()); // captured now, printed only if a check below fails
  REQUIRE(done);
  CHECK(log->count("echo:", true) == 5);
  CHECK(sc.count("client->server") > 0);
  CHECK(sc->fired("slice") > 0);
  // Requests go out before their echoes come back; not the other way.
  CHECK(sc.happened_before("client->server", "server->client"));
  CHECK_FALSE(sc.happened_before("no such event", "client->server"));
  CHECK(sc->unfired().empty());
}

TEST_CASE("scenario: a virtual deadline ends a run that cannot finish") {
  sim::scenario sc{7, {"client", "server"}};
  auto log = run_echo(sc, 3);
  sc->partition({"client"}, {"server"});
  auto start = sc->now();
  CHECK_FALSE(sc.run_until([&] { return log->count("lost", true) == 1; }, 30s));
  CHECK(sc->now() - start <= 30s);
  CHECK(log->count("echo:", true) == 0);
}

TEST_CASE("scenario: the report names the seed, unfired faults and the trace") {
  sim::scenario sc{1234, {"a", "b"}};
  sc->link("a", "b").loss = 0.5; // never used: nothing is sent
  auto r = sc.report();
  CHECK(r.find("seed 1234") != std::string::npos);
  CHECK(r.find("SHARDWIRE_SIM_SEED=1234") != std::string::npos);
  CHECK(r.find("loss a->b") != std::string::npos);
  CHECK(r.find("trace (last") != std::string::npos);
}

TEST_CASE("scenario: SHARDWIRE_SIM_SEED replays a run exactly") {
  std::string first;
  {
    sim::scenario sc{99, {"client", "server"}};
    auto log = run_echo(sc, 3);
    REQUIRE(sc.run_until([&] { return log->count("lost", true) == 1; }));
    first = sc->trace_text();
  }
  ::setenv("SHARDWIRE_SIM_SEED", "99", 1);
  std::string replayed;
  {
    sim::scenario sc{5, {"client", "server"}}; // the environment wins
    CHECK(sc.seed() == 99);
    auto log = run_echo(sc, 3);
    REQUIRE(sc.run_until([&] { return log->count("lost", true) == 1; }));
    replayed = sc->trace_text();
  }
  ::unsetenv("SHARDWIRE_SIM_SEED");
  CHECK(replayed == first);
  CHECK(sim::scenario::seed_from_env(3) == 3);
}
