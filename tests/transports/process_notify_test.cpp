// Readiness and liveness the systemd way (process_spec::notify, watchdog;
// transports/detail/notify_socket.hpp): children that speak sd_notify's
// datagram protocol themselves (python3) and through Debian's
// `systemd-notify`, the watchdog killing a child that stops pinging, and a
// supervisor restarting it; liveness probes (process_spec::liveness) by TCP
// connect and by command.
#include "transports/process_child.hpp"

#include "actors/supervision/messages.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/wait_down.hpp"
#include "transports/detail/notify_socket.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <future>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace shardwire;
using namespace shardwire::test;

namespace {

// A python3 child that sends `body`'s notifications with n('...').
process_spec notifier(std::string id, const std::string& body) {
  process_spec spec;
  spec.id = std::move(id);
  spec.argv = {"python3", "-c",
               "import os, socket, sys, time\n"
               "a = os.environ['NOTIFY_SOCKET']\n"
               "a = '\\0' + a[1:] if a.startswith('@') else a\n"
               "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
               "def n(m): s.sendto(m.encode(), a)\n" +
                   body + "\n"};
  spec.notify = true;
  return spec;
}

// Output lines and STATUS values, as "out:<line>" / "status:<text>", until
// `pred` holds or the deadline passes.
bool collect(caf::scoped_actor& self, std::vector<std::string>& seen,
             const std::function<bool(const std::vector<std::string>&)>& pred) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (!pred(seen)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left <= 0ms) return false;
    bool got = false;
    self->receive(
        [&](process_output& out) {
          seen.push_back("out:" + out.bytes.str());
          got = true;
        },
        [&](process_status& st) {
          seen.push_back("status:" + st.status);
          got = true;
        },
        caf::after(left) >> [] {});
    if (!got) return false;
  }
  return true;
}

bool contains(const std::vector<std::string>& xs, const std::string& x) {
  return std::find(xs.begin(), xs.end(), x) != xs.end();
}

} // namespace

TEST_CASE("notify: datagrams split into KEY=VALUE fields as sd_notify's") {
  auto fields = detail::parse_notify(
      "READY=1\nSTATUS=a=b\n=no-key\nno-equals\n\nWATCHDOG=1");
  REQUIRE(fields.size() == 3);
  CHECK(fields[0].key == "READY");
  CHECK(fields[0].value == "1");
  CHECK(fields[1].key == "STATUS");
  CHECK(fields[1].value == "a=b");
  CHECK(fields[2].key == "WATCHDOG");
  CHECK(fields[2].value == "1");
  CHECK(detail::parse_notify("").empty());
  CHECK(detail::parse_notify("STATUS=").size() == 1);
}

TEST_CASE("notify: READY=1 makes the child ready; STATUS reaches the "
          "subscriber; WATCHDOG_USEC is set") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  auto spec =
      notifier("svc", "print('usec', os.environ.get('WATCHDOG_USEC', 'none'), "
                      "flush=True)\n"
                      "n('STATUS=warming up')\n"
                      "n('READY=1\\nSTATUS=serving')\n"
                      "time.sleep(60)");
  spec.watchdog = std::chrono::seconds{30};
  spec.subscriber = caf::actor_cast<caf::actor>(self);
  std::promise<void> ready;
  auto child = spawn_process_child(*fx.rt, spec, [&] { ready.set_value(); });
  self->monitor(child);
  std::vector<std::string> seen;
  REQUIRE(collect(self, seen, [](auto& xs) {
    return contains(xs, "status:serving") && contains(xs, "out:usec 30000000");
  }));
  CHECK(ready.get_future().wait_for(deadline) == std::future_status::ready);
  // STATUS values arrive in the order sent.
  auto first = std::find(seen.begin(), seen.end(), "status:warming up");
  auto second = std::find(seen.begin(), seen.end(), "status:serving");
  CHECK(first < second);
  self->send_exit(child, caf::exit_reason::user_shutdown);
  CHECK(wait_down(self, child) == caf::exit_reason::user_shutdown);
}

