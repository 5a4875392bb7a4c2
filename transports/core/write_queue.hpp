// The write buffer of a stream transport: queued buffers (shared, never
// copied) in order, with gathered output.
//
// Backed by a vector with a moving head rather than a std::deque, whose
// empty state already allocates ~600 bytes: an idle connection holds nothing
// here.
#pragma once

#include "runtime/buffer.hpp"

#include <cstddef>
#include <sys/uio.h>
#include <vector>

namespace shardwire::transport_core {

class write_queue {
public:
  bool empty() const noexcept { return head_ == items_.size(); }

  /// Bytes queued (what asyncio's get_write_buffer_size reports).
  size_t bytes() const noexcept { return bytes_; }

  void push(buffer b) {
    bytes_ += b.size();
    items_.push_back(std::move(b));
  }

  /// Points up to `max` iovecs at the queued bytes, oldest first; returns
  /// how many were filled.
  size_t fill(iovec* iov, size_t max) const noexcept {
    size_t n = 0;
    for (size_t i = head_; i < items_.size() && n < max; ++i, ++n)
      iov[n] =
          iovec{const_cast<std::byte*>(items_[i].data()), items_[i].size()};
    return n;
  }

  /// The queued buffers, oldest first, as one contiguous run of `count`
  /// (what a backend's gathered write takes; never empty buffers).
  const buffer* pending(size_t& count) const noexcept {
    count = items_.size() - head_;
    return items_.data() + head_;
  }

  /// Drops the first `n` bytes (they were written).
  void consume(size_t n) noexcept {
    bytes_ -= n;
    while (n > 0) {
      auto& front = items_[head_];
      if (n >= front.size()) {
        n -= front.size();
        front = buffer{};
        ++head_;
      } else {
        front = front.slice(n);
        n = 0;
      }
    }
    if (empty()) clear();
  }

  /// Drops everything (abort); releases the storage.
  void clear() noexcept {
    items_.clear();
    if (items_.capacity() > 64) items_.shrink_to_fit();
    head_ = 0;
    bytes_ = 0;
  }

private:
  std::vector<buffer> items_;
  size_t head_ = 0;
  size_t bytes_ = 0;
};

} // namespace shardwire::transport_core
