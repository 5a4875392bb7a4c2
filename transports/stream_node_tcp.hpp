// Stream nodes (actors/stream_node.hpp) over real TCP: the connector that
// service watches use to reach a node served with `create_server(rt,
// serve_stream_node(dir), ...)`.
#pragma once

#include "actors/stream_node.hpp"

#include <chrono>

namespace shardwire {

class runtime;

/// A `stream_connector` over TCP on `rt`'s shards (`async_create_connection`
/// of transports/tcp.hpp): `addr.host` is resolved off the shard threads,
/// `timeout` bounds resolution plus connect (0: none). Never blocks; `done`
/// runs on a shard thread. `rt` must outlive every watch using it.
stream_connector tcp_stream_connector(
    runtime& rt, std::chrono::milliseconds timeout = std::chrono::seconds(2));

} // namespace shardwire
