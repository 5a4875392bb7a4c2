#include "runtime/fd_poller.hpp"

#include "runtime/shard.hpp"

#include <asio/detail/epoll_reactor.hpp>
#include <asio/detail/reactor_op.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <cerrno>
#include <sys/epoll.h>
#include <system_error>
#include <unistd.h>

namespace shardwire {

namespace {

constexpr uint32_t error_bits = EPOLLERR | EPOLLHUP;
constexpr uint32_t read_bits = EPOLLIN | EPOLLRDHUP | EPOLLPRI;
constexpr uint32_t write_bits = EPOLLOUT;

// The epoll bits that count as "ready" for an interest.
uint32_t wanted_bits(uint8_t interest) noexcept {
  uint32_t bits = 0;
  if (interest & fd_read) bits |= read_bits;
  if (interest & fd_write) bits |= write_bits;
  if (interest != fd_none) bits |= error_bits;
  return bits;
}

uint64_t cookie(uint32_t index, uint32_t gen) noexcept {
  return (static_cast<uint64_t>(gen) << 32) | index;
}

// What a slot registers. Input is always registered (a pause costs no
// system call); output only while wanted, since some sockets (AF_UNIX)
// signal writability on every buffer the peer consumes.
epoll_event registration(uint32_t index, uint32_t gen, bool out) noexcept {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (out ? write_bits : 0U);
  ev.data.u64 = cookie(index, gen);
  return ev;
}

int make_epoll() {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0)
    throw std::system_error(errno, std::generic_category(), "epoll_create1");
  return fd;
}

} // namespace

// The poller's registration with the shard's Asio reactor.
struct fd_poller::reactor_link {
  asio::detail::epoll_reactor& reactor;
  // Internal descriptors are not work to Asio; the poller waits for as
  // long as it exists, as a pending async_wait would, so the io_context
  // does not run out of work under it.
  asio::executor_work_guard<asio::io_context::executor_type> work;
  asio::detail::epoll_reactor::per_descriptor_data data = nullptr;
};

// Runs the poller each time the reactor finds its epoll readable, and stays
// queued (`not_done`): Asio's descriptor_state keeps it in its read queue
// and calls it again on the next edge, without a re-arm. Asio destroys it
// (do_complete without an owner) when the registration goes.
class fd_poller::wakeup_op : public asio::detail::reactor_op {
public:
  explicit wakeup_op(fd_poller& p)
      : reactor_op(asio::error_code(), &wakeup_op::do_perform,
                   &wakeup_op::do_complete),
        poller_(p) {}

private:
  static status do_perform(reactor_op* base) {
    static_cast<wakeup_op*>(base)->poller_.drain_epoll();
    return not_done;
  }

  static void do_complete(void*, asio::detail::operation* base,
                          const asio::error_code&, std::size_t) {
    delete static_cast<wakeup_op*>(base);
  }

  fd_poller& poller_;
};

fd_poller::fd_poller(asio::io_context& io, size_t events_per_wakeup)
    : io_(io), epfd_(make_epoll()),
      link_(new reactor_link{asio::use_service<asio::detail::epoll_reactor>(io),
                             asio::make_work_guard(io)}),
      owner_(std::this_thread::get_id()),
      events_per_wakeup_(std::max<size_t>(events_per_wakeup, 1)) {
  // Makes the reactor the io_context's blocking task, as Asio's own
  // descriptor services do when they are created.
  link_->reactor.init_task();
  // The registration is edge-triggered: every event that reaches the
  // poller's epoll after it was last drained wakes the reactor once.
  int err = link_->reactor.register_internal_descriptor(
      asio::detail::epoll_reactor::read_op, epfd_, link_->data,
      new wakeup_op(*this));
  if (err != 0) {
    // Frees the operation it queued, then the descriptor state.
    link_->reactor.deregister_internal_descriptor(epfd_, link_->data);
    link_->reactor.cleanup_descriptor_data(link_->data);
    ::close(epfd_);
    throw std::system_error(err, std::generic_category(),
                            "registering the poller with the reactor");
  }
}

