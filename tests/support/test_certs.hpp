// Certificates made at test time with the `openssl` command line, for any
// TLS test (node links, stream transports): a CA, certificates it signs
// for given names, expired and not-yet-valid ones, and a second CA whose
// certificates the first one's peers must refuse. Nothing is committed:
// every file lives in a `temp_dir` that goes with the test.
//
//   test::temp_dir dir;
//   test::test_ca ca{dir.path(), "cluster"};
//   test::test_ca other{dir.path(), "rogue"};
//   auto server = ca.issue("server");              // CN localhost, SANs
//   auto client = ca.issue("client", {.common_name = "client"});
//   auto stale = ca.issue("old", {.validity = test::cert_validity::expired});
//   auto foreign = other.issue("foreign");
//   // server.cert, server.key, ca.cert() are PEM file paths.
//
// Keys are unencrypted PEM (PKCS#8), ECDSA P-256 unless `cert_spec::key`
// says "rsa" (2048 bits, slower). Certificates are X.509 v3, SHA-256,
// with basicConstraints CA:FALSE, digitalSignature (+ keyEncipherment for
// RSA) and the extendedKeyUsage and subjectAltName of the spec. Each
// call runs `openssl` two or three times (tens of milliseconds).
//
// Threads: a `test_ca` is used by one thread at a time (`openssl ca`
// updates the CA's index file); separate CAs, even in one directory, are
// independent. Failures throw std::runtime_error with the command and
// openssl's own output, which Catch2 reports as the test's failure.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace shardwire::test {

/// Whether the `openssl` command runs (a test without it should SKIP).
bool have_openssl_cli();

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it
/// when the object goes.
class temp_dir {
public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }

  /// `path() / name` as a string.
  std::string file(const std::string& name) const;

private:
  std::filesystem::path path_;
};

/// A certificate and its key, as paths of PEM files.
struct cert_pair {
  std::string cert;
  std::string key;
};

/// When a certificate is valid, relative to now.
enum class cert_validity {
  /// From a minute ago for `cert_spec::days` days.
  valid,
  /// From two days ago to one day ago.
  expired,
  /// From tomorrow, for `cert_spec::days` days.
  not_yet_valid,
};

/// What goes into a certificate `test_ca::issue` makes.
struct cert_spec {
  /// The subject's CN (letters, digits, '.', '-', '_' and spaces).
  std::string common_name = "localhost";
  /// subjectAltName entries in OpenSSL's syntax; empty for no extension.
  std::vector<std::string> alt_names = {"DNS:localhost", "IP:127.0.0.1"};
  /// extendedKeyUsage; both by default, since a node's certificate serves
  /// both ends of its links. Both false: no extension (any use).
  bool server_auth = true;
  bool client_auth = true;
  cert_validity validity = cert_validity::valid;
  /// Length of validity for `valid` and `not_yet_valid`.
  int days = 30;
  /// "ec" (P-256) or "rsa" (2048 bits).
  std::string key = "ec";
};

/// A self-signed CA (ECDSA P-256, valid from now for ten years)
/// with its files in a directory: NAME.ca.pem (the certificate peers
/// trust), NAME.ca.key, and its `openssl ca` database (NAME.ca.*).
class test_ca {
public:
  /// Makes the CA named `name` (its CN; also the file prefix) in `dir`,
  /// which must exist.
  test_ca(std::filesystem::path dir, std::string name);

  /// Path of the CA's certificate (PEM): what a peer trusts (--tls-ca).
  const std::string& cert() const noexcept { return cert_; }

  /// Path of the CA's private key (PEM).
  const std::string& key() const noexcept { return key_; }

  /// Issues a certificate signed by this CA, with a new key: files
  /// STEM.pem and STEM.key in the CA's directory (replaced if present).
  cert_pair issue(const std::string& stem, const cert_spec& spec = {});

private:
  std::filesystem::path dir_;
  std::string name_;
  std::string cert_;
  std::string key_;
  std::string config_;
};

/// Writes the PEM files `parts` one after the other into `out` and returns
/// its path: a CA bundle trusting several CAs, or a certificate chain
/// (leaf first).
std::string concat_pem(const std::string& out,
                       const std::vector<std::string>& parts);

} // namespace shardwire::test
