#include "runtime/fd_poller.hpp"

#include <asio/post.hpp>

#include <cerrno>
#include <cstring>
#include <sys/epoll.h>
#include <system_error>
#include <unistd.h>

namespace shardwire {

namespace {

constexpr uint32_t error_bits = EPOLLERR | EPOLLHUP;

// The epoll bits that count as "ready" for an interest.
uint32_t wanted_bits(uint8_t interest) noexcept {
  uint32_t bits = 0;
  if (interest & fd_read) bits |= EPOLLIN | EPOLLRDHUP | EPOLLPRI;
  if (interest & fd_write) bits |= EPOLLOUT;
  if (interest != fd_none) bits |= error_bits;
  return bits;
}

// What to register: errors and hang-ups are always reported by epoll.
uint32_t registered_bits(uint8_t interest) noexcept {
  uint32_t bits = 0;
  if (interest & fd_read) bits |= EPOLLIN;
  if (interest & fd_write) bits |= EPOLLOUT;
  return bits;
}

uint64_t cookie(uint32_t index, uint32_t gen) noexcept {
  return (static_cast<uint64_t>(gen) << 32) | index;
}

int make_epoll() {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0)
    throw std::system_error(errno, std::generic_category(), "epoll_create1");
  return fd;
}

} // namespace

fd_poller::fd_poller(asio::io_context& io)
    : epoll_desc_(io, make_epoll()), owner_(std::this_thread::get_id()) {
  epfd_ = epoll_desc_.native_handle();
  arm();
}

fd_poller::~fd_poller() {
  std::error_code ignored;
  epoll_desc_.close(ignored); // cancels the pending wait; closes epfd_
}

void fd_poller::arm() {
  // Asio re-registers the epoll descriptor on every wait (EPOLL_CTL_MOD),
  // which reports it again at once if descriptors are still ready.
  epoll_desc_.async_wait(asio::posix::descriptor_base::wait_read,
                         [this](const std::error_code& ec) {
                           if (!ec) run_batch();
                         });
}

void fd_poller::run_batch() {
  epoll_event events[batch_size];
  int n;
  do {
    n = ::epoll_wait(epfd_, events, batch_size, 0);
  } while (n < 0 && errno == EINTR);
  ++batches_;
  // Wait again however this batch ends (a watcher that throws must not
  // silence every other descriptor of the shard).
  struct rearm {
    fd_poller* self;
    ~rearm() { self->arm(); }
  } again{this};
  for (int i = 0; i < n; ++i) {
    auto index = static_cast<uint32_t>(events[i].data.u64);
    auto gen = static_cast<uint32_t>(events[i].data.u64 >> 32);
    // A watcher earlier in this batch may have closed this one (and its
    // slot may even be reused): the generation tells.
    if (index >= slots_.size()) continue;
    auto& s = slots_[index];
    if (s.watcher == nullptr || s.gen != gen || !s.in_epoll) continue;
    auto ev = events[i].events;
    if ((ev & wanted_bits(s.interest)) == 0) {
      // Level-triggered errors and hang-ups repeat until the descriptor is
      // closed; nobody wants them now, so stop polling it for a while.
      if (ev & error_bits) {
        ::epoll_ctl(epfd_, EPOLL_CTL_DEL, s.fd, nullptr);
        s.in_epoll = false;
        s.parked = true;
      }
      continue;
    }
    // `s` may move (a watcher can open new watches): not used after this.
    s.watcher->on_fd_ready(ev);
  }
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
  s.parked = false;
  s.in_epoll = false;
  if (int err = sync(s, index); err != 0) {
    release(index);
    return err;
  }
  ++watched_;
  return 0;
}

int fd_poller::sync(slot& s, uint32_t index) {
  epoll_event ev{};
  ev.events = registered_bits(s.interest);
  ev.data.u64 = cookie(index, s.gen);
  if (s.in_epoll)
    return ::epoll_ctl(epfd_, EPOLL_CTL_MOD, s.fd, &ev) == 0 ? 0 : errno;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, s.fd, &ev) != 0) return errno;
  s.in_epoll = true;
  s.parked = false;
  return 0;
}

int fd_poller::update(uint32_t index, uint8_t interest) {
  auto& s = slots_[index];
  if (s.interest == interest) return 0;
  auto old_bits = registered_bits(s.interest);
  s.interest = interest;
  if (s.parked) {
    // Only come back when someone wants something: an error is pending.
    return interest == fd_none ? 0 : sync(s, index);
  }
  if (registered_bits(interest) == old_bits) return 0; // e.g. hangup only
  return sync(s, index);
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
  // Closed from another thread (an actor destroyed where its last handle
  // was dropped): the table belongs to the poller's thread.
  asio::post(epoll_desc_.get_executor(), [this, index] { release(index); });
}

void fd_poller::release(uint32_t index) noexcept {
  auto& s = slots_[index];
  s.watcher = nullptr;
  s.fd = -1;
  ++s.gen;
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
