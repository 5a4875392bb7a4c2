// The runtime: a CAF actor system plus a pool of shards.
//
// Construction starts one thread per shard. Destruction (or `shutdown`)
// stops in this order, so that nothing hangs and nothing is lost silently:
//   1. every transport and server actor is told to exit; each transport
//      closes its socket and delivers `lost` to its protocol;
//   2. the remaining pinned actors (protocols) get a grace period to exit on
//      their own after `lost`, then are terminated;
//   3. shard threads stop and are joined;
//   4. the CAF actor system goes (it waits for ordinary actors the program
//      spawned on CAF's scheduler: terminate those before the runtime goes).
//
// Under systemd (runtime/systemd_notify.hpp): with $WATCHDOG_USEC set the
// runtime sends WATCHDOG=1 every half interval while every shard is
// responsive (and stops when one is stuck); `shutdown` first sends
// STOPPING=1; the program sends READY=1 with `notify_ready` once it serves.
#pragma once

#include "runtime/config.hpp"
#include "runtime/shard.hpp"
#include "runtime/systemd_notify.hpp"

#include <caf/actor_system.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <vector>

namespace shardwire {

namespace detail {
class shard_watchdog;
class stall_monitor;
} // namespace detail

class runtime {
public:
  /// Starts the actor system and `cfg.effective_shards()` shards. `cfg` must
  /// outlive the runtime (CAF keeps a reference to it). Throws
  /// `std::system_error` naming the shard when one cannot start (typically
  /// EMFILE: each shard needs a few descriptors); the shards started before
  /// it are stopped and joined first, so nothing is left running.
  explicit runtime(runtime_config& cfg);
  ~runtime();

  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  caf::actor_system& system() noexcept { return system_; }
  const runtime_config& config() const noexcept { return cfg_; }

  size_t shard_count() const noexcept { return shards_.size(); }
  shard& shard_at(size_t i) { return *shards_.at(i); }
  const shard& shard_at(size_t i) const { return *shards_.at(i); }

  /// The shard with the fewest live connections; ties go round-robin.
  shard& pick_shard();

  /// Stops everything as described above. Idempotent; must not be called
  /// from a shard thread.
  void shutdown();

  /// Tells systemd (Type=notify) that the program is ready, with an
  /// optional STATUS line. A no-op returning false outside systemd.
  static bool notify_ready(std::string_view status = {});

  /// Blocks the calling thread until SIGINT or SIGTERM arrives (Ctrl-C), or
  /// `request_stop` is called. Returns the signal number, or 0.
  static int wait_for_stop_signal();

  /// Wakes `wait_for_stop_signal` (async-signal-safe).
  static void request_stop() noexcept;

  /// Whether SIGINT or SIGTERM arrived or `request_stop` was called. The
  /// handlers are installed when the first runtime is constructed (where
  /// the signal still has its default disposition), so a signal during a
  /// program's setup is remembered rather than killing it.
  static bool stop_requested() noexcept;

  /// The last stop signal received (SIGINT or SIGTERM), 0 if none.
  static int stop_signal() noexcept;

  /// How `wait_or_stop` ended.
  enum class wait_end { ready, timeout, stop_requested };

  /// Waits until `f` is ready, `deadline` passed, or a stop was requested,
  /// whichever comes first; for programs that wait for a result rather than
  /// for a stop signal (clients), so that Ctrl-C still ends them promptly.
  /// Notices a stop within about 50 ms.
  template <class T>
  static wait_end wait_or_stop(const std::future<T>& f,
                               std::chrono::steady_clock::time_point deadline) {
    constexpr auto poll = std::chrono::milliseconds(50);
    for (;;) {
      if (stop_requested()) return wait_end::stop_requested;
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return wait_end::timeout;
      auto step =
          std::min<std::chrono::steady_clock::duration>(poll, deadline - now);
      if (f.wait_for(step) == std::future_status::ready) return wait_end::ready;
    }
  }

private:
  runtime_config& cfg_;
  // The shards, once stopped, handed over by ~runtime: declared before
  // system_, so they are freed after it. Until the actor system is gone its
  // clock thread may still deliver a timer to a pinned actor that already
  // exited, and the pinned actor's enqueue looks at its home shard.
  std::vector<std::unique_ptr<shard>> stopped_shards_;
  caf::actor_system system_;
  std::vector<std::unique_ptr<shard>> shards_;
  std::atomic<size_t> next_{0};
  std::unique_ptr<detail::shard_watchdog> watchdog_;
  std::unique_ptr<detail::stall_monitor> stall_monitor_;
  bool stopped_ = false;
};

} // namespace shardwire
