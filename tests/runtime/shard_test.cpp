// Shards as CAF execution units: pinning, forwarding of ordinary actors to
// CAF's scheduler, fairness (max_throughput), per-sender order, shutdown.
#include "runtime/shard.hpp"

#include "runtime/pinned.hpp"
#include "runtime/runtime.hpp"
#include "tests/support/fixtures.hpp"
#include "transports/socket.hpp"
#include "transports/tcp.hpp"

#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <stdexcept>
#include <sys/socket.h>
#include <thread>

using namespace shardwire;
using namespace shardwire::test;

namespace {

using note_atom = caf::atom_constant<caf::atom("note")>;
using probe_atom = caf::atom_constant<caf::atom("probe")>;
using go_atom = caf::atom_constant<caf::atom("go")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using seq_atom = caf::atom_constant<caf::atom("seq")>;
using report_atom = caf::atom_constant<caf::atom("report")>;

/// Thread observations made inside handlers.
struct thread_notes {
  std::mutex mtx;
  std::vector<std::thread::id> ids;
  std::vector<std::string> who;
  size_t off_home = 0;     // handler ran while its home shard was not current
  std::thread::id probe{}; // id seen by the probe handler

  void add(const std::string& from, bool on_home) {
    std::lock_guard<std::mutex> guard{mtx};
    ids.push_back(std::this_thread::get_id());
    who.push_back(from);
    if (!on_home) ++off_home;
  }
};

template <class Handle>
bool await_down(runtime& rt, const Handle& hdl) {
  caf::scoped_actor self{rt.system()};
  self->monitor(hdl);
  bool down = false;
  self->receive([&](caf::down_msg&) { down = true; },
                caf::after(deadline) >> [] {});
  return down;
}

template <class Handle>
void stop_actor(runtime& rt, const Handle& hdl) {
  caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
  CHECK(await_down(rt, hdl));
}

/// A pinned actor of role `Role` for the registry test: answers `probe`,
/// quits normally on `go`.
template <pinned_role Role>
class registry_probe : public pinned<caf::event_based_actor, Role> {
public:
  using base = pinned<caf::event_based_actor, Role>;
  using base::base;

  caf::behavior make_behavior() override {
    return {
        [](probe_atom) { return true; },
        [this](go_atom) { this->quit(); },
    };
  }
};

/// Throws from its constructor after pinned<> registered it.
class throwing_probe : public pinned<caf::event_based_actor> {
public:
  explicit throwing_probe(caf::actor_config& cfg) : pinned(cfg) {
    throw std::runtime_error("throwing_probe");
  }
};

} // namespace

TEST_CASE("a pinned actor runs only on its home shard, whoever sends") {
  runtime_fixture fx;
  auto& home = fx.rt->shard_at(0);
  auto& other = fx.rt->shard_at(1);
  auto notes = std::make_shared<thread_notes>();
  auto log = std::make_shared<event_log>();
  auto target = spawn_fun_on(
      home, [notes, log, &home](caf::event_based_actor*) -> caf::behavior {
        return {
            [=, &home](note_atom, const std::string& from) {
              notes->add(from, home.on_thread() && shard::current() == &home);
              log->add(from);
            },
            [=, &home](probe_atom) {
              notes->add("probe", home.on_thread());
              std::lock_guard<std::mutex> guard{notes->mtx};
              notes->probe = std::this_thread::get_id();
              return true;
            },
        };
      });
  static constexpr int n = 200;
  // 1. The main thread, through a scoped actor and anonymously.
  {
    caf::scoped_actor self{fx.rt->system()};
    for (int i = 0; i < n; ++i)
      self->send(target, note_atom::value, std::string{"main"});
    for (int i = 0; i < n; ++i)
      caf::anon_send(target, note_atom::value, std::string{"main"});
    // 2. The clock thread delivers delayed messages.
    for (int i = 0; i < n; ++i)
      self->delayed_send(target, std::chrono::milliseconds(1 + i % 5),
                         note_atom::value, std::string{"timer"});
  }
  // 3. Ordinary actors on CAF's scheduler.
  for (int k = 0; k < 4; ++k)
    fx.rt->system().spawn([target](caf::event_based_actor* self) {
      for (int i = 0; i < n; ++i)
        self->send(target, note_atom::value, std::string{"scheduler"});
    });
  // 4. A pinned actor on the other shard.
  auto sender = spawn_fun_on(
      other,
      [target, notes, &other](caf::event_based_actor* self) -> caf::behavior {
        return {
            [=, &other](go_atom) {
              notes->add("other-shard-sender", other.on_thread());
              for (int i = 0; i < n; ++i)
                self->send(target, note_atom::value, std::string{"shard1"});
            },
        };
      });
  caf::anon_send(sender, go_atom::value);
  // 5. A request from the main thread (the reply goes back to it).
  auto probe_reply = ask<bool>(*fx.rt, target, probe_atom::value);
  REQUIRE(probe_reply);
  REQUIRE(log->wait_for([](const std::vector<std::string>& evs) {
    return evs.size() == static_cast<size_t>(n) * 8;
  }));
  REQUIRE(ask<bool>(*fx.rt, target, probe_atom::value));
  std::lock_guard<std::mutex> guard{notes->mtx};
  CHECK(notes->off_home == 0);
  CHECK(notes->probe != std::thread::id{});
  CHECK(notes->probe != std::this_thread::get_id());
  std::thread::id shard1_thread{};
  size_t checked = 0;
  for (size_t i = 0; i < notes->ids.size(); ++i) {
    if (notes->who[i] == "other-shard-sender") {
      shard1_thread = notes->ids[i];
      continue;
    }
    ++checked;
    if (notes->ids[i] != notes->probe)
      FAIL("message from " << notes->who[i] << " ran on a foreign thread");
  }
  CHECK(checked == static_cast<size_t>(n) * 8 + 2);
  CHECK(shard1_thread != std::thread::id{});
  CHECK(shard1_thread != notes->probe);
  stop_actor(*fx.rt, target);
  stop_actor(*fx.rt, sender);
}

