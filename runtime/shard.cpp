#include "runtime/shard.hpp"
#include "runtime/fd_poller.hpp"

#include "runtime/log.hpp"
#include "runtime/pinned.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <caf/actor_addr.hpp>
#include <caf/actor_control_block.hpp>
#include <caf/actor_system.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>
#include <caf/send.hpp>
#include <future>

namespace shardwire {

namespace detail {

thread_local const caf::resumable* pinned_marker = nullptr;

thread_local int fast_path_depth = 0;

thread_local spare_store* spares = nullptr;

size_t next_spare_id() noexcept {
  static std::atomic<size_t> next{0};
  auto id = next.fetch_add(1);
  if (id >= spare_store::max_types)
    pinned_violation("too many message types use try_deliver_now");
  return id;
}

} // namespace detail

namespace {

thread_local shard* current_shard = nullptr;

// Bounds one drain so socket handlers queued behind it get a turn.
constexpr size_t max_resumes_per_drain = 256;

} // namespace

shard::shard(caf::actor_system& sys, size_t id, size_t max_throughput)
    : caf::execution_unit(&sys), sys_(sys), id_(id),
      max_throughput_(max_throughput == 0 ? 1 : max_throughput),
      // Descriptor I/O on a shard's io_context only ever happens on the shard
      // thread (transports create, use and close their sockets there), so the
      // reactor's per-descriptor locking can go; scheduler and registration
      // locking stay, because CAF workers, the clock thread and other shards
      // post into this context.
      io_(ASIO_CONCURRENCY_HINT_UNSAFE_IO) {
  reg_head_.prev_ = reg_head_.next_ = &reg_head_;
}

shard::~shard() {
  stop();
}

fd_poller& shard::poller() {
  if (!poller_) {
    poller_ = std::make_unique<fd_poller>(io_);
    poller_->attach(*this);
  }
  return *poller_;
}

shard* shard::current() noexcept {
  return current_shard;
}

void shard::exec_later(caf::resumable* ptr) {
  if (ptr != detail::pinned_marker) {
    // Not one of ours: an ordinary actor that inherited this shard as its
    // context. It belongs on CAF's scheduler.
    sys_.scheduler().enqueue(ptr);
    return;
  }
  if (on_thread()) {
    local_.push_back(ptr);
    if (io_depth_ == 0) post_drain();
    return;
  }
  bool need_post = false;
  {
    std::lock_guard<std::mutex> guard{remote_mtx_};
    remote_.push_back(ptr);
    if (!remote_posted_) {
      remote_posted_ = true;
      need_post = true;
    }
  }
  if (need_post)
    asio::post(io_, [this] {
      take_remote();
      drain();
    });
}

void shard::take_remote() {
  std::vector<caf::resumable*> batch;
  {
    std::lock_guard<std::mutex> guard{remote_mtx_};
    batch.swap(remote_);
    remote_posted_ = false;
  }
  local_.insert(local_.end(), batch.begin(), batch.end());
}

void shard::post_drain() {
  if (drain_posted_) return;
  drain_posted_ = true;
  asio::post(io_, [this] {
    drain_posted_ = false;
    drain();
  });
}

void shard::post(std::function<void()> f) {
  asio::post(io_, std::move(f));
}

void shard::drain() {
  ++io_depth_;
  size_t budget = max_resumes_per_drain;
  while (!local_.empty() && budget-- > 0) {
    auto* job = local_.front();
    local_.pop_front();
    switch (job->resume(this, max_throughput_)) {
    case caf::resumable::resume_later:
      local_.push_back(job);
      break;
    case caf::resumable::done:
    case caf::resumable::awaiting_message:
      intrusive_ptr_release(job);
      break;
    case caf::resumable::shutdown_execution_unit:
      break;
    }
  }
  --io_depth_;
  if (!local_.empty()) post_drain();
}

// -- registry -----------------------------------------------------------------

void shard::register_actor(registry_node& node, caf::actor_control_block* ctrl,
                           bool is_transport) {
  std::lock_guard<std::mutex> guard{reg_mtx_};
  if (node.linked_) return;
  node.ctrl_ = ctrl;
  node.transport_ = is_transport;
  node.prev_ = reg_head_.prev_;
  node.next_ = &reg_head_;
  reg_head_.prev_->next_ = &node;
  reg_head_.prev_ = &node;
  node.linked_ = true;
  ++reg_actors_;
  if (is_transport) ++reg_transports_;
}

void shard::unregister_actor(registry_node& node) noexcept {
  // Notifies under the lock: a waiter in await_actors may destroy this shard
  // as soon as it can see the count at zero, which is only after the unlock.
  std::lock_guard<std::mutex> guard{reg_mtx_};
  if (!node.linked_) return;
  node.prev_->next_ = node.next_;
  node.next_->prev_ = node.prev_;
  node.prev_ = node.next_ = nullptr;
  node.linked_ = false;
  bool wake = --reg_actors_ == 0;
  if (node.transport_ && --reg_transports_ == 0) wake = true;
  if (wake) reg_cv_.notify_all();
}

size_t shard::live_actors(bool transports_only) const {
  std::lock_guard<std::mutex> guard{reg_mtx_};
  return transports_only ? reg_transports_ : reg_actors_;
}

void shard::exit_actors(const caf::error& reason, bool transports_only) {
  // Weak references taken under the lock: a node's `ctrl_` is valid while
  // the node is linked, and a weak reference keeps the control block (not
  // the actor) alive after the lock is gone. Strong references must not be
  // dropped under the lock: the last one may run the actor's cleanup, which
  // unregisters it.
  std::vector<caf::actor_addr> targets;
  {
    std::lock_guard<std::mutex> guard{reg_mtx_};
    targets.reserve(transports_only ? reg_transports_ : reg_actors_);
    for (auto* n = reg_head_.next_; n != &reg_head_; n = n->next_)
      if (!transports_only || n->transport_)
        targets.emplace_back(n->ctrl_->address());
  }
  for (auto& addr : targets)
    if (auto hdl = caf::actor_cast<caf::strong_actor_ptr>(addr))
      hdl->enqueue(nullptr, caf::make_message_id(),
                   caf::make_message(caf::exit_msg{addr, reason}), nullptr);
}

bool shard::await_actors(bool transports_only,
                         std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock<std::mutex> guard{reg_mtx_};
  return reg_cv_.wait_until(guard, deadline, [&] {
    return (transports_only ? reg_transports_ : reg_actors_) == 0;
  });
}

// -- lifecycle ----------------------------------------------------------------

void shard::start() {
  // Returns once the thread is set up (its poller's descriptor exists), so
  // that a runtime is complete when its constructor returns: nothing of it
  // appears later behind the caller's back (an fd count taken right after,
  // a first connection).
  std::promise<void> ready;
  auto started = ready.get_future();
  thread_ = std::thread{[this, &ready] { run_thread(ready); }};
  try {
    started.get();
  } catch (...) {
    thread_.join(); // the thread ends at once after a failed setup
    throw;
  }
}

void shard::run_thread(std::promise<void>& ready) {
  thread_id_ = std::this_thread::get_id();
  current_shard = this;
  sys_.thread_started();
  detail::spare_store spare_elements;
  detail::spares = &spare_elements;
  // The poller's epoll descriptor is made now, while descriptors are
  // plentiful: made on first use, it could be the one descriptor an accept
  // under EMFILE pressure leaves no room for, failing every connection the
  // shard gets until the pressure ends (accept_emfile_test).
  // Without it the shard cannot serve a socket: the start fails (the
  // runtime reports it) rather than every later connection.
  try {
    poller();
  } catch (...) {
    sys_.thread_terminates();
    detail::spares = nullptr;
    current_shard = nullptr;
    ready.set_exception(std::current_exception()); // `ready` is gone now
    return;
  }
  ready.set_value(); // `ready` is gone after this
  auto guard = asio::make_work_guard(io_);
  for (;;) {
    try {
      io_.run();
      break;
    } catch (const std::exception& e) {
      // An exception escaping a handler would end run() and silently kill
      // every connection on this shard; log it and keep the loop alive.
      log::error("shard ", id_, ": handler threw: ", e.what());
    } catch (...) {
      log::error("shard ", id_, ": handler threw a non-standard exception");
    }
  }
  sys_.thread_terminates();
  detail::spares = nullptr;
  current_shard = nullptr;
}

void shard::adopt_thread() {
  thread_id_ = std::this_thread::get_id();
}

size_t shard::poll() {
  io_.restart();
  return io_.poll();
}

void shard::stop() {
  if (thread_.joinable()) {
    io_.stop();
    thread_.join();
  }
  // Jobs that never ran: release them the way CAF's own units do.
  take_remote();
  for (auto* job : local_)
    caf::scheduler::abstract_coordinator::cleanup_and_release(job);
  local_.clear();
}

} // namespace shardwire
