// The supervisor (actors/supervisor.hpp) with ordinary actor children, and
// its pure pieces (actors/supervision/{backoff,intensity,restart}.hpp).
//
// Children are small event-based actors that log to an event_log; the
// supervisor's observer logs its events to another. Tests wait for events
// (deadline-bounded), never sleep; the only real delays are short backoff or
// shutdown timers whose lower bounds are asserted.
#include "actors/supervisor.hpp"

#include "actors/errors.hpp"
#include "tests/support/fixtures.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <atomic>
#include <set>

using namespace shardwire;
using namespace shardwire::test;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

namespace {

using crash_atom = caf::atom_constant<caf::atom("crash")>;
using go_ready_atom = caf::atom_constant<caf::atom("go_ready")>;

std::string reason_str(const caf::error& e) {
  return e ? describe(e) : "normal";
}

// -- test children
// --------------------------------------------------------------

struct worker_opts {
  /// Ignore `user_shutdown` (only `kill` ends it).
  bool ignore_shutdown = false;
};

/// Logs "stop:<id>:<reason>" before it quits on an exit message (so the log
/// order is the stop order), "ignored:<id>" when it ignores one, and
/// "down:<id>:<reason>" when it is gone for any reason (kill included).
caf::behavior worker(caf::event_based_actor* self, event_log_ptr log,
                     std::string id, worker_opts opts, caf::actor sup) {
  self->attach_functor([log, id](const caf::error& reason) {
    log->add("down:" + id + ":" + reason_str(reason));
  });
  self->set_exit_handler([self, log, id, opts](caf::exit_msg& msg) {
    if (opts.ignore_shutdown) {
      log->add("ignored:" + id);
      return;
    }
    log->add("stop:" + id + ":" + reason_str(msg.reason));
    self->quit(msg.reason);
  });
  return {
      [self, log, id](crash_atom, caf::error& reason) {
        log->add("crash:" + id);
        self->quit(reason);
      },
      [self, id, sup](go_ready_atom) { self->send(sup, child_ready{id}); },
  };
}

/// A child spec whose start logs "start:<id>[:<arg>]" (inside the
/// supervisor, so the log order is the start order) and spawns a worker.
child_spec worker_spec(std::string id, event_log_ptr log,
                       restart_type restart = restart_type::permanent,
                       worker_opts opts = {}) {
  child_spec cs;
  cs.id = id;
  cs.restart = restart;
  cs.shutdown = shutdown_policy::after(std::chrono::seconds(5));
  cs.start = [log, opts](child_context& ctx) -> caf::expected<caf::actor> {
    std::string ev = "start:" + ctx.id;
    if (ctx.arg.match_elements<std::string>())
      ev += ":" + ctx.arg.get_as<std::string>(0);
    log->add(ev);
    return ctx.system.spawn(worker, log, ctx.id, opts, ctx.supervisor);
  };
  return cs;
}

/// Logs the supervisor's events: "started:<id>", "exited:<id>:<reason>",
/// "stopped:<id>:<reason>" (requested), "restarting:<id>:<attempt>:<ns>",
/// "start_failed:<id>:<reason>", "sup_started", "escalated:<reason>".
caf::behavior observer(caf::event_based_actor*, event_log_ptr ev) {
  return {
      [ev](child_started& x) { ev->add("started:" + x.id); },
      [ev](child_exited& x) {
        ev->add((x.requested ? "stopped:" : "exited:") + x.id + ":" +
                reason_str(x.reason));
      },
      [ev](child_restarting& x) {
        ev->add("restarting:" + x.id + ":" + std::to_string(x.attempt) + ":" +
                std::to_string(x.delay.count()));
      },
      [ev](child_start_failed& x) {
        ev->add("start_failed:" + x.id + ":" + reason_str(x.reason));
      },
      [ev](supervisor_started&) { ev->add("sup_started"); },
      [ev](escalated& x) { ev->add("escalated:" + reason_str(x.reason)); },
  };
}

/// A clock the test moves by hand (intensity periods, backoff resets).
struct fake_clock {
  std::atomic<int64_t> ns{1'000'000'000};
  std::chrono::steady_clock::time_point now() const {
    return std::chrono::steady_clock::time_point{nanoseconds{ns.load()}};
  }
  void advance(milliseconds d) { ns += nanoseconds{d}.count(); }
};

/// Everything one supervisor test needs.
struct sup_fixture : runtime_fixture {
  event_log_ptr log = std::make_shared<event_log>();
  event_log_ptr ev = std::make_shared<event_log>();
  std::shared_ptr<fake_clock> clk = std::make_shared<fake_clock>();
  caf::actor obs;

  sup_fixture() { obs = rt->system().spawn(observer, ev); }

  ~sup_fixture() { caf::anon_send_exit(obs, caf::exit_reason::user_shutdown); }