TEST_CASE("a pinned actor's receive timeout stays armed across fast-path "
          "deliveries") {
  // CAF disarms an actor's receive timeout while it handles an ordinary
  // message and re-arms it afterwards. The fast path may skip the re-arming
  // only for actors that declare they have no receive timeout; any other
  // actor must find its `after` clause armed again right after a message,
  // however it was delivered (else its idle timeout fires late or never).
  runtime_fixture fx;
  auto& home = fx.rt->shard_at(0);
  auto watcher = spawn_fun_on(home, [](caf::event_based_actor*) {
    return caf::behavior{
        [](tick_atom, int) {},
        caf::after(std::chrono::seconds(3600)) >> [] {},
    };
  });
  // A co-located sender: its send to the idle watcher is handled inside
  // the send when the fast path is on, so the flag read right after it
  // shows what that delivery left (queued, the tick has not run yet and
  // the flag is still the one set at spawn).
  auto* target = static_cast<caf::scheduled_actor*>(
      caf::actor_cast<caf::abstract_actor*>(watcher));
  auto armed = std::make_shared<std::promise<bool>>();
  auto sender = spawn_fun_on(home, [watcher, target,
                                    armed](caf::event_based_actor* self) {
    return caf::behavior{
        [=](go_atom) {
          self->send(watcher, tick_atom::value, 1);
          armed->set_value(target->getf(caf::abstract_actor::has_timeout_flag));
        },
    };
  });
  auto result = armed->get_future();
  caf::anon_send(sender, go_atom::value);
  REQUIRE(result.wait_for(deadline) == std::future_status::ready);
  CHECK(result.get());
  stop_actor(*fx.rt, watcher);
  stop_actor(*fx.rt, sender);
}

TEST_CASE("an ordinary actor spawned by a pinned actor runs on CAF's "
          "scheduler") {
  runtime_fixture fx;
  auto& home = fx.rt->shard_at(0);
  auto log = std::make_shared<event_log>();
  auto shard_thread = std::make_shared<std::thread::id>();
  auto parent = spawn_fun_on(
      home,
      [log, shard_thread,
       &home](caf::event_based_actor* self) -> caf::behavior {
        return {
            [=, &home](go_atom) {
              *shard_thread = std::this_thread::get_id();
              auto child = self->spawn([log, &home](caf::event_based_actor* c)
                                           -> caf::behavior {
                log->add_thread(std::this_thread::get_id());
                log->add(shard::current() == nullptr && !home.on_thread()
                             ? "child-init:scheduler"
                             : "child-init:shard");
                return {
                    [=, &home](note_atom, const std::string&) {
                      log->add_thread(std::this_thread::get_id());
                      log->add(shard::current() == nullptr && !home.on_thread()
                                   ? "child-msg:scheduler"
                                   : "child-msg:shard");
                      c->send(caf::actor_cast<caf::actor>(c->current_sender()),
                              note_atom::value, std::string{"reply"});
                      c->quit();
                    },
                };
              });
              self->send(child, note_atom::value, std::string{"hello"});
            },
            [=, &home](note_atom, const std::string& what) {
              log->add("parent-got:" + what +
                       (home.on_thread() ? ":shard" : ":elsewhere"));
            },
        };
      });
  caf::anon_send(parent, go_atom::value);
  REQUIRE(log->wait_for_event("parent-got:", true));
  auto evs = log->events();
  CHECK(evs == std::vector<std::string>{"child-init:scheduler",
                                        "child-msg:scheduler",
                                        "parent-got:reply:shard"});
  for (auto id : log->threads())
    CHECK(id != *shard_thread);
  stop_actor(*fx.rt, parent);
}

