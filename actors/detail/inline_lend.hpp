// The lease that comes back inside a buffered delivery.
//
// A buffered protocol lends its next buffer while it handles the last one
// (buffer_filled -> buffer_updated -> get_buffer). When the transport
// delivered that buffer_filled on the fast path (the protocol co-located
// and idle, so its handler runs on the transport's stack), the next lease
// needs no lend_buffer message: the transport names itself here for the
// length of the delivery, and transport_ref::lend hands the lease over in
// place. Everything else (a queued delivery, another thread, a lend to
// another transport) still sends lend_buffer. Shard threads only; one
// thread's state, so no synchronisation.
#pragma once

#include "actors/messages.hpp"

#include <utility>

namespace shardwire::detail {

struct inline_lend {
  /// The transport delivering (its pinned_base), and where the lease goes.
  const void* transport = nullptr;
  read_lease* into = nullptr;
  bool taken = false;
};

/// The delivery in progress on this thread, if a transport waits for a
/// lease in it (nullptr otherwise).
inline thread_local inline_lend* awaiting_lend = nullptr;

/// Hands `lease` to `transport` in place if it waits for one on this
/// thread's delivery; false: send it as lend_buffer.
inline bool lend_in_place(const void* transport, read_lease& lease) noexcept {
  auto* w = awaiting_lend;
  if (w == nullptr || w->transport != transport || w->taken ||
      transport == nullptr)
    return false;
  *w->into = std::move(lease);
  w->taken = true;
  return true;
}

} // namespace shardwire::detail
