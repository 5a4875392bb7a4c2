#include "actors/phi_accrual.hpp"

#include <algorithm>
#include <cmath>

namespace shardwire {

phi_accrual::phi_accrual(phi_accrual_options opts) : opts_(opts) {
  if (opts_.max_samples == 0) opts_.max_samples = 1;
}

void phi_accrual::heartbeat(clock::time_point now) {
  if (last_) {
    double ms = std::chrono::duration<double, std::milli>(now - *last_).count();
    if (ms < 0) ms = 0;
    intervals_ms_.push_back(ms);
    sum_ += ms;
    sum_sq_ += ms * ms;
    if (intervals_ms_.size() > opts_.max_samples) {
      double old = intervals_ms_.front();
      intervals_ms_.pop_front();
      sum_ -= old;
      sum_sq_ -= old * old;
    }
  }
  last_ = now;
}

double phi_accrual::mean_ms() const {
  if (intervals_ms_.empty())
    return static_cast<double>(opts_.first_interval.count());
  return sum_ / static_cast<double>(intervals_ms_.size());
}

double phi_accrual::std_deviation_ms() const {
  double floor = static_cast<double>(opts_.min_std_deviation.count());
  if (intervals_ms_.size() < 2) {
    // Akka's estimate for a first interval: a quarter of it.
    return std::max(floor, mean_ms() / 4);
  }
  double n = static_cast<double>(intervals_ms_.size());
  double mean = sum_ / n;
  // Running sums lose precision when samples drop out: never below 0.
  double var = std::max(0.0, sum_sq_ / n - mean * mean);
  return std::max(floor, std::sqrt(var));
}

double phi_accrual::phi(clock::time_point now) const {
  if (!last_) return 0;
  double elapsed =
      std::chrono::duration<double, std::milli>(now - *last_).count();
  double mean = mean_ms() + static_cast<double>(opts_.acceptable_pause.count());
  double sd = std_deviation_ms();
  // P(interval > elapsed) under a normal distribution, through the
  // complementary error function: stays accurate far into the tail.
  double y = (elapsed - mean) / sd;
  double p_later = 0.5 * std::erfc(y / std::sqrt(2.0));
  if (p_later <= 0) return opts_.max_phi;
  return std::min(opts_.max_phi, std::max(0.0, -std::log10(p_later)));
}

bool phi_accrual::suspect(clock::time_point now) const {
  return phi(now) >= opts_.threshold;
}

void phi_accrual::reset() {
  last_.reset();
  intervals_ms_.clear();
  sum_ = 0;
  sum_sq_ = 0;
}

} // namespace shardwire
