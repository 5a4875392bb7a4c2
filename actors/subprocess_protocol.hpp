// Subprocess protocols: how a child's protocol actor is created, and the
// callback-style adapter for code ported from asyncio.SubprocessProtocol.
//
// Two styles, same vocabulary (the subprocess section of messages.hpp):
// - actor style: a typed actor for `subprocess_protocol_actor` handling
//   `subprocess_connected`, `pipe_data`, `pipe_lost`, `exited`, `pause`,
//   `resume`, `lost`;
// - callback style: derive from `subprocess_protocol` and override
//   `connection_made`, `pipe_data_received`, `pipe_connection_lost`,
//   `process_exited`, `connection_lost`. It runs in a pinned actor
//   (`callback_subprocess_protocol_actor`) on the transport's shard.
//
// Error policy of the callback adapter (asyncio's: the loop logs an exception
// from a subprocess callback and goes on): every callback's exception is
// logged, the child keeps running. After `connection_lost` the actor exits.
#pragma once

#include "actors/detail/callback_adapter.hpp"
#include "actors/extra_info.hpp"
#include "actors/messages.hpp"
#include "runtime/pinned.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string_view>

namespace shardwire {

/// Creates the protocol actor of a new child, on the thread of the shard
/// that runs its transport. Throwing or returning an invalid handle kills the
/// child and fails the spawn with `sw_errc::factory_failed`.
using subprocess_protocol_factory =
    std::function<subprocess_protocol_actor(shard&)>;

/// A factory spawning actor class `T` (derived from
/// `pinned<subprocess_protocol_actor::base>`) with copies of `xs...`.
template <class T, class... Ts>
subprocess_protocol_factory spawn_subprocess_protocol(Ts... xs) {
  return [=](shard& s) -> subprocess_protocol_actor {
    return spawn_on<T>(s, xs...);
  };
}

/// A factory spawning behavior function
/// `f(subprocess_protocol_actor::pointer self, xs...)` as a pinned actor.
template <class F, class... Ts>
subprocess_protocol_factory subprocess_protocol_fun(F f, Ts... xs) {
  return [=](shard& s) -> subprocess_protocol_actor {
    return spawn_fun_on(s, f, xs...);
  };
}

/// A subprocess protocol's handle on its transport, with asyncio's method
/// names. Every call sends one message; none blocks. (No fast path: `write`
/// and signals are requests, so that a refusal is logged, and the transport
/// tells its senders apart, so it queues messages that come without one.)
class subprocess_transport_ref {
public:
  /// is_closing() turns true only through close() (asyncio: not after the
  /// child exited by itself, not in connection_lost).
  static constexpr bool closing_only_by_close = true;

  subprocess_transport_ref() = default;
  subprocess_transport_ref(const subprocess_transport_ref&) = delete;
  subprocess_transport_ref& operator=(const subprocess_transport_ref&) = delete;

  /// `self` is the protocol actor sending the messages (it must outlive
  /// this object).
  void bind(subprocess_protocol_actor::base* self,
            subprocess_transport_actor transport, process_info info);

  /// Writes to the child's stdin (a pipe, or the write is refused).
  void write(buffer bytes);
  void write(std::string_view text) { write(buffer::copy_of(text)); }
  /// Closes the child's stdin once what was written is flushed.
  void write_eof();
  /// Closes every pipe and SIGKILLs the child if it still runs (asyncio).
  void close();
  /// Signals the child (or its group). A child that already exited is left
  /// alone and the refusal is logged (asyncio raises ProcessLookupError).
  void send_signal(int signo, bool group = false);
  void terminate();
  void kill();
  /// Hands later events to `next` (asyncio's set_protocol); this protocol
  /// gets no more messages except those already sent to it.
  void set_protocol(subprocess_protocol_actor next);

