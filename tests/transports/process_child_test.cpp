// Process children (transports/process_child.hpp): readiness, exit reasons,
// graceful stop to the whole process group, output as messages with
// back-pressure.
#include "transports/process_child.hpp"

#include "transports/detail/child_cgroup.hpp"

#include "tests/support/fixtures.hpp"
#include "tests/transports/helpers.hpp"

#include <fstream>

using namespace shardwire;
using namespace shardwire::test;

namespace {

bool process_alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return false;
  std::string line;
  std::getline(in, line);
  auto p = line.rfind(')');
  return p != std::string::npos && p + 2 < line.size() && line[p + 2] != 'Z';
}

bool wait_gone(pid_t pid) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (process_alive(pid)) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(5ms); // polling the OS, not synchronising
  }
  return true;
}

process_spec shell(std::string id, std::string cmd) {
  process_spec spec;
  spec.id = std::move(id);
  spec.argv = {"/bin/sh", "-c", std::move(cmd)};
  return spec;
}

// Receives output lines until `pred(lines)` holds or the deadline passes.
bool collect(caf::scoped_actor& self, std::vector<std::string>& lines,
             const std::function<bool(const std::vector<std::string>&)>& pred) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (!pred(lines)) {
    auto left = until - std::chrono::steady_clock::now();
    if (left <= 0s) return false;
    bool got = false;
    self->receive(
        [&](process_output& out) {
          lines.push_back(std::to_string(out.fd) + ":" + out.bytes.str());
          got = true;
        },
        caf::after(
            std::chrono::duration_cast<std::chrono::milliseconds>(left)) >>
            [] {});
    if (!got) return false;
  }
  return true;
}

caf::error wait_exit(caf::scoped_actor& self, const caf::actor& child) {
  caf::error reason{sw_errc::timeout};
  bool done = false;
  while (!done) {
    self->receive(
        [&](caf::down_msg& msg) {
          if (msg.source == child.address()) {
            reason = msg.reason;
            done = true;
          }
        },
        [&](process_output&) {}, // late output: not what this waits for
        caf::after(deadline) >> [&] { done = true; });
  }
  return reason;
}

} // namespace

TEST_CASE("process child: lines in order, ready on a ready line") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  auto log = std::make_shared<event_log>();
  auto spec = shell("web", "echo starting; echo oops >&2; printf 'part'; "
                           "printf 'ial\\nREADY now\\n'; exec sleep 60");
  spec.subscriber = caf::actor_cast<caf::actor>(self);
  spec.ready_line = "READY";
  auto child = spawn_process_child(*fx.rt, spec, [log] { log->add("ready"); });
  self->monitor(child);
  std::vector<std::string> lines;
  REQUIRE(collect(self, lines, [](auto& l) { return l.size() >= 4; }));
  REQUIRE(log->wait_for_event("ready"));
  // stdout lines in order; stderr on its own stream.
  std::vector<std::string> out;
  for (auto& l : lines)
    if (l[0] == '1') out.push_back(l);
  CHECK(out ==
        std::vector<std::string>{"1:starting", "1:partial", "1:READY now"});
  CHECK(std::count(lines.begin(), lines.end(), "2:oops") == 1);
  self->send_exit(child, caf::exit_reason::user_shutdown);
  CHECK(wait_exit(self, child) == caf::exit_reason::user_shutdown);
}

