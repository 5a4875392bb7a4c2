// A layer between the stream core and its byte backend: TLS records over
// any backend (fd, simulated link, test script), written once.
//
// The core (stream_core.hpp) owns at most one layer. Without one it calls
// its backend directly (the data path of plain connections is unchanged:
// one pointer test). With one, the core's reads, writes and interest go to
// the layer, and the layer reaches the backend through the core's
// layer_port. A layer is made by a factory (make_tls_layer in
// transports/tls/tls_layer.hpp), so the core does not depend on OpenSSL.
//
// Everything runs on the core's home shard thread, inside the core's
// handlers or its readiness calls; a layer never sends a message, never
// touches the protocol and never calls the core back except through
// layer_port's byte calls.
#pragma once

#include "actors/messages.hpp"
#include "transports/core/stream_backend.hpp"

#include <caf/error.hpp>

#include <caf/expected.hpp>
#include <cstddef>

#include <cstdint>
#include <memory>
#include <span>

namespace shardwire::transport_core {

/// The backend below a layer, as the core exposes it.
class layer_port {
public:
  /// One non-blocking read of the backend (stream_backend.hpp's read).
  virtual io_result lower_read(std::span<std::byte> into) = 0;
  /// One non-blocking write of the backend; may take fewer bytes.
  virtual io_result lower_write(const std::byte* bytes, size_t n) = 0;

protected:
  ~layer_port() = default;
};

/// io_result::error of a layer's read or write when the layer failed (a
/// TLS alert, a truncated stream): the reason is `stream_layer::error()`.
inline constexpr int layer_failed = EPROTO;

class stream_layer {
public:
  virtual ~stream_layer() = default;

  /// Begins the layer's own exchange over `port` (a TLS client sends its
  /// hello). The port outlives the layer.
  virtual void start(layer_port& port) = 0;

  /// The handshake is done: application bytes may flow.
  virtual bool established() const noexcept = 0;

  /// Why the layer failed; empty while it has not. Once set it stays, and
  /// every read and write reports layer_failed.
  virtual caf::error error() const = 0;

  /// The backend reported readiness (for what lower_interest asked). The
  /// layer moves its own bytes: handshake records in, pending output out.
  /// Application bytes are read later by `read`.
  virtual void on_lower_ready(bool readable, bool writable, bool failed) = 0;

  /// Application bytes into `into` (stream_backend.hpp's read contract):
  /// bytes, eof (the peer closed cleanly), would_block, or layer_failed /
  /// an errno of the backend.
  virtual io_result read(std::span<std::byte> into) = 0;

  /// Application bytes out: takes what it can (encrypts it) and returns the
  /// count; would_block while the handshake runs or while output the
  /// backend did not take is above the layer's bound (so the core's queue,
  /// its watermarks and its pause count the application's bytes).
  virtual io_result write(const buffer* parts, size_t n) = 0;

  /// What the backend must wait for while the core wants `core_wants`
  /// (fd_read / fd_write bits).
  virtual uint8_t lower_interest(uint8_t core_wants) const noexcept = 0;

  /// Application input is ready without the backend being readable (bytes
  /// decrypted and held, or a close_notify seen): the core asks again.
  virtual bool input_buffered() const noexcept = 0;

  /// Output the backend has not taken yet.
  virtual bool output_pending() const noexcept = 0;

  /// A clean close: queue the closing message (close_notify) after what is
  /// pending. Idempotent.
  virtual void shutdown() = 0;

  /// Bytes that reached the transport before the layer was put in place
  /// (start_tls's early bytes), in order, taken before the backend's.
  virtual void feed(const buffer& bytes) = 0;

  /// While held, the layer reads nothing from the backend (start_tls waits
  /// for bytes the protocol hands back first).
  virtual void hold_input(bool on) noexcept = 0;

  /// Adds the layer's names to the transport's extra info.
  virtual void describe(transport_info& info) const = 0;
};

/// The TLS layer for `params` (made in transports/tls/tls_layer.cpp), not
/// started. Errors: tls_errc::bad_config (no context, a context that cannot
/// make a session).
caf::expected<std::unique_ptr<stream_layer>>
make_tls_layer(const tls_params& params);

} // namespace shardwire::transport_core
