// Datagram endpoints: UDP and Unix datagram sockets (asyncio's
// create_datagram_endpoint).
//
// Each endpoint is one transport actor (`datagram_transport_actor`) and one
// protocol actor (`datagram_protocol_actor`) on the same shard. The vocabulary
// and its guarantees are in the datagram section of actors/messages.hpp.
//
// Shard-per-core: `create_datagram_endpoints` binds one SO_REUSEPORT socket
// per shard on the same port. The kernel hashes each flow (source address and
// port) to one of those sockets, so all datagrams of one peer land on one
// shard, in the order the kernel received them; different peers spread over
// the shards.
#pragma once

#include "actors/datagram_protocol.hpp"
#include "runtime/host_port.hpp"
#include "transports/datagram.hpp"

#include <caf/expected.hpp>
#include <caf/optional.hpp>

#include <string>
#include <vector>

namespace shardwire {

class runtime;

struct datagram_options {
  /// Address to bind; port 0 picks a free port (see `info.sockname`).
  caf::optional<host_port> local_addr;
  /// Address to connect to (a connected endpoint: `sendto` without peer,
  /// ICMP errors reported as `datagram_error`).
  caf::optional<host_port> remote_addr;
  /// 0: from the addresses; AF_INET or AF_INET6 to restrict; AF_UNIX for
  /// an unbound Unix datagram socket.
  int family = 0;
  /// Unix datagram socket: path to bind ("@name" = abstract namespace). An
  /// existing socket file there is removed first, as asyncio does.
  std::string local_path;
  /// Unix datagram socket: path to connect to.
  std::string remote_path;
  /// SO_REUSEPORT: several endpoints (or processes) share the port.
  bool reuse_port = false;
  /// SO_BROADCAST.
  bool allow_broadcast = false;
  /// Shard for the endpoint; default: the least loaded.
  caf::optional<size_t> shard;
  /// Datagrams read per system call (recvmmsg); 1 uses recvfrom.
  size_t recv_batch = 16;
  /// Queued datagrams flushed per system call (sendmmsg); 1 uses sendto.
  size_t send_batch = 64;
};

/// Creates the socket (binding and connecting it as asked), then transport
/// and protocol on one shard. `done` gets the endpoint after the protocol
/// handled `datagram_connected`, or an error: `sw_errc::invalid_argument`
/// (no address and no family, asyncio's rule; a bad option), `unknown_host`,
/// `errno` EADDRINUSE ... Host names are resolved on the calling thread
/// (getaddrinfo; numeric addresses never block). `done` runs on a shard
/// thread, or on the calling thread for errors found before that.
void async_create_datagram_endpoint(runtime& rt,
                                    datagram_protocol_factory factory,
                                    datagram_options opts,
                                    datagram_callback done);

/// Blocking form for code outside the actor world. Never call it on a shard
/// thread (that returns `sw_errc::invalid_argument`).
caf::expected<datagram_endpoint>
create_datagram_endpoint(runtime& rt, datagram_protocol_factory factory,
                         datagram_options opts);

/// Shard-per-core UDP: `count` endpoints bound to the same `local_addr`
/// with SO_REUSEPORT, endpoint i on shard i (mod the shard count), each with
/// its own protocol from `factory`. With port 0 the first endpoint's port is
/// used for the rest. On any failure the endpoints already made are aborted.
caf::expected<std::vector<datagram_endpoint>>
create_datagram_endpoints(runtime& rt, datagram_protocol_factory factory,
                          datagram_options opts, size_t count);

} // namespace shardwire
