// Descriptor exhaustion in the accept loop (asyncio: "On EMFILE or ENFILE,
// accepting pauses"): the server must neither spin nor crash, existing
// connections keep being served, and accepting resumes once descriptors are
// free again.
#include "transports/tcp.hpp"

#include "tests/support/fixtures.hpp"
#include "tests/transports/helpers.hpp"

#include <sys/resource.h>

using namespace shardwire;
using namespace shardwire::test;

namespace {

// Lowers RLIMIT_NOFILE and takes every remaining descriptor below it, so the
// next accept() fails with EMFILE. `release` (or the destructor, also when a
// REQUIRE fails) gives the descriptors back and restores the limit.
struct fd_exhaustion {
  fd_exhaustion() {
    ::getrlimit(RLIMIT_NOFILE, &saved);
    int base = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (base < 0) return;
    fillers.push_back(base);
    rlimit low = saved;
    // A little above what is open now; the fillers take the rest.
    low.rlim_cur = std::min<rlim_t>(saved.rlim_cur, open_fd_count() + 16);
    ok = ::setrlimit(RLIMIT_NOFILE, &low) == 0;
    if (!ok) return;
    for (int i = 0; i < 100000; ++i) {
      int fd = ::fcntl(base, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) {
        exhausted = errno == EMFILE;
        break;
      }
      fillers.push_back(fd);
    }
  }
  ~fd_exhaustion() { release(); }

  void release() {
    for (int fd : fillers)
      ::close(fd);
    fillers.clear();
    if (ok) ::setrlimit(RLIMIT_NOFILE, &saved);
    ok = false;
  }

  rlimit saved = {};
  bool ok = false;
  bool exhausted = false;
  std::vector<int> fillers;
};

double cpu_seconds() {
  rusage ru = {};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Non-blocking connect of an already created socket; true once the kernel
// completed it (the listener's backlog holds it, nobody accepted yet).
bool connect_prepared(int fd, uint16_t port) {
  sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  return ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
}

} // namespace

TEST_CASE("EMFILE in the accept loop pauses accepting without spinning; "
          "accepting resumes once descriptors are free") {
  runtime_fixture fx;
  auto sink = std::make_shared<info_sink>(); // echoes
  auto srv = create_server(*fx.rt, info_recorder(sink), {});
  REQUIRE(srv);
  auto port = srv->sockets.at(0).port;
  // An established connection, served before, during and after.
  int old_client = raw_connect(port);
  REQUIRE(old_client >= 0);
  CHECK(round_trip(old_client, "before") == "before");
  // Sockets for the clients that connect while no descriptor is left (a
  // client needs its own descriptor, and there will be none to create one).
  int pending[3];
  for (auto& fd : pending) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
  }
  {
    fd_exhaustion ex;
    REQUIRE(ex.ok);
    REQUIRE(ex.exhausted);
    // Three clients complete their handshake in the kernel; the listener's
    // accept() now fails with EMFILE for each attempt.
    for (int fd : pending)
      REQUIRE(connect_prepared(fd, port));
    // For one second, keep the old connection busy and measure the CPU the
    // whole process uses: an accept loop that retries EMFILE without pause
    // burns a full core; the back-off costs next to nothing.
    auto cpu0 = cpu_seconds();
    auto t0 = std::chrono::steady_clock::now();
    int rounds = 0;
    bool echo_ok = true;
    while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds{1}) {
      auto msg = "during " + std::to_string(rounds++);
      echo_ok = echo_ok && round_trip(old_client, msg) == msg;
      // Bounded pacing between echoes; each round trip is itself a wait
      // on the server.
      pollfd none{-1, 0, 0};
      ::poll(&none, 1, 20);
    }
    auto wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    auto cpu = cpu_seconds() - cpu0;
    INFO("CPU " << cpu << " s in " << wall << " s wall, " << rounds
                << " echoes");
    CHECK(echo_ok);
    CHECK(rounds > 5);
    CHECK(cpu < 0.5 * wall);
    // No pending client got a protocol while descriptors were exhausted.
    CHECK(sink->log->count("connected") == 1);
    auto serving = ask<bool>(*fx.rt, srv->actor, is_serving{});
    REQUIRE(serving);
    CHECK(*serving);
    ex.release();
  }
  // Descriptors are back: the queued clients are accepted (after the
  // current back-off step, at most 1 s) and served.
  for (int i = 0; i < 3; ++i) {
    auto msg = "pending " + std::to_string(i);
    CHECK(round_trip(pending[i], msg) == msg);
  }
  CHECK(sink->log->count("connected") == 4);
  // A brand-new connection is accepted as well, and the old one still works.
  int fresh = raw_connect(port);
  REQUIRE(fresh >= 0);
  CHECK(round_trip(fresh, "fresh") == "fresh");
  CHECK(round_trip(old_client, "after") == "after");
  raw_close(old_client);
  raw_close(fresh);
  for (int fd : pending)
    raw_close(fd);
  REQUIRE(sink->log->wait_for([](auto& evs) {
    return std::count(evs.begin(), evs.end(), "lost") == 5;
  }));
  REQUIRE(close_server(*fx.rt, srv->actor));
}
