// The lifecycle every transport actor shares: the real stream and datagram
// transports and their copies in the simulator. Part of the transport core (transports/core/README in stream_core.hpp):
// backends never touch it; only transport actors derive from it.
//
// One state machine: open -> closing (close: flush, then finish; abort:
// drop the write queue, then finish) -> lost sent (exactly once, last) ->
// exited. Plus what hangs on it: the protocol going down, the write-buffer
// watermarks (pause/resume), and finalizing an actor that quit from an I/O
// handler.
//
// A CRTP base, not a virtual interface: the hooks are plain member calls the
// compiler inlines, and none of this is on the per-read or per-write path
// except the flag checks (closing_, lost_sent_) and check_pause/check_resume,
// which were inline member functions of each transport before.
#pragma once

#include "actors/errors.hpp"
#include "actors/messages.hpp"
#include "actors/read_credit.hpp"
#include "runtime/log.hpp"
#include "runtime/pinned.hpp"
#include "transports/core/stream_backend.hpp"
#include "transports/core/write_limits.hpp"

#include <caf/actor_control_block.hpp>
#include <caf/error.hpp>
#include <caf/exit_reason.hpp>
#include <caf/result.hpp>
#include <caf/system_messages.hpp>

#include <cstdint>
#include <exception>
#include <utility>

namespace shardwire::transport_core {

/// Base of a transport actor `Derived` (which must also be the CAF actor).
///
/// `Derived` (a transport core: stream_core, datagram_core) declares
/// `friend class transport_lifecycle<Derived>;`, derives privately from
/// io_owner, and has:
/// - `backend_`: its backend (stream_backend.hpp, datagram_core.hpp);
/// - `proto_`: the protocol's handle (reset to nullptr when it goes down),
///   and `proto_fast_`: the pinned actor behind it, or nullptr;
/// - `credit_`: its read_credit_ptr (may be null before startup);
/// - `report(caf::error)`: completes the connect callback, once;
/// - `void drop_writes()`: empties the write queue (and its byte count);
/// - `bool writes_empty() const`, `uint64_t write_bytes() const`.
/// Optional hooks (the defaults here do nothing):
/// - `void on_finishing()`: runs in finish() after the write queue was
///   dropped and before `lost` goes out (stop reading, close the simulated
///   connection);
/// - `void on_close_draining()`: `close` accepted with bytes still queued;
///   the transport stops reading and finishes once the queue drained;
/// - `void on_protocol_gone()`: proto_ was just reset (clear what caches it).
///
/// All members run on the actor's home shard thread: in a message handler,
/// on_exit, or an I/O handler while the actor is idle.
template <class Derived>
class transport_lifecycle {
protected:
  transport_lifecycle() = default;

  Derived& self() noexcept { return static_cast<Derived&>(*this); }

  const Derived& self() const noexcept {
    return static_cast<const Derived&>(*this);
  }

  // -- state --------------------------------------------------------------

  /// What get_status reports as `closing`.
  bool is_closing() const noexcept { return closing_ || lost_sent_; }

  /// Keeps the actor alive until finish() or on_exit (see self_ref_).
  void hold_self() { self_ref_ = self().ctrl(); }

  /// Whether the message being handled by the behavior is a request.
  bool handling_request() {
    // Valid inside behavior handlers (CAF's consume() maintains the current
    // element) and in a consume() shortcut that sets current_element_.
    auto* cur = self().current_mailbox_element();
    return cur != nullptr && cur->mid.is_request();
  }

  // -- what every core does the same way ------------------------------------

  /// Extra info: what the backend says, plus the home shard.
  transport_info core_info() const {
    auto& d = self();
    transport_info info;
    d.backend_.describe(info);
    info.shard = static_cast<uint32_t>(d.home().id());
    return info;
  }

  /// make_behavior's start: the backend (`args` after the owner and the
  /// home shard), read credit, the protocol (born on this shard), its
  /// monitor. False if startup failed: the connect callback has the error
  /// and the actor quits (no `lost`: no protocol was told).
  template <class Factory, class... StartArgs>
  bool start_core(Factory& factory, size_t read_high, size_t read_low,
                  const StartArgs&... args) {
    return start_backend(args...) &&
           start_protocol(factory, read_high, read_low);
  }

  /// start_core's first half: the backend. False if it failed (reported).
  template <class... StartArgs>
  bool start_backend(const StartArgs&... args) {
    auto& d = self();
    io_owner& owner = d;
    if (auto err = d.backend_.start(owner, d.home(), args...)) {
      abandon_start(std::move(err));
      return false;
    }
    return true;
  }

  /// start_core's second half, once the backend is ready for the protocol
  /// (at once, or after a TLS handshake): read credit, the protocol, its
  /// monitor. False if the factory failed (reported).
  template <class Factory>
  bool start_protocol(Factory& factory, size_t read_high, size_t read_low) {
    auto& d = self();
    d.credit_ =
        caf::make_counted<read_credit>(d.address(), read_high, read_low);
    if (!make_protocol(factory)) {
      // asyncio closes the accepted socket silently (the client sees EOF).
      abandon_start(make_error(sw_errc::factory_failed));
      return false;
    }
    watch_protocol();
    hold_self();
    d.proto_fast_ = pinned_base::of(d.proto_);
    return true;
  }

