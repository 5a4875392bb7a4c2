// Actors pinned to a shard.
//
// `pinned<Base>` wraps a CAF event-based actor class (untyped, typed or
// stateful) so that it only ever runs on its home shard's thread. It forces
// its home shard as the execution unit in `enqueue` and `launch`, whichever
// unit the sender passed (the trick CAF's own brokers use), and checks in
// `resume` that it really runs there.
//
// Fast path for co-located actors: a message sent on the home shard's thread
// to a pinned actor that is idle (its mailbox blocked: nothing queued, not
// scheduled) and not busy is handled at once, inside the send, instead of
// being queued and picked up by the run queue. It never overtakes a queued
// message (the mailbox is empty) and never re-enters an actor mid-handler:
// an actor is busy while it runs (resume or a fast activation) and while one
// of its I/O handlers runs (`busy_scope`). Nesting is bounded; past the bound
// messages take the queue. Semantics stay those of message passing; only the
// queueing is skipped. It is switched by `runtime_config::fast_path`.
//
// Spawn pinned actors with `spawn_on`, never with `actor_system::spawn`: the
// home shard travels in `actor_config::host`.
#pragma once

#include "runtime/log.hpp"
#include "runtime/shard.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_config.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/message_id.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <cstdlib>
#include <tuple>
#include <type_traits>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

namespace shardwire {

namespace detail {

[[noreturn]] void pinned_violation(const char* what);

/// Depth of nested fast-path activations on this thread.
extern thread_local int fast_path_depth;

/// Bound on nested fast-path activations (keeps the stack small).
constexpr int max_fast_path_depth = 8;

// ThreadSanitizer builds (`make tsan`): CAF hands a message from its sender
// to its receiver through a lock-free mailbox inside libcaf_core.so, which
// Debian does not instrument, so TSan cannot see that the sender's writes
// (the message, and the buffers it owns) happen before the handler's reads.
// Every message to a pinned actor passes `enqueue` and then `consume`, both
// here: they say so explicitly, per mailbox element, exactly as an
// instrumented queue would. No code at all in other builds.
inline void tsan_message_sent([[maybe_unused]] caf::mailbox_element* x) {
#if defined(__SANITIZE_THREAD__)
  __tsan_release(x);
#endif
}

inline void tsan_message_received([[maybe_unused]] caf::mailbox_element* x) {
#if defined(__SANITIZE_THREAD__)
  __tsan_acquire(x);
#endif
}

inline shard* checked_home(caf::actor_config& cfg) {
  auto* s = dynamic_cast<shard*>(cfg.host);
  if (s == nullptr) pinned_violation("pinned actor spawned without spawn_on()");
  return s;
}

} // namespace detail

/// The part of every pinned actor a co-located sender can call directly.
class pinned_base {
public:
  virtual ~pinned_base() = default;

  /// Handles `elem` now if this actor may take the fast path (same thread,
  /// idle, not busy). Returns false, leaving `elem` as it was, when the
  /// message must be queued instead. On true, `elem` stays with the caller
  /// for reuse, unless the actor skipped it: then it went to the mailbox and
  /// `elem` is null.
  virtual bool deliver_now(caf::mailbox_element_ptr& elem) = 0;

