#include "transports/detail/stream_transport.hpp"

#include "actors/errors.hpp"
#include "runtime/log.hpp"
#include "runtime/runtime.hpp"
#include "runtime/shared_behavior.hpp"
#include "transports/detail/socket_util.hpp"
#include "transports/detail/write_limits.hpp"

#include <cerrno>
#include <climits>
#include <mutex>
#include <set>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace shardwire::detail {

void spawn_stream_transport(shard& s, int fd, std::string kind,
                            protocol_factory factory, stream_settings settings,
                            connect_callback done) {
  spawn_on<stream_transport>(s, fd, std::move(kind), std::move(factory),
                             settings, std::move(done));
}

transport_actor spawn_pipe_transport(shard& s, int fd,
                                     stream_direction direction,
                                     protocol_factory factory,
                                     stream_settings settings,
                                     connect_callback done) {
  auto kind =
      direction == stream_direction::read_only ? "read_pipe" : "write_pipe";
  auto hdl =
      spawn_on<stream_transport>(s, fd, std::string{kind}, std::move(factory),
                                 settings, std::move(done), direction);
  return caf::actor_cast<transport_actor>(std::move(hdl));
}

namespace {

// Bounds of the adaptive read size (grows when reads fill the buffer).
constexpr size_t min_read_size = 4 * 1024;
constexpr size_t max_read_size = 256 * 1024;

// Buffers handed to one writev/sendmsg call.
constexpr size_t max_iov = 64;

// The one copy of each transport kind name ("tcp", "unix", "pipe", ...);
// never freed, so the references stay valid.
const std::string& intern_kind(const std::string& kind) {
  static std::mutex mtx;
  static std::set<std::string> names;
  std::lock_guard<std::mutex> guard{mtx};
  return *names.insert(kind).first;
}

} // namespace

stream_transport::stream_transport(caf::actor_config& cfg, int fd,
                                   std::string kind, protocol_factory factory,
                                   stream_settings settings,
                                   connect_callback done,
                                   stream_direction direction)
    : pinned(cfg),
      startup_(new startup{std::move(factory), settings, std::move(done)}),
      write_cap_(settings.write_buffer_cap), fd_(fd),
      next_read_size_(static_cast<uint32_t>(
          std::clamp(settings.read_chunk_size, min_read_size, max_read_size))) {
  kind_ = &intern_kind(kind);
  reads_follow_writes_ = settings.reads_follow_writes;
  direction_ = direction;
  never_uses_receive_timeouts(); // its behavior has no `after` clause
}

transport_info stream_transport::make_info() const {
  transport_info info;
  info.kind = *kind_;
  if (is_socket_ && fd_ >= 0) {
    info.peername = remote_endpoint(fd_);
    info.sockname = local_endpoint(fd_);
  }
  info.fd = fd_;
  info.shard = static_cast<uint32_t>(home().id());
  return info;
}

void stream_transport::report(caf::expected<connection> result) {
  if (!startup_) return;
  auto f = std::move(startup_->done);
  startup_.reset(); // reported once: the connection is set up or failed
  if (f) f(std::move(result));
}

