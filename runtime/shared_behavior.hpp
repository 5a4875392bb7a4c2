// Sharing one behavior among all actors of a class on a thread.
//
// A CAF behavior built from lambdas that capture `this` is a heap object of
// its own per actor: ~40 bytes per handler, 600 bytes for a transport with 15
// handlers, on every idle connection. An actor class that has many instances
// per shard can instead build its behavior once per thread, with handlers
// that find their actor through `current_actor<T>::get()`, and set the
// current actor around each message in its `consume` override (CAF's one
// dispatch point for mailbox messages and fast-path activations alike).
//
// Only for pinned actors: the behavior is built and used on one shard thread.
#pragma once

namespace shardwire {

template <class Actor>
class current_actor {
public:
  /// The actor whose message is being handled on this thread.
  static Actor& get() noexcept { return *ptr_; }

  /// Makes `self` the current actor for the lifetime of the scope (nests).
  class scope {
  public:
    explicit scope(Actor* self) noexcept : prev_(ptr_) { ptr_ = self; }
    ~scope() { ptr_ = prev_; }
    scope(const scope&) = delete;
    scope& operator=(const scope&) = delete;

  private:
    Actor* prev_;
  };

private:
  static inline thread_local Actor* ptr_ = nullptr;
};

/// Returns this thread's instance of the behavior `make()` builds (built on
/// first use).
template <class Actor, class Behavior, class Factory>
Behavior thread_shared_behavior(Factory make) {
  thread_local Behavior shared = make();
  return shared;
}

} // namespace shardwire
