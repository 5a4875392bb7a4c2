// The asyncio documentation's UDP echo client, as a shardwire program.
//
// Sends 'Hello World!' from connection_made on a connected UDP endpoint,
// prints the reply, closes, and exits 0 once connection_lost ran.
//
// Unlike asyncio's example, which hangs forever when no server answers
// (error_received closes nothing), this client gives up after --timeout-ms
// (default 5000), prints an error and exits 1. An ICMP "Connection refused"
// is printed first as asyncio does (`Error received: [Errno 111] Connection
// refused`); the shutdown after the timeout then prints `Connection closed`.
//
//   udp_echo_client [--host=127.0.0.1] [--port=9999] [--message=...]
//                   [--timeout-ms=5000]
#include "demos/metrics_option.hpp"
#include "demos/print.hpp"

#include "actors/config.hpp"
#include "actors/datagram_protocol.hpp"
#include "actors/errors.hpp"
#include "runtime/runtime.hpp"
#include "transports/udp.hpp"

#include <cstring>
#include <future>
#include <memory>

using namespace shardwire;

namespace {

struct client_config : config {
  std::string host = "127.0.0.1";
  uint16_t port = 9999;
  std::string message = "Hello World!";
  size_t timeout_ms = 5000;

  client_config() {
    opt_group{custom_options_, "global"}
        .add(host, "host", "server address")
        .add(port, "port,p", "server port")
        .add(message, "message,m", "text to send")
        .add(timeout_ms, "timeout-ms",
             "give up after this many milliseconds without a reply "
             "(1-86400000)");
    shards = 1;
  }

  /// Checks the client's own options (parse_args' validator).
  bool validate() const {
    bool ok = check_option(port != 0, "port", "must be 1-65535");
    ok &= check_option(timeout_ms >= 1 && timeout_ms <= max_timeout_ms,
                       "timeout-ms",
                       "must be 1-" + std::to_string(max_timeout_ms));
    return ok;
  }

  // A day: far below where the milliseconds overflow.
  static constexpr size_t max_timeout_ms = 24ull * 3600 * 1000;
};

using done_promise = std::shared_ptr<std::promise<void>>;

class echo_client_protocol : public datagram_protocol {
public:
  echo_client_protocol(std::string message, done_promise done)
      : message_(std::move(message)), done_(std::move(done)) {}

  void connection_made(datagram_transport_ref& t) override {
    demo::println("Send: ", message_);
    t.sendto(message_);
  }

  void datagram_received(const buffer& bytes, const endpoint&) override {
    demo::println("Received: ", bytes.view());
    demo::println("Close the socket");
    transport().close();
  }

  void error_received(const caf::error& err) override {
    // Python prints an OSError as "[Errno 111] Connection refused".
    if (err.category() == errno_category)
      demo::println("Error received: [Errno ", static_cast<int>(err.code()),
                    "] ", std::strerror(err.code()));
    else
      demo::println("Error received: ", describe(err));
  }

  void connection_lost(const caf::error&) override {
    demo::println("Connection closed");
    done_->set_value();
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
  runtime rt{cfg};
  auto metrics = demo::serve_metrics(rt, cfg);
  if (!metrics) return 1;
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  datagram_options opts;
  opts.remote_addr = host_port{cfg.host, cfg.port};
  auto ep = create_datagram_endpoint(
      rt, make_datagram_protocol<echo_client_protocol>(cfg.message, done),
      opts);
  if (!ep) {
    demo::eprintln("error: cannot open a UDP endpoint to ", cfg.host, ":",
                   cfg.port, ": ", describe(ep.error()));
    return 1;
  }
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds{cfg.timeout_ms};
  switch (runtime::wait_or_stop(finished, deadline)) {
    case runtime::wait_end::ready:
      return 0;
    case runtime::wait_end::timeout:
      demo::eprintln("error: no reply from ", cfg.host, ":", cfg.port,
                     " within ", cfg.timeout_ms, " ms (--timeout-ms)");
      break;
    case runtime::wait_end::stop_requested:
      demo::eprintln("error: interrupted while waiting for the reply");
      break;
  }
  rt.shutdown();
  return 1;
}
