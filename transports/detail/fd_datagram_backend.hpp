// The datagram core's backend for a non-blocking datagram socket (UDP,
// Unix datagram) on the shard's fd_poller. Private to transports/. The
// contract is in transports/core/datagram_core.hpp.
//
// Receiving without a copy: one recvmmsg fills equal slots of one pooled
// block, and each datagram becomes a slice of it (details in the .cpp).
#pragma once

#include "runtime/fd_poller.hpp"
#include "transports/core/datagram_core.hpp"

#include <deque>
#include <string>
#include <sys/socket.h>
#include <vector>

namespace shardwire::detail {

class fd_datagram_backend final : private fd_watcher {
public:
  /// A resolved peer.
  struct address {
    sockaddr_storage ss = {};
    socklen_t len = 0;
  };
  using queued = transport_core::queued_datagram<address>;

  /// Owns `fd` from now on (closed in stop(), also after a failed start).
  fd_datagram_backend(int fd, std::string kind);
  ~fd_datagram_backend() { stop(); }

  fd_datagram_backend(const fd_datagram_backend&) = delete;
  fd_datagram_backend& operator=(const fd_datagram_backend&) = delete;

  caf::error start(transport_core::io_owner& owner, shard& home,
                   const datagram_settings& settings);
  void stop() noexcept;
  bool is_open() const noexcept { return watch_.is_open(); }
  endpoint remote() const;
  caf::expected<address> resolve(const endpoint& peer) const;
  int receive(std::vector<transport_core::received_datagram>& out,
              const datagram_settings& settings);
  int send(const buffer& bytes, const address* to);
  int send_front(const std::deque<queued>& q, size_t n);
  int want(uint8_t interest) { return watch_.set_interest(interest); }
  void describe(transport_info& info) const;
  const std::string& kind() const noexcept { return kind_; }
  int fd() const noexcept { return fd_; }

private:
  void on_fd_ready(uint32_t events) override {
    owner_->on_io_ready((events & (EPOLLIN | EPOLLPRI)) != 0,
                        (events & EPOLLOUT) != 0,
                        (events & (EPOLLERR | EPOLLHUP)) != 0);
  }

  fd_watch watch_;
  transport_core::io_owner* owner_ = nullptr;
  std::string kind_;
  int fd_;
  bool connected_ = false;
  /// Capacity of the next receive block (adapts to the batch sizes seen).
  size_t recv_block_ = 4096;
};

/// `peer` as a socket address (numeric IPv4/IPv6 host or a Unix path).
caf::expected<std::pair<sockaddr_storage, socklen_t>>
to_sockaddr(const endpoint& peer);

} // namespace shardwire::detail
