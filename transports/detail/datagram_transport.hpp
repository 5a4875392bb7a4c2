// The actor behind every datagram endpoint (UDP, Unix datagram sockets).
//
// Runs pinned to the shard that owns the socket, reactor style like
// stream_transport: Asio waits for readiness, then non-blocking recvmmsg /
// sendto. Completion handlers run on the shard thread while the actor is
// idle, so they touch its state without locks. Every event the protocol sees
// is a mailbox message from this actor, in order.
#pragma once

#include "actors/datagram_protocol.hpp"
#include "actors/read_credit.hpp"
#include "runtime/pinned.hpp"
#include "transports/datagram.hpp"
#include "transports/core/transport_lifecycle.hpp"

#include <asio/posix/stream_descriptor.hpp>

#include <sys/socket.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace shardwire::detail {

using datagram_transport_full_actor =
    datagram_transport_actor::extend<caf::reacts_to<read_credit_returned>>;

/// Creates the transport for datagram socket `fd` on shard `s`; the
/// transport owns `fd` from now on (closed on any failure) and spawns the
/// protocol with `factory` on the same shard. `kind` becomes
/// `transport_info::kind`. `done` (may be empty) gets the result.
void spawn_datagram_transport(shard& s, int fd, std::string kind,
                              datagram_protocol_factory factory,
                              datagram_settings settings,
                              datagram_callback done);

class datagram_transport : public pinned<datagram_transport_full_actor::base,
                                         pinned_role::transport>,
                           private transport_core::transport_lifecycle<datagram_transport> {
public:
  datagram_transport(caf::actor_config& cfg, int fd, std::string kind,
                     datagram_protocol_factory factory,
                     datagram_settings settings, datagram_callback done);

  behavior_type make_behavior() override;
  void on_exit() override;

  /// Handles an async `sendto`, the hot message type, without behavior
  /// dispatch (as stream_transport does for `write`).
  caf::invoke_message_result consume(caf::mailbox_element& x) override;

private:
  friend class transport_core::transport_lifecycle<datagram_transport>;

  struct queued {
    buffer bytes;
    sockaddr_storage addr;
    socklen_t len; // 0: connected socket, no address
  };

  caf::result<void> do_sendto(sendto& msg);
  void report(caf::expected<datagram_endpoint> result);
  // Hooks for transport_lifecycle.
  void drop_writes() noexcept {
    wq_.clear();
    wq_bytes_ = 0;
  }
  bool writes_empty() const noexcept { return wq_.empty(); }
  uint64_t write_bytes() const noexcept { return wq_bytes_; }
  void on_protocol_gone() noexcept { proto_fast_ = nullptr; }
  transport_info make_info() const;
  transport_status status() const;

  bool should_read() const noexcept;
  void update_reading();
  void on_readable(std::vector<datagram>& out);
  void send_error(int err, const char* op);

  /// Sends one datagram now; returns 0, EAGAIN, or another errno.
  int send_one(const buffer& bytes, const sockaddr* sa, socklen_t len);
  /// Sends up to `send_batch` queued datagrams with one sendmmsg; returns
  /// how many left the queue, or -errno for the front one (it stays queued).
  int send_batch();
  void arm_write();
  void flush();

  int fd_;
  std::optional<asio::posix::stream_descriptor> sock_;
  std::shared_ptr<bool> alive_;
  std::string kind_;
  datagram_protocol_factory factory_;
  datagram_settings settings_;
  datagram_callback done_;
  datagram_protocol_actor proto_;
  pinned_base* proto_fast_ = nullptr;
  read_credit_ptr credit_;
  endpoint remote_; // connected endpoints only

  bool started_ = false;
  bool user_paused_ = false;
  bool credit_paused_ = false;
  bool read_armed_ = false;
  /// Capacity of the next receive block (adapts to the batch sizes seen).
  size_t recv_block_ = 4096;

  std::deque<queued> wq_;
  uint64_t wq_bytes_ = 0;
  bool write_armed_ = false;
  size_t dropped_ = 0;
};

/// `peer` as a socket address (numeric IPv4/IPv6 host or a Unix path).
caf::expected<std::pair<sockaddr_storage, socklen_t>>
to_sockaddr(const endpoint& peer);

} // namespace shardwire::detail
