#include "actors/supervision/backoff.hpp"

#include <algorithm>

namespace shardwire {

uint64_t jitter_rng::next() noexcept {
  // splitmix64 (Steele, Lea, Flood 2014), as used to seed xoshiro.
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double jitter_rng::next_unit() noexcept {
  // The top 53 bits fill a double's mantissa exactly.
  return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

std::chrono::nanoseconds backoff_raw_delay(const backoff_policy& p,
                                           uint32_t attempt) noexcept {
  using std::chrono::nanoseconds;
  auto base = std::chrono::duration_cast<nanoseconds>(p.base).count();
  auto cap = std::chrono::duration_cast<nanoseconds>(p.max).count();
  if (base <= 0) return nanoseconds{0};
  if (cap < base) cap = base;
  // Doubling stops as soon as the cap is reached, so nothing overflows.
  int64_t d = base;
  for (uint32_t i = 0; i < attempt && d < cap; ++i)
    d = d > cap / 2 ? cap : d * 2;
  return nanoseconds{std::min(d, cap)};
}

std::chrono::nanoseconds backoff_delay(const backoff_policy& p,
                                       uint32_t attempt,
                                       jitter_rng& rng) noexcept {
  auto raw = backoff_raw_delay(p, attempt);
  double j = std::clamp(p.jitter, 0.0, 1.0);
  if (raw.count() == 0 || j == 0.0) return raw;
  auto cut = static_cast<int64_t>(static_cast<double>(raw.count()) * j *
                                  rng.next_unit());
  return raw - std::chrono::nanoseconds{cut};
}

} // namespace shardwire
