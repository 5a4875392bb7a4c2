// The TLS part's figures beyond the echo table (which is tcp_report's, with
// asio-ssl as the baseline): full handshakes per second and server CPU per
// handshake, and the targets of issue 18 against asio-ssl.
#pragma once

#include "bench/tcp_report.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace bench {

/// The name of the TLS baseline's rows.
inline constexpr const char* tls_base = "asio-ssl";

/// Handshake rows are `row`s: req_per_s is handshakes/s, cpu_us_per_req
/// the server's CPU per handshake, failed the failed connections, corrupt
/// the resumed sessions (there must be none), size 0. With rounds, the
/// ratios are the medians of the per-round paired ratios against the
/// asio-ssl windows around each measurement. Besides the measured rate it
/// prints the server's per core (1 / CPU per handshake): where the clients
/// are the bottleneck (a client's half of a handshake costs about what the
/// server's does, and a 2-core machine has one core for them), the
/// measured rate is theirs, and the per-core rate is the server's.
void print_handshakes(const std::vector<row>& rows, size_t connectors);

/// One line per shardwire row and target: CPU per request <= 1.10 x
/// asio-ssl's at each size, handshakes/s per server core >= 0.9 x, and the
/// idle memory per connection of both; "met" or "MISSED".
void print_tls_targets(const std::vector<row>& echo,
                       const std::vector<row>& handshakes);

} // namespace bench
