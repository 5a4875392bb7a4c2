#include "sim/detail/stream_transport.hpp"

#include "actors/errors.hpp"
#include "runtime/log.hpp"
#include "transports/detail/write_limits.hpp"

#include <cerrno>
#include <cstring>

namespace shardwire::sim::detail {

stream_transport::stream_transport(caf::actor_config& cfg, core* net,
                                   uint64_t conn, int side,
                                   protocol_factory factory,
                                   connect_callback done)
    : pinned(cfg), net_(net), conn_(conn), side_(side),
      alive_(std::make_shared<bool>(true)), factory_(std::move(factory)),
      done_(std::move(done)), settings_(sim_stream_settings()) {
  auto* c = net_->find_conn(conn_);
  host_ = c != nullptr ? c->host[side_] : 0;
}

transport_info stream_transport::make_info() const {
  transport_info info;
  info.kind = "tcp";
  if (auto* c = net_->find_conn(conn_)) {
    info.sockname = c->ep[side_];
    info.peername = c->ep[1 - side_];
  }
  info.fd = -1;
  info.shard = static_cast<uint32_t>(home().id());
  return info;
}

void stream_transport::report(caf::expected<connection> result) {
  if (done_) {
    auto f = std::move(done_);
    done_ = nullptr;
    f(std::move(result));
  }
}

stream_transport::behavior_type stream_transport::make_behavior() {
  net_->keep(ctrl());
  net_->attach(conn_, side_, this, alive_);
  credit_ = caf::make_counted<read_credit>(address(), settings_.read_high_water,
                                           settings_.read_low_water);
  if (!make_protocol(factory_)) {
    abandon_start(make_error(sw_errc::factory_failed));
    return behavior_type::make_empty_behavior();
  }
  watch_protocol();
  auto self_hdl = caf::actor_cast<transport_actor>(this);
  request(proto_, caf::infinite, connected{self_hdl, make_info()})
      .then([this] { on_connected_ack(); },
            [this](caf::error& err) { connect_failed(std::move(err)); });
  return {
      [this](write& msg) -> caf::result<void> {
        return enqueue_write(&msg.bytes, 1, handling_request());
      },
      [this](writelines& msg) -> caf::result<void> {
        return enqueue_write(msg.parts.data(), msg.parts.size(),
                             handling_request());
      },
      [this](write_eof) {
        if (closing_ || lost_sent_ || eof_requested_) return;
        eof_requested_ = true;
        if (wq_.empty()) after_drain();
      },
      [this](close) { do_close(); },
      [this](abort) { do_abort(); },
      [this](pause_reading) {
        if (!closing_) user_paused_ = true;
      },
      [this](resume_reading) {
        if (closing_ || !user_paused_) return;
        user_paused_ = false;
        update_reading();
      },
      [this](set_write_buffer_limits& msg) -> caf::result<write_buffer_limits> {
        return set_limits(msg);
      },
      [this](get_write_buffer_size) -> uint64_t { return wq_bytes_; },
      [this](get_write_buffer_limits) { return limits(); },
      [this](get_extra_info) { return make_info(); },
      [this](get_status) {
        transport_status st;
        st.closing = is_closing();
        st.reading = started_ && !user_paused_ && !read_closed_ && !closing_;
        st.write_buffer_size = wq_bytes_;
        return st;
      },
      [this](set_protocol& msg) {
        if (!msg.protocol) {
          log::warning("set_protocol with an invalid handle ignored");
          return;
        }
        demonitor(proto_.address());
        proto_ = std::move(msg.protocol);
        monitor(proto_);
      },
      [this](read_credit_returned) {
        credit_paused_ = false;
        update_reading();
      },
  };
}

void stream_transport::close_in_net() {
  if (net_closed_) return;
  net_closed_ = true;
  net_->close_side(conn_, side_);
}

void stream_transport::on_exit() {
  *alive_ = false;
  begin_exit();
  close_in_net();
  wq_.clear();
  wq_bytes_ = 0;
  proto_ = nullptr;
  net_->drop(ctrl());
}

// -- lifecycle ----------------------------------------------------------------

void stream_transport::on_connected_ack() {
  if (lost_sent_) return;
  started_ = true;
  report(
      connection{caf::actor_cast<transport_actor>(this), proto_, make_info()});
  update_reading();
}

void stream_transport::fatal(int err, const char* op) {
  finish(make_errno_error(err, op));
}

// -- reading ------------------------------------------------------------------

bool stream_transport::should_read() const noexcept {
  return started_ && !user_paused_ && !credit_paused_ && !read_closed_ &&
         !lost_sent_;
}

void stream_transport::update_reading() {
  if (!should_read() || read_armed_) return;
  read_armed_ = true;
  // Like an async_wait on a readable socket: completes at once if the
  // inbox has something (bytes, FIN or an error).
  net_->post(host_, [this, alive = alive_] {
    if (*alive) sim_readable();
  });
}

void stream_transport::sim_readable() {
  if (!read_armed_) return;
  io_handler_scope guard{*this};
  read_armed_ = false;
  if (!should_read()) return;
  auto r = net_->read(conn_, side_, settings_.read_chunk_size);
  if (r.would_block) {
    read_armed_ = true; // wait for the engine's next notification
    return;
  }
  if (r.error != 0) {
    fatal(r.error, "read");
    guard.release_busy();
    finalize_if_quit();
    return;
  }
  if (r.eof) {
    on_eof();
    return;
  }
  auto weight = r.bytes.footprint();
  credit_->take(weight);
  if (credit_->must_wait()) credit_paused_ = true;
  update_reading();
  guard.release_busy();
  send(proto_, data{std::move(r.bytes), read_ticket{credit_, weight}});
}

void stream_transport::on_eof() {
  read_closed_ = true;
  request(proto_, caf::infinite, eof{})
      .then(
          [this](bool keep_open) {
            if (!keep_open) do_close();
          },
          [](caf::error&) {});
}

// -- writing ------------------------------------------------------------------

caf::result<void> stream_transport::enqueue_write(const buffer* parts, size_t n,
                                                  bool is_request) {
  if (lost_sent_ || closing_) return caf::unit;
  if (eof_requested_) {
    auto err = make_error(sw_errc::write_after_eof,
                          "Cannot call write() after write_eof()");
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
    auto sent = net_->write(conn_, side_, parts, n);
    if (sent < 0) {
      fatal(static_cast<int>(-sent), "write");
      return caf::unit;
    }
    skip = static_cast<size_t>(sent);
  }
  for (size_t i = 0; i < n; ++i) {
    auto& p = parts[i];
    if (skip >= p.size()) {
      skip -= p.size();
      continue;
    }
    wq_.push_back(skip == 0 ? p : p.slice(skip));
    wq_bytes_ += wq_.back().size();
    skip = 0;
  }
  if (!wq_.empty()) {
    arm_write();
    check_pause();
  }
  return caf::unit;
}

void stream_transport::arm_write() {
  write_armed_ = true;
  // Completes at once if the window has room (or on an error).
  net_->post(host_, [this, alive = alive_] {
    if (*alive) sim_writable();
  });
}

void stream_transport::sim_writable() {
  if (!write_armed_ || lost_sent_) return;
  io_handler_scope guard{*this};
  flush();
  guard.release_busy();
  finalize_if_quit();
}

void stream_transport::flush() {
  while (!wq_.empty()) {
    auto& front = wq_.front();
    auto sent = net_->write(conn_, side_, &front, 1);
    if (sent < 0) {
      fatal(static_cast<int>(-sent), "write");
      return;
    }
    auto n = static_cast<size_t>(sent);
    wq_bytes_ -= n;
    if (n == front.size()) {
      wq_.pop_front();
    } else {
      front = front.slice(n);
      break; // window full: wait for the engine's next notification
    }
  }
  check_resume();
  if (wq_.empty()) {
    write_armed_ = false;
    after_drain();
  }
}

void stream_transport::after_drain() {
  if (lost_sent_) return;
  if (eof_requested_ && !eof_sent_) {
    eof_sent_ = true;
    net_->shutdown_write(conn_, side_);
  }
  if (closing_) finish({});
}

} // namespace shardwire::sim::detail
