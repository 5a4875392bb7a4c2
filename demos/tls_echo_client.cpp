// The asyncio documentation's TCP echo client over TLS (asyncio's
// open_connection(ssl=..., server_hostname=...)), as a shardwire program.
//
// Prints the same lines as tcp_echo_client: sends 'Hello World!' once the
// handshake is done, prints what comes back, and exits 0 once the server
// closed the connection (close_notify). A failed connect or handshake (an
// untrusted certificate: "unknown_ca", a name mismatch:
// "hostname_mismatch"), a connection that ends with an error, or an
// exchange longer than --timeout-ms prints the error and exits 1.
//
// Verification as asyncio's default context: the server's chain against
// --ca (default: the system's CAs) and its name against --server-hostname
// (default: --host, also with --unix); --insecure turns both off.
// --cert/--key present a client certificate (mutual TLS). --starttls
// connects in plaintext, sends "STARTTLS\r\n", waits for "READY\r\n" and
// upgrades in place (demos/tls_demo.hpp has the line protocol).
//
//   tls_echo_client [--host=127.0.0.1] [--port=8443] [--unix=PATH]
//                   [--ca=FILE] [--server-hostname=NAME] [--insecure]
//                   [--cert=FILE --key=FILE] [--starttls] [--message=...]
//                   [--timeout-ms=10000]
#include "demos/echo_protocols.hpp"
#include "demos/metrics_option.hpp"
#include "demos/print.hpp"
#include "demos/tls_demo.hpp"

#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "runtime/runtime.hpp"
#include "transports/tcp.hpp"
#include "transports/tls.hpp"
#include "transports/unix.hpp"

#include <chrono>
#include <memory>
#include <string>

using namespace shardwire;

namespace {

struct client_config : config {
  std::string host = "127.0.0.1";
  uint16_t port = 8443;
  std::string unix_path;
  std::string ca;
  std::string server_hostname;
  bool insecure = false;
  std::string cert;
  std::string key;
  bool starttls = false;
  std::string message = "Hello World!";
  size_t timeout_ms = 10000;
  /// Made by validate() from the TLS options.
  std::shared_ptr<const tls_context> ctx;

  client_config() {
    opt_group{custom_options_, "global"}
        .add(host, "host", "server address")
        .add(port, "port,p", "server port")
        .add(unix_path, "unix",
             "connect to this Unix socket path instead of TCP (--port is "
             "then unused; the name checked is still --server-hostname or "
             "--host)")
        .add(ca, "ca",
             "trust the CAs in this PEM file (default: the system's CAs)")
        .add(server_hostname, "server-hostname",
             "the name sent (SNI) and checked against the server's "
             "certificate (default: --host)")
        .add(insecure, "insecure",
             "do not verify the server's certificate or name (tests only)")
        .add(cert, "cert",
             "present this client certificate, PEM (mutual TLS; needs --key)")
        .add(key, "key", "the private key of --cert, PEM")
        .add(starttls, "starttls",
             "connect in plaintext, send STARTTLS\\r\\n, wait for READY\\r\\n, "
             "then start TLS in place")
        .add(message, "message,m", "text to send")
        .add(timeout_ms, "timeout-ms",
             "bound on the whole exchange (connect, handshake, echo, close) "
             "in ms (1-86400000)");
    shards = 1;
  }

  /// The name the server's certificate must carry.
  std::string checked_name() const {
    return server_hostname.empty() ? host : server_hostname;
  }

  std::string peer() const {
    return unix_path.empty() ? host + ":" + std::to_string(port) : unix_path;
  }

  /// Checks the client's own options and makes the TLS context
  /// (parse_args' validator).
  bool validate() {
    bool ok = check_option(port != 0, "port", "must be 1-65535");
    ok &= check_option(!message.empty(), "message", "must not be empty");
    ok &= check_option(timeout_ms >= 1 && timeout_ms <= max_timeout_ms,
                       "timeout-ms",
                       "must be 1-" + std::to_string(max_timeout_ms));
    ok &=
        check_option(cert.empty() == key.empty(), cert.empty() ? "cert" : "key",
                     "--cert and --key go together");
    ok &= demo::check_file_option(cert, "cert");
    ok &= demo::check_file_option(key, "key");
    ok &= demo::check_file_option(ca, "ca");
    ok &= demo::check_unix_path(unix_path);
    if (!ok) return false;
    tls_context_options o;
    o.role = tls_role::client;
    o.ca_file = ca;
    o.cert_file = cert;
    o.key_file = key;
    o.verify_peer = !insecure;
    ctx = demo::make_context_or_report(o);
    return ctx != nullptr;
  }

  tls_params tls() const {
    auto p = use_tls(ctx, checked_name());
    p.handshake_timeout = std::chrono::milliseconds{timeout_ms};
    return p;
  }

