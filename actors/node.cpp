#include "actors/node.hpp"

#include "actors/errors.hpp"
#include "runtime/metrics.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/node_id.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>
#include <caf/settings.hpp>
#include <caf/stateful_actor.hpp>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

namespace shardwire {

namespace {

using add_service_atom = caf::atom_constant<caf::atom("swaddsvc")>;
using retry_atom = caf::atom_constant<caf::atom("swretry")>;
// A watch's heartbeat to a node's directory, and the watch's own tick.
using ping_atom = caf::atom_constant<caf::atom("swping")>;
using beat_atom = caf::atom_constant<caf::atom("swbeat")>;

// -- metrics ------------------------------------------------------------------

// Lookups are the requests a node sends to another (connect + directory
// request); `kind` says who asked: lookup_actor, or a service watch.
shared_value& requests_sent(const char* kind) {
  return metrics_registry::global()
      .family("shardwire_node_requests_total",
              "Lookups sent to remote nodes, by kind (lookup, watch).",
              metric_type::counter)
      .counter({{"kind", kind}});
}

void count_failure(const char* kind, const caf::error& err) {
  // The three documented errors, by name; anything else as "other".
  std::string what = "other";
  if (err && err.category() == sw_category)
    what = to_string(static_cast<sw_errc>(err.code()));
  metrics_registry::global()
      .family("shardwire_node_request_failures_total",
              "Lookups to remote nodes that failed, by kind and error.",
              metric_type::counter)
      .counter({{"kind", kind}, {"error", what}})
      .add();
}

// -- errors -------------------------------------------------------------------

// CAF says no more than this when a TLS handshake fails (its openssl
// module logs OpenSSL's reason at INFO level only): the hint names the
// likely causes for the side that reads it.
std::string handshake_hint(bool tls) {
  return tls ? " (the TLS handshake failed or the peer closed the link: it "
               "runs without TLS, or one side's certificate is not signed "
               "by a CA the other trusts, or has expired)"
             : " (the peer closed the link in the handshake: it may require "
               "TLS, --tls-cert/--tls-key/--tls-ca)";
}

/// Maps what CAF or a directory answered to the three documented errors.
/// `tls`: whether this node's links run over TLS.
caf::error classify(const caf::error& err, const service_address& addr,
                    bool tls) {
  if (err.category() == sw_category) {
    if (is(err, sw_errc::unknown_service) ||
        is(err, sw_errc::incompatible_node))
      return err;
  } else if (err.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(err.code())) {
    case caf::sec::incompatible_versions:
    case caf::sec::incompatible_application_ids:
    case caf::sec::malformed_basp_message:
    case caf::sec::unexpected_message:
    case caf::sec::unexpected_actor_messaging_interface:
      return make_error(sw_errc::incompatible_node,
                        to_string(addr) + ": " + describe(err));
    case caf::sec::disconnect_during_handshake:
      return make_error(sw_errc::node_unavailable, to_string(addr) + ": " +
                                                       describe(err) +
                                                       handshake_hint(tls));
    case caf::sec::cannot_connect_to_node:
      // Without context only from CAF's openssl module: the TLS handshake
      // failed at its first step (a refused TCP connect names the host).
      if (tls && err.context().empty())
        return make_error(sw_errc::node_unavailable, to_string(addr) + ": " +
                                                         describe(err) +
                                                         handshake_hint(tls));
      break;
    default:
      break;
    }
  } else if (err.category() == sw_category &&
             is(err, sw_errc::invalid_argument)) {
    return err; // link_manager's refusal
  }
  return make_error(sw_errc::node_unavailable,
                    to_string(addr) + ": " + describe(err));
}

caf::expected<caf::actor> check_entry(service_entry& e,
                                      const std::set<std::string>& interface,
                                      const service_address& addr) {
  if (e.version != node_protocol_version)
    return make_error(sw_errc::incompatible_node,
                      to_string(addr) + ": directory version " +
                          std::to_string(e.version));
  if (!e.actor) return make_error(sw_errc::unknown_service, to_string(addr));
  if (!interface.empty() && e.interface != interface)
    return make_error(sw_errc::incompatible_node,
                      to_string(addr) + ": the actor has another interface");
  return std::move(e.actor);
}

// -- links: plain or TLS ------------------------------------------------------

/// The middleman actor that makes this node's links: CAF's openssl module
/// with TLS on, else the plain middleman. Refuses CAF's `openssl.*` options
/// without `enable_tls`: a node never runs in plain text a configuration
/// that asked for TLS.
caf::expected<caf::io::middleman_actor> link_manager(caf::actor_system& sys) {
  if (sys.has_openssl_manager()) return sys.openssl_manager().actor_handle();
  const auto& c = sys.config();
  if (!c.openssl_certificate.empty() || !c.openssl_key.empty() ||
      !c.openssl_cafile.empty() || !c.openssl_capath.empty() ||
      !c.openssl_passphrase.empty())
    return make_error(sw_errc::invalid_argument,
                      "CAF's openssl.* options are set but TLS is off on "
                      "node links: turn it on with enable_tls "
                      "(--tls-cert, --tls-key, --tls-ca)");
  return sys.middleman().actor_handle();
}

// -- the directory ------------------------------------------------------------

struct directory_state {
  std::map<std::string, service_entry> entries;
  static inline const char* name = "shardwire.node_directory";
};

caf::behavior directory(caf::stateful_actor<directory_state>* self) {
  // A service that exits leaves the directory: a lookup then answers
  // unknown_service instead of handing out a dead actor.
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& entries = self->state.entries;
    for (auto i = entries.begin(); i != entries.end();) {
      if (i->second.actor.address() == dm.source)
        i = entries.erase(i);
      else
        ++i;
    }
  });
  return {
      [=](add_service_atom, std::string& name, caf::actor& hdl,
          std::set<std::string>& interface) {
        self->monitor(hdl);
        self->state.entries[name] =
            service_entry{std::move(hdl), std::move(interface)};
      },
      [=](ping_atom) { return ping_atom::value; },
      [=](service_lookup& q) -> caf::result<service_entry> {
        if (q.version != node_protocol_version)
          return make_error(sw_errc::incompatible_node,
                            "directory version " +
                                std::to_string(node_protocol_version));
        auto i = self->state.entries.find(q.name);
        if (i == self->state.entries.end())
          return make_error(sw_errc::unknown_service, q.name);
        return i->second;
      },
  };
}

