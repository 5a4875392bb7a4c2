// asyncio's transport.get_extra_info(name, default): one value of a
// transport's (or a subprocess's) extra info, looked up by name.
//
// Both styles get the whole `transport_info` (in `connected`, from
// `transport_ref::info()`, or by requesting `get_extra_info{}`); this reads
// one entry of it under asyncio's names. A name the transport does not have
// gives `fallback`, as in asyncio; so does one it has no value for (a
// pipe's "peername", an unconnected datagram endpoint's "peername").
#pragma once

#include "actors/endpoint.hpp"
#include "actors/messages.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace shardwire {

/// One value of extra info: none (asyncio's None), a number (an fd, a pid,
/// a shard), a text, or an address.
using extra_value = std::variant<std::monostate, int64_t, std::string, endpoint>;

/// The names a transport answers, and their types:
/// - "peername", "sockname": endpoint (sockets and the simulator's
///   connections; a datagram endpoint's "peername" only when connected);
/// - "socket": int64_t, the fd of a socket transport (the transport owns
///   it: for inspection only);
/// - "pipe": int64_t, the fd of a pipe transport ("read_pipe",
///   "write_pipe");
/// - "kind": string ("tcp", "unix", "socket", "read_pipe", "write_pipe",
///   "udp", "unix_dgram");
/// - "shard": int64_t, the shard the transport lives on;
/// - any name in `info.named` (a layered backend's, e.g. TLS): string.
/// Anything else: `fallback`.
extra_value extra_info(const transport_info& info, std::string_view name,
                           extra_value fallback = {});

/// A subprocess transport's names: "subprocess" and "pid" (int64_t, the
/// child's pid: asyncio gives its Popen object), "pgid" (int64_t), "args"
/// (string, argv joined by spaces), "shard" (int64_t). Anything else:
/// `fallback`.
extra_value extra_info(const process_info& info, std::string_view name,
                           extra_value fallback = {});

} // namespace shardwire