stream_transport::behavior_type stream_transport::make_behavior() {
  // The descriptor is created here, on the home shard, not in the
  // constructor (which runs on the spawning thread).
  is_socket_ = is_stream_socket(fd_);
  if (auto nb_err = make_nonblocking(fd_); nb_err != 0) {
    close_fd(fd_);
    fd_ = -1;
    abandon_start(make_errno_error(nb_err, "fcntl"));
    return behavior_type::make_empty_behavior();
  }
  int err = 0;
  try {
    err = watch_.open(home().poller(), fd_, *this, fd_none);
  } catch (const std::system_error& e) { // no epoll instance (EMFILE)
    err = e.code().value();
  }
  if (err != 0) {
    close_fd(fd_);
    fd_ = -1;
    abandon_start(make_errno_error(err, "epoll_ctl"));
    return behavior_type::make_empty_behavior();
  }
  if (is_socket_) set_tcp_nodelay(fd_);
  credit_ = caf::make_counted<read_credit>(address(),
                                           startup_->settings.read_high_water,
                                           startup_->settings.read_low_water);
  if (!make_protocol(startup_->factory)) {
    // asyncio closes the accepted socket silently (the client sees EOF).
    abandon_start(make_error(sw_errc::factory_failed));
    return behavior_type::make_empty_behavior();
  }
  watch_protocol();
  hold_self();
  proto_fast_ = pinned_base::of(proto_);
  auto self_hdl = caf::actor_cast<transport_actor>(this);
  request(proto_, caf::infinite, connected{self_hdl, make_info()})
      .then([this] { on_connected_ack(); },
            [this](caf::error& err) { connect_failed(std::move(err)); });
  // One behavior per shard thread, shared by all its transports (saves a
  // ~600-byte behavior object per connection); see shared_behavior.hpp.
  return thread_shared_behavior<stream_transport, behavior_type>(
      &stream_transport::make_shared_behavior);
}

stream_transport::behavior_type stream_transport::make_shared_behavior() {
  using cur = current_actor<stream_transport>;
  return {
      [](write& msg) -> caf::result<void> {
        auto& self = cur::get();
        return self.enqueue_write(&msg.bytes, 1, self.handling_request());
      },
      [](writelines& msg) -> caf::result<void> {
        auto& self = cur::get();
        return self.enqueue_write(msg.parts.data(), msg.parts.size(),
                                  self.handling_request());
      },
      [](write_eof) { cur::get().do_write_eof(); },
      [](close) { cur::get().do_close(); },
      [](abort) { cur::get().do_abort(); },
      [](pause_reading) { cur::get().do_pause_reading(); },
      [](resume_reading) { cur::get().do_resume_reading(); },
      [](set_write_buffer_limits& msg) -> caf::result<write_buffer_limits> {
        return cur::get().set_limits(msg);
      },
      [](get_write_buffer_size) -> uint64_t { return cur::get().wq_.bytes(); },
      [](get_write_buffer_limits) { return cur::get().limits(); },
      [](get_extra_info) { return cur::get().make_info(); },
      [](get_status) { return cur::get().status(); },
      [](set_protocol& msg) { cur::get().do_set_protocol(msg); },
      [](read_credit_returned) { cur::get().do_credit_returned(); },
  };
}

void stream_transport::do_write_eof() {
  if (closing_ || lost_sent_ || eof_requested_) return;
  if (direction_ == stream_direction::read_only) {
    log::warning("write_eof on a read pipe ignored");
    return;
  }
  eof_requested_ = true;
  if (wq_.empty()) after_drain();
}

void stream_transport::do_pause_reading() {
  if (closing_) return;
  user_paused_ = true;
  update_reading();
}

void stream_transport::do_resume_reading() {
  if (closing_ || !user_paused_) return;
  user_paused_ = false;
  update_reading();
}

transport_status stream_transport::status() const {
  transport_status st;
  st.closing = is_closing();
  st.reading = started_ && !user_paused_ && !read_closed_ && !closing_ &&
               direction_ != stream_direction::write_only;
  st.write_buffer_size = wq_.bytes();
  return st;
}

void stream_transport::do_set_protocol(set_protocol& msg) {
  if (!msg.protocol) {
    log::warning("set_protocol with an invalid handle ignored");
    return;
  }
  demonitor(proto_.address());
  proto_ = std::move(msg.protocol);
  proto_fast_ = pinned_base::of(proto_);
  monitor(proto_);
}

void stream_transport::do_credit_returned() {
  credit_paused_ = false;
  update_reading();
}

void stream_transport::on_exit() {
  begin_exit();
  watch_.close(); // before the fd closes: it may be reused at once
  if (fd_ >= 0) close_fd(fd_);
  fd_ = -1;
  wq_.clear();
  proto_fast_ = nullptr;
  proto_ = nullptr;
  end_exit();
}

