// What the three callback-style protocol adapters (stream, datagram,
// subprocess) have in common, written once: the handle's way of sending to
// its transport (with the fast path) and the pinned actor that runs a
// callback protocol, with asyncio's exception policy. Private to actors/:
// each public header keeps its own classes and contract, and its .cpp only
// what is specific to its kind.
#pragma once

#include "actors/errors.hpp"
#include "actors/messages.hpp"
#include "runtime/log.hpp"
#include "runtime/pinned.hpp"
#include "runtime/shared_behavior.hpp"

#include <caf/actor_cast.hpp>
#include <caf/behavior.hpp>
#include <caf/error.hpp>
#include <caf/invoke_message_result.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/message_id.hpp>
#include <caf/message_priority.hpp>
#include <caf/scheduled_actor.hpp>

#include <exception>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace shardwire::detail {

// -- transport_link -----------------------------------------------------------

/// A protocol actor's line to its transport: who sends (`self`), to whom, and
/// how. Every message carries `self` as its sender, except those that take
/// the fast path (`send_fast`, when `FastPath`): a co-located transport that
/// is idle handles them at once, in this thread's reused mailbox element, so
/// they carry no sender. Runs on the protocol actor's thread only.
template <class Handle, bool FastPath>
class transport_link {
public:
  /// Binds to `transport`; `self` must outlive this object.
  void bind(caf::scheduled_actor* self, Handle transport) {
    self_ = self;
    hdl_ = std::move(transport);
    // A dynamic_cast: once per connection, not per message.
    if constexpr (FastPath) fast_ = pinned_base::of(hdl_);
  }

  const Handle& handle() const noexcept { return hdl_; }

  /// The pinned transport behind the handle (nullptr: not one, or no fast
  /// path): the identity detail::lend_in_place compares.
  const void* fast_target() const noexcept {
    if constexpr (FastPath)
      return fast_;
    else
      return nullptr;
  }

  /// Sends `msg` asynchronously (dropped while unbound).
  // Never inlined: inside `send_fast` this fallback would cost the fast
  // path a larger frame (~10 instructions per write on the data path).
  template <class T>
  [[gnu::noinline]] void send(T&& msg) {
    if (!hdl_) return;
    caf::actor_cast<caf::abstract_actor*>(hdl_)->enqueue(
        caf::make_mailbox_element(self_->ctrl(), caf::make_message_id(), {},
                                  std::forward<T>(msg)),
        self_->context());
  }

  /// Sends `msg` asynchronously; a co-located idle transport handles it
  /// before this returns. Its empty mailbox guarantees that `msg` overtakes
  /// nothing sent earlier. Only for messages the transport treats the same
  /// with or without a sender (no reply goes anywhere).
  template <class T>
  void send_fast(T&& msg) {
    static_assert(FastPath, "this link has no fast path");
    static_assert(!std::is_lvalue_reference_v<T>, "pass the message by value");
    if (fast_ == nullptr || !try_deliver_now(*fast_, msg)) send(std::move(msg));
  }

  /// Sends `msg` as a request; the reply (or error) goes to `on_reply`, so
  /// that a refusal is reported instead of lost. A plain send with an error
  /// reply would reach `self`'s error handler (CAF 0.17: quit).
  template <class T>
  void ask(T&& msg, caf::behavior on_reply) {
    if (!hdl_) return;
    auto mid = self_->new_request_id(caf::message_priority::normal);
    caf::actor_cast<caf::abstract_actor*>(hdl_)->enqueue(
        caf::make_mailbox_element(self_->ctrl(), mid, {}, std::forward<T>(msg)),
        self_->context());
    self_->add_multiplexed_response_handler(mid.response_id(),
                                            std::move(on_reply));
  }

private:
  struct no_fast_path {};

  caf::scheduled_actor* self_ = nullptr;
  Handle hdl_;
  // The pinned transport behind hdl_, nullptr if it is not one (or the
  // link has no fast path: then this member takes no space).
  [[no_unique_address]] std::conditional_t<FastPath, pinned_base*, no_fast_path>
      fast_{};
};

// -- callback_adapter ---------------------------------------------------------

/// The pinned actor running one callback-style protocol (`Protocol`, e.g.
/// `datagram_protocol`) behind typed interface `Interface` with transport
/// handle `Ref`. One per connection, on the shard of its transport.
///
/// `Derived` (CRTP) supplies what is specific to its kind, and befriends
/// this class to do so:
/// - `static constexpr const char* kind`: the protocol's name in logs;
/// - `using connected_message`: the first message (its `transport` and
///   `info` are bound to the handle, then `connection_made` runs);
/// - `void on_hot(const Hot&)`: the data-path message;
/// - `static auto handlers()`: a tuple of its other message handlers (no
///   captures: they find their actor through `current()`);
/// - `make_behavior()`, out of line, returning `shared_behavior()`;
/// - optionally `void after_connection_made()`, run after connection_made.
///
/// What it does for every kind:
/// - one behavior per shard thread for all adapters of a kind (see
///   runtime/shared_behavior.hpp), no receive timeout (so fast-path
///   deliveries skip CAF's timeout bookkeeping: see
///   pinned::never_uses_receive_timeouts);
/// - `consume` hands an asynchronous `Hot` to `on_hot` without pattern
///   matching (the data path), everything else to CAF;
/// - `pause` / `resume` run pause_writing / resume_writing, `lost` runs
///   connection_lost once and ends the actor;
/// - the exception policy (asyncio's): a callback run through `logged` has
///   its exception logged and the connection carries on; one run through
///   `fatal` aborts the transport and ends the connection with
///   `sw_errc::protocol_failed`, which connection_lost receives. Which
///   callbacks are fatal is the kind's (documented in its header).
template <class Derived, class Interface, class Protocol, class Ref, class Hot>
class callback_adapter : public pinned<typename Interface::base> {
public:
  using super = pinned<typename Interface::base>;
  using behavior_type = typename super::behavior_type;