// -- the watch ----------------------------------------------------------------

struct watch_state {
  caf::actor owner;
  service_address addr;
  std::set<std::string> interface;
  watch_backoff policy;
  heartbeat_policy heartbeats;
  /// The service while it is up, and the directory that named it.
  caf::actor current;
  caf::actor directory;
  /// Judges the heartbeats of the current connection (heartbeats on).
  std::optional<phi_accrual> detector;
  /// Ticks and replies of an earlier "up" carry an older generation.
  uint64_t beat_generation = 0;
  phi_accrual::clock::time_point last_beat;
  caf::timespan delay{0};
  /// A `service_down` went out for the current outage.
  bool down_reported = false;
  static inline const char* name = "shardwire.service_watch";
};

using watch_actor = caf::stateful_actor<watch_state>;

void watch_failed(watch_actor* self, caf::error reason) {
  count_failure("watch", reason);
  auto& st = self->state;
  if (!st.down_reported) {
    st.down_reported = true;
    self->send(st.owner, service_down{st.addr.name, std::move(reason),
                                      down_cause::lookup_failed});
  }
  self->delayed_send(self, st.delay, retry_atom::value);
  st.delay = std::min(st.delay * 2, st.policy.max);
}

void watch_succeeded(watch_actor* self, caf::actor hdl, caf::actor dir) {
  auto& st = self->state;
  st.current = hdl;
  st.directory = std::move(dir);
  st.down_reported = false;
  st.delay = st.policy.initial;
  self->monitor(hdl);
  self->send(st.owner, service_up{st.addr.name, std::move(hdl)});
  if (st.heartbeats.interval.count() > 0) {
    // A new history per connection; the lookup's answer is the first beat.
    st.detector.emplace(st.heartbeats.phi);
    st.last_beat = phi_accrual::clock::now();
    st.detector->heartbeat(st.last_beat);
    self->send(self, beat_atom::value, ++st.beat_generation);
  }
}

