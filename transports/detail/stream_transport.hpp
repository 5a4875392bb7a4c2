// The stream transport over descriptors: the transport core
// (transports/core/stream_core.hpp) on the fd backend. Private to
// transports/.
#pragma once

#include "transports/core/stream_core.hpp"
#include "transports/detail/fd_stream_backend.hpp"
#include "transports/stream.hpp"

#include <string>

namespace shardwire::detail {

using transport_core::stream_direction;

/// Every TCP, Unix, adopted-fd and pipe transport.
using stream_transport = transport_core::stream_core<fd_stream_backend>;

/// Creates the transport actor for connected stream socket `fd` on shard
/// `s`; the transport owns `fd` from now on (it is closed on any failure)
/// and spawns the protocol with `factory` on the same shard. `done` (may be
/// empty) gets the result.
void spawn_stream_transport(shard& s, int fd, std::string kind,
                            protocol_factory factory, stream_settings settings,
                            connect_callback done);

/// The same for one end of a pipe (`read_only` or `write_only`); returns the
/// transport (the subprocess transport spawns its pipes on its own shard).
transport_actor spawn_pipe_transport(shard& s, int fd,
                                     stream_direction direction,
                                     protocol_factory factory,
                                     stream_settings settings,
                                     connect_callback done);

} // namespace shardwire::detail

namespace shardwire::transport_core {
extern template class stream_core<detail::fd_stream_backend>;
} // namespace shardwire::transport_core
