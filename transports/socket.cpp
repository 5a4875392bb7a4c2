#include "transports/socket.hpp"

#include "actors/errors.hpp"
#include "runtime/runtime.hpp"
#include "transports/detail/socket_util.hpp"
#include "transports/detail/stream_transport.hpp"

#include <sys/socket.h>

namespace shardwire {

void async_connect_accepted_socket(runtime& rt, int fd,
                                   protocol_factory factory,
                                   connect_callback done,
                                   caf::optional<size_t> which,
                                   tls_params tls) {
  if (!detail::is_stream_socket(fd)) {
    detail::close_fd(fd);
    if (done)
      done(make_error(sw_errc::invalid_argument,
                      "fd " + std::to_string(fd) +
                          " is not a connected stream socket"));
    return;
  }
  auto& s = which ? rt.shard_at(*which % rt.shard_count()) : rt.pick_shard();
  auto fam = detail::socket_family(fd);
  std::string kind = fam == AF_UNIX                        ? "unix"
                     : (fam == AF_INET || fam == AF_INET6) ? "tcp"
                                                           : "socket";
  auto settings = stream_settings::from(rt);
  settings.tls = std::move(tls);
  detail::spawn_stream_transport(s, fd, std::move(kind), std::move(factory),
                                 std::move(settings), std::move(done));
}

caf::expected<connection> connect_accepted_socket(runtime& rt, int fd,
                                                  protocol_factory factory,
                                                  caf::optional<size_t> which,
                                                  tls_params tls) {
  return await_connection([&](connect_callback cb) {
    async_connect_accepted_socket(rt, fd, factory, std::move(cb), which, tls);
  });
}

} // namespace shardwire
