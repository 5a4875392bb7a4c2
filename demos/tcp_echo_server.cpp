// The asyncio documentation's TCP echo server, as a shardwire program.
//
// Prints, per connection: Connection from (host, port) / Data received:
// '...' / Send: '...' / Close the client socket; echoes the first chunk and
// closes. With --persistent it echoes everything and never closes (load and
// integrity tests). With --buffered the protocol is a buffered one (asyncio's
// BufferedProtocol): the transport reads into chunks the protocol lends, and
// the output is the same. Runs until Ctrl-C, then shuts down cleanly.
//
//   tcp_echo_server [--host=127.0.0.1] [--port=8888] [--persistent]
//                   [--buffered] [--shards=N]
#include "demos/echo_protocols.hpp"
#include "demos/metrics_option.hpp"
#include "demos/print.hpp"

#include "actors/buffered_protocol.hpp"
#include "actors/config.hpp"
#include "actors/errors.hpp"
#include "runtime/runtime.hpp"
#include "transports/tcp.hpp"

#include <optional>

using namespace shardwire;
using demo::echo;
using demo::echo_server_protocol;
using demo::greet;

namespace {

struct server_config : config {
  std::string host = "127.0.0.1";
  uint16_t port = 8888;
  bool persistent = false;
  bool quiet = false;
  bool buffered = false;

  server_config() {
    opt_group{custom_options_, "global"}
        .add(host, "host", "address to listen on")
        .add(port, "port,p", "port to listen on (0 = any free port)")
        .add(persistent, "persistent",
             "echo everything, never close (load tests)")
        .add(quiet, "quiet,q", "do not print per-connection lines")
        .add(buffered, "buffered",
             "serve with a buffered protocol (reads into lent memory)");
  }
};

// The same echo as a buffered protocol: each read lands in a pooled chunk
// this protocol lends, which is then frozen and written back as it is.
class buffered_echo_server_protocol : public buffered_protocol {
public:
  buffered_echo_server_protocol(bool persistent, bool quiet)
      : persistent_(persistent), quiet_(quiet) {}

  void connection_made(transport_ref& t) override { greet(t, quiet_); }

  std::span<std::byte> get_buffer(int64_t) override {
    chunk_.emplace(chunk_size);
    return {chunk_->data(), chunk_->capacity()};
  }

  void buffer_updated(size_t nbytes) override {
    auto bytes = std::move(*chunk_).freeze(nbytes);
    chunk_.reset();
    echo(transport(), bytes, persistent_, quiet_);
  }

private:
  static constexpr size_t chunk_size = 64 * 1024;
  bool persistent_;
  bool quiet_;
  std::optional<mutable_buffer> chunk_;
};

} // namespace

int main(int argc, char** argv) {
  server_config cfg;
  if (auto rc = parse_args(cfg, argc, argv)) return *rc;
  runtime rt{cfg};
  auto metrics = demo::serve_metrics(rt, cfg);
  if (!metrics) return 1;
  server_options opts;
  opts.hosts = {cfg.host};
  opts.port = cfg.port;
  // An echo: a client that sends without reading fills its own socket
  // buffers, not this server's memory.
  opts.reads_follow_writes = true;
  auto factory =
      cfg.buffered ? make_buffered_protocol<buffered_echo_server_protocol>(
                         cfg.persistent, cfg.quiet)
                   : make_protocol<echo_server_protocol>(cfg.persistent,
                                                         cfg.quiet);
  auto srv = create_server(rt, factory, opts);
  if (!srv) {
    demo::eprintln("error: cannot serve on ", cfg.host, ":", cfg.port, ": ",
                   describe(srv.error()));
    return 1;
  }
  for (auto& ep : srv->sockets)
    demo::eprintln("Serving on ", python_repr(ep), " with ", rt.shard_count(),
                   " shard(s)");
  // Type=notify under systemd: ready now (a no-op elsewhere).
  runtime::notify_ready("serving on " + python_repr(srv->sockets.front()));
  runtime::wait_for_stop_signal();
  demo::eprintln("Shutting down");
  rt.shutdown();
  return 0;
}
