// UDP echo round trips through shardwire and through plain Asio, measured in
// the same process one after the other. Shared by udp_batch_bench --echo and
// echo_bench --suite=udp.
#pragma once

#include <cstddef>
#include <vector>

namespace shardwire {
class runtime;
} // namespace shardwire

namespace bench {

struct udp_echo_result {
  size_t size = 0;
  /// Round trips per second against the plain Asio UDP echo server (the
  /// baseline) and against a shardwire datagram endpoint echoing with
  /// `sendto`.
  double asio_per_s = 0;
  double shardwire_per_s = 0;
};

/// Measures both servers for `seconds` each with `window` datagrams of
/// `size` bytes in flight from one client socket. The shardwire endpoint runs
/// on `rt` (called from a thread that is not one of its shards); the Asio
/// server runs on a thread of its own. Blocks for about 2 x `seconds`.
udp_echo_result measure_udp_echo(shardwire::runtime& rt, size_t size,
                                 double seconds, int window = 16);

/// Prints one table: a row per size and server, ratio to Asio of that size.
void print_udp_echo(const std::vector<udp_echo_result>& rows, double seconds,
                    int window = 16);

} // namespace bench
