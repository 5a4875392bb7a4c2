// A deterministic simulated network: named hosts, stream and datagram
// transports that speak the real message vocabulary, seeded faults per
// directed link, and virtual time.
//
// Model (docs/simulation.md has the long form):
// - The network owns its own CAF actor system with CAF's deterministic test
//   scheduler and virtual clock, and one shard per host. All of them run on
//   the thread that created the network, and only while that thread is
//   inside `run_until` / `run_for`. Protocol actors are spawned on their
//   host's shard by the same `protocol_factory` the real transports take, so
//   one protocol runs unchanged over TCP or here.
// - Virtual time: nothing waits for real time. The loop runs every ready
//   actor, then jumps to the next network event or actor timer
//   (`delayed_send`, request timeouts). Minutes of traffic take milliseconds.
// - Determinism: all randomness comes from one seeded PRNG and all execution
//   is single-threaded in a fixed order, so the same seed and the same
//   program give the same trace, byte for byte.
//
// Thread rules: every member function must be called from the thread that
// created the network, never from inside an actor of the simulation (they
// do not re-enter the loop; `create_connection` and friends run it).
#pragma once

#include "actors/datagram_protocol.hpp"
#include "actors/protocol.hpp"
#include "transports/datagram.hpp"
#include "sim/faults.hpp"
#include "sim/random.hpp"
#include "transports/stream.hpp"

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace shardwire::sim {

namespace detail {
class core;
} // namespace detail

/// One line of the trace: what happened, when (virtual), and which earlier
/// event caused it (0: the test itself).
struct trace_event {
  duration at;
  uint64_t id;
  uint64_t cause;
  std::string what;
};

/// A message parked by `hold` (or stalled by a partition), as the test sees
/// it.
struct held_message {
  uint64_t id;
  std::string from;
  std::string to;
  /// "segment", "fin" or "datagram".
  std::string kind;
  size_t bytes;
};

struct network_options {
  /// Bytes a stream may have in flight plus unread at the receiver per
  /// direction (the socket buffers); past it, writes queue in the sender's
  /// transport and `pause` follows its watermarks.
  size_t pipe_capacity = 256 * 1024;
  /// Co-located fast path on the hosts' shards (runtime/pinned.hpp): a
  /// message to an idle actor of the simulation is handled inside the send.
  /// Either way a seed replays byte for byte; the two modes order work
  /// differently, so traces of one mode are comparable only with that mode.
  /// Unset: what SHARDWIRE_FAST_PATH says (on unless "0"), as for runtimes.
  std::optional<bool> fast_path;
};

struct connect_options {
  /// Host the connection starts from (name).
  std::string from;
  /// Host name or address ("10.0.0.2") to connect to.
  std::string to;
  uint16_t port = 0;
  /// Virtual bound on the connect; 0 = none (a hung connect stays hung).
  duration timeout = duration::zero();
  /// A client context makes it a TLS connection (see `listen`); the name
  /// checked is `tls.server_hostname`, or else `to`.
  tls_params tls{};
};

struct datagram_options {
  std::string host;
  /// 0 picks an ephemeral port.
  uint16_t port = 0;
  /// A connected endpoint: `sendto` without a peer goes here, and a send to
  /// a port nobody bound comes back as `datagram_error` ECONNREFUSED.
  std::optional<std::pair<std::string, uint16_t>> remote;
};

class network {
public:
  explicit network(uint64_t seed, network_options opts = {});
  /// Kills every actor of the simulation, then stops it.
  ~network();

  network(const network&) = delete;
  network& operator=(const network&) = delete;

  uint64_t seed() const noexcept;

  /// The simulation's PRNG (draws shift later fault decisions; use it for
  /// test randomness so one seed still fixes everything).
  random& rng();

  /// The simulation's actor system (test scheduler, virtual clock).
  caf::actor_system& system();

  // -- hosts ------------------------------------------------------------------

  /// Adds a host named `name` with the next address 10.0.0.N and returns it.
  endpoint add_host(const std::string& name);

  /// Runs `boot` now and after every `restart` of `host` (start servers).
  void on_boot(const std::string& host, std::function<void(network&)> boot);

  endpoint address_of(const std::string& host) const;
  /// Names of all hosts, in the order they were added.
  std::vector<std::string> hosts() const;

  /// The shard of `host` (to spawn actors that live on that host).
  shard& shard_of(const std::string& host);

  /// Stops running the host's actors and its timers (SIGSTOP): its sockets
  /// keep receiving into their buffers until they fill.
  void pause(const std::string& host);
  void resume(const std::string& host);

  /// Kills every actor of `host`; its connections vanish without FIN (peers
  /// notice only by a reset once it restarts, or never), its servers and
  /// datagram sockets are gone.
  void crash(const std::string& host);
  /// Brings a crashed host back and runs its boot function.
  void restart(const std::string& host);

  // -- streams ----------------------------------------------------------------

  /// Accepts connections on host:port; each gets a protocol from `factory`
  /// on the host's shard. Error: EADDRINUSE, unknown_host. With a server
  /// context in `tls`, each connection runs TLS (transports/tls.hpp; the
  /// protocol is made after the handshake). The simulation's TLS has no
  /// handshake or shutdown timer (they run on wall-clock time): bound it
  /// with the connect timeout and faults. OpenSSL's randomness makes the
  /// bytes (not the events) of a TLS run differ between replays.
  caf::error listen(const std::string& host, uint16_t port,
                    protocol_factory factory, tls_params tls = {});
  void stop_listening(const std::string& host, uint16_t port);

  /// Connects (one virtual round trip). `done` runs inside the simulation
  /// with the connection after the protocol handled `connected`, or the
  /// error: ECONNREFUSED, sw_errc::timeout, sw_errc::unknown_host.
  void async_create_connection(connect_options opts, protocol_factory factory,
                               connect_callback done);

  /// Runs the simulation until the connect finished (or `deadline` of
  /// virtual time passed: sw_errc::timeout).
  caf::expected<connection>
  create_connection(connect_options opts, protocol_factory factory,
                    duration deadline = std::chrono::seconds(60));

  /// Resets every live connection between hosts `a` and `b` (both ends get
  /// `lost` with ECONNRESET once the RST arrives).
  void reset_connections(const std::string& a, const std::string& b);

  // -- datagrams --------------------------------------------------------------

  void async_create_datagram_endpoint(datagram_options opts,
                                      datagram_protocol_factory factory,
                                      datagram_callback done);

  caf::expected<datagram_endpoint>
  create_datagram_endpoint(datagram_options opts,
                           datagram_protocol_factory factory,
                           duration deadline = std::chrono::seconds(60));

  // -- faults -----------------------------------------------------------------

  /// The faults of directed link a -> b, to read or change. Changes apply to
  /// messages sent afterwards.
  link_faults& link(const std::string& a, const std::string& b);

  /// Sets the faults of every directed link between distinct hosts (and the
  /// default for hosts added later).
  void set_all_links(const link_faults& f);

  /// Cuts every link between the two sets, both ways.
  void partition(const std::vector<std::string>& a,
                 const std::vector<std::string>& b);
  /// Cuts only the links from `from` to `to`.
  void partition_oneway(const std::vector<std::string>& from,
                        const std::vector<std::string>& to);
  /// Jepsen's named patterns over all hosts in random (seeded) order:
  /// two halves (the first the smaller); one host against the rest
  /// (`host` empty: a random one); every host sees a majority, no two the
  /// same (ring); two halves joined only through one bridge host.
  void partition_halves();
  void isolate(const std::string& host = {});
  void partition_majorities_ring();
  void partition_bridge();
  /// Removes every partition; stalled stream segments continue.
  void heal();
  bool is_blocked(const std::string& a, const std::string& b) const;

  // -- hold and release -------------------------------------------------------

  /// Parks every message sent on a -> b (datagrams and stream segments)
  /// until released.
  void hold(const std::string& a, const std::string& b);
  /// Stops holding a -> b and releases what it held, oldest first.
  void unhold(const std::string& a, const std::string& b);
  std::vector<held_message> held() const;
  /// Delivers held message `id` (one link latency from now). A stream
  /// segment releases the older segments of its stream first, to keep byte
  /// order. False if no such message is held.
  bool release(uint64_t id);

  // -- running ----------------------------------------------------------------

  /// Virtual time since the network was created.
  duration now() const;

  /// Runs until `pred()` holds (checked whenever the simulation is idle at
  /// one instant) or `deadline` of virtual time from now passed, or nothing
  /// is left to do. Returns `pred()`.
  bool run_until(const std::function<bool()>& pred,
                 duration deadline = std::chrono::hours(1));

  /// Runs for `d` of virtual time.
  void run_for(duration d);

  // -- trace and fault accounting ---------------------------------------------

  const std::vector<trace_event>& trace() const;
  /// The trace as text, one event per line:
  /// "[   12.345678ms] #17 <- #12 deliver a->b conn 3 42 bytes".
  std::string trace_text() const;
  /// Adds a line of the test's own to the trace; returns its id.
  uint64_t note(const std::string& text);
  /// How often fault `name` fired, e.g. "loss a->b" or "slice a->b";
  /// a name without a link sums over all links ("loss").
  uint64_t fired(const std::string& name) const;
  /// Faults configured on some link (or partitions made) that never fired,
  /// as "loss a->b": a test that wired a fault in can assert this is empty.
  std::vector<std::string> unfired() const;

  /// Pinned actors alive on all hosts (leak checks).
  size_t live_actors() const;

  detail::core& core() noexcept { return *core_; }

private:
  std::unique_ptr<detail::core> core_;
};

/// Formats a virtual time as "12.345678ms".
std::string format_time(duration t);

} // namespace shardwire::sim
