// Types shared by every stream transport (TCP, Unix, adopted sockets,
// pipes), and the blocking wait behind the blocking connect functions.
#pragma once

#include "actors/messages.hpp"
#include "actors/protocol.hpp"

#include <caf/expected.hpp>

#include <chrono>
#include <functional>

namespace shardwire {

class runtime;

/// A live connection: its transport and protocol actors, both on the shard
/// named in `info.shard`.
struct connection {
  transport_actor transport;
  protocol_actor protocol;
  transport_info info;
};

/// Called once when a connection attempt finishes: with the connection after
/// the protocol handled `connected` (asyncio: connection_made runs before
/// create_connection returns), or with the error. Runs on a shard thread:
/// keep it short, never block in it.
using connect_callback = std::function<void(caf::expected<connection>)>;

/// Per-transport settings, taken from the runtime's configuration (and, for
/// `reads_follow_writes`, from the server or connect options).
struct stream_settings {
  size_t read_chunk_size = 16 * 1024;
  size_t read_high_water = 1024 * 1024;
  size_t read_low_water = 256 * 1024;
  /// Unsent bytes past which the connection is aborted with
  /// `sw_errc::write_buffer_overflow`; 0 = no cap.
  uint64_t write_buffer_cap = 0;
  /// Reading stops while the transport's writes are paused (its write
  /// buffer is above the high-water mark) and resumes with them.
  bool reads_follow_writes = false;
  /// TCP sockets only (transports/tcp.hpp, tcp_keepalive): SO_KEEPALIVE
  /// with these idle / interval / count (off while keepalive_idle is 0).
  std::chrono::seconds keepalive_idle{0};
  std::chrono::seconds keepalive_interval{0};
  int keepalive_count = 0;
  /// TCP sockets only: TCP_USER_TIMEOUT in ms (0: the kernel's).
  std::chrono::milliseconds user_timeout{0};
  /// TLS from the first byte (transports/tls.hpp); no context: plain.
  tls_params tls{};

  static stream_settings from(const runtime& rt);
};

/// Blocks the calling thread until `start(callback)` delivers a result.
/// Must not be called on a shard thread (it would wait on itself); returns
/// sw_errc::shutdown if the runtime stopped first.
caf::expected<connection>
await_connection(const std::function<void(connect_callback)>& start);

} // namespace shardwire