TEST_CASE("notify: without READY=1 the child never counts as ready") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  // A ready line would have made it ready; with notify only READY=1 does.
  auto spec = notifier("quiet", "print('ready', flush=True)");
  spec.ready_line = "ready";
  bool was_ready = false;
  auto child =
      spawn_process_child(*fx.rt, spec, [&was_ready] { was_ready = true; });
  self->monitor(child);
  CHECK(wait_down(self, child) == caf::exit_reason::normal);
  CHECK_FALSE(was_ready); // the actor is down: its callbacks are over
}

TEST_CASE("notify: with notify_from = main only the child itself counts") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  // A forked process of the child says READY=1 and a STATUS: both dropped.
  // The child's own STATUS counts; it never says READY=1 itself.
  auto spec = notifier("main-only", "pid = os.fork()\n"
                                    "if pid == 0:\n"
                                    "  n('STATUS=from a fork\\nREADY=1')\n"
                                    "  os._exit(0)\n"
                                    "os.waitpid(pid, 0)\n"
                                    "n('STATUS=from main')\n"
                                    "print('done', flush=True)");
  spec.notify_from = notify_access::main;
  spec.subscriber = caf::actor_cast<caf::actor>(self);
  bool was_ready = false;
  auto child =
      spawn_process_child(*fx.rt, spec, [&was_ready] { was_ready = true; });
  self->monitor(child);
  std::vector<std::string> seen;
  REQUIRE(collect(self, seen, [](auto& xs) {
    return contains(xs, "status:from main") && contains(xs, "out:done");
  }));
  CHECK(wait_down(self, child) == caf::exit_reason::normal);
  CHECK_FALSE(contains(seen, "status:from a fork"));
  CHECK_FALSE(was_ready); // the fork's READY=1 did not count
}

TEST_CASE("notify: Debian's systemd-notify works unchanged in a child") {
  if (::access("/usr/bin/systemd-notify", X_OK) != 0) {
    WARN("skipped: /usr/bin/systemd-notify is not installed");
    return;
  }
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  process_spec spec;
  spec.id = "script";
  spec.argv = {"/bin/sh", "-c",
               "systemd-notify --ready --status='from systemd-notify' && "
               "exec sleep 60"};
  spec.notify = true;
  spec.subscriber = caf::actor_cast<caf::actor>(self);
  std::promise<void> ready;
  auto child = spawn_process_child(*fx.rt, spec, [&] { ready.set_value(); });
  self->monitor(child);
  std::vector<std::string> seen;
  CHECK(collect(self, seen, [](auto& xs) {
    return contains(xs, "status:from systemd-notify");
  }));
  CHECK(ready.get_future().wait_for(deadline) == std::future_status::ready);
  self->send_exit(child, caf::exit_reason::user_shutdown);
  CHECK(wait_down(self, child) == caf::exit_reason::user_shutdown);
}

TEST_CASE("watchdog: a child that stops pinging is killed with its own "
          "cause") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  SECTION("pings stop") {
    auto spec = notifier("hung", "n('READY=1')\n"
                                 "for _ in range(3):\n"
                                 "  n('WATCHDOG=1'); time.sleep(0.05)\n"
                                 "time.sleep(60)");
    spec.watchdog = std::chrono::milliseconds{300};
    auto child = spawn_process_child(*fx.rt, spec);
    self->monitor(child);
    auto reason = wait_down(self, child);
    CHECK(is(reason, sw_errc::watchdog_timeout));
    CHECK(describe(reason).find("no WATCHDOG=1 for 300 ms") !=
          std::string::npos);
  }
  SECTION("WATCHDOG=trigger, and a child that ignores SIGABRT gets SIGKILL") {
    auto spec = notifier("trig", "import signal\n"
                                 "signal.signal(signal.SIGABRT, "
                                 "signal.SIG_IGN)\n"
                                 "n('READY=1\\nWATCHDOG=trigger')\n"
                                 "time.sleep(60)");
    spec.watchdog = std::chrono::seconds{60};
    spec.stop_timeout = std::chrono::milliseconds{200};
    auto child = spawn_process_child(*fx.rt, spec);
    self->monitor(child);
    auto reason = wait_down(self, child);
    CHECK(is(reason, sw_errc::watchdog_timeout));
    CHECK(describe(reason).find("WATCHDOG=trigger") != std::string::npos);
  }
  SECTION("a child that keeps pinging is left alone") {
    // Pings every 50 ms against a 1 s watchdog, then exits by itself.
    auto spec = notifier("alive", "n('READY=1')\n"
                                  "for _ in range(20):\n"
                                  "  n('WATCHDOG=1'); time.sleep(0.05)\n");
    spec.watchdog = std::chrono::milliseconds{1000};
    auto child = spawn_process_child(*fx.rt, spec);
    self->monitor(child);
    CHECK(wait_down(self, child) == caf::exit_reason::normal);
  }
}

