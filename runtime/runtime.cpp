#include "runtime/runtime.hpp"

#include "runtime/detail/shard_watchdog.hpp"
#include "runtime/detail/stall_monitor.hpp"
#include "runtime/log.hpp"

#include <caf/exit_reason.hpp>

#include <csignal>
#include <semaphore.h>
#include <string>
#include <system_error>

namespace shardwire {

namespace {

sem_t stop_sem;
std::atomic<int> last_signal{0};
std::atomic<bool> stop_flag{false};

void on_stop_signal(int sig) {
  last_signal.store(sig);
  stop_flag.store(true);
  sem_post(&stop_sem);
}

struct stop_semaphore {
  stop_semaphore() { sem_init(&stop_sem, 0, 0); }
};

// One semaphore for every entry point: a second sem_init under a waiter
// loses the waiter's wake-up (found by the chaos_proxy work).
void ensure_stop_semaphore() {
  static stop_semaphore sem;
}

// Routes SIGINT and SIGTERM to on_stop_signal. Unless `force`, only where
// the disposition is still the default: a program (a benchmark) with a
// handler of its own keeps it, and one started with the signal ignored
// keeps ignoring it until it waits for a stop signal itself.
void install_stop_handlers(bool force) {
  ensure_stop_semaphore();
  for (int sig : {SIGINT, SIGTERM}) {
    struct sigaction old = {};
    sigaction(sig, nullptr, &old);
    if (old.sa_handler == on_stop_signal) continue;
    if (!force && old.sa_handler != SIG_DFL) continue;
    struct sigaction sa = {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, nullptr);
  }
}

} // namespace

runtime::runtime(runtime_config& cfg) : cfg_(cfg), system_(cfg) {
  log::set_level(log::parse_level(cfg.log_level).value_or(log::level::warning));
  // A peer that closes while we write must produce EPIPE, not kill the
  // process (Python ignores SIGPIPE for the same reason).
  std::signal(SIGPIPE, SIG_IGN);
  // A Ctrl-C while the program still sets up (binds, connects, spawns) is
  // remembered, not fatal: the program's wait_for_stop_signal, or its
  // wait_or_stop, returns at once and it shuts down as usual.
  install_stop_handlers(false);
  auto n = cfg.effective_shards();
  shards_.reserve(n);
  size_t i = 0;
  try {
    for (; i < n; ++i) {
      shards_.emplace_back(
          std::make_unique<shard>(system_, i, cfg.max_throughput));
      shards_.back()->set_fast_path(cfg.fast_path);
      shards_.back()->metrics().enabled = cfg.metrics_collect;
      shards_.back()->watch_stalls(cfg.stall_ms > 0);
      shards_.back()->start();
    }
  } catch (const std::system_error& e) {
    // Typically EMFILE: each shard needs a few descriptors. The shards
    // started so far hold no actors yet; stopping them joins their threads.
    shards_.clear();
    throw std::system_error(
        e.code(), "cannot start shard " + std::to_string(i + 1) + " of " +
                      std::to_string(n) + " (" + e.what() + ")");
  }
  if (cfg.stall_ms > 0) {
    std::vector<shard*> all;
    for (auto& s : shards_)
      all.push_back(s.get());
    stall_monitor_ = std::make_unique<detail::stall_monitor>(
        std::move(all), std::chrono::milliseconds(cfg.stall_ms));
  }
  if (auto every = sd::watchdog_interval()) {
    std::vector<shard*> all;
    for (auto& s : shards_)
      all.push_back(s.get());
    watchdog_ =
        std::make_unique<detail::shard_watchdog>(std::move(all), *every);
  }
}

runtime::~runtime() {
  shutdown();
  // Their threads are joined; the objects stay until the actor system is
  // gone (see stopped_shards_).
  stopped_shards_ = std::move(shards_);
}

shard& runtime::pick_shard() {
  auto start = next_.fetch_add(1, std::memory_order_relaxed);
  auto n = shards_.size();
  auto* best = shards_[start % n].get();
  for (size_t i = 1; i < n; ++i) {
    auto* s = shards_[(start + i) % n].get();
    if (s->load() < best->load()) best = s;
  }
  return *best;
}

void runtime::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  if (watchdog_) watchdog_->stop();
  if (stall_monitor_) stall_monitor_->stop();
  sd::notify("STOPPING=1");
  using clock = std::chrono::steady_clock;
  caf::error reason = caf::exit_reason::user_shutdown;
  // 1. Transports first: each one delivers `lost` to its protocol.
  for (auto& s : shards_)
    s->exit_actors(reason, true);
  for (auto& s : shards_)
    if (!s->await_actors(true, clock::now() + std::chrono::seconds(10)))
      log::error("shutdown: transports on shard ", s->id(),
                 " did not exit within 10 s");
  // 2. Protocols: a grace period to finish after `lost`, then terminate.
  auto grace = clock::now() + std::chrono::milliseconds(cfg_.shutdown_grace_ms);
  for (auto& s : shards_)
    s->await_actors(false, grace);
  for (auto& s : shards_)
    s->exit_actors(caf::exit_reason::kill, false);
  for (auto& s : shards_)
    if (!s->await_actors(false, clock::now() + std::chrono::seconds(10)))
      log::error("shutdown: actors on shard ", s->id(),
                 " did not exit within 10 s");
  // 3. Threads.
  for (auto& s : shards_)
    s->stop();
}

bool runtime::notify_ready(std::string_view status) {
  std::string state = "READY=1";
  if (!status.empty()) {
    state += "\nSTATUS=";
    state += status;
  }
  return sd::notify(state);
}

int runtime::wait_for_stop_signal() {
  install_stop_handlers(true);
  while (sem_wait(&stop_sem) != 0) {
    // EINTR: keep waiting.
  }
  return last_signal.load();
}

void runtime::request_stop() noexcept {
  ensure_stop_semaphore();
  stop_flag.store(true);
  sem_post(&stop_sem);
}

bool runtime::stop_requested() noexcept {
  return stop_flag.load();
}

int runtime::stop_signal() noexcept {
  return last_signal.load();
}

} // namespace shardwire