caf::invoke_message_result stream_transport::consume(caf::mailbox_element& x) {
  // `write` sent with `send` (not a request) is the one message on the data
  // path; skipping pattern matching and response bookkeeping for it saves
  // hundreds of instructions per echo. Everything else goes the normal way.
  auto& content = x.content();
  if (x.mid.is_async() && content.match_elements<shardwire::write>()) {
    // Async only, so never a request. CAF's consume() would set the
    // current element; the shortcut must too, or anything that asks for it
    // reads a freed one.
    current_element_ = &x;
    enqueue_write(&content.get_as<shardwire::write>(0).bytes, 1, false);
    return caf::invoke_message_result::consumed;
  }
  current_actor<stream_transport>::scope current{this};
  return pinned::consume(x);
}

// -- lifecycle ----------------------------------------------------------------

void stream_transport::on_connected_ack() {
  // CAF keeps the capacity of its table of pending requests, now empty
  // (the acknowledgement was taken out of it): give it back, since an idle
  // connection sends no further request until EOF. (CAF 0.17.6 moves the
  // handler out of the table before calling it, so it is not in use here.)
  if (multiplexed_responses_.empty()) multiplexed_responses_ = {};
  if (lost_sent_) return;
  started_ = true;
  report(
      connection{caf::actor_cast<transport_actor>(this), proto_, make_info()});
  if (direction_ == stream_direction::write_only)
    sync_interest(); // watch for the reader going away
  else
    update_reading();
}

void stream_transport::sync_interest() {
  read_armed_ = should_read();
  uint8_t want = fd_none;
  if (read_armed_) want |= fd_read;
  if (write_armed_) want |= fd_write;
  // A write pipe is never readable; epoll reports EPOLLERR on it once the
  // reading end is closed. asyncio watches for that with a reader callback
  // on the write end.
  if (direction_ == stream_direction::write_only && started_ && !lost_sent_)
    want |= fd_hangup;
  if (int err = watch_.set_interest(want); err != 0 && !lost_sent_)
    fatal(err, "epoll_ctl");
}

void stream_transport::on_fd_ready(uint32_t events) {
  io_handler_scope guard{*this};
  const bool failed = (events & (EPOLLERR | EPOLLHUP)) != 0;
  if (write_armed_ && (failed || (events & EPOLLOUT) != 0)) {
    write_armed_ = false; // flush arms again if the kernel took too little
    if (!lost_sent_) flush();
  }
  if (direction_ == stream_direction::write_only && failed && !lost_sent_) {
    // The reader went away (what flush could not report: nothing queued).
    if (wq_.empty())
      finish({});
    else
      fatal(EPIPE, "write");
  }
  std::optional<data> msg;
  if (read_armed_ && !lost_sent_ &&
      (failed || (events & (EPOLLIN | EPOLLRDHUP | EPOLLPRI)) != 0))
    msg = on_readable();
  if (!lost_sent_) sync_interest(); // a no-op unless the interest changed
  guard.release_busy();
  if (!msg) {
    finalize_if_quit(); // an error, or the buffer drained after close
    return;
  }
  // Tail send: every state change is done, so the protocol may run now and
  // write back at once.
  send_data(std::move(*msg));
}

void stream_transport::fatal(int err, const char* op) {
  log::debug("transport fd ", fd_, ": ", op, " failed: ", std::strerror(err));
  finish(make_errno_error(err, op));
}

void stream_transport::on_close_draining() {
  read_closed_ = true;
  update_reading(); // stop reading; the write handler finishes once drained
}

// -- reading ------------------------------------------------------------------

bool stream_transport::should_read() const noexcept {
  return direction_ != stream_direction::write_only && started_ &&
         !user_paused_ && !credit_paused_ && !read_closed_ && !lost_sent_ &&
         !(reads_follow_writes_ && write_paused_);
}

void stream_transport::update_reading() {
  // Interest lives in the poller's table: changing it costs no system call
  // for reading. Pausing (by the user or by read credit) and EOF take it
  // away; readiness seen meanwhile is kept and served on resume.
  if (!exited_) sync_interest();
}

