// The per-shard readiness poller (runtime/fd_poller.hpp), driven by hand on
// the test thread: calls until the watcher reports the descriptor drained,
// kept readiness, interest changes, stale events after a close in the same
// round, hang-ups nobody waits for, a FIN behind a short read, batches, bad
// fds. `poll_one` runs at most one handler: one batch or one round.

#include "runtime/fd_poller.hpp"

#include <catch2/catch.hpp>

#include <asio/io_context.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

using namespace shardwire;

namespace {

struct socket_pair {
  int a = -1;
  int b = -1;
  socket_pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
    a = fds[0];
    b = fds[1];
  }
  ~socket_pair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
  void send_byte() const { REQUIRE(::write(b, "x", 1) == 1); }
  void drain() const {
    char buf[256];
    while (::read(a, buf, sizeof(buf)) > 0) {
    }
  }
};

struct counting_watcher : fd_watcher {
  int calls = 0;
  uint32_t last = 0;
  std::function<void()> on_call;
  void on_fd_ready(uint32_t events) override {
    ++calls;
    last = events;
    if (on_call) on_call();
  }
};

// Does what a transport does: one bounded read per call, and tells the
// poller when the descriptor was drained (short read, EOF or EAGAIN).
struct reading_watcher : fd_watcher {
  int fd = -1;
  fd_watch* watch = nullptr;
  int calls = 0;
  std::string got;
  bool eof = false;
  size_t chunk = 1;
  void on_fd_ready(uint32_t) override {
    ++calls;
    char buf[64];
    auto n = ::read(fd, buf, std::min(chunk, sizeof(buf)));
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < chunk) watch->clear_ready(fd_read);
    } else if (n == 0) {
      eof = true;
      watch->clear_ready(fd_read);
      watch->set_interest(fd_none);
    } else {
      watch->clear_ready(fd_read); // EAGAIN
    }
  }
};

/// A poller on its own io_context watching one end of a socket pair with a
/// reading_watcher that reads `chunk` bytes per call.
struct reading_setup {
  asio::io_context io;
  fd_poller poller{io};
  socket_pair sp;
  reading_watcher w;
  fd_watch watch;

  explicit reading_setup(size_t chunk) {
    w.fd = sp.a;
    w.watch = &watch;
    w.chunk = chunk;
    REQUIRE(watch.open(poller, sp.a, w, fd_read) == 0);
  }
};

/// A poller on its own io_context watching two socket pairs for reading,
/// each with a counting_watcher.
struct two_watched {
  asio::io_context io;
  fd_poller poller{io};
  socket_pair one;
  socket_pair two;
  counting_watcher w1;
  counting_watcher w2;
  fd_watch watch1;
  fd_watch watch2;

  two_watched() {
    REQUIRE(watch1.open(poller, one.a, w1, fd_read) == 0);
    REQUIRE(watch2.open(poller, two.a, w2, fd_read) == 0);
  }
};

} // namespace

TEST_CASE("a watcher is called again until it reports the descriptor "
          "drained") {
  // One byte per call: never a short read while data is left.
  reading_setup setup{1};
  auto& [io, poller, sp, w, watch] = setup;
  CHECK(poller.watched() == 1);
  io.poll_one();
  CHECK(w.calls == 0); // nothing to read yet
  REQUIRE(::write(sp.b, "abc", 3) == 3);
  // One edge, three bytes: called once per round without a new edge...
  for (int i = 0; i < 10 && w.got.size() < 3; ++i)
    io.poll_one();
  CHECK(w.got == "abc");
  // ...until a read finds the socket empty and clears it.
  for (int i = 0; i < 3; ++i)
    io.poll_one();
  CHECK(w.calls == 4);       // three bytes, then EAGAIN
  CHECK(io.poll_one() == 0); // nothing left to run: no busy loop
  // New data is a new edge.
  sp.send_byte();
  io.poll_one();
  CHECK(w.got == "abcx");
  watch.close();
  CHECK(poller.watched() == 0);
}

TEST_CASE("end of input left behind a short read is still delivered") {
  reading_setup setup{64};
  auto& [io, poller, sp, w, watch] = setup;
  // Data and FIN arrive before the first read: one edge for both.
  sp.send_byte();
  REQUIRE(::shutdown(sp.b, SHUT_WR) == 0);
  for (int i = 0; i < 10 && !w.eof; ++i)
    io.poll_one();
  CHECK(w.got == "x");
  CHECK(w.eof); // the short read did not hide the FIN
  CHECK(io.poll_one() == 0);
}

TEST_CASE("no interest, no reports; restoring it reports what is pending") {
  asio::io_context io;
  fd_poller poller{io};
  socket_pair sp;
  counting_watcher w;
  fd_watch watch;
  REQUIRE(watch.open(poller, sp.a, w, fd_read) == 0);
  REQUIRE(watch.set_interest(fd_none) == 0);
  sp.send_byte();
  io.poll_one();
  CHECK(w.calls == 0);
  REQUIRE(watch.set_interest(fd_read) == 0);
  io.poll_one();
  CHECK(w.calls == 1);
}

