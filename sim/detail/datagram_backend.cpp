#include "sim/detail/datagram_backend.hpp"

#include "actors/errors.hpp"
#include "runtime/fd_poller.hpp"

namespace shardwire::transport_core {
template class datagram_core<sim::detail::datagram_backend>;
} // namespace shardwire::transport_core

namespace shardwire::sim::detail {

datagram_settings sim_datagram_settings(bool connected) {
  datagram_settings s;
  s.recv_batch = 1;
  s.send_batch = 1;
  s.read_high_water = 1024 * 1024;
  s.read_low_water = 256 * 1024;
  s.connected = connected;
  return s;
}

datagram_backend::datagram_backend(core* net, endpoint ep,
                                   std::optional<endpoint> remote)
    : net_(net), ep_(std::move(ep)), remote_(std::move(remote)),
      io_(net, net->find_host(ep_.host).value_or(0)) {
}

caf::error datagram_backend::start(transport_core::io_owner& owner, shard&,
                                   const datagram_settings&) {
  io_.start(owner);
  net_->attach_datagram(ep_, this, io_.alive());
  return {};
}

void datagram_backend::stop() noexcept {
  if (!io_.is_open()) return;
  io_.stop();
  net_->close_datagram(ep_);
}

caf::expected<datagram_backend::address>
datagram_backend::resolve(const endpoint& peer) const {
  return peer;
}

int datagram_backend::receive(
    std::vector<transport_core::received_datagram>& out,
    const datagram_settings&) {
  if (!errors_.empty()) {
    auto err = errors_.front();
    errors_.pop_front();
    return err;
  }
  auto x = net_->recv(ep_);
  if (!x) {
    io_.drained(fd_read); // until the engine's next notification
    return transport_core::io_result::would_block;
  }
  transport_core::received_datagram r;
  r.weight = x->first.footprint();
  r.bytes = std::move(x->first);
  r.peer = std::move(x->second);
  out.push_back(std::move(r));
  return 0;
}

int datagram_backend::send(const buffer& bytes, const address* to) {
  const endpoint& dst = to != nullptr ? *to : *remote_;
  return net_->sendto(ep_, bytes, dst);
}

int datagram_backend::send_front(const std::deque<queued>& q, size_t n) {
  // Never reached in practice (sends do not block here); one at a time.
  for (size_t i = 0; i < n; ++i) {
    auto err = send(q[i].bytes, q[i].has_address ? &q[i].to : nullptr);
    if (err != 0) return i > 0 ? static_cast<int>(i) : -err;
  }
  return static_cast<int>(n);
}

int datagram_backend::want(uint8_t interest) {
  io_.want(interest);
  return 0;
}

void datagram_backend::describe(transport_info& info) const {
  info.kind = kind();
  info.sockname = ep_;
  if (remote_) info.peername = *remote_;
  info.fd = -1;
}

const std::string& datagram_backend::kind() const noexcept {
  static const std::string udp{"udp"};
  return udp;
}

void datagram_backend::sim_readable() {
  io_.ready(fd_read);
}

void datagram_backend::sim_error(int err) {
  errors_.push_back(err);
  io_.ready(fd_read);
}

} // namespace shardwire::sim::detail
