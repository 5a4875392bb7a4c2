// Private to actors/stream_node*.cpp: the messages between a stream node
// watch and its client connection, and helpers shared by both ends.
#pragma once

#include "actors/protocol.hpp"
#include "actors/stream_node_wire.hpp"

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace shardwire::detail {

/// Client -> watch: (up, attempt, proxy, connection): the lookup succeeded.
using sn_up_atom = caf::atom_constant<caf::atom("swsnup")>;
/// Client or connector -> watch: (fail, attempt, error): the attempt failed
/// before the service was up.
using sn_fail_atom = caf::atom_constant<caf::atom("swsnfail")>;
/// Watch -> client: (drop): end the link as lost (suspected node, watch
/// gone).
using sn_drop_atom = caf::atom_constant<caf::atom("swsndrop")>;
/// Watch -> client: (ping, tag) writes a ping frame; client -> watch:
/// (pong, tag) when its pong arrives.
using sn_ping_atom = caf::atom_constant<caf::atom("swsnping")>;
using sn_pong_atom = caf::atom_constant<caf::atom("swsnpong")>;

/// The protocol of one client connection: looks `name` up, then makes the
/// proxy and reports (up | fail, attempt, ...) to `watch`; gives up after
/// `lookup_timeout` without an answer.
protocol_factory stream_node_client(std::string name,
                                    std::set<std::string> interface,
                                    caf::actor watch, uint64_t attempt,
                                    caf::timespan lookup_timeout);

/// A forwarding proxy on the local node that hands every message sent to it
/// to `dest` as (forward_atom, sender, stages, receiver, mid, message).
/// Break the cycle (the proxy holds `dest`) with `kill_proxy`.
caf::strong_actor_ptr make_forwarding_proxy(caf::actor_system& sys,
                                            caf::actor dest);

/// Ends `proxy` with `reason` (monitors get down_msg); null is a no-op.
void kill_forwarding_proxy(caf::strong_actor_ptr& proxy, caf::error reason);

/// Encodes `f` and sends it to `transport` as one write. An encoding error
/// is returned (nothing is sent).
caf::error write_frame(caf::event_based_actor* self,
                       const transport_actor& transport, const node_frame& f);

} // namespace shardwire::detail
