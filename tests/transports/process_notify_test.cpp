// Readiness and liveness the systemd way (process_spec::notify, watchdog;
// transports/detail/notify_socket.hpp): children that speak sd_notify's
// datagram protocol themselves (python3) and through Debian's
// `systemd-notify`, the watchdog killing a child that stops pinging, and a
// supervisor restarting it.
#include "transports/process_child.hpp"

#include "actors/supervision/messages.hpp"
#include "tests/support/fixtures.hpp"
#include "transports/detail/notify_socket.hpp"

#include <algorithm>
#include <cstdlib>
#include <future>
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

caf::error wait_down(caf::scoped_actor& self, const caf::actor& child) {
  caf::error reason{sw_errc::timeout};
  bool done = false;
  while (!done)
    self->receive(
        [&](caf::down_msg& msg) {
          if (msg.source == child.address()) {
            reason = msg.reason;
            done = true;
          }
        },
        [](process_output&) {}, [](process_status&) {},
        caf::after(deadline) >> [&] { done = true; });
  return reason;
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
    // Pings every 50 ms against a 400 ms watchdog, then exits by itself.
    auto spec = notifier("alive", "n('READY=1')\n"
                                  "for _ in range(20):\n"
                                  "  n('WATCHDOG=1'); time.sleep(0.05)\n");
    spec.watchdog = std::chrono::milliseconds{400};
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
