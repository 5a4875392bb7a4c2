// The actor behind one simulated datagram endpoint (UDP-like).
//
// Follows transports/detail/datagram_transport's protocol-facing rules:
// `datagram_connected` first and acknowledged before reading, `datagram`
// with read credit, `datagram_error` never closes, `lost` exactly once and
// last. Sends never block in the simulation (the link model queues them),
// so the write buffer stays empty and `pause` is never sent.
#pragma once

#include "actors/datagram_protocol.hpp"
#include "actors/read_credit.hpp"
#include "runtime/pinned.hpp"
#include "transports/datagram.hpp"
#include "transports/core/transport_lifecycle.hpp"
#include "sim/detail/core.hpp"

#include <memory>
#include <optional>

namespace shardwire::sim::detail {

using sim_datagram_actor =
    datagram_transport_actor::extend<caf::reacts_to<read_credit_returned>>;

class datagram_transport final
    : public pinned<sim_datagram_actor::base, pinned_role::transport>,
      public datagram_hooks,
      private shardwire::transport_core::transport_lifecycle<datagram_transport> {
public:
  datagram_transport(caf::actor_config& cfg, core* net, endpoint ep,
                     std::optional<endpoint> remote,
                     datagram_protocol_factory factory, datagram_callback done);

  behavior_type make_behavior() override;
  void on_exit() override;

  void sim_readable() override;
  void sim_error(int err) override;

private:
  friend class shardwire::transport_core::transport_lifecycle<datagram_transport>;

  transport_info make_info() const;
  void report(caf::expected<datagram_endpoint> result);
  // Hooks for transport_lifecycle: there is no write queue (see above).
  void drop_writes() noexcept {}
  bool writes_empty() const noexcept { return true; }
  uint64_t write_bytes() const noexcept { return 0; }
  void on_finishing() { close_in_net(); }
  void close_in_net();
  bool should_read() const noexcept;
  void update_reading();

  core* net_;
  endpoint ep_;
  std::optional<endpoint> remote_;
  size_t host_ = 0;
  std::shared_ptr<bool> alive_;
  datagram_protocol_factory factory_;
  datagram_callback done_;
  datagram_protocol_actor proto_;
  read_credit_ptr credit_;
  bool started_ = false;
  bool user_paused_ = false;
  bool credit_paused_ = false;
  bool read_armed_ = false;
  bool net_closed_ = false;
};

} // namespace shardwire::sim::detail
