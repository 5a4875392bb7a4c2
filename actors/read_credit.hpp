// Read back-pressure: how a transport knows how much `data` its protocol has
// not processed yet.
//
// Every `data` message a transport sends carries a `read_ticket` for the
// storage it holds. The ticket lives in the message the transport enqueued;
// CAF destroys that message after the protocol's handler returns, which
// returns the credit. So `outstanding()` is the storage of `data` sitting in
// (or being handled from) the protocol's mailbox. When it rises above the high
// mark the transport stops reading; when it falls to the low mark the credit
// sends the transport one `read_credit_returned` message.
//
// A copy of a ticket is empty: copying a `data` message (or its buffer) into
// the protocol's own state does not hold credit, so a protocol that keeps
// bytes is responsible for its own memory, exactly as in asyncio.
#pragma once

#include <caf/actor_addr.hpp>
#include <caf/intrusive_ptr.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/ref_counted.hpp>
#include <caf/weak_intrusive_ptr.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace shardwire {

/// Sent by a read credit to its transport when outstanding data fell to the
/// low mark while the transport was waiting for it.
struct read_credit_returned {};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, read_credit_returned&) {
  return f(caf::meta::type_name("read_credit_returned"));
}

/// Shared between one transport (on its shard) and the `data` messages in
/// flight to its protocol (destroyed on any thread).
class read_credit : public caf::ref_counted {
public:
  read_credit(caf::actor_addr transport, size_t high, size_t low)
      : transport_(std::move(transport)), high_(high), low_(low) {}

  /// Bytes of storage delivered and not yet released.
  size_t outstanding() const noexcept {
    return outstanding_.load(std::memory_order_acquire);
  }

  size_t high() const noexcept { return high_; }
  size_t low() const noexcept { return low_; }

  /// Transport side: accounts `n` more bytes in flight.
  void take(size_t n) noexcept {
    outstanding_.fetch_add(n, std::memory_order_acq_rel);
  }

  /// Transport side: true if the transport must stop reading now. Arms the
  /// wake-up; a later `give` that reaches the low mark sends
  /// `read_credit_returned` once.
  bool must_wait() noexcept;

  /// Ticket side: returns `n` bytes of credit.
  void give(size_t n) noexcept;

  /// Disarms the wake-up (transport closing).
  void disarm() noexcept { waiting_.store(false, std::memory_order_release); }

private:
  void notify() noexcept;

  caf::actor_addr transport_;
  size_t high_;
  size_t low_;
  std::atomic<size_t> outstanding_{0};
  std::atomic<bool> waiting_{false};
};

using read_credit_ptr = caf::intrusive_ptr<read_credit>;

/// Credit held by one `data` message. Move-only in effect: copies are empty.
class read_ticket {
public:
  read_ticket() noexcept = default;
  read_ticket(read_credit_ptr credit, size_t n) noexcept
      : credit_(std::move(credit)), n_(n) {}
  read_ticket(const read_ticket&) noexcept {}
  read_ticket& operator=(const read_ticket&) noexcept { return *this; }
  read_ticket(read_ticket&& other) noexcept
      : credit_(std::move(other.credit_)), n_(other.n_) {
    other.n_ = 0;
  }
  read_ticket& operator=(read_ticket&& other) noexcept {
    reset();
    credit_ = std::move(other.credit_);
    n_ = other.n_;
    other.n_ = 0;
    return *this;
  }
  ~read_ticket() { reset(); }

  /// Returns the credit now (e.g. a protocol done with a message early).
  void reset() noexcept {
    if (credit_) {
      credit_->give(n_);
      credit_.reset();
      n_ = 0;
    }
  }

  size_t bytes() const noexcept { return n_; }

private:
  read_credit_ptr credit_;
  size_t n_ = 0;
};

} // namespace shardwire
