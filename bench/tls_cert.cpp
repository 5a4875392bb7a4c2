#include "bench/tls_cert.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>

namespace bench {

namespace {

[[noreturn]] void fail(const std::string& what) {
  char buf[256] = "no reason";
  if (auto code = ERR_get_error()) ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  throw std::runtime_error("tls_cert: " + what + ": " + buf);
}

struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct x509_free {
  void operator()(X509* x) const { X509_free(x); }
};

void add_ext(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) fail("extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

template <class Write>
void write_pem(const std::string& path, Write write) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) throw std::runtime_error("tls_cert: cannot write " + path);
  bool ok = write(f) == 1;
  std::fclose(f);
  if (!ok) fail("PEM_write " + path);
}

} // namespace

tls_cert::tls_cert(tls_key_type key) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string{base && *base ? base : "/tmp"} + "/echo_bench-tls-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr)
    throw std::runtime_error("tls_cert: mkdtemp failed in " + tmpl);
  dir_ = tmpl;
  cert_file_ = dir_ + "/server.pem";
  key_file_ = dir_ + "/server.key";
  std::unique_ptr<EVP_PKEY, pkey_free> pkey{
      key == tls_key_type::ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048)};
  if (!pkey) fail("key generation");
  std::unique_ptr<X509, x509_free> cert{X509_new()};
  X509_set_version(cert.get(), 2); // v3
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), pkey.get());
  auto* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  add_ext(cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_ext(cert.get(), NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
  if (X509_sign(cert.get(), pkey.get(), EVP_sha256()) == 0) fail("X509_sign");
  write_pem(key_file_, [&](FILE* f) {
    return PEM_write_PrivateKey(f, pkey.get(), nullptr, nullptr, 0, nullptr,
                                nullptr);
  });
  write_pem(cert_file_, [&](FILE* f) { return PEM_write_X509(f, cert.get()); });
}

tls_cert::~tls_cert() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

} // namespace bench
