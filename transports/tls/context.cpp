#include "transports/tls/context.hpp"

#include "actors/errors.hpp"

#include <openssl/err.h>

#include <cstring>
#include <fstream>
#include <sys/stat.h>

namespace shardwire {

namespace detail {

std::string take_openssl_errors() {
  std::string out;
  while (auto code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

int session_key_index() {
  static const int index =
      SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

} // namespace detail

tls_context::tls_context(SSL_CTX* ctx, tls_context_options opts) noexcept
    : ctx_(ctx), opts_(std::move(opts)) {}

tls_context::~tls_context() {
  for (auto& [key, sess] : sessions_)
    SSL_SESSION_free(sess);
  SSL_CTX_free(ctx_);
}

SSL_SESSION* tls_context::take_session(const std::string& key) const {
  std::lock_guard<std::mutex> guard{sessions_mtx_};
  auto i = sessions_.find(key);
  if (i == sessions_.end()) return nullptr;
  SSL_SESSION_up_ref(i->second);
  return i->second;
}

void tls_context::keep_session(const std::string& key,
                               SSL_SESSION* sess) const {
  std::lock_guard<std::mutex> guard{sessions_mtx_};
  auto& slot = sessions_[key];
  if (slot != nullptr) SSL_SESSION_free(slot);
  slot = sess;
}

tls_role role_of(const tls_context& ctx) noexcept {
  return ctx.role();
}

namespace {

caf::error bad(const std::string& what) {
  return make_error(tls_errc::bad_config, what);
}

bool readable_file(const std::string& path) {
  std::ifstream f{path};
  return f.good();
}

// A new client session (TLS 1.3 sends tickets after the handshake): kept
// in the context under the connection's key.
int on_new_session(SSL* ssl, SSL_SESSION* sess) {
  auto* key = static_cast<const std::string*>(
      SSL_get_ex_data(ssl, detail::session_key_index()));
  auto* ctx = static_cast<const tls_context*>(
      SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  if (key == nullptr || ctx == nullptr || key->empty()) return 0;
  ctx->keep_session(*key, sess);
  return 1; // the store owns the reference now
}

// ALPN on the server: the first of our names the client offered.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen,
                const unsigned char* in, unsigned int inlen, void* arg) {
  auto* ctx = static_cast<const tls_context*>(arg);
  for (auto& name : ctx->options().alpn) {
    for (unsigned int i = 0; i < inlen;) {
      unsigned int len = in[i];
      if (i + 1 + len > inlen) break;
      if (len == name.size() &&
          std::memcmp(in + i + 1, name.data(), len) == 0) {
        *out = in + i + 1;
        *outlen = static_cast<unsigned char>(len);
        return SSL_TLSEXT_ERR_OK;
      }
      i += 1 + len;
    }
  }
  return SSL_TLSEXT_ERR_NOACK; // go on without ALPN
}

} // namespace

caf::expected<std::shared_ptr<const tls_context>>
make_tls_context(const tls_context_options& opts) {
  ERR_clear_error();
  const bool server = opts.role == tls_role::server;
  // Checked before OpenSSL sees anything, so the error names the option.
  if (server && (opts.cert_file.empty() || opts.key_file.empty()))
    return bad("cert_file / key_file: a server needs a certificate and key");
  if (opts.cert_file.empty() != opts.key_file.empty())
    return bad(opts.cert_file.empty() ? "cert_file: key_file given without it"
                                      : "key_file: cert_file given without it");
  if (!opts.cert_file.empty() && !readable_file(opts.cert_file))
    return bad("cert_file: cannot read " + opts.cert_file);
  if (!opts.key_file.empty() && !readable_file(opts.key_file))
    return bad("key_file: cannot read " + opts.key_file);
  if (!opts.ca_file.empty() && !readable_file(opts.ca_file))
    return bad("ca_file: cannot read " + opts.ca_file);
  if (!opts.ca_dir.empty()) {
    struct stat st;
    if (::stat(opts.ca_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return bad("ca_dir: not a directory: " + opts.ca_dir);
  }
  if (server && opts.client_auth != tls_client_auth::none &&
      opts.ca_file.empty() && opts.ca_dir.empty())
    return bad("ca_file: client_auth needs the CA that signs client "
               "certificates (ca_file or ca_dir)");
  int min_version = 0;
  if (opts.min_version == "1.2")
    min_version = TLS1_2_VERSION;
  else if (opts.min_version == "1.3")
    min_version = TLS1_3_VERSION;
  else
    return bad("min_version: \"" + opts.min_version +
               "\" is not one of 1.2, 1.3");
  std::string wire_alpn;
  for (auto& name : opts.alpn) {
    if (name.empty() || name.size() > 255)
      return bad("alpn: names must be 1-255 bytes");
    wire_alpn += static_cast<char>(name.size());
    wire_alpn += name;
  }
  SSL_CTX* raw =
      SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (raw == nullptr)
    return bad("SSL_CTX_new: " + detail::take_openssl_errors());
  // Owned from here: freed with the context, also on the error paths.
  auto ctx = std::make_shared<tls_context>(raw, opts);
  auto fail = [](const std::string& what) {
    return bad(what + ": " + detail::take_openssl_errors());
  };
  SSL_CTX_set_app_data(raw, ctx.get());
  SSL_CTX_set_min_proto_version(raw, min_version);
  // No renegotiation (a DoS vector and a source of confusing state), no
  // compression (CRIME).
  SSL_CTX_set_options(raw, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // Writes of any size at once and from any buffer (the core's queue may
  // offer a different buffer after a would_block); record buffers freed
  // while a connection is idle (they are ~34 KiB).
  SSL_CTX_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  // Read what the socket has, not a record header at a time (one system
  // call per read instead of two per record).
  SSL_CTX_set_read_ahead(raw, 1);
  if (!opts.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(raw, opts.cert_file.c_str()) != 1)
      return fail("cert_file: cannot load " + opts.cert_file);
    if (SSL_CTX_use_PrivateKey_file(raw, opts.key_file.c_str(),
                                    SSL_FILETYPE_PEM) != 1)
      return fail("key_file: cannot load " + opts.key_file);
    if (SSL_CTX_check_private_key(raw) != 1)
      return fail("key_file: does not match cert_file");
  }
  if (!opts.ca_file.empty() || !opts.ca_dir.empty()) {
    if (SSL_CTX_load_verify_locations(
            raw, opts.ca_file.empty() ? nullptr : opts.ca_file.c_str(),
            opts.ca_dir.empty() ? nullptr : opts.ca_dir.c_str()) != 1)
      return fail(opts.ca_file.empty()
                      ? "ca_dir: cannot load " + opts.ca_dir
                      : "ca_file: cannot load " + opts.ca_file);
  } else if (!server && opts.verify_peer) {
    if (SSL_CTX_set_default_verify_paths(raw) != 1)
      return fail("ca_file: no CA given and the system's cannot be loaded");
  }
  if (server) {
    int mode = SSL_VERIFY_NONE;
    if (opts.client_auth == tls_client_auth::optional)
      mode = SSL_VERIFY_PEER;
    else if (opts.client_auth == tls_client_auth::required)
      mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(raw, mode, nullptr);
    if (!opts.ca_file.empty())
      if (auto* names = SSL_load_client_CA_file(opts.ca_file.c_str()))
        SSL_CTX_set_client_CA_list(raw, names);
    if (!opts.alpn.empty())
      SSL_CTX_set_alpn_select_cb(raw, select_alpn, ctx.get());
    if (!opts.session_resumption) {
      SSL_CTX_set_options(raw, SSL_OP_NO_TICKET);
      SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
      SSL_CTX_set_num_tickets(raw, 0);
    }
    // A session id context is required to resume with client
    // certificates; any constant names this application.
    static const unsigned char sid_ctx[] = "shardwire";
    SSL_CTX_set_session_id_context(raw, sid_ctx, sizeof(sid_ctx) - 1);
  } else {
    SSL_CTX_set_verify(
        raw, opts.verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    if (!wire_alpn.empty() &&
        SSL_CTX_set_alpn_protos(
            raw, reinterpret_cast<const unsigned char*>(wire_alpn.data()),
            static_cast<unsigned int>(wire_alpn.size())) != 0)
      return fail("alpn: rejected");
    if (opts.session_resumption) {
      SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_CLIENT |
                                              SSL_SESS_CACHE_NO_INTERNAL_STORE);
      SSL_CTX_sess_set_new_cb(raw, on_new_session);
    } else {
      SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
      SSL_CTX_set_options(raw, SSL_OP_NO_TICKET);
    }
  }
  ERR_clear_error();
  return std::shared_ptr<const tls_context>{std::move(ctx)};
}

} // namespace shardwire
