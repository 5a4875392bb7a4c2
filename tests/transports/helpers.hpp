// Helpers shared by the transport tests (tcp, unix, socket, many_connections,
// accept_emfile). Header-only; everything here builds on
// tests/support/fixtures.hpp.
#pragma once

#include "tests/support/fixtures.hpp"

#include <caf/scoped_actor.hpp>

#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <mutex>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace shardwire::test {

/// Whether ::1 can be bound on this machine (IPv6 loopback configured).
inline bool have_ipv6_loopback() {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 sa = {};
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
  ::close(fd);
  return ok;
}

/// Monitors `hdl`, runs `trigger` (e.g. sends it a message), then waits
/// (deadline bounded) until the actor is down. Returns whether it went down.
template <class Handle, class F>
bool wait_down(runtime& rt, const Handle& hdl, F trigger) {
  caf::scoped_actor self{rt.system()};
  self->monitor(hdl);
  trigger(self);
  bool down = false;
  self->receive([&](caf::down_msg& msg) { down = msg.source == hdl.address(); },
                caf::after(deadline) >> [] {});
  return down;
}

/// Sends `close` to a server actor and waits until it exited.
inline bool close_server(runtime& rt, const server_actor& hdl) {
  return wait_down(rt, hdl, [&](caf::scoped_actor& self) {
    self->send(hdl, shardwire::close{});
  });
}

/// Connects a blocking IPv6 TCP socket to [::1]:`port`; returns fd or -1.
inline int raw_connect6(uint16_t port) {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 sa = {};
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  sa.sin6_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// Concatenated payloads of the "data:" events in `evs`. For use inside
/// `event_log::wait_for` predicates (which must not call back into the log:
/// it holds its lock while evaluating them).
inline std::string joined_data(const std::vector<std::string>& evs) {
  std::string out;
  for (auto& e : evs)
    if (e.rfind("data:", 0) == 0) out += e.substr(5);
  return out;
}

/// Writes `text` to `fd` and reads the same number of bytes back.
inline std::string round_trip(int fd, const std::string& text) {
  if (!raw_send_all(fd, text)) return "<send failed>";
  return raw_read_exact(fd, text.size());
}

/// Whether `fd` has TCP_NODELAY set (-1 if getsockopt fails).
inline int tcp_nodelay_of(int fd) {
  int v = 0;
  socklen_t len = sizeof(v);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) != 0) return -1;
  return v != 0 ? 1 : 0;
}

/// What an `info_recorder` protocol saw: the `transport_info` of every
/// connection it served, plus the usual event strings in `log`.
struct info_sink {
  event_log_ptr log = std::make_shared<event_log>();
  mutable std::mutex mtx;
  std::vector<transport_info> infos;

  std::vector<transport_info> snapshot() const {
    std::lock_guard<std::mutex> guard{mtx};
    return infos;
  }
};

using info_sink_ptr = std::shared_ptr<info_sink>;

/// A protocol (actor style) that stores the `connected` info in `sink`,
/// logs "connected", "data:...", "eof", "lost[:err]" and, with `echo`, writes
/// every chunk back.
inline protocol_factory info_recorder(info_sink_ptr sink, bool echo = true) {
  auto impl = [](protocol_actor::pointer self, info_sink_ptr sink,
                 bool echo) -> protocol_actor::behavior_type {
    auto transport = std::make_shared<transport_actor>();
    return {
        [=](connected& msg) {
          *transport = msg.transport;
          {
            std::lock_guard<std::mutex> guard{sink->mtx};
            sink->infos.push_back(msg.info);
          }
          sink->log->add("connected");
        },
        [=](data& msg) {
          sink->log->add("data:" + msg.bytes.str());
          if (echo) self->send(*transport, shardwire::write{msg.bytes});
        },
        [=](eof) {
          sink->log->add("eof");
          return false;
        },
        [=](shardwire::pause) { sink->log->add("pause"); },
        [=](shardwire::resume) { sink->log->add("resume"); },
        [=](lost& msg) {
          sink->log->add(msg.reason ? "lost:" + describe(msg.reason) : "lost");
          self->quit();
        },
    };
  };
  return protocol_fun(impl, std::move(sink), echo);
}

/// Wraps `inner` so that every call is counted in `calls`.
inline protocol_factory counting(std::shared_ptr<std::atomic<int>> calls,
                                 protocol_factory inner) {
  return [calls, inner](shard& s) {
    ++*calls;
    return inner(s);
  };
}

} // namespace shardwire::test
