#include "transports/detail/listener.hpp"

#include "actors/errors.hpp"
#include "runtime/log.hpp"
#include "runtime/runtime.hpp"
#include "transports/detail/socket_util.hpp"
#include "transports/detail/stream_transport.hpp"
#include "transports/detail/watch_fd.hpp"

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace shardwire::detail {

namespace {

constexpr std::chrono::milliseconds first_backoff{100};
constexpr std::chrono::milliseconds max_backoff{1000};

} // namespace

listener::listener(caf::actor_config& cfg, runtime* rt,
                   std::vector<listener_socket> sockets,
                   protocol_factory factory, listener_settings settings)
    : pinned(cfg), rt_(rt), factory_(std::move(factory)),
      settings_(std::move(settings)), alive_(std::make_shared<bool>(true)) {
  for (auto& s : sockets)
    slots_.push_back(std::make_unique<slot>(*this, std::move(s)));
}

listener::behavior_type listener::make_behavior() {
  for (auto& s : slots_) {
    // Non-blocking: accepts must never block the shard (an adopted
    // listening socket may come in blocking).
    if (auto err = watch_fd(s->watch, home(), s->sock.fd, *s))
      log::error("listening socket ", to_string(s->sock.address),
                 " cannot be watched: ", describe(err), "; it accepts nothing");
  }
  retry_timer_.emplace(home().io());
  self_ref_ = ctrl();
  serving_ = settings_.start_serving;
  want_accepts(serving_);
  set_down_handler([this](caf::down_msg& msg) { clients_.erase(msg.source); });
  return {
      [this](get_sockets) {
        std::vector<endpoint> out;
        for (auto& s : slots_)
          out.push_back(s->sock.address);
        return out;
      },
      [this](start_serving) {
        if (serving_ || slots_.empty()) return;
        serving_ = true;
        if (!retry_pending_) want_accepts(true);
      },
      [this](stop_serving) {
        // The kernel keeps queueing connections in the backlog.
        serving_ = false;
        want_accepts(false);
      },
      [this](is_serving) { return serving_; },
      [this](close_clients) {
        for (auto& [addr, hdl] : clients_)
          send(hdl, close{});
      },
      [this](abort_clients) {
        for (auto& [addr, hdl] : clients_)
          send(hdl, abort{});
      },
      [this](close) {
        serving_ = false;
        quit();
      },
  };
}

void listener::on_exit() {
  *alive_ = false;
  close_sockets();
  retry_timer_.reset();
  clients_.clear();
  // Last: finalize's caller holds its own reference while this runs.
  self_ref_.reset();
}

void listener::close_sockets() {
  for (auto& s : slots_) {
    unwatch_and_close(s->watch, s->sock.fd);
    if (!s->sock.unlink_path.empty()) ::unlink(s->sock.unlink_path.c_str());
  }
  slots_.clear();
}

void listener::want_accepts(bool on) {
  for (auto& s : slots_)
    if (s->watch.is_open()) s->watch.set_interest(on ? fd_read : fd_none);
}

void listener::on_acceptable(slot& s) {
  shard::io_scope scope{home()};
  shard::handler_scope mark{home(), this, true}; // for the stall detector
  if (!serving_) return; // the kernel keeps queueing connections in the backlog
  for (int i = 0; i < settings_.backlog; ++i) {
    int fd =
        ::accept4(s.sock.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (backoff_.count() != 0) {
        log::info("accept on ", to_string(s.sock.address), " recovered");
        backoff_ = std::chrono::milliseconds{0};
      }
      if (auto& m = home().metrics(); m.enabled) m.accepted.add();
      hand_off(fd);
      continue;
    }
    switch (errno) {
    case EINTR:
      continue;
    case EAGAIN:
#if EAGAIN != EWOULDBLOCK
    case EWOULDBLOCK:
#endif
      s.watch.clear_ready(fd_read); // drained: wait for the next edge
      return;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      back_off(errno);
      return;
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
      // The peer went away before we accepted: nothing to do.
      continue;
    default:
      log::error("accept on ", to_string(s.sock.address),
                 " failed: ", std::strerror(errno));
      back_off(errno);
      return;
    }
  }
  // Accepted a full batch: the poller calls again after other handlers
  // had their turn (the backlog was not found drained).
}

void listener::back_off(int err) {
  want_accepts(false);
  retry_pending_ = true;
  if (backoff_.count() == 0) {
    log::warning("accept: ", std::strerror(err),
                 "; pausing accept (existing "
                 "connections keep being served)");
    backoff_ = first_backoff;
  } else {
    backoff_ = std::min(backoff_ * 2, max_backoff);
  }
  retry_timer_->expires_after(backoff_);
  retry_timer_->async_wait([this, alive = alive_](std::error_code ec) {
    if (!*alive || ec) return;
    shard::io_scope scope{home()};
    retry_pending_ = false;
    if (serving_) want_accepts(true);
  });
}

void listener::hand_off(int fd) {
  apply_tcp_options(fd, settings_.stream);
  auto& target = rt_->pick_shard();
  connect_callback done;
  if (settings_.stream.tls)
    // asyncio logs a failed server handshake and drops the connection.
    done = [](caf::expected<connection> res) {
      if (!res) log::info("TLS connection dropped: ", describe(res.error()));
    };
  auto hdl = spawn_on<stream_transport>(target, factory_, settings_.stream,
                                        std::move(done), stream_direction::both,
                                        fd, settings_.kind);
  auto thdl = caf::actor_cast<transport_actor>(hdl);
  monitor(thdl);
  clients_.emplace(thdl.address(), std::move(thdl));
}

} // namespace shardwire::detail
