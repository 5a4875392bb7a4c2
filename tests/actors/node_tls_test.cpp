// Encrypted node links (enable_tls, actors/node.hpp): two actor systems in
// this process, each a node with its own certificate, over loopback.
// Certificates are made here with the `openssl` command line
// (tests/support/test_certs.hpp); none is committed.
//
// - mutual authentication: certificates from the cluster's CA on both
//   sides, a lookup and a request round trip, and a service watch;
// - refused, with an error well before the lookup's own timeout: a node
//   presenting a certificate of another CA (as client and as server), a
//   node without TLS against a TLS node and the reverse;
// - bad files are refused before anything starts, naming the option;
// - CAF's openssl.* options without enable_tls are refused, never served
//   in plain text.
#include "actors/node.hpp"

#include "actors/errors.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/test_certs.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <fstream>
#include <memory>
#include <optional>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

using namespace shardwire;
using namespace shardwire::test;
using namespace std::chrono_literals;

namespace {

caf::behavior doubler() {
  return {[](int32_t x) { return x * 2; }};
}

// A refusal must come from the handshake, not from the lookup's timeout:
// the lookups below may wait this long, the refusals must take less than
// half of it.
constexpr auto lookup_timeout = std::chrono::seconds(10);
constexpr auto refusal_bound = 5s;

/// The certificates of one test: the cluster's CA with two node
/// certificates, and a rogue CA with one.
struct pki {
  temp_dir dir;
  test_ca ca{dir.path(), "cluster"};
  test_ca rogue_ca{dir.path(), "rogue"};
  cert_pair a = ca.issue("node-a", {.common_name = "node-a"});
  cert_pair b = ca.issue("node-b", {.common_name = "node-b"});
  cert_pair foreign = rogue_ca.issue("foreign", {.common_name = "foreign"});
  /// Trusts both CAs: a rogue node that accepts the cluster's nodes, so
  /// that only the other side's check can refuse it.
  std::string both_cas =
      concat_pem(dir.file("both.pem"), {ca.cert(), rogue_ca.cert()});

  node_tls node_a() const { return {a.cert, a.key, ca.cert()}; }
  node_tls node_b() const { return {b.cert, b.key, ca.cert()}; }
  node_tls rogue() const { return {foreign.cert, foreign.key, both_cas}; }
};

/// One node: an actor system (TLS on when `tls` has files) with a doubler
/// published as "svc" on a free port of 127.0.0.1.
struct tls_node {
  node_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<node> n;
  caf::actor svc;
  uint16_t port = 0;

  explicit tls_node(const node_tls& tls) {
    cfg.set("scheduler.max-threads", 2);
    auto err = enable_tls(cfg, tls);
    REQUIRE_FALSE(err);
    sys = std::make_unique<caf::actor_system>(cfg);
    CHECK(tls_enabled(*sys) == tls.any());
    n = std::make_unique<node>(*sys);
    svc = sys->spawn(doubler);
    n->add("svc", svc);
    auto p = n->publish(0);
    REQUIRE(p);
    port = *p;
  }

  ~tls_node() {
    caf::anon_send_exit(svc, caf::exit_reason::user_shutdown);
    n.reset();
    sys.reset();
  }

  service_address address() const { return {"127.0.0.1", port, "svc"}; }