  // A day: far below where the milliseconds overflow.
  static constexpr size_t max_timeout_ms = 24ull * 3600 * 1000;
};

/// The echo client behind the STARTTLS line protocol: the command, the
/// READY line, the upgrade, then the same exchange over TLS.
class starttls_echo_client_protocol : public demo::echo_client_protocol {
public:
  starttls_echo_client_protocol(std::string message, demo::done_promise done,
                                tls_params tls, std::string peer)
      : echo_client_protocol(std::move(message), std::move(done)),
        tls_(std::move(tls)), peer_(std::move(peer)) {}

  void connection_made(transport_ref& t) override {
    t.write(std::string{demo::starttls_command} + "\r\n");
  }

  void data_received(const buffer& bytes) override {
    if (started_) {
      echo_client_protocol::data_received(bytes);
      return;
    }
    if (answered_) return; // after a refused answer: closing
    auto st = line_.add(bytes.view());
    if (st == demo::first_line::state::partial) return;
    answered_ = true;
    if (st == demo::first_line::state::too_long ||
        line_.line() != demo::starttls_ready) {
      auto what = st == demo::first_line::state::too_long
                      ? std::string{"a line longer than 1024 bytes"}
                      : demo::py_repr(line_.line());
      fail("error: " + peer_ + " answered STARTTLS with " + what +
           ", not READY (--starttls)");
      return;
    }
    // The early bytes: whatever followed READY (none from a server that
    // waits for our hello, as it should).
    auto name = tls_.server_hostname;
    transport().start_tls(
        tls_, buffer::copy_of(line_.rest()),
        [this, name](caf::expected<transport_info> started) {
          if (started) {
            started_ = true;
            send_message();
            return;
          }
          fail("error: TLS handshake with " + peer_ +
               " after STARTTLS failed: " + describe(started.error()) +
               demo::tls_hint(started.error(), name));
        });
  }

  void connection_lost(const caf::error& reason) override {
    if (!started_ && !answered_ && !reported_ && !done_->gave_up.load()) {
      // Ended before any answer: the server does not speak STARTTLS.
      reported_ = true;
      demo::eprintln("error: ", peer_,
                     " closed the connection before "
                     "answering STARTTLS (--starttls)",
                     reason ? ": " + describe(reason) : std::string{});
    }
    if (reported_) {
      done_->failed = true;
      done_->done.set_value();
      return;
    }
    echo_client_protocol::connection_lost(reason);
  }

private:
  /// Reports `line` on stderr, marks the exchange failed and aborts.
  void fail(const std::string& line) {
    reported_ = true;
    demo::eprintln(line);
    transport().abort();
  }

  tls_params tls_;
  std::string peer_;
  demo::first_line line_;
  bool answered_ = false;
  bool started_ = false;
  bool reported_ = false;
};

} // namespace

int main(int argc, char** argv) {
  client_config cfg;
  demo::ca_option_argv args{argc, argv};
  if (auto rc = parse_args(cfg, args.argc(), args.argv(),
                           [&] { return cfg.validate(); }))
    return *rc;
  // One deadline for the whole exchange: connect, handshake, echo, close.
  auto timeout = std::chrono::milliseconds{cfg.timeout_ms};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  runtime rt{cfg};
  auto metrics = demo::serve_metrics(rt, cfg);
  if (!metrics) return 1;
  auto done = std::make_shared<demo::exchange_state>();
  auto finished = done->done.get_future();
  // With --starttls the connection starts in plaintext; the protocol
  // upgrades it.
  tls_params tls;
  protocol_factory factory;
  if (cfg.starttls) {
    factory = make_protocol<starttls_echo_client_protocol>(
        cfg.message, done, cfg.tls(), cfg.peer());
  } else {
    tls = cfg.tls();
    factory = make_protocol<demo::echo_client_protocol>(cfg.message, done);
  }
  caf::expected<connection> conn = caf::error{};
  if (cfg.unix_path.empty()) {
    connect_options opts;
    opts.host = cfg.host;
    opts.port = cfg.port;
    opts.timeout = timeout;
    opts.tls = tls;
    conn = create_connection(rt, opts, factory);
  } else {
    conn = create_unix_connection(rt, cfg.unix_path, factory, timeout, tls);
  }
  if (!conn) {
    // The bound that ran out, or the option behind a refused certificate,
    // is the user's to change: name it.
    std::string hint;
    if (conn.error() == sw_errc::timeout)
      hint = " (--timeout-ms=" + std::to_string(cfg.timeout_ms) + ")";
    else
      hint = demo::tls_hint(conn.error(), cfg.checked_name());
    demo::eprintln("error: cannot connect to ", cfg.peer(), ": ",
                   describe(conn.error()), hint);
    return 1;
  }
  int rc = demo::finish_exchange(rt, *done, finished, deadline, cfg.peer(),
                                 cfg.timeout_ms);
  if (rc != 0 || !done->failed.load()) return rc;
  // Ended with an error (printed as "The connection failed: ..." like
  // tcp_echo_client's, unless already reported): exit 1 with an error line.
  if (done->reason)
    demo::eprintln("error: the connection to ", cfg.peer(),
                   " ended with an error: ", describe(done->reason),
                   demo::tls_hint(done->reason, cfg.checked_name()));
  return 1;
}
