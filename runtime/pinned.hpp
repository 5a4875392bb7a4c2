// Actors pinned to a shard.
//
// `pinned<Base>` wraps a CAF event-based actor class (untyped, typed or
// stateful) so that it only ever runs on its home shard's thread. It forces
// its home shard as the execution unit in `enqueue` and `launch`, whichever
// unit the sender passed (the trick CAF's own brokers use), and checks in
// `resume` that it really runs there.
//
// Spawn pinned actors with `spawn_on`, never with `actor_system::spawn`: the
// home shard travels in `actor_config::host`.
#pragma once

#include "runtime/log.hpp"
#include "runtime/shard.hpp"

#include <caf/actor_config.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <cstdlib>
#include <tuple>
#include <type_traits>

namespace shardwire {

namespace detail {

[[noreturn]] void pinned_violation(const char* what);

inline shard* checked_home(caf::actor_config& cfg) {
  auto* s = dynamic_cast<shard*>(cfg.host);
  if (s == nullptr)
    pinned_violation("pinned actor spawned without spawn_on()");
  return s;
}

} // namespace detail

/// Marks the role of a pinned actor for shutdown ordering: transports are
/// stopped first so that every protocol still receives its `lost`.
enum class pinned_role { plain, transport };

/// A CAF actor class `Base` whose every resume happens on its home shard.
template <class Base, pinned_role Role = pinned_role::plain>
class pinned : public Base {
public:
  template <class... Ts>
  explicit pinned(caf::actor_config& cfg, Ts&&... xs)
    : Base(cfg, std::forward<Ts>(xs)...), home_(detail::checked_home(cfg)) {
    home_->register_actor(this->ctrl(), Role == pinned_role::transport);
    this->attach_functor(
      [home = home_, ctrl = this->ctrl()] { home->unregister_actor(ctrl); });
  }

  /// The shard this actor lives on.
  shard& home() const noexcept { return *home_; }

  using Base::enqueue;

  void enqueue(caf::mailbox_element_ptr ptr, caf::execution_unit*) override {
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

  caf::resumable::resume_result resume(caf::execution_unit* ctx,
                                       size_t max_throughput) override {
    // CAF_ASSERT is compiled out in Debian's CAF; this check stays on.
    if (ctx != home_ || !home_->on_thread())
      detail::pinned_violation("pinned actor resumed off its home shard");
    return Base::resume(ctx, max_throughput);
  }

private:
  shard* home_;
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
