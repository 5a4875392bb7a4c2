// Readiness for a simulated socket, as the shard's fd poller gives it for a
// real one: the engine says what became ready (bytes, a FIN, a reset, room
// in the window), a read or write that found nothing says what is drained,
// and the owner (a transport core) is called while it wants something that
// is ready, again and again until it is drained. The call goes through a
// job posted to the host's shard, so it never runs inside one of the core's
// own calls. Private to sim.
#pragma once

#include "sim/detail/core.hpp"
#include "transports/core/stream_backend.hpp"

#include <cstdint>
#include <memory>

namespace shardwire::sim::detail {

class emulated_readiness {
public:
  emulated_readiness(core* net, size_t host)
      : net_(net), host_(host), alive_(std::make_shared<bool>(true)) {}

  /// From now on `owner` may be called.
  void start(transport_core::io_owner& owner) {
    owner_ = &owner;
    open_ = true;
  }

  /// No call after this (a posted job finds the flag cleared).
  void stop() noexcept {
    open_ = false;
    *alive_ = false;
  }

  bool is_open() const noexcept { return open_; }

  /// Shared with the engine's posted notifications: false once stopped.
  const std::shared_ptr<bool>& alive() const noexcept { return alive_; }

  /// What the owner waits for now (fd_read / fd_write bits).
  void want(uint8_t interest) {
    want_ = interest;
    dispatch();
  }

  /// The engine: `what` (fd_read / fd_write) may have become ready.
  void ready(uint8_t what) {
    ready_ |= what;
    dispatch();
  }

  /// A read or write found nothing to do: wait for the engine.
  void drained(uint8_t what) noexcept { ready_ &= static_cast<uint8_t>(~what); }

private:
  void dispatch() {
    if (posted_ || !open_ || (want_ & ready_) == 0) return;
    posted_ = true;
    net_->post(host_, [this, alive = alive_] {
      if (!*alive) return;
      posted_ = false;
      auto now = static_cast<uint8_t>(want_ & ready_);
      if (now != 0)
        owner_->on_io_ready((now & fd_read) != 0, (now & fd_write) != 0,
                            false);
    });
  }

  core* net_;
  size_t host_;
  transport_core::io_owner* owner_ = nullptr;
  std::shared_ptr<bool> alive_;
  uint8_t want_ = 0;
  // Unknown until a read or write says otherwise: ready.
  uint8_t ready_ = fd_read | fd_write;
  bool open_ = false;
  bool posted_ = false;
};

} // namespace shardwire::sim::detail
