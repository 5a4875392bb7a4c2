// The receiving end of systemd's notification protocol (sd_notify(3)) for
// one child: a datagram socket whose address the child gets as
// NOTIFY_SOCKET, read on the child's shard. Private to transports/.
//
// The socket lives in the abstract namespace ("@shardwire-notify/..."), so
// there is no file to clean up and a child running as another user can
// still send to it. Every process that knows the address may send; the
// kernel tells the handler who sent each datagram (SO_PASSCRED), so the
// owner can keep to systemd's NotifyAccess=main. Datagrams larger than
// `max_datagram` and descriptors passed along (SCM_RIGHTS, FDSTORE=1) are
// dropped.
#pragma once

#include "runtime/fd_poller.hpp"

#include <caf/error.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace shardwire {
class shard;
} // namespace shardwire

namespace shardwire::detail {

struct notify_field {
  std::string key;
  std::string value;
};

/// Splits one datagram into its "KEY=VALUE" lines, in order. Lines without
/// '=' or with an empty key are skipped (sd_notify's own rule); a value may
/// be empty and may hold '='.
std::vector<notify_field> parse_notify(std::string_view datagram);

class notify_socket : private fd_watcher {
public:
  static constexpr size_t max_datagram = 4096;

  /// Called on the shard thread with the fields of each datagram and the
  /// sender's pid as the kernel reports it (0 if it reported none).
  using handler = std::function<void(std::vector<notify_field>, pid_t)>;

  notify_socket() = default;
  notify_socket(const notify_socket&) = delete;
  notify_socket& operator=(const notify_socket&) = delete;
  ~notify_socket() { close(); }

  /// Binds a new socket and watches it on `home`'s poller (call on that
  /// shard's thread). Errors: errno of socket/bind/epoll_ctl.
  caf::error open(shard& home, handler h);

  /// The NOTIFY_SOCKET value for the child ("@..."); empty until open.
  const std::string& address() const noexcept { return address_; }

  /// Stops reading and closes the socket; `handler` is not called again.
  /// Idempotent; may be called from inside the handler.
  void close() noexcept;

private:
  void on_fd_ready(uint32_t events) override;

  int fd_ = -1;
  fd_watch watch_;
  std::string address_;
  handler handler_;
};

} // namespace shardwire::detail