TEST_CASE("a watch closed earlier in the same round is never called") {
  two_watched setup;
  auto& [io, poller, one, two, w1, w2, watch1, watch2] = setup;
  socket_pair three; // never readable
  counting_watcher w3;
  fd_watch watch3;
  // Whichever runs first closes the other and reuses its slot for a quiet
  // descriptor: the other's event, already fetched, must reach nobody.
  auto close_other = [&](fd_watch& other) {
    other.close();
    REQUIRE(watch3.open(poller, three.a, w3, fd_read) == 0);
  };
  w1.on_call = [&] {
    if (w2.calls == 0) close_other(watch2);
  };
  w2.on_call = [&] {
    if (w1.calls == 0) close_other(watch1);
  };
  one.send_byte();
  two.send_byte();
  io.poll_one();
  CHECK(w1.calls + w2.calls == 1);
  CHECK(w3.calls == 0);
  CHECK(poller.watched() == 2);
}

TEST_CASE("a hang-up nobody waits for is kept, not reported in a loop") {
  asio::io_context io;
  fd_poller poller{io};
  socket_pair sp;
  counting_watcher w;
  fd_watch watch;
  REQUIRE(watch.open(poller, sp.a, w, fd_none) == 0);
  ::close(sp.b);
  sp.b = -1;
  io.poll_one();
  CHECK(w.calls == 0);
  auto batches = poller.batches();
  CHECK(batches >= 1);
  // Kept as a fact of the slot, it does not wake the poller again.
  CHECK(io.poll_one() == 0);
  CHECK(poller.batches() == batches);
  // Once someone reads again, the hang-up is reported at once.
  REQUIRE(watch.set_interest(fd_read) == 0);
  io.poll_one();
  CHECK(w.calls == 1);
  CHECK((w.last & EPOLLHUP) != 0);
}

TEST_CASE("a write pipe's reader going away reaches a hang-up watch") {
  asio::io_context io;
  fd_poller poller{io};
  int p[2];
  REQUIRE(::pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
  counting_watcher w;
  fd_watch watch;
  REQUIRE(watch.open(poller, p[1], w, fd_hangup) == 0);
  io.poll_one();
  CHECK(w.calls == 0); // writable, but nobody asked for that
  ::close(p[0]);
  io.poll_one();
  CHECK(w.calls == 1);
  CHECK((w.last & EPOLLERR) != 0);
  watch.close();
  ::close(p[1]);
}

TEST_CASE("one wake-up serves at most its budget; rounds take the rest") {
  asio::io_context io;
  // Budget: two epoll batches per wake-up.
  fd_poller poller{io, 2 * fd_poller::batch_size};
  constexpr int n = 200;
  std::vector<std::unique_ptr<socket_pair>> pairs;
  std::vector<std::unique_ptr<counting_watcher>> watchers;
  std::vector<std::unique_ptr<fd_watch>> watches;
  for (int i = 0; i < n; ++i) {
    pairs.push_back(std::make_unique<socket_pair>());
    watchers.push_back(std::make_unique<counting_watcher>());
    watches.push_back(std::make_unique<fd_watch>());
    auto* sp = pairs.back().get();
    auto* watch = watches.back().get();
    watchers.back()->on_call = [sp, watch] {
      sp->drain();
      watch->clear_ready(fd_read);
    };
    REQUIRE(watches.back()->open(poller, sp->a, *watchers.back(), fd_read) ==
            0);
    sp->send_byte();
  }
  // One handler run takes at most the budget.
  io.poll_one();
  int served = 0;
  for (auto& w : watchers)
    served += w->calls;
  CHECK(served == 2 * fd_poller::batch_size);
  CHECK(poller.wakeups() == 1);
  for (int round = 0; round < 10 && served < n; ++round) {
    io.poll_one();
    served = 0;
    for (auto& w : watchers)
      served += w->calls;
  }
  CHECK(served == n);
  for (auto& w : watchers)
    CHECK(w->calls == 1); // drained and cleared in its callback: once
  watches.clear();
  CHECK(poller.watched() == 0);
}

TEST_CASE("a descriptor epoll cannot watch is refused with its errno") {
  asio::io_context io;
  fd_poller poller{io};
  FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  counting_watcher w;
  fd_watch watch;
  CHECK(watch.open(poller, ::fileno(f), w, fd_read) == EPERM);
  CHECK_FALSE(watch.is_open());
  CHECK(poller.watched() == 0);
  std::fclose(f);
}

TEST_CASE("a watcher that throws does not lose the events fetched with its "
          "own") {
  two_watched setup;
  auto& [io, poller, one, two, w1, w2, watch1, watch2] = setup;
  // Whichever is called first throws (once); both edges come in one batch.
  bool thrown = false;
  auto throw_once = [&](const socket_pair& sp, fd_watch& watch) {
    sp.drain();
    watch.clear_ready(fd_read);
    if (!thrown) {
      thrown = true;
      throw std::runtime_error("watcher failed");
    }
  };
  w1.on_call = [&] { throw_once(one, watch1); };
  w2.on_call = [&] { throw_once(two, watch2); };
  one.send_byte();
  two.send_byte();
  CHECK_THROWS_AS(io.poll_one(), std::runtime_error);
  CHECK(w1.calls + w2.calls == 1);
  // The other one's edge was fetched in the same batch: a round serves it.
  for (int i = 0; i < 5 && w1.calls + w2.calls < 2; ++i)
    io.poll_one();
  CHECK(w1.calls == 1);
  CHECK(w2.calls == 1);
  // Later edges still arrive.
  one.send_byte();
  for (int i = 0; i < 5 && w1.calls < 2; ++i)
    io.poll_one();
  CHECK(w1.calls == 2);
}
