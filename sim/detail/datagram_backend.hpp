// The datagram core's backend for one simulated datagram endpoint: the
// simulator runs the production datagram transport
// (transports/core/datagram_core.hpp). Private to sim.
//
// Sends never block in the simulation (the link model queues them), so the
// core's write queue stays empty and `pause` is never sent. Readiness is
// emulated as in stream_backend.hpp: the engine notifies arrivals and ICMP
// errors, the backend calls the core (through a job posted to the host's
// shard) while it wants to read, one datagram per call (as a recvmmsg batch
// of one would), until the inbox is empty.
#pragma once

#include "sim/detail/core.hpp"
#include "sim/detail/readiness.hpp"
#include "transports/core/datagram_core.hpp"

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace shardwire::sim::detail {

class datagram_backend final : public datagram_hooks {
public:
  using address = endpoint;
  using queued = transport_core::queued_datagram<address>;

  datagram_backend(core* net, endpoint ep, std::optional<endpoint> remote);

  caf::error start(transport_core::io_owner& owner, shard& home,
                   const datagram_settings& settings);
  void stop() noexcept;
  bool is_open() const noexcept { return io_.is_open(); }
  endpoint remote() const { return remote_.value_or(endpoint{}); }
  caf::expected<address> resolve(const endpoint& peer) const;
  int receive(std::vector<transport_core::received_datagram>& out,
              const datagram_settings& settings);
  int send(const buffer& bytes, const address* to);
  int send_front(const std::deque<queued>& q, size_t n);
  int want(uint8_t interest);
  void describe(transport_info& info) const;
  const std::string& kind() const noexcept;
  int fd() const noexcept { return -1; }

  // From the engine (posted to the host's shard).
  void sim_readable() override;
  void sim_error(int err) override;

private:
  core* net_;
  endpoint ep_;
  std::optional<endpoint> remote_;
  emulated_readiness io_;
  std::deque<int> errors_; // ICMP errors not yet read
};

/// A simulated datagram endpoint: the production core on the network.
using datagram_transport = transport_core::datagram_core<datagram_backend>;

/// Settings of simulated datagram endpoints.
datagram_settings sim_datagram_settings(bool connected);

} // namespace shardwire::sim::detail

namespace shardwire::transport_core {
extern template class datagram_core<sim::detail::datagram_backend>;
} // namespace shardwire::transport_core
