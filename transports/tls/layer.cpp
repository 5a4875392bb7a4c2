// The TLS layer of the stream core (transports/core/stream_layer.hpp):
// OpenSSL over the core's backend through a BIO whose reads and writes are
// the backend's own, so the only copies are OpenSSL's record buffers and the
// decryption into the core's chunk. Private to transports/.
#include "actors/errors.hpp"
#include "runtime/fd_poller.hpp"
#include "transports/core/stream_layer.hpp"
#include "transports/tls/context.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cstring>
#include <vector>

namespace shardwire::transport_core {

namespace {

/// Ciphertext the backend has not taken, above which the layer takes no
/// more application bytes (the core's queue holds them, counted).
constexpr size_t output_bound = 64 * 1024;

/// Application bytes encrypted per SSL_write (one call's worth of records).
constexpr size_t write_slice = 64 * 1024;

bool is_ip_address(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

class tls_layer final : public stream_layer {
public:
  tls_layer(std::shared_ptr<const tls_context> ctx, SSL* ssl,
            std::string server_hostname)
      : ctx_(std::move(ctx)), ssl_(ssl),
        server_hostname_(std::move(server_hostname)) {}

  ~tls_layer() override { SSL_free(ssl_); }

  // -- the BIO's calls ------------------------------------------------------

  int bio_read(char* out, int len) {
    if (in_off_ < in_.size()) {
      auto n = std::min(static_cast<size_t>(len), in_.size() - in_off_);
      std::memcpy(out, in_.data() + in_off_, n);
      in_off_ += n;
      if (in_off_ == in_.size()) {
        in_.clear();
        in_.shrink_to_fit();
        in_off_ = 0;
      }
      return static_cast<int>(n);
    }
    if (held_ || port_ == nullptr) return -2; // retry later
    auto r = port_->lower_read(
        {reinterpret_cast<std::byte*>(out), static_cast<size_t>(len)});
    if (r.bytes > 0) return static_cast<int>(r.bytes);
    if (r.eof) {
      lower_eof_ = true;
      return 0;
    }
    if (r.error == io_result::would_block) return -2;
    lower_error_ = r.error;
    return -1;
  }

  int bio_write(const char* in, int len) {
    auto n = static_cast<size_t>(len);
    auto* bytes = reinterpret_cast<const std::byte*>(in);
    if (lower_error_ != 0) return -1;
    if (out_off_ == out_.size() && port_ != nullptr) {
      // Nothing pending: straight to the backend; keep what it left.
      auto r = port_->lower_write(bytes, n);
      if (r.error != 0 && r.error != io_result::would_block) {
        lower_error_ = r.error;
        return -1;
      }
      bytes += r.bytes;
      n -= r.bytes;
    }
    out_.insert(out_.end(), bytes, bytes + n);
    return len; // never blocks: the bound is applied in write()
  }

  // -- stream_layer ---------------------------------------------------------

  void start(layer_port& port) override {
    port_ = &port;
    drive_handshake();
  }

  bool established() const noexcept override { return established_; }

  caf::error error() const override { return error_; }

  void on_lower_ready(bool, bool writable, bool failed) override {
    if (error_) return;
    if (writable || failed || out_off_ < out_.size()) flush_output();
    if (!established_) drive_handshake();
  }

  io_result read(std::span<std::byte> into) override {
    if (error_) return {0, layer_failed, false};
    if (!established_) {
      drive_handshake();
      // Application bytes only from the next call: the core reports the
      // handshake's end first.
      return error_ ? io_result{0, layer_failed, false}
                    : io_result{0, io_result::would_block, false};
    }
    size_t got = 0;
    while (got < into.size()) {
      ERR_clear_error();
      auto want =
          static_cast<int>(std::min<size_t>(into.size() - got, INT32_MAX));
      int n = SSL_read(ssl_, into.data() + got, want);
      if (n > 0) {
        got += static_cast<size_t>(n);
        continue;
      }
      int e = SSL_get_error(ssl_, n);
      flush_output(); // a key update or ticket answer may have been made
      if (got > 0) {
        if (e != SSL_ERROR_WANT_READ) pending_end_ = true; // report next
        break;
      }
      return read_failure(e);
    }
    return {got, 0, false};
  }

  io_result write(const buffer* parts, size_t n) override {
    if (error_) return {0, layer_failed, false};
    if (!established_) {
      drive_handshake();
      if (error_) return {0, layer_failed, false};
      if (!established_) return {0, io_result::would_block, false};
    }
    if (out_off_ < out_.size()) flush_output();
    if (lower_error_ != 0) return {0, lower_error_, false};
    size_t taken = 0;
    for (size_t i = 0; i < n; ++i) {
      auto* p = parts[i].data();
      size_t left = parts[i].size();
      while (left > 0) {
        if (out_.size() - out_off_ >= output_bound)
          return taken > 0 ? io_result{taken, 0, false}
                           : io_result{0, io_result::would_block, false};
        auto slice = static_cast<int>(std::min(left, write_slice));
        ERR_clear_error();
        int w = SSL_write(ssl_, p, slice);
        if (w <= 0) {
          fail_from(SSL_get_error(ssl_, w), "write");
          if (lower_error_ != 0) return {0, lower_error_, false};
          return {0, layer_failed, false};
        }
        p += w;
        left -= static_cast<size_t>(w);
        taken += static_cast<size_t>(w);
      }
    }
    return {taken, 0, false};
  }

  uint8_t lower_interest(uint8_t core_wants) const noexcept override {
    if (error_) return fd_none;
    uint8_t w = fd_none;
    if (out_off_ < out_.size()) w |= fd_write;
    if (!established_) {
      if (!held_) w |= fd_read;
      return w;
    }
    if ((core_wants & fd_read) && !held_) w |= fd_read;
    if (core_wants & fd_write) w |= fd_write;
    return w;
  }

  bool input_buffered() const noexcept override {
    if (error_ || !established_) return false;
    return pending_end_ || SSL_pending(ssl_) > 0 || SSL_has_pending(ssl_) ||
           (in_off_ < in_.size() && !held_);
  }

  bool output_pending() const noexcept override {
    return out_off_ < out_.size();
  }

  void shutdown() override {
    if (shutdown_ || error_ || !established_) return;
    shutdown_ = true;
    ERR_clear_error();
    SSL_shutdown(ssl_); // queues close_notify; the peer's is not awaited
    ERR_clear_error();
    flush_output();
  }

  void feed(const buffer& bytes) override {
    if (in_off_ > 0) {
      in_.erase(in_.begin(), in_.begin() + static_cast<long>(in_off_));
      in_off_ = 0;
    }
    in_.insert(in_.end(), bytes.data(), bytes.data() + bytes.size());
  }

  void hold_input(bool on) noexcept override { held_ = on; }

  void describe(transport_info& info) const override {
    auto add = [&](const char* name, std::string value) {
      info.named.emplace_back(name, std::move(value));
    };
    add("tls_role", ctx_->role() == tls_role::server ? "server" : "client");
    if (!server_hostname_.empty()) add("server_hostname", server_hostname_);
    if (!established_) return;
    add("tls_version", SSL_get_version(ssl_));
    if (auto* c = SSL_get_current_cipher(ssl_)) {
      add("cipher", SSL_CIPHER_get_name(c));
      add("cipher_bits", std::to_string(SSL_CIPHER_get_bits(c, nullptr)));
    }
    if (X509* cert = SSL_get0_peer_certificate(ssl_)) {
      add("peercert", name_line(X509_get_subject_name(cert)));
      add("peercert_issuer", name_line(X509_get_issuer_name(cert)));
      unsigned char* der = nullptr;
      int len = i2d_X509(cert, &der);
      if (len > 0) {
        add("peercert_der", std::string(reinterpret_cast<const char*>(der),
                                        static_cast<size_t>(len)));
        OPENSSL_free(der);
      }
    }
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
    if (alpn_len > 0)
      add("alpn_protocol",
          std::string(reinterpret_cast<const char*>(alpn), alpn_len));
    add("session_reused", SSL_session_reused(ssl_) ? "true" : "false");
  }

  std::string& session_key() noexcept { return session_key_; }

private:
  static std::string name_line(X509_NAME* name) {
    char buf[512];
    X509_NAME_oneline(name, buf, sizeof(buf));
    return buf;
  }

  void flush_output() {
    while (out_off_ < out_.size() && lower_error_ == 0 && port_ != nullptr) {
      auto r =
          port_->lower_write(out_.data() + out_off_, out_.size() - out_off_);
      if (r.error == io_result::would_block || r.bytes == 0) break;
      if (r.error != 0) {
        lower_error_ = r.error;
        break;
      }
      out_off_ += r.bytes;
    }
    if (out_off_ == out_.size() && !out_.empty()) {
      // Drained: give the memory back (an idle connection holds none).
      out_.clear();
      if (out_.capacity() > output_bound) out_.shrink_to_fit();
      out_off_ = 0;
    }
    if (lower_error_ != 0 && !error_)
      error_ = make_errno_error(lower_error_, "TLS write");
  }

  void drive_handshake() {
    if (established_ || error_) return;
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    flush_output();
    if (error_) return;
    if (r == 1) {
      established_ = true;
      return;
    }
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (lower_eof_)
        error_ = make_error(tls_errc::closed_in_handshake,
                            "the peer closed the connection during the "
                            "TLS handshake");
      return;
    }
    fail_from(e, "handshake");
  }

  io_result read_failure(int e) {
    pending_end_ = false;
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      if (lower_error_ != 0) return {0, lower_error_, false};
      return {0, io_result::would_block, false};
    case SSL_ERROR_ZERO_RETURN:
      return {0, 0, true}; // the peer's close_notify: a clean end
    default:
      fail_from(e, "read");
      if (lower_error_ != 0 && !is(error_, tls_errc::truncated))
        return {0, lower_error_, false};
      return {0, layer_failed, false};
    }
  }

