// The stall detector (Seastar's "reactor stalled" notice): a thread that
// watches every shard's handler sequence number (shard::handler_seq) and,
// when one handler has been running for longer than the limit, takes a
// backtrace of the shard thread while it is still stuck and logs it with the
// name of the actor that runs.
//
// How: a shard bumps its sequence number, a relaxed store, when a marked
// handler starts and when it ends (odd = running). The monitor samples it
// every quarter of the limit; a value that stays odd and unchanged for the
// limit is a stall, reported between 1 and 1.25 times the limit after the
// handler began. The monitor then sends the shard thread a signal
// (pthread_kill); its handler, running on the stuck thread, checks that the
// same handler still runs, calls backtrace() into a preallocated buffer,
// copies the running actor's name and posts a semaphore. The monitor
// symbolizes the frames and logs them (warning level), and counts the stall
// in the shard's metrics. One report per stuck handler.
//
// The signal is SIGRTMIN + 7, with SA_RESTART. backtrace() is called once
// when the monitor starts, so that glibc loads libgcc's unwinder then, not
// inside the signal handler. The actor's name comes from its virtual
// `name()` (CAF's), which must return static text.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace shardwire {
class shard;
} // namespace shardwire

namespace shardwire::detail {

class stall_monitor {
public:
  /// Starts the thread. `shards` must be started, and outlive `stop()`;
  /// each must have had `watch_stalls(true)` before it started.
  stall_monitor(std::vector<shard*> shards, std::chrono::milliseconds limit);
  ~stall_monitor() { stop(); }

  stall_monitor(const stall_monitor&) = delete;
  stall_monitor& operator=(const stall_monitor&) = delete;

  /// Ends the thread. Idempotent.
  void stop();

  /// The signal the monitor uses.
  static int signal_number() noexcept;

private:
  struct watched {
    shard* s;
    uint64_t seq = 0; // last sampled
    std::chrono::steady_clock::time_point since{};
    uint64_t reported = 0; // seq of the last handler reported
  };

  void run();
  void report(watched& w, std::chrono::steady_clock::duration running);

  std::vector<watched> shards_;
  std::chrono::milliseconds limit_;
  std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_; // last: starts after the members it uses exist
};

} // namespace shardwire::detail
