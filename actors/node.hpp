// Nodes of a distributed service: CAF's middleman (caf::io) as the network
// layer between shardwire processes.
//
// A node publishes named actors on one TCP port: CAF publishes a small
// directory actor there, and the directory answers `service_lookup{name}`
// with the actor and its interface. Another process looks a service up by
// host, port and name and gets an ordinary actor handle (a CAF proxy):
// messages to it are serialized with the `inspect` overloads of their types,
// so every type sent must be registered in both processes (shardwire's
// vocabulary is, by `shardwire::config`; applications add theirs).
//
// Failure model: when the connection to a node drops (the process died, the
// network is cut, heartbeats stopped), CAF kills every proxy of that node and
// an actor monitoring one gets a `caf::down_msg` with
// `exit_reason::remote_link_unreachable`; a remote actor that exits is a
// `down_msg` with its own exit reason. `spawn_service_watch` turns both into
// `service_down` / `service_up` messages and looks the service up again with
// exponential back-off until its node is back. Nothing is retried silently:
// messages in flight when a node goes are lost, and requests to it must carry
// a timeout (or be failed by whoever watches the service).
//
// Encrypted links: `enable_tls` runs every link of a node over TLS with
// mutual authentication (CAF's openssl module): each side presents a
// certificate and verifies the other's against the cluster's CA; a peer
// without TLS, or with a certificate the CA did not sign, fails the lookup
// (docs/distributed.md, "Encrypted node links").
//
// Why this lives in actors/: it is vocabulary and actor plumbing on top of
// CAF's own io module, with no socket type of shardwire's; transports/ is not
// needed to run a storage node.
#pragma once

