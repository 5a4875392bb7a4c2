// A fault-injecting TCP proxy built on shardwire's own transports: faults on
// real sockets, for out-of-process tests of real programs (Toxiproxy's job,
// without a Go daemon; chaos_proxy serves Toxiproxy's HTTP API over named
// instances of it, tools/toxiproxy_api.hpp).
//
// Each accepted client connection gets one relay session: a pinned actor on
// the shard that accepted it, plus one thin protocol actor per socket that
// forwards its transport's messages to the session. The session opens the
// upstream connection on the same shard (async_create_connection; no shard
// thread ever blocks), so both sockets, both protocols and the session share
// one thread and every hop can take the co-located fast path.
//
// Per direction the session runs a pipeline over the bytes it reads (see
// fault_spec.hpp): black-hole, slicing, latency + jitter, bandwidth, then
// cut/reset counted at the moment bytes leave the proxy, and a held-back EOF
// (close delay). Delayed bytes wait in a per-direction queue released by CAF
// timers, in order. The spec a session runs is the proxy's base faults with
// the stacked layers that apply to that connection on top (`fault_layer`).
//
// Flow control: a direction stops reading its source socket (pause_reading)
// while its sink transport reports `pause` (its write buffer is above the
// high mark), while its own queue holds more than `queue_high_water` bytes
// (until it drained to `queue_low_water`), and, for `up`, until the upstream
// connection exists. So a slow or stalled upstream bounds the proxy's memory
// per connection at roughly the transport's write limit + the queue bound +
// one read chunk.
//
// Threads: `fault_proxy` is a handle usable from any thread; its methods are
// thread-safe and never block on a shard, except where noted.
#pragma once

