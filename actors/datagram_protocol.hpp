// Datagram protocols: how an endpoint's protocol is created, and the
// callback-style adapter for code ported from asyncio.DatagramProtocol.
//
// Two styles, same vocabulary (the datagram section of messages.hpp):
// - actor style: a typed actor for `datagram_protocol_actor` handling
//   `datagram_connected`, `datagram`, `datagram_error`, `pause`, `resume`,
//   `lost`;
// - callback style: derive from `datagram_protocol` and override
//   `connection_made`, `datagram_received`, ... It runs inside a pinned actor
//   (`callback_datagram_protocol_actor`), one per endpoint.
//
// Error policy of the callback adapter (asyncio's, checklist C62): an
// exception from any callback, `datagram_received` and `error_received`
// included, is logged and the endpoint carries on (one bad datagram must not
// close a server). After `connection_lost` the actor exits.
#pragma once

#include "actors/detail/callback_adapter.hpp"
#include "actors/extra_info.hpp"
#include "actors/messages.hpp"
#include "runtime/pinned.hpp"

#include <functional>
#include <memory>
#include <string_view>

namespace shardwire {

/// Creates the protocol actor of a datagram endpoint. Called on the thread of
/// the shard that owns the socket, with that shard. Throwing or returning an
/// invalid handle fails endpoint creation with `sw_errc::factory_failed`.
using datagram_protocol_factory =
    std::function<datagram_protocol_actor(shard&)>;

/// A factory spawning actor class `T` (derived from
/// `pinned<datagram_protocol_actor::base>`) with copies of `xs...`.
template <class T, class... Ts>
datagram_protocol_factory spawn_datagram_protocol(Ts... xs) {
  return [=](shard& s) -> datagram_protocol_actor {
    return spawn_on<T>(s, xs...);
  };
}

/// A factory spawning behavior function
/// `f(datagram_protocol_actor::pointer self, xs...)` as a pinned actor.
template <class F, class... Ts>
datagram_protocol_factory datagram_protocol_fun(F f, Ts... xs) {
  return [=](shard& s) -> datagram_protocol_actor {
    return spawn_fun_on(s, f, xs...);
  };
}

/// A datagram protocol's handle on its transport, with asyncio's method
/// names. Every call sends one message to the transport; none blocks.
/// `sendto` to a co-located idle transport is handled before it returns, in
/// a reused mailbox element (no allocation per datagram), never overtaking
/// an earlier call.
class datagram_transport_ref {
public:
  datagram_transport_ref() = default;
  datagram_transport_ref(const datagram_transport_ref&) = delete;
  datagram_transport_ref& operator=(const datagram_transport_ref&) = delete;

  void bind(caf::scheduled_actor* self, datagram_transport_actor transport,
            transport_info info);

  /// Sends one datagram; `peer` none = the connected remote address. A bad
  /// peer is logged by the transport (the endpoint stays open).
  void sendto(buffer bytes, caf::optional<endpoint> peer = caf::none);
  void sendto(std::string_view text, caf::optional<endpoint> peer = caf::none) {
    sendto(buffer::copy_of(text), std::move(peer));
  }
  void close();
  void abort();
  void pause_reading();
  void resume_reading();

  bool is_closing() const noexcept { return closing_; }
  void mark_closing() noexcept { closing_ = true; }
  const transport_info& info() const noexcept { return info_; }
  /// asyncio's get_extra_info(name, default) (names: actors/extra_info.hpp).
  extra_value get_extra_info(std::string_view name,
                             extra_value fallback = {}) const {
    return shardwire::extra_info(info_, name, std::move(fallback));
  }
  /// Hands later events to `next` (asyncio's set_protocol); this protocol
  /// gets no more messages except those already sent to it.
  void set_protocol(datagram_protocol_actor next);
  const datagram_transport_actor& handle() const noexcept {
    return link_.handle();
  }

private:
  // `sendto` may take the fast path in a reused mailbox element.
  detail::transport_link<datagram_transport_actor, true> link_;
  transport_info info_;
  bool closing_ = false;
};

/// Base class for callback-style datagram protocols
/// (asyncio.DatagramProtocol). All callbacks run on the endpoint's shard.
class datagram_protocol {
public:
  virtual ~datagram_protocol();

  /// First callback. Keep what you need from `t` (it stays valid).
  virtual void connection_made(datagram_transport_ref& t);
  /// One datagram (possibly empty) from `peer`.
  virtual void datagram_received(const buffer& bytes, const endpoint& peer);
  /// A send or receive failed (ICMP unreachable, EMSGSIZE ...); the
  /// endpoint stays open.
  virtual void error_received(const caf::error& err);
  virtual void pause_writing();
  virtual void resume_writing();
  /// Last callback; empty `reason` means a clean close.
  virtual void connection_lost(const caf::error& reason);

protected:
  datagram_transport_ref& transport() noexcept { return *transport_; }
  /// The actor hosting this protocol: send messages, start timers
  /// (`delayed_send`), spawn. Its behavior belongs to the adapter and has
  /// no receive timeout: do not replace it.
  caf::scheduled_actor* self() noexcept { return self_; }

private:
  friend class callback_datagram_protocol_actor;
  datagram_transport_ref* transport_ = nullptr;
  caf::scheduled_actor* self_ = nullptr;
};

/// The pinned actor that runs one callback-style `datagram_protocol`, on the
/// shard of its transport.
class callback_datagram_protocol_actor
    : public detail::callback_adapter<callback_datagram_protocol_actor,
                                      datagram_protocol_actor,
                                      datagram_protocol,
                                      datagram_transport_ref, datagram> {
public:
  callback_datagram_protocol_actor(caf::actor_config& cfg,
                                   std::unique_ptr<datagram_protocol> impl);

  behavior_type make_behavior() override;

private:
  friend callback_adapter;
  static constexpr const char* kind = "datagram_protocol";
  using connected_message = datagram_connected;
  static auto handlers();
  void on_hot(const datagram& msg);
};

/// A factory for callback protocol `P`, constructed per endpoint from copies
/// of `xs...`.
template <class P, class... Ts>
datagram_protocol_factory make_datagram_protocol(Ts... xs) {
  return [=](shard& s) -> datagram_protocol_actor {
    return spawn_on<callback_datagram_protocol_actor>(
        s, std::make_unique<P>(xs...));
  };
}

} // namespace shardwire
