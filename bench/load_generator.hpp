// The benchmark's load generator: many connections, fixed message size,
// optional pipelining, every echoed byte verified. Single-threaded epoll so
// it needs one core and measures the server, not itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace bench {

struct load_options {
  uint16_t port = 0;
  size_t connections = 50;
  size_t size = 1024;
  /// Messages in flight per connection.
  size_t pipeline = 1;
  /// Run for this long (seconds) ...
  double duration = 3.0;
  /// ... or, if non-zero, until this many echoes completed in total.
  uint64_t requests = 0;
};

struct load_result {
  uint64_t requests = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  /// Round-trip latency of each completed echo, microseconds.
  std::vector<double> latencies_us;
  /// Bytes that came back different from what was sent.
  uint64_t corrupt = 0;
  /// Connections that failed (connect error, reset, early EOF).
  uint64_t failed = 0;

  double percentile(double p) const;
};

/// Connects, runs `opts` once, closes.
load_result run_load(const load_options& opts);

/// Connections to one server that stay open across runs, so that a server
/// can be measured in several short windows, interleaved with other
/// servers, without connection set-up inside any window. Every run ends
/// with the messages it started echoed (none in flight between runs), and
/// the byte pattern carries on, so every byte of every run is verified.
class load_session {
public:
  /// Opens `opts.connections` connections to `opts.port`; the ones that
  /// fail are reported in the first run's `failed`.
  explicit load_session(const load_options& opts);
  ~load_session();

  load_session(const load_session&) = delete;
  load_session& operator=(const load_session&) = delete;

  /// Runs `duration` seconds of load, or `requests` echoes if non-zero.
  load_result run(double duration, uint64_t requests = 0);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Opens `n` connections, sends one byte on each and waits for its echo, so
/// the server has fully set each one up; returns the fds (caller closes).
std::vector<int> open_idle(uint16_t port, size_t n);

} // namespace bench
