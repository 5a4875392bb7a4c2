// shardwire's persistent echo server for the benchmark: transport and
// protocol are separate actors, the protocol pinned to the connection's
// shard. Three protocol styles: a typed actor, the callback adapter, or a
// buffered protocol (the callback adapter for asyncio's BufferedProtocol).
#include "bench/servers.hpp"

#include "actors/buffered_protocol.hpp"
#include "actors/config.hpp"
#include "actors/protocol.hpp"
#include "runtime/runtime.hpp"
#include "transports/tcp.hpp"
#include "transports/tls.hpp"

#include <unistd.h>

#include <optional>

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

// Lends a pooled chunk for each read and sends it back as it is: the bytes
// are read into memory this protocol chose and written from it, with no
// copy in between (freeze hands the block over). The chunk's size follows
// the transport's own rule for plain reads (stream_core: grow while reads
// fill the buffer, shrink when they use under an eighth of it, between
// 4 KiB and 256 KiB), so both servers read in the same sizes and a 1 MiB
// message is a few reads, not 64. The first get_buffer runs when the
// first bytes come (the adapter's first lease is on demand), so a
// connection that never received holds no chunk; after that a lent chunk
// stays with the transport between messages (lending ahead).
class buffered_echo : public buffered_protocol {
public:
  std::span<std::byte> get_buffer(int64_t) override {
    chunk_.emplace(next_size_);
    return {chunk_->data(), chunk_->capacity()};
  }
  void buffer_updated(size_t n) override {
    auto cap = chunk_->capacity();
    if (n == cap && next_size_ < max_chunk)
      next_size_ *= 2;
    else if (n < cap / 8 && next_size_ > min_chunk)
      next_size_ /= 2;
    transport().write(std::move(*chunk_).freeze(n));
    chunk_.reset();
  }

private:
  static constexpr size_t min_chunk = 4 * 1024;
  static constexpr size_t max_chunk = 256 * 1024;
  size_t next_size_ = 16 * 1024;
  std::optional<mutable_buffer> chunk_;
};

} // namespace

int run_shardwire_server(int ready_fd, size_t shards, shardwire_style style,
                         bool collect_metrics, const server_tls& tls) {
  config cfg;
  cfg.shards = shards;
  cfg.metrics_collect = collect_metrics;
  cfg.log_level = "error";
  runtime rt{cfg};
  server_options opts;
  opts.backlog = 1024;
  if (tls) {
    tls_context_options topts;
    topts.role = tls_role::server;
    topts.cert_file = tls.cert_file;
    topts.key_file = tls.key_file;
    auto ctx = make_tls_context(topts);
    if (!ctx) return 1;
    opts.tls = use_tls(std::move(*ctx));
  }
  auto factory = style == shardwire_style::callback
                     ? make_protocol<callback_echo>()
                 : style == shardwire_style::buffered
                     ? make_buffered_protocol<buffered_echo>()
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