  /// The whole of a core's on_exit: the protocol's `lost` if still due, the
  /// backend stopped (no readiness after this; its resource released),
  /// every reference dropped.
  void exit_core() {
    begin_exit();
    auto& d = self();
    d.backend_.stop();
    d.drop_writes();
    d.proto_fast_ = nullptr;
    d.proto_ = nullptr;
    end_exit();
  }

  /// `read_credit_returned`: the protocol consumed enough; read again.
  void on_credit_returned() {
    auto& d = self();
    d.credit_paused_ = false;
    d.update_reading();
  }

  /// The consume() shortcut for the one message type on a core's data path
  /// (`write`, `sendto`): sent with `send` (async, so never a request), it
  /// is handed to `handle` without pattern matching and response
  /// bookkeeping, which saves hundreds of instructions per echo. Returns
  /// false for anything else, which goes the normal way.
  template <class Message, class Handler>
  bool consume_hot(caf::mailbox_element& x, Handler&& handle) {
    auto& content = x.content();
    if (!x.mid.is_async() || !content.template match_elements<Message>())
      return false;
    // CAF's consume() sets the current element; the shortcut must too, or
    // anything that asks for it (handling_request) reads a freed one.
    self().current_element_ = &x;
    handle(content.template get_mutable_as<Message>(0));
    return true;
  }

  /// Sends `msg` to the protocol, in this thread's reused mailbox element
  /// when the protocol can take it at once (co-located and idle).
  template <class Message>
  void deliver(Message& msg) {
    auto& d = self();
    if (d.proto_fast_ == nullptr || !try_deliver_now(*d.proto_fast_, msg))
      d.send(d.proto_, std::move(msg));
  }

  // -- starting -----------------------------------------------------------

  /// Runs the protocol factory (here, so the protocol is born on this shard)
  /// into proto_ and drops the factory; false if it threw or gave nothing.
  template <class Factory>
  bool make_protocol(Factory& factory) {
    auto& d = self();
    try {
      if (factory) d.proto_ = factory(d.home());
    } catch (const std::exception& e) {
      log::debug("protocol factory threw: ", e.what());
    }
    factory = nullptr;
    return static_cast<bool>(d.proto_);
  }

  /// Startup failed before a protocol was told of the transport: the connect
  /// callback gets `err`, no `lost` is due, the actor quits.
  void abandon_start(caf::error err) {
    auto& d = self();
    d.report(std::move(err));
    lost_sent_ = true;
    d.on_finishing();
    d.quit();
    // A TLS handshake held the actor (hold_self) before the protocol
    // existed; whoever runs this holds its own reference.
    self_ref_.reset();
  }

  /// Monitors the new protocol; its down message goes to on_protocol_down.
  void watch_protocol() {
    auto& d = self();
    d.monitor(d.proto_);
    d.set_down_handler([this](caf::down_msg& msg) { on_protocol_down(msg); });
  }

  /// The protocol failed the `connected` request: the connect callback and
  /// `lost` both get the error.
  void connect_failed(caf::error err) {
    self().report(err);
    finish(std::move(err));
  }

  // -- ending -------------------------------------------------------------

  /// Ends the transport: `lost{reason}` to the protocol (once; later calls do
  /// nothing), then quit().
  void finish(caf::error reason) {
    if (lost_sent_) return;
    lost_sent_ = true;
    closing_ = true;
    auto& d = self();
    d.drop_writes();
    d.on_finishing();
    if (d.proto_) d.send(d.proto_, lost{std::move(reason)});
    d.quit();
    // Safe: whoever runs this (a resume, a fast delivery, an I/O handler)
    // holds its own reference until the actor is finalized.
    self_ref_.reset();
  }

  /// `close`: stop reading, flush the write queue, then finish.
  void do_close() {
    if (closing_ || lost_sent_) return;
    closing_ = true;
    auto& d = self();
    if (d.writes_empty()) {
      finish({});
      return;
    }
    // The write handler finishes once the queue drained.
    d.on_close_draining();
  }

  /// `abort`: drop the write queue and finish at once.
  void do_abort() {
    if (lost_sent_) return;
    closing_ = true;
    // Dropping the buffer first means no `resume` follows an abort.
    self().drop_writes();
    finish({});
  }

  /// asyncio's set_protocol: later messages go to `next`, which is
  /// monitored instead (the previous protocol's down message is ignored
  /// from now on). An invalid handle is refused with a warning.
  template <class Handle>
  void replace_protocol(Handle next) {
    auto& d = self();
    if (!next) {
      log::warning("set_protocol with an invalid handle ignored");
      return;
    }
    d.demonitor(d.proto_.address());
    d.proto_ = std::move(next);
    d.proto_fast_ = pinned_base::of(d.proto_);
    d.monitor(d.proto_);
  }