  caf::invoke_message_result consume(caf::mailbox_element& x) override {
    this->count_delivery();
    auto& content = x.content();
    if (x.mid.is_async() && content.template match_elements<Hot>()) {
      // As CAF's consume() does: user code may ask for the current element
      // (current_sender(), ...) inside the callback.
      this->current_element_ = &x;
      derived().on_hot(content.template get_as<Hot>(0));
      return caf::invoke_message_result::consumed;
    }
    typename current_actor<Derived>::scope current{&derived()};
    return this->consume_counted(x);
  }

protected:
  callback_adapter(caf::actor_config& cfg, std::unique_ptr<Protocol> impl)
      : super(cfg), impl_(std::move(impl)) {
    // Its shared behavior has no `after` clause, and protocols may not
    // replace it (see the protocols' self()).
    this->never_uses_receive_timeouts();
  }

  /// The behavior of every `Derived` on this thread. For `make_behavior`,
  /// which `Derived` defines out of line (its vtable's key function), so
  /// that its handlers are compiled in its own .cpp only.
  behavior_type shared_behavior() {
    return thread_shared_behavior<Derived, behavior_type>(
        &callback_adapter::make_shared_behavior);
  }

  /// The adapter whose message is being handled on this thread (inside
  /// the handlers of the shared behavior).
  static Derived& current() noexcept { return current_actor<Derived>::get(); }

  // -- the exception policy ---------------------------------------------------

  /// Runs callback `f`; an exception is logged, the connection carries on.
  /// Returns whether `f` returned normally.
  template <class F>
  bool logged(const char* callback, F&& f) {
    try {
      f();
      return true;
    } catch (const std::exception& e) {
      log::error(Derived::kind, ".", callback, "() failed: ", e.what());
    } catch (...) {
      log::error(Derived::kind, ".", callback,
                 "() threw a non-standard exception");
    }
    return false;
  }

  /// Runs callback `f`; an exception aborts the transport and ends the
  /// connection (connection_lost gets `sw_errc::protocol_failed`). Returns
  /// whether `f` returned normally.
  // Always inlined: it wraps data_received on every read (its catch
  // blocks are cold), and GCC otherwise makes it a call.
  template <class F>
  [[gnu::always_inline]] bool fatal(const char* callback, F&& f) {
    try {
      f();
      return true;
    } catch (const std::exception& e) {
      log::error("Fatal error: ", Derived::kind, ".", callback,
                 "() call failed: ", e.what());
      fail(make_error(sw_errc::protocol_failed,
                      std::string{callback} + ": " + e.what()));
    } catch (...) {
      log::error(Derived::kind, ".", callback,
                 "() threw a non-standard exception");
      fail(make_error(sw_errc::protocol_failed, callback));
    }
    return false;
  }

  /// Runs connection_lost (once) and ends the actor.
  void finish(const caf::error& reason) {
    if (finished_) return;
    finished_ = true;
    // asyncio: a stream or datagram transport is closing by the time
    // connection_lost runs (C5); a subprocess transport only if close()
    // was called (C83), which its handle marks itself.
    if constexpr (!requires { Ref::closing_only_by_close; })
      transport_.mark_closing();
    logged("connection_lost", [&] { impl_->connection_lost(reason); });
    this->quit();
  }

  std::unique_ptr<Protocol> impl_;
  // [[no_unique_address]]: finished_ may live in the handle's tail padding
  // (8 bytes less per connection).
  [[no_unique_address]] Ref transport_;
  bool finished_ = false;

private:
  Derived& derived() noexcept { return static_cast<Derived&>(*this); }

  void fail(const caf::error& reason) {
    transport_.abort();
    finish(reason);
  }

  template <class Connected>
  void on_connected(Connected& msg) {
    transport_.bind(this, std::move(msg.transport), std::move(msg.info));
    logged("connection_made", [&] { impl_->connection_made(transport_); });
    // A kind that starts something once the protocol knows its transport
    // (the buffered protocol lends its first buffer).
    if constexpr (requires(Derived& d) { d.after_connection_made(); })
      derived().after_connection_made();
  }

  static behavior_type make_shared_behavior() {
    using connected_message = typename Derived::connected_message;
    return std::apply(
        [](auto... specific) -> behavior_type {
          return {
              [](connected_message& msg) { current().on_connected(msg); },
              [](const Hot& msg) { current().on_hot(msg); },
              specific...,
              [](shardwire::pause) {
                auto& self = current();
                self.logged("pause_writing",
                            [&] { self.impl_->pause_writing(); });
              },
              [](shardwire::resume) {
                auto& self = current();
                self.logged("resume_writing",
                            [&] { self.impl_->resume_writing(); });
              },
              [](const shardwire::lost& msg) { current().finish(msg.reason); },
          };
        },
        Derived::handlers());
  }
};

} // namespace shardwire::detail
