// Types shared by every datagram endpoint (UDP, Unix datagram, adopted
// datagram sockets).
#pragma once

#include "actors/datagram_protocol.hpp"
#include "actors/messages.hpp"

#include <caf/expected.hpp>

#include <functional>
#include <string>

namespace shardwire {

/// A live datagram endpoint: its transport and protocol actors, both on the
/// shard named in `info.shard`.
struct datagram_endpoint {
  datagram_transport_actor transport;
  datagram_protocol_actor protocol;
  transport_info info;
};

/// Gets the endpoint once the protocol handled `datagram_connected`, or the
/// error. Runs on a shard thread (or on the caller's thread for errors found
/// before any shard was involved): keep it short, never block in it.
using datagram_callback = std::function<void(caf::expected<datagram_endpoint>)>;

/// Per-endpoint settings.
struct datagram_settings {
  /// Datagrams read per recvmmsg call; 1 uses plain recvfrom.
  size_t recv_batch = 16;
  /// Queued datagrams (those that met EAGAIN) flushed per sendmmsg call; 1
  /// uses plain sendto.
  size_t send_batch = 64;
  /// Largest datagram kept; longer ones are truncated (asyncio reads Unix
  /// datagrams with 256 KiB; UDP payloads never exceed 64 KiB).
  size_t max_size = 64 * 1024;
  /// Read back-pressure marks (bytes of undelivered datagrams).
  size_t read_high_water = 1024 * 1024;
  size_t read_low_water = 256 * 1024;
  /// The socket is connected: `sendto` takes no peer (or the remote one).
  bool connected = false;
};

} // namespace shardwire