void watch_attempt(watch_actor* self);

// The node answers the connection but not the heartbeats: report it down
// as suspected and look it up again (a lookup bounded by lookup_timeout).
void watch_suspected(watch_actor* self, double phi) {
  auto& st = self->state;
  auto silent = std::chrono::duration_cast<std::chrono::milliseconds>(
      phi_accrual::clock::now() - st.last_beat);
  self->demonitor(st.current);
  st.current = nullptr;
  st.directory = nullptr;
  ++st.beat_generation;
  st.down_reported = true;
  char level[32];
  std::snprintf(level, sizeof level, "%.1f", phi);
  char threshold[32];
  std::snprintf(threshold, sizeof threshold, "%.1f",
                st.heartbeats.phi.threshold);
  self->send(
      st.owner,
      service_down{st.addr.name,
                   make_error(sw_errc::node_unavailable,
                              to_string(st.addr) + ": phi " + level +
                                  " above its threshold " + threshold +
                                  " (no heartbeat for " +
                                  std::to_string(silent.count()) + " ms)"),
                   down_cause::suspected});
  watch_attempt(self);
}

// One heartbeat tick: judge, then ping again.
void watch_beat(watch_actor* self, uint64_t generation) {
  auto& st = self->state;
  if (generation != st.beat_generation || !st.current || !st.detector) return;
  auto now = phi_accrual::clock::now();
  if (st.detector->suspect(now)) {
    watch_suspected(self, st.detector->phi(now));
    return;
  }
  auto interval = st.heartbeats.interval;
  // An unanswered ping must not stay pending for long: the detector
  // judges the silence, the timeout only bounds what is kept.
  auto bound = std::max(caf::timespan{interval * 10},
                        caf::timespan{std::chrono::seconds(1)});
  self->request(st.directory, bound, ping_atom::value)
      .then(
          [=](ping_atom) {
            auto& st = self->state;
            if (generation != st.beat_generation || !st.detector) return;
            st.last_beat = phi_accrual::clock::now();
            st.detector->heartbeat(st.last_beat);
          },
          [](caf::error&) {});
  self->delayed_send(self, interval, beat_atom::value, generation);
}

// One lookup: the middleman's connect (it never blocks the caller; CAF
// caches the connection per host and port and drops the entry when the
// directory's proxy goes down), then the directory request.
void watch_attempt(watch_actor* self) {
  auto& st = self->state;
  static auto& sent = requests_sent("watch");
  sent.add();
  auto& sys = self->home_system();
  auto mm = link_manager(sys);
  if (!mm) {
    watch_failed(self, std::move(mm.error()));
    return;
  }
  auto tls = tls_enabled(sys);
  auto timeout = st.policy.lookup_timeout;
  self->request(*mm, timeout, caf::connect_atom::value, st.addr.host,
                st.addr.port)
      .then(
          [=](caf::node_id&, caf::strong_actor_ptr& ptr,
              std::set<std::string>&) {
            auto& st = self->state;
            if (!ptr) {
              watch_failed(self, make_error(sw_errc::incompatible_node,
                                            to_string(st.addr) +
                                                ": no directory published"));
              return;
            }
            auto dir = caf::actor_cast<caf::actor>(ptr);
            self->request(dir, timeout, service_lookup{st.addr.name})
                .then(
                    [=](service_entry& e) {
                      auto& st = self->state;
                      auto x = check_entry(e, st.interface, st.addr);
                      if (x)
                        watch_succeeded(self, std::move(*x), dir);
                      else
                        watch_failed(self, std::move(x.error()));
                    },
                    [=](caf::error& err) {
                      watch_failed(self, classify(err, self->state.addr, tls));
                    });
          },
          [=](caf::error& err) {
            watch_failed(self, classify(err, self->state.addr, tls));
          });
}

