// Faults of one directed simulated link (host A -> host B), as values.
//
// Every field is off by default except a small fixed latency. Set them with
// `network::link(a, b)` (mid-test changes apply to bytes sent afterwards;
// what is already in flight keeps its schedule). Which faults touch which
// transport:
// - streams (TCP-like, reliable): latency, jitter, bandwidth, slicing,
//   corruption, cut_after, slow_close, connect faults; a blocked link stalls
//   segments until it heals (retransmission), it never loses them;
// - datagrams (UDP-like): latency, jitter, bandwidth, loss and burst loss,
//   duplication, reordering, corruption; a blocked link drops them.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace shardwire::sim {

/// Virtual durations are nanoseconds.
using duration = std::chrono::nanoseconds;

/// Shape of the random part added to a link's base latency.
enum class jitter_distribution : uint8_t {
  /// Uniform in [0, jitter].
  uniform,
  /// |normal(0, jitter)|.
  normal,
  /// Exponential with mean `jitter` (netem-like long tail).
  exponential,
  /// Pareto with scale jitter/3, shape 1.5, capped at 20 * jitter.
  pareto,
};

/// Gilbert-Elliott two-state loss model (netem's `gemodel p r 1-h 1-k`):
/// each datagram first moves the chain (good -> bad with `p_enter_bad`,
/// bad -> good with `p_leave_bad`), then is lost with the state's rate.
struct burst_loss {
  double p_enter_bad = 0.0;
  double p_leave_bad = 1.0;
  double loss_in_bad = 1.0;
  double loss_in_good = 0.0;
  bool enabled() const noexcept { return p_enter_bad > 0.0; }
};

/// The faults of one directed link. Probabilities are per message (per
/// datagram, or per stream segment for corruption).
struct link_faults {
  duration latency = std::chrono::milliseconds(1);
  duration jitter = duration::zero();
  jitter_distribution distribution = jitter_distribution::uniform;
  /// Bytes per second; 0 = unlimited. Messages queue behind each other.
  uint64_t bandwidth = 0;
  /// Datagrams: independent loss probability.
  double loss = 0.0;
  /// Datagrams: bursty loss (combined with `loss`: lost if either says so).
  burst_loss burst;
  /// Datagrams: probability that a datagram is delivered twice.
  double duplicate = 0.0;
  /// Datagrams: probability that a datagram is held back by
  /// `reorder_delay`, so later ones overtake it.
  double reorder = 0.0;
  duration reorder_delay = std::chrono::milliseconds(10);
  /// Probability that a message (datagram or stream segment) has one byte
  /// flipped.
  double corrupt = 0.0;
  /// Streams: every write is cut into pieces of 1..slice_max bytes, each
  /// delivered as its own segment (`slice_gap` apart), so the receiver sees
  /// arbitrary chunk boundaries. 0 = off.
  size_t slice_max = 0;
  duration slice_gap = duration::zero();
  /// Streams: after this many bytes crossed this link on one connection,
  /// the connection is reset (both ends get ECONNRESET).
  std::optional<uint64_t> cut_after;
  /// Streams: extra delay of the FIN (close / write_eof) on this link.
  duration slow_close = duration::zero();
  /// Connects from A to B are refused (ECONNREFUSED after one round trip).
  bool refuse_connect = false;
  /// Connects from A to B never complete (until the connect timeout).
  bool hang_connect = false;
};

} // namespace shardwire::sim