  /// The monitored protocol went down.
  void on_protocol_down(const caf::down_msg& msg) {
    auto& d = self();
    if (msg.source != d.proto_.address())
      return; // a previous protocol (set_protocol) went away: not ours
    d.proto_ = nullptr;
    d.on_protocol_gone();
    if (lost_sent_) return;
    if (!msg.reason || msg.reason == caf::exit_reason::normal) {
      // The protocol finished normally: flush what it wrote, then close.
      if (!closing_) do_close();
      if (closing_ && !lost_sent_ && d.writes_empty()) finish({});
      return;
    }
    log::debug("protocol failed (", describe(msg.reason),
               "), aborting transport");
    do_abort();
  }

  /// Completes a `quit()` made from an I/O handler (outside any message
  /// handler, where CAF 0.17 would never finalize the actor). Call it last
  /// in every I/O handler, after the busy mark was released.
  void finalize_if_quit() {
    // BUGFIX (found by tests/transports/stream_semantics_test.cpp, "close
    // stops reading, flushes the write buffer, then lost" and "peer reset
    // gives lost with ECONNRESET"): `finish` calls `quit()`, and from an I/O
    // handler (the write buffer drained after `close`, a read or write error)
    // that happens outside any message handler. CAF 0.17 finalizes an actor
    // only after a message handler returns, and `activate()` refuses to run
    // an actor that has no behavior left, so the transport never terminated:
    // its socket stayed open (the peer never saw EOF) and runtime shutdown
    // hung. Finalize it here, on its home shard while it is idle (I/O
    // handlers never run inside a resume). `keep` holds it alive until
    // finalize returned.
    if (!lost_sent_ || exited_) return;
    auto& d = self();
    caf::strong_actor_ptr keep{d.ctrl()};
    d.finalize();
  }

  /// First thing in on_exit (after marking pending I/O handlers dead): the
  /// protocol gets its one `lost` if it has not had it, the connect callback
  /// learns of the failure if it has not run, read credit is disarmed.
  void begin_exit() {
    exited_ = true;
    auto& d = self();
    if (!lost_sent_) {
      // Terminated from outside (runtime shutdown, a crash): the protocol
      // still gets its one `lost`.
      lost_sent_ = true;
      auto reason = d.fail_state();
      if (!reason) reason = make_error(sw_errc::closed);
      if (d.proto_) d.send(d.proto_, lost{std::move(reason)});
    }
    d.report(make_error(sw_errc::closed, "transport exited before connecting"));
    if (d.credit_) d.credit_->disarm();
  }

  /// Last thing in on_exit: finalize's caller holds its own reference while
  /// on_exit runs.
  void end_exit() { self_ref_.reset(); }

  // -- write-buffer watermarks --------------------------------------------

  caf::result<write_buffer_limits>
  set_limits(const set_write_buffer_limits& msg) {
    auto lim = resolve_write_limits(msg);
    if (!lim) return std::move(lim.error());
    high_ = lim->high;
    low_ = lim->low;
    // Lowering `high` can pause at once; raising never resumes here.
    check_pause();
    return *lim;
  }

  write_buffer_limits limits() const noexcept {
    return write_buffer_limits{low_, high_};
  }

  /// After queueing: `pause` once the queue went above `high`.
  void check_pause() {
    auto& d = self();
    auto queued = d.write_bytes();
    if (!write_paused_ && !lost_sent_ &&
        (queued > high_ || (pause_at_high_ && queued == high_))) {
      write_paused_ = true;
      if (auto& m = d.home().metrics(); m.enabled) m.write_pauses.add();
      d.send(d.proto_, shardwire::pause{});
    }
  }

  /// After draining: `resume` once the queue is at or below `low`.
  void check_resume() {
    auto& d = self();
    if (write_paused_ && d.write_bytes() <= low_ && !lost_sent_) {
      write_paused_ = false;
      d.send(d.proto_, shardwire::resume{});
    }
  }

  // -- default hooks ------------------------------------------------------

  void on_finishing() {}

  void on_close_draining() {}

  void on_protocol_gone() {}

  // Held from the moment the protocol exists until the transport ends (real
  // transports; the simulator keeps its actors in its core instead): a
  // transport must not die because nobody keeps its handle (asyncio's loop
  // keeps every transport alive too). Without it, the last handle dropped
  // on another thread (a server's client table, a protocol that keeps no
  // handle) would end the transport there, outside its shard, with `lost`
  // sent on behalf of an actor already being destroyed.
  caf::strong_actor_ptr self_ref_;
  uint64_t high_ = default_high_water;
  uint64_t low_ = default_low_water;
  bool write_paused_ = false; // protocol got `pause`, not yet `resume`
  bool closing_ = false;      // close or abort
  bool lost_sent_ = false;    // `lost` sent (or none is due): the end
  bool exited_ = false;       // on_exit ran
  // asyncio's SSL transports pause at `size >= high` (plain ones at
  // `size > high`): set with a TLS layer.
  bool pause_at_high_ = false;
};

} // namespace shardwire::transport_core