TEST_CASE("a busy actor does not starve other actors or sockets on its "
          "shard") {
  // Fairness is bounded by max_throughput: an actor runs at most that many
  // messages per turn. A probe round trip from another thread takes only
  // microseconds, so with the default (64) the probed actor can
  // answer many consecutive probes in one turn. With 8, it answers at most 8
  // in a row, so the busy actor must run between the first and the 50th.
  runtime_fixture fx{2, [](test_config& c) { c.max_throughput = 8; }};
  auto& s = fx.rt->shard_at(0);
  auto ticks = std::make_shared<std::atomic<uint64_t>>(0);
  auto log = std::make_shared<event_log>();
  // Always has a message: without a finite max_throughput it would keep the
  // shard forever.
  auto busy = spawn_fun_on(
      s, [ticks, log](caf::event_based_actor* self) -> caf::behavior {
        return {
            [=](tick_atom) {
              if (ticks->fetch_add(1) == 1000) log->add("busy-running");
              self->send(self, tick_atom::value);
            },
        };
      });
  auto other =
      spawn_fun_on(s, [ticks](caf::event_based_actor*) -> caf::behavior {
        return {
            [=](probe_atom) { return static_cast<int64_t>(ticks->load()); },
        };
      });
  caf::anon_send(busy, tick_atom::value);
  REQUIRE(log->wait_for_event("busy-running"));
  std::vector<int64_t> seen;
  for (int i = 0; i < 50; ++i) {
    auto r = ask<int64_t>(*fx.rt, other, probe_atom::value);
    REQUIRE(r);
    seen.push_back(*r);
  }
  // Both made progress: the other actor answered every time (above), and
  // the busy one ran in between (at most 8 probes fit in one turn).
  CHECK(seen.back() > seen.front());
  // A connection on the same shard still gets its data.
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  auto conn_log = std::make_shared<event_log>();
  auto conn =
      connect_accepted_socket(*fx.rt, sv[0], recorder(conn_log), size_t{0});
  REQUIRE(conn);
  CHECK(conn->info.shard == 0);
  REQUIRE(raw_send_all(sv[1], "through"));
  CHECK(conn_log->wait_for_event("data:through"));
  auto before = ticks->load();
  caf::anon_send(conn->transport, shardwire::close{});
  REQUIRE(conn_log->wait_for_event("lost"));
  CHECK(ticks->load() > before);
  raw_close(sv[1]);
  stop_actor(*fx.rt, busy);
  stop_actor(*fx.rt, other);
}

TEST_CASE("per-sender FIFO order holds across shards") {
  runtime_fixture fx;
  auto& s0 = fx.rt->shard_at(0);
  auto& s1 = fx.rt->shard_at(1);
  static constexpr int n = 5000;
  static constexpr int senders = 6;
  auto log = std::make_shared<event_log>();
  auto receiver =
      spawn_fun_on(s0, [log](caf::event_based_actor*) -> caf::behavior {
        auto next = std::make_shared<std::vector<int>>(senders, 0);
        auto violations = std::make_shared<int>(0);
        auto total = std::make_shared<int>(0);
        return {
            [=](seq_atom, int who, int i) {
              if ((*next)[who] != i) ++*violations;
              (*next)[who] = i + 1;
              if (++*total == n * senders) log->add("complete");
            },
            [=](report_atom) {
              auto out = *next;
              out.push_back(*violations);
              return out;
            },
        };
      });
  auto pinned_sender = [&](shard& s, int who) {
    return spawn_fun_on(
        s, [receiver, who](caf::event_based_actor* self) -> caf::behavior {
          return {
              [=](go_atom) {
                for (int i = 0; i < n; ++i)
                  self->send(receiver, seq_atom::value, who, i);
                self->quit();
              },
          };
        });
  };
  auto a = pinned_sender(s1, 0);
  auto b = pinned_sender(s1, 1);
  auto c = pinned_sender(s0, 2);
  caf::anon_send(a, go_atom::value);
  caf::anon_send(b, go_atom::value);
  caf::anon_send(c, go_atom::value);
  fx.rt->system().spawn([receiver](caf::event_based_actor* self) {
    for (int i = 0; i < n; ++i)
      self->send(receiver, seq_atom::value, 3, i);
  });
  // A scheduler actor that interleaves sends with yielding to the mailbox.
  fx.rt->system().spawn(
      [receiver](caf::event_based_actor* self) -> caf::behavior {
        auto i = std::make_shared<int>(0);
        self->send(self, go_atom::value);
        return {
            [=](go_atom) {
              for (int k = 0; k < 100 && *i < n; ++k)
                self->send(receiver, seq_atom::value, 4, (*i)++);
              if (*i < n)
                self->send(self, go_atom::value);
              else
                self->quit();
            },
        };
      });
  {
    caf::scoped_actor self{fx.rt->system()};
    for (int i = 0; i < n; ++i)
      self->send(receiver, seq_atom::value, 5, i);
  }
  REQUIRE(log->wait_for_event("complete"));
  auto rep = ask<std::vector<int>>(*fx.rt, receiver, report_atom::value);
  REQUIRE(rep);
  REQUIRE(rep->size() == static_cast<size_t>(senders) + 1);
  for (int who = 0; who < senders; ++who)
    CHECK((*rep)[who] == n);
  CHECK(rep->back() == 0); // no message out of order
  stop_actor(*fx.rt, receiver);
}

