// Adopting an already-connected stream socket (asyncio's
// connect_accepted_socket and create_connection(sock=...)), e.g. one end of a
// socketpair or a socket accepted by other code.
#pragma once

#include "transports/stream.hpp"

#include <caf/optional.hpp>

namespace shardwire {

class runtime;

/// Takes ownership of connected stream socket `fd` (closed on error too)
/// and runs it as a transport on `shard` (default: least loaded).
/// Errors: `sw_errc::invalid_argument` if `fd` is not a stream socket.
/// With a TLS context in `tls` (either role) the handshake runs first, as
/// for create_connection / create_server.
void async_connect_accepted_socket(runtime& rt, int fd,
                                   protocol_factory factory,
                                   connect_callback done,
                                   caf::optional<size_t> shard = caf::none,
                                   tls_params tls = {});

caf::expected<connection>
connect_accepted_socket(runtime& rt, int fd, protocol_factory factory,
                        caf::optional<size_t> shard = caf::none,
                        tls_params tls = {});

} // namespace shardwire
