// The phi-accrual failure detector (actors/phi_accrual.hpp) on virtual time:
// suspicion grows with silence measured against the link's own rhythm, so a
// slow or jittery but live link stays below the threshold while a silent
// one crosses it after a few of its usual intervals.
#include "actors/phi_accrual.hpp"

#include "tests/support/fixtures.hpp"

#include <cmath>
#include <random>

using namespace shardwire;
using namespace std::chrono_literals;

namespace {

using clock_t_ = phi_accrual::clock;

// Heartbeats every `every` from t0, `n` of them; returns the last time.
clock_t_::time_point beat(phi_accrual& d, clock_t_::time_point t0,
                          std::chrono::milliseconds every, int n) {
  auto t = t0;
  for (int i = 0; i < n; ++i) {
    d.heartbeat(t);
    t += every;
  }
  return t - every;
}

} // namespace

TEST_CASE("phi: nothing to judge before the first heartbeat") {
  phi_accrual d;
  auto t0 = clock_t_::now();
  CHECK(d.phi(t0 + 1h) == 0);
  CHECK_FALSE(d.suspect(t0 + 1h));
}

TEST_CASE("phi: a regular link is suspected after a few missed beats") {
  phi_accrual d; // threshold 8, sd floor 100 ms
  auto last = beat(d, clock_t_::now(), 100ms, 50);
  CHECK(d.mean_ms() == Approx(100));
  CHECK(d.phi(last + 100ms) < 1);  // on time
  CHECK(d.phi(last + 300ms) < 3);  // two beats late: not yet
  CHECK(d.suspect(last + 1000ms)); // nine beats late
  // Never decreasing while silent, and finite however long.
  double prev = 0;
  for (auto t = last; t < last + 10s; t += 50ms) {
    double p = d.phi(t);
    CHECK(p >= prev);
    prev = p;
  }
  CHECK(std::isfinite(d.phi(last + 24h)));
  CHECK(d.phi(last + 24h) == d.options().max_phi);
}

TEST_CASE("phi: a slow but regular link is judged at its own pace") {
  phi_accrual d;
  auto last = beat(d, clock_t_::now(), 2000ms, 30);
  // 2.5 s of silence on a 2 s link is normal; the same on a 100 ms link
  // would be a failure.
  CHECK_FALSE(d.suspect(last + 2500ms));
  CHECK(d.suspect(last + 20s));
  phi_accrual fast;
  auto fast_last = beat(fast, clock_t_::now(), 100ms, 30);
  CHECK(fast.suspect(fast_last + 2500ms));
}

TEST_CASE("phi: jitter widens the tolerance") {
  std::mt19937 rng{42};
  std::uniform_int_distribution<int> jitter{50, 450};
  phi_accrual d;
  auto t = clock_t_::now();
  auto last = t;
  for (int i = 0; i < 200; ++i) {
    d.heartbeat(t);
    last = t;
    t += std::chrono::milliseconds{jitter(rng)};
  }
  CHECK(d.std_deviation_ms() > 100);
  // The longest interval the link showed raises no suspicion ...
  CHECK_FALSE(d.suspect(last + 450ms));
  // ... a long silence does.
  CHECK(d.suspect(last + 3s));
}

TEST_CASE("phi: acceptable_pause shifts the expected interval") {
  phi_accrual_options opts;
  opts.acceptable_pause = 1000ms;
  phi_accrual d{opts};
  phi_accrual plain;
  auto t0 = clock_t_::now();
  auto last = beat(d, t0, 100ms, 20);
  beat(plain, t0, 100ms, 20);
  CHECK(plain.suspect(last + 1000ms));
  CHECK_FALSE(d.suspect(last + 1000ms));
  CHECK(d.suspect(last + 3000ms));
}

TEST_CASE("phi: the window keeps the last max_samples intervals") {
  phi_accrual_options opts;
  opts.max_samples = 10;
  phi_accrual d{opts};
  auto last = beat(d, clock_t_::now(), 100ms, 100);
  last = beat(d, last + 1000ms, 1000ms, 11); // ten 1 s intervals
  CHECK(d.mean_ms() == Approx(1000));
  CHECK_FALSE(d.suspect(last + 1200ms));
  d.reset();
  CHECK(d.phi(last + 1h) == 0);
}
