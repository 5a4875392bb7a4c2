#include "actors/supervision/intensity.hpp"

namespace shardwire {

bool restart_tally::record(time_point now) {
  stamps_.push_back(now);
  // OTP keeps restarts with `now - t <= period`; one that happened exactly
  // `period` ago still counts.
  while (!stamps_.empty() && now - stamps_.front() > limit_.period)
    stamps_.pop_front();
  return stamps_.size() <= limit_.max_restarts;
}

} // namespace shardwire
