// Faults a fault proxy applies to one direction of a relayed TCP connection
// (see tools/fault_proxy.hpp), and their text form.
//
// The vocabulary follows Toxiproxy's toxics (latency + jitter, bandwidth,
// slicer, limit_data, reset_peer, timeout-as-black-hole) so that people who
// know it find the same knobs. Every field has one text key, used alike by the
// `chaos_proxy` command line (`--up.<key>=<value>`), its control channel
// (`set up.<key> <value>`) and `fault_proxy::set`:
//
//   latency-ms      delay added to every byte                     (0 = off)
//   jitter-ms       uniform extra delay in [-jitter, +jitter]     (0 = off)
//   bandwidth       bytes per second                              (0 = off)
//   slice-min       smallest piece the data is cut into           (0 = off)
//   slice-max       largest piece (slicing is on when > 0)
//   slice-delay-us  pause between two pieces of one chunk         (0 = none)
//   cut-after       close the connection after N bytes            (-1 = off)
//   reset-after     reset the connection after N bytes            (-1 = off)
//   reset-after-ms  reset the connection T ms after it started    (-1 = off)
//   black-hole      swallow data and EOF, keep the connection open (0/1)
//   cut-after-ms    close the connection T ms after it started    (-1 = off)
//   close-delay-ms  hold this direction's EOF back this long       (0 = off)
//
// Pure values: no threads, no actors; copy them freely.
#pragma once

#include <caf/error.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardwire {

/// The two directions of a relayed connection, named as in Toxiproxy.
enum class fault_direction : uint8_t {
  /// Client to upstream (what the client sends).
  up = 0,
  /// Upstream to client (what the client receives).
  down = 1,
};

/// "up" or "down".
std::string to_string(fault_direction x);

/// Faults for one direction. A default-constructed spec relays unchanged.
struct fault_spec {
  /// Added to the time every byte spends in the proxy.
  std::chrono::milliseconds latency{0};
  /// Each chunk's delay is latency + uniform(-jitter, +jitter), never below
  /// zero and never earlier than the chunk before it (a stream keeps order).
  std::chrono::milliseconds jitter{0};
  /// Bytes per second leaving the proxy in this direction; 0 = unlimited.
  uint64_t bandwidth = 0;
  /// Slicing: each chunk is cut into pieces of a random size in
  /// [slice_min, slice_max] (slice_min 0 counts as 1), each written to the
  /// socket separately. Off while slice_max is 0.
  size_t slice_min = 0;
  size_t slice_max = 0;
  /// Pause between consecutive pieces of one sliced chunk.
  std::chrono::microseconds slice_delay{0};
  /// After this many bytes left the proxy in this direction, both sockets
  /// are closed (FIN): the receiver sees exactly N bytes, then EOF.
  std::optional<uint64_t> cut_after;
  /// Like `cut_after`, but both sockets are reset (RST).
  std::optional<uint64_t> reset_after;
  /// Both sockets are reset this long after the upstream connection was
  /// made (the earlier of the two directions' values wins).
  std::optional<std::chrono::milliseconds> reset_after_time;
  /// Swallow everything (data and EOF) in this direction; the connection
  /// stays open.
  bool black_hole = false;
  /// Both sockets are closed (FIN, what was already written is flushed)
  /// this long after the upstream connection was made (Toxiproxy's
  /// `timeout` with T > 0, together with `black_hole`).
  std::optional<std::chrono::milliseconds> cut_after_time;
  /// The EOF of this direction (source closed or gone) reaches the sink
  /// this much later than it otherwise would (Toxiproxy's `slow_close`).
  std::chrono::milliseconds close_delay{0};

  /// True if this spec changes nothing.
  bool is_clean() const noexcept;

  friend bool operator==(const fault_spec&, const fault_spec&) = default;
};

/// The faults of both directions.
struct fault_set {
  fault_spec up;
  fault_spec down;

  fault_spec& operator[](fault_direction d) noexcept {
    return d == fault_direction::up ? up : down;
  }
  const fault_spec& operator[](fault_direction d) const noexcept {
    return d == fault_direction::up ? up : down;
  }

  friend bool operator==(const fault_set&, const fault_set&) = default;
};

/// The faults of `a` and then `b` on one direction, as one spec: what two
/// stacked Toxiproxy toxics do when composed into the fixed pipeline.
/// Delays add (latency, jitter, slice delay, close delay); limits take the
/// tighter value (bandwidth: the smallest non-zero rate; slicing: the
/// smaller bounds; cut/reset counts and times: the smallest); black hole if
/// either. Commutative, and the clean spec is its identity.
fault_spec stack(const fault_spec& a, const fault_spec& b);

/// The text keys of a `fault_spec`, in the order of the table above.
const std::vector<std::string>& fault_keys();

/// Sets field `key` (e.g. "latency-ms") of `spec` from `value`. Numbers are
/// decimal; "-1" or "off" turns an optional field off; black-hole takes
/// 0/1/true/false/on/off. Errors (`sw_errc::invalid_argument`): unknown key,
/// malformed or out-of-range value, slice-min > slice-max. `spec` is left
/// unchanged on error.
caf::error set_fault(fault_spec& spec, std::string_view key,
                     std::string_view value);

/// Sets "up.<key>", "down.<key>" or "both.<key>" in `faults`; same errors.
caf::error set_fault(fault_set& faults, std::string_view qualified_key,
                     std::string_view value);

/// The value of `key` as `set_fault` would accept it ("-1" for off).
std::string get_fault(const fault_spec& spec, std::string_view key);

/// "key=value" for every field that differs from the default, separated by
/// spaces; "clean" if none.
std::string to_string(const fault_spec& spec);

} // namespace shardwire
