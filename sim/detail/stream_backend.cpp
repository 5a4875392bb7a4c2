#include "sim/detail/stream_backend.hpp"

#include "runtime/fd_poller.hpp"

#include <cstring>

namespace shardwire::transport_core {
template class stream_core<sim::detail::stream_backend>;
} // namespace shardwire::transport_core

namespace shardwire::sim::detail {

stream_backend::stream_backend(core* net, uint64_t conn, int side)
    : net_(net), conn_(conn), side_(side),
      alive_(std::make_shared<bool>(true)) {
  auto* c = net_->find_conn(conn_);
  host_ = c != nullptr ? c->host[side_] : 0;
}

caf::error stream_backend::start(transport_core::io_owner& owner, shard&,
                                 transport_core::stream_direction) {
  // The core keeps its actor alive until it ends (as the fd transports),
  // and the network's destructor exits every actor of every host: no
  // reference is kept here.
  owner_ = &owner;
  open_ = true;
  net_->attach(conn_, side_, this, alive_);
  return {};
}

void stream_backend::stop() noexcept {
  if (!open_) return;
  *alive_ = false;
  open_ = false;
  // The FIN goes out now, after what the network already accepted (unless
  // the host crashed: then the connection vanishes without one).
  net_->close_side(conn_, side_);
}

transport_core::io_result stream_backend::read(mutable_buffer& chunk) {
  auto r = net_->read(conn_, side_, chunk.capacity());
  if (r.would_block) {
    ready_read_ = false; // until the engine's next notification
    return {0, transport_core::io_result::would_block, false};
  }
  if (r.error != 0) return {0, r.error, false};
  if (r.eof) return {0, 0, true};
  // The one copy the simulator makes: into the core's chunk, as a kernel
  // copies into the reader's buffer.
  auto n = r.bytes.size();
  std::memcpy(chunk.data(), r.bytes.data(), n);
  return {n, 0, false};
}

transport_core::io_result stream_backend::write(const buffer* parts,
                                                size_t n) {
  auto sent = net_->write(conn_, side_, parts, std::min(n, max_parts));
  if (sent < 0) return {0, static_cast<int>(-sent), false};
  size_t offered = 0;
  for (size_t i = 0; i < n && i < max_parts; ++i)
    offered += parts[i].size();
  auto taken = static_cast<size_t>(sent);
  if (taken < offered) ready_write_ = false; // window full
  return {taken, 0, false};
}

void stream_backend::shutdown_write() noexcept {
  net_->shutdown_write(conn_, side_);
}

int stream_backend::want(uint8_t interest) {
  want_ = interest;
  dispatch();
  return 0;
}

void stream_backend::describe(transport_info& info) const {
  info.kind = kind();
  if (auto* c = net_->find_conn(conn_)) {
    info.sockname = c->ep[side_];
    info.peername = c->ep[1 - side_];
  }
  info.fd = -1;
}

const std::string& stream_backend::kind() const noexcept {
  static const std::string tcp{"tcp"};
  return tcp;
}

void stream_backend::sim_readable() {
  ready_read_ = true;
  dispatch();
}

void stream_backend::sim_writable() {
  ready_write_ = true;
  dispatch();
}

void stream_backend::dispatch() {
  if (posted_ || !open_) return;
  bool r = (want_ & fd_read) != 0 && ready_read_;
  bool w = (want_ & fd_write) != 0 && ready_write_;
  if (!r && !w) return;
  posted_ = true;
  net_->post(host_, [this, alive = alive_] {
    if (!*alive) return;
    posted_ = false;
    bool rr = (want_ & fd_read) != 0 && ready_read_;
    bool ww = (want_ & fd_write) != 0 && ready_write_;
    if (rr || ww) owner_->on_io_ready(rr, ww, false);
  });
}

} // namespace shardwire::sim::detail
