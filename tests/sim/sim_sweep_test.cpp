// sim/sweep.hpp: seed sets, parallel sweeps of simulated scenarios, the
// lowest failing seed whatever the thread timing, determinism mode, time
// limits and the replay command.
#include "sim/sweep.hpp"

#include "sim/scenario.hpp"
#include "tests/sim/sim_support.hpp"
#include "tests/support/fixtures.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

using namespace shardwire;
using namespace std::chrono_literals;

namespace {

std::string last_line(const std::string& text) {
  auto end = text.size();
  if (end > 0 && text[end - 1] == '\n') --end;
  auto begin = text.rfind('\n', end == 0 ? 0 : end - 1);
  begin = begin == std::string::npos ? 0 : begin + 1;
  return text.substr(begin, end - begin);
}

sim::seed_set parse_ok(std::string_view spec) {
  std::string error;
  auto s = sim::seed_set::parse(spec, error);
  INFO(spec << ": " << error);
  REQUIRE(s);
  CHECK(error.empty());
  return *s;
}

std::string parse_error(std::string_view spec) {
  std::string error;
  auto s = sim::seed_set::parse(spec, error);
  INFO(spec);
  CHECK_FALSE(s);
  CHECK_FALSE(error.empty());
  return error;
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// A real simulated run, on the calling (worker) thread: five pings echoed
// over a link that slices every write and adds random latency. No Catch2
// macros in here: it runs on the sweep's threads.
sim::seed_outcome echo_run(uint64_t seed) {
  sim::scenario sc{seed, {"client", "server"}};
  auto server_log = std::make_shared<test::event_log>();
  if (sc->listen("server", 7, test::recorder(server_log, {false, true})))
    return {false, {}, "listen failed"};
  auto& f = sc->link("client", "server");
  f.slice_max = 3;
  f.latency = 1ms;
  f.jitter = 2ms;
  auto log = std::make_shared<test::event_log>();
  auto conn = sc->create_connection({"client", "server", 7},
                                    test::pinger({log, 5, 10ms}));
  if (!conn) return {false, sc->trace_text(), "connect failed"};
  bool done = sc.run_until([&] { return log->count("lost", true) == 1; }, 1min);
  bool ok = done && log->count("echo:", true) == 5 && sc->fired("slice") > 0;
  return {ok, sc->trace_text(), ok ? "" : sc.report()};
}

sim::sweep_options options(sim::seed_set seeds, unsigned jobs) {
  sim::sweep_options o;
  o.seeds = std::move(seeds);
  o.jobs = jobs;
  return o;
}

} // namespace

TEST_CASE("seed_set: ranges, single seeds and random draws") {
  auto r = parse_ok("1-200");
  CHECK(r.size() == 200);
  CHECK(r[0] == 1);
  CHECK(r[199] == 200);
  CHECK(r.text() == "1-200");

  auto one = parse_ok("7");
  CHECK(one.size() == 1);
  CHECK(one[0] == 7);
  CHECK(one.text() == "7");
  CHECK(parse_ok("0-0").text() == "0");
  CHECK(parse_ok("18446744073709551615")[0] == 18446744073709551615ull);
  auto top = parse_ok("18446744073709551606-18446744073709551615");
  CHECK(top.size() == 10);
  CHECK(top[9] == 18446744073709551615ull);
  CHECK(parse_ok("1-10000000").size() == sim::seed_set::max_size);

  auto rnd = parse_ok("random:50@1234");
  CHECK(rnd.size() == 50);
  CHECK(rnd.text() == "random:50@1234");
  for (size_t i = 0; i < rnd.size(); ++i) {
    CHECK(rnd[i] < (uint64_t{1} << 32));
    if (i > 0) CHECK(rnd[i - 1] < rnd[i]); // ascending, distinct
  }
  auto again = sim::seed_set::random(50, 1234); // same base, same seeds
  for (size_t i = 0; i < rnd.size(); ++i)
    CHECK(again[i] == rnd[i]);
  auto other = sim::seed_set::random(50, 1235);
  CHECK(other[0] != rnd[0]);
  // Without a base one is drawn, and the text names it so the sweep can be
  // repeated.
  auto drawn = parse_ok("random:5");
  CHECK(drawn.size() == 5);
  REQUIRE(drawn.text().rfind("random:5@", 0) == 0);
  auto redo = parse_ok(drawn.text());
  CHECK(redo[0] == drawn[0]);
  CHECK(redo[4] == drawn[4]);

  CHECK(sim::seed_set{}.empty());
  CHECK(sim::seed_set::single(3).text() == "3");
  CHECK_THROWS_AS(sim::seed_set::range(5, 3), std::invalid_argument);
  CHECK_THROWS_AS(sim::seed_set::range(0, sim::seed_set::max_size),
                  std::invalid_argument);
  CHECK_THROWS_AS(sim::seed_set::random(0, 1), std::invalid_argument);
}

TEST_CASE("seed_set: a bad spec is refused, saying what is wrong") {
  CHECK(contains(parse_error(""), "empty"));
  CHECK(contains(parse_error("abc"), "not a number"));
  CHECK(contains(parse_error(" 5"), "not a number"));
  CHECK(contains(parse_error("+5"), "not a number"));
  CHECK(contains(parse_error("-5"), "first seed of A-B is missing"));
  CHECK(contains(parse_error("5-"), "last seed of A-B is missing"));
  CHECK(contains(parse_error("1-2-3"), "'2-3' is not a number"));
  CHECK(contains(parse_error("5-3"), "first seed is above the last"));
  CHECK(contains(parse_error("18446744073709551616"), "too large"));
  CHECK(contains(parse_error("1-18446744073709551616"), "too large"));
  CHECK(contains(parse_error("0-10000000"), "too many"));
  CHECK(contains(parse_error("random:0"), "random:0"));
  CHECK(contains(parse_error("random:"), "count N of random:N is missing"));
  CHECK(contains(parse_error("random:x"), "not a number"));
  CHECK(contains(parse_error("random:10000001"), "too many"));
  CHECK(contains(parse_error("random:5@"), "base of random:N@BASE"));
  CHECK(contains(parse_error("random:5@-1"), "not a number"));
}

TEST_CASE("sweep: a real simulated scenario passes on every seed") {
  auto o = options(sim::seed_set::range(1, 60), 2);
  std::atomic<size_t> traced{0};
  auto r = sim::sweep(o, [&](uint64_t seed) {
    auto out = echo_run(seed);
    if (contains(out.trace, "deliver client->server")) ++traced;
    return out;
  });
  INFO(r.summary());
  CHECK(r.passed());
  CHECK(r.complete());
  CHECK(r.jobs == 2);
  CHECK(r.seeds_run == 60);
  CHECK(r.seeds_passed == 60);
  CHECK(traced == 60); // each seed really ran a simulation
  CHECK_FALSE(r.first_failure);
  CHECK_FALSE(r.timed_out);
  CHECK(last_line(r.summary()) == "passed: 60 of 60 seeds");
}

TEST_CASE("sweep: the lowest failing seed is reported, whatever the timing") {
  auto fails = [](uint64_t seed) { return seed % 37 == 5; };
  for (unsigned jobs : {1u, 4u}) {
    INFO("jobs " << jobs);
    std::mutex mtx;
    std::condition_variable cv;
    bool higher_failed = false;
    std::set<uint64_t> ran;
    auto o = options(sim::seed_set::range(1, 200), jobs);
    auto r = sim::sweep(o, [&](uint64_t seed) {
      {
        std::unique_lock<std::mutex> lock{mtx};
        ran.insert(seed);
        // With several threads, seed 5 finishes only after seed 42 has
        // failed, so the lowest failure is not the first one found.
        if (jobs > 1 && seed == 5)
          cv.wait_for(lock, 10s, [&] { return higher_failed; });
        if (seed == 42) {
          higher_failed = true;
          cv.notify_all();
        }
      }
      return sim::seed_outcome{
          !fails(seed), {}, "seed " + std::to_string(seed) + " is bad"};
    });
    INFO(r.summary());
    CHECK_FALSE(r.passed());
    REQUIRE(r.first_failure);
    CHECK(r.first_failure->seed == 5);
    CHECK(r.first_failure->message == "seed 5 is bad");
    CHECK(contains(r.first_failure->replay, "SHARDWIRE_SIM_SEED=5 "));
    CHECK(contains(r.first_failure->replay, "sim_sweep_test"));
    for (uint64_t s = 1; s <= 5; ++s)
      CHECK(ran.count(s) == 1); // everything below the failure ran
    CHECK(r.stopped_at_failure);
    CHECK(r.not_run > 0);
    CHECK(r.seeds_run + r.not_run == 200);
    if (jobs == 1) {
      CHECK(r.seeds_run == 5);
      CHECK(r.seeds_failed == 1);
    } else {
      CHECK(r.seeds_failed >= 2); // 42 failed too, and did not win
    }
    auto summary = r.summary();
    CHECK(contains(summary, "seed 5 failed"));
    CHECK(contains(summary, "  seed 5 is bad\n"));
    CHECK(contains(summary, "not run: the sweep stops at the first failure"));
    CHECK(contains(last_line(summary), "first failing seed 5 (replay: "));
  }
}

TEST_CASE("sweep: without stopping, every seed runs and failures are counted") {
  auto o = options(sim::seed_set::range(1, 200), 3);
  o.stop_at_first_failure = false;
  o.replay_command = [](uint64_t seed) {
    return "my_test --seed=" + std::to_string(seed);
  };
  auto r = sim::sweep(o, [](uint64_t seed) {
    return sim::seed_outcome{seed % 37 != 5, {}, "bad"};
  });
  INFO(r.summary());
  CHECK(r.complete());
  CHECK(r.seeds_run == 200);
  CHECK(r.seeds_failed == 6); // 5, 42, 79, 116, 153, 190
  CHECK(r.seeds_passed == 194);
  REQUIRE(r.first_failure);
  CHECK(r.first_failure->seed == 5);
  CHECK(r.first_failure->replay == "my_test --seed=5");
  CHECK(last_line(r.summary()) == "passed: 194 of 200 seeds, first failing "
                                  "seed 5 (replay: my_test --seed=5)");
}

TEST_CASE("sweep: a scenario that throws fails its seed, not the sweep") {
  auto o = options(sim::seed_set::range(1, 10), 2);
  auto r = sim::sweep(o, [](uint64_t seed) -> sim::seed_outcome {
    if (seed == 3) throw std::runtime_error("boom at 3");
    if (seed == 6) throw 42;
    return {true, {}, {}};
  });
  REQUIRE(r.first_failure);
  CHECK(r.first_failure->seed == 3);
  CHECK(r.first_failure->message == "exception: boom at 3");

  o.seeds = sim::seed_set::range(4, 10);
  auto r2 = sim::sweep(o, [](uint64_t seed) -> sim::seed_outcome {
    if (seed == 6) throw 42;
    return {true, {}, {}};
  });
  REQUIRE(r2.first_failure);
  CHECK(r2.first_failure->seed == 6);
  CHECK(r2.first_failure->message == "exception of unknown type");
}

TEST_CASE("sweep: determinism mode compares the two runs of each seed") {
  SECTION("a real simulation replays byte for byte") {
    auto o = options(sim::seed_set::range(100, 119), 2);
    o.determinism = true;
    std::atomic<size_t> calls{0};
    auto r = sim::sweep(o, [&](uint64_t seed) {
      ++calls;
      return echo_run(seed);
    });
    INFO(r.summary());
    CHECK(r.passed());
    CHECK(r.seeds_passed == 20);
    CHECK(calls == 40);
    CHECK(contains(r.summary(), "each seed run twice"));
  }
  SECTION("a trace that depends on something besides the seed is caught") {
    auto o = options(sim::seed_set::range(1, 30), 2);
    o.determinism = true;
    std::atomic<int> counter{0};
    auto r = sim::sweep(o, [&](uint64_t seed) {
      sim::network net{seed};
      net.add_host("a");
      net.note("seed " + std::to_string(seed));
      if (seed >= 12) net.note("counter " + std::to_string(counter++));
      return sim::seed_outcome{true, net.trace_text(), {}};
    });
    INFO(r.summary());
    CHECK_FALSE(r.passed());
    REQUIRE(r.first_failure);
    CHECK(r.first_failure->seed == 12);
    auto& m = r.first_failure->message;
    CHECK(contains(m, "nondeterministic"));
    CHECK(contains(m, "first difference at line 4"));
    CHECK(contains(m, "\n  first run:  ["));
    CHECK(contains(m, "\n  second run: ["));
    CHECK(contains(m, "counter "));
  }
  SECTION("a seed that passes once and fails the second time is caught") {
    auto o = options(sim::seed_set::range(1, 4), 1);
    o.determinism = true;
    int run = 0; // jobs = 1: one worker thread touches it
    auto r = sim::sweep(o, [&](uint64_t) {
      return sim::seed_outcome{run++ % 2 == 0, {}, "flaky"};
    });
    REQUIRE(r.first_failure);
    CHECK(r.first_failure->seed == 1);
    CHECK(r.first_failure->message ==
          "nondeterministic: the first run passed, the second failed: flaky");
  }
}

TEST_CASE("sweep: the time limit stops handing out seeds") {
  // Every run lasts until 200 ms after the sweep began, well past the
  // 20 ms limit: the seeds started in time finish, no other starts.
  auto o = options(sim::seed_set::range(1, 1000), 2);
  o.time_limit = 20ms;
  auto start = std::chrono::steady_clock::now();
  auto r = sim::sweep(o, [&](uint64_t) {
    std::this_thread::sleep_until(start + 200ms); // a slow scenario
    return sim::seed_outcome{true, {}, {}};
  });
  INFO(r.summary());
  CHECK(r.timed_out);
  CHECK_FALSE(r.complete());
  CHECK(r.seeds_run <= 2);
  CHECK(r.seeds_run + r.not_run == 1000);
  CHECK(r.passed() == (r.seeds_run > 0)); // what ran passed
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  CHECK(contains(r.summary(), "not run: the time limit ran out"));
  CHECK(contains(last_line(r.summary()), " of 1000 seeds"));
}

TEST_CASE("sweep: SHARDWIRE_SIM_SEED replays one seed") {
  ::setenv("SHARDWIRE_SIM_SEED", "77", 1);
  auto o = options(sim::seed_set::range(1, 10), 2);
  std::mutex mtx;
  std::set<uint64_t> ran;
  auto scenario = [&](uint64_t seed) {
    std::lock_guard<std::mutex> guard{mtx};
    ran.insert(seed);
    return sim::seed_outcome{true, {}, {}};
  };
  auto r = sim::sweep(o, scenario);
  CHECK(r.seed_from_env);
  CHECK(ran == std::set<uint64_t>{77});
  CHECK(r.seeds_total == 1);
  CHECK(contains(r.summary(), "SHARDWIRE_SIM_SEED chose the seed"));
  o.seed_from_env = false;
  ran.clear();
  auto all = sim::sweep(o, scenario);
  ::unsetenv("SHARDWIRE_SIM_SEED");
  CHECK_FALSE(all.seed_from_env);
  CHECK(ran.size() == 10);
}

TEST_CASE("sweep: jobs, an empty seed set, the replay command") {
  auto o = options(sim::seed_set::range(1, 3), 0); // 0: hardware threads
  auto r = sim::sweep(o, [](uint64_t) {
    return sim::seed_outcome{true, {}, {}};
  });
  CHECK(r.jobs >= 1);
  CHECK(r.jobs <= 3); // never more threads than seeds
  CHECK(r.seeds_passed == 3);

  CHECK_THROWS_AS(sim::sweep(sim::sweep_options{},
                             [](uint64_t) { return sim::seed_outcome{}; }),
                  std::invalid_argument);
  // A failure without a message still says something.
  auto f = sim::sweep(options(sim::seed_set::single(9), 1),
                      [](uint64_t) { return sim::seed_outcome{}; });
  REQUIRE(f.first_failure);
  CHECK(f.first_failure->message == "failed (no message)");

  CHECK(sim::shell_quote("plain-arg_1.x=2") == "plain-arg_1.x=2");
  CHECK(sim::shell_quote("two words") == "'two words'");
  CHECK(sim::shell_quote("it's") == "'it'\\''s'");
  CHECK(sim::shell_quote("") == "''");
  auto cmd = sim::default_replay_command(12);
  CHECK(cmd.rfind("SHARDWIRE_SIM_SEED=12 ", 0) == 0);
  CHECK(contains(cmd, "sim_sweep_test"));
}
