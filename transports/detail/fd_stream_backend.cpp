#include "transports/detail/fd_stream_backend.hpp"

#include "actors/errors.hpp"
#include "transports/detail/socket_util.hpp"
#include "transports/detail/watch_fd.hpp"

#include <mutex>
#include <set>

namespace shardwire::detail {

namespace {

// The one copy of each transport kind name ("tcp", "unix", "pipe", ...);
// never freed, so the references stay valid.
const std::string& intern_kind(const std::string& kind) {
  static std::mutex mtx;
  static std::set<std::string> names;
  std::lock_guard<std::mutex> guard{mtx};
  return *names.insert(kind).first;
}

} // namespace

fd_stream_backend::fd_stream_backend(int fd, const std::string& kind)
    : kind_(&intern_kind(kind)), fd_(fd) {
}

caf::error fd_stream_backend::start(transport_core::io_owner& owner,
                                    shard& home,
                                    transport_core::stream_direction) {
  owner_ = &owner;
  is_socket_ = is_stream_socket(fd_);
  if (auto err = watch_fd(watch_, home, fd_, *this)) {
    stop();
    return err;
  }
  if (is_socket_) set_tcp_nodelay(fd_);
  return {};
}

void fd_stream_backend::stop() noexcept {
  unwatch_and_close(watch_, fd_);
}

void fd_stream_backend::shutdown_write() noexcept {
  if (is_socket_ && fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void fd_stream_backend::describe(transport_info& info) const {
  // Addresses are read from the fd when asked (the protocol got a full copy
  // in `connected`): keeping them would cost ~200 bytes per connection.
  info.kind = *kind_;
  if (is_socket_ && fd_ >= 0) {
    info.peername = remote_endpoint(fd_);
    info.sockname = local_endpoint(fd_);
  }
  info.fd = fd_;
}

} // namespace shardwire::detail
