// TCP client and server (asyncio's create_connection / create_server).
#pragma once

#include "transports/stream.hpp"

#include <caf/optional.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace shardwire {

class runtime;

/// TCP keep-alive (SO_KEEPALIVE): after `idle` without traffic the kernel
/// probes the peer every `interval`; after `count` unanswered probes the
/// connection ends with `lost{errno ETIMEDOUT}`. Notices a peer that
/// vanished without a FIN or RST (a powered-off host, a dropped NAT entry)
/// on an idle connection. `idle` 0 (the default) leaves keep-alive off;
/// `interval` or `count` 0 keep the kernel's value. Ranges: idle and
/// interval 1-32767 s, count 1-127; others are refused with
/// invalid_argument naming the field.
struct tcp_keepalive {
  std::chrono::seconds idle{0};
  std::chrono::seconds interval{0};
  int count = 0;
};

struct connect_options {
  /// Host name or numeric address; resolved off the shard thread.
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  /// 0: any family; AF_INET or AF_INET6 to restrict.
  int family = 0;
  /// Bound on resolution plus connect; 0 means no bound.
  std::chrono::milliseconds timeout{0};
  /// Shard for the connection; default: the least loaded.
  caf::optional<size_t> shard;
  /// Reads follow writes: while a connection's write buffer is above its
  /// high-water mark (its protocol got `pause`), its transport reads
  /// nothing, and it reads again with `resume`. What an echo, a proxy or a
  /// request/response protocol wants: a peer that sends without reading
  /// then fills its own socket buffers instead of this process's memory.
  bool reads_follow_writes = false;
  /// Keep-alive probes on an idle connection (see tcp_keepalive).
  tcp_keepalive keepalive;
  /// TCP_USER_TIMEOUT: written data unacknowledged for this long, or a
  /// peer whose receive window stays closed this long, ends the connection
  /// with `lost{errno ETIMEDOUT}` (a black-holed or hung peer is noticed
  /// while writing). 0 (the default): the kernel's retransmission limits,
  /// minutes. At most 2^31-1 ms.
  std::chrono::milliseconds user_timeout{0};
  /// TLS (transports/tls.hpp): a client context makes this a TLS
  /// connection, verified against `tls.server_hostname` or else `host`.
  /// `done` then gets the connection after the handshake, or its error
  /// (tls_errc). No context: plain TCP.
  tls_params tls{};
};

/// Resolves and connects, then creates transport and protocol on one shard.
/// `done` gets the connection after the protocol handled `connected`, or an
/// error: `errno` ECONNREFUSED / ENETUNREACH / EHOSTUNREACH ...,
/// `sw_errc::unknown_host`, `sw_errc::timeout`, `sw_errc::invalid_argument`
/// for keep-alive or user-timeout values out of range. Never blocks the
/// caller.
void async_create_connection(runtime& rt, connect_options opts,
                             protocol_factory factory, connect_callback done);

/// Blocking form of `async_create_connection` for code outside the actor
/// world (a main function, a test). Never call it on a shard thread.
caf::expected<connection> create_connection(runtime& rt, connect_options opts,
                                            protocol_factory factory);

struct server_options {
  /// Addresses to bind; empty or {""} binds all interfaces (IPv4 and IPv6).
  /// Names are resolved with getaddrinfo (this may block: create servers at
  /// startup, not from a shard thread).
  std::vector<std::string> hosts{"127.0.0.1"};
  /// 0 picks a free port; the bound ports are in `server::sockets`.
  uint16_t port = 0;
  int backlog = 100;
  bool reuse_address = true;
  /// Lets several servers (or processes) bind the same port.
  bool reuse_port = false;
  /// false: bound but not accepting until `start_serving`.
  bool start_serving = true;
  /// Shard the listener actor runs on.
  size_t listener_shard = 0;
  /// Reads follow writes: while an accepted connection's write buffer is above its
  /// high-water mark (its protocol got `pause`), its transport reads
  /// nothing, and it reads again with `resume`. What an echo, a proxy or a
  /// request/response protocol wants: a peer that sends without reading
  /// then fills its own socket buffers instead of this process's memory.
  bool reads_follow_writes = false;
  /// For every accepted connection: see connect_options.
  tcp_keepalive keepalive;
  std::chrono::milliseconds user_timeout{0};
  /// TLS (transports/tls.hpp): a server context makes every accepted
  /// connection TLS; its protocol is made after the handshake. A failed
  /// handshake drops the connection and is logged (asyncio does the same).
  tls_params tls{};
};

/// A running server: its actor (see `server_actor` in actors/messages.hpp)
/// and the addresses it listens on.
struct server {
  server_actor actor;
  std::vector<endpoint> sockets;
};

/// Binds every address and starts a listener that spreads accepted
/// connections over the shards (fewest live connections first). Each
/// connection gets a protocol from `factory` on its own shard.
/// Errors: `errno` EADDRINUSE / EACCES ... (context names the address),
/// `sw_errc::unknown_host`.
caf::expected<server> create_server(runtime& rt, protocol_factory factory,
                                    server_options opts);

} // namespace shardwire
