// A shard: one thread running one asio::io_context that is also a CAF
// execution unit.
//
// Actors pinned to a shard (see pinned.hpp) only ever run on the shard's
// thread, whoever sends to them: CAF workers, the clock thread, other shards.
// Anything else handed to the shard (an ordinary actor spawned or messaged by a
// pinned actor) is forwarded to CAF's scheduler, so ordinary actors never end
// up on an I/O thread.
//
// Run loop: pinned actors that become ready are put on a per-shard run queue.
// The queue is drained at the end of each I/O handler that runs inside an
// `io_scope`, or by one posted drain job when it goes non-empty outside of
// one. Each actor runs at most `max_throughput` messages per resume, then goes
// to the back of the queue, so one busy actor cannot starve the sockets of
// its shard.
#pragma once

#include "runtime/metrics.hpp"

#include <asio/io_context.hpp>
#include <atomic>
#include <caf/execution_unit.hpp>
#include <caf/fwd.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <vector>

namespace shardwire {

class fd_poller;

class shard final : public caf::execution_unit {
public:
  /// Creates a stopped shard; `start` launches its thread.
  shard(caf::actor_system& sys, size_t id, size_t max_throughput);
  ~shard() override;

  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;

  // -- properties ------------------------------------------------------------

  /// Index of this shard in its runtime, 0-based.
  size_t id() const noexcept { return id_; }

  /// The io_context driven by this shard's thread. Objects bound to it must
  /// only be touched on this shard's thread.
  asio::io_context& io() noexcept { return io_; }

  /// The readiness poller for this shard's long-lived descriptors (see
  /// fd_poller.hpp), created when the shard thread starts (or on first use
  /// if that failed; throws std::system_error if it still cannot be made).
  /// Shard thread only.
  fd_poller& poller();

  /// True when called from this shard's thread.
  bool on_thread() const noexcept {
    return std::this_thread::get_id() == thread_id_.load();
  }

  /// Returns the shard whose thread is calling, or nullptr.
  static shard* current() noexcept;

  /// Whether co-located pinned actors may deliver messages synchronously
  /// (see pinned.hpp). Fixed before the shard starts.
  bool fast_path() const noexcept { return fast_path_; }
  void set_fast_path(bool on) noexcept { fast_path_ = on; }

  /// Number of live transports on this shard (placement input): each one
  /// counts from its construction, on the thread that spawns it, until its
  /// cleanup (pinned<..., pinned_role::transport> does both).
  size_t load() const noexcept { return load_.load(std::memory_order_relaxed); }
  void add_load() noexcept { load_.fetch_add(1, std::memory_order_relaxed); }
  void remove_load() noexcept { load_.fetch_sub(1, std::memory_order_relaxed); }

  /// This shard's counters (metrics.hpp): written by its thread, read by
  /// any.
  shard_metrics& metrics() noexcept { return metrics_; }
  const shard_metrics& metrics() const noexcept { return metrics_; }

  // -- handlers watched by the stall detector --------------------------------

  /// Marks the run of one shard handler (an actor's resume, an I/O handler)
  /// for the stall detector (runtime/detail/stall_monitor.hpp): the
  /// outermost scope on the shard's thread is one handler; inner scopes
  /// only say which actor runs now, restoring the previous one when they
  /// end. Costs one branch when the detector is off. Shard thread only.
  class handler_scope {
  public:
    /// `actor`: the pinned actor that runs (null: none); `io`: an I/O
    /// handler rather than a message handler.
    handler_scope(shard& s, const caf::local_actor* actor, bool io) noexcept
        : s_(s.stall_watched_ ? &s : nullptr) {
      if (s_ == nullptr) return;
      prev_ = s_->running_.load(std::memory_order_relaxed);
      auto who = reinterpret_cast<uintptr_t>(actor) | (io ? 1U : 0U);
      s_->running_.store(who, std::memory_order_relaxed);
      if (s_->handler_depth_++ == 0) s_->bump_handler_seq();
    }
    ~handler_scope() {
      if (s_ == nullptr) return;
      if (--s_->handler_depth_ == 0) s_->bump_handler_seq();
      s_->running_.store(prev_, std::memory_order_relaxed);
    }
    handler_scope(const handler_scope&) = delete;
    handler_scope& operator=(const handler_scope&) = delete;

  private:
    shard* s_;
    uintptr_t prev_ = 0;
  };

  /// Turns handler marking on (the stall detector does, before the shard
  /// runs anything it watches). Not thread-safe against running handlers:
  /// call before `start`.
  void watch_stalls(bool on) noexcept { stall_watched_ = on; }

  /// Odd while a marked handler runs; bumped when one starts and when it
  /// ends. Read by the stall monitor (any thread).
  uint64_t handler_seq() const noexcept {
    return handler_seq_.load(std::memory_order_relaxed);
  }

  /// The running actor (0: none) and I/O flag (low bit), as published by the
  /// innermost handler_scope. Only meaningful on the shard's own thread
  /// (the stall signal handler reads it there, while the handler runs).
  uintptr_t running() const noexcept {
    return running_.load(std::memory_order_relaxed);
  }

  /// The shard's thread, for pthread_kill; valid between `start` and
  /// `stop`.
  pthread_t native_thread() noexcept { return thread_.native_handle(); }

  // -- caf::execution_unit ---------------------------------------------------

  /// Schedules `ptr`. Thread-safe. Takes over the reference the caller added.
  void exec_later(caf::resumable* ptr) override;

