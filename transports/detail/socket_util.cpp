#include "transports/detail/socket_util.hpp"

#include "actors/errors.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#include <unistd.h>

namespace shardwire::detail {

endpoint to_endpoint(const sockaddr* sa, socklen_t len) {
  endpoint ep;
  char buf[INET6_ADDRSTRLEN] = {};
  switch (sa->sa_family) {
  case AF_INET: {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf));
    ep.family = endpoint::kind::ipv4;
    ep.host = buf;
    ep.port = ntohs(in->sin_port);
    break;
  }
  case AF_INET6: {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
    ep.family = endpoint::kind::ipv6;
    ep.host = buf;
    ep.port = ntohs(in6->sin6_port);
    break;
  }
  case AF_UNIX: {
    auto* un = reinterpret_cast<const sockaddr_un*>(sa);
    ep.family = endpoint::kind::unix_path;
    auto path_len = len > offsetof(sockaddr_un, sun_path)
                        ? len - offsetof(sockaddr_un, sun_path)
                        : 0;
    if (path_len > 0 && un->sun_path[0] == '\0')
      ep.path = "@" + std::string(un->sun_path + 1, path_len - 1);
    else if (path_len > 0)
      ep.path = std::string(un->sun_path, ::strnlen(un->sun_path, path_len));
    break;
  }
  default:
    break;
  }
  return ep;
}

endpoint local_endpoint(int fd) {
  sockaddr_storage ss = {};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return to_endpoint(reinterpret_cast<sockaddr*>(&ss), len);
}

endpoint remote_endpoint(int fd) {
  sockaddr_storage ss = {};
  socklen_t len = sizeof(ss);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return to_endpoint(reinterpret_cast<sockaddr*>(&ss), len);
}

int socket_family(int fd) {
  sockaddr_storage ss = {};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  return ss.ss_family;
}

bool is_stream_socket(int fd) {
  int type = 0;
  socklen_t len = sizeof(type);
  return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
         type == SOCK_STREAM;
}

int make_nonblocking(int fd) {
  // Set only what is missing: accepted sockets come non-blocking and
  // close-on-exec already (accept4), and each system call counts on the
  // accept path.
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0) return errno;
  if ((fl & O_NONBLOCK) == 0 && ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return errno;
  int fdfl = ::fcntl(fd, F_GETFD);
  if (fdfl >= 0 && (fdfl & FD_CLOEXEC) == 0)
    ::fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC);
  return 0;
}

void set_tcp_nodelay(int fd) {
  auto fam = socket_family(fd);
  if (fam != AF_INET && fam != AF_INET6) return;
  set_tcp_nodelay_inet(fd);
}

void set_tcp_nodelay_inet(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

caf::error check_tcp_options(const stream_settings& st) {
  auto bad = [](const char* field, long long v, const char* range) {
    return make_error(sw_errc::invalid_argument, std::string{field} + ": " +
                                                     std::to_string(v) +
                                                     " is outside " + range);
  };
  if (st.keepalive_idle.count() < 0 || st.keepalive_idle.count() > 32767)
    return bad("keepalive.idle", st.keepalive_idle.count(), "0-32767 s");
  if (st.keepalive_interval.count() < 0 ||
      st.keepalive_interval.count() > 32767)
    return bad("keepalive.interval", st.keepalive_interval.count(),
               "0-32767 s");
  if (st.keepalive_count < 0 || st.keepalive_count > 127)
    return bad("keepalive.count", st.keepalive_count, "0-127");
  if (st.user_timeout.count() < 0 || st.user_timeout.count() > INT32_MAX)
    return bad("user_timeout", st.user_timeout.count(), "0-2147483647 ms");
  return {};
}

void apply_tcp_options(int fd, const stream_settings& st) {
  if (st.keepalive_idle.count() == 0 && st.user_timeout.count() == 0) return;
  auto fam = socket_family(fd);
  if (fam != AF_INET && fam != AF_INET6) return;
  auto set = [fd](int level, int name, int value) {
    ::setsockopt(fd, level, name, &value, sizeof(value));
  };
  if (st.keepalive_idle.count() > 0) {
    set(SOL_SOCKET, SO_KEEPALIVE, 1);
    set(IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(st.keepalive_idle.count()));
    if (st.keepalive_interval.count() > 0)
      set(IPPROTO_TCP, TCP_KEEPINTVL,
          static_cast<int>(st.keepalive_interval.count()));
    if (st.keepalive_count > 0)
      set(IPPROTO_TCP, TCP_KEEPCNT, st.keepalive_count);
  }
  if (st.user_timeout.count() > 0)
    set(IPPROTO_TCP, TCP_USER_TIMEOUT,
        static_cast<int>(st.user_timeout.count()));
}

void close_fd(int fd) noexcept {
  if (fd >= 0) ::close(fd);
}

caf::expected<std::pair<sockaddr_storage, socklen_t>>
unix_address(const std::string& path) {
  sockaddr_storage ss = {};
  auto* un = reinterpret_cast<sockaddr_un*>(&ss);
  un->sun_family = AF_UNIX;
  bool abstract = !path.empty() && (path[0] == '@' || path[0] == '\0');
  if (path.empty() || path.size() >= sizeof(un->sun_path))
    return make_error(sw_errc::invalid_argument,
                      "unix socket path empty or too long: " + path);
  socklen_t len;
  if (abstract) {
    un->sun_path[0] = '\0';
    std::memcpy(un->sun_path + 1, path.data() + 1, path.size() - 1);
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  } else {
    std::memcpy(un->sun_path, path.data(), path.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                 1);
  }
  return std::make_pair(ss, len);
}

caf::expected<int> listen_on(const sockaddr* sa, socklen_t len,
                             const listen_options& opts,
                             const std::string& what) {
  int fd =
      ::socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_errno_error(errno, "socket for " + what);
  int one = 1;
  if (sa->sa_family != AF_UNIX) {
    if (opts.reuse_address)
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (opts.reuse_port)
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (sa->sa_family == AF_INET6)
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (::bind(fd, sa, len) != 0) {
    auto err = errno;
    close_fd(fd);
    return make_errno_error(err, "bind " + what);
  }
  if (::listen(fd, opts.backlog) != 0) {
    auto err = errno;
    close_fd(fd);
    return make_errno_error(err, "listen " + what);
  }
  return fd;
}

caf::expected<std::vector<std::pair<sockaddr_storage, socklen_t>>>
resolve_passive(const std::string& host, uint16_t port) {
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_ADDRCONFIG;
  addrinfo* res = nullptr;
  auto port_str = std::to_string(port);
  auto rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(),
                          port_str.c_str(), &hints, &res);
  if (rc != 0)
    return make_error(sw_errc::unknown_host, host + ": " + ::gai_strerror(rc));
  std::vector<std::pair<sockaddr_storage, socklen_t>> out;
  for (auto* p = res; p != nullptr; p = p->ai_next) {
    sockaddr_storage ss = {};
    std::memcpy(&ss, p->ai_addr, p->ai_addrlen);
    bool dup = false;
    for (auto& [prev, prev_len] : out)
      dup = dup || (prev_len == p->ai_addrlen &&
                    std::memcmp(&prev, &ss, prev_len) == 0);
    if (!dup) out.emplace_back(ss, static_cast<socklen_t>(p->ai_addrlen));
  }
  ::freeaddrinfo(res);
  return out;
}

} // namespace shardwire::detail
