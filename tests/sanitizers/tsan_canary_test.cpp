// ThreadSanitizer canary: a deliberate data race in shardwire-style code,
// which `make tsan` must report.
//
// Built and registered only with SHARDWIRE_TSAN=ON (tests/CMakeLists.txt).
// CTest passes it only when its output holds a ThreadSanitizer data-race
// report whose stacks name this file, so the TSan job fails if TSan is not
// in the build, if TSAN_OPTIONS lost their way, or if a suppression in
// tests/sanitizers/tsan.supp grew broad enough to hide races in shardwire's
// own code (a race in a handler has CAF's resume() frames below it, in
// libcaf_core.so: a `race:libcaf_core.so` entry would hide this one too).
//
// The bug it plants is the classic one of a sharded design: two actors
// pinned to different shards share a plain counter instead of exchanging
// messages. Both handlers first meet at an atomic rendezvous (so they surely
// run at the same time, on two shard threads), then each does `++hits`
// without any synchronisation: the two writes are unordered whatever the
// timing, so TSan reports them on every run.
#include "runtime/pinned.hpp"

#include "runtime/runtime.hpp"
#include "tests/support/fixtures.hpp"

#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

using namespace shardwire;
using namespace shardwire::test;

namespace {

using bump_atom = caf::atom_constant<caf::atom("bump")>;

/// What both actors touch: `met` correctly (atomic), `hits` not at all.
struct shared_state {
  std::atomic<int> met{0};
  long hits = 0; // the race: written by two shard threads, no lock
};

caf::behavior bumper(caf::event_based_actor*, std::shared_ptr<shared_state> st,
                     int peers) {
  return {
      [st, peers](bump_atom) {
        // Rendezvous, so both handlers are inside their turn together; it
        // gives up after the deadline rather than hang if they are not.
        st->met.fetch_add(1);
        auto until = std::chrono::steady_clock::now() + deadline;
        while (st->met.load() < peers && std::chrono::steady_clock::now() < until)
          std::this_thread::yield();
        ++st->hits; // <- deliberate data race between the two shard threads
        return true;
      },
  };
}

} // namespace

TEST_CASE("tsan canary: a counter shared by actors on two shards is a race") {
  runtime_fixture fx;
  REQUIRE(fx.rt->shard_count() >= 2);
  auto st = std::make_shared<shared_state>();
  auto a = spawn_fun_on(fx.rt->shard_at(0), bumper, st, 2);
  auto b = spawn_fun_on(fx.rt->shard_at(1), bumper, st, 2);
  {
    caf::scoped_actor self{fx.rt->system()};
    // Both bumps go out before either answer (the handler's `true`) is
    // awaited.
    self->send(a, bump_atom::value);
    self->send(b, bump_atom::value);
    int answers = 0;
    for (int i = 0; i < 2; ++i)
      self->receive([&](bool) { ++answers; }, caf::after(deadline) >> [] {});
    CHECK(answers == 2);
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
  }
  // The program itself is fine with whatever value the race leaves; only
  // TSan's report (and its exit code 66) tells the two writes apart.
  CHECK(st->met.load() == 2);
  CHECK(st->hits >= 1);
}