caf::behavior watch(watch_actor* self, caf::actor owner, service_address addr,
                    std::set<std::string> interface, watch_backoff policy,
                    heartbeat_policy heartbeats) {
  auto& st = self->state;
  st.owner = std::move(owner);
  st.addr = std::move(addr);
  st.interface = std::move(interface);
  st.policy = policy;
  st.heartbeats = heartbeats;
  st.delay = policy.initial;
  self->monitor(st.owner);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source == st.owner.address()) {
      self->quit();
      return;
    }
    if (!st.current || dm.source != st.current.address()) return;
    st.current = nullptr;
    st.directory = nullptr;
    ++st.beat_generation;
    st.down_reported = true;
    bool is_exit = dm.reason && dm.reason.category() == caf::atom("exit");
    auto why =
        is_exit
            ? caf::to_string(static_cast<caf::exit_reason>(dm.reason.code()))
            : describe(dm.reason);
    auto cause = is_exit && dm.reason.code() ==
                                static_cast<uint8_t>(
                                    caf::exit_reason::remote_link_unreachable)
                     ? down_cause::connection_lost
                     : down_cause::service_exited;
    self->send(st.owner,
               service_down{st.addr.name,
                            make_error(sw_errc::node_unavailable,
                                       to_string(st.addr) + ": " + why),
                            cause});
    // Retry at once: a service that restarted quickly is back without delay;
    // a dead node refuses the connection and the back-off takes over.
    watch_attempt(self);
  });
  watch_attempt(self);
  return {
      [=](retry_atom) {
        if (!self->state.current) watch_attempt(self);
      },
      [=](beat_atom, uint64_t generation) { watch_beat(self, generation); },
  };
}

} // namespace

// -- configuration ------------------------------------------------------------

void enable_networking(caf::actor_system_config& cfg) {
  using namespace std::chrono_literals;
  cfg.load<caf::io::middleman>();
  cfg.add_message_type<service_lookup>("shardwire::service_lookup")
      .add_message_type<service_entry>("shardwire::service_entry")
      .add_message_type<service_up>("shardwire::service_up")
      .add_message_type<service_down>("shardwire::service_down");
  cfg.set("middleman.heartbeat-interval", caf::timespan{1s});
  cfg.set("middleman.connection-timeout", caf::timespan{5s});
  // CAF's middleman actor runs on the scheduler, not on a thread of its
  // own. Stopped while a connection handshake was in flight, CAF 0.17 can
  // leak the BASP broker together with the connect request it holds, and
  // with it the last reference to the middleman actor: a detached actor's
  // thread then waits for that reference forever, and so does
  // ~actor_system (kv_cluster front hung in 1 run in 40 stopped within
  // 0.3 s of its start). A scheduled actor leaves no thread to wait for.
  // The price: CAF's blocking connect() runs on a scheduler worker, not on
  // the middleman's thread (docs/distributed.md, "Stopping a node").
  cfg.set("middleman.attach-utility-actors", true);
  // One shared queue instead of work stealing: a message from the network
  // wakes a sleeping worker at once instead of after its back-off, which
  // more than doubled one caller's round trips in bench/remote_bench
  // (docs/performance.md, "Remote messaging"). Shards do not use CAF's
  // scheduler: this changes only the actors of nodes, links and watches.
  cfg.set("scheduler.policy", caf::atom("sharing"));
  // The BASP broker deserializes an incoming message on the multiplexer's
  // thread and enqueues it to its receiver itself, instead of handing it to
  // a BASP worker on the scheduler first: two context switches fewer per
  // message received (one caller's round trip 16 -> 12 in
  // bench/remote_bench, 0.90-0.93 x -> 0.98-1.08 x Erlang's rate). The price
  // is about 20 % of the throughput with 50 concurrent callers (still
  // 2.4 x Erlang's), where the worker overlapped decoding with reading;
  // `--middleman.workers=1` takes it back (docs/performance.md, "Remote
  // messaging").
  cfg.set("middleman.workers", size_t{0});
  cfg.set("middleman.app-identifiers",
          std::vector<std::string>{"shardwire/" +
                                   std::to_string(node_protocol_version)});
}

node_config::node_config() {
  enable_networking(*this);
}

// -- encrypted links ----------------------------------------------------------

