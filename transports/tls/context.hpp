// The TLS context behind transports/tls.hpp: one OpenSSL SSL_CTX made from
// tls_context_options, shared (read-only) by every connection that uses it,
// and the client's session store. Private to transports/.
#pragma once

#include "transports/tls.hpp"

#include <openssl/ssl.h>

#include <map>
#include <mutex>
#include <string>

namespace shardwire {

class tls_context {
public:
  tls_context(SSL_CTX* ctx, tls_context_options opts) noexcept;
  ~tls_context();

  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  SSL_CTX* native() const noexcept { return ctx_; }
  const tls_context_options& options() const noexcept { return opts_; }
  tls_role role() const noexcept { return opts_.role; }

  /// Client session store (any thread): the newest session per key.
  /// `take` returns a reference the caller frees (SSL_SESSION_free), or
  /// nullptr.
  SSL_SESSION* take_session(const std::string& key) const;
  /// Keeps `sess` (the store owns the reference passed in).
  void keep_session(const std::string& key, SSL_SESSION* sess) const;

private:
  SSL_CTX* ctx_;
  tls_context_options opts_;
  mutable std::mutex sessions_mtx_;
  mutable std::map<std::string, SSL_SESSION*> sessions_;
};

namespace detail {

/// OpenSSL's error queue as one line (and cleared).
std::string take_openssl_errors();

/// The index of the SSL ex-data slot that points at a connection's session
/// key (a std::string owned by its layer).
int session_key_index();

} // namespace detail

} // namespace shardwire
