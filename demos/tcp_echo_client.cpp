// The asyncio documentation's TCP echo client, as a shardwire program.
//
// Sends 'Hello World!' in connection_made, prints what comes back, and exits
// 0 once the server closed the connection. A refused or failed connect
// prints the error and exits 1.
//
//   tcp_echo_client [--host=127.0.0.1] [--port=8888] [--message=...]
#include "demos/print.hpp"

#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "actors/protocol.hpp"
#include "runtime/runtime.hpp"
#include "transports/tcp.hpp"

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
        .add(timeout_ms, "timeout-ms", "connect timeout in milliseconds");
    shards = 1;
  }
};

using done_promise = std::shared_ptr<std::promise<void>>;

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
    if (reason)
      demo::println("The connection failed: ", describe(reason));
    else
      demo::println("The server closed the connection");
    done_->set_value();
  }

private:
  std::string message_;
  done_promise done_;
};

} // namespace

int main(int argc, char** argv) {
  client_config cfg;
  if (auto rc = parse_args(cfg, argc, argv)) return *rc;
  runtime rt{cfg};
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  connect_options opts;
  opts.host = cfg.host;
  opts.port = cfg.port;
  opts.timeout = std::chrono::milliseconds{cfg.timeout_ms};
  auto conn = create_connection(
      rt, opts, make_protocol<echo_client_protocol>(cfg.message, done));
  if (!conn) {
    std::cerr << "error: cannot connect to " << cfg.host << ":" << cfg.port
              << ": " << describe(conn.error()) << '\n';
    return 1;
  }
  finished.wait();
  return 0;
}