namespace {

/// OpenSSL's queued reasons for the last failure, "; "-separated; empties
/// the thread's error queue (CAF's module reads it too).
std::string openssl_reason() {
  std::string out;
  while (auto e = ERR_get_error()) {
    if (!out.empty()) out += "; ";
    if (auto* r = ERR_reason_error_string(e)) {
      out += r;
    } else {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      out += buf;
    }
  }
  return out.empty() ? "no reason given" : out;
}

/// Empty if `path` names a regular file this process can read, else why not.
std::string unreadable(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return "is a directory";
  auto* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return std::strerror(errno);
  std::fclose(f);
  return {};
}

/// Hands OpenSSL the passphrase, or refuses (returns 0) when there is none:
/// never OpenSSL's default, which prompts on the terminal.
int passphrase_cb(char* buf, int size, int, void* user) {
  const auto& pass = *static_cast<const std::string*>(user);
  if (pass.empty() || size <= 0) return 0;
  auto n = std::min(pass.size(), static_cast<size_t>(size));
  std::memcpy(buf, pass.data(), n);
  return static_cast<int>(n);
}

template <class T, void (*Free)(T*)>
struct openssl_deleter {
  void operator()(T* x) const noexcept { Free(x); }
};

using ssl_ctx_ptr =
    std::unique_ptr<SSL_CTX, openssl_deleter<SSL_CTX, SSL_CTX_free>>;
using pkey_ptr =
    std::unique_ptr<EVP_PKEY, openssl_deleter<EVP_PKEY, EVP_PKEY_free>>;
using store_ctx_ptr =
    std::unique_ptr<X509_STORE_CTX,
                    openssl_deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;

/// Empty if `leaf` (with `chain`) verifies against the trust store of
/// `ctx` for `purpose` ("ssl_server" or "ssl_client"), else OpenSSL's
/// reason.
std::string verify_for(SSL_CTX* ctx, X509* leaf, STACK_OF(X509) * chain,
                       const char* purpose) {
  store_ctx_ptr sctx{X509_STORE_CTX_new()};
  if (!sctx ||
      X509_STORE_CTX_init(sctx.get(), SSL_CTX_get_cert_store(ctx), leaf,
                          chain) != 1 ||
      X509_STORE_CTX_set_default(sctx.get(), purpose) != 1)
    return openssl_reason();
  if (X509_verify_cert(sctx.get()) == 1) return {};
  return X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx.get()));
}

} // namespace

