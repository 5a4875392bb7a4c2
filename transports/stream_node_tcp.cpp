#include "transports/stream_node_tcp.hpp"

#include "transports/tcp.hpp"

namespace shardwire {

stream_connector tcp_stream_connector(runtime& rt,
                                      std::chrono::milliseconds timeout) {
  return [&rt, timeout](const service_address& addr, protocol_factory factory,
                        stream_connect_done done) {
    connect_options opts;
    opts.host = addr.host;
    opts.port = addr.port;
    opts.timeout = timeout;
    async_create_connection(
        rt, std::move(opts), std::move(factory),
        [done = std::move(done)](caf::expected<connection> c) {
          done(c ? caf::error{} : std::move(c.error()));
        });
  };
}

} // namespace shardwire
