// The stream transport actor, written once over a byte backend.
//
// Every stream transport is a stream_core<Backend>: TCP, Unix sockets,
// adopted fds and pipes over the fd backend, the simulator's connections
// over the simulated-link backend, the core's unit tests over a script.
// What a backend must do is in stream_backend.hpp; the design note is
// docs/transport-core.md.
//
// The actor runs pinned to its home shard. Readiness comes from the backend
// on the same shard thread while the actor is idle, so it touches the
// actor's state without locks and never re-enters a message handler.
// Everything the protocol sees is a mailbox message from this actor, in
// order: `connected` first (acknowledged before any read), `data` with read
// credit (or, for a protocol that lends buffers, `buffer_filled`), `eof`
// (its reply decides half-open or close), `pause` / `resume` on the
// write-buffer watermarks, `lost` exactly once and last.
//
// A class template, not a virtual backend interface: on the data path (one
// read, one write per echo) the backend's calls inline into the core, as
// the system calls did before the split. Each backend instantiates it once
// in its own .cpp (`template class stream_core<B>;`).
#pragma once

#include "actors/detail/inline_lend.hpp"
#include "actors/errors.hpp"
#include "actors/protocol.hpp"
#include "actors/read_credit.hpp"
#include "runtime/log.hpp"
#include "runtime/pinned.hpp"
#include "runtime/shared_behavior.hpp"
#include "transports/core/stream_backend.hpp"
#include "transports/core/stream_layer.hpp"
#include "transports/core/transport_lifecycle.hpp"
#include "transports/core/write_queue.hpp"
#include "transports/stream.hpp"

#include <caf/actor_cast.hpp>
#include <caf/invoke_message_result.hpp>
#include <caf/typed_response_promise.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/message_id.hpp>

#include <asio/steady_timer.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace shardwire::transport_core {

using stream_transport_actor =
    transport_actor::extend<caf::reacts_to<read_credit_returned>>;

/// Bounds of the adaptive read size (grows while reads fill the buffer).
inline constexpr size_t min_read_size = 4 * 1024;
inline constexpr size_t max_read_size = 256 * 1024;

