// The actor behind one end of a simulated stream connection.
//
// transports/detail/stream_transport's behaviour with the socket replaced
// by the simulation engine (the lifecycle is the shared
// transport_lifecycle): the same messages to the
// protocol in the same order (connected first and acknowledged before
// reading; data with read credit; eof with keep-open reply; pause/resume on
// the write buffer watermarks; close flushes, abort drops; lost exactly once
// and last). The engine calls `sim_readable` / `sim_writable` through the
// host's shard while the actor is idle, as Asio calls the real transport's
// completion handlers.
#pragma once

#include "actors/protocol.hpp"
#include "actors/read_credit.hpp"
#include "runtime/pinned.hpp"
#include "transports/detail/transport_lifecycle.hpp"
#include "sim/detail/core.hpp"
#include "transports/stream.hpp"

#include <deque>
#include <memory>

namespace shardwire::sim::detail {

using sim_stream_actor =
    transport_actor::extend<caf::reacts_to<read_credit_returned>>;

class stream_transport final
    : public pinned<sim_stream_actor::base, pinned_role::transport>,
      public stream_hooks,
      private shardwire::detail::transport_lifecycle<stream_transport> {
public:
  stream_transport(caf::actor_config& cfg, core* net, uint64_t conn, int side,
                   protocol_factory factory, connect_callback done);

  behavior_type make_behavior() override;
  void on_exit() override;

  void sim_readable() override;
  void sim_writable() override;

private:
  friend class shardwire::detail::transport_lifecycle<stream_transport>;

  transport_info make_info() const;
  void report(caf::expected<connection> result);
  void on_connected_ack();
  void fatal(int err, const char* op);
  // Hooks for transport_lifecycle.
  void drop_writes() noexcept {
    wq_.clear();
    wq_bytes_ = 0;
  }
  bool writes_empty() const noexcept { return wq_.empty(); }
  uint64_t write_bytes() const noexcept { return wq_bytes_; }
  void on_finishing() {
    read_closed_ = true;
    // The FIN goes out now (after what was already accepted by the network).
    close_in_net();
  }
  void on_close_draining() noexcept { read_closed_ = true; }
  bool should_read() const noexcept;
  void update_reading();
  void on_eof();
  caf::result<void> enqueue_write(const buffer* parts, size_t n,
                                  bool is_request);
  void arm_write();
  void flush();
  void after_drain();
  void close_in_net();

  core* net_;
  uint64_t conn_;
  int side_;
  size_t host_;
  std::shared_ptr<bool> alive_;
  protocol_factory factory_;
  connect_callback done_;
  protocol_actor proto_;
  read_credit_ptr credit_;
  stream_settings settings_;

  bool started_ = false;
  bool user_paused_ = false;
  bool credit_paused_ = false;
  bool read_closed_ = false;
  bool read_armed_ = false;

  std::deque<buffer> wq_;
  uint64_t wq_bytes_ = 0;
  bool write_armed_ = false;
  bool eof_requested_ = false;
  bool eof_sent_ = false;
  bool net_closed_ = false;
};

} // namespace shardwire::sim::detail
