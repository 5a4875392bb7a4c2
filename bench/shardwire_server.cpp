// shardwire's persistent echo server for the benchmark: transport and
// protocol are separate actors, the protocol pinned to the connection's
// shard. Two protocol styles: a typed actor, or the callback adapter.
#include "bench/servers.hpp"

#include "actors/config.hpp"
#include "actors/protocol.hpp"
#include "runtime/runtime.hpp"
#include "transports/tcp.hpp"

#include <unistd.h>

namespace bench {

using namespace shardwire;

namespace {

struct echo_state {
  transport_ref transport;
};

// Actor style: one typed actor per connection, echoing every chunk. Its
// state lives in the actor object (no separate allocation), and it keeps no
// transport info: an echo needs no addresses.
protocol_actor::behavior_type
typed_echo(protocol_actor::stateful_pointer<echo_state> self) {
  return {
      [self](connected& msg) {
        self->state.transport.bind(self, std::move(msg.transport));
      },
      [self](data& msg) { self->state.transport.write(std::move(msg.bytes)); },
      [](eof) { return false; },
      [](shardwire::pause) {},
      [](shardwire::resume) {},
      [self](lost&) { self->quit(); },
  };
}

class callback_echo : public protocol {
public:
  void data_received(const buffer& bytes) override { transport().write(bytes); }
};

} // namespace

int run_shardwire_server(int ready_fd, size_t shards, bool callback_style) {
  config cfg;
  cfg.shards = shards;
  cfg.log_level = "error";
  runtime rt{cfg};
  server_options opts;
  opts.backlog = 1024;
  auto factory = callback_style ? make_protocol<callback_echo>()
                                : protocol_fun(typed_echo);
  auto srv = create_server(rt, factory, opts);
  if (!srv) return 1;
  uint16_t port = srv->sockets.at(0).port;
  if (::write(ready_fd, &port, sizeof(port)) != sizeof(port)) return 1;
  ::close(ready_fd);
  runtime::wait_for_stop_signal();
  rt.shutdown();
  return 0;
}

} // namespace bench