fd_poller::~fd_poller() {
  // Destroys the wakeup operation now: it is never called again.
  link_->reactor.deregister_internal_descriptor(epfd_, link_->data);
  link_->reactor.cleanup_descriptor_data(link_->data);
  ::close(epfd_);
}

void fd_poller::drain_epoll() {
  ++wakeups_;
  if (shard_ == nullptr) {
    drain_epoll_batches();
    return;
  }
  if (auto& m = shard_->metrics(); m.enabled) m.poller_wakeups.add();
  shard::handler_scope mark{*shard_, nullptr, true};
  drain_epoll_batches();
}

void fd_poller::drain_epoll_batches() {
  size_t served = 0;
  for (;;) {
    // Until epoll comes back empty: events that arrived while the last
    // batch was served are taken now, not after another trip through the
    // reactor. Once it is empty, the next event is a new edge for it.
    int n = take_batch();
    if (n <= 0) return;
    served += static_cast<size_t>(n);
    if (served >= events_per_wakeup_) {
      // No new edge comes for what is still in epoll: a round takes it.
      epoll_left_ = true;
      schedule_round();
      return;
    }
  }
}

int fd_poller::take_batch() {
  epoll_event events[batch_size];
  int n;
  do {
    n = ::epoll_wait(epfd_, events, batch_size, 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return n;
  ++batches_;
  // Readiness is recorded for the whole batch before any watcher runs: a
  // watcher that throws must not lose the edges fetched with its own.
  pending_entry fresh[batch_size];
  int m = 0;
  for (int i = 0; i < n; ++i) {
    auto index = static_cast<uint32_t>(events[i].data.u64);
    auto gen = static_cast<uint32_t>(events[i].data.u64 >> 32);
    if (index >= slots_.size()) continue;
    auto& s = slots_[index];
    if (s.watcher == nullptr || s.gen != gen || !s.in_epoll) continue;
    s.ready |= events[i].events;
    // Served at once, unless it already waits in pending_ for a round (it
    // was not drained last time): then that round serves it, once.
    if (!s.queued) fresh[m++] = {index, gen};
  }
  int i = 0;
  try {
    for (; i < m; ++i)
      serve(fresh[i].index, fresh[i].gen);
  } catch (...) {
    for (++i; i < m; ++i)
      if (slots_[fresh[i].index].gen == fresh[i].gen) consider(fresh[i].index);
    epoll_left_ = true; // the rest of this wake-up's events
    schedule_round();
    throw;
  }
  if (!pending_.empty()) schedule_round();
  return n;
}

void fd_poller::serve(uint32_t index, uint32_t gen) {
  auto* s = &slots_[index];
  auto fire = s->ready & wanted_bits(s->interest);
  if (fire == 0) return; // not wanted now: kept for when it is
  s->watcher->on_fd_ready(fire);
  // The watcher may have closed this watch (the slot may even be reused)
  // or opened others (the table may have moved): look again.
  s = &slots_[index];
  if (s->gen != gen || s->watcher == nullptr) return;
  // Not drained (no clear_ready): call it again next round, edge or not.
  // A reader also comes back while end of input or an error is pending:
  // that is only seen by reading on (a short read can leave a FIN behind,
  // and no new edge follows it); reading ends there. Otherwise errors do
  // not repeat on their own.
  uint32_t again = EPOLLIN | EPOLLPRI | EPOLLOUT;
  if (s->interest & fd_read) again |= EPOLLRDHUP | error_bits;
  if ((s->ready & wanted_bits(s->interest) & again) != 0) consider(index);
}

void fd_poller::consider(uint32_t index) {
  auto& s = slots_[index];
  if (s.queued || (s.ready & wanted_bits(s.interest)) == 0) return;
  s.queued = true;
  pending_.push_back({index, s.gen});
}

void fd_poller::run_round() {
  in_round_ = true;
  round_.swap(pending_);
  size_t next = 0;
  try {
    while (next < round_.size()) {
      // A watcher earlier in this round may have closed this one (and its
      // slot may even be reused): the generation tells.
      auto [index, gen] = round_[next++];
      auto& s = slots_[index];
      if (s.gen != gen || s.watcher == nullptr) continue;
      s.queued = false;
      serve(index, gen);
    }
  } catch (...) {
    // The entries not reached stay queued (their slots still say so).
    pending_.insert(pending_.end(), round_.begin() + static_cast<long>(next),
                    round_.end());
    round_.clear();
    in_round_ = false;
    schedule_round();
    throw;
  }
  round_.clear();
  in_round_ = false;
  if (epoll_left_) {
    epoll_left_ = false;
    drain_epoll();
  }
  if (!pending_.empty()) schedule_round();
}

void fd_poller::schedule_round() {
  // A separate handler, not a loop here: timers and other sockets of the
  // shard get their turn between rounds.
  if (round_posted_ || in_round_) return;
  round_posted_ = true;
  asio::post(io_, [this] {
    round_posted_ = false;
    run_round();
  });
}

int fd_poller::add(int fd, fd_watcher& w, uint8_t interest, uint32_t& index) {
  if (free_head_ != UINT32_MAX) {
    index = free_head_;
    free_head_ = slots_[index].next_free;
  } else {
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  auto& s = slots_[index];
  s.watcher = &w;
  s.fd = fd;
  s.interest = interest;
  s.ready = 0;
  s.queued = false;
  s.out_in_epoll = (interest & fd_write) != 0;
  auto ev = registration(index, s.gen, s.out_in_epoll);
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int err = errno;
    release(index);
    return err;
  }
  s.in_epoll = true;
  ++watched_;
  return 0;
}

int fd_poller::register_out(slot& s, uint32_t index, bool on) {
  auto ev = registration(index, s.gen, on);
  if (::epoll_ctl(epfd_, EPOLL_CTL_MOD, s.fd, &ev) != 0) return errno;
  s.out_in_epoll = on;
  if (!on) s.ready &= ~write_bits; // stale once nobody watches it
  return 0;
}

int fd_poller::update(uint32_t index, uint8_t interest) {
  auto& s = slots_[index];
  if (s.interest == interest) return 0;
  s.interest = interest;
  bool want_out = (interest & fd_write) != 0;
  if (want_out != s.out_in_epoll && s.in_epoll)
    if (int err = register_out(s, index, want_out); err != 0) return err;
  // Already ready for what is wanted now (data that arrived while paused,
  // an error): no new edge will come, so queue it.
  consider(index);
  if (!pending_.empty()) schedule_round();
  return 0;
}

void fd_poller::remove(uint32_t index) noexcept {
  auto& s = slots_[index];
  if (s.in_epoll) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, s.fd, nullptr);
  s.in_epoll = false;
  --watched_;
  if (std::this_thread::get_id() == owner_) {
    release(index);
    return;
  }
  // Closed from another thread: the table belongs to the poller's thread.
  asio::post(io_, [this, index] { release(index); });
}

void fd_poller::release(uint32_t index) noexcept {
  auto& s = slots_[index];
  s.watcher = nullptr;
  s.fd = -1;
  s.ready = 0;
  ++s.gen; // pending entries and fetched events for it are now stale
  s.next_free = free_head_;
  free_head_ = index;
}

int fd_watch::open(fd_poller& p, int fd, fd_watcher& w, uint8_t interest) {
  close();
  uint32_t index = 0;
  if (int err = p.add(fd, w, interest, index); err != 0) return err;
  poller_ = &p;
  index_ = index;
  return 0;
}

int fd_watch::set_interest(uint8_t interest) {
  return poller_ != nullptr ? poller_->update(index_, interest) : EBADF;
}

void fd_watch::close() noexcept {
  if (poller_ == nullptr) return;
  poller_->remove(index_);
  poller_ = nullptr;
}

} // namespace shardwire
