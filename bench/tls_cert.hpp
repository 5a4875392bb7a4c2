// A throwaway self-signed server certificate for the benchmark's TLS part,
// made with OpenSSL's API at startup into a fresh temporary directory that
// goes with the object. Nothing is committed, nothing read from the system.
#pragma once

#include <string>

namespace bench {

/// The key of the certificate: what a full handshake's signature costs the
/// server (ECDSA P-256 signs in tens of microseconds, RSA 2048 in about a
/// millisecond).
enum class tls_key_type { ec, rsa };

/// A self-signed certificate for CN localhost (SANs DNS:localhost and
/// IP:127.0.0.1), valid for a day, and its unencrypted key, as PEM files.
class tls_cert {
public:
  /// Makes the key and certificate in a new directory under $TMPDIR (or
  /// /tmp). Throws std::runtime_error with OpenSSL's reason on failure.
  explicit tls_cert(tls_key_type key);
  /// Removes the files and the directory.
  ~tls_cert();

  tls_cert(const tls_cert&) = delete;
  tls_cert& operator=(const tls_cert&) = delete;

  const std::string& cert_file() const noexcept { return cert_file_; }
  const std::string& key_file() const noexcept { return key_file_; }

private:
  std::string dir_;
  std::string cert_file_;
  std::string key_file_;
};

} // namespace bench