  /// Looks `other`'s "svc" up; the time it took in `took`.
  caf::expected<caf::actor> lookup(const tls_node& other,
                                   std::chrono::milliseconds& took) {
    auto start = std::chrono::steady_clock::now();
    auto r = lookup_actor(*sys, other.address(), {}, lookup_timeout);
    took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    return r;
  }
};

/// What a refused lookup must look like: node_unavailable from CAF's
/// handshake (closed during it, or failed at once when connecting), with
/// the hint, well within the bound.
void check_refused(const caf::expected<caf::actor>& r,
                   std::chrono::milliseconds took) {
  REQUIRE_FALSE(r);
  auto text = describe(r.error());
  INFO(text << " after " << took.count() << " ms");
  CHECK(is(r.error(), sw_errc::node_unavailable));
  CHECK((text.find("disconnect_during_handshake") != std::string::npos ||
         text.find("cannot_connect_to_node") != std::string::npos));
  CHECK(text.find("TLS") != std::string::npos);
  CHECK(took < refusal_bound);
}

/// A TLS client without a certificate against `port`: trusts `ca_file`,
/// completes its side of the handshake, then reads. Returns the bytes read
/// before the connection failed or closed (a node that accepted it would
/// send its BASP handshake), or -1 if the client's own handshake failed.
/// Every socket call is bounded by a 5 s timeout.
int read_without_client_cert(uint16_t port, const std::string& ca_file,
                             std::string& why) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  auto* ctx = SSL_CTX_new(TLS_client_method());
  REQUIRE(SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) == 1);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  auto* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  int total = -1;
  if (SSL_connect(ssl) == 1) {
    total = 0;
    char buf[256];
    int n = 0;
    while ((n = SSL_read(ssl, buf, sizeof buf)) > 0)
      total += n;
    auto e = ERR_peek_error();
    why = e != 0 ? ERR_reason_error_string(e) : "closed";
  }
  ERR_clear_error();
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ::close(fd);
  return total;
}

bool skip_without_openssl() {
  if (have_openssl_cli()) return false;
  WARN("openssl command not found: TLS node tests skipped");
  return true;
}

} // namespace

TEST_CASE("node tls: mutually authenticated nodes look up and round-trip") {
  if (skip_without_openssl()) return;
  pki certs;
  tls_node server{certs.node_a()};
  tls_node client{certs.node_b()};
  std::chrono::milliseconds took{0};
  auto r = client.lookup(server, took);
  REQUIRE(r);
  caf::scoped_actor self{*client.sys};
  std::optional<int32_t> got;
  self->request(*r, caf::timespan{deadline}, int32_t{21})
      .receive([&](int32_t x) { got = x; },
               [&](caf::error& err) { FAIL(describe(err)); });
  CHECK(got == 42);
  // A service watch takes the same TLS path (the middleman's connect).
  auto watch = spawn_service_watch(
      *client.sys, caf::actor_cast<caf::actor>(self), server.address(), {});
  bool up = false;
  self->receive([&](service_up& x) { up = x.actor == *r; },
                [&](service_down& x) { FAIL(describe(x.reason)); },
                caf::after(deadline) >> [] {});
  CHECK(up);
  caf::anon_send_exit(watch, caf::exit_reason::user_shutdown);
}

TEST_CASE("node tls: a certificate of another CA is refused") {
  if (skip_without_openssl()) return;
  pki certs;
  tls_node good{certs.node_a()};
  tls_node rogue{certs.rogue()};
  std::chrono::milliseconds took{0};
  SECTION("as a client: the accepting node verifies it") {
    // The rogue trusts the cluster's CA too: only `good` can refuse.
    check_refused(rogue.lookup(good, took), took);
  }
  SECTION("as a server: the connecting node verifies it") {
    check_refused(good.lookup(rogue, took), took);
  }
  // The good node still serves a node with a good certificate.
  tls_node other{certs.node_b()};
  auto r = other.lookup(good, took);
  CHECK(r);
}

TEST_CASE("node tls: a client without a certificate is refused") {
  if (skip_without_openssl()) return;
  pki certs;
  tls_node secure{certs.node_a()};
  std::string why;
  // The client verifies the node (its handshake completes, TLS 1.3), but
  // the node wants a certificate and ends the connection instead of
  // sending its first BASP bytes.
  auto got = read_without_client_cert(secure.port, certs.ca.cert(), why);
  INFO(why);
  CHECK(got == 0);
  CHECK(why.find("certificate required") != std::string::npos);
}

TEST_CASE("node tls: plain text and TLS do not mix") {
  if (skip_without_openssl()) return;
  pki certs;
  tls_node secure{certs.node_a()};
  tls_node plain{node_tls{}};
  std::chrono::milliseconds took{0};
  SECTION("a node without TLS against a TLS node") {
    check_refused(plain.lookup(secure, took), took);
  }
  SECTION("a TLS node against a node without TLS") {
    check_refused(secure.lookup(plain, took), took);
  }
}

