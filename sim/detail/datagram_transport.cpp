#include "sim/detail/datagram_transport.hpp"

#include "actors/errors.hpp"
#include "runtime/log.hpp"
#include "transports/core/write_limits.hpp"

namespace shardwire::sim::detail {

datagram_transport::datagram_transport(caf::actor_config& cfg, core* net,
                                       endpoint ep,
                                       std::optional<endpoint> remote,
                                       datagram_protocol_factory factory,
                                       datagram_callback done)
    : pinned(cfg), net_(net), ep_(std::move(ep)), remote_(std::move(remote)),
      alive_(std::make_shared<bool>(true)), factory_(std::move(factory)),
      done_(std::move(done)) {
  host_ = net_->find_host(ep_.host).value_or(0);
}

transport_info datagram_transport::make_info() const {
  transport_info info;
  info.kind = "udp";
  info.sockname = ep_;
  if (remote_) info.peername = *remote_;
  info.fd = -1;
  info.shard = static_cast<uint32_t>(home().id());
  return info;
}

void datagram_transport::report(caf::expected<datagram_endpoint> result) {
  if (done_) {
    auto f = std::move(done_);
    done_ = nullptr;
    f(std::move(result));
  }
}

datagram_transport::behavior_type datagram_transport::make_behavior() {
  net_->keep(ctrl());
  net_->attach_datagram(ep_, this, alive_);
  credit_ = caf::make_counted<read_credit>(address(), 1024 * 1024, 256 * 1024);
  if (!make_protocol(factory_)) {
    abandon_start(make_error(sw_errc::factory_failed));
    return behavior_type::make_empty_behavior();
  }
  watch_protocol();
  auto self_hdl = caf::actor_cast<datagram_transport_actor>(this);
  request(proto_, caf::infinite, datagram_connected{self_hdl, make_info()})
      .then(
          [this] {
            if (lost_sent_) return;
            started_ = true;
            report(datagram_endpoint{
                caf::actor_cast<datagram_transport_actor>(this), proto_,
                make_info()});
            update_reading();
          },
          [this](caf::error& err) { connect_failed(std::move(err)); });
  return {
      [this](sendto& msg) -> caf::result<void> {
        if (closing_ || lost_sent_) return caf::unit;
        endpoint to;
        if (msg.peer)
          to = *msg.peer;
        else if (remote_)
          to = *remote_;
        else
          return make_error(sw_errc::invalid_argument,
                            "sendto without a peer on an unconnected "
                            "endpoint");
        if (remote_ && !(to == *remote_))
          return make_error(sw_errc::invalid_argument,
                            "peer differs from the connected remote address");
        net_->sendto(ep_, msg.bytes, to);
        return caf::unit;
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
      [](get_write_buffer_size) -> uint64_t { return 0; },
      [this](get_write_buffer_limits) { return limits(); },
      [this](get_extra_info) { return make_info(); },
      [this](get_status) {
        transport_status st;
        st.closing = is_closing();
        st.reading = started_ && !user_paused_ && !closing_;
        return st;
      },
      [this](read_credit_returned) {
        credit_paused_ = false;
        update_reading();
      },
  };
}

void datagram_transport::close_in_net() {
  if (net_closed_) return;
  net_closed_ = true;
  net_->close_datagram(ep_);
}

void datagram_transport::on_exit() {
  *alive_ = false;
  begin_exit();
  close_in_net();
  proto_ = nullptr;
  net_->drop(ctrl());
}

bool datagram_transport::should_read() const noexcept {
  return started_ && !user_paused_ && !credit_paused_ && !closing_ &&
         !lost_sent_;
}

void datagram_transport::update_reading() {
  if (!should_read() || read_armed_) return;
  read_armed_ = true;
  net_->post(host_, [this, alive = alive_] {
    if (*alive) sim_readable();
  });
}

void datagram_transport::sim_readable() {
  if (!read_armed_) return;
  read_armed_ = false;
  if (!should_read()) return;
  shard::io_scope scope{home()};
  // One datagram per wake-up, then re-arm: keeps delivery interleaved with
  // the protocol's replies, as a recvmmsg batch of one would.
  auto x = net_->recv(ep_);
  if (!x) {
    read_armed_ = true;
    return;
  }
  auto weight = x->first.footprint();
  credit_->take(weight);
  if (credit_->must_wait()) credit_paused_ = true;
  send(proto_, datagram{std::move(x->first), std::move(x->second),
                        read_ticket{credit_, weight}});
  update_reading();
}

void datagram_transport::sim_error(int err) {
  if (lost_sent_) return;
  send(proto_, datagram_error{make_errno_error(err, "simulated recv")});
}

} // namespace shardwire::sim::detail
