// A service watch's heartbeats and phi-accrual detector (heartbeat_policy,
// actors/node.hpp) against a real remote node behind a fault proxy: a
// black-holed link (connection open, nothing gets through) is reported
// down as `suspected` well before CAF's own 5 s connection timeout, and a
// slow, jittery but live link is not reported at all.
#include "actors/node.hpp"

#include "tests/support/fixtures.hpp"
#include "tests/support/remote_node.hpp"
#include "tools/fault_proxy.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

using namespace shardwire;
using namespace shardwire::test;
using namespace std::chrono_literals;

namespace {

caf::behavior doubler() {
  return {[](int32_t x) { return x * 2; }};
}

struct watched {
  runtime_fixture fx{1, networked};
  remote_node remote;
  caf::expected<fault_proxy> proxy{caf::error{}};
  std::unique_ptr<caf::scoped_actor> owner;
  caf::actor watch;
  caf::actor service;

  explicit watched(const fault_set& faults) {
    service = remote.sys->spawn(doubler);
    remote.n->add("svc", service);
    fault_proxy_options po;
    po.upstream_port = remote.port;
    po.faults = faults;
    proxy = fault_proxy::start(*fx.rt, po);
    REQUIRE(proxy);
    owner = std::make_unique<caf::scoped_actor>(fx.rt->system());
    watch_backoff fast;
    fast.initial = 10ms;
    fast.max = 100ms;
    fast.lookup_timeout = 2s;
    heartbeat_policy hb;
    hb.interval = 50ms;
    hb.phi.threshold = 8.5; // printed as given, not rounded
    hb.phi.min_std_deviation = 20ms;
    watch = spawn_service_watch(
        fx.rt->system(), caf::actor_cast<caf::actor>(*owner),
        {"127.0.0.1", proxy->address().port, "svc"}, {}, fast, hb);
  }

  ~watched() {
    caf::anon_send_exit(watch, caf::exit_reason::user_shutdown);
    // The remote system waits for its actors when it goes.
    caf::anon_send_exit(service, caf::exit_reason::user_shutdown);
    proxy->stop();
  }

  bool up() {
    bool got = false;
    (*owner)->receive([&](service_up&) { got = true; },
                      caf::after(deadline) >> [] {});
    return got;
  }

  // The first service_down within `window`, if any.
  std::optional<service_down> down_within(std::chrono::milliseconds window) {
    std::optional<service_down> got;
    (*owner)->receive([&](service_down& d) { got = std::move(d); },
                      caf::after(window) >> [] {});
    return got;
  }
};

} // namespace

TEST_CASE("heartbeats: a black-holed node is suspected within a second") {
  watched w{fault_set{}};
  REQUIRE(w.up());
  // Healthy: twenty heartbeats, no suspicion.
  CHECK_FALSE(w.down_within(1000ms));
  fault_set hole;
  hole.up.black_hole = true;
  hole.down.black_hole = true;
  auto start = std::chrono::steady_clock::now();
  w.proxy->update(hole);
  auto down = w.down_within(deadline);
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE(down);
  INFO(describe(down->reason));
  CHECK(down->cause == down_cause::suspected);
  CHECK(is(down->reason, sw_errc::node_unavailable));
  CHECK(describe(down->reason).find("phi") != std::string::npos);
  CHECK(describe(down->reason).find("threshold 8.5") != std::string::npos);
  // CAF's own connection timeout is 5 s: this is the detector's doing.
  CHECK(took < 1500ms);
}

TEST_CASE("heartbeats: a slow, jittery but live link is not suspected") {
  fault_set slow;
  for (auto* d : {&slow.up, &slow.down}) {
    d->latency = 40ms;
    d->jitter = 30ms;
  }
  watched w{slow};
  REQUIRE(w.up());
  // Three seconds of heartbeats at 50 ms through 80 ms +- 60 ms of round
  // trip: phi stays low at the link's own pace.
  auto down = w.down_within(3000ms);
  CHECK_FALSE(down);
  if (down) WARN(describe(down->reason));
}

TEST_CASE("heartbeats: down causes name what happened") {
  CHECK(to_string(down_cause::suspected) == "suspected");
  CHECK(to_string(down_cause::connection_lost) == "connection_lost");
  CHECK(to_string(down_cause::service_exited) == "service_exited");
  CHECK(to_string(down_cause::lookup_failed) == "lookup_failed");
}
