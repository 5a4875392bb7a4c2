#include "actors/read_credit.hpp"

#include <caf/actor_cast.hpp>
#include <caf/message.hpp>
#include <caf/send.hpp>

namespace shardwire {

bool read_credit::must_wait() noexcept {
  if (outstanding() <= high_) return false;
  waiting_.store(true, std::memory_order_release);
  // Re-check: credit may have come back between the load and the store, in
  // which case no `give` saw `waiting_` set.
  if (outstanding() <= low_ && waiting_.exchange(false)) return false;
  return true;
}

void read_credit::give(size_t n) noexcept {
  auto now = outstanding_.fetch_sub(n, std::memory_order_acq_rel) - n;
  if (now <= low_ && waiting_.load(std::memory_order_acquire) &&
      waiting_.exchange(false))
    notify();
}

void read_credit::notify() noexcept {
  if (auto hdl = caf::actor_cast<caf::strong_actor_ptr>(transport_))
    hdl->enqueue(nullptr, caf::make_message_id(),
                 caf::make_message(read_credit_returned{}), nullptr);
}

} // namespace shardwire
