// The echo servers the benchmark compares, each run in its own process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace bench {

/// A server's certificate and key (PEM files); both empty: plain TCP.
struct server_tls {
  std::string cert_file;
  std::string key_file;

  explicit operator bool() const noexcept { return !cert_file.empty(); }
};

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
/// (the cost of metrics: --metrics-overhead). With `tls`, every accepted
/// connection is TLS (server_options::tls = use_tls(a context made from
/// it with make_tls_context's defaults)).
int run_shardwire_server(int ready_fd, size_t shards, shardwire_style style,
                         bool collect_metrics = true,
                         const server_tls& tls = {});

/// The TLS baseline: run_asio_server's one-thread echo over
/// asio::ssl::stream<tcp::socket> with `tls`'s certificate (same settings
/// as shardwire's server context: bench/asio_tls_server.cpp).
int run_asio_tls_server(int ready_fd, const server_tls& tls);

} // namespace bench