std::optional<data> stream_transport::on_readable() {
  if (!should_read())
    return std::nullopt; // paused meanwhile: leave the bytes in the kernel
  mutable_buffer chunk{next_read_size_};
  ssize_t n;
  do {
    // recv on sockets: a shorter kernel path than read's (no VFS layer).
    n = is_socket_ ? ::recv(fd_, chunk.data(), chunk.capacity(), 0)
                   : ::read(fd_, chunk.data(), chunk.capacity());
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    auto got = static_cast<size_t>(n);
    // A short read emptied the socket: the next data brings a new edge.
    // A full one may have left more: the poller calls again next round.
    if (got < chunk.capacity()) watch_.clear_ready(fd_read);
    // Adapt the read size: grow while reads fill the buffer, shrink when
    // they use little of it (keeps memory per in-flight message small).
    if (got == chunk.capacity() && next_read_size_ < max_read_size)
      next_read_size_ *= 2;
    else if (got < chunk.capacity() / 8 && next_read_size_ > min_read_size)
      next_read_size_ /= 2;
    auto bytes = std::move(chunk).freeze(got);
    auto weight = bytes.footprint();
    credit_->take(weight);
    if (credit_->must_wait()) credit_paused_ = true; // on_fd_ready syncs
    return data{std::move(bytes), read_ticket{credit_, weight}};
  }
  if (n == 0) {
    on_eof();
  } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
    watch_.clear_ready(fd_read); // nothing after all: wait for the next edge
  } else
    fatal(errno, "read");
  return std::nullopt;
}

void stream_transport::send_data(data&& msg) {
  if (proto_fast_ == nullptr || !try_deliver_now(*proto_fast_, msg))
    send(proto_, std::move(msg));
}

void stream_transport::on_eof() {
  read_closed_ = true;
  if (direction_ == stream_direction::read_only) {
    // asyncio's read pipe: eof_received, then connection_lost(None)
    // whatever eof_received returned (a pipe has no write side to keep).
    request(proto_, caf::infinite, eof{}).then([](bool) {}, [](caf::error&) {});
    finish({});
    return;
  }
  request(proto_, caf::infinite, eof{})
      .then(
          [this](bool keep_open) {
            if (!keep_open) do_close();
          },
          [this](caf::error& err) {
            // The protocol died while handling eof; the down handler aborts.
            log::debug("eof request failed: ", describe(err));
          });
}

// -- writing ------------------------------------------------------------------

void stream_transport::warn_dropped_write() {
  // asyncio logs from the 5th dropped write on; logging every one would let a
  // tight writer flood the log.
  ++dropped_writes_;
  if (dropped_writes_ == 1 || dropped_writes_ % 1000 == 0)
    log::warning("write on closed transport (", *kind_, ") dropped (",
                 dropped_writes_, " so far)");
}

caf::result<void> stream_transport::enqueue_write(const buffer* parts, size_t n,
                                                  bool is_request) {
  if (lost_sent_ || closing_) {
    warn_dropped_write();
    return caf::unit;
  }
  if (direction_ == stream_direction::read_only) {
    auto err = make_error(sw_errc::not_supported, "write on a read pipe");
    if (is_request) return err;
    log::error(describe(err));
    return caf::unit;
  }
  if (eof_requested_) {
    auto err = make_error(sw_errc::write_after_eof,
                          "Cannot call write() after write_eof()");
    // Only a request gets the error back. For a plain `send`, CAF 0.17
    // would ship the error to the sender as a stray response that matches
    // no request (dropped at best, and a hazard for actors with their own
    // error handling); the writer cannot act on it anyway, so log it.
    if (is_request) return err;
    log::error("write after write_eof dropped: ", describe(err));
    return caf::unit;
  }
  size_t total = 0;
  for (size_t i = 0; i < n; ++i)
    total += parts[i].size();
  if (total == 0) return caf::unit;
  size_t skip = 0;
  if (wq_.empty()) {
    // Nothing queued: try to send right away (as asyncio does) and queue
    // only what the kernel did not take.
    iovec iov[max_iov];
    size_t cnt = 0;
    for (size_t i = 0; i < n && cnt < max_iov; ++i)
      if (!parts[i].empty())
        iov[cnt++] =
            iovec{const_cast<std::byte*>(parts[i].data()), parts[i].size()};
    auto sent = write_gathered(iov, cnt);
    if (sent < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        fatal(errno, "write");
        return caf::unit;
      }
      sent = 0;
    }
    skip = static_cast<size_t>(sent);
  }
  for (size_t i = 0; i < n; ++i) {
    auto& p = parts[i];
    if (skip >= p.size()) {
      skip -= p.size();
      continue;
    }
    wq_.push(skip == 0 ? p : p.slice(skip));
    skip = 0;
  }
  if (!wq_.empty()) {
    arm_write();
    after_queue_grew();
  }
  return caf::unit;
}

