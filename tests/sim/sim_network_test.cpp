// sim/network.hpp: the same protocol over real TCP and the
// simulated network, virtual time, determinism of the trace.
#include "sim/network.hpp"

#include "tests/support/fixtures.hpp"
#include "tests/sim/sim_support.hpp"
#include "transports/tcp.hpp"

#include <caf/send.hpp>

#include <chrono>
#include <optional>

using namespace shardwire;
using namespace std::chrono_literals;

namespace {

// The client's view of an echo exchange: `count` pings through an echo
// server (the fixture's recorder protocol with echo on).
std::vector<std::string>
sim_echo(uint64_t seed, int count, std::chrono::milliseconds interval,
         const std::function<void(sim::network&)>& faults = {},
         std::string* trace = nullptr,
         std::optional<bool> fast_path = std::nullopt) {
  sim::network_options opts;
  opts.fast_path = fast_path;
  sim::network net{seed, opts};
  net.add_host("client");
  net.add_host("server");
  if (faults) faults(net);
  auto server_log = std::make_shared<test::event_log>();
  REQUIRE(!net.listen("server", 7, test::recorder(server_log, {false, true})));
  auto log = std::make_shared<test::event_log>();
  auto conn = net.create_connection({"client", "server", 7},
                                    test::pinger({log, count, interval}));
  REQUIRE(conn);
  CHECK(conn->info.kind == "tcp");
  CHECK(conn->info.peername.host == net.address_of("server").host);
  CHECK(conn->info.peername.port == 7);
  CHECK(net.run_until([&] { return log->count("lost", true) == 1; }, 1h));
  if (trace) *trace = net.trace_text();
  return log->events();
}

std::vector<std::string> expected_pings(int count) {
  std::vector<std::string> out{"connected"};
  for (int i = 0; i < count; ++i)
    out.push_back("echo:ping " + std::to_string(i));
  out.push_back("lost");
  return out;
}

} // namespace

TEST_CASE("one protocol runs unchanged over real TCP and the simulator") {
  // Real sockets.
  std::vector<std::string> over_tcp;
  {
    test::runtime_fixture fx;
    auto server_log = std::make_shared<test::event_log>();
    auto srv =
        create_server(*fx.rt, test::recorder(server_log, {false, true}), {});
    REQUIRE(srv);
    auto log = std::make_shared<test::event_log>();
    connect_options opts;
    opts.port = srv->sockets.at(0).port;
    auto conn = create_connection(*fx.rt, opts, test::pinger({log, 5, 0ms}));
    REQUIRE(conn);
    REQUIRE(log->wait_for_event("lost", true));
    over_tcp = log->events();
    caf::anon_send(srv->actor, shardwire::close{});
  }
  // Simulated network, same protocol factories.
  auto over_sim = sim_echo(1, 5, 0ms);
  CHECK(over_tcp == expected_pings(5));
  CHECK(over_sim == over_tcp);
}

TEST_CASE("virtual time: ten minutes of timed traffic take a fraction of "
          "that") {
  auto start = std::chrono::steady_clock::now();
  std::string trace;
  auto events = sim_echo(2, 600, 1000ms, {}, &trace);
  auto wall = std::chrono::steady_clock::now() - start;
  CHECK(events == expected_pings(600));
  // 600 pings, one per virtual second.
  CHECK(trace.find("[600") != std::string::npos);
  // A clock that really waited would take 600 s; the bound leaves room for
  // a sanitizer build on a loaded machine (a few ms in a release build).
  CHECK(wall < 30s);
}

TEST_CASE("the same seed gives the same trace byte for byte") {
  auto faults = [](sim::network& net) {
    sim::link_faults f;
    f.latency = 5ms;
    f.jitter = 3ms;
    f.distribution = sim::jitter_distribution::exponential;
    f.slice_max = 3;
    net.set_all_links(f);
  };
  for (uint64_t seed : {7u, 8u}) {
    CAPTURE(seed);
    std::string a, b, c;
    auto ev1 = sim_echo(seed, 20, 0ms, faults, &a);
    auto ev2 = sim_echo(seed, 20, 0ms, faults, &b);
    sim_echo(seed + 100, 20, 0ms, faults, &c);
    CHECK(ev1 == expected_pings(20));
    CHECK(ev1 == ev2);
    CHECK(a == b);
    CHECK(a != c); // another seed slices and delays differently
    CHECK(a.size() > 1000);
  }
}

TEST_CASE("a network destroyed with delayed messages still pending ends "
          "cleanly") {
  // The pinger's next write waits in the virtual clock when the network
  // goes away: the actor system must be gone before the simulated hosts'
  // shards are freed, or that message is delivered to a freed shard
  // (heap-use-after-free under ASan, found by netsim_demo --requests=0).
  auto log = std::make_shared<test::event_log>();
  {
    sim::network net{7};
    net.add_host("client");
    net.add_host("server");
    auto server_log = std::make_shared<test::event_log>();
    REQUIRE(!net.listen("server", 7, test::recorder(server_log, {false, true})));
    auto conn = net.create_connection({"client", "server", 7},
                                      test::pinger({log, 1000, 1s}));
    REQUIRE(conn);
    net.run_for(2500ms);
    CHECK(log->count("echo:", true) >= 2);
    CHECK(log->count("lost", true) == 0);
  }
  CHECK(log->count("lost", true) == 1);
}

TEST_CASE("a seed replays byte for byte with the fast path on and off") {
  // The simulator runs the production stream transport (transport core),
  // so both delivery modes of the runtime are exercised under faults.
  auto faults = [](sim::network& net) {
    sim::link_faults f;
    f.latency = 2ms;
    f.jitter = 2ms;
    f.slice_max = 5;
    net.set_all_links(f);
  };
  for (bool fast : {true, false}) {
    CAPTURE(fast);
    std::string a, b;
    auto ev1 = sim_echo(11, 30, 0ms, faults, &a, fast);
    auto ev2 = sim_echo(11, 30, 0ms, faults, &b, fast);
    CHECK(ev1 == expected_pings(30));
    CHECK(ev1 == ev2);
    CHECK(a == b);
  }
}