#include "actors/endpoint.hpp"
#include "actors/messages.hpp"
#include "tools/fault_spec.hpp"

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace shardwire {

class runtime;

namespace detail {
struct fault_proxy_state;
} // namespace detail

struct fault_proxy_options {
  /// Address to listen on; port 0 picks a free one (see
  /// `fault_proxy::address`).
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 0;
  /// Where every accepted connection is relayed to.
  std::string upstream_host = "127.0.0.1";
  uint16_t upstream_port = 0;
  /// Bound on resolving + connecting upstream; a client whose upstream
  /// cannot be reached in time is closed.
  std::chrono::milliseconds connect_timeout{5000};
  /// Seed of the per-connection random generators (jitter, slice sizes).
  /// Connection k (0-based, in accept order) uses seed + k, so the fault
  /// decisions of a connection are reproducible; timing is real time.
  uint64_t seed = 0;
  /// Per direction queue bounds (bytes) of the read-pause hysteresis.
  size_t queue_high_water = 256 * 1024;
  size_t queue_low_water = 64 * 1024;
  /// Faults in force from the first connection on.
  fault_set faults;
};

/// One stacked fault of one direction (a Toxiproxy toxic, translated to a
/// `fault_spec` by tools/toxiproxy_model.hpp). Each connection decides once
/// per layer and generation, with its own random generator, whether the
/// layer applies to it (probability `toxicity`); the layers that apply are
/// stacked (see `stack` in fault_spec.hpp) on top of the proxy's base
/// faults in list order.
struct fault_layer {
  /// Identifies the layer across `set_layers` calls (a connection keeps
  /// its draw while id and generation stay the same).
  uint64_t id = 0;
  /// Bump it when the layer changes: the connection draws again and the
  /// layer's timers restart from `since`.
  uint64_t generation = 0;
  fault_direction dir = fault_direction::down;
  /// Probability in [0, 1] that the layer applies to a connection.
  double toxicity = 1.0;
  fault_spec spec;
  /// When the layer was added or last changed. Its time-triggered faults
  /// (cut_after_time, reset_after_time) count from the later of this and
  /// the connection's start, as a Toxiproxy toxic's timer starts when the
  /// toxic starts on a link.
  std::chrono::steady_clock::time_point since{};
  /// When true, the time-triggered faults count instead from the first
  /// byte that reaches the layer's direction of a connection after the
  /// layer started there, and are not armed before it (Toxiproxy's
  /// `reset_peer`: T ms after the first data, a silent connection is left
  /// alone).
  bool timers_from_first_data = false;
};

/// Counters since start; all monotonic except `live_connections`.
struct fault_proxy_stats {
  uint64_t connections = 0;       // accepted
  uint64_t live_connections = 0;  // sessions alive now
  uint64_t upstream_failures = 0; // upstream connect failed, client closed
  uint64_t bytes_up = 0;          // bytes that left the proxy upstream
  uint64_t bytes_down = 0;        // bytes that left the proxy to clients
  uint64_t swallowed_up = 0;      // bytes black-holed
  uint64_t swallowed_down = 0;
  uint64_t writes_up = 0; // write messages sent (pieces, for slicing)
  uint64_t writes_down = 0;
  uint64_t cuts = 0;          // connections ended by cut-after
  uint64_t resets = 0;        // connections reset by reset-after(-ms)/sever
  uint64_t received_up = 0;   // bytes read from clients
  uint64_t received_down = 0; // bytes read from upstreams
};

/// "connections=.. live=.. ..." on one line.
std::string to_string(const fault_proxy_stats& x);

/// A running fault proxy. Move-only; `stop` (or destruction) stops it.
class fault_proxy {
public:
  /// Listens and starts relaying. Errors: those of `create_server`
  /// (EADDRINUSE ...), `sw_errc::invalid_argument` for a zero upstream port
  /// or bad queue bounds. Resolves the listen address: call it at startup or
  /// from a non-shard thread.
  static caf::expected<fault_proxy> start(runtime& rt,
                                          fault_proxy_options opts);

  fault_proxy() = default;
  fault_proxy(fault_proxy&&) noexcept = default;
  fault_proxy& operator=(fault_proxy&&) noexcept;
  /// Calls `stop`. Destroy the handle before its runtime.
  ~fault_proxy();

  /// The bound listening address (port resolved when 0 was asked).
  const endpoint& address() const noexcept { return address_; }

  /// The server actor (see `server_actor`).
  const server_actor& server() const noexcept { return server_; }

  // -- faults at run time ----------------------------------------------------

  /// Replaces all faults. Takes effect for every live connection: data that
  /// arrives from now on is treated with the new faults, data already queued
  /// keeps the schedule it got, a time-triggered reset is re-armed from the
  /// connection's start. Returns before the sessions saw the change;
  /// each session picks it up at its next event or its `changed` message.
  void update(const fault_set& faults);

  /// Replaces the faults of one direction (same semantics as `update`).
  void update(fault_direction dir, const fault_spec& spec);

  /// Sets one field, e.g. set("down.latency-ms", "200"); see set_fault.
  caf::error set(std::string_view qualified_key, std::string_view value);

  /// Removes every base fault (`update`, `set`); layers stay.
  void clear();

  /// Replaces the stacked layers (see `fault_layer`); same propagation as
  /// `update`. Layers and base faults are independent.
  void set_layers(std::vector<fault_layer> layers);

  /// The layers in force.
  std::vector<fault_layer> layers() const;

  /// The faults in force.
  fault_set faults() const;

  fault_proxy_stats stats() const;

  /// Resets (RST) every live connection, both sockets; new connections are
  /// still accepted.
  void sever_all();

  // -- control language ------------------------------------------------------

  /// Runs one line of the text control language (chaos_proxy's control
  /// channel and stdin) and returns the reply, one or more lines, the last
  /// starting with "OK" or "ERR":
  ///   set <up|down|both>.<key> <value>   -> OK
  ///   get <up|down|both>.<key>           -> <value> / OK
  ///   faults                             -> up: ... / down: ... / OK
  ///   status                             -> counters / OK
  ///   clear | reset-all                  -> OK (every fault removed)
  ///   sever                              -> OK (live connections reset)
  ///   help                               -> the command list / OK
  /// Empty lines and lines starting with '#' answer "OK".
  std::string execute(std::string_view line);

  // -- lifecycle -------------------------------------------------------------

  /// Stops accepting and resets every live connection. Idempotent. Does not
  /// wait for the sessions to end (the runtime's shutdown does).
  void stop();

  /// `stop`, then blocks until the listening sockets are closed (so the
  /// port can be bound again and new clients are refused) and the live
  /// connections are gone, or `timeout` passed. Blocks: never call it on a
  /// shard thread.
  void stop_and_wait(std::chrono::milliseconds timeout);

  explicit operator bool() const noexcept { return state_ != nullptr; }

private:
  std::shared_ptr<detail::fault_proxy_state> state_;
  server_actor server_;
  endpoint address_;
};

} // namespace shardwire
