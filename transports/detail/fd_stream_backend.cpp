#include "transports/detail/fd_stream_backend.hpp"

#include "actors/errors.hpp"
#include "transports/detail/socket_util.hpp"
#include "transports/detail/watch_fd.hpp"

#include <cerrno>
#include <csignal>
#include <mutex>
#include <set>
#include <sys/sendfile.h>

namespace shardwire::detail {

namespace {

// The one copy of each transport kind name ("tcp", "unix", "pipe", ...);
// never freed, so the references stay valid.
const std::string& intern_kind(const std::string& kind) {
  static std::mutex mtx;
  static std::set<std::string> names;
  std::lock_guard<std::mutex> guard{mtx};
  return *names.insert(kind).first;
}

} // namespace

fd_stream_backend::fd_stream_backend(int fd, const std::string& kind)
    : kind_(&intern_kind(kind)), fd_(fd) {
}

caf::error fd_stream_backend::start(transport_core::io_owner& owner,
                                    shard& home,
                                    transport_core::stream_direction) {
  owner_ = &owner;
  // "tcp" and "unix" are stream sockets by construction (connect, accept,
  // or an adopted fd checked by its caller): no system call to ask.
  const bool tcp = *kind_ == "tcp";
  is_socket_ = tcp || *kind_ == "unix" || is_stream_socket(fd_);
  if (auto err = watch_fd(watch_, home, fd_, *this)) {
    stop();
    return err;
  }
  if (tcp)
    set_tcp_nodelay_inet(fd_);
  else if (is_socket_)
    set_tcp_nodelay(fd_);
  return {};
}

void fd_stream_backend::stop() noexcept {
  unwatch_and_close(watch_, fd_);
}

transport_core::io_result fd_stream_backend::send_file(int in_fd,
                                                       uint64_t& offset,
                                                       size_t n) {
  // sendfile(2) has no MSG_NOSIGNAL: a peer that went away would raise
  // SIGPIPE, which kills a process that did not ignore it. Block it on this
  // thread for the call and take back the one the call raised (SIGPIPE is
  // sent to the writing thread), unless one was pending before.
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  sigset_t old_mask;
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old_mask);
  sigset_t pending;
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  auto off = static_cast<off_t>(offset);
  ssize_t sent;
  do {
    sent = ::sendfile(fd_, in_fd, &off, n);
  } while (sent < 0 && errno == EINTR);
  const int err = sent < 0 ? errno : 0;
  if (err == EPIPE && !was_pending) {
    timespec no_wait{};
    while (sigtimedwait(&pipe_only, nullptr, &no_wait) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  if (sent < 0) {
    if (err == EAGAIN || err == EWOULDBLOCK) {
      watch_.clear_ready(fd_write);
      return {0, transport_core::io_result::would_block, false};
    }
    return {0, err, false};
  }
  offset = static_cast<uint64_t>(off);
  // A short count may mean a full socket or the end of the file: the core
  // calls again, and EAGAIN (above) is what waits for readiness.
  return {static_cast<size_t>(sent), 0, false};
}

void fd_stream_backend::shutdown_write() noexcept {
  if (is_socket_ && fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void fd_stream_backend::describe(transport_info& info) const {
  // Addresses are read from the fd when asked (the protocol got a full copy
  // in `connected`): keeping them would cost ~200 bytes per connection.
  info.kind = *kind_;
  if (is_socket_ && fd_ >= 0) {
    info.peername = remote_endpoint(fd_);
    info.sockname = local_endpoint(fd_);
  }
  info.fd = fd_;
}

} // namespace shardwire::detail
