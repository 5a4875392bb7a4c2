#include "transports/detail/stream_transport.hpp"

namespace shardwire::transport_core {
template class stream_core<detail::fd_stream_backend>;
} // namespace shardwire::transport_core

namespace shardwire::detail {

void spawn_stream_transport(shard& s, int fd, std::string kind,
                            protocol_factory factory, stream_settings settings,
                            connect_callback done) {
  spawn_on<stream_transport>(s, std::move(factory), settings, std::move(done),
                             stream_direction::both, fd, kind);
}

transport_actor spawn_pipe_transport(shard& s, int fd,
                                     stream_direction direction,
                                     protocol_factory factory,
                                     stream_settings settings,
                                     connect_callback done) {
  std::string kind =
      direction == stream_direction::read_only ? "read_pipe" : "write_pipe";
  auto hdl = spawn_on<stream_transport>(s, std::move(factory), settings,
                                        std::move(done), direction, fd, kind);
  return caf::actor_cast<transport_actor>(std::move(hdl));
}

} // namespace shardwire::detail
