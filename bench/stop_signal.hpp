// Ctrl-C for the benchmarks. A benchmark cut short has no result worth
// keeping, so SIGINT or SIGTERM ends it at once: the children it registered
// (servers, load processes, a kv cluster, spawned programs) are killed and
// reaped, `error: interrupted by SIGINT (no results)` goes to stderr, and
// the process exits with code 1 without running destructors (threads of a
// runtime may still be running; nothing of theirs needs flushing).
//
// No child outlives it: children are registered with their parent blocked
// from stop signals between fork and registration (`stop_signal_block`),
// and a forked child that does not exec dies with the benchmark
// (`in_forked_child`) whatever the benchmark dies of.
//
// Header-only, so that each benchmark's target needs no extra source.
#pragma once

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace bench {

/// Installs the SIGINT and SIGTERM handlers of this process. Call once,
/// first thing in main.
void stop_on_signal();

/// Registers a child to be killed (SIGKILL) and reaped when a stop signal
/// arrives. At most 1024 are registered at once; more are not tracked.
/// Async-signal-safe, any thread.
void track_child(pid_t pid);

/// Forgets a child that was reaped. Async-signal-safe, any thread.
void untrack_child(pid_t pid);

/// Kills (SIGKILL) and reaps every registered child, and forgets them: for
/// a benchmark that gives up on an error. Async-signal-safe.
void kill_children();

/// Blocks SIGINT and SIGTERM on the calling thread for its lifetime, so
/// that a child started in between is registered before the handler can
/// run (when this is the only thread; with others, `in_forked_child` is the
/// fallback for forked children).
class stop_signal_block {
public:
  stop_signal_block();
  ~stop_signal_block();
  stop_signal_block(const stop_signal_block&) = delete;
  stop_signal_block& operator=(const stop_signal_block&) = delete;

private:
  sigset_t old_;
};

/// Right after fork(), in a child that runs benchmark code without exec:
/// it dies (SIGKILL) when `parent` does, takes the default SIGINT/SIGTERM
/// dispositions back and unblocks them. "When the parent dies" is, for the
/// kernel, when the thread that forked ends: fork from the main thread.
void in_forked_child(pid_t parent);

} // namespace bench

// -- implementation ----------------------------------------------------------

namespace bench {

namespace stop_detail {

inline constexpr size_t max_children = 1024;

inline std::atomic<pid_t> children[max_children];
inline std::atomic<bool> stopping{false};
inline pid_t owner = 0;

inline void say(const char* text) {
  auto len = std::strlen(text);
  while (len > 0) {
    auto n = ::write(STDERR_FILENO, text, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text += n;
    len -= static_cast<size_t>(n);
  }
}

inline void on_stop_signal(int sig) {
  // A forked child that inherited the handler and has none of its own:
  // the registry is its parent's.
  if (::getpid() != owner) ::_exit(1);
  // A second signal on another thread: the first one is ending the process.
  if (stopping.exchange(true))
    for (;;)
      ::pause();
  kill_children();
  say(sig == SIGINT ? "error: interrupted by SIGINT (no results)\n"
                    : "error: interrupted by SIGTERM (no results)\n");
  ::_exit(1);
}

} // namespace stop_detail

inline void stop_on_signal() {
  stop_detail::owner = ::getpid();
  struct sigaction sa = {};
  sa.sa_handler = stop_detail::on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGINT);
  sigaddset(&sa.sa_mask, SIGTERM);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

inline void kill_children() {
  pid_t killed[stop_detail::max_children];
  size_t n = 0;
  for (auto& slot : stop_detail::children)
    if (auto pid = slot.exchange(0); pid > 0) {
      ::kill(pid, SIGKILL);
      killed[n++] = pid;
    }
  for (size_t i = 0; i < n; ++i)
    while (::waitpid(killed[i], nullptr, 0) < 0 && errno == EINTR) {
    }
}

inline void track_child(pid_t pid) {
  for (auto& slot : stop_detail::children) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, pid)) return;
  }
}

inline void untrack_child(pid_t pid) {
  for (auto& slot : stop_detail::children) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

inline stop_signal_block::stop_signal_block() {
  sigset_t stops;
  sigemptyset(&stops);
  sigaddset(&stops, SIGINT);
  sigaddset(&stops, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &stops, &old_);
}

inline stop_signal_block::~stop_signal_block() {
  ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

inline void in_forked_child(pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The parent may have died before prctl took effect.
  if (::getppid() != parent) ::_exit(1);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  sigset_t stops;
  sigemptyset(&stops);
  sigaddset(&stops, SIGINT);
  sigaddset(&stops, SIGTERM);
  ::pthread_sigmask(SIG_UNBLOCK, &stops, nullptr);
}

} // namespace bench
