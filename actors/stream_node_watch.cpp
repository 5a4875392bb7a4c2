// Stream nodes: the service watch.
#include "actors/detail/stream_node_link.hpp"
#include "actors/errors.hpp"
#include "actors/stream_node.hpp"

#include <caf/actor_clock.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <optional>

namespace shardwire {

namespace {

using detail::sn_drop_atom;
using detail::sn_fail_atom;
using detail::sn_ping_atom;
using detail::sn_pong_atom;
using detail::sn_up_atom;
using retry_atom = caf::atom_constant<caf::atom("swsnretry")>;
using beat_atom = caf::atom_constant<caf::atom("swsnbeat")>;
using timeout_atom = caf::atom_constant<caf::atom("swsnwto")>;

struct watch_state {
  caf::event_based_actor* self = nullptr;
  stream_connector connect;
  caf::actor owner;
  service_address addr;
  std::set<std::string> interface;
  watch_backoff policy;
  heartbeat_policy heartbeats;
  /// Generation of the lookup in flight; late answers of older ones are
  /// dropped (and their links with them).
  uint64_t attempt = 0;
  bool attempting = false;
  /// While the service is up: its proxy and the connection carrying it.
  caf::actor current;
  caf::actor conn;
  std::optional<phi_accrual> detector;
  uint64_t beat_generation = 0;
  caf::actor_clock::time_point last_beat;
  caf::timespan delay{0};
  bool down_reported = false;
};

using watch_ptr = std::shared_ptr<watch_state>;

// The three documented errors; anything else is the node being unavailable.
caf::error classify(const watch_state& st, const caf::error& err) {
  if (is(err, sw_errc::unknown_service) || is(err, sw_errc::incompatible_node))
    return err;
  if (is(err, sw_errc::node_unavailable)) return err;
  return make_error(sw_errc::node_unavailable,
                    to_string(st.addr) + ": " + describe(err));
}

void attempt(const watch_ptr& st);

void report_down(const watch_ptr& st, caf::error reason, down_cause cause) {
  st->down_reported = true;
  st->self->send(st->owner,
                 service_down{st->addr.name, std::move(reason), cause});
}

void failed(const watch_ptr& st, const caf::error& err) {
  st->attempting = false;
  if (!st->down_reported)
    report_down(st, classify(*st, err), down_cause::lookup_failed);
  st->self->delayed_send(st->self, st->delay, retry_atom::value);
  st->delay = std::min(st->delay * 2, st->policy.max);
}

// Drops the current link (if any) without reporting anything.
void forget_link(const watch_ptr& st) {
  if (st->current) st->self->demonitor(st->current);
  if (st->conn) st->self->send(st->conn, sn_drop_atom::value);
  st->current = nullptr;
  st->conn = nullptr;
  st->detector.reset();
  ++st->beat_generation;
}

void succeeded(const watch_ptr& st, caf::actor proxy, caf::actor conn) {
  auto self = st->self;
  st->attempting = false;
  st->current = proxy;
  st->conn = std::move(conn);
  st->down_reported = false;
  st->delay = st->policy.initial;
  self->monitor(st->current);
  self->send(st->owner, service_up{st->addr.name, std::move(proxy)});
  if (st->heartbeats.interval.count() > 0) {
    // A new history per link; the lookup's answer is the first beat.
    st->detector.emplace(st->heartbeats.phi);
    st->last_beat = self->clock().now();
    st->detector->heartbeat(st->last_beat);
    self->send(self, beat_atom::value, ++st->beat_generation);
  }
}

void attempt(const watch_ptr& st) {
  auto self = st->self;
  auto gen = ++st->attempt;
  st->attempting = true;
  auto me = caf::actor_cast<caf::actor>(self);
  auto factory = detail::stream_node_client(st->addr.name, st->interface, me,
                                            gen, st->policy.lookup_timeout);
  self->delayed_send(self, st->policy.lookup_timeout, timeout_atom::value, gen);
  auto done = [me, gen](caf::error err) {
    if (err) caf::anon_send(me, sn_fail_atom::value, gen, std::move(err));
  };
  try {
    st->connect(st->addr, std::move(factory), std::move(done));
  } catch (const std::exception& e) {
    self->send(self, sn_fail_atom::value, gen,
               make_error(sw_errc::node_unavailable,
                          std::string{"the connector threw: "} + e.what()));
  }
}

// The node keeps the link but does not answer the heartbeats.
void suspected(const watch_ptr& st, double phi) {
  auto silent = std::chrono::duration_cast<std::chrono::milliseconds>(
      st->self->clock().now() - st->last_beat);
  forget_link(st);
  char level[32];
  std::snprintf(level, sizeof level, "%.1f", phi);
  char threshold[32];
  std::snprintf(threshold, sizeof threshold, "%.1f",
                st->heartbeats.phi.threshold);
  report_down(st,
              make_error(sw_errc::node_unavailable,
                         to_string(st->addr) + ": phi " + level +
                             " above its threshold " + threshold +
                             " (no heartbeat for " +
                             std::to_string(silent.count()) + " ms)"),
              down_cause::suspected);
  attempt(st);
}

void beat(const watch_ptr& st, uint64_t generation) {
  auto self = st->self;
  if (generation != st->beat_generation || !st->current || !st->detector)
    return;
  auto now = self->clock().now();
  if (st->detector->suspect(now)) {
    suspected(st, st->detector->phi(now));
    return;
  }
  self->send(st->conn, sn_ping_atom::value, generation);
  self->delayed_send(self, st->heartbeats.interval, beat_atom::value,
                     generation);
}

caf::behavior watch_impl(caf::event_based_actor* self, stream_connector connect,
                         caf::actor owner, service_address addr,
                         std::set<std::string> interface, watch_backoff policy,
                         heartbeat_policy heartbeats) {
  auto st = std::make_shared<watch_state>();
  st->self = self;
  st->connect = std::move(connect);
  st->owner = std::move(owner);
  st->addr = std::move(addr);
  st->interface = std::move(interface);
  st->policy = policy;
  st->heartbeats = heartbeats;
  st->delay = policy.initial;
  self->monitor(st->owner);
  // However the watch ends, its link goes with it.
  self->attach_functor([st] {
    if (st->conn) caf::anon_send(st->conn, sn_drop_atom::value);
    st->conn = nullptr;
    st->current = nullptr;
    st->connect = nullptr;
    st->owner = nullptr;
  });
  self->set_down_handler([st](caf::down_msg& dm) {
    auto self = st->self;
    if (dm.source == st->owner.address()) {
      self->quit();
      return;
    }
    if (!st->current || dm.source != st->current.address()) return;
    st->current = nullptr;
    st->conn = nullptr;
    st->detector.reset();
    ++st->beat_generation;
    bool is_exit = dm.reason && dm.reason.category() == caf::atom("exit");
    bool unreachable =
        is_exit &&
        dm.reason.code() ==
            static_cast<uint8_t>(caf::exit_reason::remote_link_unreachable);
    auto why =
        is_exit
            ? caf::to_string(static_cast<caf::exit_reason>(dm.reason.code()))
            : describe(dm.reason);
    report_down(
        st,
        make_error(sw_errc::node_unavailable, to_string(st->addr) + ": " + why),
        unreachable ? down_cause::connection_lost : down_cause::service_exited);
    // Retry at once: a quick restart is back without delay; a dead node
    // fails the lookup and the back-off takes over.
    attempt(st);
  });
  attempt(st);
  return {
      [=](sn_up_atom, uint64_t gen, caf::actor& proxy, caf::actor& conn) {
        if (gen != st->attempt || !st->attempting || st->current) {
          self->send(conn, sn_drop_atom::value); // a late answer
          return;
        }
        succeeded(st, std::move(proxy), std::move(conn));
      },
      [=](sn_fail_atom, uint64_t gen, caf::error& err) {
        if (gen != st->attempt || !st->attempting) return;
        failed(st, err);
      },
      [=](timeout_atom, uint64_t gen) {
        if (gen != st->attempt || !st->attempting) return;
        ++st->attempt; // its late answers are dropped
        failed(st, make_error(sw_errc::node_unavailable,
                              to_string(st->addr) + ": lookup timed out"));
      },
      [=](retry_atom) {
        if (!st->current && !st->attempting) attempt(st);
      },
      [=](beat_atom, uint64_t generation) { beat(st, generation); },
      [=](sn_pong_atom, uint64_t generation) {
        if (generation != st->beat_generation || !st->detector) return;
        st->last_beat = self->clock().now();
        st->detector->heartbeat(st->last_beat);
      },
  };
}

} // namespace

caf::actor spawn_stream_service_watch(caf::actor_system& sys,
                                      stream_connector connect,
                                      caf::actor owner, service_address addr,
                                      std::set<std::string> interface,
                                      watch_backoff policy,
                                      heartbeat_policy heartbeats) {
  return sys.spawn(watch_impl, std::move(connect), std::move(owner),
                   std::move(addr), std::move(interface), policy, heartbeats);
}

} // namespace shardwire
