// Callback style: an echo server in the style of the asyncio documentation,
// written as asyncio.Protocol code is. One protocol object per connection,
// each inside its own actor on the shard that owns the socket.
#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "actors/protocol.hpp"
#include "runtime/runtime.hpp"
#include "transports/tcp.hpp"

#include <iostream>

using namespace shardwire;

class echo_protocol : public protocol {
public:
  void connection_made(transport_ref& t) override {
    std::cout << "Connection from " << python_repr(t.info().peername)
              << " on shard " << t.info().shard << std::endl;
  }

  void data_received(const buffer& bytes) override {
    transport().write(bytes); // the received storage goes back out: no copy
  }

  bool eof_received() override {
    return false; // the peer is done: close once our echo is flushed
  }

  void connection_lost(const caf::error& reason) override {
    if (reason)
      std::cout << "Connection lost: " << describe(reason) << std::endl;
  }
};

// Program options: CAF's --name=value syntax, plus --help for free.
struct echo_config : config {
  uint16_t port = 8888;

  echo_config() {
    opt_group{custom_options_, "global"}.add(port, "port,p",
                                             "port to listen on");
  }
};

int main(int argc, char** argv) {
  echo_config cfg;
  if (auto rc = parse_args(cfg, argc, argv)) // --help, --shards=4, --port=0...
    return *rc;
  runtime rt{cfg}; // the actor system plus one shard thread per core
  server_options opts;
  opts.port = cfg.port;
  auto srv = create_server(rt, make_protocol<echo_protocol>(), opts);
  if (!srv) {
    std::cerr << "cannot listen: " << describe(srv.error()) << std::endl;
    return 1;
  }
  std::cout << "Serving on " << to_string(srv->sockets.front()) << std::endl;
  runtime::wait_for_stop_signal(); // Ctrl-C
  rt.shutdown(); // transports first, so every protocol gets its `lost`
}
