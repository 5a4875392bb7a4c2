// Protocol actors: how a connection's protocol is created, and the
// callback-style adapter for code ported from asyncio.
//
// Two styles, same vocabulary:
// - actor style: write a typed actor for `protocol_actor` (a class deriving
//   from `pinned<protocol_actor::base>`, or a behavior function) and handle
//   `connected`, `data`, `eof`, `pause`, `resume`, `lost` as messages;
// - callback style: derive from `protocol` and override `connection_made`,
//   `data_received`, ... exactly as with asyncio.Protocol. It runs inside a
//   pinned actor (`callback_protocol_actor`), one per connection.
//
// Error policy of the callback adapter (asyncio's, section 2.8): an exception
// from `data_received` or `eof_received` is fatal: the transport is aborted and
// `connection_lost` receives the error. Exceptions from `connection_made`,
// `pause_writing`, `resume_writing` and `connection_lost` are logged and the
// connection carries on. After `connection_lost` the actor exits.
#pragma once

#include "actors/detail/callback_adapter.hpp"
#include "actors/extra_info.hpp"
#include "actors/messages.hpp"
#include "runtime/pinned.hpp"

#include <functional>
#include <memory>
#include <string_view>

namespace shardwire {

/// Creates the protocol actor of a new connection. Called on the thread of
/// the shard that owns the connection, with that shard; the default factories
/// spawn the protocol pinned to it, so the data path crosses no thread.
/// Throwing or returning an invalid handle closes the connection.
using protocol_factory = std::function<protocol_actor(shard&)>;

/// A factory spawning actor class `T` (derived from a pinned protocol base)
/// with copies of `xs...` as constructor arguments.
template <class T, class... Ts>
protocol_factory spawn_protocol(Ts... xs) {
  return [=](shard& s) -> protocol_actor { return spawn_on<T>(s, xs...); };
}

/// A factory spawning behavior function `f(protocol_actor::pointer self,
/// xs...)` as a pinned actor.
template <class F, class... Ts>
protocol_factory protocol_fun(F f, Ts... xs) {
  return [=](shard& s) -> protocol_actor { return spawn_fun_on(s, f, xs...); };
}

class callback_protocol_actor;

/// A protocol's handle on its transport, with asyncio's method names. Every
/// call sends one message to the transport actor; none blocks.
///
/// Callback-style protocols get one bound for them. Actor-style protocols may
/// keep one in their state and `bind` it in their `connected` handler: its
/// `write` reuses one mailbox element when the transport is co-located and
/// idle, which saves an allocation per write on the data path (plain
/// `send(transport, write{...})` is always correct too).
class transport_ref {
public:
  transport_ref() = default;
  transport_ref(const transport_ref&) = delete;
  transport_ref& operator=(const transport_ref&) = delete;

  /// Binds to `transport`; `self` is the protocol actor sending the
  /// messages (it must outlive this object). `info` is kept for `info()`.
  void bind(caf::scheduled_actor* self, transport_actor transport,
            transport_info info);

  /// Binds without keeping the transport's info (`info()` is then empty):
  /// for protocols that do not need addresses, ~200 bytes less per
  /// connection.
  void bind(caf::scheduled_actor* self, transport_actor transport);

  void write(buffer bytes);
  void write(std::string_view text) { write(buffer::copy_of(text)); }
  /// There is no text type and no null string: `write(0)` or
  /// `write(nullptr)` would become a string_view of a null pointer.
  void write(std::nullptr_t) = delete;
  void writelines(std::vector<buffer> parts);
  void write_eof();
  void close();
  void abort();
  void pause_reading();
  void resume_reading();
  /// Invalid limits are logged as errors (the reply is an error).
  void set_write_buffer_limits(caf::optional<uint64_t> high,
                               caf::optional<uint64_t> low = caf::none);
  /// Hands later events to `next`; this protocol gets no more messages
  /// except those already sent to it.
  void set_protocol(protocol_actor next);
  /// Lends the transport `lease` for its next read (buffered reading, see
  /// `lend_buffer` in messages.hpp); buffered_protocol does this for you.
  void lend(read_lease lease);

  /// asyncio's loop.start_tls: upgrades this connection to TLS in place
  /// (transports/tls.hpp). `early`: the bytes of the last data_received
  /// that came after the upgrade point (e.g. after "STARTTLS\r\n"); they
  /// and whatever the transport delivers until the handshake ends go to
  /// TLS, never to data_received, so no byte is lost. `done` runs on this
  /// protocol's actor after the handshake, with the new extra info (info()
  /// has it too), or with the error (the connection then ends with
  /// connection_lost). Plain protocols only (not buffered_protocol).
  void start_tls(tls_params tls, buffer early,
                 std::function<void(caf::expected<transport_info>)> done);

