// Callback-style buffered protocols (asyncio.BufferedProtocol): the
// transport reads straight into memory the protocol hands out, so the
// receive path makes no copy of its own.
//
// How it maps onto actors: the adapter (`callback_buffered_protocol_actor`,
// one per connection, on the transport's shard) first tells the transport
// to ask for memory when it is about to read (an on-demand lease,
// messages.hpp), so the first `get_buffer` runs when the first bytes are
// there, as in asyncio, and a connection that never received holds no lent
// memory. The adapter lends that span (`lend_buffer`); the read fills it
// and gives it back (`buffer_filled`), the adapter calls `buffer_updated`
// and lends its next buffer at once (in place on the fast path), ahead of
// the next read: asking before every read would cost one more delivery
// per read. One buffer is out at a time.
//
// Rules (asyncio's):
// - `get_buffer` must return at least one byte; an empty span is fatal
//   (the transport aborts, connection_lost gets sw_errc::invalid_argument);
// - an exception in `get_buffer`, `buffer_updated` or `eof_received` is
//   fatal (transport aborted, connection_lost gets sw_errc::protocol_failed);
//   in connection_made, pause_writing, resume_writing, connection_lost it
//   is logged and the connection carries on;
// - the span stays the protocol's memory: it must stay valid and untouched
//   from `get_buffer` until the `buffer_updated` (or `connection_lost`)
//   that follows. The adapter keeps the protocol object alive while the
//   transport holds the span, even past connection_lost.
// - `data_received` is called only for bytes the transport read before
//   this protocol lent its first buffer (after `set_protocol` from a plain
//   protocol); the default copies them through get_buffer/buffer_updated,
//   as asyncio does not deliver them any other way.
#pragma once

#include "actors/detail/callback_adapter.hpp"
#include "actors/messages.hpp"
#include "actors/protocol.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace shardwire {

class callback_buffered_protocol_actor;

/// Base class for callback-style buffered protocols.
class buffered_protocol : public protocol {
public:
  /// Memory for the next read. `sizehint` is -1 (any size), as asyncio
  /// passes; return at least one byte.
  virtual std::span<std::byte> get_buffer(int64_t sizehint) = 0;
  /// `nbytes` (> 0) bytes were written to the start of the last buffer.
  virtual void buffer_updated(size_t nbytes) = 0;
  /// Copies `bytes` through get_buffer / buffer_updated (see above).
  void data_received(const buffer& bytes) override;

protected:
  /// The actor hosting this protocol (valid from connection_made on).
  callback_buffered_protocol_actor* self() noexcept { return host_; }

private:
  friend class callback_buffered_protocol_actor;
  callback_buffered_protocol_actor* host_ = nullptr;
};

/// The pinned actor that runs one `buffered_protocol`.
class callback_buffered_protocol_actor
    : public detail::callback_adapter<callback_buffered_protocol_actor,
                                      buffered_protocol_actor,
                                      buffered_protocol, transport_ref,
                                      buffer_filled> {
public:
  callback_buffered_protocol_actor(caf::actor_config& cfg,
                                   std::unique_ptr<buffered_protocol> impl);

  behavior_type make_behavior() override;

private:
  friend callback_adapter;
  static constexpr const char* kind = "buffered_protocol";
  using connected_message = connected;
  static auto handlers();
  void after_connection_made();
  void on_hot(const buffer_filled& msg);
  void on_data(const data& msg);
  bool on_eof();
  /// get_buffer, then lend the span (fatal on an exception). `keep` is the
  /// lease's keeper to reuse (the one that came back), or empty.
  void lend_next(std::shared_ptr<const void> keep);
  /// Lends no memory yet: the transport asks (buffer_filled with nbytes 0)
  /// right before its next read (read_lease::on_demand).
  void lend_on_demand(std::shared_ptr<const void> keep);
  /// `keep`, or a new keeper of this actor and its protocol object.
  std::shared_ptr<const void> keeper(std::shared_ptr<const void> keep);

  // Lending started (after connection_made, or after the first `data` of a
  // protocol that took over through set_protocol).
  bool lending_ = false;
};

/// A factory for buffered protocol `P`, constructed per connection from
/// copies of `xs...`.
template <class P, class... Ts>
protocol_factory make_buffered_protocol(Ts... xs) {
  return [=](shard& s) -> protocol_actor {
    return spawn_on<callback_buffered_protocol_actor>(
        s, std::make_unique<P>(xs...));
  };
}

} // namespace shardwire
