// Asynchronous client connects (TCP with name resolution, Unix paths).
//
// Everything runs on the chosen shard's io_context: Asio's resolver does the
// blocking getaddrinfo on its own background thread, connects are
// non-blocking, and a timer bounds the whole attempt. On success the socket's
// fd becomes a stream transport on that shard.
#pragma once

#include "transports/stream.hpp"

#include <chrono>
#include <string>

namespace shardwire::detail {

struct tcp_target {
  std::string host;
  uint16_t port = 0;
  int family = 0; // 0, AF_INET or AF_INET6
  std::chrono::milliseconds timeout{0};
};

void start_tcp_connect(shard& s, tcp_target target, protocol_factory factory,
                       stream_settings settings, connect_callback done);

void start_unix_connect(shard& s, std::string path,
                        std::chrono::milliseconds timeout,
                        protocol_factory factory, stream_settings settings,
                        connect_callback done);

} // namespace shardwire::detail
