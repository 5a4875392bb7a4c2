// A per-shard readiness poller for long-lived descriptors (stream sockets,
// pipes).
//
// Why not Asio's own reactor for these: every Asio descriptor carries a
// ~170-byte per-descriptor state, and an idle connection waiting for input
// holds a ~160-byte pending wait operation; re-arming a wait costs an
// epoll_ctl per read. Here a watched descriptor costs one slot in a
// per-shard table and an `fd_watch` (16 bytes) in its owner, and the data
// path makes no epoll_ctl.
//
// How it runs: the poller owns one epoll instance, registered once with the
// shard's Asio reactor together with a reactor operation that never
// completes (the idiom Asio's own signal_set uses for its pipe). Whenever
// the reactor finds the poller's epoll readable it runs that operation,
// which drains the poller's epoll in batches until it is empty (or a budget
// is spent) and calls the watchers; the operation stays queued, so a
// wake-up costs no epoll_ctl, no allocation and no handler post. Waiting
// with Asio's `async_wait` instead would re-arm the descriptor with an
// epoll_ctl on every wake-up, and each re-arm polls the nested epoll. (The
// registration goes through Asio's internal reactor interface,
// asio/detail/epoll_reactor.hpp, as Asio's own I/O objects do; written
// against Debian 12's Asio 1.22.)
//
// Descriptors are registered edge-triggered, and the poller remembers what
// each one is ready for. A watcher is called when its descriptor is ready
// for something it wants; it tells the poller when it found the descriptor
// drained (`fd_watch::clear_ready`, on a short read, EAGAIN or a partial
// write). Until it does, the poller calls it again in the next round, so a
// watcher may do one bounded read per call without losing the rest
// (level-triggered behaviour at edge-triggered cost: no re-polling of every
// ready socket by the kernel on each wait). Watchers with a fresh event are
// called straight from the epoll batch; those left undrained wait for a
// round posted to the io_context, which calls each of them once, so Asio
// handlers (timers, other sockets) run in between and a busy descriptor
// cannot starve the others. For the same reason one wake-up serves at most
// `events_per_wakeup` events; the rest are taken in a posted round.
//
// Guarantees:
// - Watchers are called on the thread that runs the io_context, one at a
//   time, never from inside `open`, `set_interest`, `clear_ready` or
//   `close`.
// - After `close` (or the fd_watch's destruction) the watcher is never
//   called again, even for an event already fetched in the current round.
// - Readiness that nobody wants now is kept, not reported: an error or
//   hang-up on a paused descriptor costs nothing until its owner wants
//   something again, and is then reported at once.
// - A watcher that throws does not lose the events fetched with its own:
//   they are served in the next round, and the exception propagates to
//   whoever runs the io_context.
// - `close` from another thread (an owner destroyed where its last handle
//   was dropped) removes the descriptor from epoll at once and frees the
//   slot later on the poller's thread; owners should avoid it (transports
//   keep themselves alive while open), since a callback already running on
//   the poller's thread cannot be stopped.
#pragma once

#include <asio/io_context.hpp>

#include <cstdint>
#include <memory>
#include <sys/epoll.h>
#include <thread>
#include <vector>

namespace shardwire {

/// What a watched descriptor's owner waits for (bit set).
enum fd_interest : uint8_t {
  fd_none = 0,
  /// Readable, end of file, error or hang-up.
  fd_read = 1,
  /// Writable, error or hang-up.
  fd_write = 2,
  /// Error or hang-up only (a write pipe whose reader may go away).
  fd_hangup = 4,
};

/// Receives readiness. Implemented by the owner of an fd_watch.
class fd_watcher {
public:
  /// `events` are the epoll bits reported (EPOLLIN, EPOLLOUT, EPOLLERR,
  /// EPOLLHUP, ...); at least one matches the current interest.
  virtual void on_fd_ready(uint32_t events) = 0;

protected:
  ~fd_watcher() = default;
};

class fd_watch;
class shard;

class fd_poller {
public:
  /// Events taken from epoll per system call.
  static constexpr int batch_size = 64;

  /// Events served per wake-up by default before other handlers of the
  /// io_context get a turn.
  static constexpr size_t default_events_per_wakeup = 4 * batch_size;

  /// Creates the epoll instance and registers it with `io`'s reactor;
  /// throws std::system_error if it cannot. Must be created, used and
  /// destroyed on the thread that runs `io`, and destroyed before `io`.
  explicit fd_poller(asio::io_context& io,
                     size_t events_per_wakeup = default_events_per_wakeup);
  ~fd_poller();

  fd_poller(const fd_poller&) = delete;
  fd_poller& operator=(const fd_poller&) = delete;

  /// Descriptors currently watched.
  size_t watched() const noexcept { return watched_; }

  /// Times the reactor found the poller's epoll readable and the poller
  /// drained it.
  uint64_t wakeups() const noexcept { return wakeups_; }

