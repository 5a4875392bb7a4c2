#include "transports/detail/watch_fd.hpp"

#include "actors/errors.hpp"
#include "transports/detail/socket_util.hpp"

#include <system_error>

namespace shardwire::detail {

caf::error watch_fd(fd_watch& watch, shard& home, int fd, fd_watcher& watcher,
                    uint8_t interest) {
  if (int err = make_nonblocking(fd); err != 0)
    return make_errno_error(err, "fcntl");
  int err = 0;
  try {
    err = watch.open(home.poller(), fd, watcher, interest);
  } catch (const std::system_error& e) { // no epoll instance (EMFILE)
    err = e.code().value();
  }
  if (err != 0) return make_errno_error(err, "epoll_ctl");
  return {};
}

void unwatch_and_close(fd_watch& watch, int& fd) noexcept {
  watch.close();
  if (fd >= 0) close_fd(fd);
  fd = -1;
}

} // namespace shardwire::detail
