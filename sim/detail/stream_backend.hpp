// The stream core's backend for one end of a simulated connection: the
// simulator runs the production stream transport
// (transports/core/stream_core.hpp) with the socket replaced by the
// simulation engine. Private to sim.
//
// Readiness is emulated as the fd poller gives it: the engine notifies the
// backend when bytes, a FIN or a reset arrive and when the window opens;
// the backend remembers it and calls the core (through a job posted to the
// host's shard, so never inside a core call) while the core wants it, until
// a read or write finds nothing to do.
#pragma once

#include "sim/detail/core.hpp"
#include "sim/detail/readiness.hpp"
#include "transports/core/stream_core.hpp"

#include <memory>
#include <span>
#include <string>

namespace shardwire::sim::detail {

class stream_backend final : public stream_hooks {
public:
  static constexpr size_t max_parts = 64;

  stream_backend(core* net, uint64_t conn, int side);

  caf::error start(transport_core::io_owner& owner, shard& home,
                   transport_core::stream_direction direction);
  void stop() noexcept;
  bool is_open() const noexcept { return io_.is_open(); }

  transport_core::io_result read(std::span<std::byte> into);
  transport_core::io_result write(const buffer* parts, size_t n);
  void shutdown_write() noexcept;
  int want(uint8_t interest);
  void describe(transport_info& info) const;
  const std::string& kind() const noexcept;
  int fd() const noexcept { return -1; }

  // From the engine (posted to the host's shard).
  void sim_readable() override;
  void sim_writable() override;

private:
  core* net_;
  uint64_t conn_;
  int side_;
  emulated_readiness io_;
};

/// A simulated stream transport: the production core on a simulated link.
using stream_transport = transport_core::stream_core<stream_backend>;

} // namespace shardwire::sim::detail

namespace shardwire::transport_core {
extern template class stream_core<sim::detail::stream_backend>;
} // namespace shardwire::transport_core
