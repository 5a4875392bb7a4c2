// Pipe transports (asyncio's connect_read_pipe / connect_write_pipe): a
// stream transport over one end of a pipe, FIFO or character device.
//
// Read pipe: the protocol gets `connected`, then `data` as bytes arrive and,
// at end of file, `eof` followed by `lost` (no error) whatever `eof`'s reply
// says: a pipe has no write side to keep open. `pause_reading` /
// `resume_reading` and read back-pressure work as on sockets; `write` is
// refused with `sw_errc::not_supported` (logged for a plain send).
//
// Write pipe: `write`/`writelines` with the usual high/low water marks and
// `pause`/`resume`; `write_eof` (or `close`) closes the pipe once the buffer
// drained and the protocol gets `lost` with no error. When the reading end
// is closed the transport ends by itself: `lost` with no error if nothing was
// queued, EPIPE otherwise (asyncio's BrokenPipeError).
//
// Both run pinned to one shard, like every stream transport, and own `fd`
// from the call on (it is closed on any failure).
#pragma once

#include "transports/stream.hpp"

#include <caf/optional.hpp>

namespace shardwire {

class runtime;

/// Runs read end `fd` as a read pipe transport on `shard` (default: least
/// loaded). `done` gets the connection once the protocol handled
/// `connected`, or the error.
void async_connect_read_pipe(runtime& rt, int fd, protocol_factory factory,
                             connect_callback done,
                             caf::optional<size_t> shard = caf::none);

/// Runs write end `fd` as a write pipe transport; as above.
void async_connect_write_pipe(runtime& rt, int fd, protocol_factory factory,
                              connect_callback done,
                              caf::optional<size_t> shard = caf::none);

/// Blocking variants; must not be called on a shard thread.
caf::expected<connection>
connect_read_pipe(runtime& rt, int fd, protocol_factory factory,
                  caf::optional<size_t> shard = caf::none);
caf::expected<connection>
connect_write_pipe(runtime& rt, int fd, protocol_factory factory,
                   caf::optional<size_t> shard = caf::none);

} // namespace shardwire
