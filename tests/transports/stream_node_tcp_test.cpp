// transports/stream_node_tcp.hpp: stream nodes over real TCP on loopback
// with a shardwire runtime (the code the simulator runs): publish, watch,
// requests through the proxy, then the server closes and the service is
// reported down.
#include "transports/stream_node_tcp.hpp"

#include "actors/errors.hpp"
#include "actors/stream_node.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/kv_service.hpp"
#include "transports/tcp.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <mutex>

using namespace shardwire;
using namespace std::chrono_literals;

namespace {

using test::kv_get_atom;
using test::kv_impl;
using test::kv_put_atom;

struct owner_view {
  test::event_log_ptr log = std::make_shared<test::event_log>();
  std::shared_ptr<std::mutex> mtx = std::make_shared<std::mutex>();
  std::shared_ptr<caf::actor> proxy = std::make_shared<caf::actor>();

  caf::actor current() const {
    std::lock_guard<std::mutex> guard{*mtx};
    return *proxy;
  }
};

caf::behavior owner_impl(caf::event_based_actor*, owner_view v) {
  return {
      [=](service_up& up) {
        {
          std::lock_guard<std::mutex> guard{*v.mtx};
          *v.proxy = up.actor;
        }
        v.log->add("up:" + up.name);
      },
      [=](service_down& d) {
        {
          std::lock_guard<std::mutex> guard{*v.mtx};
          *v.proxy = nullptr;
        }
        std::string errc =
            d.reason && d.reason.category() == sw_category
                ? to_string(static_cast<sw_errc>(d.reason.code()))
                : describe(d.reason);
        v.log->add("down:" + d.name + ":" + to_string(d.cause) + ":" + errc);
      },
  };
}

std::string ask(caf::actor_system& sys, const caf::actor& proxy,
                const std::string& key) {
  caf::scoped_actor self{sys};
  std::string out;
  self->request(proxy, 10s, kv_get_atom::value, key)
      .receive([&](std::string& v) { out = "ok:" + v; },
               [&](caf::error& e) { out = "error:" + describe(e); });
  return out;
}

} // namespace

TEST_CASE("stream nodes over TCP on loopback: publish, watch, request, "
          "server closed -> down") {
  test::runtime_fixture fx;
  auto& sys = fx.rt->system();
  stream_node_directory dir{sys};
  auto kv = sys.spawn(kv_impl);
  dir.add("kv", kv);
  server_options so;
  so.hosts = {"127.0.0.1"};
  auto srv = create_server(*fx.rt, serve_stream_node(dir), so);
  REQUIRE(srv);
  auto port = srv->sockets.at(0).port;

  owner_view v;
  auto owner = sys.spawn(owner_impl, v);
  watch_backoff policy;
  policy.initial = 20ms;
  policy.max = 200ms;
  policy.lookup_timeout = 2s;
  heartbeat_policy hb;
  hb.interval = 200ms;
  auto watch =
      spawn_stream_service_watch(sys, tcp_stream_connector(*fx.rt), owner,
                                 {"127.0.0.1", port, "kv"}, {}, policy, hb);
  REQUIRE(v.log->wait_for_event("up:kv"));
  auto proxy = v.current();
  REQUIRE(proxy);
  CHECK(ask(sys, proxy, "k1") == "ok:v1");
  caf::anon_send(proxy, kv_put_atom::value, std::string{"k2"},
                 std::string{"v2"});
  CHECK(ask(sys, proxy, "k2") == "ok:v2");

  // A watch for an unknown name on the same node.
  owner_view u;
  auto owner2 = sys.spawn(owner_impl, u);
  auto watch2 =
      spawn_stream_service_watch(sys, tcp_stream_connector(*fx.rt), owner2,
                                 {"127.0.0.1", port, "nope"}, {}, policy);
  REQUIRE(u.log->wait_for_event("down:nope:lookup_failed:unknown_service"));

  // The server closes its connections and stops listening: down, once.
  caf::anon_send(srv->actor, close_clients{});
  caf::anon_send(srv->actor, shardwire::close{});
  REQUIRE(v.log->wait_for_event("down:kv:", true));
  // The watch retries 20 ms later and may reach the server before it stops
  // listening (a slow TSan run did): then "up:kv" again, never a second
  // down for the one outage.
  auto seen = v.log->events();
  REQUIRE(seen.size() >= 2);
  CHECK(std::vector<std::string>(seen.begin(), seen.begin() + 2) ==
        std::vector<std::string>{"up:kv",
                                 "down:kv:connection_lost:node_unavailable"});
  CHECK(v.log->count("down:kv:", true) == 1);
  // The old proxy is dead: a request to it fails at once.
  auto t0 = std::chrono::steady_clock::now();
  CHECK(ask(sys, proxy, "k1") ==
        "error:" + describe(make_error(sw_errc::node_unavailable,
                                       "the stream node link of this proxy is "
                                       "gone")));
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  proxy = nullptr;

  caf::anon_send_exit(owner, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(owner2, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(kv, caf::exit_reason::user_shutdown);
  caf::scoped_actor self{sys};
  self->wait_for(watch, watch2, owner, owner2, kv);
}
