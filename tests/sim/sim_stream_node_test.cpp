// sim/node_host.hpp: the node layer (stream nodes, actors/stream_node.hpp)
// on the simulated network: publish, watch, requests through the proxy,
// partitions, crashes and restarts of the host in virtual time, and a seed
// that replays byte for byte.
#include "sim/node_host.hpp"

#include "actors/errors.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/kv_service.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <string>

using namespace shardwire;
using namespace std::chrono_literals;

namespace {

using test::kv_get_atom;
using test::kv_impl;
using test::kv_put_atom;

std::string errc_name(const caf::error& err) {
  if (err && err.category() == sw_category)
    return to_string(static_cast<sw_errc>(err.code()));
  return describe(err);
}

// "remote_link_unreachable", ... for exit reasons.
std::string exit_name(const caf::error& err) {
  if (err && err.category() == caf::atom("exit"))
    return caf::to_string(static_cast<caf::exit_reason>(err.code()));
  return describe(err);
}

// Monitors `target` and writes its exit reason (exit_name) into `out`
// when it goes. Keep the handle: an actor nobody references is gone, and
// its monitor with it.
caf::actor spawn_down_recorder(caf::actor_system& sys, caf::actor target,
                               std::shared_ptr<std::string> out) {
  return sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
    self->monitor(target);
    self->set_down_handler([=](caf::down_msg& dm) {
      *out = exit_name(dm.reason);
      self->quit();
    });
    return {[](int) {}};
  });
}

// The owner of a watch: logs "up:NAME" and "down:NAME:CAUSE:ERRC", and
// keeps the current proxy.
struct owner_view {
  test::event_log_ptr log = std::make_shared<test::event_log>();
  std::shared_ptr<caf::actor> proxy = std::make_shared<caf::actor>();
};

caf::behavior owner_impl(caf::event_based_actor*, owner_view v) {
  return {
      [=](service_up& up) {
        *v.proxy = up.actor;
        v.log->add("up:" + up.name);
      },
      [=](service_down& d) {
        *v.proxy = nullptr;
        v.log->add("down:" + d.name + ":" + to_string(d.cause) + ":" +
                   errc_name(d.reason));
      },
  };
}

// Sends (get, key) to `proxy` and writes "ok:VALUE" or "error:ERRC" into
// `out` when the answer comes.
void ask(sim::network& net, const caf::actor& proxy, std::string key,
         std::shared_ptr<std::string> out) {
  net.system().spawn([=](caf::event_based_actor* self) {
    self->request(proxy, std::chrono::seconds(60), kv_get_atom::value, key)
        .then([=](std::string& v) { *out = "ok:" + v; },
              [=](caf::error& e) { *out = "error:" + errc_name(e); });
  });
}

std::string ask_now(sim::network& net, const caf::actor& proxy,
                    std::string key) {
  auto out = std::make_shared<std::string>();
  ask(net, proxy, std::move(key), out);
  net.run_until([&] { return !out->empty(); }, 60s);
  return *out;
}

watch_backoff backoff() {
  watch_backoff p;
  p.initial = 50ms;
  p.max = 1s;
  p.lookup_timeout = 500ms;
  return p;
}

heartbeat_policy heartbeats() {
  heartbeat_policy h;
  h.interval = 100ms;
  h.phi.first_interval = 100ms;
  h.phi.min_std_deviation = 20ms;
  return h;
}

struct run_result {
  std::vector<std::string> events;
  std::vector<std::string> unknown_events;
  std::string trace;
};

