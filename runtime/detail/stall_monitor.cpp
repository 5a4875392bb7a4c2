#include "runtime/detail/stall_monitor.hpp"

#include "runtime/log.hpp"
#include "runtime/shard.hpp"

#include <caf/local_actor.hpp>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <execinfo.h>
#include <semaphore.h>
#include <sstream>

namespace shardwire::detail {

namespace {

constexpr int max_frames = 64;

// What the signal handler fills in, on the stuck thread. One report at a
// time in the process (report_mtx): several runtimes may each have a
// monitor.
struct capture {
  std::atomic<shard*> target{nullptr};
  std::atomic<uint64_t> seq{0};
  void* frames[max_frames];
  int depth = 0;
  bool matched = false;
  uintptr_t running = 0;
  char name[128];
  sem_t done;
};

capture& the_capture() {
  static capture* c = [] {
    auto* x = new capture; // never freed: a late signal may still use it
    sem_init(&x->done, 0, 0);
    return x;
  }();
  return *c;
}

std::mutex report_mtx;

void on_stall_signal(int) {
  int saved = errno;
  auto& c = the_capture();
  auto* s = shard::current();
  if (s != nullptr && s == c.target.load(std::memory_order_acquire)) {
    c.matched = s->handler_seq() == c.seq.load(std::memory_order_relaxed);
    c.depth = 0;
    c.name[0] = '\0';
    if (c.matched) {
      c.depth = ::backtrace(c.frames, max_frames);
      c.running = s->running();
      // The actor is alive: its handler is the one interrupted.
      auto* actor =
          reinterpret_cast<const caf::local_actor*>(c.running & ~uintptr_t{1});
      if (actor != nullptr) {
        const char* n = actor->name();
        size_t i = 0;
        for (; n != nullptr && n[i] != '\0' && i + 1 < sizeof(c.name); ++i)
          c.name[i] = n[i];
        c.name[i] = '\0';
      }
    }
    c.target.store(nullptr, std::memory_order_release);
    sem_post(&c.done); // async-signal-safe
  }
  errno = saved;
}

void install_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Loads libgcc's unwinder now: the first backtrace() may allocate.
    void* warm[2];
    ::backtrace(warm, 2);
    the_capture();
    struct sigaction sa = {};
    sa.sa_handler = on_stall_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(stall_monitor::signal_number(), &sa, nullptr);
  });
}

std::string describe_running(uintptr_t running, const char* name) {
  bool io = (running & 1U) != 0;
  bool actor = (running & ~uintptr_t{1}) != 0;
  if (!actor) return "io handler";
  std::string n = name[0] != '\0' ? name : "(unnamed actor)";
  return io ? "io handler of actor " + n : "actor " + n;
}

} // namespace

int stall_monitor::signal_number() noexcept {
  return SIGRTMIN + 7;
}

stall_monitor::stall_monitor(std::vector<shard*> shards,
                             std::chrono::milliseconds limit)
    : limit_(limit) {
  install_handler();
  for (auto* s : shards)
    shards_.push_back(watched{s});
  thread_ = std::thread{[this] { run(); }};
}

void stall_monitor::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void stall_monitor::run() {
  using clock = std::chrono::steady_clock;
  auto period = std::max<std::chrono::milliseconds>(
      limit_ / 4, std::chrono::milliseconds{1});
  std::unique_lock<std::mutex> lock{mtx_};
  while (!cv_.wait_for(lock, period, [this] { return stopping_; })) {
    auto now = clock::now();
    for (auto& w : shards_) {
      auto seq = w.s->handler_seq();
      if ((seq & 1U) == 0 || seq != w.seq) {
        // Idle, or another handler since the last look.
        w.seq = seq;
        w.since = now;
        continue;
      }
      if (w.reported != seq && now - w.since >= limit_) {
        w.reported = seq;
        report(w, now - w.since);
      }
    }
  }
}

void stall_monitor::report(watched& w,
                           std::chrono::steady_clock::duration running) {
  std::lock_guard<std::mutex> guard{report_mtx};
  auto& c = the_capture();
  c.seq.store(w.seq, std::memory_order_relaxed);
  c.target.store(w.s, std::memory_order_release);
  bool answered = false;
  if (pthread_kill(w.s->native_thread(), signal_number()) == 0) {
    timespec deadline{};
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 1;
    while (sem_timedwait(&c.done, &deadline) != 0) {
      if (errno != EINTR) break;
    }
    answered = c.target.load(std::memory_order_acquire) == nullptr;
  }
  if (!answered) {
    // The thread did not run the handler in time: no backtrace. A late
    // signal finds no target and does nothing.
    if (c.target.exchange(nullptr) == nullptr) sem_trywait(&c.done);
  } else if (!c.matched) {
    return; // the handler ended between the look and the signal
  }
  w.s->metrics().stalls.add();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(running);
  std::ostringstream out;
  out << "shard " << w.s->id() << ": stall: "
      << (answered ? describe_running(c.running, c.name) : "a handler")
      << " has run for at least " << ms.count()
      << " ms (--shardwire.stall-ms=" << limit_.count() << ")";
  if (answered && c.depth > 0) {
    out << "; backtrace of the shard thread:";
    char** symbols = ::backtrace_symbols(c.frames, c.depth);
    // Frame 0 and 1 are the signal handler and the kernel's trampoline.
    for (int i = 0; i < c.depth; ++i)
      out << "\n  #" << i << ' ' << (symbols != nullptr ? symbols[i] : "?");
    std::free(symbols);
  } else {
    out << "; no backtrace (the thread did not answer the signal)";
  }
  log::warning(out.str());
}

} // namespace shardwire::detail
