// The asyncio documentation's TCP echo server over TLS (asyncio's
// create_server(ssl=...)), as a shardwire program.
//
// Prints the same lines as tcp_echo_server, per connection: Connection from
// (host, port) / Data received: '...' / Send: '...' / Close the client
// socket; echoes the first chunk and closes (with close_notify). With
// --persistent it echoes everything and never closes. A client whose
// handshake fails (a plaintext client, one without the certificate --ca
// asks for) is logged ("TLS connection dropped: ...", an info line: the
// default --log-level here is info) and dropped; the server serves the
// others on.
//
// --ca=FILE asks every client for a certificate signed by a CA in FILE
// (mutual TLS) and refuses one without. --unix=PATH listens on a Unix
// socket instead of TCP. --starttls serves plaintext until the client's
// line "STARTTLS\r\n", answers "READY\r\n" and upgrades the connection in
// place (demos/tls_demo.hpp has the line protocol; docs/tls.md).
//
//   tls_echo_server --cert=FILE --key=FILE [--ca=FILE] [--host=127.0.0.1]
//                   [--port=8443] [--unix=PATH] [--starttls] [--persistent]
//                   [--quiet] [--shards=N]
#include "demos/echo_protocols.hpp"
#include "demos/metrics_option.hpp"
#include "demos/print.hpp"
#include "demos/tls_demo.hpp"

#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "actors/extra_info.hpp"
#include "runtime/runtime.hpp"
#include "transports/tcp.hpp"
#include "transports/tls.hpp"
#include "transports/unix.hpp"

#include <memory>
#include <string>

using namespace shardwire;

namespace {

struct server_config : config {
  std::string host = "127.0.0.1";
  uint16_t port = 8443;
  std::string unix_path;
  std::string cert;
  std::string key;
  std::string ca;
  bool starttls = false;
  bool persistent = false;
  bool quiet = false;
  /// Made by validate() from --cert, --key and --ca.
  std::shared_ptr<const tls_context> ctx;

  server_config() {
    opt_group{custom_options_, "global"}
        .add(cert, "cert", "the server's certificate (chain), PEM (required)")
        .add(key, "key", "the private key of --cert, PEM (required)")
        .add(ca, "ca",
             "require client certificates signed by a CA in this PEM file "
             "(mutual TLS); default: ask for none")
        .add(host, "host", "address to listen on")
        .add(port, "port,p", "port to listen on (0 = any free port)")
        .add(unix_path, "unix",
             "listen on this Unix socket path instead of TCP (--host and "
             "--port are then unused)")
        .add(starttls, "starttls",
             "plaintext until the client's line STARTTLS\\r\\n, answer "
             "READY\\r\\n, then TLS in place (any other first line: ERROR "
             "expected STARTTLS\\r\\n and close)")
        .add(persistent, "persistent",
             "echo everything, never close (load tests)")
        .add(quiet, "quiet,q", "do not print per-connection lines");
    // A dropped handshake is logged at info level ("TLS connection
    // dropped: tls: not_tls ..."): shown by default here.
    log_level = "info";
  }

  /// Checks the server's own options and makes the TLS context
  /// (parse_args' validator).
  bool validate() {
    bool ok = check_option(!cert.empty(), "cert",
                           "required: the server's certificate (PEM)");
    ok &= check_option(!key.empty(), "key",
                       "required: the private key of --cert (PEM)");
    ok &= demo::check_file_option(cert, "cert");
    ok &= demo::check_file_option(key, "key");
    ok &= demo::check_file_option(ca, "ca");
    ok &= demo::check_unix_path(unix_path);
    if (!ok) return false;
    tls_context_options o;
    o.role = tls_role::server;
    o.cert_file = cert;
    o.key_file = key;
    o.ca_file = ca;
    if (!ca.empty()) o.client_auth = tls_client_auth::required;
    ctx = demo::make_context_or_report(o);
    return ctx != nullptr;
  }
};

/// The echo behind the STARTTLS line protocol: plaintext until the command,
/// then the same echo over TLS.
class starttls_echo_server_protocol : public demo::echo_server_protocol {
public:
  starttls_echo_server_protocol(bool persistent, bool quiet,
                                std::shared_ptr<const tls_context> ctx)
      : echo_server_protocol(persistent, quiet), ctx_(std::move(ctx)) {}

