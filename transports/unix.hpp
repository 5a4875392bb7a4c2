// Unix domain stream sockets (asyncio's create_unix_connection /
// create_unix_server). A path starting with '@' names the Linux abstract
// namespace.
#pragma once

#include "transports/tcp.hpp"

namespace shardwire {

struct unix_server_options {
  std::string path;
  int backlog = 100;
  bool start_serving = true;
  size_t listener_shard = 0;
  /// See `server_options::reads_follow_writes`.
  bool reads_follow_writes = false;
  /// See `server_options::tls`.
  tls_params tls{};
};

/// Connects to the socket at `path`; see `async_create_connection`. With a
/// client TLS context in `tls`, a verifying client needs
/// `tls.server_hostname` (there is no host name to default to; asyncio
/// asks for it too).
void async_create_unix_connection(runtime& rt, std::string path,
                                  protocol_factory factory,
                                  connect_callback done,
                                  std::chrono::milliseconds timeout = {},
                                  tls_params tls = {});

caf::expected<connection>
create_unix_connection(runtime& rt, std::string path, protocol_factory factory,
                       std::chrono::milliseconds timeout = {},
                       tls_params tls = {});

/// Listens on `opts.path`. A stale socket file (nobody accepting on it) is
/// removed first; a live one, or a file that is not a socket, is an
/// EADDRINUSE error. The file is removed when the server closes.
caf::expected<server> create_unix_server(runtime& rt, protocol_factory factory,
                                         unix_server_options opts);

} // namespace shardwire
