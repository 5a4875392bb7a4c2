#include "transports/detail/datagram_transport.hpp"

namespace shardwire::transport_core {
template class datagram_core<detail::fd_datagram_backend>;
} // namespace shardwire::transport_core

namespace shardwire::detail {

void spawn_datagram_transport(shard& s, int fd, std::string kind,
                              datagram_protocol_factory factory,
                              datagram_settings settings,
                              datagram_callback done) {
  spawn_on<datagram_transport>(s, std::move(factory), settings,
                               std::move(done), fd, std::move(kind));
}

} // namespace shardwire::detail