#include "actors/config.hpp"
#include "actors/phi_accrual.hpp"

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace shardwire {

/// Version of the node directory protocol; nodes of other versions are
/// reported as `sw_errc::incompatible_node`.
constexpr uint32_t node_protocol_version = 1;

/// Loads CAF's middleman into `cfg`, registers the node messages and sets
/// network defaults: heartbeats every second and a 5 s connection timeout
/// (so a silent node is noticed, not only one whose socket closes), and an
/// application identifier so that only shardwire nodes complete CAF's
/// handshake. Call it before parsing the command line (options override
/// these defaults) and before the actor system exists.
void enable_networking(caf::actor_system_config& cfg);

// -- encrypted links ----------------------------------------------------------

/// The PEM files for TLS on a node's links; all three or none. Programs
/// take them as `--tls-cert`, `--tls-key` and `--tls-ca`, the names the
/// errors below use.
struct node_tls {
  /// The node's certificate, leaf first, then any intermediates (`tls-cert`).
  std::string cert_file;
  /// Its private key, unencrypted unless CAF's `openssl.passphrase` is set
  /// (`tls-key`).
  std::string key_file;
  /// The CA certificates a peer's certificate must chain to (`tls-ca`).
  std::string ca_file;

  /// Whether any of the three is set.
  bool any() const noexcept {
    return !cert_file.empty() || !key_file.empty() || !ca_file.empty();
  }
};

/// One thing wrong with a `node_tls`: the option it concerns ("tls-cert",
/// "tls-key" or "tls-ca") and what is wrong with it.
struct node_tls_problem {
  std::string option;
  std::string message;
};

/// Checks `tls` without an actor system, as a node's first connection
/// would load it: all three set (or none, which is fine), each file
/// readable PEM, the key matches the certificate, and the certificate
/// verifies against `ca_file` now, as a TLS server and as a TLS client
/// certificate (signed by it, not expired, not yet valid, key usage fit
/// for both ends of a link): with one CA for the cluster, a certificate
/// that fails here would be refused by every peer. `passphrase` unlocks an
/// encrypted key; without one such a key is refused, never prompted for. One
/// entry per problem, in option order; empty when there is none.
std::vector<node_tls_problem>
check_node_tls(const node_tls& tls, const std::string& passphrase = {});

/// Turns TLS with mutual authentication on for every node link of the actor
/// system that will be made from `cfg`: sets CAF's `openssl.certificate`,
/// `openssl.key` and `openssl.cafile` and loads CAF's openssl module, so
/// `node::publish` listens for TLS only and `lookup` / service watches
/// connect with TLS only. Call it after `enable_networking` and after
/// parsing the command line, before the actor system exists; a `tls` with
/// nothing set changes nothing.
///
/// What is verified, on every connection and by both sides (CAF's module,
/// checked in tests/actors/node_tls_test.cpp): the peer presents a
/// certificate, and it chains to a CA in the own `ca_file` and is within
/// its validity period; a connection without a peer certificate is
/// refused. Not verified: the peer's host name or IP address (CAF's module
/// offers no hook for it), so any holder of a certificate from the CA is
/// trusted as a node: use a CA of the cluster's own. The files are read
/// again for every new connection (CAF makes a TLS context per connection):
/// replaced files take effect for new links; files that vanish make CAF
/// throw on the next connection, which ends the process.
///
/// Errors (nothing is changed then): `sw_errc::invalid_argument`, context
/// "--OPTION: what is wrong" for the first problem `check_node_tls` finds.
caf::error enable_tls(caf::actor_system_config& cfg, const node_tls& tls);

/// Whether the node links of `sys` run over TLS (`enable_tls` set up its
/// configuration).
bool tls_enabled(const caf::actor_system& sys);

/// `shardwire::config` with networking enabled (see `enable_networking`).
class node_config : public config {
public:
  node_config();
};

// -- messages -----------------------------------------------------------------

/// Asks a node's directory for the actor published as `name`.
struct service_lookup {
  std::string name;
  uint32_t version = node_protocol_version;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, service_lookup& x) {
  return f(caf::meta::type_name("service_lookup"), x.name, x.version);
}

/// A directory's answer: the actor and the names of the message types it
/// handles (CAF's interface description; empty for an untyped actor).
struct service_entry {
  caf::actor actor;
  std::set<std::string> interface;
  uint32_t version = node_protocol_version;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, service_entry& x) {
  return f(caf::meta::type_name("service_entry"), x.actor, x.interface,
           x.version);
}

/// From a service watch to its owner: the service is reachable as `actor`.
struct service_up {
  std::string name;
  caf::actor actor;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, service_up& x) {
  return f(caf::meta::type_name("service_up"), x.name, x.actor);
}

/// Why a service watch reported a service down.
enum class down_cause : uint8_t {
  /// The lookup failed: node unreachable, service unknown, incompatible.
  lookup_failed,
  /// CAF dropped the connection to the node: it closed, or CAF's own
  /// heartbeats stopped for `middleman.connection-timeout`.
  connection_lost,
  /// The remote actor exited (its reason is in the context).
  service_exited,
  /// The watch's own heartbeats (heartbeat_policy): the phi-accrual
  /// detector's suspicion crossed its threshold while the connection was
  /// still open (a black-holed or hung node).
  suspected,
};

/// "lookup_failed", "connection_lost", "service_exited", "suspected".
std::string to_string(down_cause x);

/// From a service watch to its owner: the service is gone or unreachable;
/// `reason` is `sw_errc::node_unavailable` (context: what happened),
/// `incompatible_node` or `unknown_service`; `cause` says which kind of
/// event it was.
struct service_down {
  std::string name;
  caf::error reason;
  down_cause cause = down_cause::lookup_failed;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, service_down& x) {
  // As its underlying integer: CAF 0.17's inspectors take no enum.
  auto cause = static_cast<uint8_t>(x.cause);
  auto restore = caf::meta::load_callback([&]() -> caf::error {
    x.cause = static_cast<down_cause>(cause);
    return caf::none;
  });
  return f(caf::meta::type_name("service_down"), x.name, x.reason, cause,
           restore);
}

// -- addresses ----------------------------------------------------------------

/// Where a named actor lives: a node's host and port, and the name.
struct service_address {
  std::string host;
  uint16_t port = 0;
  std::string name;
};

/// "name@host:port".
std::string to_string(const service_address& x);

/// Parses "HOST:PORT" (a bracketed IPv6 host allowed) into an address for
/// `name`; `sw_errc::invalid_argument` if it is malformed.
caf::expected<service_address> parse_service_address(std::string_view host_port,
                                                     std::string name);

// -- publishing ---------------------------------------------------------------

/// The named actors one process offers to others on one TCP port.
///
/// Owned by the program's main thread: `publish` and `close` block briefly
/// (they bind / unbind through CAF's middleman); never call them on a shard
/// thread or in a message handler.
class node {
public:
  explicit node(caf::actor_system& sys);
  /// Calls `close`.
  ~node();

  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Offers `hdl` as `name`; a later `add` with the same name replaces it.
  /// Visible to lookups that arrive after this call returns.
  template <class Handle>
  void add(std::string name, const Handle& hdl) {
    add_actor(std::move(name), caf::actor_cast<caf::actor>(hdl),
              sys_.message_types<Handle>());
  }

  void add_actor(std::string name, caf::actor hdl,
                 std::set<std::string> interface);

  /// Listens on `host:port` (0 picks a free port) and returns the port.
  /// `reuse` sets SO_REUSEADDR, so a restarted node gets its old port back
  /// at once. With TLS on (`enable_tls`) the port speaks TLS only.
  /// Errors: CAF's `sec::cannot_open_port` and similar;
  /// `sw_errc::invalid_argument` when CAF's `openssl.*` options are set
  /// but `enable_tls` was not applied (a node never falls back to plain
  /// text for a configuration that asked for TLS).
  caf::expected<uint16_t> publish(uint16_t port,
                                  const std::string& host = "127.0.0.1",
                                  bool reuse = true);

  /// The published port, 0 before `publish`.
  uint16_t port() const noexcept { return port_; }

  /// Stops listening and ends the directory. Connected nodes keep their
  /// connections (and proxies) until the process exits. Idempotent.
  void close();

private:
  caf::actor_system& sys_;
  caf::actor directory_;
  uint16_t port_ = 0;
};

// -- looking up ---------------------------------------------------------------

/// Connects to the node at `addr` and asks its directory for `addr.name`.
/// Blocks the calling thread for at most about `timeout`: never call it on a
/// shard thread or in a message handler (use `spawn_service_watch` there).
/// A non-empty `interface` must equal the remote actor's.
/// Errors: `sw_errc::node_unavailable` (context: the cause, e.g. connection
/// refused, timeout; a failed TLS handshake, from a peer that runs without
/// TLS when this node has it or the reverse, or from a certificate the
/// other side does not accept, is "disconnect_during_handshake" with a
/// hint saying so: CAF reports no more than that), `sw_errc::incompatible_node`
/// (not a shardwire node, a different protocol version or interface),
/// `sw_errc::unknown_service`, `sw_errc::invalid_argument` as for
/// `node::publish`.
caf::expected<caf::actor> lookup_actor(caf::actor_system& sys,
                                       const service_address& addr,
                                       const std::set<std::string>& interface,
                                       caf::timespan timeout);

/// Typed form of `lookup_actor`: checks the interface of `Handle`.
template <class Handle>
caf::expected<Handle> lookup(caf::actor_system& sys,
                             const service_address& addr,
                             caf::timespan timeout = std::chrono::seconds(5)) {
  auto x = lookup_actor(sys, addr, sys.message_types<Handle>(), timeout);
  if (!x) return std::move(x.error());
  return caf::actor_cast<Handle>(std::move(*x));
}

/// How a service watch retries.
struct watch_backoff {
  /// Delay before the first retry; doubled after each failure ...
  caf::timespan initial = std::chrono::milliseconds(50);
  /// ... up to this.
  caf::timespan max = std::chrono::seconds(1);
  /// Bound on one lookup (connect, handshake and directory request).
  caf::timespan lookup_timeout = std::chrono::seconds(2);
};

/// Heartbeats from a service watch to the node of a service that is up,
/// judged by a phi-accrual detector (actors/phi_accrual.hpp): a node that
/// keeps its connection open but stops answering (black-holed, hung) is
/// reported down when phi crosses `phi.threshold`, long before CAF's own
/// connection timeout (5 s); a slow but steady link is judged at its own
/// pace. Each heartbeat is one small request to the node's directory.
struct heartbeat_policy {
  /// Time between heartbeats; 0 turns them off (the default).
  caf::timespan interval{0};
  phi_accrual_options phi;
};

/// Spawns an actor on CAF's scheduler that keeps the service at `addr`
/// looked up for `owner`, without ever blocking a thread:
/// - on a successful lookup it sends `owner` `service_up{name, actor}` and
///   monitors the actor;
/// - when a lookup fails, or the actor goes down (its node died or was cut
///   off: `down_msg` with `remote_link_unreachable`), it sends
///   `service_down{name, reason}` once per outage, then retries after
///   `policy.initial`, doubling up to `policy.max`, until the next
///   `service_up`. The first lookup starts at once;
/// - with `heartbeats.interval` set, while the service is up it pings the
///   node every interval and reports `service_down` with cause `suspected`
///   once the detector suspects the node, then looks it up again as after
///   any outage.
/// `owner` must handle both messages. Messages to `owner` keep the order in
/// which the watch saw the events. The watch exits when `owner` does, or
/// when sent an exit message.
caf::actor spawn_service_watch(caf::actor_system& sys, caf::actor owner,
                               service_address addr,
                               std::set<std::string> interface,
                               watch_backoff policy = {},
                               heartbeat_policy heartbeats = {});

} // namespace shardwire
