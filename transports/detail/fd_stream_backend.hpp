// The stream core's backend for a non-blocking descriptor on the shard's
// fd_poller: TCP and Unix sockets, adopted fds, read and write pipes.
// Private to transports/. The contract is transports/core/stream_backend.hpp.
//
// Reactor style: the poller reports readiness (edge-triggered, remembered
// until the backend finds the descriptor drained: a short read, EAGAIN or a
// partial write), then one non-blocking system call.
#pragma once

#include "runtime/fd_poller.hpp"
#include "transports/core/stream_backend.hpp"

#include <string>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace shardwire::detail {

class fd_stream_backend final : private fd_watcher {
public:
  /// Buffers handed to one writev/sendmsg call.
  static constexpr size_t max_parts = 64;

  /// Owns `fd` from now on (closed in stop(), also after a failed start).
  /// `kind` names the transport ("tcp", "unix", "read_pipe", ...).
  fd_stream_backend(int fd, const std::string& kind);
  ~fd_stream_backend() { stop(); }

  fd_stream_backend(const fd_stream_backend&) = delete;
  fd_stream_backend& operator=(const fd_stream_backend&) = delete;

  caf::error start(transport_core::io_owner& owner, shard& home,
                   transport_core::stream_direction direction);
  void stop() noexcept;
  bool is_open() const noexcept { return watch_.is_open(); }

  [[gnu::always_inline]] transport_core::io_result
  read(std::span<std::byte> into) {
    ssize_t n;
    do {
      // recv on sockets: a shorter kernel path than read's (no VFS layer).
      n = is_socket_ ? ::recv(fd_, into.data(), into.size(), 0)
                     : ::read(fd_, into.data(), into.size());
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
      auto got = static_cast<size_t>(n);
      // A short read emptied the descriptor: the next data brings a new
      // edge. A full one may have left more: the poller calls again.
      if (got < into.size()) watch_.clear_ready(fd_read);
      return {got, 0, false};
    }
    if (n == 0) return {0, 0, true};
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      watch_.clear_ready(fd_read); // nothing after all: wait for an edge
      return {0, transport_core::io_result::would_block, false};
    }
    // A pseudo-terminal's master reads EIO once no process holds the slave
    // side: its end of file (nothing else reads EIO from a pipe).
    if (errno == EIO && !is_socket_) return {0, 0, true};
    return {0, errno, false};
  }

  [[gnu::always_inline]] transport_core::io_result
  write(const buffer* parts, size_t n) {
    iovec iov[max_parts];
    size_t cnt = 0;
    size_t offered = 0;
    for (size_t i = 0; i < n && cnt < max_parts; ++i)
      if (!parts[i].empty()) {
        iov[cnt++] =
            iovec{const_cast<std::byte*>(parts[i].data()), parts[i].size()};
        offered += parts[i].size();
      }
    auto sent = write_gathered(iov, cnt);
    if (sent < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        watch_.clear_ready(fd_write); // full: wait for the next edge
        return {0, transport_core::io_result::would_block, false};
      }
      return {0, errno, false};
    }
    auto taken = static_cast<size_t>(sent);
    if (taken < offered) watch_.clear_ready(fd_write);
    return {taken, 0, false};
  }

  /// Optional part of the backend contract (layers, stream_layer.hpp): one
  /// write of raw bytes, as `write`, with no buffer to wrap them in.
  [[gnu::always_inline]] transport_core::io_result
  write_bytes(const std::byte* bytes, size_t n) {
    iovec iov{const_cast<std::byte*>(bytes), n};
    auto sent = write_gathered(&iov, 1);
    if (sent < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        watch_.clear_ready(fd_write);
        return {0, transport_core::io_result::would_block, false};
      }
      return {0, errno, false};
    }
    auto taken = static_cast<size_t>(sent);
    if (taken < n) watch_.clear_ready(fd_write);
    return {taken, 0, false};
  }

  /// Optional part of the backend contract (send_file): one sendfile(2) of
  /// up to `n` bytes of the regular file `in_fd` from `offset` (advanced by
  /// what was sent). io_result::bytes 0 with no error: the file ended.
  /// EINVAL / ENOSYS: this descriptor cannot take sendfile (the core then
  /// reads the file itself). A peer that went away gives EPIPE, never
  /// SIGPIPE.
  transport_core::io_result send_file(int in_fd, uint64_t& offset, size_t n);

  void shutdown_write() noexcept;
  int want(uint8_t interest) { return watch_.set_interest(interest); }
  void describe(transport_info& info) const;
  const std::string& kind() const noexcept { return *kind_; }
  int fd() const noexcept { return fd_; }

private:
  void on_fd_ready(uint32_t events) override {
    owner_->on_io_ready((events & (EPOLLIN | EPOLLRDHUP | EPOLLPRI)) != 0,
                        (events & EPOLLOUT) != 0,
                        (events & (EPOLLERR | EPOLLHUP)) != 0);
  }

  /// One syscall for up to max_parts buffers (retrying EINTR); returns what
  /// send/sendmsg/writev returned.
  // Always inlined: with two callers (write, write_bytes) GCC would make it
  // a call, 30 instructions more per echo.
  [[gnu::always_inline]] ssize_t write_gathered(iovec* iov, size_t cnt) {
    // Sockets use send/sendmsg so that a peer that went away gives EPIPE
    // without SIGPIPE even if the process did not ignore it; pipes and
    // other fds take writev.
    ssize_t sent;
    do {
      if (is_socket_ && cnt == 1) {
        // The common case (one buffer) skips sendmsg's iovec import.
        sent = ::send(fd_, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
      } else if (is_socket_) {
        msghdr mh = {};
        mh.msg_iov = iov;
        mh.msg_iovlen = cnt;
        sent = ::sendmsg(fd_, &mh, MSG_NOSIGNAL);
      } else {
        sent = ::writev(fd_, iov, static_cast<int>(cnt));
      }
    } while (sent < 0 && errno == EINTR);
    return sent;
  }

  // Registration with the shard's poller; closed in stop(), after which
  // on_fd_ready is never called again.
  fd_watch watch_;
  transport_core::io_owner* owner_ = nullptr;
  // Interned (one shared copy per kind name): a string per connection
  // would cost 32 bytes for "tcp".
  const std::string* kind_;
  int fd_;
  bool is_socket_ = true;
};

} // namespace shardwire::detail
