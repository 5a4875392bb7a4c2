// The datagram transport actor, written once over a datagram backend.
//
// Every datagram endpoint is a datagram_core<Backend>: UDP and Unix
// datagram sockets over the fd backend, the simulator's endpoints over the
// simulated-network backend. The rules of asyncio's DatagramTransport live
// here once: `datagram_connected` first and acknowledged before any read,
// `datagram` with read credit (reading stops while undelivered datagrams
// pass the high-water mark), `datagram_error` for a failed send or an ICMP
// error (the endpoint stays open), `pause` / `resume` on the write-buffer
// watermarks of datagrams queued behind EAGAIN, close flushes, abort drops,
// `lost` exactly once and last.
//
// The backend contract (B held by value):
//
//   using address = ...
//       How a queued datagram names its peer (a sockaddr, a simulated
//       endpoint); default-constructed means the connected peer.
//   caf::error start(io_owner& owner, shard& home,
//                    const datagram_settings& s)
//       On the home shard in make_behavior; releases its resource on error.
//   void stop() noexcept, bool is_open() const noexcept
//       As for stream backends (stream_backend.hpp).
//   endpoint remote() const
//       The connected peer (settings.connected), else an invalid endpoint.
//   caf::expected<address> resolve(const endpoint& peer) const
//   int receive(std::vector<received_datagram>& out,
//               const datagram_settings& s)
//       Appends what one non-blocking receive got (one or a batch) with the
//       read-credit weight of each; returns 0, io_result::would_block, or
//       an errno (an ICMP error: reported, the endpoint stays open).
//   int send(const buffer& bytes, const address* to)
//       One datagram now; 0, would_block, or an errno (that datagram is
//       dropped and reported).
//   int send_front(const std::deque<queued_datagram<address>>& q, size_t n)
//       Up to n datagrams from the front in one call; returns how many
//       left (> 0), or -errno for the front one.
//   int want(uint8_t interest), void describe(transport_info&) const,
//   const std::string& kind() const noexcept, int fd() const noexcept
//
// Readiness as for stream backends: on_io_ready on the home shard while
// the actor is idle, repeated while the condition lasts.
#pragma once

#include "actors/datagram_protocol.hpp"
#include "actors/errors.hpp"
#include "actors/read_credit.hpp"
#include "runtime/log.hpp"
#include "runtime/pinned.hpp"
#include "transports/core/stream_backend.hpp"
#include "transports/core/transport_lifecycle.hpp"
#include "transports/datagram.hpp"

#include <caf/invoke_message_result.hpp>

#include <deque>
#include <memory>
#include <vector>

