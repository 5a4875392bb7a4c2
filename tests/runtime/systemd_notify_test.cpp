// The program's own notifications to systemd (runtime/systemd_notify.hpp):
// the datagram sd::notify sends, the WATCHDOG_USEC / WATCHDOG_PID rules,
// and the runtime's shard health check (WATCHDOG=1 while every shard runs,
// none while one is stuck, STOPPING=1 at shutdown), read from a socket the
// test binds where systemd's would be.
#include "runtime/systemd_notify.hpp"

#include "tests/support/fixtures.hpp"

#include <cstddef>
#include <cstdlib>
#include <future>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace shardwire;
using namespace shardwire::test;

namespace {

// Stands in for systemd: an abstract datagram socket named in
// $NOTIFY_SOCKET while it lives.
struct fake_systemd {
  int fd = -1;
  fake_systemd() {
    fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    std::string name = "shardwire-test-sd/" + std::to_string(::getpid());
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    name.copy(addr.sun_path + 1, sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr),
                   static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 +
                                          name.size())) == 0);
    ::setenv("NOTIFY_SOCKET", ("@" + name).c_str(), 1);
  }
  ~fake_systemd() {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    ::close(fd);
  }
  // The next datagram, or nullopt after `wait`.
  std::optional<std::string> next(std::chrono::milliseconds wait = deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) != 1) return std::nullopt;
    char buf[4096];
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
  }
  // Datagrams until one equals `want` (true) or none came for `wait`.
  bool wait_for(const std::string& want,
                std::chrono::milliseconds wait = deadline) {
    while (auto got = next(wait))
      if (*got == want) return true;
    return false;
  }
};

} // namespace

TEST_CASE("sd::notify sends one datagram; outside systemd it is a no-op") {
  ::unsetenv("NOTIFY_SOCKET");
  CHECK_FALSE(sd::notify("READY=1"));
  {
    fake_systemd sd;
    CHECK(sd::notify("READY=1\nSTATUS=serving"));
    CHECK(sd.next() == "READY=1\nSTATUS=serving");
    CHECK(runtime::notify_ready("up on :8080"));
    CHECK(sd.next() == "READY=1\nSTATUS=up on :8080");
    CHECK(runtime::notify_ready());
    CHECK(sd.next() == "READY=1");
  }
  ::setenv("NOTIFY_SOCKET", "relative/path", 1); // neither '/' nor '@'
  CHECK_FALSE(sd::notify("READY=1"));
  ::unsetenv("NOTIFY_SOCKET");
}

TEST_CASE("sd::watchdog_interval follows WATCHDOG_USEC and WATCHDOG_PID") {
  ::unsetenv("WATCHDOG_PID");
  ::unsetenv("WATCHDOG_USEC");
  CHECK_FALSE(sd::watchdog_interval());
  ::setenv("WATCHDOG_USEC", "500000", 1);
  CHECK(sd::watchdog_interval() == std::chrono::microseconds{500000});
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  CHECK(sd::watchdog_interval() == std::chrono::microseconds{500000});
  ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);
  CHECK_FALSE(sd::watchdog_interval()); // meant for another process
  ::unsetenv("WATCHDOG_PID");
  for (auto bad : {"0", "-5", "12x", "", "99999999999999999999999"}) {
    ::setenv("WATCHDOG_USEC", bad, 1);
    CHECK_FALSE(sd::watchdog_interval());
  }
  ::unsetenv("WATCHDOG_USEC");
}

TEST_CASE("runtime: WATCHDOG=1 while every shard runs, none while one is "
          "stuck, STOPPING=1 at shutdown") {
  fake_systemd sd;
  ::setenv("WATCHDOG_USEC", "200000", 1); // pings every 100 ms
  runtime_fixture fx;
  CHECK(sd.wait_for("WATCHDOG=1"));
  CHECK(sd.wait_for("WATCHDOG=1"));
  // Shard 1 blocked in a handler: at most the pings of rounds it had
  // answered before, then none for many intervals.
  std::promise<void> release;
  auto released = release.get_future().share();
  std::promise<void> entered;
  fx.rt->shard_at(1).post([&entered, released] {
    entered.set_value();
    released.wait();
  });
  entered.get_future().wait();
  int pings = 0;
  while (auto got = sd.next(std::chrono::milliseconds{600}))
    if (*got == "WATCHDOG=1") ++pings;
  CHECK(pings <= 2); // rounds posted before it blocked
  release.set_value();
  CHECK(sd.wait_for("WATCHDOG=1")); // answered again: pings resume
  fx.rt->shutdown();
  CHECK(sd.wait_for("STOPPING=1"));
}
