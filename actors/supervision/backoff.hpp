// Restart backoff: exponential, capped, with seeded jitter.
//
// Pure values and functions, no actors: the supervisor keeps one
// `jitter_rng` and one attempt counter per child and asks `backoff_delay`
// how long to wait before the next restart.
#pragma once

#include <chrono>
#include <cstdint>

namespace shardwire {

/// How long a supervisor waits before restarting a child.
///
/// The delay before restart number k (k = 0 for the first restart after a
/// stable run) is `raw = min(max, base * 2^k)`, then jittered down by up to
/// `jitter * raw`: the result lies in `(raw * (1 - jitter), raw]`, so
/// `raw * (1 - jitter)` is a lower bound and `raw` an upper bound. A child
/// that ran for at least `reset_after` before it failed starts again at
/// k = 0.
struct backoff_policy {
  /// Delay of the first restart. Zero disables backoff (restart at once).
  std::chrono::milliseconds base{100};
  /// Cap of the exponential growth.
  std::chrono::milliseconds max{30'000};
  /// Fraction in [0, 1] by which a delay may be shortened at random, so
  /// that children that failed together do not restart together.
  double jitter = 0.2;
  /// A run at least this long resets the exponent to 0.
  std::chrono::milliseconds reset_after{10'000};

  /// No delay at all (OTP's behaviour).
  static backoff_policy none() {
    using std::chrono::milliseconds;
    return {milliseconds{0}, milliseconds{0}, 0.0, milliseconds{0}};
  }
};

/// A small deterministic PRNG (splitmix64). Same seed, same sequence, on
/// every platform (std:: distributions are implementation-defined).
class jitter_rng {
public:
  explicit jitter_rng(uint64_t seed) noexcept : state_(seed) {}

  /// The next 64 random bits.
  uint64_t next() noexcept;

  /// A uniform double in [0, 1).
  double next_unit() noexcept;

private:
  uint64_t state_;
};

/// `min(max, base * 2^attempt)` without overflow.
std::chrono::nanoseconds backoff_raw_delay(const backoff_policy& p,
                                           uint32_t attempt) noexcept;

/// The jittered delay for `attempt` (0-based); draws one number from `rng`
/// unless `p.jitter` is 0 or the raw delay is 0.
std::chrono::nanoseconds backoff_delay(const backoff_policy& p,
                                       uint32_t attempt,
                                       jitter_rng& rng) noexcept;

} // namespace shardwire