namespace shardwire::transport_core {

using datagram_transport_full_actor =
    datagram_transport_actor::extend<caf::reacts_to<read_credit_returned>>;

/// One datagram a backend received, with its read-credit weight (datagrams
/// received together may share one block: they share its weight).
struct received_datagram {
  buffer bytes;
  endpoint peer;
  size_t weight = 0;
};

/// A datagram queued behind EAGAIN.
template <class Address>
struct queued_datagram {
  buffer bytes;
  Address to;
  bool has_address = false; // false: the connected peer
};

template <class Backend>
class datagram_core final
    : public pinned<datagram_transport_full_actor::base,
                    pinned_role::transport>,
      private io_owner,
      private transport_lifecycle<datagram_core<Backend>> {
public:
  using lifecycle = transport_lifecycle<datagram_core<Backend>>;
  using peer_address = typename Backend::address;
  using queued = queued_datagram<peer_address>;

  template <class... BackendArgs>
  datagram_core(caf::actor_config& cfg, datagram_protocol_factory factory,
                datagram_settings settings, datagram_callback done,
                BackendArgs&&... args)
      : pinned(cfg), backend_(std::forward<BackendArgs>(args)...),
        factory_(std::move(factory)), settings_(settings),
        done_(std::move(done)) {
    if (settings_.recv_batch == 0) settings_.recv_batch = 1;
    if (settings_.send_batch == 0) settings_.send_batch = 1;
  }

  behavior_type make_behavior() override;
  void on_exit() override;

  /// Handles an async `sendto`, the hot message type, without behavior
  /// dispatch (as the stream core does for `write`).
  caf::invoke_message_result consume(caf::mailbox_element& x) override;

  Backend& backend() noexcept { return backend_; }

private:
  friend lifecycle;

  caf::result<void> do_sendto(sendto& msg);
  void report(caf::expected<datagram_endpoint> result);
  // Hooks for transport_lifecycle.
  void drop_writes() noexcept {
    wq_.clear();
    wq_bytes_ = 0;
  }
  bool writes_empty() const noexcept { return wq_.empty(); }
  uint64_t write_bytes() const noexcept { return wq_bytes_; }
  void on_protocol_gone() noexcept { proto_fast_ = nullptr; }
  void on_finishing() {
    // As the stream core: a protocol that closed or aborted inside
    // connection_made still gets its endpoint from the create call
    // (asyncio returns the transport), not an error.
    if (done_ && proto_spoke_)
      report(datagram_endpoint{caf::actor_cast<datagram_transport_actor>(this),
                               proto_, make_info()});
  }
  transport_info make_info() const;
  transport_status status() const;

  void on_io_ready(bool readable, bool writable, bool failed) override;
  void sync_interest();
  bool should_read() const noexcept;
  void update_reading();
  void on_readable(std::vector<datagram>& out);
  void send_error(int err, const char* op);
  void arm_write();
  void flush();

  Backend backend_;
  datagram_protocol_factory factory_;
  datagram_settings settings_;
  datagram_callback done_;
  // A command of the protocol's arrived before the `datagram_connected`
  // acknowledgement (see on_finishing).
  bool proto_spoke_ = false;
  datagram_protocol_actor proto_;
  pinned_base* proto_fast_ = nullptr;
  read_credit_ptr credit_;
  endpoint remote_; // connected endpoints only
  std::vector<received_datagram> batch_; // reused by every receive

  bool started_ = false;
  bool user_paused_ = false;
  bool credit_paused_ = false;
  bool read_armed_ = false;
  bool write_armed_ = false;

  std::deque<queued> wq_;
  uint64_t wq_bytes_ = 0;
  size_t dropped_ = 0;
};

// -- starting -----------------------------------------------------------------

template <class B>
transport_info datagram_core<B>::make_info() const {
  return this->core_info();
}

template <class B>
transport_status datagram_core<B>::status() const {
  transport_status st;
  st.closing = this->is_closing();
  st.reading = started_ && !user_paused_ && !this->closing_ && !this->lost_sent_;
  st.write_buffer_size = wq_bytes_;
  return st;
}

template <class B>
void datagram_core<B>::report(caf::expected<datagram_endpoint> result) {
  if (done_) {
    auto f = std::move(done_);
    done_ = nullptr;
    f(std::move(result));
  }
}

template <class B>
typename datagram_core<B>::behavior_type datagram_core<B>::make_behavior() {
  if (!this->start_core(factory_, settings_.read_high_water,
                        settings_.read_low_water, settings_))
    return behavior_type::make_empty_behavior();
  if (settings_.connected) remote_ = backend_.remote();
  auto self_hdl = caf::actor_cast<datagram_transport_actor>(this);
  request(proto_, caf::infinite, datagram_connected{self_hdl, make_info()})
      .then(
          [this] {
            if (this->lost_sent_) return;
            started_ = true;
            report(datagram_endpoint{
                caf::actor_cast<datagram_transport_actor>(this), proto_,
                make_info()});
            update_reading();
          },
          [this](caf::error& err) { this->connect_failed(std::move(err)); });
  return {
      [this](sendto& msg) -> caf::result<void> { return do_sendto(msg); },
      [this](close) { this->do_close(); },
      [this](abort) { this->do_abort(); },
      [this](pause_reading) {
        if (this->closing_) return;
        user_paused_ = true;
        update_reading();
      },
      [this](resume_reading) {
        if (this->closing_ || !user_paused_) return;
        user_paused_ = false;
        update_reading();
      },
      [this](set_write_buffer_limits& msg) -> caf::result<write_buffer_limits> {
        return this->set_limits(msg);
      },
      [this](get_write_buffer_size) -> uint64_t { return wq_bytes_; },
      [this](get_write_buffer_limits) { return this->limits(); },
      [this](get_extra_info) { return make_info(); },
      [this](get_status) { return status(); },
      [this](set_datagram_protocol& msg) {
        this->replace_protocol(std::move(msg.protocol));
      },
      [this](get_protocol) { return proto_; },
      [this](read_credit_returned) { this->on_credit_returned(); },
  };
}

template <class B>
void datagram_core<B>::on_exit() {
  this->exit_core();
}

template <class B>
caf::invoke_message_result datagram_core<B>::consume(caf::mailbox_element& x) {
  this->count_delivery();
  if (done_ && !proto_spoke_) // only until the endpoint is reported
    proto_spoke_ = x.content().match_elements<shardwire::sendto>() ||
                   x.content().match_elements<close>() ||
                   x.content().match_elements<abort>();
  // Requests (`request(transport, sendto{...})`) go the normal way and get
  // their error replies (docs/datagrams.md has the figures).
  if (this->template consume_hot<shardwire::sendto>(
          x, [this](shardwire::sendto& msg) { do_sendto(msg); }))
    return caf::invoke_message_result::consumed;
  return this->consume_counted(x);
}

// -- readiness ----------------------------------------------------------------

template <class B>
void datagram_core<B>::sync_interest() {
  read_armed_ = should_read();
  uint8_t want = fd_none;
  if (read_armed_) want |= fd_read;
  if (write_armed_) want |= fd_write;
  if (int err = backend_.want(want); err != 0 && !this->lost_sent_) {
    log::debug("datagram transport ", backend_.kind(), ": epoll_ctl failed");
    this->finish(make_errno_error(err, "epoll_ctl"));
  }
}

template <class B>
void datagram_core<B>::on_io_ready(bool readable, bool writable, bool failed) {
  typename pinned::io_handler_scope guard{*this};
  if (write_armed_ && (writable || failed)) {
    write_armed_ = false; // flush arms again if datagrams are left
    if (!this->lost_sent_) flush();
  }
  std::vector<datagram> out;
  if (read_armed_ && !this->lost_sent_ && (readable || failed)) on_readable(out);
  if (!this->lost_sent_ && !this->exited_) sync_interest();
  // Delivered after the busy mark: a co-located idle protocol runs at once
  // and its `sendto` replies can take the fast path too.
  guard.release_busy();
  for (auto& msg : out) {
    if (this->lost_sent_ || !proto_) break;
    this->deliver(msg);
  }
  this->finalize_if_quit();
}

// -- reading ------------------------------------------------------------------

template <class B>
bool datagram_core<B>::should_read() const noexcept {
  return started_ && !user_paused_ && !credit_paused_ && !this->closing_ &&
         !this->lost_sent_;
}

template <class B>
void datagram_core<B>::update_reading() {
  if (!this->exited_ && backend_.is_open()) sync_interest();
}

template <class B>
void datagram_core<B>::on_readable(std::vector<datagram>& out) {
  if (!should_read()) return;
  batch_.clear();
  auto err = backend_.receive(batch_, settings_);
  if (err != 0 && err != io_result::would_block) {
    // asyncio: error_received, the endpoint stays open (ICMP errors on a
    // connected socket arrive here as ECONNREFUSED).
    send_error(err, "recvfrom");
  }
  if (batch_.empty()) return;
  out.reserve(batch_.size());
  size_t taken = 0;
  for (auto& r : batch_) {
    auto peer = std::move(r.peer);
    if (settings_.connected && !peer.valid()) peer = remote_;
    taken += r.weight;
    out.push_back(datagram{std::move(r.bytes), std::move(peer),
                           read_ticket{credit_, r.weight}});
  }
  batch_.clear();
  // One atomic add for the whole batch (nothing is delivered before this
  // function returns).
  credit_->take(taken);
  if (credit_->must_wait()) credit_paused_ = true; // on_io_ready syncs
}

template <class B>
void datagram_core<B>::send_error(int err, const char* op) {
  if (this->lost_sent_ || !proto_) return;
  send(proto_, datagram_error{make_errno_error(err, op)});
}

// -- writing ------------------------------------------------------------------

template <class B>
caf::result<void> datagram_core<B>::do_sendto(sendto& msg) {
  auto reject = [&](caf::error err) -> caf::result<void> {
    // Only a request gets the error back: for a plain send, CAF 0.17 would
    // ship it as a stray response the sender cannot match.
    if (this->handling_request()) return err;
    log::error("sendto dropped: ", describe(err));
    return caf::unit;
  };
  if (this->lost_sent_ || this->closing_) {
    if (++dropped_ == 1 || dropped_ % 1000 == 0)
      log::warning("sendto on closed transport (", backend_.kind(),
                   ") dropped (", dropped_, " so far)");
    return caf::unit;
  }
  queued q;
  if (settings_.connected) {
    if (msg.peer && *msg.peer != remote_)
      return reject(make_error(sw_errc::invalid_argument,
                               "Invalid address: must be None or " +
                                   to_string(remote_) + ", got " +
                                   to_string(*msg.peer)));
  } else {
    if (!msg.peer || !msg.peer->valid())
      return reject(
          make_error(sw_errc::invalid_argument,
                     "sendto on an unconnected endpoint needs a peer address"));
    auto addr = backend_.resolve(*msg.peer);
    if (!addr) return reject(std::move(addr.error()));
    q.to = std::move(*addr);
    q.has_address = true;
  }
  if (wq_.empty()) {
    // Nothing queued: send now (as asyncio does); queue only on EAGAIN.
    auto err = backend_.send(msg.bytes, q.has_address ? &q.to : nullptr);
    if (err == 0) return caf::unit;
    if (err != io_result::would_block) {
      send_error(err, "sendto");
      return caf::unit;
    }
  }
  wq_bytes_ += msg.bytes.size();
  q.bytes = std::move(msg.bytes);
  wq_.push_back(std::move(q));
  arm_write();
  this->check_pause();
  return caf::unit;
}

template <class B>
void datagram_core<B>::arm_write() {
  if (write_armed_ || !backend_.is_open()) return;
  write_armed_ = true;
  sync_interest();
}

template <class B>
void datagram_core<B>::flush() {
  while (!wq_.empty()) {
    if (settings_.send_batch > 1 && wq_.size() > 1) {
      // One call for the queue's front (it stops at the first datagram that
      // fails; the next round reports that one).
      auto n = backend_.send_front(wq_, std::min(wq_.size(),
                                                 settings_.send_batch));
      if (n > 0) {
        for (int i = 0; i < n; ++i) {
          wq_bytes_ -= wq_.front().bytes.size();
          wq_.pop_front();
        }
        continue;
      }
      auto err = -n;
      if (err == io_result::would_block) break;
      wq_bytes_ -= wq_.front().bytes.size();
      wq_.pop_front();
      send_error(err, "sendto");
      continue;
    }
    auto& q = wq_.front();
    auto err = backend_.send(q.bytes, q.has_address ? &q.to : nullptr);
    if (err == io_result::would_block) break;
    wq_bytes_ -= q.bytes.size();
    wq_.pop_front();
    // asyncio: a failed datagram goes to error_received and is dropped.
    if (err != 0) send_error(err, "sendto");
  }
  this->check_resume();
  if (!wq_.empty())
    arm_write();
  else if (this->closing_)
    this->finish({});
}

} // namespace shardwire::transport_core