template <class Backend>
class stream_core final
    : public pinned<stream_transport_actor::base, pinned_role::transport>,
      private io_owner,
      private layer_port,
      private transport_lifecycle<stream_core<Backend>> {
public:
  using lifecycle = transport_lifecycle<stream_core<Backend>>;

  /// The protocol is made with `factory` on the home shard once the backend
  /// started; `done` (may be empty) gets the result. `args` construct the
  /// backend (which owns its resource from now on, even if startup fails).
  template <class... BackendArgs>
  stream_core(caf::actor_config& cfg, protocol_factory factory,
              stream_settings settings, connect_callback done,
              stream_direction direction, BackendArgs&&... args)
      : pinned(cfg), backend_(std::forward<BackendArgs>(args)...),
        startup_(
            new startup{std::move(factory), settings, std::move(done), {}}),
        write_cap_(settings.write_buffer_cap),
        next_read_size_(static_cast<uint32_t>(std::clamp(
            settings.read_chunk_size, min_read_size, max_read_size))),
        reads_follow_writes_(settings.reads_follow_writes),
        direction_(direction) {
    never_uses_receive_timeouts(); // its behavior has no `after` clause
  }

  behavior_type make_behavior() override;
  void on_exit() override;

  /// Handles `write` and `lend_buffer`, the hot message types, without
  /// behavior dispatch.
  caf::invoke_message_result consume(caf::mailbox_element& x) override;

  /// The backend (tests drive a scripted one through it).
  Backend& backend() noexcept { return backend_; }

private:
  friend lifecycle;
  using lifecycle::check_pause;
  using lifecycle::check_resume;
  using lifecycle::closing_;
  using lifecycle::do_abort;
  using lifecycle::do_close;
  using lifecycle::exited_;
  using lifecycle::finalize_if_quit;
  using lifecycle::finish;
  using lifecycle::lost_sent_;
  using lifecycle::pause_at_high_;
  using lifecycle::replace_protocol;
  using lifecycle::write_paused_;

  // -- metrics (runtime/metrics.hpp; home shard thread only) -------------
  shard_metrics* counting() noexcept {
    auto& m = this->home().metrics();
    return m.enabled ? &m : nullptr;
  }
  void count_out(size_t n) noexcept {
    if (auto* m = counting()) m->bytes_out.add(n);
  }
  void count_closed() noexcept {
    // Counted even with collection off: the gauge must not drift if it
    // were switched between open and close (it cannot be today).
    if (counted_open_) this->home().metrics().open_connections.sub();
    counted_open_ = false;
  }

  // -- message handlers (through the per-thread shared behavior) ----------
  static behavior_type make_shared_behavior();
  void do_write_eof();
  void do_pause_reading();
  void do_resume_reading();
  transport_status status() const;

  // -- lifecycle (the rest is in transport_lifecycle) ---------------------
  void on_connected_ack();
  void fatal(int err, const char* op);
  void report(caf::expected<connection> result);
  // Hooks for transport_lifecycle.
  void drop_writes() noexcept { wq_.clear(); }
  // A file being sent counts as queued bytes: close waits for it; so does
  // a TLS close_notify not yet out.
  bool writes_empty() const noexcept {
    return wq_.empty() && !file_ && (!tls_ || tls_closed_out());
  }
  uint64_t write_bytes() const noexcept { return wq_.bytes(); }
  void on_finishing() noexcept {
    read_closed_ = true;
    count_closed();
    // The protocol closed, aborted or wrote inside `connected` and that
    // ended the transport before the acknowledgement: asyncio's
    // create_connection still returns the transport (closing; `lost`
    // follows), so the connect callback gets the connection, not an error.
    if (startup_ && proto_spoke_)
      report(connection{caf::actor_cast<transport_actor>(this), proto_,
                        make_info()});
    // Nothing more is read: give the lease back now. Its keeper may hold
    // the lender (the callback adapter keeps itself alive in it), which
    // holds this transport: kept until destruction, the two would keep
    // each other forever.
    lease_.reset();
    if (file_)
      end_file(make_error(sw_errc::closed,
                          "transport ended before the file was sent"));
    if (tls_ && tls_->upgrading) {
      tls_->upgrading = false;
      auto err = tls_->layer->error();
      tls_->upgrade.deliver(
          err ? err
              : make_error(sw_errc::closed,
                           "the transport ended before start_tls finished"));
    }
  }
  void on_close_draining();
  void on_protocol_gone() noexcept { proto_fast_ = nullptr; }

  // -- layers (TLS; stream_layer.hpp) -------------------------------------
  io_result lower_read(std::span<std::byte> into) override {
    return backend_.read(into);
  }
  io_result lower_write(const std::byte* bytes, size_t n) override {
    if constexpr (requires(Backend & b) { b.write_bytes(bytes, n); }) {
      return backend_.write_bytes(bytes, n);
    } else {
      auto b = buffer::copy_of(bytes, n);
      return backend_.write(&b, 1);
    }
  }
  // One read or write of application bytes: through the layer if any.
  // The layer's side of each is out of line and cold: plain connections
  // pay one pointer test, and the hot functions keep their inlining.
  [[gnu::always_inline]] io_result read_in(std::span<std::byte> into) {
    if (tls_) [[unlikely]]
      return layer_read(into);
    return backend_.read(into);
  }
  [[gnu::always_inline]] io_result write_out(const buffer* parts, size_t n) {
    if (tls_) [[unlikely]]
      return layer_write(parts, n);
    return backend_.write(parts, n);
  }
  [[gnu::noinline, gnu::cold]] io_result layer_read(std::span<std::byte> into) {
    return tls_->layer->read(into);
  }
  [[gnu::noinline, gnu::cold]] io_result layer_write(const buffer* parts,
                                                     size_t n) {
    return tls_->layer->write(parts, n);
  }
  /// sync_interest with a layer: the backend waits for what the layer needs.
  [[gnu::noinline, gnu::cold]] void sync_layer_interest(uint8_t want);
  /// on_io_ready's first step with a layer: the layer moves its bytes;
  /// false if the call ends there (failed, or the handshake still runs),
  /// else `readable` / `writable` say what the application side can do.
  [[gnu::noinline, gnu::cold]] bool layer_ready(bool& readable, bool& writable,
                                                bool failed);
  /// TLS from the first byte: the layer's handshake runs before the
  /// protocol exists (asyncio: connection_made after the handshake).
  bool start_with_layer();
  /// Puts `layer` in place and starts its handshake and its time bound.
  void install_layer(std::unique_ptr<stream_layer> layer,
                     std::chrono::milliseconds bound);
  caf::result<tls_started> on_start_tls(start_tls& msg);
  void on_start_tls_data(start_tls_data& msg);
  /// After the layer moved: the handshake's end (done or failed), a close
  /// that finished.
  void after_layer_moved();
  void on_layer_timer();
  void arm_layer_timer(std::chrono::milliseconds bound);
  /// Another readiness call while the layer holds input the backend no
  /// longer signals.
  void kick_layer();
  bool tls_closed_out() const noexcept;
  /// During close: queues close_notify once; true once it is out.
  bool tls_close_step();
  void send_connected();

  // -- readiness ----------------------------------------------------------
  /// From the backend: readable, writable, or a hang-up / error pending.
  void on_io_ready(bool readable, bool writable, bool failed) override;
  /// Tells the backend what the transport waits for now (read_armed_,
  /// write_armed_, a write pipe's hang-up).
  void sync_interest();

  // -- reading ------------------------------------------------------------
  bool should_read() const noexcept;
  void update_reading();
  /// Reads once; returns the `data` to send (sent by the caller after it
  /// stopped being busy, so the protocol's reply can take the fast path).
  std::optional<data> on_readable();
  /// Reads once into the lent buffer; returns it filled (to send after the
  /// busy mark, like `data`).
  std::optional<buffer_filled> on_readable_lent();
  /// Sends the on-demand lease in `lease_` back to its lender, asking for
  /// memory (buffer_filled with nbytes 0). True when the memory came at
  /// once (the lender co-located and idle: lent in place); false when it
  /// comes later as lend_buffer, or never (the connection ended).
  bool ask_for_lease();
  void on_lend(read_lease& lease);
  /// Delivers `filled` to the co-located protocol on the fast path (false:
  /// it was busy, nothing delivered) and takes a lease lent inside it.
  bool deliver_filled_now(buffer_filled& filled);
  void on_eof();

  // -- writing ------------------------------------------------------------
  /// Queues (or writes at once) `parts`. A write after write_eof is an
  /// error returned only if `is_request`, logged otherwise.
  caf::result<void> enqueue_write(const buffer* parts, size_t n,
                                  bool is_request);
  void arm_write();
  void flush();
  void after_drain();
  /// After the queue grew: `pause` above high, abort past the hard cap.
  void after_queue_grew();
  void warn_dropped_write();

  // -- sending a file (send_file) -----------------------------------------
  caf::result<uint64_t> start_send_file(const send_file& msg);
  /// Sends the file while the write queue is empty and the backend takes
  /// it; arms the write interest when it does not.
  void pump_file();
  /// Replies to the send_file request (the count, or `err`) and forgets it.
  void end_file(caf::error err);
  transport_info make_info() const;

  Backend backend_;
  // Needed only until the protocol acknowledged `connected`; kept apart and
  // freed then, so an established connection does not carry it (~90 B).
  struct startup {
    protocol_factory factory;
    stream_settings settings;
    connect_callback done;
    // What `connected` carried, for `done` (asking the backend again costs
    // two system calls per connection on the accept path).
    transport_info info;
  };
  std::unique_ptr<startup> startup_;
  // A command of the protocol's (write, close, ...) arrived before the
  // `connected` acknowledgement: the protocol has the handle, so it ran its
  // connection_made (see on_finishing).
  bool proto_spoke_ = false;
  protocol_actor proto_;
  // The pinned protocol behind proto_ (nullptr if it is not one): `data` for
  // it may take the fast path in a reused mailbox element.
  pinned_base* proto_fast_ = nullptr;
  read_credit_ptr credit_;
  // The buffer a buffered protocol lent for the next read (empty: none
  // lent now; null: the protocol never lent). Held apart: 8 bytes on every
  // connection instead of 32.
  std::unique_ptr<read_lease> lease_;
  // The send_file in progress, if any (8 bytes on every connection).
  struct file_job {
    int fd = -1;
    uint64_t offset = 0; // next byte of the file
    uint64_t left = 0;   // bytes still to send
    uint64_t sent = 0;
    bool read_self = false; // the backend has no sendfile for this fd
    caf::typed_response_promise<uint64_t> rp;
  };
  std::unique_ptr<file_job> file_;
  // A layer between the core and the backend (TLS), with what its
  // handshake and close need; null on plain connections (8 bytes).
  struct layer_state {
    std::unique_ptr<stream_layer> layer;
    // The handshake's or the close's time bound (on the home io_context;
    // destroyed on the home shard in on_exit).
    std::unique_ptr<asio::steady_timer> timer;
    std::shared_ptr<bool> alive = std::make_shared<bool>(true);
    caf::typed_response_promise<tls_started> upgrade;
    tls_params params;
    uint64_t awaiting = 0;    // start_tls bytes still to be handed back
    bool handshaking = false; // TLS from the start: no protocol yet
    bool upgrading = false;   // start_tls waits for its reply
    bool kick_posted = false;
    bool shutdown_sent = false;
  };
  std::unique_ptr<layer_state> tls_;
  // Bytes delivered to protocols so far (start_tls's `received`).
  uint64_t delivered_ = 0;
  write_queue wq_;
  // Hard cap on wq_.bytes(); 0 = none.
  uint64_t write_cap_ = 0;

  // The small fields together, so they pack (every idle connection carries
  // them).
  uint32_t next_read_size_; // bytes asked per read (<= max_read_size)
  uint32_t dropped_writes_ = 0;
  // Read state.
  bool started_ = false;       // protocol handled `connected`
  bool counted_open_ = false;  // in the shard's open_connections gauge
  bool user_paused_ = false;   // pause_reading
  bool credit_paused_ = false; // read back-pressure
  bool read_closed_ = false;   // EOF seen, close, abort or error
  bool read_armed_ = false;    // read interest registered
  // Write state (watermarks, closing_ and lost_sent_ are in
  // transport_lifecycle).
  bool write_armed_ = false;   // write interest registered
  bool eof_requested_ = false; // write_eof called
  bool eof_sent_ = false;      // half-close done
  bool reads_follow_writes_ = false; // no reading while writes are paused
  bool buffered_ = false; // the protocol lends buffers (buffer_filled)
  stream_direction direction_ = stream_direction::both;
};