TEST_CASE("watchdog: a supervisor restarts the child it killed") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  auto spec = notifier("worker", "n('READY=1')\ntime.sleep(60)");
  spec.watchdog = std::chrono::milliseconds{200};
  supervisor_spec sup;
  sup.children.push_back(
      process_child_spec(*fx.rt, spec, restart_type::transient));
  sup.intensity.max_restarts = 10;
  sup.backoff.base = std::chrono::milliseconds{0}; // restart at once
  sup.observer = caf::actor_cast<caf::actor>(self);
  auto s = spawn_supervisor(fx.rt->system(), sup);
  REQUIRE(s);
  self->monitor(*s);
  // started, exited (watchdog_timeout), restarting, started again.
  int started = 0;
  bool watchdog_exit = false, restarting = false;
  auto until = std::chrono::steady_clock::now() + deadline;
  while (started < 2 && std::chrono::steady_clock::now() < until)
    self->receive([&](child_started&) { ++started; },
                  [&](child_exited& ev) {
                    if (is(ev.reason, sw_errc::watchdog_timeout))
                      watchdog_exit = true;
                  },
                  [&](child_restarting&) { restarting = true; },
                  [](supervisor_started&) {}, caf::after(deadline) >> [] {});
  CHECK(started == 2);
  CHECK(watchdog_exit);
  CHECK(restarting);
  self->send_exit(*s, caf::exit_reason::user_shutdown);
  CHECK(wait_down(self, *s) == caf::exit_reason::user_shutdown);
}

TEST_CASE("notify: a child without notify does not inherit the program's "
          "NOTIFY_SOCKET") {
  ::setenv("NOTIFY_SOCKET", "@shardwire-test-parent", 1);
  ::setenv("WATCHDOG_USEC", "1000000", 1);
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  process_spec spec;
  spec.id = "plain";
  spec.argv = {"/bin/sh", "-c",
               "echo \"${NOTIFY_SOCKET-unset} ${WATCHDOG_USEC-unset}\""};
  spec.subscriber = caf::actor_cast<caf::actor>(self);
  auto child = spawn_process_child(*fx.rt, spec);
  std::vector<std::string> seen;
  auto got = collect(self, seen, [](auto& xs) { return !xs.empty(); });
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  REQUIRE(got);
  CHECK(seen.front() == "out:unset unset");
}

namespace {

process_spec sleeper(std::string id) {
  process_spec spec;
  spec.id = std::move(id);
  spec.argv = {"/bin/sh", "-c", "exec sleep 60"};
  return spec;
}

// A loopback port with a listening socket that never accepts: connects
// succeed (the kernel's backlog) and are counted by draining it after.
struct listener {
  int fd = -1;
  uint16_t port = 0;
  listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 64) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~listener() { ::close(fd); }
  size_t accepted() {
    size_t n = 0;
    for (int c; (c = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK)) >= 0; ++n)
      ::close(c);
    return n;
  }
};

// Lines in `path` (0 while it does not exist).
size_t line_count(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  for (std::string line; std::getline(in, line);)
    ++n;
  return n;
}

} // namespace