std::vector<node_tls_problem> check_node_tls(const node_tls& tls,
                                             const std::string& passphrase) {
  std::vector<node_tls_problem> out;
  if (!tls.any()) return out;
  struct item {
    const char* option;
    const std::string& path;
  };
  const item items[] = {{"tls-cert", tls.cert_file},
                        {"tls-key", tls.key_file},
                        {"tls-ca", tls.ca_file}};
  std::string given;
  for (auto& x : items)
    if (!x.path.empty())
      given += (given.empty() ? "--" : ", --") + std::string{x.option};
  for (auto& x : items) {
    if (x.path.empty())
      out.push_back({x.option, "missing: --tls-cert, --tls-key and --tls-ca "
                               "go together (given: " +
                                   given + ")"});
    else if (auto why = unreadable(x.path); !why.empty())
      out.push_back({x.option, "cannot read '" + x.path + "': " + why});
  }
  if (!out.empty()) return out;
  ERR_clear_error();
  ssl_ctx_ptr ctx{SSL_CTX_new(TLS_method())};
  if (!ctx) {
    out.push_back(
        {"tls-cert", "cannot make a TLS context: " + openssl_reason()});
    return out;
  }
  // The way CAF's module loads the files (session.cpp): the certificate as
  // a chain file, the key as PEM, the CA file as verify locations.
  bool cert_ok =
      SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert_file.c_str()) == 1;
  if (!cert_ok)
    out.push_back({"tls-cert", "'" + tls.cert_file +
                                   "' holds no usable PEM certificate: " +
                                   openssl_reason()});
  pkey_ptr key;
  if (auto* bio = BIO_new_file(tls.key_file.c_str(), "r")) {
    key.reset(PEM_read_bio_PrivateKey(
        bio, nullptr, passphrase_cb,
        const_cast<void*>(static_cast<const void*>(&passphrase))));
    BIO_free(bio);
  }
  if (!key) {
    out.push_back({"tls-key", "'" + tls.key_file +
                                  "' holds no usable PEM private key (an "
                                  "encrypted key needs openssl.passphrase): " +
                                  openssl_reason()});
  } else if (cert_ok &&
             X509_check_private_key(SSL_CTX_get0_certificate(ctx.get()),
                                    key.get()) != 1) {
    ERR_clear_error();
    out.push_back({"tls-key", "'" + tls.key_file +
                                  "' is not the key of the certificate in "
                                  "--tls-cert '" +
                                  tls.cert_file + "'"});
  }
  bool ca_ok = SSL_CTX_load_verify_locations(ctx.get(), tls.ca_file.c_str(),
                                             nullptr) == 1;
  if (!ca_ok)
    out.push_back({"tls-ca", "'" + tls.ca_file +
                                 "' holds no usable PEM CA certificate: " +
                                 openssl_reason()});
  if (cert_ok && ca_ok) {
    // A node's certificate serves both ends of its links: the accepting
    // side verifies a client certificate, the connecting side a server one.
    auto* leaf = SSL_CTX_get0_certificate(ctx.get());
    STACK_OF(X509)* chain = nullptr;
    SSL_CTX_get0_chain_certs(ctx.get(), &chain);
    for (auto [purpose, role] : {std::pair{"ssl_server", "server"},
                                 std::pair{"ssl_client", "client"}}) {
      if (auto why = verify_for(ctx.get(), leaf, chain, purpose);
          !why.empty()) {
        out.push_back({"tls-cert", "'" + tls.cert_file +
                                       "' does not verify against --tls-ca '" +
                                       tls.ca_file + "' as a TLS " + role +
                                       " certificate: " + why});
        break;
      }
    }
  }
  ERR_clear_error();
  return out;
}

caf::error enable_tls(caf::actor_system_config& cfg, const node_tls& tls) {
  if (!tls.any()) return caf::none;
  auto problems = check_node_tls(tls, cfg.openssl_passphrase);
  if (!problems.empty())
    return make_error(sw_errc::invalid_argument,
                      "--" + problems.front().option + ": " +
                          problems.front().message);
  cfg.openssl_certificate = tls.cert_file;
  cfg.openssl_key = tls.key_file;
  cfg.openssl_cafile = tls.ca_file;
  cfg.set("openssl.certificate", tls.cert_file);
  cfg.set("openssl.key", tls.key_file);
  cfg.set("openssl.cafile", tls.ca_file);
  // Loaded once: a second module of the same id would replace the first.
  // (A mark in the settings, not an option: not on the command line.)
  if (!caf::get_or(cfg.content, "shardwire.node-tls", false)) {
    caf::put(cfg.content, "shardwire.node-tls", true);
    cfg.load<caf::openssl::manager>();
  }
  return caf::none;
}

bool tls_enabled(const caf::actor_system& sys) {
  return sys.has_openssl_manager();
}

std::string to_string(down_cause x) {
  switch (x) {
  case down_cause::lookup_failed:
    return "lookup_failed";
  case down_cause::connection_lost:
    return "connection_lost";
  case down_cause::service_exited:
    return "service_exited";
  case down_cause::suspected:
    return "suspected";
  }
  return "unknown";
}

// -- addresses ----------------------------------------------------------------

std::string to_string(const service_address& x) {
  auto host =
      x.host.find(':') != std::string::npos ? "[" + x.host + "]" : x.host;
  return x.name + "@" + host + ":" + std::to_string(x.port);
}

caf::expected<service_address> parse_service_address(std::string_view s,
                                                     std::string name) {
  auto bad = [&] {
    return make_error(sw_errc::invalid_argument,
                      "expected HOST:PORT, got '" + std::string{s} + "'");
  };
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == s.size())
    return bad();
  auto host = s.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return bad();
    host = host.substr(1, host.size() - 2);
  }
  unsigned long port = 0;
  for (auto c : s.substr(colon + 1)) {
    if (c < '0' || c > '9') return bad();
    port = port * 10 + static_cast<unsigned long>(c - '0');
    if (port > 65535) return bad();
  }
  if (port == 0) return bad();
  return service_address{std::string{host}, static_cast<uint16_t>(port),
                         std::move(name)};
}