  /// The pinned actor behind `hdl`, or nullptr (an ordinary or remote
  /// actor). Costs a dynamic_cast: look it up once, not per message.
  template <class Handle>
  static pinned_base* of(const Handle& hdl) {
    if (!hdl) return nullptr;
    auto* ptr = caf::actor_cast<caf::abstract_actor*>(hdl);
    return dynamic_cast<pinned_base*>(ptr);
  }
};

namespace detail {

/// Reusable mailbox elements, one per message type, owned by a shard
/// thread (created and destroyed with it). Fast-path deliveries are
/// synchronous, so an element is free again when delivery returns; nested
/// deliveries find the slot empty and allocate.
struct spare_store {
  static constexpr size_t max_types = 8;
  caf::mailbox_element_ptr slots[max_types];
};

/// This thread's store: set on shard threads only, null elsewhere. A plain
/// pointer, so reading it costs no TLS guard.
extern thread_local spare_store* spares;

size_t next_spare_id() noexcept;

template <class T>
size_t spare_id() noexcept {
  static const size_t id = next_spare_id();
  return id;
}

} // namespace detail

/// Hands `msg` to `target` at once, in this thread's reused mailbox element,
/// if `target` can take it now (see pinned_base::deliver_now). Returns false,
/// with `msg` unchanged, when the caller must send it the normal way. What
/// the handler left in the message is destroyed before this returns, as if
/// the message had been queued and consumed.
template <class T>
bool try_deliver_now(pinned_base& target, T& msg) {
  auto* store = detail::spares;
  if (store == nullptr)
    return false; // not a shard thread: no fast path here anyway
  auto& spare = store->slots[detail::spare_id<T>()];
  auto elem = std::move(spare);
  if (!elem)
    // No sender: the element must not keep any actor alive.
    elem = caf::make_mailbox_element(nullptr, caf::make_message_id(), {}, T{});
  auto& slot = *static_cast<T*>(elem->content().get_mutable(0));
  slot = std::move(msg);
  bool delivered = target.deliver_now(elem);
  if (!delivered) msg = std::move(slot);
  if (elem) { // null if the actor skipped the message into its mailbox
    slot = T{};
    if (!spare) spare = std::move(elem);
  }
  return delivered;
}

/// The role of a pinned actor. Transports and listeners are stopped first at
/// shutdown, so that every protocol still receives its `lost`. A transport
/// (one connection, endpoint or child process) also counts in its shard's
/// load, the input of placement (`runtime::pick_shard`).
enum class pinned_role { plain, transport, listener };

/// A CAF actor class `Base` whose every resume happens on its home shard.
template <class Base, pinned_role Role = pinned_role::plain>
class pinned : public Base, public pinned_base {
public:
  template <class... Ts>
  explicit pinned(caf::actor_config& cfg, Ts&&... xs)
      : Base(cfg, std::forward<Ts>(xs)...), home_(detail::checked_home(cfg)) {
    // The registry entry lives in this object (no allocation); it leaves in
    // on_cleanup, which every termination runs, including that of an actor
    // whose last handle went without it ever running (CAF's on_destroy).
    home_->register_actor(reg_node_, this->ctrl(), Role != pinned_role::plain);
    // Counted from here, on the spawning thread, not from its first run on
    // the shard: a burst of placements (an accept loop) sees each one made
    // before it, or it would pile connections onto the shards whose new
    // transports have not run yet.
    if constexpr (Role == pinned_role::transport) home_->add_load();
  }

  ~pinned() override {
    // Normally already gone (on_cleanup); still linked only when a derived
    // class's constructor threw, and then no other thread wrote the node.
    if (reg_node_.linked()) leave_home();
  }

  /// The shard this actor lives on.
  shard& home() const noexcept { return *home_; }

  using Base::enqueue;

  void enqueue(caf::mailbox_element_ptr ptr, caf::execution_unit*) override {
    detail::tsan_message_sent(ptr.get());
    if (deliver_now(ptr)) return;
    auto* prev = detail::pinned_marker;
    detail::pinned_marker = this;
    Base::enqueue(std::move(ptr), home_);
    detail::pinned_marker = prev;
  }

  void launch(caf::execution_unit*, bool lazy, bool hide) override {
    auto* prev = detail::pinned_marker;
    detail::pinned_marker = this;
    Base::launch(home_, lazy, hide);
    detail::pinned_marker = prev;
  }

  using Base::consume;

  /// Counts the delivery (fast or queued, see shard_metrics) and hands the
  /// message to CAF. Overrides in derived classes that handle some messages
  /// themselves call `count_delivery` first and end with `consume_counted`.
  caf::invoke_message_result consume(caf::mailbox_element& x) override {
    count_delivery();
    return consume_counted(x);
  }