  // -- running functions and the run queue ----------------------------------

  /// Runs `f` on this shard's thread, later (never inside this call).
  void post(std::function<void()> f);

  /// Resumes queued actors until the queue is empty or one full round ran.
  /// Must be called on this shard's thread, never from inside an actor.
  void drain();

  /// Marks an I/O handler: actors made ready inside it are run when it ends,
  /// without a separate post. Nests.
  class io_scope {
  public:
    explicit io_scope(shard& s) noexcept : s_(s) { ++s_.io_depth_; }
    ~io_scope() {
      if (--s_.io_depth_ == 0 && !s_.local_.empty()) s_.drain();
    }
    io_scope(const io_scope&) = delete;
    io_scope& operator=(const io_scope&) = delete;

  private:
    shard& s_;
  };

  // -- registry of pinned actors (shutdown) ----------------------------------

  /// A pinned actor's entry in its home shard's registry: a link of an
  /// intrusive list that lives inside the actor object, so registering costs
  /// no allocation. Owned by the actor; it must be unregistered before its
  /// memory goes (pinned<Base> does so in `on_cleanup` and, as a fallback,
  /// in its destructor).
  class registry_node {
  public:
    registry_node() noexcept = default;
    registry_node(const registry_node&) = delete;
    registry_node& operator=(const registry_node&) = delete;

    /// Whether the node is in a registry. Reading it without the registry's
    /// lock is only safe on a thread ordered after the node's last
    /// register/unregister (e.g. the actor's destructor): neighbours never
    /// write this field, only their links.
    bool linked() const noexcept { return linked_; }

  private:
    friend class shard;
    registry_node* prev_ = nullptr;
    registry_node* next_ = nullptr;
    caf::actor_control_block* ctrl_ = nullptr;
    bool transport_ = false;
    bool linked_ = false;
  };

  /// Adds `node`, the entry of the actor behind `ctrl`, to this shard's
  /// registry. Thread-safe; called from the pinned actor's constructor.
  /// `ctrl` must stay valid until `unregister_actor(node)`.
  void register_actor(registry_node& node, caf::actor_control_block* ctrl,
                      bool is_transport);

  /// Removes `node` from this registry if it is in it (idempotent).
  /// Thread-safe; called from whichever thread terminates the actor, before
  /// the node's memory goes. Wakes `await_actors` when a count reaches zero.
  void unregister_actor(registry_node& node) noexcept;

  /// Number of pinned actors alive on this shard (transports only if asked).
  /// O(1).
  size_t live_actors(bool transports_only = false) const;

  /// Sends an exit message with `reason` to pinned actors of this shard
  /// (transports only if asked) that are registered when called. Messages
  /// are enqueued without holding the registry lock.
  void exit_actors(const caf::error& reason, bool transports_only);

  /// Blocks until no pinned actor of the given kind is alive or the deadline
  /// passes; returns whether none is left. Must not run on a shard thread.
  bool await_actors(bool transports_only,
                    std::chrono::steady_clock::time_point deadline) const;

  // -- lifecycle --------------------------------------------------------------

  void start();

  /// Stops the io_context and joins the thread. Jobs still queued are
  /// released without running.
  void stop();

  // -- driven by hand (deterministic simulation) -----------------------------

  /// Makes the calling thread this shard's thread without starting one, so
  /// a simulation (sim) can drive it with `poll`. Never combine
  /// with `start`. Several shards may adopt the same thread.
  void adopt_thread();

  /// Runs the handlers that are ready now (actor drains included) on the
  /// adopted thread, without blocking; returns how many ran.
  size_t poll();

private:
  void run_thread(std::promise<void>& ready);
  void take_remote();
  void post_drain();

  caf::actor_system& sys_;
  size_t id_;
  size_t max_throughput_;
  bool fast_path_ = true;
  bool stall_watched_ = false;
  asio::io_context io_;
  // Declared after io_: destroyed before it (it holds an Asio descriptor).
  std::unique_ptr<fd_poller> poller_;
  std::atomic<std::thread::id> thread_id_{};
  std::thread thread_;
  std::atomic<size_t> load_{0};

  // Written only on the shard thread, read by others (metrics, stalls).
  shard_metrics metrics_;
  alignas(64) std::atomic<uint64_t> handler_seq_{0};
  std::atomic<uintptr_t> running_{0};
  int handler_depth_ = 0;

  void bump_handler_seq() noexcept {
    handler_seq_.store(handler_seq_.load(std::memory_order_relaxed) + 1,
                       std::memory_order_relaxed);
  }

  // Only touched on the shard thread.
  std::deque<caf::resumable*> local_;
  int io_depth_ = 0;
  bool drain_posted_ = false;

  // Filled by other threads.
  std::mutex remote_mtx_;
  std::vector<caf::resumable*> remote_;
  bool remote_posted_ = false;

  // Registry of pinned actors (shutdown bookkeeping, not on the data path):
  // a circular list through `reg_head_`, whose nodes live in the actors.
  mutable std::mutex reg_mtx_;
  mutable std::condition_variable reg_cv_;
  registry_node reg_head_;
  size_t reg_actors_ = 0;
  size_t reg_transports_ = 0;
};

namespace detail {

/// Set by a pinned actor around the CAF call that may schedule it, so the
/// shard's exec_later recognizes its own actors without a dynamic_cast.
extern thread_local const caf::resumable* pinned_marker;

} // namespace detail

} // namespace shardwire
