// make_test_certs DIR STEM...: test certificates for the Python tests
// (tests/distributed/run_kv_cluster_tls.py), made by the same helper as the
// C++ tests' (tests/support/test_certs.hpp), so there is one recipe.
//
// In DIR (which must exist): the CA "cluster" (cluster.ca.pem) and for each
// STEM a certificate it signs (STEM.pem, STEM.key; CN STEM, SANs
// DNS:localhost and IP:127.0.0.1, server and client use); the CA "rogue"
// (rogue.ca.pem) with foreign.pem / foreign.key; expired.pem / expired.key
// from "cluster", expired yesterday; both-cas.pem trusting both CAs.
// Exit 0, or 1 with openssl's output on stderr.
#include "tests/support/test_certs.hpp"

#include <exception>
#include <iostream>

using namespace shardwire::test;

int main(int argc, char** argv) {
  if (argc < 2 || std::string{argv[1]} == "--help") {
    std::cerr << "usage: make_test_certs DIR STEM...\n";
    return argc < 2 ? 1 : 0;
  }
  try {
    std::filesystem::path dir = argv[1];
    test_ca ca{dir, "cluster"};
    for (int i = 2; i < argc; ++i)
      ca.issue(argv[i], {.common_name = argv[i]});
    ca.issue("expired",
             {.common_name = "expired", .validity = cert_validity::expired});
    test_ca rogue{dir, "rogue"};
    rogue.issue("foreign", {.common_name = "foreign"});
    concat_pem((dir / "both-cas.pem").string(), {ca.cert(), rogue.cert()});
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
