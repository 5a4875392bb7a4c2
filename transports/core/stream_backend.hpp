// What a byte backend gives the stream transport core (stream_core.hpp).
//
// The core is the one stream transport actor: every rule of the vocabulary
// (handlers, write queue and watermarks, read credit, eof / close / abort,
// `lost` once and last, set_protocol, the fast path) lives there, once. A
// backend only moves bytes and reports readiness: a non-blocking fd on the
// shard's poller (transports/detail/fd_stream_backend.hpp), one end of a
// simulated link (sim/detail/stream_backend.hpp), a script in the core's
// unit tests, and (next) TLS records layered over another backend. The
// design note is docs/transport-core.md.
//
// The contract, for a backend type B held by value in the core:
//
//   caf::error start(io_owner& owner, shard& home, stream_direction dir)
//       On the home shard, in the actor's make_behavior. Registers for
//       readiness (none wanted yet). On an error the backend has released
//       its resource; the core reports the error and quits.
//   void stop() noexcept
//       In on_exit (and after a failed start). No readiness call follows;
//       the resource (fd, simulated socket) is released. Idempotent.
//   bool is_open() const noexcept
//       start succeeded and stop has not run.
//   io_result read(std::span<std::byte> into)
//       One non-blocking read into `into` (at most its size, from its
//       start): the core's pooled chunk, which it freezes into the `data`
//       it sends, or the memory a buffered protocol lent it.
//   io_result write(const buffer* parts, size_t n)
//       One non-blocking gathered write of the first min(n, B::max_parts)
//       parts (none empty); may take fewer bytes than offered. Never raises
//       SIGPIPE.
//   void shutdown_write() noexcept
//       Half-close once the queue drained (SHUT_WR, a FIN on the simulated
//       link). A backend without a half-close does nothing; for pipes the
//       core closes instead (asyncio).
//   int want(uint8_t interest)
//       The readiness the core waits for now (fd_read | fd_write |
//       fd_hangup bits of runtime/fd_poller.hpp); 0 or an errno. Cheap
//       when unchanged; called after every readiness call.
//   void describe(transport_info& info) const
//       kind, sockname, peername, fd (-1 if none).
//   const std::string& kind() const noexcept, int fd() const noexcept
//       For log lines.
//   static constexpr size_t max_parts
//
// Readiness: the backend calls `owner.on_io_ready(readable, writable,
// failed)` on the home shard thread while the actor is idle (never from
// inside one of the calls above), only for what was wanted, and again
// while the condition lasts: a read that returned bytes does not clear
// readability, only `would_block` (or a short read, for an fd) does. So the
// core may read once per call without losing the rest. `failed` means a
// hang-up or error is pending; the next read or write reports it.
//
// Errors: read/write report an errno in io_result::error; the core turns
// it into `lost{errno}` (ECONNRESET, EPIPE, ...). `would_block` is never a
// message. Rules that are not the backend's (the write cap, write after
// write_eof, a pipe's direction) are the core's.
#pragma once

#include "actors/messages.hpp"
#include "runtime/buffer.hpp"
#include "runtime/fd_poller.hpp"
#include "runtime/shard.hpp"

#include <caf/error.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>

namespace shardwire::transport_core {

/// Which way bytes flow through a stream transport.
enum class stream_direction : uint8_t {
  /// Sockets (and socket-like fds): read and write, half-close.
  both,
  /// A read pipe (asyncio's _UnixReadPipeTransport): EOF is followed by
  /// `lost`; `write` is refused with sw_errc::not_supported.
  read_only,
  /// A write pipe (asyncio's _UnixWritePipeTransport): never reads; the
  /// reader closing its end ends the transport (EPIPE if bytes were still
  /// queued); `write_eof` closes the pipe once drained.
  write_only,
};

/// What one read or write of a backend did.
struct io_result {
  /// Nothing to read, or no room to write: wait for readiness.
  static constexpr int would_block = EAGAIN;

  /// Bytes read or taken.
  size_t bytes = 0;
  /// 0, would_block, or an errno (the connection is broken).
  int error = 0;
  /// A read found the end of input.
  bool eof = false;
};

/// Where a backend reports readiness (implemented by the core).
class io_owner {
public:
  virtual void on_io_ready(bool readable, bool writable, bool failed) = 0;

protected:
  ~io_owner() = default;
};

} // namespace shardwire::transport_core
