// The simulation's one source of randomness: a seeded mt19937_64 with
// distributions written out here.
//
// std::mt19937_64's output sequence is fixed by the C++ standard, but the
// std:: distributions are not (libstdc++ and libc++ differ, and so may two
// libstdc++ versions), so every distribution the simulator draws from is
// implemented below from raw 64-bit words. Same seed, same draws, on any
// standard library.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>

namespace shardwire::sim {

/// Seeded pseudo-random numbers. Not thread-safe (the simulation runs on
/// one thread).
class random {
public:
  explicit random(uint64_t seed) : gen_(seed) {}

  /// A raw 64-bit word.
  uint64_t next() { return gen_(); }

  /// Uniform in [0, 1), 53 bits of precision.
  double uniform01() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  /// Uniform integer in [lo, hi] (inclusive); lo if hi <= lo. Lemire's
  /// multiply-shift, unbiased enough for fault injection (bias < 2^-64*n).
  uint64_t uniform(uint64_t lo, uint64_t hi) {
    if (hi <= lo) return lo;
    auto span = hi - lo;
    if (span == UINT64_MAX) return next();
    auto r = static_cast<unsigned __int128>(next()) * (span + 1);
    return lo + static_cast<uint64_t>(r >> 64);
  }

  /// True with probability `p` (p <= 0: never, p >= 1: always, no draw).
  bool chance(double p) {
    if (p <= 0.0) return false;
    if (p >= 1.0) return true;
    return uniform01() < p;
  }

  /// Exponential with the given mean.
  double exponential(double mean) { return -mean * std::log1p(-uniform01()); }

  /// Normal (Box-Muller, one value per two draws).
  double normal(double mean, double stddev) {
    double u1 = 1.0 - uniform01(); // (0, 1]
    double u2 = uniform01();
    return mean + stddev * std::sqrt(-2.0 * std::log(u1)) *
                      std::cos(6.283185307179586 * u2);
  }

  /// Pareto with scale `xm` and shape `alpha` (heavy tail).
  double pareto(double xm, double alpha) {
    return xm / std::pow(1.0 - uniform01(), 1.0 / alpha);
  }

private:
  std::mt19937_64 gen_;
};

} // namespace shardwire::sim