  /// The adapter's count of the bytes delivered to this protocol, and the
  /// hand-back while start_tls runs: true if `bytes` went back to the
  /// transport instead of to data_received.
  bool note_received(const buffer& bytes) {
    received_ += bytes.size();
    if (!upgrading_) [[likely]]
      return false;
    hand_back(bytes);
    return true;
  }

  /// True once `close` or `abort` was called here, EOF auto-closed, or the
  /// connection was lost.
  bool is_closing() const noexcept { return closing_; }
  void mark_closing() noexcept { closing_ = true; }

  /// The transport's extra info; still valid after the connection is lost.
  /// Empty (kind "", fd -1) if bound without it.
  const transport_info& info() const noexcept;

  /// asyncio's get_extra_info(name, default): one entry of info() by name
  /// (the names are in actors/extra_info.hpp); `fallback` if there is none.
  extra_value get_extra_info(std::string_view name,
                             extra_value fallback = {}) const {
    return shardwire::extra_info(info(), name, std::move(fallback));
  }

  /// asyncio's can_write_eof() (false if bound without info).
  bool can_write_eof() const noexcept { return info().can_write_eof; }

  const transport_actor& handle() const noexcept { return link_.handle(); }

private:
  // `write` may take the fast path in a reused mailbox element.
  detail::transport_link<transport_actor, true> link_;
  // Held apart: most of its size is two endpoints that many protocols
  // never read.
  std::unique_ptr<const transport_info> info_;
  // Bytes delivered so far (start_tls's `received`).
  uint64_t received_ = 0;
  bool closing_ = false;
  bool upgrading_ = false; // start_tls waits for its reply
  void hand_back(const buffer& bytes);
};

/// Base class for callback-style protocols (asyncio.Protocol).
class protocol {
public:
  virtual ~protocol();

  /// First callback. Keep what you need from `t` (it stays valid).
  virtual void connection_made(transport_ref& t);
  /// Non-empty bytes; boundaries are arbitrary.
  virtual void data_received(const buffer& bytes);
  /// Peer half-closed; return true to keep writing, false to close.
  virtual bool eof_received();
  virtual void pause_writing();
  virtual void resume_writing();
  /// Last callback; empty `reason` means a clean close.
  virtual void connection_lost(const caf::error& reason);

protected:
  /// The transport of this connection (valid from connection_made on).
  transport_ref& transport() noexcept { return *transport_; }

  /// The actor hosting this protocol: send messages, start timers
  /// (`delayed_send`), spawn. Its behavior belongs to the adapter: do not
  /// `become` another one (the adapter also relies on it having no receive
  /// timeout, see pinned::never_uses_receive_timeouts).
  callback_protocol_actor* self() noexcept { return self_; }

private:
  friend class callback_protocol_actor;
  friend class callback_buffered_protocol_actor;
  transport_ref* transport_ = nullptr;
  callback_protocol_actor* self_ = nullptr;
};

/// The pinned actor that runs one callback-style `protocol`, on the shard of
/// its transport.
class callback_protocol_actor
    : public detail::callback_adapter<callback_protocol_actor, protocol_actor,
                                      protocol, transport_ref, data> {
public:
  callback_protocol_actor(caf::actor_config& cfg,
                          std::unique_ptr<protocol> impl);

  behavior_type make_behavior() override;

private:
  friend callback_adapter;
  static constexpr const char* kind = "protocol";
  using connected_message = connected;
  static auto handlers();
  void on_hot(const data& msg);
  bool on_eof();
};

// Defined here so that the adapter's consume() inlines it: the data path of
// every callback protocol (out of line it costs ~20 instructions per read).
[[gnu::always_inline]] inline void
callback_protocol_actor::on_hot(const data& msg) {
  if (transport_.note_received(msg.bytes)) return; // TLS bytes (start_tls)
  if (!finished_)
    fatal("data_received", [&] { impl_->data_received(msg.bytes); });
}

/// A factory for callback protocol `P`, constructed per connection from
/// copies of `xs...`.
template <class P, class... Ts>
protocol_factory make_protocol(Ts... xs) {
  return [=](shard& s) -> protocol_actor {
    return spawn_on<callback_protocol_actor>(s, std::make_unique<P>(xs...));
  };
}

} // namespace shardwire
