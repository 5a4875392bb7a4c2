// The echo servers the benchmark compares, each run in its own process.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bench {

/// Plain Asio: async_read_some + async_write with a 16 KiB buffer per
/// connection. With `threads` <= 1 one io_context on this thread (the
/// in-run baseline); otherwise one io_context per thread, connections
/// accepted on the first and dealt out round-robin, each staying on its
/// thread (the baseline for shard counts).
/// Listens on 127.0.0.1:0, writes the port to `ready_fd`, serves until
/// SIGTERM.
int run_asio_server(int ready_fd, size_t threads);

/// shardwire: `shards` shards, a transport actor and a protocol actor per
/// connection, the protocol spawned on the connection's shard.
/// The protocol of shardwire's echo server: a typed actor, the callback
/// adapter, or a buffered protocol (callback style, lending pooled chunks).
enum class shardwire_style { typed, callback, buffered };

/// `collect_metrics` false runs it with --shardwire.metrics-collect=false
/// (the cost of metrics: --metrics-overhead).
int run_shardwire_server(int ready_fd, size_t shards, shardwire_style style,
                         bool collect_metrics = true);

} // namespace bench