  void data_received(const buffer& bytes) override {
    if (tls_) {
      echo_server_protocol::data_received(bytes);
      return;
    }
    if (refused_) return;
    switch (line_.add(bytes.view())) {
    case demo::first_line::state::partial:
      return;
    case demo::first_line::state::complete:
      if (line_.line() == demo::starttls_command) break;
      [[fallthrough]];
    case demo::first_line::state::too_long:
      refused_ = true;
      transport().write(demo::starttls_refusal);
      transport().close();
      return;
    }
    refused_ = true; // no more plaintext lines: the rest is TLS
    transport().write(std::string{demo::starttls_ready} + "\r\n");
    // The bytes after the command line (a pipelined ClientHello) go to
    // TLS first; so does whatever arrives until the handshake ends.
    transport().start_tls(
        use_tls(ctx_), buffer::copy_of(line_.rest()),
        [this](caf::expected<transport_info> started) {
          if (started) {
            tls_ = true;
            return;
          }
          demo::eprintln("TLS handshake with ",
                         python_repr(transport().info().peername),
                         " after STARTTLS failed: ", describe(started.error()));
        });
  }

private:
  std::shared_ptr<const tls_context> ctx_;
  demo::first_line line_;
  bool refused_ = false;
  bool tls_ = false;
};

} // namespace

int main(int argc, char** argv) {
  server_config cfg;
  demo::ca_option_argv args{argc, argv};
  if (auto rc = parse_args(cfg, args.argc(), args.argv(),
                           [&] { return cfg.validate(); }))
    return *rc;
  runtime rt{cfg};
  auto metrics = demo::serve_metrics(rt, cfg);
  if (!metrics) return 1;
  // In STARTTLS mode the listener takes plaintext; the protocol upgrades.
  tls_params tls;
  if (!cfg.starttls) tls = use_tls(cfg.ctx);
  auto factory = cfg.starttls ? make_protocol<starttls_echo_server_protocol>(
                                    cfg.persistent, cfg.quiet, cfg.ctx)
                              : make_protocol<demo::echo_server_protocol>(
                                    cfg.persistent, cfg.quiet);
  caf::expected<server> srv = caf::error{};
  std::string where;
  if (cfg.unix_path.empty()) {
    where = cfg.host + ":" + std::to_string(cfg.port);
    server_options opts;
    opts.hosts = {cfg.host};
    opts.port = cfg.port;
    // An echo: a client that sends without reading fills its own socket
    // buffers, not this server's memory.
    opts.reads_follow_writes = true;
    opts.tls = tls;
    srv = create_server(rt, factory, opts);
  } else {
    where = cfg.unix_path;
    unix_server_options opts;
    opts.path = cfg.unix_path;
    opts.reads_follow_writes = true;
    opts.tls = tls;
    srv = create_unix_server(rt, factory, opts);
  }
  if (!srv) {
    demo::eprintln("error: cannot serve on ", where, ": ",
                   describe(srv.error()));
    return 1;
  }
  const char* mode = cfg.starttls ? " (STARTTLS)" : " (TLS)";
  for (auto& ep : srv->sockets)
    demo::eprintln("Serving on ", python_repr(ep), " with ", rt.shard_count(),
                   " shard(s)", mode);
  // Type=notify under systemd: ready now (a no-op elsewhere).
  runtime::notify_ready("serving on " + python_repr(srv->sockets.front()));
  runtime::wait_for_stop_signal();
  demo::eprintln("Shutting down");
  rt.shutdown();
  return 0;
}
