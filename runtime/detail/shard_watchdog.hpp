// The runtime's health check for systemd's watchdog (systemd_notify.hpp):
// a thread that, every half interval, sends WATCHDOG=1 if every shard ran
// the no-op it was posted the round before, then posts the next round.
// A shard stuck in a handler (an endless loop, a blocking call) therefore
// stops the pings, and systemd's WatchdogSec= restarts the program.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace shardwire {
class shard;
} // namespace shardwire

namespace shardwire::detail {

class shard_watchdog {
public:
  /// Starts the thread. `shards` must outlive `stop()`.
  shard_watchdog(std::vector<shard*> shards, std::chrono::microseconds every);
  ~shard_watchdog() { stop(); }

  shard_watchdog(const shard_watchdog&) = delete;
  shard_watchdog& operator=(const shard_watchdog&) = delete;

  /// Ends the thread (no ping after it returns). Idempotent.
  void stop();

private:
  // Shared with the no-ops in the shards' queues, which may run after
  // stop() (they only count).
  struct round_state {
    std::mutex mtx;
    uint64_t round = 0;
    size_t answered = 0; // no-ops of `round` that ran
  };

  void run();

  std::vector<shard*> shards_;
  std::chrono::microseconds interval_;
  std::shared_ptr<round_state> round_ = std::make_shared<round_state>();
  std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_; // last: starts after the members it uses exist
};

} // namespace shardwire::detail
