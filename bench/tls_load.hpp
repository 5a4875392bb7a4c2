// The TLS part's clients (OpenSSL, non-blocking, one epoll loop, one core):
// the echo load of bench/load_generator.hpp over TLS, full handshakes from
// K concurrent connectors, and idle TLS connections for the memory figure.
// Every client context offers TLS 1.3 only, verifies nothing (the server's
// certificate is the run's own throwaway, bench/tls_cert.hpp; checking it
// is client work) and keeps no sessions (SSL_OP_NO_TICKET, no session
// cache), so every connection is a full handshake.
#pragma once

#include "bench/load_generator.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bench {

/// The echo load over TLS: `opts.connections` connections, handshaken when
/// the session opens (outside any window), then windows as
/// `load_session::run`: the same byte pattern, every byte verified,
/// latency per echo, nothing in flight between runs.
class tls_load_session {
public:
  explicit tls_load_session(const load_options& opts);
  ~tls_load_session();

  tls_load_session(const tls_load_session&) = delete;
  tls_load_session& operator=(const tls_load_session&) = delete;

  /// Runs `duration` seconds of load, or `requests` echoes if non-zero.
  load_result run(double duration, uint64_t requests = 0);

  /// What the first connection negotiated: "TLSv1.3 TLS_AES_256_GCM_SHA384"
  /// (empty if none connected).
  const std::string& negotiated() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

struct handshake_result {
  /// Connections that completed a full handshake, sent close_notify and
  /// saw the server close.
  uint64_t handshakes = 0;
  /// Connections that failed (connect error, handshake error, reset
  /// before the handshake ended).
  uint64_t failed = 0;
  /// Handshakes that resumed a session (must stay 0: the client keeps none).
  uint64_t resumed = 0;
  double seconds = 0;
};

/// For `duration` seconds, `connectors` clients each: connect, full
/// handshake, close_notify, wait for the server to close, again. Returns
/// when every connection begun has ended.
handshake_result run_handshakes(uint16_t port, size_t connectors,
                                double duration);

/// `n` TLS connections, each handshaken and echoed one byte, so the server
/// has fully set each one up; closed (close_notify, then close) when the
/// object goes. Throws std::runtime_error if one fails.
class tls_idle_connections {
public:
  tls_idle_connections(uint16_t port, size_t n);
  ~tls_idle_connections();

  tls_idle_connections(const tls_idle_connections&) = delete;
  tls_idle_connections& operator=(const tls_idle_connections&) = delete;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace bench