  /// A spec with the observer, the fake clock, a fixed seed and no backoff.
  supervisor_spec spec(supervision_strategy strategy,
                       std::vector<child_spec> children) {
    supervisor_spec s;
    s.strategy = strategy;
    s.children = std::move(children);
    s.observer = obs;
    s.seed = 42;
    s.backoff = backoff_policy::none();
    s.intensity = {10, milliseconds{60'000}};
    auto c = clk;
    s.clock = [c] { return c->now(); };
    return s;
  }

  caf::actor spawn(supervisor_spec s) {
    auto sup = spawn_supervisor(rt->system(), std::move(s));
    REQUIRE(sup);
    return *sup;
  }

  /// Spawns and waits until the initial children are started.
  caf::actor start(supervisor_spec s) {
    auto sup = spawn(std::move(s));
    auto kids = ask<std::vector<child_info>>(*rt, sup, await_started{});
    REQUIRE(kids);
    return sup;
  }

  std::vector<child_info> children(const caf::actor& sup) {
    auto kids = ask<std::vector<child_info>>(*rt, sup, which_children{});
    REQUIRE(kids);
    return *kids;
  }

  caf::actor child(const caf::actor& sup, const std::string& id) {
    for (auto& c : children(sup))
      if (c.id == id) return c.handle;
    return {};
  }

  void crash(const caf::actor& sup, const std::string& id,
             caf::error reason = caf::sec::runtime_error) {
    auto h = child(sup, id);
    REQUIRE(h);
    caf::anon_send(h, crash_atom::value, std::move(reason));
  }

  /// Asks the supervisor to shut down and returns its exit reason.
  caf::error stop(const caf::actor& sup) {
    caf::scoped_actor self{rt->system()};
    self->monitor(sup);
    self->send_exit(sup, caf::exit_reason::user_shutdown);
    return wait_down(self, sup);
  }

  /// Waits (deadline-bounded) for the down message of `sup`.
  static caf::error wait_down(caf::scoped_actor& self, const caf::actor& sup) {
    caf::error reason = make_error(sw_errc::timeout, "no down message");
    bool done = false;
    while (!done) {
      self->receive(
          [&](caf::down_msg& dm) {
            if (dm.source == sup.address()) {
              reason = dm.reason;
              done = true;
            }
          },
          caf::after(deadline) >> [&] { done = true; });
    }
    return reason;
  }

  /// The log entries that start with one of `prefixes`, in order.
  static std::vector<std::string>
  filter(const std::vector<std::string>& evs,
         std::initializer_list<std::string> prefixes) {
    std::vector<std::string> out;
    for (auto& e : evs)
      for (auto& p : prefixes)
        if (e.rfind(p, 0) == 0) {
          out.push_back(e);
          break;
        }
    return out;
  }

  bool wait_count(const event_log_ptr& l, const std::string& prefix, size_t n) {
    return l->wait_for([&](const std::vector<std::string>& evs) {
      size_t k = 0;
      for (auto& e : evs)
        if (e.rfind(prefix, 0) == 0) ++k;
      return k >= n;
    });
  }
};

using strings = std::vector<std::string>;

const std::string user_shutdown_str =
    describe(caf::error{caf::exit_reason::user_shutdown});

} // namespace

// -- pure pieces
// ----------------------------------------------------------------

TEST_CASE("backoff: min(max, base * 2^k), jitter within (raw*(1-j), raw]") {
  backoff_policy p;
  p.base = milliseconds{10};
  p.max = milliseconds{100};
  p.jitter = 0.0;
  CHECK(backoff_raw_delay(p, 0) == milliseconds{10});
  CHECK(backoff_raw_delay(p, 1) == milliseconds{20});
  CHECK(backoff_raw_delay(p, 3) == milliseconds{80});
  CHECK(backoff_raw_delay(p, 4) == milliseconds{100});
  CHECK(backoff_raw_delay(p, 1000) == milliseconds{100}); // no overflow
  jitter_rng rng{1};
  CHECK(backoff_delay(p, 2, rng) == milliseconds{40}); // jitter 0: exact
  CHECK(backoff_raw_delay(backoff_policy::none(), 5) == nanoseconds{0});

  p.jitter = 0.5;
  jitter_rng a{7}, b{7}, c{8};
  bool differs = false;
  std::set<int64_t> seen;
  for (uint32_t k = 0; k < 50; ++k) {
    auto raw = backoff_raw_delay(p, k % 6);
    auto da = backoff_delay(p, k % 6, a);
    auto db = backoff_delay(p, k % 6, b);
    auto dc = backoff_delay(p, k % 6, c);
    CHECK(da == db); // same seed, same delays
    differs = differs || da != dc;
    CHECK(da <= raw);
    CHECK(da.count() > static_cast<int64_t>(raw.count() * 0.5));
    seen.insert(da.count());
  }
  CHECK(differs);          // another seed, other delays
  CHECK(seen.size() > 20); // the jitter really varies
}

TEST_CASE("jitter_rng: uniform values in [0, 1)") {
  jitter_rng rng{123};
  double sum = 0;
  for (int i = 0; i < 10'000; ++i) {
    auto u = rng.next_unit();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum += u;
  }
  CHECK(sum / 10'000 == Approx(0.5).margin(0.02));
}

TEST_CASE("restart_tally: at most max_restarts within period") {
  using tp = std::chrono::steady_clock::time_point;
  tp t0{std::chrono::seconds{100}};
  restart_tally t{{2, milliseconds{1000}}};
  CHECK(t.record(t0));
  CHECK(t.record(t0 + milliseconds{10}));
  CHECK_FALSE(t.record(t0 + milliseconds{20})); // third within 1 s
  restart_tally u{{2, milliseconds{1000}}};
  CHECK(u.record(t0));
  CHECK(u.record(t0 + milliseconds{500}));
  CHECK(u.record(t0 + milliseconds{1001})); // the first fell out
  CHECK(u.in_window() == 2);
  CHECK(u.record(t0 + milliseconds{1600}));
  CHECK_FALSE(u.record(t0 + milliseconds{1700}));
  restart_tally none{{0, milliseconds{1000}}};
  CHECK_FALSE(none.record(t0)); // max_restarts 0: no restart at all
}

TEST_CASE("restart decision: permanent, transient, temporary") {
  caf::error normal;
  caf::error shutdown = caf::exit_reason::user_shutdown;
  caf::error killed = caf::exit_reason::kill;
  caf::error failed = caf::sec::runtime_error;
  caf::error app = make_error(sw_errc::closed);
  CHECK(is_normal_exit(normal));
  CHECK(is_normal_exit(caf::error{caf::exit_reason::normal}));
  CHECK(is_normal_exit(shutdown));
  CHECK_FALSE(is_normal_exit(killed));
  CHECK_FALSE(is_normal_exit(failed));
  CHECK_FALSE(is_normal_exit(app));
  for (auto& r : {normal, shutdown, killed, failed, app}) {
    CHECK(should_restart(restart_type::permanent, r));
    CHECK_FALSE(should_restart(restart_type::temporary, r));
    CHECK(should_restart(restart_type::transient, r) == !is_normal_exit(r));
  }
  CHECK(describe(make_error(supervisor_errc::max_restarts_exceeded, "x")) ==
        "supervisor: max_restarts_exceeded (x)");
  CHECK(user_shutdown_str == "exit: user_shutdown");
}

// -- ordering
// -------------------------------------------------------------------

TEST_CASE("supervisor: ordered start, reverse-order stop") {
  sup_fixture f;
  auto sup = f.start(f.spec(supervision_strategy::one_for_one,
                            {worker_spec("a", f.log), worker_spec("b", f.log),
                             worker_spec("c", f.log)}));
  auto kids = f.children(sup);
  REQUIRE(kids.size() == 3);
  for (auto& k : kids)
    CHECK(k.state == child_state::running);
  CHECK(f.ev->wait_for_event("sup_started"));
  auto reason = f.stop(sup);
  CHECK(reason == caf::error{caf::exit_reason::user_shutdown});
  auto evs = f.filter(f.log->events(), {"start:", "stop:"});
  CHECK(evs ==
        strings{"start:a", "start:b", "start:c", "stop:c:" + user_shutdown_str,
                "stop:b:" + user_shutdown_str, "stop:a:" + user_shutdown_str});
  REQUIRE(f.ev->wait_for_event("stopped:a:" + user_shutdown_str));
  CHECK(f.filter(f.ev->events(), {"started:", "stopped:"}) ==
        strings{"started:a", "started:b", "started:c",
                "stopped:c:" + user_shutdown_str,
                "stopped:b:" + user_shutdown_str,
                "stopped:a:" + user_shutdown_str});
}

TEST_CASE("supervisor: readiness gates the start of the next child") {
  sup_fixture f;
  auto a = worker_spec("a", f.log);
  a.readiness = readiness_policy::ready_message(std::chrono::seconds(30));
  auto sup = f.spawn(
      f.spec(supervision_strategy::one_for_one, {a, worker_spec("b", f.log)}));
  REQUIRE(f.log->wait_for_event("start:a"));
  // `a` has not signalled ready: `b` must not be started yet. The query is a
  // message to the supervisor, so its answer reflects every step so far.
  auto kids = f.children(sup);
  REQUIRE(kids.size() == 2);
  CHECK(kids[0].state == child_state::starting);
  CHECK(kids[1].state == child_state::stopped);
  CHECK(f.log->count("start:b") == 0);
  caf::anon_send(kids[0].handle, go_ready_atom::value);
  REQUIRE(f.log->wait_for_event("start:b"));
  REQUIRE(ask<std::vector<child_info>>(*f.rt, sup, await_started{}));
  // Observer events travel on their own: wait for the last one.
  REQUIRE(f.ev->wait_for_event("sup_started"));
  CHECK(f.filter(f.ev->events(), {"started:", "sup_started"}) ==
        strings{"started:a", "started:b", "sup_started"});
  f.stop(sup);
}

TEST_CASE("supervisor: a child that never signals ready fails the start") {
  sup_fixture f;
  auto a = worker_spec("a", f.log);
  a.readiness = readiness_policy::ready_message(milliseconds{30});
  auto t0 = std::chrono::steady_clock::now();
  caf::scoped_actor self{f.rt->system()};
  auto sup = f.spawn(
      f.spec(supervision_strategy::one_for_one, {a, worker_spec("b", f.log)}));
  self->monitor(sup);
  auto reason = sup_fixture::wait_down(self, sup);
  CHECK(std::chrono::steady_clock::now() - t0 >= milliseconds{30});
  CHECK(is(reason, supervisor_errc::start_failed));
  // The failed child was stopped; the next one was never started.
  CHECK(f.log->count("stop:a:" + user_shutdown_str) == 1);
  CHECK(f.log->count("start:b") == 0);
  CHECK(f.ev->wait_for_event("escalated:", true));
  CHECK(f.ev->count("start_failed:a:supervisor: ready_timeout (a)") == 1);
}

TEST_CASE("supervisor: minimum run time as readiness") {
  sup_fixture f;
  auto a = worker_spec("a", f.log);
  a.readiness = readiness_policy::after(milliseconds{20});
  auto t0 = std::chrono::steady_clock::now();
  auto sup = f.start(
      f.spec(supervision_strategy::one_for_one, {a, worker_spec("b", f.log)}));
  // `b` started only after `a` had run for 20 ms.
  CHECK(std::chrono::steady_clock::now() - t0 >= milliseconds{20});
  CHECK(f.filter(f.log->events(), {"start:"}) == strings{"start:a", "start:b"});
  f.stop(sup);
}

TEST_CASE("supervisor: an exit before the minimum run time is a failed "
          "start") {
  {
    sup_fixture g;
    child_spec quick;
    quick.id = "quick";
    quick.readiness = readiness_policy::after(std::chrono::seconds(30));
    quick.start = [](child_context& ctx) -> caf::expected<caf::actor> {
      return ctx.system.spawn([](caf::event_based_actor* self) {
        self->quit(caf::sec::runtime_error);
      });
    };
    caf::scoped_actor self{g.rt->system()};
    auto sup2 = g.spawn(g.spec(supervision_strategy::one_for_one, {quick}));
    self->monitor(sup2);
    CHECK(
        is(sup_fixture::wait_down(self, sup2), supervisor_errc::start_failed));
    CHECK(g.ev->wait_for_event("start_failed:quick:", true));
  }
}

// -- strategies
// -----------------------------------------------------------------

TEST_CASE("supervisor: one_for_one restarts only the failed child") {
  sup_fixture f;
  auto sup = f.start(f.spec(supervision_strategy::one_for_one,
                            {worker_spec("a", f.log), worker_spec("b", f.log),
                             worker_spec("c", f.log)}));
  f.crash(sup, "b");
  REQUIRE(f.wait_count(f.ev, "started:b", 2));
  CHECK(f.log->count("start:a") == 1);
  CHECK(f.log->count("start:b") == 2);
  CHECK(f.log->count("start:c") == 1);
  CHECK(f.log->count("stop:", true) == 0);
  auto kids = f.children(sup);
  CHECK(kids[1].restarts == 1);
  CHECK(kids[1].state == child_state::running);
  CHECK(kids[0].restarts == 0);
  f.stop(sup);
}

TEST_CASE("supervisor: one_for_all stops the others in reverse order and "
          "restarts all in order") {
  sup_fixture f;
  auto sup = f.start(f.spec(supervision_strategy::one_for_all,
                            {worker_spec("a", f.log), worker_spec("b", f.log),
                             worker_spec("c", f.log)}));
  f.crash(sup, "b");
  REQUIRE(f.wait_count(f.ev, "started:c", 2));
  auto evs = f.filter(f.log->events(), {"start:", "stop:", "crash:"});
  CHECK(evs == strings{"start:a", "start:b", "start:c", "crash:b",
                       "stop:c:" + user_shutdown_str,
                       "stop:a:" + user_shutdown_str, "start:a", "start:b",
                       "start:c"});
  f.stop(sup);
}

TEST_CASE("supervisor: rest_for_one restarts the failed child and later "
          "ones") {
  sup_fixture f;
  auto sup =
      f.start(f.spec(supervision_strategy::rest_for_one,
                     {worker_spec("a", f.log), worker_spec("b", f.log),
                      worker_spec("c", f.log), worker_spec("d", f.log)}));
  f.crash(sup, "b");
  REQUIRE(f.wait_count(f.ev, "started:d", 2));
  auto evs = f.filter(f.log->events(), {"start:", "stop:", "crash:"});
  CHECK(evs == strings{"start:a", "start:b", "start:c", "start:d", "crash:b",
                       "stop:d:" + user_shutdown_str,
                       "stop:c:" + user_shutdown_str, "start:b", "start:c",
                       "start:d"});
  CHECK(f.log->count("start:a") == 1);
  f.stop(sup);
}

// -- restart types
// --------------------------------------------------------------

TEST_CASE("supervisor: permanent, transient and temporary children") {
  sup_fixture f;
  auto sup =
      f.start(f.spec(supervision_strategy::one_for_one,
                     {worker_spec("perm", f.log, restart_type::permanent),
                      worker_spec("trans", f.log, restart_type::transient),
                      worker_spec("temp", f.log, restart_type::temporary)}));
  // A normal exit: only the permanent child comes back.
  f.crash(sup, "perm", caf::error{});
  REQUIRE(f.wait_count(f.ev, "started:perm", 2));
  f.crash(sup, "trans", caf::error{});
  REQUIRE(f.ev->wait_for_event("exited:trans:normal"));
  // user_shutdown counts as normal too.
  f.crash(sup, "temp", caf::exit_reason::user_shutdown);
  REQUIRE(f.ev->wait_for_event("exited:temp:" + user_shutdown_str));
  auto kids = f.children(sup);
  CHECK(kids[1].state == child_state::stopped);
  CHECK(kids[2].state == child_state::stopped);
  CHECK(f.log->count("start:trans") == 1);
  CHECK(f.log->count("start:temp") == 1);
  // An abnormal exit: transient is restarted; temporary would not be.
  REQUIRE(ask<caf::actor>(*f.rt, sup, restart_child{"trans"}));
  REQUIRE(ask<caf::actor>(*f.rt, sup, restart_child{"temp"}));
  f.crash(sup, "trans");
  REQUIRE(f.wait_count(f.ev, "started:trans", 3));
  f.crash(sup, "temp");
  REQUIRE(f.wait_count(f.ev, "exited:temp:", 2));
  CHECK(f.children(sup)[2].state == child_state::stopped);
  CHECK(f.log->count("start:temp") == 2); // the restart_child only
  CHECK(f.ev->count("restarting:temp", true) == 0);
  f.stop(sup);
}

// -- intensity and escalation
// ---------------------------------------------------

TEST_CASE("supervisor: too many restarts escalate to the parent") {
  sup_fixture f;
  auto s = f.spec(supervision_strategy::one_for_one,
                  {worker_spec("a", f.log), worker_spec("b", f.log)});
  s.intensity = {2, milliseconds{1000}};
  auto sup = f.start(std::move(s));
  caf::scoped_actor parent{f.rt->system()};
  parent->monitor(sup);
  f.crash(sup, "a");
  REQUIRE(f.wait_count(f.ev, "started:a", 2));
  f.clk->advance(milliseconds{500});
  f.crash(sup, "a");
  REQUIRE(f.wait_count(f.ev, "started:a", 3));
  f.clk->advance(milliseconds{400});
  f.crash(sup, "a"); // the third within 1 s
  auto reason = sup_fixture::wait_down(parent, sup);
  CHECK(is(reason, supervisor_errc::max_restarts_exceeded));
  CHECK(f.ev->wait_for_event("escalated:supervisor: max_restarts_exceeded",
                             true));
  // Every child was stopped before the supervisor quit.
  CHECK(f.log->count("stop:b:" + user_shutdown_str) == 1);
  CHECK(f.log->count("start:a") == 3);
}

TEST_CASE("supervisor: restarts outside the period do not add up") {
  sup_fixture f;
  auto s = f.spec(supervision_strategy::one_for_one, {worker_spec("a", f.log)});
  s.intensity = {1, milliseconds{1000}};
  auto sup = f.start(std::move(s));
  for (size_t i = 2; i <= 4; ++i) {
    f.crash(sup, "a");
    REQUIRE(f.wait_count(f.ev, "started:a", i));
    f.clk->advance(milliseconds{1001});
  }
  CHECK(f.ev->count("escalated:", true) == 0);
  f.stop(sup);
}

TEST_CASE("supervisor: nested supervisors; the inner one escalates to the "
          "outer one, which restarts it") {
  sup_fixture f;
  auto inner = f.spec(supervision_strategy::one_for_one,
                      {worker_spec("x", f.log), worker_spec("y", f.log)});
  inner.intensity = {0, milliseconds{1000}}; // the first failure escalates
  inner.observer = caf::actor{};
  auto outer = f.spec(supervision_strategy::one_for_one,
                      {worker_spec("a", f.log),
                       supervisor_child("inner", std::move(inner)),
                       worker_spec("b", f.log)});
  auto sup = f.start(std::move(outer));
  // Ordered start crosses the nesting: inner's children before b.
  CHECK(f.filter(f.log->events(), {"start:"}) ==
        strings{"start:a", "start:x", "start:y", "start:b"});
  auto inner_sup = f.child(sup, "inner");
  REQUIRE(inner_sup);
  auto x = ask<std::vector<child_info>>(*f.rt, inner_sup, which_children{});
  REQUIRE(x);
  caf::anon_send((*x)[0].handle, crash_atom::value,
                 caf::error{caf::sec::runtime_error});
  REQUIRE(f.wait_count(f.ev, "started:inner", 2));
  CHECK(f.ev->count("exited:inner:supervisor: max_restarts_exceeded", true) ==
        1);
  CHECK(f.log->count("stop:y:" + user_shutdown_str) == 1);
  CHECK(f.log->count("start:x") == 2);
  CHECK(f.log->count("start:a") == 1);
  CHECK(f.log->count("start:b") == 1);
  f.stop(sup);
  // Shutdown went through the nesting in reverse order.
  auto evs = f.filter(f.log->events(), {"stop:"});
  REQUIRE(evs.size() >= 4);
  CHECK(strings(evs.end() - 4, evs.end()) ==
        strings{"stop:b:" + user_shutdown_str, "stop:y:" + user_shutdown_str,
                "stop:x:" + user_shutdown_str, "stop:a:" + user_shutdown_str});
}

// -- backoff
// --------------------------------------------------------------------

TEST_CASE("supervisor: backoff delays grow, are seeded, and reset after a "
          "stable run") {
  sup_fixture f;
  auto s = f.spec(supervision_strategy::one_for_one, {worker_spec("a", f.log)});
  s.backoff.base = milliseconds{4};
  s.backoff.max = milliseconds{20};
  s.backoff.jitter = 0.5;
  s.backoff.reset_after = milliseconds{1000};
  s.seed = 99;
  auto policy = s.backoff;
  auto sup = f.start(std::move(s));
  // The same seed gives the delays the supervisor must report.
  jitter_rng rng{99};
  std::vector<nanoseconds> expected;
  for (uint32_t k = 0; k < 4; ++k)
    expected.push_back(backoff_delay(policy, k, rng));
  expected.push_back(backoff_delay(policy, 0, rng)); // after the reset
  for (size_t i = 0; i < 5; ++i) {
    if (i == 4) f.clk->advance(milliseconds{1000}); // a stable run
    auto t0 = std::chrono::steady_clock::now();
    f.crash(sup, "a");
    REQUIRE(f.wait_count(f.ev, "started:a", i + 2));
    // A real, non-blocking delay: at least the reported one.
    CHECK(std::chrono::steady_clock::now() - t0 >= expected[i]);
  }
  auto evs = f.filter(f.ev->events(), {"restarting:"});
  auto attempt = [](size_t i) { return i < 4 ? i + 1 : 1; };
  REQUIRE(evs.size() == 5);
  for (size_t i = 0; i < 5; ++i)
    CHECK(evs[i] == "restarting:a:" + std::to_string(attempt(i)) + ":" +
                        std::to_string(expected[i].count()));
  // Growth and cap: 4, 8, 16, 20 (capped) ms, each jittered by < 50 %.
  CHECK(expected[0] <= milliseconds{4});
  CHECK(expected[1] > milliseconds{4});
  CHECK(expected[3] <= milliseconds{20});
  CHECK(expected[3] > milliseconds{10});
  CHECK(expected[4] <= milliseconds{4});
  f.stop(sup);
}

// -- pool
// -----------------------------------------------------------------------

TEST_CASE("supervisor: simple_one_for_one pool") {
  sup_fixture f;
  auto tmpl = worker_spec("w", f.log, restart_type::transient);
  auto sup = f.start(f.spec(supervision_strategy::simple_one_for_one, {tmpl}));
  CHECK(f.children(sup).empty());
  std::vector<caf::actor> hs;
  for (auto arg : {"one", "two", "three"}) {
    auto h = ask<caf::actor>(*f.rt, sup,
                             start_child{caf::make_message(std::string{arg})});
    REQUIRE(h);
    hs.push_back(*h);
  }
  CHECK(f.filter(f.log->events(), {"start:"}) ==
        strings{"start:w#1:one", "start:w#2:two", "start:w#3:three"});
  auto counts = ask<child_counts>(*f.rt, sup, count_children{});
  REQUIRE(counts);
  CHECK(counts->specs == 3);
  CHECK(counts->active == 3);
  // A crash restarts that child with the same argument.
  caf::anon_send(hs[1], crash_atom::value, caf::error{caf::sec::runtime_error});
  REQUIRE(f.wait_count(f.ev, "started:w#2", 2));
  CHECK(f.log->count("start:w#2:two") == 2);
  // terminate_child stops it and forgets it.
  auto info = ask<child_info>(*f.rt, sup, terminate_child{hs[0], {}});
  REQUIRE(info);
  CHECK(info->id == "w#1");
  CHECK(f.log->count("stop:w#1:" + user_shutdown_str) == 1);
  // A transient child that ends normally is forgotten too.
  caf::anon_send(hs[2], crash_atom::value, caf::error{});
  REQUIRE(f.ev->wait_for_event("exited:w#3:normal"));
  auto kids = f.children(sup);
  REQUIRE(kids.size() == 1);
  CHECK(kids[0].id == "w#2");
  CHECK(kids[0].restarts == 1);
  CHECK(!ask<child_info>(*f.rt, sup, terminate_child{hs[0], {}}));
  // Static-child requests are refused by a pool and vice versa.
  auto wrong = ask<caf::actor>(*f.rt, sup, restart_child{"w#2"});
  CHECK(is(wrong.error(), supervisor_errc::wrong_strategy));
  f.stop(sup);
  CHECK(f.log->count("stop:w#2:" + user_shutdown_str) == 1);
}

TEST_CASE("supervisor: a pool start that fails answers the requester") {
  sup_fixture f;
  child_spec bad;
  bad.id = "bad";
  bad.start = [](child_context&) -> caf::expected<caf::actor> {
    return make_error(sw_errc::invalid_argument, "no such program");
  };
  auto sup = f.start(f.spec(supervision_strategy::simple_one_for_one, {bad}));
  auto h = ask<caf::actor>(*f.rt, sup, start_child{});
  REQUIRE_FALSE(h);
  CHECK(is(h.error(), sw_errc::invalid_argument));
  CHECK(f.children(sup).empty());
  f.stop(sup);
}

// -- shutdown
// -------------------------------------------------------------------

TEST_CASE("supervisor: a child that ignores user_shutdown is killed after the "
          "timeout") {
  sup_fixture f;
  auto stubborn = worker_spec("stubborn", f.log, restart_type::permanent,
                              worker_opts{true});
  stubborn.shutdown = shutdown_policy::after(milliseconds{50});
  auto sup = f.start(f.spec(supervision_strategy::one_for_one,
                            {worker_spec("a", f.log), stubborn}));
  auto t0 = std::chrono::steady_clock::now();
  f.stop(sup);
  CHECK(std::chrono::steady_clock::now() - t0 >= milliseconds{50});
  // The stubborn child (started last) was asked first, then killed; only
  // then was `a` asked to stop.
  auto evs = f.filter(f.log->events(), {"ignored:", "stop:"});
  CHECK(evs == strings{"ignored:stubborn", "stop:a:" + user_shutdown_str});
  auto killed = describe(caf::error{caf::exit_reason::kill});
  CHECK(f.log->count("down:stubborn:" + killed) == 1);
  CHECK(f.ev->wait_for_event("stopped:stubborn:" + killed));
}

TEST_CASE("supervisor: brutal_kill does not ask first") {
  sup_fixture f;
  auto a = worker_spec("a", f.log);
  a.shutdown = shutdown_policy::kill();
  auto sup = f.start(f.spec(supervision_strategy::one_for_one, {a}));
  f.stop(sup);
  CHECK(f.log->count("stop:a:", true) == 0);
  CHECK(f.log->count("down:a:" +
                     describe(caf::error{caf::exit_reason::kill})) == 1);
}

TEST_CASE("supervisor: a killed supervisor takes its children with it") {
  sup_fixture f;
  auto sup =
      f.start(f.spec(supervision_strategy::one_for_one,
                     {worker_spec("a", f.log), worker_spec("b", f.log)}));
  caf::anon_send_exit(sup, caf::exit_reason::kill);
  CHECK(f.wait_count(f.log, "down:", 2));
}

TEST_CASE("supervisor: a failing start function fails the initial start") {
  sup_fixture f;
  child_spec bad;
  bad.id = "bad";
  bad.start = [](child_context&) -> caf::expected<caf::actor> {
    throw std::runtime_error("boom");
  };
  caf::scoped_actor self{f.rt->system()};
  auto sup =
      f.spawn(f.spec(supervision_strategy::one_for_one,
                     {worker_spec("a", f.log), bad, worker_spec("c", f.log)}));
  self->monitor(sup);
  auto reason = sup_fixture::wait_down(self, sup);
  CHECK(is(reason, supervisor_errc::start_failed));
  CHECK(describe(reason).find("boom") != std::string::npos);
  CHECK(f.log->count("stop:a:" + user_shutdown_str) == 1);
  CHECK(f.log->count("start:c") == 0);
}

TEST_CASE("supervisor: malformed specs are refused") {
  sup_fixture f;
  auto dup = f.spec(supervision_strategy::one_for_one,
                    {worker_spec("a", f.log), worker_spec("a", f.log)});
  auto r = spawn_supervisor(f.rt->system(), dup);
  REQUIRE_FALSE(r);
  CHECK(is(r.error(), supervisor_errc::invalid_spec));
  auto pool = f.spec(supervision_strategy::simple_one_for_one, {});
  CHECK_FALSE(spawn_supervisor(f.rt->system(), pool));
}
TEST_CASE("supervisor: failed restarts count towards intensity") {
  sup_fixture f;
  auto starts = std::make_shared<std::atomic<int>>(0);
  auto a = worker_spec("a", f.log);
  a.start = [starts,
             first = a.start](child_context& ctx) -> caf::expected<caf::actor> {
    if ((*starts)++ > 0) return make_error(sw_errc::invalid_argument, "broken");
    return first(ctx);
  };
  auto s =
      f.spec(supervision_strategy::one_for_one, {a, worker_spec("b", f.log)});
  s.intensity = {2, milliseconds{1000}};
  auto sup = f.start(std::move(s));
  caf::scoped_actor parent{f.rt->system()};
  parent->monitor(sup);
  f.crash(sup, "a");
  CHECK(is(sup_fixture::wait_down(parent, sup),
           supervisor_errc::max_restarts_exceeded));
  REQUIRE(f.ev->wait_for_event("escalated:", true));
  auto evs = f.filter(f.ev->events(), {"exited:a", "restarting:a",
                                       "start_failed:a", "escalated"});
  auto broken = describe(make_error(sw_errc::invalid_argument, "broken"));
  CHECK(evs ==
        strings{"exited:a:" + describe(caf::sec::runtime_error),
                "restarting:a:1:0", "start_failed:a:" + broken,
                "restarting:a:2:0", "start_failed:a:" + broken,
                "escalated:" +
                    describe(make_error(supervisor_errc::max_restarts_exceeded,
                                        "a: " + broken))});
  CHECK(f.log->count("stop:b:" + user_shutdown_str) == 1);
}

TEST_CASE("supervisor: terminate_child and restart_child on static "
          "children") {
  sup_fixture f;
  auto sup = f.start(f.spec(supervision_strategy::one_for_all,
                            {worker_spec("a", f.log), worker_spec("b", f.log),
                             worker_spec("c", f.log)}));
  auto info = ask<child_info>(*f.rt, sup, terminate_child{{}, "c"});
  REQUIRE(info);
  CHECK(info->state == child_state::stopped);
  CHECK(f.log->count("stop:c:" + user_shutdown_str) == 1);
  // A terminated child is left out of the one_for_all group.
  f.crash(sup, "a");
  REQUIRE(f.wait_count(f.ev, "started:b", 2));
  CHECK(f.log->count("start:c") == 1);
  auto kids = f.children(sup);
  CHECK(kids[0].state == child_state::running);
  CHECK(kids[1].state == child_state::running);
  CHECK(kids[2].state == child_state::stopped);
  CHECK_FALSE(kids[2].handle);
  auto h = ask<caf::actor>(*f.rt, sup, restart_child{"c"});
  REQUIRE(h);
  CHECK(f.child(sup, "c") == *h);
  CHECK(f.log->count("start:c") == 2);
  auto none = ask<caf::actor>(*f.rt, sup, restart_child{"zzz"});
  CHECK(is(none.error(), supervisor_errc::no_such_child));
  auto wrong = ask<caf::actor>(*f.rt, sup, start_child{});
  CHECK(is(wrong.error(), supervisor_errc::wrong_strategy));
  f.stop(sup);
}
TEST_CASE("supervision messages cross a serializer (registered types)") {
  runtime_fixture f;
  auto& sys = f.rt->system();
  auto round_trip = [&](caf::message msg) {
    std::vector<char> bytes;
    caf::binary_serializer sink{sys, bytes};
    REQUIRE_FALSE(sink(msg));
    caf::message out;
    caf::binary_deserializer source{sys, bytes};
    REQUIRE_FALSE(source(out));
    return out;
  };
  auto info = round_trip(caf::make_message(
      child_info{"w#3", caf::actor{}, child_state::restarting, 7}));
  REQUIRE(info.match_elements<child_info>());
  CHECK(info.get_as<child_info>(0).id == "w#3");
  CHECK(info.get_as<child_info>(0).state == child_state::restarting);
  CHECK(info.get_as<child_info>(0).restarts == 7);
  auto ev = round_trip(
      caf::make_message(child_restarting{"a", caf::timespan{12345}, 3}));
  REQUIRE(ev.match_elements<child_restarting>());
  CHECK(ev.get_as<child_restarting>(0).delay == caf::timespan{12345});
  auto req = round_trip(
      caf::make_message(start_child{caf::make_message(std::string{"x"})}));
  REQUIRE(req.match_elements<start_child>());
  CHECK(req.get_as<start_child>(0).arg.match_elements<std::string>());
  auto ready = round_trip(caf::make_message(child_ready{"p"}));
  REQUIRE(ready.match_elements<child_ready>());
  CHECK(ready.get_as<child_ready>(0).id == "p");
}
