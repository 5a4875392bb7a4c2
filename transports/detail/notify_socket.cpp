#include "transports/detail/notify_socket.hpp"

#include "actors/errors.hpp"
#include "runtime/shard.hpp"
#include "transports/detail/socket_util.hpp"
#include "transports/detail/watch_fd.hpp"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace shardwire::detail {

std::vector<notify_field> parse_notify(std::string_view datagram) {
  std::vector<notify_field> out;
  size_t pos = 0;
  while (pos < datagram.size()) {
    auto nl = datagram.find('\n', pos);
    auto line = datagram.substr(
        pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? datagram.size() : nl + 1;
    auto eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    out.push_back(
        {std::string{line.substr(0, eq)}, std::string{line.substr(eq + 1)}});
  }
  return out;
}

caf::error notify_socket::open(shard& home, handler h) {
  close();
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return make_errno_error(errno, "notify socket");
  // Unique per process and socket; the pid keeps two programs apart.
  static std::atomic<uint64_t> next{0};
  std::string name = "shardwire-notify/" + std::to_string(::getpid()) + "/" +
                     std::to_string(next.fetch_add(1));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // Abstract namespace: a leading NUL, no terminating one.
  addr.sun_path[0] = '\0';
  name.copy(addr.sun_path + 1, sizeof addr.sun_path - 1);
  auto len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  int on = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    int err = errno;
    close_fd(fd);
    return make_errno_error(err, "notify socket");
  }
  fd_ = fd;
  if (auto err = watch_fd(watch_, home, fd_, *this, fd_read)) {
    unwatch_and_close(watch_, fd_);
    return err;
  }
  address_ = "@" + name;
  handler_ = std::move(h);
  return {};
}

void notify_socket::close() noexcept {
  unwatch_and_close(watch_, fd_);
  handler_ = nullptr;
}

void notify_socket::on_fd_ready(uint32_t) {
  // A bounded number per call: a flooding child cannot starve the shard
  // (the poller calls again in its next round while data is left).
  char buf[max_datagram];
  // Room for the sender's credentials and for descriptors someone passed
  // (they are closed at once: nothing here keeps descriptors).
  alignas(cmsghdr) char
      control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(16 * sizeof(int))];
  for (int i = 0; i < 16 && fd_ >= 0; ++i) {
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    auto n = ::recvmsg(fd_, &msg, MSG_TRUNC | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) continue;
      watch_.clear_ready(fd_read); // EAGAIN (or an error: nothing to read)
      return;
    }
    pid_t sender = 0;
    for (auto* c = CMSG_FIRSTHDR(&msg); c != nullptr;
         c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred;
        std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
        sender = cred.pid;
      } else if (c->cmsg_type == SCM_RIGHTS) {
        auto count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t k = 0; k < count; ++k) {
          int passed;
          std::memcpy(&passed, CMSG_DATA(c) + k * sizeof(int), sizeof passed);
          ::close(passed);
        }
      }
    }
    if (static_cast<size_t>(n) > sizeof buf) continue; // too large: dropped
    auto fields = parse_notify(std::string_view{buf, static_cast<size_t>(n)});
    if (!fields.empty() && handler_) {
      // The handler may close this socket: keep it alive for the call.
      auto h = handler_;
      h(std::move(fields), sender);
    }
  }
}

} // namespace shardwire::detail