TEST_CASE("shutdown with live connections delivers lost to every protocol") {
  runtime_fixture fx;
  auto server_log = std::make_shared<event_log>();
  auto srv = create_server(*fx.rt, recorder(server_log), {});
  REQUIRE(srv);
  constexpr size_t conns = 6;
  std::vector<event_log_ptr> logs;
  std::vector<connection> live;
  for (size_t i = 0; i < conns; ++i) {
    logs.push_back(std::make_shared<event_log>());
    connect_options co;
    co.port = srv->sockets.at(0).port;
    co.shard = i % fx.rt->shard_count();
    auto c = create_connection(*fx.rt, co, recorder(logs.back()));
    REQUIRE(c);
    live.push_back(*c);
  }
  REQUIRE(server_log->wait_for([](const std::vector<std::string>& evs) {
    return std::count(evs.begin(), evs.end(), "connected") ==
           static_cast<long>(conns);
  }));
  // Some traffic in flight as well.
  for (auto& c : live)
    caf::anon_send(c.transport,
                   shardwire::write{buffer::copy_of(std::string(100000, 'x'))});
  auto started = std::chrono::steady_clock::now();
  auto done = std::async(std::launch::async, [&] { fx.rt->shutdown(); });
  REQUIRE(done.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  // Protocols exit on their own after `lost`: no grace period wasted.
  CHECK(std::chrono::steady_clock::now() - started <
        std::chrono::milliseconds(fx.cfg.shutdown_grace_ms));
  for (auto& log : logs) {
    auto evs = log->events();
    REQUIRE_FALSE(evs.empty());
    CHECK(evs.front() == "connected");
    CHECK(evs.back().rfind("lost", 0) == 0);
    size_t lost = 0;
    for (auto& e : evs)
      lost += e.rfind("lost", 0) == 0 ? 1 : 0;
    CHECK(lost == 1);
  }
  CHECK(server_log->count("lost", true) == conns);
  for (size_t i = 0; i < fx.rt->shard_count(); ++i)
    CHECK(fx.rt->shard_at(i).live_actors() == 0);
}

TEST_CASE("shutdown kills a pinned actor that ignores everything") {
  runtime_fixture fx;
  // Read by shutdown(), so it can be changed after the runtime started.
  fx.cfg.shutdown_grace_ms = 100;
  auto log = std::make_shared<event_log>();
  auto stubborn = spawn_fun_on(
      fx.rt->shard_at(1), [log](caf::event_based_actor* self) -> caf::behavior {
        self->set_exit_handler([log](caf::exit_msg&) { log->add("ignored"); });
        return {
            [](probe_atom) { return true; },
        };
      });
  REQUIRE(ask<bool>(*fx.rt, stubborn, probe_atom::value));
  caf::anon_send_exit(stubborn, caf::exit_reason::user_shutdown);
  REQUIRE(ask<bool>(*fx.rt, stubborn, probe_atom::value)); // still alive
  CHECK(log->count("ignored") == 1);
  auto done = std::async(std::launch::async, [&] { fx.rt->shutdown(); });
  REQUIRE(done.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  for (size_t i = 0; i < fx.rt->shard_count(); ++i)
    CHECK(fx.rt->shard_at(i).live_actors() == 0);
}

TEST_CASE("the shard registry counts a pinned actor until it ends, however "
          "it ends") {
  runtime_fixture fx;
  auto& s = fx.rt->shard_at(1);
  using plain_probe = registry_probe<pinned_role::plain>;
  using transport_probe = registry_probe<pinned_role::transport>;
  const size_t all0 = s.live_actors();
  const size_t tr0 = s.live_actors(true);
  // A down message is sent after the actor left the registry (on_cleanup
  // runs before monitors are told), so the counts are exact once it came.
  auto quits = spawn_on<plain_probe>(s);
  auto killed = spawn_on<plain_probe>(s);
  auto bystander = spawn_on<plain_probe>(s);
  auto transport = spawn_on<transport_probe>(s);
  CHECK(s.live_actors() == all0 + 4);
  CHECK(s.live_actors(true) == tr0 + 1);
  REQUIRE(ask<bool>(*fx.rt, quits, probe_atom::value));
  REQUIRE(ask<bool>(*fx.rt, transport, probe_atom::value));
  // Normal quit.
  caf::anon_send(quits, go_atom::value);
  CHECK(await_down(*fx.rt, quits));
  CHECK(s.live_actors() == all0 + 3);
  // Killed.
  caf::anon_send_exit(killed, caf::exit_reason::kill);
  CHECK(await_down(*fx.rt, killed));
  CHECK(s.live_actors() == all0 + 2);
  CHECK(s.live_actors(true) == tr0 + 1);
  // exit_actors(transports only) reaches the transport and nothing else.
  s.exit_actors(caf::exit_reason::user_shutdown, true);
  CHECK(await_down(*fx.rt, transport));
  CHECK(s.live_actors(true) == tr0);
  CHECK(s.live_actors() == all0 + 1);
  CHECK(ask<bool>(*fx.rt, bystander, probe_atom::value));
  stop_actor(*fx.rt, bystander);
  CHECK(s.live_actors() == all0);
  // Unreachable: the last handle to an actor that never ran goes. CAF cleans
  // it up from on_destroy, here on this thread.
  {
    auto idle = spawn_on<plain_probe, caf::lazy_init>(s);
    CHECK(s.live_actors() == all0 + 1);
  }
  CHECK(s.live_actors() == all0);
  // Unreachable after it ran (initialised on the shard, never messaged): the
  // last reference may go on either thread.
  {
    caf::scoped_actor self{fx.rt->system()};
    auto idle = spawn_on<transport_probe>(s);
    CHECK(s.live_actors(true) == tr0 + 1);
    self->monitor(idle);
    idle = nullptr;
    caf::error reason;
    self->receive([&](caf::down_msg& dm) { reason = dm.reason; },
                  caf::after(deadline) >> [] {});
    CHECK(reason == caf::exit_reason::unreachable);
  }
  CHECK(s.live_actors(true) == tr0);
  CHECK(s.live_actors() == all0);
  // A constructor that throws after pinned<> registered the actor.
  CHECK_THROWS_AS(spawn_on<throwing_probe>(s), std::runtime_error);
  CHECK(s.live_actors() == all0);
}

TEST_CASE("a transport counts in its shard's load from its spawn until its "
          "cleanup; listeners and plain actors do not count") {
  runtime_fixture fx;
  auto& s = fx.rt->shard_at(1);
  const size_t load0 = s.load();
  const size_t stopped_first0 = s.live_actors(true);
  auto plain = spawn_on<registry_probe<pinned_role::plain>>(s);
  auto listener = spawn_on<registry_probe<pinned_role::listener>>(s);
  CHECK(s.load() == load0);
  // Counted when spawn_on returns, on this thread, before the shard ran it:
  // the next placement decision must see it.
  auto transport = spawn_on<registry_probe<pinned_role::transport>>(s);
  CHECK(s.load() == load0 + 1);
  // Lazily initialised (never ran) counts too, until its last handle goes.
  {
    auto idle =
        spawn_on<registry_probe<pinned_role::transport>, caf::lazy_init>(s);
    CHECK(s.load() == load0 + 2);
  }
  CHECK(s.load() == load0 + 1);
  // The listener is stopped with the transports at shutdown all the same.
  CHECK(s.live_actors(true) == stopped_first0 + 2);
  caf::anon_send(transport, go_atom::value);
  CHECK(await_down(*fx.rt, transport));
  CHECK(s.load() == load0);
  stop_actor(*fx.rt, plain);
  stop_actor(*fx.rt, listener);
  CHECK(s.load() == load0);
}