// -- starting -----------------------------------------------------------------

template <class B>
transport_info stream_core<B>::make_info() const {
  auto info = this->core_info();
  // A write pipe's write_eof closes it (asyncio says true there too). TLS
  // has no half-close (asyncio: SSL transports cannot write_eof).
  info.can_write_eof = direction_ != stream_direction::read_only && !tls_;
  if (tls_) tls_->layer->describe(info);
  return info;
}

template <class B>
void stream_core<B>::report(caf::expected<connection> result) {
  if (!startup_) return;
  auto f = std::move(startup_->done);
  startup_.reset(); // reported once: the connection is set up or failed
  if (f) f(std::move(result));
}

template <class B>
typename stream_core<B>::behavior_type stream_core<B>::make_behavior() {
  // The backend starts here, on the home shard, not in the constructor
  // (which runs on the spawning thread).
  if (startup_->settings.tls) {
    if (!start_with_layer()) return behavior_type::make_empty_behavior();
  } else {
    if (!this->start_core(startup_->factory, startup_->settings.read_high_water,
                          startup_->settings.read_low_water, direction_))
      return behavior_type::make_empty_behavior();
    send_connected();
  }
  // One behavior per shard thread, shared by all transports of this kind
  // (saves a ~600-byte behavior object per connection); see
  // shared_behavior.hpp.
  return thread_shared_behavior<stream_core, behavior_type>(
      &stream_core::make_shared_behavior);
}

template <class B>
void stream_core<B>::send_connected() {
  auto self_hdl = caf::actor_cast<transport_actor>(this);
  auto info = make_info();
  if (startup_ && startup_->done) startup_->info = info;
  request(proto_, caf::infinite, connected{self_hdl, std::move(info)})
      .then([this] { on_connected_ack(); },
            [this](caf::error& err) { this->connect_failed(std::move(err)); });
}

template <class B>
typename stream_core<B>::behavior_type stream_core<B>::make_shared_behavior() {
  using cur = current_actor<stream_core>;
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
      [](write_eof) -> caf::result<void> {
        auto& self = cur::get();
        if (self.tls_ && !self.lost_sent_ && !self.closing_) {
          auto err = make_error(sw_errc::not_supported,
                                "write_eof: TLS has no half-close (asyncio: "
                                "SSL transports cannot write_eof)");
          if (self.handling_request()) return err;
          log::error(describe(err));
          return caf::unit;
        }
        self.do_write_eof();
        return caf::unit;
      },
      [](close) { cur::get().do_close(); },
      [](abort) { cur::get().do_abort(); },
      [](pause_reading) { cur::get().do_pause_reading(); },
      [](resume_reading) { cur::get().do_resume_reading(); },
      [](set_write_buffer_limits& msg) -> caf::result<write_buffer_limits> {
        return cur::get().set_limits(msg);
      },
      [](get_write_buffer_size) -> uint64_t { return cur::get().wq_.bytes(); },
      [](send_file& msg) -> caf::result<uint64_t> {
        return cur::get().start_send_file(msg);
      },
      [](get_write_buffer_limits) { return cur::get().limits(); },
      [](get_extra_info) { return cur::get().make_info(); },
      [](get_status) { return cur::get().status(); },
      [](set_protocol& msg) {
        auto& self = cur::get();
        if (msg.protocol) {
          // The next protocol reads `data` until it lends a buffer itself
          // (asyncio decides per protocol too); a lease of the previous
          // one goes back to its owner unused.
          self.buffered_ = false;
          self.lease_.reset();
        }
        self.replace_protocol(std::move(msg.protocol)); // refuses a null
      },
      [](get_protocol) { return cur::get().proto_; },
      [](lend_buffer& msg) { cur::get().on_lend(msg.lease); },
      [](start_tls& msg) -> caf::result<tls_started> {
        return cur::get().on_start_tls(msg);
      },
      [](start_tls_data& msg) { cur::get().on_start_tls_data(msg); },
      [](read_credit_returned) { cur::get().on_credit_returned(); },
  };
}

