// The asyncio documentation's TCP echo client, as a shardwire program.
//
// Sends 'Hello World!' in connection_made, prints what comes back, and exits
// 0 once the server closed the connection. A refused or failed connect
// prints the error and exits 1; so does an exchange (connect, echo, close)
// that takes longer than --timeout-ms, e.g. a server that never answers.
//
//   tcp_echo_client [--host=127.0.0.1] [--port=8888] [--message=...]
//                   [--timeout-ms=10000]
#include "demos/metrics_option.hpp"
#include "demos/print.hpp"

#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "actors/protocol.hpp"
#include "runtime/runtime.hpp"
#include "transports/tcp.hpp"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>

using namespace shardwire;

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

/// Shared by main and the protocol, which may outlive main's wait.
struct exchange_state {
  std::promise<void> done;
  /// Set by main when --timeout-ms passed: the connection then ends at
  /// shutdown, and that end is not the exchange's outcome to print.
  std::atomic<bool> gave_up{false};
};

using done_promise = std::shared_ptr<exchange_state>;

class echo_client_protocol : public protocol {
public:
  echo_client_protocol(std::string message, done_promise done)
      : message_(std::move(message)), done_(std::move(done)) {}

  void connection_made(transport_ref& t) override {
    t.write(message_);
    demo::println("Data sent: ", demo::py_repr(message_));
  }

  void data_received(const buffer& bytes) override {
    demo::println("Data received: ", demo::py_repr(bytes.view()));
  }

  void connection_lost(const caf::error& reason) override {
    if (done_->gave_up.load()) {
      // main already reported the timeout.
    } else if (reason) {
      demo::println("The connection failed: ", describe(reason));
    } else {
      demo::println("The server closed the connection");
    }
    done_->done.set_value();
  }

private:
  std::string message_;
  done_promise done_;
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
  auto done = std::make_shared<exchange_state>();
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
  switch (runtime::wait_or_stop(finished, deadline)) {
    case runtime::wait_end::ready:
      return 0;
    case runtime::wait_end::timeout:
      done->gave_up = true;
      demo::eprintln("error: ", cfg.host, ":", cfg.port,
                     " did not finish the exchange within ", cfg.timeout_ms,
                     " ms (--timeout-ms)");
      break;
    case runtime::wait_end::stop_requested:
      done->gave_up = true;
      demo::eprintln("error: interrupted before the exchange finished");
      break;
  }
  rt.shutdown(); // closes the connection
  return 1;
}
