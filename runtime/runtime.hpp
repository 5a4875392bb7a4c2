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
#pragma once

#include "runtime/config.hpp"
#include "runtime/shard.hpp"

#include <caf/actor_system.hpp>

#include <atomic>
#include <memory>
#include <vector>

namespace shardwire {

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

  /// The shard with the fewest live connections; ties go round-robin.
  shard& pick_shard();

  /// Stops everything as described above. Idempotent; must not be called
  /// from a shard thread.
  void shutdown();

  /// Blocks the calling thread until SIGINT or SIGTERM arrives (Ctrl-C), or
  /// `request_stop` is called. Returns the signal number, or 0.
  static int wait_for_stop_signal();

  /// Wakes `wait_for_stop_signal` (async-signal-safe).
  static void request_stop() noexcept;

private:
  runtime_config& cfg_;
  caf::actor_system system_;
  std::vector<std::unique_ptr<shard>> shards_;
  std::atomic<size_t> next_{0};
  bool stopped_ = false;
};

} // namespace shardwire