// -- message handlers ---------------------------------------------------------

template <class B>
void stream_core<B>::do_write_eof() {
  if (closing_ || lost_sent_ || eof_requested_) return;
  if (direction_ == stream_direction::read_only) {
    log::warning("write_eof on a read pipe ignored");
    return;
  }
  eof_requested_ = true;
  if (wq_.empty()) after_drain();
}

template <class B>
void stream_core<B>::do_pause_reading() {
  if (closing_) return;
  if (!user_paused_)
    if (auto* m = counting()) m->read_pauses.add();
  user_paused_ = true;
  update_reading();
}

template <class B>
void stream_core<B>::do_resume_reading() {
  if (closing_ || !user_paused_) return;
  user_paused_ = false;
  update_reading();
}

template <class B>
transport_status stream_core<B>::status() const {
  transport_status st;
  st.closing = this->is_closing();
  st.reading = started_ && !user_paused_ && !read_closed_ && !closing_ &&
               direction_ != stream_direction::write_only;
  st.write_buffer_size = wq_.bytes();
  return st;
}

template <class B>
void stream_core<B>::on_exit() {
  lease_.reset(); // as in on_finishing: never outlive the actor's run
  if (tls_) {
    // Timer and posted jobs see the flag; the timer belongs to the home
    // io_context, which is not thread-safe: destroyed here, on its thread.
    *tls_->alive = false;
    tls_->timer.reset();
  }
  count_closed();
  this->exit_core();
}

template <class B>
caf::invoke_message_result stream_core<B>::consume(caf::mailbox_element& x) {
  this->count_delivery();
  if (startup_ && !proto_spoke_) // only until the connection is reported
    proto_spoke_ = x.content().match_elements<shardwire::write>() ||
                   x.content().match_elements<writelines>() ||
                   x.content().match_elements<close>() ||
                   x.content().match_elements<abort>() ||
                   x.content().match_elements<write_eof>() ||
                   x.content().match_elements<lend_buffer>();
  if (this->template consume_hot<shardwire::write>(
          x, [this](shardwire::write& msg) {
            enqueue_write(&msg.bytes, 1, false);
          }))
    return caf::invoke_message_result::consumed;
  // A buffered protocol lends once per read: no behavior dispatch either
  // (it would try every handler above before this one).
  if (this->template consume_hot<lend_buffer>(
          x, [this](lend_buffer& msg) { on_lend(msg.lease); }))
    return caf::invoke_message_result::consumed;
  typename current_actor<stream_core>::scope current{this};
  return this->consume_counted(x);
}

// -- lifecycle ----------------------------------------------------------------

template <class B>
void stream_core<B>::on_connected_ack() {
  // CAF keeps the capacity of its table of pending requests, now empty
  // (the acknowledgement was taken out of it): give it back, since an idle
  // connection sends no further request until EOF. (CAF 0.17.6 moves the
  // handler out of the table before calling it, so it is not in use here.)
  if (multiplexed_responses_.empty()) multiplexed_responses_ = {};
  if (lost_sent_) return;
  started_ = true;
  if (direction_ == stream_direction::both && !counted_open_) {
    counted_open_ = true;
    this->home().metrics().open_connections.add();
  }
  if (startup_ && startup_->done)
    report(connection{caf::actor_cast<transport_actor>(this), proto_,
                      std::move(startup_->info)});
  else
    startup_.reset(); // nobody to tell (a server's connection)
  if (direction_ == stream_direction::write_only)
    sync_interest(); // watch for the reader going away
  else
    update_reading();
}

template <class B>
void stream_core<B>::fatal(int err, const char* op) {
  log::debug("transport ", backend_.kind(), " fd ", backend_.fd(), ": ", op,
             " failed: ", std::strerror(err));
  if (tls_ && err == layer_failed)
    if (auto lerr = tls_->layer->error()) {
      finish(std::move(lerr));
      return;
    }
  finish(make_errno_error(err, op));
}

template <class B>
void stream_core<B>::on_close_draining() {
  read_closed_ = true;
  update_reading(); // stop reading; the write handler finishes once drained
  if (tls_) {
    // asyncio's ssl_shutdown_timeout bounds the whole close, the flush of
    // what is queued included: a peer that reads nothing cannot hold the
    // connection forever.
    if (!tls_->timer) arm_layer_timer(tls_->params.shutdown_timeout);
    // Nothing queued: only the close_notify is left to send.
    if (wq_.empty() && !file_) after_drain();
  }
}

// -- readiness ----------------------------------------------------------------

template <class B>
void stream_core<B>::sync_interest() {
  read_armed_ = should_read();
  uint8_t want = fd_none;
  if (read_armed_) want |= fd_read;
  if (write_armed_) want |= fd_write;
  // A write pipe is never readable; its owner learns of the reader going
  // away as a hang-up. asyncio watches for that with a reader callback on
  // the write end.
  if (direction_ == stream_direction::write_only && started_ && !lost_sent_)
    want |= fd_hangup;
  if (tls_) [[unlikely]] {
    sync_layer_interest(want);
    return;
  }
  if (int err = backend_.want(want); err != 0 && !lost_sent_)
    fatal(err, "epoll_ctl");
}

template <class B>
void stream_core<B>::sync_layer_interest(uint8_t want) {
  auto& layer = *tls_->layer;
  if (int err = backend_.want(layer.lower_interest(want));
      err != 0 && !lost_sent_)
    fatal(err, "epoll_ctl");
  else if (read_armed_ && layer.input_buffered())
    kick_layer();
}

template <class B>
bool stream_core<B>::layer_ready(bool& readable, bool& writable, bool failed) {
  auto& layer = *tls_->layer;
  layer.on_lower_ready(readable, writable, failed);
  after_layer_moved();
  if (lost_sent_ || !started_) {
    // Failed, or the handshake still runs (no protocol to read for).
    if (!lost_sent_) sync_interest();
    return false;
  }
  // What the application side is ready for: the layer's input (and any
  // error, which the read reports), and writing once established.
  readable = readable || failed || layer.input_buffered();
  writable = layer.established();
  return true;
}

