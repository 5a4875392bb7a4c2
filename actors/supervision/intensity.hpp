// Restart intensity: at most `max_restarts` restarts within `period`.
//
// Pure value type, no actors, no clock of its own: callers pass the time, so
// tests can drive it (and the supervisor) with a fake clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>

namespace shardwire {

/// OTP's intensity/period: more than `max_restarts` restarts within any
/// window of length `period` means the supervisor gives up and escalates.
/// `max_restarts = 0` allows no restart at all.
struct restart_intensity {
  uint32_t max_restarts = 3;
  std::chrono::milliseconds period{5'000};
};

/// The restart history of one supervisor (s6 calls it a death tally).
class restart_tally {
public:
  using time_point = std::chrono::steady_clock::time_point;

  explicit restart_tally(restart_intensity limit) : limit_(limit) {}

  /// Records a restart at `now` and drops those older than `now - period`.
  /// Returns false when the restarts in the window now exceed the limit
  /// (the caller must escalate instead of restarting).
  bool record(time_point now);

  /// Restarts inside the window that ended at the last `record`.
  size_t in_window() const noexcept { return stamps_.size(); }

  const restart_intensity& limit() const noexcept { return limit_; }

private:
  restart_intensity limit_;
  std::deque<time_point> stamps_;
};

} // namespace shardwire
