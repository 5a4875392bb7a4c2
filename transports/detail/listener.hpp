// The server actor: owns listening sockets and hands accepted connections
// to shards.
//
// Placement: one listener (on one shard) accepts for all shards and gives
// each new connection to the shard with the fewest live connections (ties
// round-robin). The accepted fd is handed over by spawning the transport on
// the target shard, so the connection lives there for life. SO_REUSEPORT is
// an option for binding several servers to one port, not the placement
// mechanism: the kernel's hash spreads connections unevenly (Seastar keeps it
// off for that reason).
//
// Accept errors: EMFILE/ENFILE/ENOBUFS/ENOMEM pause accepting with a growing
// back-off (100 ms up to 1 s), logged once per episode; existing connections
// keep being served. ECONNABORTED and similar peer errors are skipped.
#pragma once

#include "actors/messages.hpp"
#include "actors/protocol.hpp"
#include "runtime/fd_poller.hpp"
#include "runtime/pinned.hpp"
#include "transports/stream.hpp"

#include <asio/steady_timer.hpp>

#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

namespace shardwire {
class runtime;
}

namespace shardwire::detail {

struct listener_socket {
  int fd = -1;
  endpoint address;
  /// Unix path to unlink when the server closes (empty: nothing to unlink).
  std::string unlink_path;
};

struct listener_settings {
  std::string kind; // "tcp" or "unix"
  int backlog = 100;
  bool start_serving = true;
  stream_settings stream;
};

class listener : public pinned<server_actor::base, pinned_role::listener> {
public:
  listener(caf::actor_config& cfg, runtime* rt,
           std::vector<listener_socket> sockets, protocol_factory factory,
           listener_settings settings);

  behavior_type make_behavior() override;
  void on_exit() override;

private:
  // One listening socket, watched on the shard's poller like every other
  // descriptor (readable: connections wait in the backlog). The poller
  // calls again while the backlog is not drained (accept gave EAGAIN), so
  // a batch of accepts per call yields to other handlers without losing
  // the rest.
  struct slot final : fd_watcher {
    slot(listener& l, listener_socket s) : owner(&l), sock(std::move(s)) {}
    void on_fd_ready(uint32_t) override { owner->on_acceptable(*this); }
    listener* owner;
    listener_socket sock;
    fd_watch watch;
  };

  /// Waits for connections on every slot (serving and not backing off), or
  /// on none.
  void want_accepts(bool on);
  void on_acceptable(slot& s);
  void hand_off(int fd);
  void back_off(int err);
  void close_sockets();

  runtime* rt_;
  std::vector<std::unique_ptr<slot>> slots_; // stable: the poller points here
  protocol_factory factory_;
  listener_settings settings_;
  std::shared_ptr<bool> alive_;
  std::optional<asio::steady_timer> retry_timer_;
  std::chrono::milliseconds backoff_{0};
  bool serving_ = false;
  bool retry_pending_ = false; // accepting paused until retry_timer_ fires
  std::unordered_map<caf::actor_addr, transport_actor> clients_;
  // Held from make_behavior until `close` or the runtime's shutdown: a
  // server keeps serving when its handle is dropped (asyncio's loop keeps a
  // server's sockets too), and it ends on its home shard, never on the
  // thread that happened to drop the last handle (where its on_exit would
  // touch the shard's poller from outside; found by ThreadSanitizer).
  caf::strong_actor_ptr self_ref_;
};

} // namespace shardwire::detail