template <class B>
void stream_core<B>::on_io_ready(bool readable, bool writable, bool failed) {
  typename pinned::io_handler_scope guard{*this};
  if (tls_) [[unlikely]] {
    if (!layer_ready(readable, writable, failed)) {
      guard.release_busy();
      finalize_if_quit();
      return;
    }
  }
  if (write_armed_ && (failed || writable)) {
    write_armed_ = false; // flush arms again if the backend took too little
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
  std::optional<buffer_filled> filled;
  if (read_armed_ && !lost_sent_ && (failed || readable)) {
    if (buffered_)
      filled = on_readable_lent();
    else
      msg = on_readable();
  }
  // With a buffer just filled, the interest is synced after the delivery
  // below: a protocol on the fast path lends again inside it, and reading
  // stays armed instead of going off and on once per read.
  if (!lost_sent_ && !(filled && proto_))
    sync_interest(); // a no-op unless the interest changed
  guard.release_busy();
  if (filled && !lost_sent_ && proto_) {
    // As `deliver` (the fast path when the protocol is co-located and
    // idle), but the fallback cannot be a typed send: buffer_filled is not
    // in protocol_actor's interface (only a buffered protocol, which lent,
    // gets it).
    if (proto_fast_ == nullptr || !deliver_filled_now(*filled))
      caf::actor_cast<caf::abstract_actor*>(proto_)->enqueue(
          caf::make_mailbox_element(this->ctrl(), caf::make_message_id(), {},
                                    std::move(*filled)),
          this->context());
    // No lease back (a protocol elsewhere, or busy): reading goes off
    // until it comes.
    if (!lost_sent_) update_reading();
    return;
  }
  if (!msg || lost_sent_) {
    // An error (possibly after the read: the data then goes nowhere, since
    // `lost` is last), or the buffer drained after close.
    finalize_if_quit();
    return;
  }
  // Tail send: every state change is done, so the protocol may run now and
  // write back at once.
  this->deliver(*msg);
}

// -- reading ------------------------------------------------------------------

template <class B>
bool stream_core<B>::should_read() const noexcept {
  return direction_ != stream_direction::write_only && started_ &&
         !user_paused_ && !credit_paused_ && !read_closed_ && !lost_sent_ &&
         !(reads_follow_writes_ && write_paused_) &&
         (!buffered_ ||
          (lease_ && (lease_->data != nullptr || lease_->on_demand)));
}

template <class B>
void stream_core<B>::update_reading() {
  // Pausing (by the user or by read credit) and EOF take the read interest
  // away; readiness seen meanwhile is kept by the backend and served on
  // resume.
  if (!exited_) sync_interest();
}

template <class B>
std::optional<data> stream_core<B>::on_readable() {
  if (!should_read())
    return std::nullopt; // paused meanwhile: leave the bytes where they are
  mutable_buffer chunk{next_read_size_};
  auto r = read_in({chunk.data(), chunk.capacity()});
  if (r.bytes > 0) {
    // Adapt the read size: grow while reads fill the buffer, shrink when
    // they use little of it (keeps memory per in-flight message small).
    auto cap = chunk.capacity();
    if (r.bytes == cap && next_read_size_ < max_read_size)
      next_read_size_ *= 2;
    else if (r.bytes < cap / 8 && next_read_size_ > min_read_size)
      next_read_size_ /= 2;
    delivered_ += r.bytes;
    auto bytes = std::move(chunk).freeze(r.bytes);
    auto weight = bytes.footprint();
    credit_->take(weight);
    auto* m = counting();
    if (m != nullptr) m->bytes_in.add(r.bytes);
    if (credit_->must_wait()) {
      credit_paused_ = true; // on_io_ready syncs
      if (m != nullptr) m->read_pauses.add();
    }
    return data{std::move(bytes), read_ticket{credit_, weight}};
  }
  if (r.eof)
    on_eof();
  else if (r.error != 0 && r.error != io_result::would_block)
    fatal(r.error, "read");
  return std::nullopt;
}

template <class B>
std::optional<buffer_filled> stream_core<B>::on_readable_lent() {
  if (!should_read()) return std::nullopt;
  if (lease_->data == nullptr && !ask_for_lease()) return std::nullopt;
  auto r = read_in({lease_->data, static_cast<size_t>(lease_->size)});
  if (r.bytes > 0) {
    delivered_ += r.bytes;
    if (auto* m = counting()) m->bytes_in.add(r.bytes);
    // The bytes are in the lender's memory: the only copy was the
    // backend's (the kernel's). The lease goes back; reading waits for
    // the next one.
    std::optional<buffer_filled> out{
        buffer_filled{std::move(*lease_), static_cast<uint64_t>(r.bytes)}};
    *lease_ = read_lease{}; // kept allocated for the next lease
    return out;
  }
  if (r.eof)
    on_eof();
  else if (r.error != 0 && r.error != io_result::would_block)
    fatal(r.error, "read");
  return std::nullopt;
}

template <class B>
bool stream_core<B>::ask_for_lease() {
  buffer_filled ask{std::move(*lease_), 0};
  *lease_ = read_lease{}; // reading waits for the memory
  if (proto_fast_ != nullptr) {
    // As deliver_filled_now: the lender runs on this stack and lends in
    // place. This transport is still marked busy, so whatever else the
    // lender sends it meanwhile is queued, not run inside this read.
    read_lease next;
    detail::inline_lend wait{static_cast<const pinned_base*>(this), &next};
    auto* outer = std::exchange(detail::awaiting_lend, &wait);
    bool delivered = try_deliver_now(*proto_fast_, ask);
    detail::awaiting_lend = outer;
    if (wait.taken) {
      if (!lost_sent_) on_lend(next); // an empty one ends the connection
      return !lost_sent_ && lease_ && lease_->data != nullptr;
    }
    if (delivered) return false; // no memory (it ended, or lends later)
  }
  caf::actor_cast<caf::abstract_actor*>(proto_)->enqueue(
      caf::make_mailbox_element(this->ctrl(), caf::make_message_id(), {},
                                std::move(ask)),
      this->context());
  return false;
}

template <class B>
bool stream_core<B>::deliver_filled_now(buffer_filled& filled) {
  // The protocol lends its next buffer inside this delivery: it comes back
  // in place (detail/inline_lend.hpp), not as a lend_buffer message.
  read_lease next;
  detail::inline_lend wait{static_cast<const pinned_base*>(this), &next};
  auto* outer = std::exchange(detail::awaiting_lend, &wait);
  bool delivered = try_deliver_now(*proto_fast_, filled);
  detail::awaiting_lend = outer;
  if (wait.taken && !lost_sent_) {
    on_lend(next);
    // An empty lease ends the connection, here outside any handler.
    if (lost_sent_) finalize_if_quit();
  }
  return delivered;
}

template <class B>
void stream_core<B>::on_lend(read_lease& lease) {
  if (lost_sent_ || read_closed_ || closing_)
    return; // nothing more will be read: the lease goes back unused
  if (lease.on_demand) {
    // No memory yet: asked for right before each read (ask_for_lease).
    if (!lease_) lease_ = std::make_unique<read_lease>();
    *lease_ = std::move(lease);
    lease_->data = nullptr;
    lease_->size = 0;
    buffered_ = true;
    update_reading();
    return;
  }
  if (lease.size == 0 || lease.data == nullptr) {
    // asyncio: "get_buffer() returned an empty buffer" is fatal.
    finish(make_error(sw_errc::invalid_argument,
                      "lend_buffer with an empty buffer (get_buffer must "
                      "return at least one byte)"));
    return;
  }
  if (!lease_) lease_ = std::make_unique<read_lease>();
  *lease_ = std::move(lease);
  buffered_ = true;
  update_reading();
}

template <class B>
void stream_core<B>::on_eof() {
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
            if (keep_open && tls_) {
              // asyncio: "returning true from eof_received() has no
              // effect when using ssl": TLS has no half-open state.
              log::warning("eof kept open on a TLS transport: closing");
              keep_open = false;
            }
            if (!keep_open) do_close();
          },
          [](caf::error& err) {
            // The protocol died while handling eof; the down handler aborts.
            log::debug("eof request failed: ", describe(err));
          });
}

