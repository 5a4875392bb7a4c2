#include "transports/pipe.hpp"

#include "actors/errors.hpp"
#include "runtime/runtime.hpp"
#include "transports/detail/socket_util.hpp"
#include "transports/detail/stream_transport.hpp"

#include <sys/stat.h>

namespace shardwire {

namespace {

// asyncio accepts pipes, FIFOs, sockets and character devices; a regular
// file is always "ready" and cannot be waited on with epoll.
caf::error check_pipe_fd(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return make_errno_error(errno, "fstat");
  if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode))
    return {};
  return make_error(sw_errc::invalid_argument,
                    "fd " + std::to_string(fd) +
                        " is not a pipe, socket or character device");
}

using detail::stream_direction;

void connect_pipe(runtime& rt, int fd, stream_direction direction,
                  protocol_factory factory, connect_callback done,
                  caf::optional<size_t> which) {
  if (auto err = check_pipe_fd(fd)) {
    detail::close_fd(fd);
    if (done) done(std::move(err));
    return;
  }
  auto& s = which ? rt.shard_at(*which % rt.shard_count()) : rt.pick_shard();
  detail::spawn_pipe_transport(s, fd, direction, std::move(factory),
                               stream_settings::from(rt), std::move(done));
}

} // namespace

void async_connect_read_pipe(runtime& rt, int fd, protocol_factory factory,
                             connect_callback done,
                             caf::optional<size_t> which) {
  connect_pipe(rt, fd, stream_direction::read_only, std::move(factory),
               std::move(done), which);
}

void async_connect_write_pipe(runtime& rt, int fd, protocol_factory factory,
                              connect_callback done,
                              caf::optional<size_t> which) {
  connect_pipe(rt, fd, stream_direction::write_only, std::move(factory),
               std::move(done), which);
}

caf::expected<connection> connect_read_pipe(runtime& rt, int fd,
                                            protocol_factory factory,
                                            caf::optional<size_t> which) {
  return await_connection([&](connect_callback cb) {
    async_connect_read_pipe(rt, fd, factory, std::move(cb), which);
  });
}

caf::expected<connection> connect_write_pipe(runtime& rt, int fd,
                                             protocol_factory factory,
                                             caf::optional<size_t> which) {
  return await_connection([&](connect_callback cb) {
    async_connect_write_pipe(rt, fd, factory, std::move(cb), which);
  });
}

} // namespace shardwire