// The whole scenario of the first test; checks as it goes.
run_result scenario(uint64_t seed) {
  sim::network net{seed};
  CAPTURE(seed);
  net.add_host("a");
  net.add_host("b");
  net.add_host("c");
  sim::link_faults f;
  f.latency = 2ms;
  f.jitter = 1ms;
  net.set_all_links(f);
  stream_node_directory dir{net.system()};
  net.on_boot("a", [dir](sim::network& n) mutable {
    auto kv = spawn_fun_on(n.shard_of("a"), kv_impl);
    dir.add("kv", kv);
    REQUIRE_FALSE(sim::serve_stream_node(n, "a", 7000, dir));
  });
  auto baseline = net.live_actors();

  owner_view v;
  auto owner = net.system().spawn(owner_impl, v);
  auto watch = spawn_stream_service_watch(
      net.system(), sim::stream_node_connector(net, "b", 500ms), owner,
      {"a", 7000, "kv"}, {}, backoff(), heartbeats());
  auto ups = [&](size_t n) { return v.log->count("up:kv") == n; };
  auto downs = [&](size_t n) { return v.log->count("down:kv", true) == n; };

  // Up, a request, a one-way message.
  REQUIRE(net.run_until([&] { return ups(1); }, 10s));
  REQUIRE(*v.proxy);
  CHECK(ask_now(net, *v.proxy, "k1") == "ok:v1");
  caf::anon_send(*v.proxy, kv_put_atom::value, std::string{"k2"},
                 std::string{"v2"});
  CHECK(ask_now(net, *v.proxy, "k2") == "ok:v2");

  // Partition a | b: a pending request fails, a monitor sees the proxy go
  // with remote_link_unreachable, the heartbeats suspect the node.
  net.note("test: partition a | b");
  auto monitored = std::make_shared<std::string>();
  auto monitor = spawn_down_recorder(net.system(), *v.proxy, monitored);
  net.run_for(10ms);
  net.partition({"a"}, {"b"});
  auto pending = std::make_shared<std::string>();
  ask(net, *v.proxy, "k1", pending);
  auto cut_at = net.now();
  REQUIRE(net.run_until([&] { return downs(1) && !pending->empty(); }, 30s));
  CHECK(net.now() - cut_at < 3s); // virtual: a few heartbeat intervals
  CHECK(v.log->events().back() == "down:kv:suspected:node_unavailable");
  CHECK(*pending == "error:node_unavailable");
  net.run_for(10ms);
  CHECK(*monitored == "remote_link_unreachable");
  monitor = nullptr;

  // Heal: up again, requests work.
  net.note("test: heal");
  net.heal();
  REQUIRE(net.run_until([&] { return ups(2); }, 30s));
  CHECK(downs(1)); // once per outage, however many lookups failed
  CHECK(ask_now(net, *v.proxy, "k1") == "ok:v1");

  // Crash a: down. Restart a: up again, served by the new incarnation.
  net.note("test: crash a");
  net.crash("a");
  REQUIRE(net.run_until([&] { return downs(2); }, 30s));
  net.run_for(2s);
  CHECK(downs(2));
  net.note("test: restart a");
  net.restart("a");
  REQUIRE(net.run_until([&] { return ups(3); }, 30s));
  CHECK(ask_now(net, *v.proxy, "k1") == "ok:v1");
  CHECK(ask_now(net, *v.proxy, "k2") == "ok:"); // a new store

  // An unknown name, watched from c.
  owner_view u;
  auto owner2 = net.system().spawn(owner_impl, u);
  auto watch2 = spawn_stream_service_watch(
      net.system(), sim::stream_node_connector(net, "c", 500ms), owner2,
      {"10.0.0.1", 7000, "nope"}, {}, backoff());
  REQUIRE(
      net.run_until([&] { return u.log->count("down:nope", true) == 1; }, 10s));
  net.run_for(3s); // retries, reported once
  CHECK(u.log->events() ==
        std::vector<std::string>{"down:nope:lookup_failed:unknown_service"});

  // Owners exit: the watches exit and drop their links.
  caf::anon_send_exit(owner, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(owner2, caf::exit_reason::user_shutdown);
  *v.proxy = nullptr;
  net.run_for(5s);
  CHECK(net.live_actors() == baseline);
  (void)watch;
  (void)watch2;
  return {v.log->events(), u.log->events(), net.trace_text()};
}

} // namespace

TEST_CASE("stream nodes on the simulated network: publish, watch, "
          "requests, partition, heal, crash, restart, unknown service") {
  auto r = scenario(21);
  REQUIRE(r.events.size() == 5);
  CHECK(r.events[0] == "up:kv");
  CHECK(r.events[1] == "down:kv:suspected:node_unavailable");
  CHECK(r.events[2] == "up:kv");
  // The crash: a crashed host sends nothing (not even what its dying actors
  // write), so only the heartbeats can tell: suspected.
  CHECK(r.events[3] == "down:kv:suspected:node_unavailable");
  CHECK(r.events[4] == "up:kv");
}

