// Stream nodes: the node layer (actors/node.hpp) carried over any shardwire
// byte stream instead of CAF's middleman, so it runs over real TCP on the
// shards and over the simulated network (sim/node_host.hpp) unchanged.
//
// Same vocabulary as CAF nodes: a node publishes named actors in a
// directory; a service watch looks a name up and hands its owner
// `service_up{name, proxy}` / `service_down{name, reason, cause}`; errors are
// `sw_errc::node_unavailable`, `unknown_service` and `incompatible_node`;
// back-off (`watch_backoff`) and heartbeats judged by phi-accrual
// (`heartbeat_policy`) work as for `spawn_service_watch`.
//
// How it works: a connection carries the frames of actors/stream_node_wire.hpp.
// The client's first frame looks a service up; the server binds the
// connection to that actor. The client side's protocol actor then makes a
// proxy: an ordinary dynamically typed actor handle (a CAF
// `forwarding_actor_proxy`) whose every message becomes a request frame
// (one-way for `send`, with an id for `request`); the server delivers it to
// the published actor with a reply address of its own, and the reply, or
// the error, returns in a response frame to the original requester as the
// response to its request. One connection per watched service.
//
// Failure model, as CAF proxies of a node:
// - the link ends (`lost`: a closed or reset connection, a crashed peer
//   that answers with RST) or the watch suspects the node (heartbeats): the
//   proxy exits with `caf::exit_reason::remote_link_unreachable`, so a
//   monitor gets `down_msg` with that reason, and every request still
//   waiting for its response fails with `sw_errc::node_unavailable`;
// - the published actor exits: the server sends its exit reason and the
//   proxy exits with it (the watch reports cause `service_exited`);
// - messages in flight when a link goes are lost; nothing is retried.
//   Requests to a proxy should carry a timeout, as with any remote actor
//   (a request the remote actor never answers stays pending on its link
//   until the link ends); a request to a proxy that already exited fails
//   at once with `node_unavailable`.
//
// Not supported: actor handles inside messages (refused with
// `sw_errc::not_supported` when they are elements of the message; nested
// in user types they are undefined); `link` to a proxy (a link request is
// not carried; monitors work); forwarding stages (`delegate` through a
// proxy answers the sender, not the stages); flow control across the link
// (a proxy's messages queue in its connection's transport).
//
// Thread rules: every function here may be called from any thread, and
// never blocks. The actors run where their factory puts them: the
// connections' protocol actors pinned to the connection's shard (a
// simulated host's shard under the simulator), the watch on CAF's scheduler
// of the actor system given to it (the simulator's: deterministic).
#pragma once

#include "actors/node.hpp"
#include "actors/protocol.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/error.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

namespace shardwire {

// -- publishing ---------------------------------------------------------------

/// The named actors a stream node offers: name -> actor and interface.
///
/// A handle: copies share one directory. Safe from any thread (a mutex
/// guards it; every shard serving it reads it). An `add` is visible to
/// lookups that arrive after it returns. An actor that exits leaves the
/// directory (a lookup then answers `unknown_service`), unless its name was
/// given to another actor meanwhile.
class stream_node_directory {
public:
  /// `sys`: the actor system whose registered types describe interfaces
  /// (and whose actors are published).
  explicit stream_node_directory(caf::actor_system& sys);

  /// Offers `hdl` as `name`; a later `add` with the same name replaces it.
  template <class Handle>
  void add(std::string name, const Handle& hdl) {
    add_actor(std::move(name), caf::actor_cast<caf::actor>(hdl),
              system().message_types<Handle>());
  }

  void add_actor(std::string name, caf::actor hdl,
                 std::set<std::string> interface);

  /// Withdraws `name` (connections bound to it keep their actor).
  void remove(const std::string& name);

  /// The entry for `name`, if any.
  std::optional<service_entry> find(const std::string& name) const;

  caf::actor_system& system() const noexcept;

private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

/// The protocol of a stream node's server: use it as the factory of a
/// server (`create_server` in transports/tcp.hpp, `sim::network::listen`).
/// Per connection one actor pinned to the connection's shard answers
/// lookups and pings and forwards requests to the actor looked up; it
/// ends with its connection.
protocol_factory serve_stream_node(stream_node_directory dir);

// -- connecting ---------------------------------------------------------------

/// Called once when a connect made by a `stream_connector` finishes: with
/// no error after the protocol handled `connected`, or with the connect's
/// error. May run on any thread.
using stream_connect_done = std::function<void(caf::error)>;

/// How a watch opens a connection to `addr.host:addr.port` with the
/// protocol from `factory`: `tcp_stream_connector` (transports/
/// stream_node_tcp.hpp) or `sim::stream_node_connector` (sim/node_host.hpp).
/// Must not block; must call `done` exactly once.
using stream_connector =
    std::function<void(const service_address& addr, protocol_factory factory,
                       stream_connect_done done)>;

/// Spawns an actor on `sys`'s scheduler that keeps the service at `addr`
/// looked up for `owner` over stream node connections made by `connect`,
/// with the documented behaviour of `spawn_service_watch` (node.hpp):
/// - a successful lookup sends `owner` `service_up{name, proxy}`; the proxy
///   is monitored;
/// - a failed lookup (refused, timed out after `policy.lookup_timeout`,
///   `unknown_service`, `incompatible_node`: another directory version or,
///   with a non-empty `interface`, another interface) or a lost link sends
///   `service_down` once per outage (cause `lookup_failed`,
///   `connection_lost` or `service_exited`), then retries after
///   `policy.initial`, doubling up to `policy.max`; after a lost link the
///   first retry starts at once;
/// - with `heartbeats.interval` set, while the service is up a ping frame
///   goes out every interval; when the phi-accrual detector suspects the
///   node, `service_down` with cause `suspected` goes out, the link is
///   dropped (its proxy exits with `remote_link_unreachable`, its pending
///   requests fail with `node_unavailable`) and the lookups start again.
/// Only actor timers are used (delayed messages), so under the simulator
/// all of this runs in virtual time. Messages to `owner` keep the order in
/// which the watch saw the events. The watch exits when `owner` does, or
/// when sent an exit message; its link is then dropped.
caf::actor spawn_stream_service_watch(caf::actor_system& sys,
                                      stream_connector connect,
                                      caf::actor owner, service_address addr,
                                      std::set<std::string> interface = {},
                                      watch_backoff policy = {},
                                      heartbeat_policy heartbeats = {});

} // namespace shardwire