  /// Sets error_ from a failed OpenSSL call.
  void fail_from(int ssl_error, const char* op) {
    if (error_) return;
    auto reasons = detail::take_openssl_errors();
    if (lower_error_ != 0) {
      error_ = make_errno_error(lower_error_, std::string{"TLS "} + op);
      return;
    }
    if (ssl_error == SSL_ERROR_SYSCALL || lower_eof_ ||
        reasons.find("unexpected eof") != std::string::npos) {
      if (!established_)
        error_ = make_error(tls_errc::closed_in_handshake,
                            "the peer closed the connection during the TLS "
                            "handshake");
      else
        error_ = make_error(tls_errc::truncated,
                            "the stream ended without close_notify");
      return;
    }
    auto verify = SSL_get_verify_result(ssl_);
    if (!established_ && verify != X509_V_OK) {
      std::string why = X509_verify_cert_error_string(verify);
      switch (verify) {
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        error_ = make_error(tls_errc::unknown_ca, why);
        return;
      case X509_V_ERR_HOSTNAME_MISMATCH:
      case X509_V_ERR_IP_ADDRESS_MISMATCH:
        error_ = make_error(tls_errc::hostname_mismatch,
                            why + " (expected " + server_hostname_ + ")");
        return;
      case X509_V_ERR_CERT_HAS_EXPIRED:
      case X509_V_ERR_CERT_NOT_YET_VALID:
        error_ = make_error(tls_errc::certificate_expired, why);
        return;
      default:
        error_ = make_error(tls_errc::certificate_rejected, why);
        return;
      }
    }
    auto has = [&](const char* s) {
      return reasons.find(s) != std::string::npos;
    };
    if (has("unknown ca"))
      error_ = make_error(tls_errc::unknown_ca, "the peer: " + reasons);
    else if (has("certificate expired"))
      error_ =
          make_error(tls_errc::certificate_expired, "the peer: " + reasons);
    else if (has("certificate required") || has("bad certificate") ||
             has("did not return a certificate") || has("certificate unknown"))
      error_ =
          make_error(tls_errc::certificate_rejected, "the peer: " + reasons);
    else if (has("wrong version number") || has("http request") ||
             has("packet length too long") || has("unknown protocol") ||
             has("record layer failure"))
      error_ = make_error(tls_errc::not_tls,
                          "the peer does not speak TLS (" + reasons + ")");
    else if (has("no renegotiation") || has("renegotiation"))
      error_ = make_error(tls_errc::renegotiation_refused, reasons);
    else if (!established_)
      error_ = make_error(tls_errc::handshake_failed,
                          reasons.empty() ? std::string{op} : reasons);
    else
      error_ = make_error(tls_errc::protocol_error,
                          reasons.empty() ? std::string{op} : reasons);
  }

