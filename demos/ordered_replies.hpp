// The reply side of kv_cluster's line protocol: one reply line per request
// line, written in request order though the answers arrive in any order.
// Both fronts use it: `kv_cluster front` (kv_cluster.cpp, requests answered
// by storage nodes concurrently) and `kv_cluster qfront`
// (kv_quorum/process.cpp, requests run one at a time by a coordinator).
#pragma once

#include "actors/protocol.hpp"
#include "runtime/buffer.hpp"

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <variant>

namespace demo {

/// The replies owed on one connection, one slot per request line, in the
/// order of the lines.
///
/// Used from one protocol's callbacks only (its actor's thread); not
/// thread-safe. A request's sequence number (from `push_ready` or
/// `push_pending`) names its slot until its reply is written by `flush`.
/// `Request` is what a caller keeps with a request it has not started yet
/// (qfront's key and value); callers that start each request at once keep
/// nothing (`std::monostate`).
template <class Request = std::monostate>
class ordered_replies {
public:
  /// One request line: answered once `ready` (its reply line is `text`,
  /// without '\n'); until then `request` is the caller's.
  struct slot {
    bool ready = false;
    std::string text;
    Request request{};
  };

  /// Queues a request answered at once (PONG, an error); returns its
  /// sequence number.
  uint64_t push_ready(std::string text) {
    slot s;
    s.ready = true;
    s.text = std::move(text);
    return push(std::move(s));
  }

  /// Queues a request answered later by `fill`; returns its sequence number.
  uint64_t push_pending(Request request = {}) {
    slot s;
    s.request = std::move(request);
    return push(std::move(s));
  }

  /// Answers request `seq`, which is queued and not answered yet (throws
  /// std::out_of_range for a sequence number no longer queued). Writes
  /// nothing: `flush` does.
  void fill(uint64_t seq, std::string text) {
    auto& s = slots_.at(seq - base_);
    s.ready = true;
    s.text = std::move(text);
  }

  /// The first request not answered yet, with its sequence number; a null
  /// pointer if every queued request is answered. The pointer is valid until
  /// the next `flush`.
  std::pair<uint64_t, Request*> first_unanswered() {
    for (size_t i = 0; i < slots_.size(); ++i)
      if (!slots_[i].ready) return {base_ + i, &slots_[i].request};
    return {0, nullptr};
  }

  /// No request will be queued any more (EOF, a line too long): the `flush`
  /// that writes the last reply closes the transport.
  void close_when_answered() noexcept { closing_ = true; }

  /// Whether every queued reply has been written.
  bool empty() const noexcept { return slots_.empty(); }

  /// Writes the answered prefix of the queue to `t` as one buffer (nothing
  /// if `t` is closing already), and closes `t` once nothing more will be
  /// answered (after `close_when_answered`; close flushes the writes queued
  /// before it).
  void flush(shardwire::transport_ref& t) {
    if (t.is_closing()) return;
    std::string out;
    while (!slots_.empty() && slots_.front().ready) {
      out += slots_.front().text;
      out += '\n';
      slots_.pop_front();
      ++base_;
    }
    if (!out.empty()) t.write(shardwire::buffer::adopt(std::move(out)));
    if (closing_ && slots_.empty()) t.close();
  }

private:
  uint64_t push(slot s) {
    auto seq = base_ + slots_.size();
    slots_.push_back(std::move(s));
    return seq;
  }

  std::deque<slot> slots_; // a started request stays, not ready, until done
  uint64_t base_ = 0;      // sequence number of slots_.front()
  bool closing_ = false;
};

} // namespace demo