// -- writing ------------------------------------------------------------------

template <class B>
void stream_core<B>::warn_dropped_write() {
  // asyncio logs from the 5th dropped write on; logging every one would let a
  // tight writer flood the log.
  ++dropped_writes_;
  if (dropped_writes_ == 1 || dropped_writes_ % 1000 == 0)
    log::warning("write on closed transport (", backend_.kind(),
                 ") dropped (", dropped_writes_, " so far)");
}

template <class B>
caf::result<void> stream_core<B>::enqueue_write(const buffer* parts, size_t n,
                                                bool is_request) {
  if (lost_sent_ || closing_) {
    warn_dropped_write();
    return caf::unit;
  }
  if (file_) [[unlikely]] {
    auto err = make_error(sw_errc::not_supported,
                          "write() while send_file is in progress");
    if (is_request) return err;
    log::error(describe(err), ": dropped");
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
  const bool was_empty = wq_.empty();
  if (was_empty && n == 1) {
    // Nothing queued: try to send right away (as asyncio does) and queue
    // only what the backend did not take.
    auto r = write_out(parts, 1);
    if (r.error != 0 && r.error != io_result::would_block) {
      fatal(r.error, "write");
      return caf::unit;
    }
    skip = r.bytes;
    count_out(r.bytes);
  }
  for (size_t i = 0; i < n; ++i) {
    auto& p = parts[i];
    if (skip >= p.size()) { // written, or empty (never queued)
      skip -= p.size();
      continue;
    }
    wq_.push(skip == 0 ? p : p.slice(skip));
    skip = 0;
  }
  // writelines into an empty queue: write it out now, from the queue,
  // which holds no empty part (a backend is never offered one).
  if (was_empty && n > 1) flush();
  if (!wq_.empty()) {
    arm_write();
    after_queue_grew();
  }
  return caf::unit;
}

template <class B>
void stream_core<B>::after_queue_grew() {
  if (write_cap_ != 0 && wq_.bytes() > write_cap_) {
    // A protocol that ignores `pause` against a peer that does not read
    // would grow this queue without bound: end it here, loudly.
    auto queued = wq_.bytes();
    log::warning("transport ", backend_.kind(), " fd ", backend_.fd(),
                 ": write buffer at ", queued, " bytes passed its cap of ",
                 write_cap_, "; connection aborted");
    finish(make_error(sw_errc::write_buffer_overflow,
                      std::to_string(queued) +
                          " unsent bytes passed the write buffer cap of " +
                          std::to_string(write_cap_) +
                          " (--shardwire.write-buffer-cap): the peer does "
                          "not read and the protocol ignored pause"));
    return;
  }
  check_pause();
  // Reading stops with the next readiness call (on_readable asks
  // should_read first); no interest change is needed until then.
}

template <class B>
void stream_core<B>::arm_write() {
  if (write_armed_ || !backend_.is_open()) return;
  write_armed_ = true;
  sync_interest();
}

template <class B>
void stream_core<B>::flush() {
  while (!wq_.empty()) {
    size_t count = 0;
    auto* parts = wq_.pending(count);
    count = std::min(count, B::max_parts);
    size_t offered = 0;
    for (size_t i = 0; i < count; ++i)
      offered += parts[i].size();
    auto r = write_out(parts, count);
    if (r.error == io_result::would_block) break; // full: wait
    if (r.error != 0) {
      fatal(r.error, "write");
      return;
    }
    wq_.consume(r.bytes);
    count_out(r.bytes);
    if (r.bytes < offered) break; // took less than offered: wait
  }
  bool was_paused = write_paused_;
  check_resume();
  if (reads_follow_writes_ && was_paused && !write_paused_) update_reading();
  if (wq_.empty())
    after_drain();
  else
    arm_write();
}

template <class B>
void stream_core<B>::after_drain() {
  if (lost_sent_) return;
  if (file_) {
    pump_file();
    if (file_ || !wq_.empty() || lost_sent_) return; // not done yet
  }
  if (eof_requested_ && !eof_sent_ && backend_.is_open()) {
    eof_sent_ = true;
    if (direction_ == stream_direction::write_only) {
      // A pipe has no half-close: write_eof closes it (asyncio), which the
      // protocol sees as a clean `lost`.
      closing_ = true;
      read_closed_ = true;
    } else {
      backend_.shutdown_write();
    }
  }
  if (closing_) {
    if (tls_ && !tls_close_step()) return; // close_notify still going out
    finish({});
  }
}

// -- sending a file -------------------------------------------------------------

template <class B>
caf::result<uint64_t> stream_core<B>::start_send_file(const send_file& msg) {
  if (lost_sent_ || closing_)
    return make_error(sw_errc::closed, "send_file on a closing transport");
  if (direction_ == stream_direction::read_only)
    return make_error(sw_errc::not_supported, "send_file on a read pipe");
  if (eof_requested_)
    return make_error(sw_errc::write_after_eof,
                      "Cannot call send_file() after write_eof()");
  if (file_)
    return make_error(sw_errc::invalid_argument,
                      "send_file while another send_file is in progress");
  struct stat st;
  if (msg.fd < 0 || ::fstat(msg.fd, &st) != 0)
    return make_error(sw_errc::invalid_argument,
                      "send_file: bad file descriptor " +
                          std::to_string(msg.fd));
  if (!S_ISREG(st.st_mode))
    return make_error(sw_errc::invalid_argument,
                      "send_file: descriptor " + std::to_string(msg.fd) +
                          " is not a regular file");
  auto size = static_cast<uint64_t>(st.st_size);
  uint64_t left = msg.count;
  if (left == 0) left = size > msg.offset ? size - msg.offset : 0;
  if (left == 0) return uint64_t{0};
  file_ = std::make_unique<file_job>();
  file_->fd = msg.fd;
  file_->offset = msg.offset;
  file_->left = left;
  file_->rp = this->template make_response_promise<uint64_t>();
  auto rp = file_->rp;
  // After what is queued (asyncio flushes first): the queue's drain pumps.
  if (wq_.empty()) pump_file();
  return rp;
}

template <class B>
void stream_core<B>::end_file(caf::error err) {
  auto job = std::move(file_);
  if (err)
    job->rp.deliver(std::move(err));
  else
    job->rp.deliver(job->sent);
}

template <class B>
void stream_core<B>::pump_file() {
  // Bytes per system call: large enough that the calls cost little, small
  // enough that one chunk read by the core stays a modest allocation.
  constexpr size_t file_chunk = 64 * 1024;
  while (file_ && !lost_sent_ && wq_.empty()) {
    auto& job = *file_;
    if (job.left == 0) {
      end_file({});
      return;
    }
    const auto n = static_cast<size_t>(std::min<uint64_t>(job.left, file_chunk));
    if constexpr (requires(B& b, uint64_t& off) { b.send_file(0, off, n); }) {
      if (tls_) job.read_self = true; // TLS encrypts: no sendfile(2)
      if (!job.read_self) {
        auto r = backend_.send_file(job.fd, job.offset, n);
        if (r.error == EINVAL || r.error == ENOSYS) {
          job.read_self = true; // this descriptor pair cannot: read it
          continue;
        }
        if (r.error == io_result::would_block) {
          arm_write();
          return;
        }
        if (r.error != 0) {
          // The socket's errors end the connection as a failed write does;
          // the file's (EIO, ...) end only the request.
          end_file(make_errno_error(r.error, "sendfile"));
          if (r.error == EPIPE || r.error == ECONNRESET ||
              r.error == ENOTCONN || r.error == ETIMEDOUT)
            fatal(r.error, "sendfile");
          return;
        }
        if (r.bytes == 0) { // the file is shorter than asked
          end_file({});
          return;
        }
        job.left -= r.bytes;
        job.sent += r.bytes;
        count_out(r.bytes);
        continue;
      }
    }
    // Without sendfile: one chunk through user space, written as `write`
    // writes (what the backend does not take waits in the queue; the
    // protocol gets no pause for it).
    mutable_buffer chunk{n};
    ssize_t got;
    do {
      got = ::pread(job.fd, chunk.data(), n, static_cast<off_t>(job.offset));
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
      end_file(make_errno_error(errno, "pread"));
      return;
    }
    if (got == 0) {
      end_file({});
      return;
    }
    auto bytes = std::move(chunk).freeze(static_cast<size_t>(got));
    job.offset += bytes.size();
    job.left -= bytes.size();
    job.sent += bytes.size();
    auto w = write_out(&bytes, 1);
    if (w.error != 0 && w.error != io_result::would_block) {
      end_file(make_errno_error(w.error, "write"));
      fatal(w.error, "write");
      return;
    }
    count_out(w.bytes);
    if (w.bytes < bytes.size()) {
      wq_.push(w.bytes == 0 ? bytes : bytes.slice(w.bytes));
      arm_write();
      return;
    }
  }
}

// -- layers (TLS)
// ---------------------------------------------------------------

template <class B>
void stream_core<B>::install_layer(std::unique_ptr<stream_layer> layer,
                                   std::chrono::milliseconds bound) {
  if (!tls_) tls_ = std::make_unique<layer_state>();
  tls_->layer = std::move(layer);
  // asyncio's SSL transport limits (C45), unless the protocol set its own.
  if (this->high_ == default_high_water && this->low_ == default_low_water) {
    this->high_ = tls_default_high_water;
    this->low_ = tls_default_low_water;
  }
  this->pause_at_high_ = true;
  arm_layer_timer(bound);
  layer_port& port = *this;
  tls_->layer->start(port);
}

template <class B>
bool stream_core<B>::start_with_layer() {
  auto& st = *startup_;
  if (!this->start_backend(direction_)) return false;
  auto layer = make_tls_layer(st.settings.tls);
  if (!layer) {
    this->abandon_start(std::move(layer.error()));
    return false;
  }
  this->hold_self(); // the handshake runs before anyone holds a handle
  install_layer(std::move(*layer), st.settings.tls.handshake_timeout);
  tls_->params = st.settings.tls;
  tls_->handshaking = true;
  after_layer_moved(); // a client's hello may have failed to go out
  if (lost_sent_) return false;
  sync_interest();
  return true;
}

template <class B>
void stream_core<B>::arm_layer_timer(std::chrono::milliseconds bound) {
  if (bound.count() <= 0) {
    tls_->timer.reset();
    return;
  }
  if (!tls_->timer)
    tls_->timer = std::make_unique<asio::steady_timer>(this->home().io());
  tls_->timer->expires_after(bound);
  tls_->timer->async_wait(
      [this, alive = tls_->alive](const std::error_code& ec) {
        if (ec || !*alive) return; // cancelled, or the actor exited
        on_layer_timer();
      });
}

template <class B>
void stream_core<B>::on_layer_timer() {
  typename pinned::io_handler_scope guard{*this};
  if (lost_sent_ || !tls_) {
    guard.release_busy();
    return;
  }
  auto ms = [](std::chrono::milliseconds d) {
    return std::to_string(d.count()) + " ms";
  };
  if (tls_->handshaking || tls_->upgrading) {
    auto err = make_error(tls_errc::handshake_timeout,
                          "no TLS handshake within " +
                              ms(tls_->params.handshake_timeout));
    if (tls_->handshaking) {
      this->abandon_start(std::move(err));
    } else {
      tls_->upgrading = false;
      tls_->upgrade.deliver(err);
      finish(std::move(err));
    }
  } else if (closing_) {
    // asyncio's ssl_shutdown_timeout: the peer did not take the rest.
    finish(make_error(sw_errc::timeout, "TLS close did not finish within " +
                                            ms(tls_->params.shutdown_timeout) +
                                            ": connection dropped"));
  }
  guard.release_busy();
  finalize_if_quit();
}

template <class B>
void stream_core<B>::kick_layer() {
  if (tls_->kick_posted) return;
  tls_->kick_posted = true;
  this->home().post(
      [this, keep = caf::strong_actor_ptr{this->ctrl()}, alive = tls_->alive] {
        if (!*alive || exited_) return;
        tls_->kick_posted = false;
        on_io_ready(false, false, false);
      });
}

template <class B>
bool stream_core<B>::tls_closed_out() const noexcept {
  auto& layer = *tls_->layer;
  if (!layer.established() || layer.error()) return true; // nothing to say
  return tls_->shutdown_sent && !layer.output_pending();
}

template <class B>
bool stream_core<B>::tls_close_step() {
  if (tls_closed_out()) return true;
  if (!tls_->shutdown_sent) {
    tls_->shutdown_sent = true;
    if (!tls_->timer) arm_layer_timer(tls_->params.shutdown_timeout);
    tls_->layer->shutdown();
  }
  if (tls_closed_out()) return true;
  sync_interest(); // the backend's write readiness moves the rest
  return false;
}

template <class B>
void stream_core<B>::after_layer_moved() {
  auto& layer = *tls_->layer;
  if (auto err = layer.error(); err && !lost_sent_) {
    if (tls_->handshaking) {
      tls_->handshaking = false;
      this->abandon_start(std::move(err));
      return;
    }
    if (tls_->upgrading) {
      tls_->upgrading = false;
      tls_->upgrade.deliver(err);
    }
    finish(std::move(err));
    return;
  }
  if (!layer.established()) return;
  if (tls_->handshaking) {
    tls_->handshaking = false;
    tls_->timer.reset();
    // Now the protocol: credit, factory, monitor, `connected`.
    if (!this->start_protocol(startup_->factory,
                              startup_->settings.read_high_water,
                              startup_->settings.read_low_water))
      return;
    send_connected();
  } else if (tls_->upgrading) {
    tls_->upgrading = false;
    tls_->timer.reset();
    // The reply before any decrypted byte: the protocol learns of TLS
    // first.
    tls_->upgrade.deliver(tls_started{make_info()});
  }
  if (closing_ && !lost_sent_ && wq_.empty() && !file_ && tls_->shutdown_sent &&
      !layer.output_pending())
    finish({});
}

template <class B>
caf::result<tls_started> stream_core<B>::on_start_tls(start_tls& msg) {
  if (lost_sent_ || closing_)
    return make_error(sw_errc::closed, "start_tls on a closing transport");
  // Any other refusal ends the connection: the protocol may already be
  // handing bytes back (start_tls_data), and they would have nowhere to go.
  auto refuse = [this](caf::error err) -> caf::result<tls_started> {
    finish(err);
    return err;
  };
  if (tls_)
    return refuse(make_error(sw_errc::invalid_argument,
                             "start_tls on a transport that already runs TLS"));
  if (direction_ != stream_direction::both)
    return refuse(make_error(sw_errc::not_supported, "start_tls on a pipe"));
  if (!msg.tls)
    return refuse(make_error(sw_errc::invalid_argument,
                             "start_tls without a TLS context"));
  if (msg.received > delivered_)
    return refuse(make_error(sw_errc::invalid_argument,
                             "start_tls: received " +
                                 std::to_string(msg.received) +
                                 " bytes, but the transport delivered " +
                                 std::to_string(delivered_)));
  if (!wq_.empty() || file_)
    return refuse(make_error(sw_errc::not_supported,
                             "start_tls with " + std::to_string(wq_.bytes()) +
                                 " plaintext bytes still queued: wait until "
                                 "the write buffer is empty"));
  auto layer = make_tls_layer(msg.tls);
  if (!layer) return refuse(std::move(layer.error()));
  tls_ = std::make_unique<layer_state>();
  tls_->params = msg.tls;
  tls_->awaiting = delivered_ - msg.received;
  tls_->upgrading = true;
  tls_->upgrade = this->template make_response_promise<tls_started>();
  auto rp = tls_->upgrade;
  if (tls_->awaiting > 0) (*layer)->hold_input(true);
  if (!msg.early.empty()) (*layer)->feed(msg.early);
  install_layer(std::move(*layer), msg.tls.handshake_timeout);
  // The early bytes may hold the peer's whole hello: move on now.
  tls_->layer->on_lower_ready(false, false, false);
  after_layer_moved();
  if (!lost_sent_) sync_interest();
  return rp;
}

template <class B>
void stream_core<B>::on_start_tls_data(start_tls_data& msg) {
  if (!tls_ || lost_sent_ || msg.bytes.empty()) return;
  if (msg.bytes.size() > tls_->awaiting) {
    finish(make_error(sw_errc::invalid_argument,
                      "start_tls_data: more bytes handed back than the "
                      "transport delivered after start_tls"));
    return;
  }
  tls_->layer->feed(msg.bytes);
  tls_->awaiting -= msg.bytes.size();
  if (tls_->awaiting == 0) tls_->layer->hold_input(false);
  tls_->layer->on_lower_ready(false, false, false);
  after_layer_moved();
  if (!lost_sent_) sync_interest();
}

} // namespace shardwire::transport_core
