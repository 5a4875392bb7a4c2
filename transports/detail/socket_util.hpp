// Small POSIX socket helpers shared by the stream transports, listeners and
// connectors. Private to transports/.
#pragma once

#include "actors/endpoint.hpp"
#include "transports/stream.hpp"

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <string>
#include <sys/socket.h>
#include <vector>

namespace shardwire::detail {

/// Converts a socket address to an endpoint.
endpoint to_endpoint(const sockaddr* sa, socklen_t len);

/// getsockname / getpeername of `fd` as endpoints (none on failure).
endpoint local_endpoint(int fd);
endpoint remote_endpoint(int fd);

/// Socket family of `fd` (AF_INET, AF_INET6, AF_UNIX), or -1.
int socket_family(int fd);

/// True if `fd` is a stream socket.
bool is_stream_socket(int fd);

/// Sets O_NONBLOCK and FD_CLOEXEC; returns 0 or errno.
int make_nonblocking(int fd);

/// Enables TCP_NODELAY on TCP sockets (asyncio always does).
void set_tcp_nodelay(int fd);

/// The same for a descriptor known to be a TCP socket (no family check).
void set_tcp_nodelay_inet(int fd);

/// Checks keep-alive and user-timeout values (invalid_argument naming the
/// field, e.g. "keepalive.idle"); empty if they are fine.
caf::error check_tcp_options(const stream_settings& st);

/// Applies keep-alive and TCP_USER_TIMEOUT from `st` to `fd` when it is a
/// TCP socket and they are set (values checked by check_tcp_options).
void apply_tcp_options(int fd, const stream_settings& st);

/// Closes `fd`, ignoring EINTR.
void close_fd(int fd) noexcept;

/// A Unix socket address for `path` ("@name" or a leading NUL = abstract).
caf::expected<std::pair<sockaddr_storage, socklen_t>>
unix_address(const std::string& path);

/// Options for a listening socket.
struct listen_options {
  int backlog = 100;
  bool reuse_address = true;
  bool reuse_port = false;
};

/// Creates, binds and listens on one address; returns the fd.
caf::expected<int> listen_on(const sockaddr* sa, socklen_t len,
                             const listen_options& opts,
                             const std::string& what);

/// Resolves `host` (empty = all interfaces) for a passive TCP socket.
caf::expected<std::vector<std::pair<sockaddr_storage, socklen_t>>>
resolve_passive(const std::string& host, uint16_t port);

} // namespace shardwire::detail
