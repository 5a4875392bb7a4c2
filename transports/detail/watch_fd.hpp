// Puts a descriptor on its shard's poller: the one way every transport,
// listener and child watcher of transports/ waits for readiness.
// Private to transports/.
#pragma once

#include "runtime/fd_poller.hpp"
#include "runtime/shard.hpp"

#include <caf/error.hpp>

namespace shardwire::detail {

/// Makes `fd` non-blocking (and close-on-exec) and starts watching it on
/// `home`'s poller for `interest`, calling `watcher`. Returns the error of
/// the call that failed ("fcntl", "epoll_ctl"; EMFILE when the shard has no
/// epoll instance), or none. The descriptor stays the caller's either way.
caf::error watch_fd(fd_watch& watch, shard& home, int fd, fd_watcher& watcher,
                    uint8_t interest = fd_none);

/// Stops watching `fd` and closes it, in that order (a closed number may be
/// reused at once); sets `fd` to -1. Idempotent.
void unwatch_and_close(fd_watch& watch, int& fd) noexcept;

} // namespace shardwire::detail