  std::shared_ptr<const tls_context> ctx_;
  SSL* ssl_;
  layer_port* port_ = nullptr;
  std::string server_hostname_;
  std::string session_key_;
  // Bytes handed in before the backend's (start_tls), read first.
  std::vector<std::byte> in_;
  size_t in_off_ = 0;
  // Ciphertext the backend did not take yet.
  std::vector<std::byte> out_;
  size_t out_off_ = 0;
  caf::error error_;
  int lower_error_ = 0;
  bool lower_eof_ = false;
  bool established_ = false;
  bool held_ = false;
  bool shutdown_ = false;
  // A read returned bytes and then met the end or an error: reported by
  // the next read.
  bool pending_end_ = false;
};

// -- the BIO over the core's backend
// -------------------------------------------

tls_layer* layer_of(BIO* bio) {
  return static_cast<tls_layer*>(BIO_get_data(bio));
}

int bio_write_cb(BIO* bio, const char* in, int len) {
  BIO_clear_retry_flags(bio);
  return layer_of(bio)->bio_write(in, len);
}

int bio_read_cb(BIO* bio, char* out, int len) {
  BIO_clear_retry_flags(bio);
  int n = layer_of(bio)->bio_read(out, len);
  if (n == -2) {
    BIO_set_retry_read(bio);
    return -1;
  }
  return n;
}

long bio_ctrl_cb(BIO*, int cmd, long, void*) {
  // FLUSH: nothing is buffered in the BIO itself (the layer holds it).
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_create_cb(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

int bio_destroy_cb(BIO*) {
  return 1;
}

BIO_METHOD* backend_bio_method() {
  static BIO_METHOD* method = [] {
    auto* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                           "shardwire backend");
    BIO_meth_set_write(m, bio_write_cb);
    BIO_meth_set_read(m, bio_read_cb);
    BIO_meth_set_ctrl(m, bio_ctrl_cb);
    BIO_meth_set_create(m, bio_create_cb);
    BIO_meth_set_destroy(m, bio_destroy_cb);
    return m;
  }();
  return method;
}

} // namespace

caf::expected<std::unique_ptr<stream_layer>>
make_tls_layer(const tls_params& params) {
  if (!params.context)
    return make_error(tls_errc::bad_config, "no TLS context");
  auto& ctx = *params.context;
  const bool client = ctx.role() == tls_role::client;
  if (client && ctx.options().verify_peer && params.server_hostname.empty())
    return make_error(tls_errc::bad_config,
                      "server_hostname: a verifying client needs the name "
                      "to check (asyncio: server_hostname is required)");
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx.native());
  if (ssl == nullptr)
    return make_error(tls_errc::bad_config,
                      "SSL_new: " + detail::take_openssl_errors());
  auto layer =
      std::make_unique<tls_layer>(params.context, ssl, params.server_hostname);
  BIO* bio = BIO_new(backend_bio_method());
  if (bio == nullptr)
    return make_error(tls_errc::bad_config,
                      "BIO_new: " + detail::take_openssl_errors());
  BIO_set_data(bio, layer.get());
  SSL_set_bio(ssl, bio, bio); // one BIO both ways; the SSL frees it
  if (client) {
    SSL_set_connect_state(ssl);
    auto& name = params.server_hostname;
    if (!name.empty()) {
      const bool ip = is_ip_address(name);
      // SNI names a host, never an address (RFC 6066).
      if (!ip) SSL_set_tlsext_host_name(ssl, name.c_str());
      if (ctx.options().verify_peer) {
        bool ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
                                                     name.c_str()) == 1
                     : SSL_set1_host(ssl, name.c_str()) == 1;
        if (!ok)
          return make_error(tls_errc::bad_config,
                            "server_hostname: cannot check \"" + name + "\"");
      }
    }
    if (ctx.options().session_resumption && !name.empty()) {
      layer->session_key() = name;
      SSL_set_ex_data(ssl, detail::session_key_index(), &layer->session_key());
      if (SSL_SESSION* sess = ctx.take_session(name)) {
        SSL_set_session(ssl, sess);
        SSL_SESSION_free(sess);
      }
    }
  } else {
    SSL_set_accept_state(ssl);
  }
  return std::unique_ptr<stream_layer>{std::move(layer)};
}

} // namespace shardwire::transport_core
