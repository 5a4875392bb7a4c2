// The asyncio documentation's TCP echo client, as a shardwire program.
//
// Sends 'Hello World!' in connection_made, prints what comes back, and exits
// 0 once the server closed the connection. A refused or failed connect
// prints the error and exits 1; so does an exchange (connect, echo, close)
// that takes longer than --timeout-ms, e.g. a server that never answers.
//
//   tcp_echo_client [--host=127.0.0.1] [--port=8888] [--message=...]
//                   [--timeout-ms=10000]
#include "demos/echo_protocols.hpp"
#include "demos/metrics_option.hpp"
#include "demos/print.hpp"

#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "runtime/runtime.hpp"
#include "transports/tcp.hpp"

#include <chrono>
#include <memory>

using namespace shardwire;
using demo::echo_client_protocol;

namespace {

struct client_config : config {
  std::string host = "127.0.0.1";
  uint16_t port = 8888;
  std::string message = "Hello World!";
  size_t timeout_ms = 10000;

  client_config() {
    opt_group{custom_options_, "global"}
        .add(host, "host", "server address")
        .add(port, "port,p", "server port")
        .add(message, "message,m", "text to send")
        .add(timeout_ms, "timeout-ms",
             "bound on the whole exchange (connect, echo, close) in ms "
             "(1-86400000)");
    shards = 1;
  }

  /// Checks the client's own options (parse_args' validator).
  bool validate() const {
    bool ok = check_option(port != 0, "port", "must be 1-65535");
    ok &= check_option(!message.empty(), "message", "must not be empty");
    ok &= check_option(timeout_ms >= 1 && timeout_ms <= max_timeout_ms,
                       "timeout-ms",
                       "must be 1-" + std::to_string(max_timeout_ms));
    return ok;
  }

  // A day: far below where the milliseconds overflow.
  static constexpr size_t max_timeout_ms = 24ull * 3600 * 1000;
};

} // namespace

int main(int argc, char** argv) {
  client_config cfg;
  if (auto rc = parse_args(cfg, argc, argv, [&] { return cfg.validate(); }))
    return *rc;
  // One deadline for the whole exchange: connect, echo and close.
  auto timeout = std::chrono::milliseconds{cfg.timeout_ms};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  runtime rt{cfg};
  auto metrics = demo::serve_metrics(rt, cfg);
  if (!metrics) return 1;
  auto done = std::make_shared<demo::exchange_state>();
  auto finished = done->done.get_future();
  connect_options opts;
  opts.host = cfg.host;
  opts.port = cfg.port;
  opts.timeout = timeout;
  auto conn = create_connection(
      rt, opts, make_protocol<echo_client_protocol>(cfg.message, done));
  if (!conn) {
    // The bound that ran out is the user's to change: name it.
    std::string bound;
    if (conn.error() == sw_errc::timeout)
      bound = " (--timeout-ms=" + std::to_string(cfg.timeout_ms) + ")";
    demo::eprintln("error: cannot connect to ", cfg.host, ":", cfg.port, ": ",
                   describe(conn.error()), bound);
    return 1;
  }
  return demo::finish_exchange(rt, *done, finished, deadline,
                               cfg.host + ":" + std::to_string(cfg.port),
                               cfg.timeout_ms);
}