  /// Makes the poller count its wake-ups in `s`'s metrics and mark each
  /// wake-up as a handler for the stall detector (shard::handler_scope).
  /// `s` must drive this poller's io_context and outlive the poller.
  void attach(shard& s) noexcept { shard_ = &s; }

  /// Epoll batches taken so far (system calls that returned events).
  uint64_t batches() const noexcept { return batches_; }

private:
  friend class fd_watch;
  class wakeup_op;
  struct reactor_link;

  struct slot {
    fd_watcher* watcher = nullptr; // null: free
    int fd = -1;
    uint32_t gen = 0;   // bumped when freed, so stale events are recognized
    uint32_t ready = 0; // epoll bits seen and not yet cleared by the owner
    uint32_t next_free = 0;
    uint8_t interest = fd_none;
    bool in_epoll = false;     // registered (EPOLL_CTL_ADD done, no DEL since)
    bool out_in_epoll = false; // EPOLLOUT registered (only while wanted)
    bool queued = false;       // in pending_
  };

  struct pending_entry {
    uint32_t index;
    uint32_t gen;
  };

  int add(int fd, fd_watcher& w, uint8_t interest, uint32_t& index);
  int update(uint32_t index, uint8_t interest);
  void clear_ready(uint32_t index, uint8_t what) noexcept {
    // Inline: called on every short read. End of input and errors stay:
    // they are facts, not edges.
    auto& s = slots_[index];
    if (what & fd_read) s.ready &= ~uint32_t{EPOLLIN | EPOLLPRI};
    if (what & fd_write) s.ready &= ~uint32_t{EPOLLOUT};
  }
  void remove(uint32_t index) noexcept;
  void release(uint32_t index) noexcept;
  int register_out(slot& s, uint32_t index, bool on);
  /// Calls slot `index`'s watcher if it is ready for what it wants, and
  /// queues it for the next round if it did not drain its descriptor.
  void serve(uint32_t index, uint32_t gen);
  /// Queues slot `index` for a call if it is ready for what it wants.
  void consider(uint32_t index);
  /// Takes events from epoll until none is left or the budget is spent
  /// (then the rest waits for a round). Run by the reactor operation.
  void drain_epoll();
  void drain_epoll_batches();
  /// Takes one batch from epoll and serves it; returns how many events
  /// it took.
  int take_batch();
  /// Calls every watcher queued before this round started, once, then
  /// takes what a budgeted wake-up left in epoll.
  void run_round();
  void schedule_round();

  asio::io_context& io_;
  int epfd_ = -1;
  std::unique_ptr<reactor_link> link_;
  std::thread::id owner_;
  size_t events_per_wakeup_;
  std::vector<slot> slots_;
  std::vector<pending_entry> pending_;
  std::vector<pending_entry> round_; // reused storage for run_round
  uint32_t free_head_ = UINT32_MAX;
  size_t watched_ = 0;
  shard* shard_ = nullptr;
  uint64_t wakeups_ = 0;
  uint64_t batches_ = 0;
  bool round_posted_ = false;
  bool in_round_ = false;
  bool epoll_left_ = false; // a wake-up stopped at its budget
};

/// One watched descriptor; unregisters itself when closed or destroyed.
/// The descriptor itself stays owned (and closed) by the caller, after
/// `close`.
class fd_watch {
public:
  fd_watch() = default;
  ~fd_watch() { close(); }

  fd_watch(const fd_watch&) = delete;
  fd_watch& operator=(const fd_watch&) = delete;

  /// Starts watching `fd` for `interest` (fd_interest bits), calling `w`.
  /// Returns 0, or the errno of epoll_ctl (EPERM: the descriptor cannot be
  /// polled, e.g. a regular file).
  int open(fd_poller& p, int fd, fd_watcher& w, uint8_t interest);

  /// Changes what the owner waits for; a system call only when write
  /// interest comes or goes. If the descriptor is already ready for what is
  /// now wanted, the watcher is called in the next round. Returns 0 or an
  /// errno.
  int set_interest(uint8_t interest);

  /// Tells the poller the descriptor was found drained for `what` (fd_read:
  /// a short read, EOF or EAGAIN; fd_write: a partial write or EAGAIN):
  /// the watcher is called again only after the next edge.
  // Always inlined: it is on every short read and partial write, and GCC
  // stops inlining it once a backend calls it from more places.
  [[gnu::always_inline]] inline void clear_ready(uint8_t what) noexcept;

  /// Stops watching. Idempotent.
  void close() noexcept;

  bool is_open() const noexcept { return poller_ != nullptr; }

private:
  fd_poller* poller_ = nullptr;
  uint32_t index_ = 0;
};

inline void fd_watch::clear_ready(uint8_t what) noexcept {
  if (poller_ != nullptr) poller_->clear_ready(index_, what);
}

} // namespace shardwire
