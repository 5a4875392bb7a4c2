#include "sim/node_host.hpp"

namespace shardwire::sim {

caf::error serve_stream_node(network& net, const std::string& host,
                             uint16_t port, stream_node_directory dir) {
  return net.listen(host, port, shardwire::serve_stream_node(std::move(dir)));
}

stream_connector stream_node_connector(network& net, std::string from,
                                       duration timeout) {
  return [&net, from = std::move(from), timeout](const service_address& addr,
                                                 protocol_factory factory,
                                                 stream_connect_done done) {
    connect_options opts;
    opts.from = from;
    opts.to = addr.host;
    opts.port = addr.port;
    opts.timeout = timeout;
    net.async_create_connection(
        std::move(opts), std::move(factory),
        [done = std::move(done)](caf::expected<connection> c) {
          done(c ? caf::error{} : std::move(c.error()));
        });
  };
}

} // namespace shardwire::sim
