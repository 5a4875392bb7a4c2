// A phi-accrual failure detector (Hayashibara et al., as Akka and Cassandra
// use it): instead of "no heartbeat for T seconds", a suspicion level phi
// that grows with the time since the last heartbeat, measured against the
// distribution of the intervals seen so far. phi = -log10(P(a heartbeat
// comes later than now)): phi 1 means a 10 % chance that the node is only
// late, phi 8 one in 10^8. A link that is slow but regular keeps phi low at
// its own pace; a link that goes silent crosses the threshold after a few
// of its usual intervals, whether those are 10 ms or 2 s.
//
// Guarantees:
//   - before the first heartbeat phi is 0 (nothing to judge yet);
//   - phi never decreases between two heartbeats, and it is finite (capped
//     at `max_phi`) however long the silence;
//   - the intervals kept are the last `max_samples`; their standard
//     deviation counts as at least `min_std_deviation`, so a perfectly
//     regular link is not judged dead at its first small hiccup;
//   - `acceptable_pause` is added to the expected interval: a known pause
//     (a GC, a busy peer) of that length raises no suspicion.
// Not thread-safe: one detector per link, used by the actor watching it.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>

namespace shardwire {

struct phi_accrual_options {
  /// Suspicion at which the link counts as failed (Akka's default 8; lower
  /// detects sooner with more false positives).
  double threshold = 8.0;
  /// Intervals kept for the estimate.
  size_t max_samples = 200;
  /// Floor of the standard deviation.
  std::chrono::milliseconds min_std_deviation{100};
  /// Pause added to the expected interval before suspicion grows.
  std::chrono::milliseconds acceptable_pause{0};
  /// The interval assumed before two heartbeats were seen.
  std::chrono::milliseconds first_interval{1000};
  /// Cap on phi (the normal tail's probability underflows past ~37).
  double max_phi = 100.0;
};

class phi_accrual {
public:
  using clock = std::chrono::steady_clock;

  explicit phi_accrual(phi_accrual_options opts = {});

  /// A heartbeat arrived at `now`.
  void heartbeat(clock::time_point now);

  /// The suspicion level at `now`.
  double phi(clock::time_point now) const;

  /// phi(now) >= threshold.
  bool suspect(clock::time_point now) const;

  /// Mean and standard deviation (floored) of the kept intervals, in ms.
  double mean_ms() const;
  double std_deviation_ms() const;

  /// Forgets everything (a new connection starts a new history).
  void reset();

  const phi_accrual_options& options() const noexcept { return opts_; }

private:
  phi_accrual_options opts_;
  std::optional<clock::time_point> last_;
  std::deque<double> intervals_ms_;
  double sum_ = 0;
  double sum_sq_ = 0;
};

} // namespace shardwire