TEST_CASE("liveness: a TCP probe that cannot connect kills the child after "
          "the threshold") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  uint16_t closed_port;
  {
    listener l; // bound, then closed: nothing listens there any more
    closed_port = l.port;
  }
  auto spec = sleeper("tcp-dead");
  spec.liveness = liveness_probe{};
  spec.liveness->tcp_port = closed_port;
  spec.liveness->interval = std::chrono::milliseconds{50};
  spec.liveness->failure_threshold = 2;
  auto child = spawn_process_child(*fx.rt, spec);
  self->monitor(child);
  auto reason = wait_down(self, child);
  CHECK(is(reason, sw_errc::liveness_failed));
  auto text = describe(reason);
  CHECK(text.find("liveness probe failed 2 times") != std::string::npos);
  CHECK(text.find("tcp 127.0.0.1:" + std::to_string(closed_port)) !=
        std::string::npos);
}

TEST_CASE("liveness: passing TCP probes leave the child alone") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  listener l;
  process_spec spec;
  spec.id = "tcp-ok";
  // Runs until the test has seen three probes, then exits by itself.
  auto flag = "/tmp/shardwire-probe-ok-" + std::to_string(::getpid());
  ::unlink(flag.c_str());
  spec.argv = {"/bin/sh", "-c",
               "while [ ! -e " + flag + " ]; do sleep 0.02; done"};
  spec.liveness = liveness_probe{};
  spec.liveness->tcp_port = l.port;
  spec.liveness->interval = std::chrono::milliseconds{30};
  spec.liveness->failure_threshold = 1;
  auto child = spawn_process_child(*fx.rt, spec);
  self->monitor(child);
  size_t probes = 0;
  auto until = std::chrono::steady_clock::now() + deadline;
  while (probes < 3 && std::chrono::steady_clock::now() < until) {
    probes += l.accepted();
    std::this_thread::sleep_for(10ms); // polling the kernel's backlog
  }
  CHECK(probes >= 3);
  std::ofstream{flag} << "stop\n";
  CHECK(wait_down(self, child) == caf::exit_reason::normal);
  ::unlink(flag.c_str());
}

TEST_CASE("liveness: a command probe passes while it exits 0, fails when "
          "it does not or hangs") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  auto base = "/tmp/shardwire-probe-" + std::to_string(::getpid());
  auto count = base + ".count", healthy = base + ".healthy";
  std::ofstream{healthy} << "ok\n";
  ::unlink(count.c_str());
  SECTION("exit status") {
    auto spec = sleeper("cmd");
    spec.liveness = liveness_probe{};
    spec.liveness->command = "echo probe >> " + count + "; test -e " + healthy;
    spec.liveness->interval = std::chrono::milliseconds{30};
    spec.liveness->failure_threshold = 2;
    auto child = spawn_process_child(*fx.rt, spec);
    self->monitor(child);
    auto until = std::chrono::steady_clock::now() + deadline;
    while (line_count(count) < 3 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(10ms); // polling the probes' own file
    CHECK(line_count(count) >= 3);       // passing probes: still running
    ::unlink(healthy.c_str());
    auto reason = wait_down(self, child);
    CHECK(is(reason, sw_errc::liveness_failed));
    CHECK(describe(reason).find("exited 1") != std::string::npos);
  }
  SECTION("a hung probe is killed at its timeout and counts as failed") {
    auto spec = sleeper("hung-probe");
    spec.liveness = liveness_probe{};
    spec.liveness->command = "sleep 30";
    spec.liveness->interval = std::chrono::milliseconds{10};
    spec.liveness->timeout = std::chrono::milliseconds{200};
    spec.liveness->failure_threshold = 1;
    auto child = spawn_process_child(*fx.rt, spec);
    self->monitor(child);
    auto reason = wait_down(self, child);
    CHECK(is(reason, sw_errc::liveness_failed));
    INFO(describe(reason));
    CHECK(describe(reason).find("timed out after 200 ms") != std::string::npos);
  }
  ::unlink(count.c_str());
  ::unlink(healthy.c_str());
}