  int pid() const noexcept { return info_.pid; }
  /// The return code once `process_exited` ran; nullopt before.
  std::optional<int> returncode() const noexcept { return returncode_; }
  /// Whether the OOM killer struck in the child's cgroup (child_limits::
  /// cgroup with memory_max); known once `process_exited` ran.
  bool oom_killed() const noexcept { return oom_killed_; }
  bool is_closing() const noexcept { return closing_; }
  const process_info& info() const noexcept { return info_; }
  /// asyncio's get_extra_info(name, default) ("subprocess", "pid", ...:
  /// actors/extra_info.hpp).
  extra_value get_extra_info(std::string_view name,
                             extra_value fallback = {}) const {
    return shardwire::extra_info(info_, name, std::move(fallback));
  }
  const subprocess_transport_actor& handle() const noexcept {
    return link_.handle();
  }

  /// Adapter side: records the return code from `exited`.
  void set_returncode(int rc, bool oom_killed = false) noexcept {
    returncode_ = rc;
    oom_killed_ = oom_killed;
  }
  void mark_closing() noexcept { closing_ = true; }

private:
  template <class T>
  void ask(T msg);

  detail::transport_link<subprocess_transport_actor, false> link_;
  process_info info_;
  std::optional<int> returncode_;
  bool oom_killed_ = false;
  bool closing_ = false;
};

/// Base class for callback-style subprocess protocols
/// (asyncio.SubprocessProtocol). All callbacks run on the transport's shard.
class subprocess_protocol {
public:
  virtual ~subprocess_protocol();

  /// First callback. Keep what you need from `t` (it stays valid).
  virtual void connection_made(subprocess_transport_ref& t);
  /// Output of the child on `fd` (1 = stdout, 2 = stderr).
  virtual void pipe_data_received(int fd, const buffer& bytes);
  /// Pipe `fd` closed; empty `reason` for a clean close.
  virtual void pipe_connection_lost(int fd, const caf::error& reason);
  /// The child exited with `returncode` (minus the signal number for a
  /// signal death). Output may still follow (see messages.hpp).
  virtual void process_exited(int returncode);
  /// stdin's write buffer went over / back under its water marks.
  virtual void pause_writing();
  virtual void resume_writing();
  /// Last callback: the child exited and every pipe closed.
  virtual void connection_lost(const caf::error& reason);

protected:
  subprocess_transport_ref& transport() noexcept { return *transport_; }
  /// The actor hosting this protocol: send messages, start timers
  /// (`delayed_send`), spawn. Its behavior belongs to the adapter and has
  /// no receive timeout: do not replace it.
  caf::scheduled_actor* self() noexcept { return self_; }

private:
  friend class callback_subprocess_protocol_actor;
  subprocess_transport_ref* transport_ = nullptr;
  caf::scheduled_actor* self_ = nullptr;
};

/// The pinned actor that runs one callback-style `subprocess_protocol`, on
/// the shard of its transport.
class callback_subprocess_protocol_actor
    : public detail::callback_adapter<callback_subprocess_protocol_actor,
                                      subprocess_protocol_actor,
                                      subprocess_protocol,
                                      subprocess_transport_ref, pipe_data> {
public:
  callback_subprocess_protocol_actor(caf::actor_config& cfg,
                                     std::unique_ptr<subprocess_protocol> impl);

  behavior_type make_behavior() override;

private:
  friend callback_adapter;
  static constexpr const char* kind = "subprocess_protocol";
  using connected_message = subprocess_connected;
  static auto handlers();
  void on_hot(const pipe_data& msg);
};

/// A factory for callback protocol `P`, constructed per child from copies of
/// `xs...`.
template <class P, class... Ts>
subprocess_protocol_factory make_subprocess_protocol(Ts... xs) {
  return [=](shard& s) -> subprocess_protocol_actor {
    return spawn_on<callback_subprocess_protocol_actor>(
        s, std::make_unique<P>(xs...));
  };
}

} // namespace shardwire