TEST_CASE("process child: exit reasons a supervisor can judge") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  SECTION("status 0 is a normal exit") {
    auto child = spawn_process_child(*fx.rt, shell("ok", "exit 0"));
    self->monitor(child);
    CHECK(wait_exit(self, child) == caf::exit_reason::normal);
  }
  SECTION("a non-zero status is process_failed") {
    auto child = spawn_process_child(*fx.rt, shell("bad", "exit 3"));
    self->monitor(child);
    auto reason = wait_exit(self, child);
    CHECK(is(reason, sw_errc::process_failed));
    CHECK(describe(reason).find("exit status 3") != std::string::npos);
  }
  SECTION("a signal death is process_failed") {
    auto child = spawn_process_child(*fx.rt, shell("sig", "kill -9 $$"));
    self->monitor(child);
    auto reason = wait_exit(self, child);
    CHECK(is(reason, sw_errc::process_failed));
    CHECK(describe(reason).find("signal 9") != std::string::npos);
  }
  SECTION("success_statuses: listed codes and signals are normal exits") {
    auto code = shell("code", "exit 3");
    code.success_statuses = {0, 3};
    auto child = spawn_process_child(*fx.rt, code);
    self->monitor(child);
    CHECK(wait_exit(self, child) == caf::exit_reason::normal);
    auto sig = shell("term", "kill -TERM $$");
    sig.success_statuses = {0, -SIGTERM};
    auto child2 = spawn_process_child(*fx.rt, sig);
    self->monitor(child2);
    CHECK(wait_exit(self, child2) == caf::exit_reason::normal);
    // Not listed: still a failure, and 0 is only a success when listed.
    auto other = shell("kill", "kill -9 $$");
    other.success_statuses = {0, -SIGTERM};
    auto child3 = spawn_process_child(*fx.rt, other);
    self->monitor(child3);
    CHECK(is(wait_exit(self, child3), sw_errc::process_failed));
    auto zero = shell("zero", "exit 0");
    zero.success_statuses = {2};
    auto child4 = spawn_process_child(*fx.rt, zero);
    self->monitor(child4);
    auto reason = wait_exit(self, child4);
    CHECK(is(reason, sw_errc::process_failed));
    CHECK(describe(reason).find("exit status 0") != std::string::npos);
  }
  SECTION("an OOM kill in its cgroup is oom_killed, not process_failed") {
    const auto& base = detail::cgroup_base();
    bool memory = false;
    if (base.ok()) {
      std::ifstream in{base.dir + "/cgroup.controllers"};
      for (std::string w; in >> w;)
        memory = memory || w == "memory";
    }
    if (!memory) {
      WARN("SKIPPED: no memory controller for child cgroups here ("
           << (base.ok() ? base.dir : base.why_not) << ")");
    } else {
      auto spec = shell("hog", "python3 -c 'b = bytearray(256 << 20)'");
      spec.options.limits.cgroup = child_cgroup{};
      spec.options.limits.cgroup->memory_max = 16u << 20;
      auto child = spawn_process_child(*fx.rt, spec);
      self->monitor(child);
      auto reason = wait_exit(self, child);
      CHECK(is(reason, sw_errc::oom_killed));
      CHECK(describe(reason).find("memory.max") != std::string::npos);
    }
  }
  SECTION("a missing program ends it with the spawn error") {
    process_spec spec;
    spec.id = "missing";
    spec.argv = {"/nonexistent/program"};
    auto child = spawn_process_child(*fx.rt, spec);
    self->monitor(child);
    CHECK(is_errno(wait_exit(self, child), ENOENT));
  }
}

TEST_CASE("process child: ready after a minimum run time, not before") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  auto log = std::make_shared<event_log>();
  SECTION("a child that keeps running becomes ready") {
    auto spec = shell("slow", "exec sleep 60");
    spec.ready_after = 50ms;
    auto start = std::chrono::steady_clock::now();
    auto child =
        spawn_process_child(*fx.rt, spec, [log] { log->add("ready"); });
    self->monitor(child);
    REQUIRE(log->wait_for_event("ready"));
    CHECK(std::chrono::steady_clock::now() - start >= 50ms);
    self->send_exit(child, caf::exit_reason::user_shutdown);
    CHECK(wait_exit(self, child) == caf::exit_reason::user_shutdown);
  }
  SECTION("a child that dies first never is") {
    auto spec = shell("crash", "exit 1");
    spec.ready_after = 10s;
    auto child =
        spawn_process_child(*fx.rt, spec, [log] { log->add("ready"); });
    self->monitor(child);
    CHECK(is(wait_exit(self, child), sw_errc::process_failed));
    CHECK(log->count("ready") == 0);
  }
}

TEST_CASE("process child: graceful stop reaches the group, SIGKILL after") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  // The shell ignores SIGTERM (so does its grandchild, which inherits the
  // disposition): only the SIGKILL after the timeout ends them.
  auto spec =
      shell("stubborn", "trap '' TERM; sleep 60 & echo $!; echo ready; wait");
  spec.subscriber = caf::actor_cast<caf::actor>(self);
  spec.stop_timeout = 200ms;
  auto child = spawn_process_child(*fx.rt, spec);
  self->monitor(child);
  std::vector<std::string> lines;
  REQUIRE(collect(self, lines, [](auto& l) { return l.size() >= 2; }));
  auto grandchild = std::stoi(lines[0].substr(2));
  REQUIRE(process_alive(grandchild));
  auto start = std::chrono::steady_clock::now();
  self->send_exit(child, caf::exit_reason::user_shutdown);
  CHECK(wait_exit(self, child) == caf::exit_reason::user_shutdown);
  CHECK(std::chrono::steady_clock::now() - start >= 200ms);
  CHECK(wait_gone(grandchild));
}