TEST_CASE("liveness: a malformed probe fails the start, naming it") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  auto spec = sleeper("bad-probe");
  spec.liveness = liveness_probe{}; // neither a command nor a port
  auto child = spawn_process_child(*fx.rt, spec);
  self->monitor(child);
  auto reason = wait_down(self, child);
  CHECK(is(reason, sw_errc::invalid_argument));
  CHECK(describe(reason).find("liveness") != std::string::npos);
  spec.liveness->tcp_port = 1;
  spec.liveness->failure_threshold = 0;
  auto child2 = spawn_process_child(*fx.rt, spec);
  self->monitor(child2);
  CHECK(is(wait_down(self, child2), sw_errc::invalid_argument));
}

TEST_CASE("notify: EXTEND_TIMEOUT_USEC gives a slow start more time") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  // Ready after 3 s, against a ready_timeout of 2 s: only the extension
  // (10 s) lets it start. The timeout leaves Python's start-up (before the
  // extension is sent) a wide margin on a loaded machine: 0.3 s did not.
  auto outcome = [&](bool extend) {
    auto spec = notifier(
        "slow",
        std::string{extend ? "n('EXTEND_TIMEOUT_USEC=10000000')\n" : ""} +
            "time.sleep(3)\nn('READY=1')\ntime.sleep(60)");
    spec.ready_timeout = std::chrono::milliseconds{2000};
    supervisor_spec sup;
    sup.children.push_back(
        process_child_spec(*fx.rt, spec, restart_type::temporary));
    sup.observer = caf::actor_cast<caf::actor>(self);
    auto s = spawn_supervisor(fx.rt->system(), sup);
    REQUIRE(s);
    self->monitor(*s);
    std::string result = "nothing";
    bool done = false;
    while (!done)
      self->receive(
          [&](child_started&) {
            result = "started";
            done = true;
          },
          [&](child_start_failed& ev) {
            result = "failed: " + describe(ev.reason);
            done = true;
          },
          [](child_exited&) {}, [](child_restarting&) {},
          [](supervisor_started&) {}, [&](caf::down_msg&) { done = true; },
          caf::after(deadline) >> [&] { done = true; });
    self->send_exit(*s, caf::exit_reason::user_shutdown);
    wait_down(self, *s);
    return result;
  };
  CHECK(outcome(true) == "started");
  CHECK(outcome(false).find("ready_timeout") != std::string::npos);
}

TEST_CASE("notify: EXTEND_TIMEOUT_USEC while stopping postpones the SIGKILL") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  // On SIGTERM it needs 2 s to finish, against a stop_timeout of 1 s (a
  // wide margin for the extension to arrive on a loaded machine).
  auto says_bye = [&](bool extend) {
    auto spec =
        notifier("stopper",
                 std::string{"import signal\n"
                             "def term(*a):\n"} +
                     (extend ? "    n('EXTEND_TIMEOUT_USEC=6000000')\n" : "") +
                     "    time.sleep(2)\n"
                     "    print('bye', flush=True)\n"
                     "    sys.exit(0)\n"
                     "signal.signal(signal.SIGTERM, term)\n"
                     "n('READY=1')\nprint('up', flush=True)\ntime.sleep(60)");
    spec.stop_timeout = std::chrono::milliseconds{1000};
    spec.subscriber = caf::actor_cast<caf::actor>(self);
    auto child = spawn_process_child(*fx.rt, spec);
    self->monitor(child);
    std::vector<std::string> seen;
    REQUIRE(
        collect(self, seen, [](auto& xs) { return contains(xs, "out:up"); }));
    self->send_exit(child, caf::exit_reason::user_shutdown);
    // Its output ends with its exit, whichever way it goes.
    bool down = false;
    while (!down)
      self->receive(
          [&](process_output& out) {
            seen.push_back("out:" + out.bytes.str());
          },
          [](process_status&) {}, [&](caf::down_msg&) { down = true; },
          caf::after(deadline) >> [&] { down = true; });
    return contains(seen, "out:bye");
  };
  CHECK(says_bye(true));
  CHECK_FALSE(says_bye(false));
}
