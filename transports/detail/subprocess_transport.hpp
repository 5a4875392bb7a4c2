// The actor behind every subprocess transport.
//
// Runs pinned to one shard, with the child's pipes as pipe transports on the
// same shard. Towards its pipes it plays their protocol (it handles
// `connected`, `data`, `eof`, `lost` ... from them and tells them apart by
// sender); towards the user it is a `subprocess_transport_actor` and relays
// pipe events as `pipe_data` / `pipe_lost`, in the order each pipe sent them.
// The child's exit is watched on the shard's io_context (pidfd or SIGCHLD),
// so the handler runs on the home thread while the actor is idle.
#pragma once

#include "actors/subprocess_protocol.hpp"
#include "runtime/fd_poller.hpp"
#include "runtime/pinned.hpp"
#include "transports/detail/child_process.hpp"
#include "transports/stream.hpp"
#include "transports/subprocess.hpp"

#include <asio/signal_set.hpp>

#include <array>
#include <memory>
#include <optional>
#include <vector>

namespace shardwire::detail {

/// The child was reaped with this return code (sent by the transport to
/// itself from the exit watcher, so the exit is handled as a message).
struct child_reaped {
  int32_t status = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_reaped& x) {
  return f(caf::meta::type_name("shardwire::child_reaped"), x.status);
}

/// The transport's full interface: the user-facing one plus the protocol
/// side of its three pipes.
using subprocess_internal_actor = subprocess_transport_actor::extend<
    caf::reacts_to<connected>, caf::reacts_to<data>,
    caf::replies_to<eof>::with<bool>, caf::reacts_to<pause>,
    caf::reacts_to<resume>, caf::reacts_to<lost>, caf::reacts_to<child_reaped>>;

class subprocess_transport
    : public pinned<subprocess_internal_actor::base, pinned_role::transport>,
      private fd_watcher {
public:
  subprocess_transport(caf::actor_config& cfg, child_request req,
                       subprocess_protocol_factory factory,
                       subprocess_options opts, stream_settings settings,
                       subprocess_callback done);

  behavior_type make_behavior() override;
  void on_exit() override;

  /// Pipe transports hand `data` over without a sender on the fast path;
  /// this actor tells its pipes apart by sender, so such messages queue.
  bool deliver_now(caf::mailbox_element_ptr& ptr) override;

private:
  struct pipe_slot {
    transport_actor hdl;
    caf::actor_addr addr;
    bool open = false;
  };

  // -- pipe side
  // ----------------------------------------------------------------
  /// The fd (0, 1, 2) of the pipe that sent the current message, or -1.
  int sender_fd();
  caf::result<void> on_pipe_connected();
  void on_pipe_data(data& msg);
  void on_pipe_lost(lost& msg);
  void on_pipe_flow(bool paused);

  // -- user side
  // ----------------------------------------------------------------
  template <class Msg>
  caf::result<void> to_stdin(Msg&& msg);
  caf::result<void> do_signal(int signo, bool group);
  /// get_status: closing once `close` was called; reading while stdout or
  /// stderr is open; the write buffer of stdin's pipe.
  caf::result<transport_status> status();
  caf::result<transport_actor> pipe_transport(int fd) const;
  void do_close();

  // -- the child
  // ----------------------------------------------------------------
  void watch_exit();
  void on_child_event();
  /// SIGKILLs the child (its group, its cgroup) and waits for it.
  int kill_and_reap_child();
  /// Notes an OOM kill, kills what is left in the child's cgroup and
  /// removes it; after the child was reaped.
  void release_cgroup();
  void on_fd_ready(uint32_t) override { on_child_event(); }
  /// Closes the pidfd / cancels the SIGCHLD wait.
  void stop_watching();
  void try_finish();
  void report(caf::expected<subprocess> result);
  void on_protocol_down(const caf::down_msg& msg);

  child_request req_;
  subprocess_protocol_factory factory_;
  subprocess_options opts_;
  stream_settings settings_;
  subprocess_callback done_;
  std::shared_ptr<bool> alive_;
  caf::strong_actor_ptr self_ref_;

  spawned_child child_;
  process_info info_;
  std::optional<int> returncode_;
  bool reaped_ = false; // waited for; child_reaped may still be queued
  int reaped_status_ = 0;
  bool reaped_oom_ = false; // the OOM killer struck in the child's cgroup
  // The child's pidfd (readable once it exited), watched on the shard's
  // poller like every descriptor; -1 when SIGCHLD is watched instead.
  int pidfd_ = -1;
  fd_watch pidfd_watch_;
  std::optional<asio::signal_set> sigchld_;

  subprocess_protocol_actor proto_;
  std::array<pipe_slot, 3> pipes_;
  // Pipes that asked `connected` before the protocol handled its own.
  std::vector<caf::typed_response_promise<void>> held_pipes_;
  bool started_ = false;
  bool closing_ = false;
  bool lost_sent_ = false;
};

} // namespace shardwire::detail
