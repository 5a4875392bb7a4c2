// Errors delivered in `lost`, replies and connect results.
//
// Two CAF error categories: `errno` carries an OS error number (ECONNRESET,
// ECONNREFUSED, EMFILE, ...), `shardwire` carries `sw_errc` values. An empty
// `caf::error` means "no error" (a clean close).
#pragma once

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>

#include <cstdint>
#include <string>

namespace shardwire {

/// Category of errors holding an errno value.
constexpr caf::atom_value errno_category = caf::atom("errno");

/// Category of `sw_errc` values.
constexpr caf::atom_value sw_category = caf::atom("shardwire");

/// Category of `tls_errc` values (transports/tls.hpp).
constexpr caf::atom_value tls_category = caf::atom("tls");

/// Errors that are not an OS error number.
enum class sw_errc : uint8_t {
  /// `write` after `write_eof`.
  write_after_eof = 1,
  /// The protocol actor failed (threw or exited abnormally).
  protocol_failed,
  /// Name resolution failed (unknown host).
  unknown_host,
  /// An operation did not finish in time (connect timeout).
  timeout,
  /// A bad argument (limits, addresses, options).
  invalid_argument,
  /// The runtime is shutting down.
  shutdown,
  /// The transport is closed or closing.
  closed,
  /// The protocol factory threw or returned no actor.
  factory_failed,
  /// The transport cannot do this (e.g. `write` on a read pipe).
  not_supported,
  /// The child process already exited (asyncio's ProcessLookupError): a
  /// signal to it is refused rather than sent to a recycled pid.
  process_exited,
  /// A supervised child process exited with a non-zero status or by a
  /// signal (the context says which).
  process_failed,
  /// A remote node cannot be reached, or its service is down (node.hpp).
  node_unavailable,
  /// A remote node speaks another protocol or offers another interface.
  incompatible_node,
  /// A node has no actor published under the name asked for.
  unknown_service,
  /// A stream transport's unsent bytes passed its hard cap
  /// (`--shardwire.write-buffer-cap`): the peer does not read as fast as the
  /// protocol writes, and the protocol did not stop on `pause`. The
  /// connection was aborted.
  write_buffer_overflow,
  /// A supervised child with a watchdog stopped sending WATCHDOG=1 in time
  /// (or sent WATCHDOG=trigger) and was killed (transports/process_child.hpp).
  watchdog_timeout,
  /// A supervised child's liveness probe failed `failure_threshold` times in
  /// a row and the child was killed (transports/process_child.hpp).
  liveness_failed,
  /// The kernel's OOM killer killed a process in a child's cgroup (its
  /// memory.max, transports/child_limits.hpp); a supervised child ends with
  /// this instead of process_failed.
  oom_killed,
};

/// Why a TLS connection failed or ended (transports/tls.hpp). The error's
/// context carries OpenSSL's own reason text where there is one.
enum class tls_errc : uint8_t {
  /// The handshake failed for a reason not listed below (no shared
  /// protocol version or cipher, a bad message, an alert from the peer).
  handshake_failed = 1,
  /// The peer's certificate does not chain to a trusted CA (or is
  /// self-signed and not trusted).
  unknown_ca,
  /// The peer's certificate does not name the host asked for
  /// (server_hostname, or the host connected to).
  hostname_mismatch,
  /// The peer's certificate has expired (or is not valid yet).
  certificate_expired,
  /// Any other certificate verification failure (revoked, bad signature,
  /// wrong purpose, no certificate where one is required).
  certificate_rejected,
  /// The peer does not speak TLS (a plaintext client on a TLS port, or a
  /// plaintext server).
  not_tls,
  /// The peer closed the connection before the handshake finished.
  closed_in_handshake,
  /// The handshake did not finish within handshake_timeout.
  handshake_timeout,
  /// The stream ended without the peer's close_notify: the data may be cut
  /// short by an attacker or a crash (OpenSSL's "unexpected eof").
  truncated,
  /// The peer asked to renegotiate (refused: TLS 1.2 renegotiation is off).
  renegotiation_refused,
  /// A protocol error after the handshake (a bad record, a fatal alert).
  protocol_error,
  /// The TLS context or its options are unusable (a certificate or key
  /// that cannot be loaded, a key that does not match, a bad ALPN list).
  bad_config,
};

std::string to_string(sw_errc x);
std::string to_string(tls_errc x);

/// Makes an error of the `shardwire` category; `context` adds detail.
caf::error make_error(sw_errc x, std::string context = {});

/// Makes an error of the `tls` category; `context` adds detail.
caf::error make_error(tls_errc x, std::string context = {});

/// Makes an error of the `errno` category for OS error `err`.
caf::error make_errno_error(int err, std::string context = {});

/// True if `x` is in the `errno` category with value `err`.
bool is_errno(const caf::error& x, int err) noexcept;

/// True if `x` is in the `shardwire` category with value `code`.
bool is(const caf::error& x, sw_errc code) noexcept;

/// True if `x` is in the `tls` category with value `code`.
bool is(const caf::error& x, tls_errc code) noexcept;

/// Renders any error (both shardwire categories, CAF's own, others) without
/// needing an actor system: "errno: Connection refused (connect 127.0.0.1)".
std::string describe(const caf::error& x);

/// Registers the categories' renderers with a CAF config.
void register_error_categories(caf::actor_system_config& cfg);

} // namespace shardwire