TEST_CASE("stream nodes: the same seed gives the same trace byte for byte") {
  auto a = scenario(5);
  auto b = scenario(5);
  auto c = scenario(6);
  CHECK(a.events == b.events);
  CHECK(a.trace == b.trace);
  CHECK(a.trace.size() > 1000);
  CHECK(a.trace != c.trace); // another seed draws other latencies
  CHECK(c.events == a.events);
}

TEST_CASE("stream nodes: a published actor that exits is reported with its "
          "reason; another interface is refused") {
  sim::network net{3};
  net.add_host("a");
  net.add_host("b");
  stream_node_directory dir{net.system()};
  auto kv = spawn_fun_on(net.shard_of("a"), kv_impl);
  dir.add("kv", kv);
  REQUIRE_FALSE(sim::serve_stream_node(net, "a", 7000, dir));
  auto baseline = net.live_actors();
  owner_view v;
  auto owner = net.system().spawn(owner_impl, v);
  spawn_stream_service_watch(net.system(),
                             sim::stream_node_connector(net, "b", 500ms), owner,
                             {"a", 7000, "kv"}, {}, backoff());
  REQUIRE(net.run_until([&] { return v.log->count("up:kv") == 1; }, 10s));
  auto monitored = std::make_shared<std::string>();
  auto monitor = spawn_down_recorder(net.system(), *v.proxy, monitored);
  net.run_for(10ms);

  // The service exits: its proxy exits with the same reason.
  caf::anon_send_exit(kv, caf::exit_reason::user_shutdown);
  kv = nullptr;
  REQUIRE(
      net.run_until([&] { return v.log->count("down:kv", true) == 1; }, 10s));
  CHECK(v.log->events() ==
        std::vector<std::string>{"up:kv",
                                 "down:kv:service_exited:node_unavailable"});
  net.run_for(10ms);
  CHECK(*monitored == "user_shutdown");
  monitor = nullptr;
  // The directory forgot it: lookups fail (unknown_service), reported once.
  CHECK_FALSE(dir.find("kv"));
  net.run_for(3s);
  CHECK(v.log->count("down:kv", true) == 1);

  // A new actor under the name: up again.
  auto kv2 = spawn_fun_on(net.shard_of("a"), kv_impl);
  dir.add("kv", kv2);
  REQUIRE(net.run_until([&] { return v.log->count("up:kv") == 2; }, 10s));
  CHECK(ask_now(net, *v.proxy, "k1") == "ok:v1");

  // A reset link: connection_lost, then up again at once (no back-off).
  net.reset_connections("a", "b");
  REQUIRE(net.run_until([&] { return v.log->count("up:kv") == 3; }, 10s));
  CHECK(v.log->events()[3] == "down:kv:connection_lost:node_unavailable");
  CHECK(ask_now(net, *v.proxy, "k1") == "ok:v1");

  // A message carrying an actor handle is refused at the sender's end.
  auto refused = std::make_shared<std::string>();
  auto dummy = net.system().spawn(
      [](caf::event_based_actor*) -> caf::behavior { return {[](int) {}}; });
  net.system().spawn([=, proxy = *v.proxy](caf::event_based_actor* self) {
    self->request(proxy, std::chrono::seconds(10), kv_get_atom::value, dummy)
        .then([=](std::string&) { *refused = "answered"; },
              [=](caf::error& e) { *refused = errc_name(e); });
  });
  REQUIRE(net.run_until([&] { return !refused->empty(); }, 20s));
  CHECK(*refused == "not_supported");
  caf::anon_send_exit(dummy, caf::exit_reason::kill);

  // A watch that asks for another interface than the actor's.
  owner_view w;
  auto owner2 = net.system().spawn(owner_impl, w);
  spawn_stream_service_watch(
      net.system(), sim::stream_node_connector(net, "b", 500ms), owner2,
      {"a", 7000, "kv"}, {"caf::replies_to<@i32>::with<@i32>"}, backoff());
  REQUIRE(
      net.run_until([&] { return w.log->count("down:kv", true) == 1; }, 10s));
  CHECK(w.log->events() ==
        std::vector<std::string>{"down:kv:lookup_failed:incompatible_node"});

  caf::anon_send_exit(owner, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(owner2, caf::exit_reason::user_shutdown);
  *v.proxy = nullptr;
  net.run_for(5s);
  CHECK(net.live_actors() == baseline);
  caf::anon_send_exit(kv2, caf::exit_reason::user_shutdown);
}