void stream_transport::after_queue_grew() {
  if (write_cap_ != 0 && wq_.bytes() > write_cap_) {
    // A protocol that ignores `pause` against a peer that does not read
    // would grow this queue without bound: end it here, loudly.
    auto queued = wq_.bytes();
    log::warning("transport fd ", fd_, " (", *kind_, "): write buffer at ",
                 queued, " bytes passed its cap of ", write_cap_,
                 "; connection aborted");
    finish(make_error(sw_errc::write_buffer_overflow,
                      std::to_string(queued) +
                          " unsent bytes passed the write buffer cap of " +
                          std::to_string(write_cap_) +
                          " (--shardwire.write-buffer-cap): the peer does "
                          "not read and the protocol ignored pause"));
    return;
  }
  check_pause();
  // Reading stops with the next readiness check (on_readable asks
  // should_read first); no interest change is needed until then.
}

void stream_transport::arm_write() {
  if (write_armed_ || !watch_.is_open()) return;
  write_armed_ = true;
  sync_interest();
}

ssize_t stream_transport::write_gathered(iovec* iov, size_t cnt) {
  // One syscall for up to max_iov buffers. Sockets use sendmsg so that a
  // peer that went away gives EPIPE without SIGPIPE even if the process
  // did not ignore it; pipes and other fds take writev.
  ssize_t sent;
  do {
    if (is_socket_ && cnt == 1) {
      // The common case (one buffer queued) skips sendmsg's iovec import.
      sent = ::send(fd_, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
    } else if (is_socket_) {
      msghdr mh = {};
      mh.msg_iov = iov;
      mh.msg_iovlen = cnt;
      sent = ::sendmsg(fd_, &mh, MSG_NOSIGNAL);
    } else {
      sent = ::writev(fd_, iov, static_cast<int>(cnt));
    }
  } while (sent < 0 && errno == EINTR);
  return sent;
}

void stream_transport::flush() {
  while (!wq_.empty()) {
    iovec iov[max_iov];
    auto cnt = wq_.fill(iov, max_iov);
    auto sent = write_gathered(iov, cnt);
    if (sent < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        watch_.clear_ready(fd_write); // full: wait for the next edge
        break;
      }
      fatal(errno, "write");
      return;
    }
    size_t offered = 0;
    for (size_t i = 0; i < cnt; ++i)
      offered += iov[i].iov_len;
    wq_.consume(static_cast<size_t>(sent));
    if (static_cast<size_t>(sent) < offered) {
      // The kernel took less than offered: full, wait for writability.
      watch_.clear_ready(fd_write);
      break;
    }
  }
  bool was_paused = write_paused_;
  check_resume();
  if (reads_follow_writes_ && was_paused && !write_paused_) update_reading();
  if (wq_.empty())
    after_drain();
  else
    arm_write();
}

void stream_transport::after_drain() {
  if (lost_sent_) return;
  if (eof_requested_ && !eof_sent_ && fd_ >= 0) {
    eof_sent_ = true;
    if (direction_ == stream_direction::write_only) {
      // A pipe has no half-close: write_eof closes it (asyncio), which the
      // protocol sees as a clean `lost`.
      closing_ = true;
      read_closed_ = true;
    } else if (is_socket_) {
      ::shutdown(fd_, SHUT_WR);
    }
  }
  if (closing_) finish({});
}

} // namespace shardwire::detail
