// The datagram transport over sockets: the datagram core
// (transports/core/datagram_core.hpp) on the fd backend. Private to
// transports/.
#pragma once

#include "transports/core/datagram_core.hpp"
#include "transports/detail/fd_datagram_backend.hpp"

#include <string>

namespace shardwire::detail {

/// Every UDP and Unix datagram endpoint.
using datagram_transport =
    transport_core::datagram_core<fd_datagram_backend>;

/// Creates the transport for datagram socket `fd` on shard `s`; the
/// transport owns `fd` from now on (closed on any failure) and spawns the
/// protocol with `factory` on the same shard. `kind` becomes
/// `transport_info::kind`. `done` (may be empty) gets the result.
void spawn_datagram_transport(shard& s, int fd, std::string kind,
                              datagram_protocol_factory factory,
                              datagram_settings settings,
                              datagram_callback done);

} // namespace shardwire::detail

namespace shardwire::transport_core {
extern template class datagram_core<detail::fd_datagram_backend>;
} // namespace shardwire::transport_core
