// The asyncio documentation's UDP echo server, as a shardwire program.
//
// Prints `Starting UDP server`, then for every datagram
// `Received '...' from ('127.0.0.1', PORT)` and `Send '...' to (...)`, and
// sends it back to its sender. Serves until Ctrl-C (asyncio's example stops
// after an hour), then shuts down cleanly and exits 0.
//
//   udp_echo_server [--host=127.0.0.1] [--port=9999]
#include "demos/metrics_option.hpp"
#include "demos/print.hpp"

#include "actors/config.hpp"
#include "actors/datagram_protocol.hpp"
#include "actors/errors.hpp"
#include "runtime/runtime.hpp"
#include "transports/udp.hpp"

using namespace shardwire;

namespace {

struct server_config : config {
  std::string host = "127.0.0.1";
  uint16_t port = 9999;

  server_config() {
    opt_group{custom_options_, "global"}
        .add(host, "host", "address to listen on")
        .add(port, "port,p", "port to listen on (0 = any free port)");
    shards = 1;
  }
};

class echo_server_protocol : public datagram_protocol {
public:
  void datagram_received(const buffer& bytes, const endpoint& peer) override {
    auto message = demo::py_repr(bytes.view());
    demo::println("Received ", message, " from ", python_repr(peer));
    demo::println("Send ", message, " to ", python_repr(peer));
    transport().sendto(bytes, peer); // the same storage goes back out
  }
};

} // namespace

int main(int argc, char** argv) {
  server_config cfg;
  if (auto rc = parse_args(cfg, argc, argv)) return *rc;
  runtime rt{cfg};
  auto metrics = demo::serve_metrics(rt, cfg);
  if (!metrics) return 1;
  demo::println("Starting UDP server");
  datagram_options opts;
  opts.local_addr = host_port{cfg.host, cfg.port};
  auto ep = create_datagram_endpoint(
      rt, make_datagram_protocol<echo_server_protocol>(), opts);
  if (!ep) {
    demo::eprintln("error: cannot serve on ", cfg.host, ":", cfg.port, ": ",
                   describe(ep.error()));
    return 1;
  }
  demo::eprintln("Serving on ", python_repr(ep->info.sockname));
  runtime::wait_for_stop_signal();
  demo::eprintln("Shutting down");
  rt.shutdown();
  return 0;
}