TEST_CASE("node tls: bad files are refused naming the option") {
  if (skip_without_openssl()) return;
  pki certs;
  auto expired =
      certs.ca.issue("expired", {.validity = cert_validity::expired});
  auto early =
      certs.ca.issue("early", {.validity = cert_validity::not_yet_valid});
  auto server_only = certs.ca.issue("server-only", {.client_auth = false});
  auto garbage = certs.dir.file("garbage.pem");
  std::ofstream{garbage} << "not a certificate\n";
  auto a = certs.node_a();
  // The first problem's option and a piece of its message.
  auto first = [](const node_tls& tls) {
    auto problems = check_node_tls(tls);
    return problems.empty() ? node_tls_problem{} : std::move(problems.front());
  };
  auto refused = [&](const node_tls& tls, const std::string& option,
                     const std::string& part) {
    auto p = first(tls);
    INFO(p.option << ": " << p.message);
    CHECK(p.option == option);
    CHECK(p.message.find(part) != std::string::npos);
    // enable_tls says the same, as "--OPTION: ...", and changes nothing.
    node_config cfg;
    auto err = enable_tls(cfg, tls);
    CHECK(is(err, sw_errc::invalid_argument));
    CHECK(describe(err).find("--" + option + ": ") != std::string::npos);
    CHECK(cfg.openssl_certificate.empty());
  };
  CHECK(check_node_tls(a).empty());
  CHECK(check_node_tls(node_tls{}).empty());
  SECTION("partial sets") {
    refused({a.cert_file, "", a.ca_file}, "tls-key", "given: --tls-cert");
    refused({"", a.key_file, ""}, "tls-cert", "go together");
    auto all = check_node_tls({"", "", a.ca_file});
    CHECK(all.size() == 2);
  }
  SECTION("missing and unreadable files") {
    refused({certs.dir.file("nope.pem"), a.key_file, a.ca_file}, "tls-cert",
            "No such file");
    refused({a.cert_file, certs.dir.file("nope.key"), a.ca_file}, "tls-key",
            "No such file");
    refused({a.cert_file, a.key_file, certs.dir.path().string()}, "tls-ca",
            "is a directory");
  }
  SECTION("files that hold something else") {
    refused({garbage, a.key_file, a.ca_file}, "tls-cert", "no usable PEM");
    refused({a.cert_file, garbage, a.ca_file}, "tls-key", "no usable PEM");
    refused({a.cert_file, a.key_file, garbage}, "tls-ca", "no usable PEM");
  }
  SECTION("a key that is not the certificate's") {
    refused({a.cert_file, certs.b.key, a.ca_file}, "tls-key",
            "not the key of the certificate");
  }
  SECTION("certificates the CA does not vouch for now") {
    refused({certs.foreign.cert, certs.foreign.key, a.ca_file}, "tls-cert",
            "unable to get local issuer certificate");
    refused({expired.cert, expired.key, a.ca_file}, "tls-cert", "expired");
    refused({early.cert, early.key, a.ca_file}, "tls-cert", "not yet valid");
    refused({server_only.cert, server_only.key, a.ca_file}, "tls-cert",
            "as a TLS client certificate");
  }
}

TEST_CASE("node tls: CAF's openssl options without enable_tls are refused") {
  if (skip_without_openssl()) return;
  pki certs;
  node_config cfg;
  cfg.set("scheduler.max-threads", 2);
  cfg.openssl_certificate = certs.a.cert;
  caf::actor_system sys{cfg};
  CHECK_FALSE(tls_enabled(sys));
  node n{sys};
  auto p = n.publish(0);
  REQUIRE_FALSE(p);
  CHECK(is(p.error(), sw_errc::invalid_argument));
  CHECK(describe(p.error()).find("enable_tls") != std::string::npos);
  auto r = lookup_actor(sys, {"127.0.0.1", 1, "svc"}, {}, 1s);
  REQUIRE_FALSE(r);
  CHECK(is(r.error(), sw_errc::invalid_argument));
}
