// The asyncio documentation's TCP echo server, as a shardwire program.
//
// Prints, per connection: Connection from (host, port) / Data received:
// '...' / Send: '...' / Close the client socket; echoes the first chunk and
// closes. With --persistent it echoes everything and never closes (load and
// integrity tests). Runs until Ctrl-C, then shuts down cleanly.
//
//   tcp_echo_server [--host=127.0.0.1] [--port=8888] [--persistent]
//                   [--shards=N]
#include "demos/print.hpp"

#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "actors/protocol.hpp"
#include "runtime/runtime.hpp"
#include "transports/tcp.hpp"

using namespace shardwire;

namespace {

struct server_config : config {
  std::string host = "127.0.0.1";
  uint16_t port = 8888;
  bool persistent = false;
  bool quiet = false;

  server_config() {
    opt_group{custom_options_, "global"}
        .add(host, "host", "address to listen on")
        .add(port, "port,p", "port to listen on (0 = any free port)")
        .add(persistent, "persistent",
             "echo everything, never close (load tests)")
        .add(quiet, "quiet,q", "do not print per-connection lines");
  }
};

class echo_server_protocol : public protocol {
public:
  echo_server_protocol(bool persistent, bool quiet)
      : persistent_(persistent), quiet_(quiet) {}

  void connection_made(transport_ref& t) override {
    if (!quiet_)
      demo::println("Connection from ", python_repr(t.info().peername));
  }

  void data_received(const buffer& bytes) override {
    if (persistent_) {
      transport().write(bytes); // the same storage goes back out: no copy
      return;
    }
    if (!quiet_) {
      demo::println("Data received: ", demo::py_repr(bytes.view()));
      demo::println("Send: ", demo::py_repr(bytes.view()));
    }
    transport().write(bytes);
    if (!quiet_) demo::println("Close the client socket");
    transport().close();
  }

private:
  bool persistent_;
  bool quiet_;
};

} // namespace

int main(int argc, char** argv) {
  server_config cfg;
  if (auto rc = parse_args(cfg, argc, argv)) return *rc;
  runtime rt{cfg};
  server_options opts;
  opts.hosts = {cfg.host};
  opts.port = cfg.port;
  // An echo: a client that sends without reading fills its own socket
  // buffers, not this server's memory.
  opts.reads_follow_writes = true;
  auto srv = create_server(
      rt, make_protocol<echo_server_protocol>(cfg.persistent, cfg.quiet), opts);
  if (!srv) {
    std::cerr << "error: cannot serve on " << cfg.host << ":" << cfg.port
              << ": " << describe(srv.error()) << '\n';
    return 1;
  }
  for (auto& ep : srv->sockets)
    std::cerr << "Serving on " << python_repr(ep) << " with "
              << rt.shard_count() << " shard(s)\n";
  runtime::wait_for_stop_signal();
  std::cerr << "Shutting down\n";
  rt.shutdown();
  return 0;
}
