#include "sim/detail/stream_backend.hpp"

#include "runtime/fd_poller.hpp"

#include <cstring>

namespace shardwire::transport_core {
template class stream_core<sim::detail::stream_backend>;
} // namespace shardwire::transport_core

namespace shardwire::sim::detail {

namespace {

size_t host_of(core* net, uint64_t conn, int side) {
  auto* c = net->find_conn(conn);
  return c != nullptr ? c->host[side] : 0;
}

} // namespace

stream_backend::stream_backend(core* net, uint64_t conn, int side)
    : net_(net), conn_(conn), side_(side),
      io_(net, host_of(net, conn, side)) {
}

caf::error stream_backend::start(transport_core::io_owner& owner, shard&,
                                 transport_core::stream_direction) {
  // The core keeps its actor alive until it ends (as the fd transports),
  // and the network's destructor exits every actor of every host: no
  // reference is kept here.
  io_.start(owner);
  net_->attach(conn_, side_, this, io_.alive());
  return {};
}

void stream_backend::stop() noexcept {
  if (!io_.is_open()) return;
  io_.stop();
  // The FIN goes out now, after what the network already accepted (unless
  // the host crashed: then the connection vanishes without one).
  net_->close_side(conn_, side_);
}

transport_core::io_result stream_backend::read(std::span<std::byte> into) {
  auto r = net_->read(conn_, side_, into.size());
  if (r.would_block) {
    io_.drained(fd_read); // until the engine's next notification
    return {0, transport_core::io_result::would_block, false};
  }
  if (r.error != 0) return {0, r.error, false};
  if (r.eof) return {0, 0, true};
  // The one copy the simulator makes: into the reader's memory, as a kernel
  // does.
  auto n = r.bytes.size();
  std::memcpy(into.data(), r.bytes.data(), n);
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
  if (taken < offered) io_.drained(fd_write); // window full
  return {taken, 0, false};
}

void stream_backend::shutdown_write() noexcept {
  net_->shutdown_write(conn_, side_);
}

int stream_backend::want(uint8_t interest) {
  io_.want(interest);
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
  io_.ready(fd_read);
}

void stream_backend::sim_writable() {
  io_.ready(fd_write);
}

} // namespace shardwire::sim::detail
