// The actor behind every stream transport (TCP, Unix, adopted fds).
//
// Runs pinned to the shard that owns the socket. Readiness comes from the
// shard's fd_poller (reactor style: readiness, then one non-blocking read or
// write); its callbacks run on the same shard thread while the actor is
// idle, so they touch the actor's state without locks and never re-enter a
// message handler. Everything the protocol sees is a mailbox message from
// this actor, in order.
#pragma once

#include "actors/protocol.hpp"
#include "actors/read_credit.hpp"
#include "runtime/fd_poller.hpp"
#include "runtime/pinned.hpp"
#include "transports/detail/transport_lifecycle.hpp"
#include "transports/detail/write_queue.hpp"
#include "transports/stream.hpp"

#include <caf/invoke_message_result.hpp>

#include <memory>
#include <optional>
#include <sys/uio.h>

namespace shardwire::detail {

using stream_transport_actor =
    transport_actor::extend<caf::reacts_to<read_credit_returned>>;

/// Which way bytes flow through a stream transport's descriptor.
enum class stream_direction : uint8_t {
  /// Sockets (and socket-like fds): read and write, half-close by SHUT_WR.
  both,
  /// A read pipe (asyncio's _UnixReadPipeTransport): EOF is followed by
  /// `lost`; `write` is refused with sw_errc::not_supported.
  read_only,
  /// A write pipe (asyncio's _UnixWritePipeTransport): never reads; the
  /// reader closing its end ends the transport (EPIPE if bytes were still
  /// queued); `write_eof` closes the pipe once drained.
  write_only,
};

/// Creates the transport actor for connected stream socket `fd` on shard
/// `s`; the transport owns `fd` from now on (it is closed on any failure)
/// and spawns the protocol with `factory` on the same shard. `done` (may be
/// empty) gets the result.
void spawn_stream_transport(shard& s, int fd, std::string kind,
                            protocol_factory factory, stream_settings settings,
                            connect_callback done);

/// The same for one end of a pipe (`read_only` or `write_only`); returns the
/// transport (the subprocess transport spawns its pipes on its own shard).
transport_actor spawn_pipe_transport(shard& s, int fd,
                                     stream_direction direction,
                                     protocol_factory factory,
                                     stream_settings settings,
                                     connect_callback done);

class stream_transport
    : public pinned<stream_transport_actor::base, pinned_role::transport>,
      private fd_watcher,
      private transport_lifecycle<stream_transport> {
public:
  stream_transport(caf::actor_config& cfg, int fd, std::string kind,
                   protocol_factory factory, stream_settings settings,
                   connect_callback done,
                   stream_direction direction = stream_direction::both);

  behavior_type make_behavior() override;
  void on_exit() override;

  /// Handles `write`, the hot message type, without behavior dispatch.
  caf::invoke_message_result consume(caf::mailbox_element& x) override;

private:
  friend class transport_lifecycle<stream_transport>;

  // -- message handlers (through the per-thread shared behavior)
  // ---------------
  static behavior_type make_shared_behavior();
  void do_write_eof();
  void do_pause_reading();
  void do_resume_reading();
  transport_status status() const;
  void do_set_protocol(set_protocol& msg);
  void do_credit_returned();

  // -- lifecycle (the rest is in transport_lifecycle)
  // ---------------------------------------------------------------
  void on_connected_ack();
  void fatal(int err, const char* op);
  void report(caf::expected<connection> result);
  // Hooks for transport_lifecycle.
  void drop_writes() noexcept { wq_.clear(); }
  bool writes_empty() const noexcept { return wq_.empty(); }
  uint64_t write_bytes() const noexcept { return wq_.bytes(); }
  void on_finishing() noexcept { read_closed_ = true; }
  void on_close_draining();
  void on_protocol_gone() noexcept { proto_fast_ = nullptr; }

  // -- reading
  // -----------------------------------------------------------------
  bool should_read() const noexcept;
  void update_reading();
  /// Reads once; returns the `data` to send (sent by the caller after it
  /// stopped being busy, so the protocol's reply can take the fast path).
  /// Leaves the poller interest to the caller (on_fd_ready syncs it once
  /// per event, after reading and writing).
  std::optional<data> on_readable();
  /// Sends `msg` to the protocol, in this thread's reused mailbox element
  /// when the protocol can take it at once (co-located and idle).
  void send_data(data&& msg);
  void on_eof();
  /// Readiness from the shard's poller (reading, writing, or for a write
  /// pipe the reader closing its end).
  void on_fd_ready(uint32_t events) override;
  /// Registers what the transport waits for now (read_armed_, write_armed_,
  /// a write pipe's hang-up) with the poller.
  void sync_interest();

  // -- writing
  // -----------------------------------------------------------------
  /// Queues (or sends at once) `parts`. A write after write_eof is an error
  /// returned only if `is_request`, logged otherwise.
  caf::result<void> enqueue_write(const buffer* parts, size_t n,
                                  bool is_request);
  /// Writes up to `cnt` buffers in one syscall (retrying EINTR); returns
  /// what sendmsg/writev returned.
  ssize_t write_gathered(iovec* iov, size_t cnt);
  void arm_write();
  void flush();
  void after_drain();
  /// After the queue grew: `pause` above high (and, when reads follow
  /// writes, stop reading), abort past the hard cap.
  void after_queue_grew();
  void warn_dropped_write();
  transport_info make_info() const;

  // Registration with the shard's poller; closed in on_exit, after which
  // on_fd_ready is never called again.
  fd_watch watch_;
  // Needed only until the protocol acknowledged `connected`; kept apart and
  // freed then, so an established connection does not carry it (~90 B).
  struct startup {
    protocol_factory factory;
    stream_settings settings;
    connect_callback done;
  };
  std::unique_ptr<startup> startup_;
  protocol_actor proto_;
  // The pinned protocol behind proto_ (nullptr if it is not one): `data` for
  // it may take the fast path in a reused mailbox element.
  pinned_base* proto_fast_ = nullptr;
  // Only the kind is kept; addresses are read from the fd when asked (the
  // protocol got a full copy in `connected`). Saves ~200 bytes per idle
  // connection.
  // Interned (one shared copy per kind name): a string per connection
  // would cost 32 bytes for "tcp".
  const std::string* kind_;
  read_credit_ptr credit_;
  write_queue wq_;
  // Hard cap on wq_.bytes(); 0 = none.
  uint64_t write_cap_ = 0;

  // The small fields together, so they pack into three words (every idle
  // connection carries them).
  int fd_;
  uint32_t next_read_size_; // bytes asked of the pool per read (<= 256 KiB)
  uint32_t dropped_writes_ = 0;
  // Read state.
  bool started_ = false;       // protocol handled `connected`
  bool user_paused_ = false;   // pause_reading
  bool credit_paused_ = false; // read back-pressure
  bool read_closed_ = false;   // EOF seen, close, abort or error
  bool read_armed_ = false;    // read interest registered
  // Write state (watermarks, closing_ and lost_sent_ are in
  // transport_lifecycle).
  bool write_armed_ = false;   // write interest registered
  bool eof_requested_ = false; // write_eof called
  bool eof_sent_ = false;      // SHUT_WR done
  bool is_socket_ = true;
  bool reads_follow_writes_ = false; // no reading while writes are paused
  stream_direction direction_ = stream_direction::both;
};

} // namespace shardwire::detail