  caf::resumable::resume_result resume(caf::execution_unit* ctx,
                                       size_t max_throughput) override {
    // CAF_ASSERT is compiled out in Debian's CAF; this check stays on.
    if (ctx != home_ || !home_->on_thread())
      detail::pinned_violation("pinned actor resumed off its home shard");
    shard::handler_scope mark{*home_, this, false};
    auto& m = home_->metrics();
    // The mailbox depth of this turn: the messages it handled (the shard's
    // queued count moves only inside resumes, which do not nest), so a
    // backlog beyond `max_throughput` shows as `max_throughput`. Counting
    // the messages still waiting would need CAF's `size()`, which moves
    // the senders' stack into the queue and categorizes every message: ~100
    // instructions per echo with the fast path off, and reads of message
    // memory that ThreadSanitizer cannot see handed over (CAF is not
    // instrumented).
    auto handled_before = m.queued_deliveries.value();
    ++busy_;
    auto result = Base::resume(ctx, max_throughput);
    --busy_;
    if (m.enabled)
      m.max_mailbox_depth.raise_to(m.queued_deliveries.value() -
                                   handled_before);
    return result;
  }

protected:
  /// Counts one message handled by this actor in its shard's metrics: as a
  /// fast-path delivery inside `deliver_now`, as queued otherwise. Home
  /// shard thread only (it is: consume runs there).
  void count_delivery() noexcept {
    if (auto& m = home_->metrics(); m.enabled)
      (fast_delivery_ ? m.fast_deliveries : m.queued_deliveries).add();
  }

  /// CAF's consume, for an override that already called `count_delivery`.
  caf::invoke_message_result consume_counted(caf::mailbox_element& x) {
    // ThreadSanitizer builds: see detail::tsan_message_sent.
    detail::tsan_message_received(&x);
    return Base::consume(x);
  }

  /// Marks this actor busy while one of its I/O handlers (not a message
  /// handler) runs, so that messages sent to it meanwhile are queued rather
  /// than delivered into the middle of that handler. `release` ends it early,
  /// e.g. right before a final send whose reply may then take the fast path.
  class busy_scope {
  public:
    explicit busy_scope(pinned& self) noexcept : self_(&self) {
      ++self_->busy_;
    }
    ~busy_scope() { release(); }
    void release() noexcept {
      if (self_ != nullptr) {
        --self_->busy_;
        self_ = nullptr;
      }
    }
    busy_scope(const busy_scope&) = delete;
    busy_scope& operator=(const busy_scope&) = delete;

  private:
    pinned* self_;
  };

  /// Everything one I/O (Asio) handler of this actor holds while it runs, in
  /// this order: a strong reference to the actor (what the handler delivers,
  /// e.g. `lost` on the fast path, may let its protocol drop the last other
  /// handle, which would free the actor mid-handler), the shard's io_scope
  /// (actors woken meanwhile run when the handler ends, before the reference
  /// goes), and the busy mark (see busy_scope; `release_busy` ends it early).
  class io_handler_scope {
  public:
    explicit io_handler_scope(pinned& self)
        : keep_(self.ctrl()), scope_(self.home()),
          mark_(self.home(), &self, true), busy_(self) {}
    void release_busy() noexcept { busy_.release(); }