// -- node ---------------------------------------------------------------------

node::node(caf::actor_system& sys)
    : sys_(sys), directory_(sys.spawn(directory)) {
  // nop
}

node::~node() {
  close();
}

void node::add_actor(std::string name, caf::actor hdl,
                     std::set<std::string> interface) {
  // A blocking send through a scoped actor would also do; a request makes
  // "visible once add returns" hold without a sleep.
  caf::scoped_actor self{sys_};
  self->request(directory_, caf::infinite, add_service_atom::value,
                std::move(name), std::move(hdl), std::move(interface))
      .receive([] {}, [](caf::error&) {});
}

caf::expected<uint16_t> node::publish(uint16_t port, const std::string& host,
                                      bool reuse) {
  auto mm = link_manager(sys_);
  if (!mm) return std::move(mm.error());
  // Both modules hand the port to the same BASP broker, so `close`
  // unpublishes either kind through the plain middleman.
  auto res =
      tls_enabled(sys_)
          ? caf::openssl::publish(directory_, port, host.c_str(), reuse)
          : sys_.middleman().publish(directory_, port, host.c_str(), reuse);
  if (res) port_ = *res;
  return res;
}

void node::close() {
  if (!directory_) return;
  if (port_ != 0) {
    // Ignored: the port may already be gone with the middleman.
    static_cast<void>(sys_.middleman().unpublish(directory_, port_));
    port_ = 0;
  }
  caf::anon_send_exit(directory_, caf::exit_reason::user_shutdown);
  directory_ = nullptr;
}

// -- lookups ------------------------------------------------------------------

namespace {
caf::expected<caf::actor> lookup_once(caf::actor_system& sys,
                                      const service_address& addr,
                                      const std::set<std::string>& interface,
                                      caf::timespan timeout);
} // namespace

caf::expected<caf::actor> lookup_actor(caf::actor_system& sys,
                                       const service_address& addr,
                                       const std::set<std::string>& interface,
                                       caf::timespan timeout) {
  static auto& sent = requests_sent("lookup");
  sent.add();
  auto result = lookup_once(sys, addr, interface, timeout);
  if (!result) count_failure("lookup", result.error());
  return result;
}

namespace {
caf::expected<caf::actor> lookup_once(caf::actor_system& sys,
                                      const service_address& addr,
                                      const std::set<std::string>& interface,
                                      caf::timespan timeout) {
  auto mm = link_manager(sys);
  if (!mm) return std::move(mm.error());
  auto tls = tls_enabled(sys);
  caf::scoped_actor self{sys};
  std::optional<caf::error> err;
  caf::strong_actor_ptr dir;
  self->request(*mm, timeout, caf::connect_atom::value, addr.host, addr.port)
      .receive([&](caf::node_id&, caf::strong_actor_ptr& ptr,
                   std::set<std::string>&) { dir = std::move(ptr); },
               [&](caf::error& x) { err = classify(x, addr, tls); });
  if (err) return std::move(*err);
  if (!dir)
    return make_error(sw_errc::incompatible_node,
                      to_string(addr) + ": no directory published");
  std::optional<caf::expected<caf::actor>> result;
  self->request(caf::actor_cast<caf::actor>(dir), timeout,
                service_lookup{addr.name})
      .receive(
          [&](service_entry& e) { result = check_entry(e, interface, addr); },
          [&](caf::error& x) { result = classify(x, addr, tls); });
  return std::move(*result);
}
} // namespace

caf::actor spawn_service_watch(caf::actor_system& sys, caf::actor owner,
                               service_address addr,
                               std::set<std::string> interface,
                               watch_backoff policy,
                               heartbeat_policy heartbeats) {
  return sys.spawn(watch, std::move(owner), std::move(addr),
                   std::move(interface), policy, heartbeats);
}

} // namespace shardwire
