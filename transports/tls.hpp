// TLS on stream transports (asyncio's ssl= on create_connection /
// create_server, ssl.SSLContext, loop.start_tls). The design note is
// docs/tls.md.
//
// A `tls_context` holds what asyncio's SSLContext holds: the role, the
// certificate and key, whom to trust, how to verify, ALPN. Make one with
// make_tls_context and hand it to any stream entry point in its
// `tls_params` (connect_options::tls, server_options::tls, the Unix and
// adopted-socket variants), or to a live connection with `start_tls`
// (actors/messages.hpp). The same context serves any number of connections
// on any shard.
//
// Guarantees:
// - A client verifies the server's certificate chain and its name (the
//   server_hostname, or the host connected to) by default, as asyncio's
//   create_default_context; `verify_peer = false` turns both off, and only
//   that does.
// - The protocol gets `connected` only after the handshake (asyncio:
//   connection_made after it); a failed handshake is a connect error (a
//   client) or a logged, dropped connection (a server), never a protocol
//   that sees bytes.
// - Write watermarks, `pause` and the write-buffer size count application
//   bytes; ciphertext the socket has not taken is bounded (64 KiB) and held
//   by the layer. `pause_reading` stops decryption too.
// - `close` flushes, then sends close_notify (bounded by
//   shutdown_timeout); `abort` sends nothing. `write_eof` is refused
//   (sw_errc::not_supported) and `can_write_eof` is false: TLS has no
//   half-close. A peer's close_notify is `eof`; the connection then closes
//   whatever the protocol answers (asyncio does the same).
// - TLS 1.2 renegotiation is refused; compression is off.
// - Every failure is a `lost` (or connect) error of the tls category
//   (actors/errors.hpp, tls_errc) with OpenSSL's reason as context; a
//   stream that ends without close_notify is tls_errc::truncated.
#pragma once

#include "actors/messages.hpp"

#include <caf/expected.hpp>

#include <memory>
#include <string>
#include <vector>

namespace shardwire {

enum class tls_role : uint8_t { client, server };

/// Whether a server asks its clients for a certificate (mutual TLS).
enum class tls_client_auth : uint8_t {
  /// Asks for none (asyncio's default, CERT_NONE on a server context).
  none,
  /// Asks; a client without one is accepted, one with a bad one is not.
  optional,
  /// Asks and refuses a client without a valid one (CERT_REQUIRED).
  required,
};

struct tls_context_options {
  tls_role role = tls_role::client;
  /// PEM certificate (chain) and private key. A server needs both; a
  /// client sets them to present a certificate (mutual TLS).
  std::string cert_file;
  std::string key_file;
  /// Whom to trust: a PEM file of CA certificates and/or a directory
  /// hashed with `openssl rehash`. Both empty: the system's default CAs
  /// (/etc/ssl/certs) for a client; a server with client_auth needs one.
  std::string ca_file;
  std::string ca_dir;
  /// Client: verify the server's chain and name (asyncio's default).
  /// false: accept any certificate (asyncio's CERT_NONE with
  /// check_hostname off); meant for tests, never for deployments.
  bool verify_peer = true;
  /// Server: ask clients for certificates (verified against ca_file /
  /// ca_dir).
  tls_client_auth client_auth = tls_client_auth::none;
  /// ALPN protocol names in order of preference ("h2", "http/1.1"). A
  /// client offers them; a server picks its first one the client offered
  /// (none in common: the handshake goes on without ALPN, as OpenSSL's
  /// servers do).
  std::vector<std::string> alpn;
  /// Lowest protocol version: "1.2" (default) or "1.3".
  std::string min_version = "1.2";
  /// Client: resume sessions (tickets) with a server seen before through
  /// this context, keyed by server name; see extra info
  /// "session_reused". Server: issue tickets. false: full handshakes only.
  bool session_resumption = true;
};

/// Makes a context. Errors: tls_errc::bad_config naming the option
/// ("cert_file: cannot load /x: no such file", "key_file: does not match
/// cert_file", "alpn: names must be 1-255 bytes", "min_version: ...",
/// "cert_file: a server needs a certificate and key").
caf::expected<std::shared_ptr<const tls_context>>
make_tls_context(const tls_context_options& opts);

/// The role the context was made for.
tls_role role_of(const tls_context& ctx) noexcept;

/// TLS parameters for `ctx` with the default timeouts (60 s handshake,
/// 30 s shutdown).
inline tls_params use_tls(std::shared_ptr<const tls_context> ctx,
                          std::string server_hostname = {}) {
  tls_params p;
  p.context = std::move(ctx);
  p.server_hostname = std::move(server_hostname);
  return p;
}

/// The extra-info names a TLS transport adds (actors/extra_info.hpp; all
/// strings): "tls_version" ("TLSv1.3"), "cipher" (OpenSSL's name),
/// "cipher_bits", "peercert" (the peer certificate's subject, one line;
/// absent if it sent none), "peercert_der" (its DER bytes), "peercert_issuer",
/// "alpn_protocol" (absent if none was agreed), "session_reused" ("true" /
/// "false"), "server_hostname" (a client's), "tls_role" ("client" /
/// "server").
inline constexpr const char* tls_extra_names[] = {
    "tls_version",     "cipher",          "cipher_bits",   "peercert",
    "peercert_der",    "peercert_issuer", "alpn_protocol", "session_reused",
    "server_hostname", "tls_role"};

} // namespace shardwire