  private:
    caf::strong_actor_ptr keep_;
    shard::io_scope scope_;
    shard::handler_scope mark_; // for the stall detector
    busy_scope busy_;
  };

public:
  bool deliver_now(caf::mailbox_element_ptr& ptr) override {
    // on_thread() first: busy_ belongs to the home shard's thread, and any
    // thread may send (reading busy_ from another one is a data race).
    if (!home_->on_thread() || busy_ != 0 || !home_->fast_path() ||
        detail::fast_path_depth >= detail::max_fast_path_depth ||
        !this->mailbox().blocked())
      return false;
    // Keeps this actor alive even if the handler ends it and drops the last
    // other reference.
    caf::strong_actor_ptr keep{this->ctrl()};
    shard::handler_scope mark{*home_, this, false};
    ++busy_;
    fast_delivery_ = true;
    ++detail::fast_path_depth;
    using result = typename Base::activation_result;
    result res;
    if (!no_receive_timeouts_)
      res = this->activate(home_, *ptr);
    else if (!this->activate(home_)) // what activate(home_, *ptr) does,
      res = result::terminated;      // minus re-arming a receive timeout
    else
      res = this->reactivate(*ptr);
    --detail::fast_path_depth;
    fast_delivery_ = false;
    --busy_;
    if (res == result::skipped) {
      // The behavior stashes it: hand it to the mailbox like any message.
      auto* prev = detail::pinned_marker;
      detail::pinned_marker = this;
      Base::enqueue(std::move(ptr), home_);
      detail::pinned_marker = prev;
    }
    return true;
  }

protected:
  /// Declares that this actor's behaviors never have a receive timeout
  /// (`caf::after`). Fast deliveries then skip CAF's timeout bookkeeping
  /// after each message (~35 instructions and a cache miss per message on
  /// the data path), which for such an actor only ever finds nothing to do.
  /// Call from the constructor of actor classes that keep the promise.
  void never_uses_receive_timeouts() noexcept { no_receive_timeouts_ = true; }

  /// Leaves the shard's registry as part of CAF's cleanup (inside the
  /// actor's critical section, after on_exit, before monitors and links are
  /// told). Overrides must call this one.
  void on_cleanup(const caf::error& reason) override {
    leave_home();
    Base::on_cleanup(reason);
  }

private:
  // Undoes what the constructor did with the shard: registry and load.
  void leave_home() noexcept {
    home_->unregister_actor(reg_node_);
    if constexpr (Role == pinned_role::transport) home_->remove_load();
  }

  shard* home_;
  int busy_ = 0;
  bool no_receive_timeouts_ = false;
  bool fast_delivery_ = false; // inside deliver_now's activation

  shard::registry_node reg_node_;
};

/// Spawns actor class `T` (derived from `pinned<...>`) on shard `s`.
template <class T, caf::spawn_options Os = caf::no_spawn_options, class... Ts>
auto spawn_on(shard& s, Ts&&... xs) {
  caf::actor_config cfg{&s};
  return s.system().template spawn_class<T, Os>(cfg, std::forward<Ts>(xs)...);
}

namespace detail {

template <class F>
struct first_arg;

template <class R, class Self, class... Ts>
struct first_arg<R (*)(Self, Ts...)> {
  using type = Self;
};

template <class C, class R, class Self, class... Ts>
struct first_arg<R (C::*)(Self, Ts...) const> {
  using type = Self;
};

template <class F, class = void>
struct self_of : first_arg<F> {};

template <class F>
struct self_of<F, std::void_t<decltype(&F::operator())>>
    : first_arg<decltype(&F::operator())> {};

/// Runs a behavior function `F(self, args...)` as a pinned actor. `Base` is
/// the actor class the function's `self` points to.
template <class Base, class F, class... Ts>
class pinned_function_actor : public pinned<Base> {
public:
  using behavior_type = typename Base::behavior_type;

  pinned_function_actor(caf::actor_config& cfg, F f, Ts... xs)
      : pinned<Base>(cfg), f_(std::move(f)), args_(std::move(xs)...) {}

  behavior_type make_behavior() override {
    return std::apply([this](auto&... xs) { return f_(this, xs...); }, args_);
  }

private:
  F f_;
  std::tuple<Ts...> args_;
};

} // namespace detail

/// Spawns a function-based actor on shard `s`. `f` takes
/// `caf::event_based_actor*` or `SomeTypedActor::pointer` as its first
/// argument, followed by `xs...`, and returns the behavior.
template <class F, class... Ts>
auto spawn_fun_on(shard& s, F f, Ts&&... xs) {
  using self_ptr = typename detail::self_of<std::decay_t<F>>::type;
  using base = std::remove_pointer_t<self_ptr>;
  using impl =
      detail::pinned_function_actor<base, std::decay_t<F>, std::decay_t<Ts>...>;
  return spawn_on<impl>(s, std::move(f), std::forward<Ts>(xs)...);
}

} // namespace shardwire