TEST_CASE("process child: a child that obeys SIGTERM stops without SIGKILL") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  auto spec = shell("polite", "trap 'echo bye; exit 0' TERM; echo ready; "
                              "while :; do sleep 0.05; done");
  spec.subscriber = caf::actor_cast<caf::actor>(self);
  spec.stop_timeout = 10s;
  auto child = spawn_process_child(*fx.rt, spec);
  self->monitor(child);
  std::vector<std::string> lines;
  REQUIRE(collect(self, lines, [](auto& l) { return !l.empty(); }));
  auto start = std::chrono::steady_clock::now();
  self->send_exit(child, caf::exit_reason::user_shutdown);
  // The group signal also ends the shell's `sleep` (the shell may report
  // that on stderr); the trap's line comes on stdout.
  REQUIRE(collect(self, lines, [](auto& l) {
    return std::find(l.begin(), l.end(), "1:bye") != l.end();
  }));
  CHECK(wait_exit(self, child) == caf::exit_reason::user_shutdown);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
}

TEST_CASE("process child: a subscriber that does not read stops the child") {
  runtime_fixture fx;
  caf::scoped_actor self{fx.rt->system()};
  // 64 MiB of output that nobody reads for a while.
  auto spec = shell("chatty", "head -c 67108864 /dev/zero");
  spec.subscriber = caf::actor_cast<caf::actor>(self);
  spec.split_lines = false;
  auto child = spawn_process_child(*fx.rt, spec);
  self->monitor(child);
  // Not reading, as the transport sees it: the subscriber keeps every
  // message, so the read credit its ticket holds never comes back. Take
  // output out of the mailbox into `held` until the tickets held weigh more
  // than the high mark (it must come: the transport reads until then).
  const size_t high = fx.cfg.read_high_water;
  std::vector<process_output> held;
  size_t weight = 0; // credit held by the tickets in `held`
  size_t queued = 0; // bytes of output in `held`
  while (weight <= high) {
    bool got = false;
    self->receive(
        [&](process_output& out) {
          weight += out.ticket.bytes();
          queued += out.bytes.size();
          held.push_back(std::move(out));
          got = true;
        },
        [&](caf::down_msg&) {}, // the child ended early: fails below
        caf::after(deadline) >> [] {});
    REQUIRE(got);
  }
  // When the transport took the credit of the last message received, the
  // credit out (at least `weight`, none of it returned) was over the mark:
  // it stopped reading there, so no output follows. Round trips through the
  // process child, which runs on the shard of its transport and pipes, give
  // a transport that read on regardless the turns to forward more: between
  // two requests its shard runs the poller. `pause` is a no-op for a
  // process child (it writes nothing to its child): only the reply counts.
  for (int i = 0; i < 3; ++i) {
    bool answered = false;
    self->request(child, deadline, shardwire::pause{})
        .receive([&] { answered = true; }, [&](caf::error&) {});
    REQUIRE(answered);
  }
  // Output forwarded before a reply is in the mailbox before it: a look at
  // the mailbox now (without waiting) finds none.
  size_t more = 0;
  for (bool got = true; got;) {
    got = false;
    self->receive(
        [&](process_output& out) {
          more += out.bytes.size();
          got = true;
        },
        caf::after(0ms) >> [] {});
  }
  CHECK(more == 0);
  const size_t bound = high + 512 * 1024;
  CHECK(weight <= bound);
  CHECK(queued <= bound);
  CHECK(queued < 64u * 1024 * 1024);
  // Reading resumes once the held output is handled (its credit returns).
  held.clear();
  // Now read everything: all 64 MiB arrive and the child exits normally.
  size_t total = queued + more;
  bool down = false;
  caf::error reason;
  while (!down) {
    self->receive([&](process_output& out) { total += out.bytes.size(); },
                  [&](caf::down_msg& msg) {
                    down = true;
                    reason = msg.reason;
                  },
                  caf::after(deadline) >> [&] { down = true; });
  }
  CHECK(total == 64u * 1024 * 1024);
  CHECK(reason == caf::exit_reason::normal);
}
