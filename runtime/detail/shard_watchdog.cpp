#include "runtime/detail/shard_watchdog.hpp"

#include "runtime/log.hpp"
#include "runtime/shard.hpp"
#include "runtime/systemd_notify.hpp"

namespace shardwire::detail {

shard_watchdog::shard_watchdog(std::vector<shard*> shards,
                               std::chrono::microseconds every)
    : shards_(std::move(shards)), interval_(every), thread_([this] { run(); }) {
}

void shard_watchdog::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void shard_watchdog::run() {
  // Half the interval, as sd_watchdog_enabled(3) recommends.
  auto period = interval_ / 2;
  bool first = true;
  bool warned = false;
  std::unique_lock<std::mutex> lock{mtx_};
  while (!stopping_) {
    size_t answered;
    uint64_t round;
    {
      // A no-op of an earlier round that runs late counts for nothing.
      std::lock_guard<std::mutex> guard{round_->mtx};
      answered = round_->answered;
      round_->answered = 0;
      round = ++round_->round;
    }
    if (first || answered == shards_.size()) {
      sd::notify("WATCHDOG=1");
      warned = false;
    } else if (!warned) {
      log::error("watchdog: ", shards_.size() - answered, " of ",
                 shards_.size(), " shards did not run a no-op within ",
                 period.count(), " us; withholding WATCHDOG=1");
      warned = true;
    }
    first = false;
    for (auto* s : shards_)
      s->post([r = round_, round] {
        std::lock_guard<std::mutex> guard{r->mtx};
        if (r->round == round) ++r->answered;
      });
    cv_.wait_for(lock, period, [this] { return stopping_; });
  }
}

} // namespace shardwire::detail
