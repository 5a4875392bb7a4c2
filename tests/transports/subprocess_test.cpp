// Subprocess transports: subprocess_exec / subprocess_shell (asyncio
// section 4: setup, ordering rules, stdin, return codes and signals, close).
#include "transports/subprocess.hpp"

#include "actors/extra_info.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/transports/helpers.hpp"

#include <csignal>
#include <fstream>
#include <stdexcept>
#include <sys/stat.h>
#include <utility>

using namespace shardwire;
using namespace shardwire::test;

namespace {

// Logs "connected", "out:<bytes>", "err:<bytes>", "pipe_lost:<fd>[:error]",
// "exited:<status>", "pause", "resume", "lost[:error]".
struct sub_recorder {
  // Not an aggregate: `sub_recorder{log}` leaves the hooks empty without
  // -Wmissing-field-initializers noise.
  sub_recorder(event_log_ptr l) : log(std::move(l)) {} // NOLINT: implicit
  event_log_ptr log;
  std::shared_ptr<subprocess_transport_actor> transport =
      std::make_shared<subprocess_transport_actor>();
  bool keep_transport = true;
  // Things to do in the `subprocess_connected` handler.
  std::function<void(subprocess_protocol_actor::pointer,
                     const subprocess_transport_actor&)>
      on_connected;
  std::function<void(subprocess_protocol_actor::pointer,
                     const subprocess_transport_actor&)>
      on_exited;
  // Things to do with each stdout chunk (after it was logged).
  std::function<void(subprocess_protocol_actor::pointer,
                     const subprocess_transport_actor&, const std::string&)>
      on_out;
  // Replaces the `lost` handler's quit: the hook gets the transport's handle
  // and must end the actor itself (e.g. once a reply came back).
  std::function<void(subprocess_protocol_actor::pointer,
                     const subprocess_transport_actor&)>
      on_lost;
};

subprocess_protocol_actor::behavior_type
sub_recorder_impl(subprocess_protocol_actor::pointer self, sub_recorder st) {
  return {
      [=](subprocess_connected& msg) {
        if (st.keep_transport) *st.transport = msg.transport;
        st.log->add("connected");
        if (st.on_connected) st.on_connected(self, msg.transport);
      },
      [=](pipe_data& msg) {
        st.log->add((msg.fd == 1 ? "out:" : "err:") + msg.bytes.str());
        if (msg.fd == 1 && st.on_out)
          st.on_out(self, *st.transport, msg.bytes.str());
      },
      [=](pipe_lost& msg) {
        st.log->add("pipe_lost:" + std::to_string(msg.fd) +
                    (msg.reason ? ":" + describe(msg.reason) : ""));
      },
      [=](exited& msg) {
        st.log->add("exited:" + std::to_string(msg.status));
        if (st.on_exited) st.on_exited(self, *st.transport);
      },
      [=](shardwire::pause) { st.log->add("pause"); },
      [=](shardwire::resume) { st.log->add("resume"); },
      [=](lost& msg) {
        st.log->add(msg.reason ? "lost:" + describe(msg.reason) : "lost");
        auto ended = std::exchange(*st.transport, nullptr);
        if (st.on_lost)
          st.on_lost(self, ended);
        else
          self->quit();
      },
  };
}

subprocess_protocol_factory record(sub_recorder st) {
  return subprocess_protocol_fun(sub_recorder_impl, std::move(st));
}

// Concatenated output of one fd.
std::string output(const event_log& log, const std::string& prefix) {
  std::string out;
  for (auto& ev : log.events())
    if (ev.rfind(prefix, 0) == 0) out += ev.substr(prefix.size());
  return out;
}

// The guarantees of messages.hpp, checked on every finished log.
void check_order(const std::vector<std::string>& ev) {
  REQUIRE(!ev.empty());
  CHECK(ev.front() == "connected");
  CHECK(ev.back().rfind("lost", 0) == 0);
  size_t lost = 0, exits = 0;
  bool closed[3] = {false, false, false};
  for (size_t i = 0; i < ev.size(); ++i) {
    auto& e = ev[i];
    if (e.rfind("lost", 0) == 0) ++lost;
    if (e.rfind("exited:", 0) == 0) ++exits;
    if (e.rfind("pipe_lost:", 0) == 0) {
      int fd = e[10] - '0';
      CHECK_FALSE(closed[fd]);
      closed[fd] = true;
    }
    if (e.rfind("out:", 0) == 0) CHECK_FALSE(closed[1]);
    if (e.rfind("err:", 0) == 0) CHECK_FALSE(closed[2]);
  }
  CHECK(lost == 1);
  CHECK(exits == 1);
}

// Alive = exists and is not a zombie.
bool process_alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return false;
  std::string line;
  std::getline(in, line);
  auto close_paren = line.rfind(')');
  return close_paren != std::string::npos && close_paren + 2 < line.size() &&
         line[close_paren + 2] != 'Z';
}

// Position of the first event equal to `what` (or starting with it, if
// `prefix`), or npos.
size_t index_of(const std::vector<std::string>& ev, const std::string& what,
                bool prefix = false) {
  for (size_t i = 0; i < ev.size(); ++i)
    if (prefix ? ev[i].rfind(what, 0) == 0 : ev[i] == what) return i;
  return std::string::npos;
}

// An error reply as the tests log it: CAF's "the receiver is down" (a
// request to an actor that ended) by a short name.
std::string reply_name(const caf::error& e) {
  return e == caf::sec::request_receiver_down ? "receiver_down" : describe(e);
}

bool wait_gone(pid_t pid) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (process_alive(pid)) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(5ms); // polling the OS, not synchronising
  }
  return true;
}

} // namespace

TEST_CASE("exec: output, exit status, pipe ends, then lost last") {
  auto watcher = GENERATE(child_watcher::pidfd, child_watcher::sigchld);
  CAPTURE(static_cast<int>(watcher));
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  subprocess_options opts;
  opts.watcher = watcher;
  auto sp = subprocess_shell(*fx.rt, "echo hello; echo oops >&2; exit 3",
                             record({log}), opts);
  REQUIRE(sp);
  CHECK(sp->info.pid > 0);
  CHECK(sp->info.pgid == sp->info.pid); // a new process group by default
  // connection_made ran before the call returned.
  REQUIRE(!log->events().empty());
  CHECK(log->events().front() == "connected");
  REQUIRE(log->wait_for_event("lost", true));
  auto ev = log->events();
  check_order(ev);
  CHECK(output(*log, "out:") == "hello\n");
  CHECK(output(*log, "err:") == "oops\n");
  CHECK(log->count("exited:3") == 1);
  CHECK(log->count("pipe_lost:0") == 1);
  CHECK(log->count("pipe_lost:1") == 1);
  CHECK(log->count("pipe_lost:2") == 1);
  CHECK(ev.back() == "lost");
}

TEST_CASE("exec: one write of 300000 bytes arrives in several out events "
          "(C7)") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  subprocess_options opts;
  opts.stdin_ = stdio::devnull;
  // One write(2) of 300000 bytes, more than the 64 KiB a pipe holds: no
  // read can return it whole, so chunk boundaries are the pipe's, not the
  // child's.
  auto sp = subprocess_exec(
      *fx.rt, {"dd", "if=/dev/zero", "bs=300000", "count=1", "status=none"},
      record({log}), opts);
  REQUIRE(sp);
  REQUIRE(log->wait_for_event("lost", true));
  check_order(log->events());
  CHECK(log->count("out:", true) >= 2);
  CHECK(output(*log, "out:") == std::string(300000, '\0'));
  CHECK(log->count("exited:0") == 1);
}

TEST_CASE("exec: a spawn failure is an error and no protocol is made") {
  runtime_fixture fx;
  auto made = std::make_shared<std::atomic<int>>(0);
  auto factory = [made](shard& s) -> subprocess_protocol_actor {
    ++*made;
    auto log = std::make_shared<event_log>();
    return spawn_fun_on(s, sub_recorder_impl, sub_recorder{log});
  };
  SECTION("missing program") {
    auto sp = subprocess_exec(*fx.rt, {"/nonexistent/shardwire-test"}, factory);
    REQUIRE(!sp);
    CHECK(is_errno(sp.error(), ENOENT));
    CHECK(describe(sp.error()).find("/nonexistent/shardwire-test") !=
          std::string::npos);
  }
  SECTION("not in PATH") {
    auto sp = subprocess_exec(*fx.rt, {"shardwire-no-such-program"}, factory);
    REQUIRE(!sp);
    CHECK(is_errno(sp.error(), ENOENT));
  }
  SECTION("no permission") {
    // A file without any execute bit: refused even for root.
    char path[] = "/tmp/shardwire-noexec-XXXXXX";
    int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::close(fd);
    ::chmod(path, 0644);
    auto sp = subprocess_exec(*fx.rt, {path}, factory);
    ::unlink(path);
    REQUIRE(!sp);
    CHECK(is_errno(sp.error(), EACCES));
  }
  SECTION("bad cwd") {
    subprocess_options opts;
    opts.cwd = "/nonexistent-dir";
    auto sp = subprocess_exec(*fx.rt, {"true"}, factory, opts);
    REQUIRE(!sp);
    CHECK(is_errno(sp.error(), ENOENT));
  }
  SECTION("empty argv") {
    auto sp = subprocess_exec(*fx.rt, {}, factory);
    REQUIRE(!sp);
    CHECK(is(sp.error(), sw_errc::invalid_argument));
  }
  CHECK(made->load() == 0);
}

TEST_CASE("exec: stdin is a write pipe; write_eof ends the child's input") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  sub_recorder st{log};
  st.on_connected = [](auto self, const subprocess_transport_actor& t) {
    self->send(t, shardwire::write{buffer::copy_of("line one\n")});
    self->send(t, shardwire::writelines{
                      {buffer::copy_of("line "), buffer::copy_of("two\n")}});
    self->send(t, write_eof{});
  };
  auto sp = subprocess_exec(*fx.rt, {"cat"}, record(st));
  REQUIRE(sp);
  REQUIRE(log->wait_for_event("lost", true));
  check_order(log->events());
  CHECK(output(*log, "out:") == "line one\nline two\n");
  CHECK(log->count("exited:0") == 1);
  CHECK(log->count("pipe_lost:0") == 1);
}

TEST_CASE("exec: write then write_eof; stdin's pipe_lost comes before the "
          "child's output (C86)") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  sub_recorder st{log};
  st.on_connected = [](auto self, const subprocess_transport_actor& t) {
    self->send(t, shardwire::write{buffer::copy_of("abc")});
    self->send(t, write_eof{});
  };
  // wc writes only after EOF, and the stdin pipe sends its `lost` before it
  // closes the descriptor: pipe_lost:0 is relayed before any output.
  auto sp = subprocess_exec(*fx.rt, {"wc", "-c"}, record(st));
  REQUIRE(sp);
  REQUIRE(log->wait_for_event("lost", true));
  auto ev = log->events();
  check_order(ev);
  CHECK(log->count("pipe_lost:0") == 1); // exactly: no error
  auto stdin_lost = index_of(ev, "pipe_lost:0");
  auto first_out = index_of(ev, "out:", true);
  REQUIRE(stdin_lost != std::string::npos);
  REQUIRE(first_out != std::string::npos);
  CHECK(stdin_lost < first_out);
  CHECK(output(*log, "out:") == "3\n"); // the child read abc, then EOF
  CHECK(log->count("exited:0") == 1);
  CHECK(ev.back() == "lost");
}

TEST_CASE("exec: cwd, environment and stderr merged into stdout") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  subprocess_options opts;
  opts.cwd = "/tmp";
  opts.env =
      std::vector<std::string>{"GREETING=from-env", "PATH=/usr/bin:/bin"};
  opts.stderr_ = stdio::stdout_;
  opts.stdin_ = stdio::devnull;
  auto sp = subprocess_shell(*fx.rt,
                             "echo $GREETING; pwd; echo to-stderr >&2; "
                             "read x || echo stdin-at-eof",
                             record({log}), opts);
  REQUIRE(sp);
  REQUIRE(log->wait_for_event("lost", true));
  check_order(log->events());
  CHECK(output(*log, "out:") == "from-env\n/tmp\nto-stderr\nstdin-at-eof\n");
  CHECK(log->count("err:", true) == 0);
  CHECK(log->count("pipe_lost:0") == 0); // not a pipe
  CHECK(log->count("pipe_lost:2") == 0);
}

TEST_CASE("signals: terminate and kill give minus the signal number") {
  runtime_fixture fx;
  auto which = GENERATE(SIGTERM, SIGKILL, SIGINT);
  CAPTURE(which);
  auto log = std::make_shared<event_log>();
  auto sp = subprocess_exec(*fx.rt, {"sleep", "60"}, record({log}));
  REQUIRE(sp);
  caf::scoped_actor self{fx.rt->system()};
  caf::error err;
  auto on_err = [&](caf::error& e) { err = std::move(e); };
  if (which == SIGTERM)
    self->request(sp->transport, deadline, terminate{}).receive([] {}, on_err);
  else if (which == SIGKILL)
    self->request(sp->transport, deadline, shardwire::kill{})
        .receive([] {}, on_err);
  else
    self->request(sp->transport, deadline, shardwire::signal{which, false})
        .receive([] {}, on_err);
  CHECK(!err);
  REQUIRE(log->wait_for_event("lost", true));
  check_order(log->events());
  CHECK(log->count("exited:" + std::to_string(-which)) == 1);
}

TEST_CASE("signals: refused once the child exited, never sent to its pid; "
          "not closing after a natural exit, pid kept after lost (C83)") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  sub_recorder st{log};
  auto out_pipe = std::make_shared<transport_actor>();
  // Hold stdout unread so the transport outlives the child's exit, then
  // release the go line.
  st.on_connected = [out_pipe](auto self, const subprocess_transport_actor& t) {
    self->request(t, deadline, get_pipe_transport{1})
        .then([=](transport_actor& p) {
          *out_pipe = p;
          self->send(p, pause_reading{});
          self->send(t, shardwire::write{buffer::copy_of("go\n")});
        });
  };
  st.on_exited = [log, out_pipe](auto self,
                                 const subprocess_transport_actor& t) {
    // asyncio's is_closing() after a natural exit: False (only close sets
    // it). Asked first, so answered before stdout is resumed.
    self->request(t, deadline, get_status{})
        .then(
            [=](const transport_status& s) {
              log->add(std::string{"closing:"} +
                       (s.closing ? "true" : "false"));
            },
            [=](caf::error& e) { log->add("closing:" + describe(e)); });
    self->request(t, deadline, shardwire::signal{SIGTERM, false})
        .then([=] { log->add("signal:sent"); },
              [=](caf::error& e) {
                log->add(
                    std::string{"signal:"} +
                    (is(e, sw_errc::process_exited) ? "refused" : describe(e)));
                self->request(t, deadline, get_returncode{})
                    .then([=](caf::optional<int32_t> rc) {
                      log->add("returncode:" +
                               (rc ? std::to_string(*rc) : "none"));
                      self->send(*out_pipe, resume_reading{});
                    });
              });
  };
  auto sp = subprocess_shell(*fx.rt, "read x; echo done; exit 7", record(st));
  REQUIRE(sp);
  REQUIRE(log->wait_for_event("lost", true));
  check_order(log->events());
  CHECK(log->count("signal:refused") == 1);
  CHECK(log->count("returncode:7") == 1);
  CHECK(log->count("closing:false") == 1);
  CHECK(output(*log, "out:") == "done\n");
  // After lost the transport has ended: the pid stays in the caller's info
  // (asyncio's get_pid() still works), a get_pid request fails at once.
  CHECK(std::get<int64_t>(extra_info(sp->info, "pid")) == sp->info.pid);
  REQUIRE(wait_down(*fx.rt, sp->transport, [](caf::scoped_actor&) {}));
  auto pid = ask<int32_t>(*fx.rt, sp->transport, get_pid{});
  REQUIRE(!pid);
  CHECK(pid.error() == caf::sec::request_receiver_down);
}

TEST_CASE("signals from the lost handler and after lost: an error reply, "
          "nothing sent (C81)") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  sub_recorder st{log};
  // asyncio: kill() inside connection_lost does nothing. Here the transport
  // sent `lost` as its last message and ended: the request gets an error
  // reply, which the protocol waits for (deadline bounded) before it ends.
  st.on_lost = [log](auto self, const subprocess_transport_actor& t) {
    self->request(t, deadline, shardwire::kill{})
        .then(
            [=] {
              log->add("in_lost:sent");
              self->quit();
            },
            [=](caf::error& e) {
              log->add("in_lost:" + reply_name(e));
              self->quit();
            });
  };
  auto sp = subprocess_exec(*fx.rt, {"true"}, record(st));
  REQUIRE(sp);
  REQUIRE(log->wait_for_event("in_lost:", true));
  CHECK(log->count("in_lost:receiver_down") == 1);
  CHECK(wait_down(*fx.rt, sp->protocol, [](caf::scoped_actor&) {}));
  auto ev = log->events();
  auto lost_at = index_of(ev, "lost");
  REQUIRE(lost_at != std::string::npos);
  check_order({ev.begin(), ev.begin() + static_cast<ptrdiff_t>(lost_at) + 1});
  CHECK(log->count("exited:0") == 1);
  // After lost returned (asyncio: ProcessLookupError): every signal request
  // fails the same way, none is delivered.
  REQUIRE(wait_down(*fx.rt, sp->transport, [](caf::scoped_actor&) {}));
  caf::scoped_actor self{fx.rt->system()};
  auto reply_to = [&](auto msg) {
    std::string got = "no reply";
    self->request(sp->transport, deadline, msg)
        .receive([&] { got = "sent"; },
                 [&](caf::error& e) { got = reply_name(e); });
    return got;
  };
  CHECK(reply_to(shardwire::kill{}) == "receiver_down");
  CHECK(reply_to(terminate{}) == "receiver_down");
  CHECK(reply_to(shardwire::signal{SIGKILL, true}) == "receiver_down");
}

TEST_CASE("while the child runs: no return code, status, protocol and "
          "extra info by name") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  // cat waits on its stdin: it runs until the test closes the transport.
  auto sp = subprocess_exec(*fx.rt, {"cat"}, record({log}));
  REQUIRE(sp);
  auto rc = ask<caf::optional<int32_t>>(*fx.rt, sp->transport,
                                        get_returncode{});
  REQUIRE(rc);
  CHECK_FALSE(*rc); // asyncio's get_returncode(): None while running
  auto st = ask<transport_status>(*fx.rt, sp->transport, get_status{});
  REQUIRE(st);
  CHECK_FALSE(st->closing); // asyncio's is_closing()
  CHECK(st->reading);
  CHECK(st->write_buffer_size == 0);
  auto proto = ask<subprocess_protocol_actor>(*fx.rt, sp->transport,
                                              get_protocol{});
  REQUIRE(proto);
  CHECK(*proto == sp->protocol);
  CHECK(std::get<int64_t>(extra_info(sp->info, "subprocess")) ==
        sp->info.pid);
  CHECK(std::get<int64_t>(extra_info(sp->info, "pid")) == sp->info.pid);
  CHECK(std::get<std::string>(extra_info(sp->info, "args")) == "cat");
  CHECK(std::get<int64_t>(extra_info(sp->info, "peername",
                                         int64_t{-1})) == -1);
  caf::anon_send(sp->transport, shardwire::close{});
  REQUIRE(log->wait_for_event("lost", true));
  check_order(log->events());
}

TEST_CASE("close kills a running child (asyncio: SIGKILL), then lost; "
          "closing after close, each pipe lost once (C82)") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  sub_recorder st{log};
  // Once the child runs (it said so), the protocol sends close and asks
  // get_status right behind it. Both leave from the shard thread that also
  // watches the child's exit, so get_status is handled before the exit can
  // be, and the transport is still there to answer it.
  auto asked = std::make_shared<bool>(false);
  st.on_out = [log, asked](auto self, const subprocess_transport_actor& t,
                           const std::string&) {
    if (std::exchange(*asked, true)) return;
    self->send(t, shardwire::close{});
    self->request(t, deadline, get_status{})
        .then(
            [=](const transport_status& s) {
              log->add(std::string{"closing:"} +
                       (s.closing ? "true" : "false"));
            },
            [=](caf::error& e) { log->add("closing:" + describe(e)); });
  };
  auto sp =
      subprocess_shell(*fx.rt, "echo running; exec sleep 60", record(st));
  REQUIRE(sp);
  REQUIRE(log->wait_for_event("lost", true));
  auto ev = log->events();
  check_order(ev);
  CHECK(log->count("closing:true") == 1);
  CHECK(index_of(ev, "closing:", true) < index_of(ev, "lost"));
  CHECK(log->count("exited:-9") == 1);
  // Each pipe ends once, with no error (the order of the pipe_lost messages
  // against exited is not fixed: see docs/asyncio-conformance.md, C82).
  CHECK(log->count("pipe_lost:0") == 1);
  CHECK(log->count("pipe_lost:1") == 1);
  CHECK(log->count("pipe_lost:2") == 1);
  CHECK(log->count("pipe_lost:", true) == 3);
  CHECK(ev.back() == "lost");
  CHECK_FALSE(process_alive(sp->info.pid));
}

TEST_CASE("a protocol that dies takes its child with it") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  auto sp = subprocess_exec(*fx.rt, {"sleep", "60"}, record({log}));
  REQUIRE(sp);
  auto pid = sp->info.pid;
  REQUIRE(wait_down(*fx.rt, sp->transport, [&](caf::scoped_actor& self) {
    self->send_exit(sp->protocol, caf::exit_reason::kill);
  }));
  CHECK(wait_gone(pid));
}

TEST_CASE("a signal to the group reaches the grandchildren") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  auto sp = subprocess_shell(*fx.rt, "sleep 60 & echo $!; wait", record({log}));
  REQUIRE(sp);
  REQUIRE(log->wait_for_event("out:", true));
  auto grandchild = std::stoi(output(*log, "out:"));
  caf::scoped_actor self{fx.rt->system()};
  caf::error err;
  self->request(sp->transport, deadline, shardwire::signal{SIGTERM, true})
      .receive([] {}, [&](caf::error& e) { err = std::move(e); });
  CHECK(!err);
  REQUIRE(log->wait_for_event("lost", true));
  check_order(log->events());
  CHECK(log->count("exited:-15") == 1);
  CHECK(wait_gone(grandchild));
}

TEST_CASE("kill_group_on_exit: a grandchild holding stdout does not hang it") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  subprocess_options opts;
  opts.kill_group_on_exit = true;
  // The shell exits at once; `sleep` keeps its stdout open. Without the
  // option `lost` would wait for it (asyncio's documented hang).
  auto sp = subprocess_shell(*fx.rt, "sleep 60 & echo $!", record({log}), opts);
  REQUIRE(sp);
  REQUIRE(log->wait_for_event("lost", true));
  check_order(log->events());
  CHECK(log->count("exited:0") == 1);
  CHECK(wait_gone(std::stoi(output(*log, "out:"))));
}

TEST_CASE("exited can come before the last output and its pipe_lost "
          "(C78)") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  sub_recorder st{log};
  // The shell exits at once; a background job that shares its stdout waits
  // for a line and prints "late" only after the protocol saw `exited` and
  // sent it. Its stdin is kept as fd 3: sh points a background job's stdin
  // at /dev/null. It says its pid on stderr.
  st.on_exited = [](auto self, const subprocess_transport_actor& t) {
    self->send(t, shardwire::write{buffer::copy_of("go\n")});
  };
  auto sp = subprocess_shell(
      *fx.rt, "exec 3<&0; (read x <&3; echo late) & echo $! >&2; exit 0",
      record(st));
  REQUIRE(sp);
  REQUIRE(log->wait_for_event("lost", true));
  auto ev = log->events();
  check_order(ev);
  auto exit_at = index_of(ev, "exited:0");
  auto late = index_of(ev, "out:late\n");
  auto out_lost = index_of(ev, "pipe_lost:1");
  REQUIRE(exit_at != std::string::npos);
  REQUIRE(late != std::string::npos);
  REQUIRE(out_lost != std::string::npos);
  CHECK(exit_at < late);
  CHECK(late < out_lost);
  CHECK(output(*log, "out:") == "late\n");
  CHECK(ev.back() == "lost");
  CHECK(wait_gone(std::stoi(output(*log, "err:"))));
}

TEST_CASE("runtime shutdown leaves no child or grandchild running") {
  pid_t child = 0, grandchild = 0;
  auto log = std::make_shared<event_log>();
  {
    runtime_fixture fx;
    auto sp =
        subprocess_shell(*fx.rt, "sleep 60 & echo $!; wait", record({log}));
    REQUIRE(sp);
    REQUIRE(log->wait_for_event("out:", true));
    child = sp->info.pid;
    grandchild = std::stoi(output(*log, "out:"));
    CHECK(process_alive(child));
    CHECK(process_alive(grandchild));
  } // shutdown
  CHECK_FALSE(process_alive(child));
  CHECK(wait_gone(grandchild));
  auto ev = log->events();
  REQUIRE(!ev.empty());
  CHECK(log->count("exited:-9") == 1);
  CHECK(ev.back().rfind("lost", 0) == 0);
}

TEST_CASE("many children: each is reaped, no descriptor leaks") {
  runtime_fixture fx; // its destructor checks descriptors
  constexpr int n = 50;
  std::vector<event_log_ptr> logs;
  for (int i = 0; i < n; ++i) {
    auto log = std::make_shared<event_log>();
    logs.push_back(log);
    auto sp = subprocess_exec(
        *fx.rt, {"sh", "-c", "echo $0", std::to_string(i)}, record({log}));
    REQUIRE(sp);
  }
  for (int i = 0; i < n; ++i) {
    REQUIRE(logs[i]->wait_for_event("lost", true));
    CHECK(output(*logs[i], "out:") == std::to_string(i) + "\n");
    CHECK(logs[i]->count("exited:0") == 1);
  }
}

TEST_CASE("a fire-and-forget child keeps its transport until it ends") {
  // Nobody holds the transport's handle (not the caller, not the protocol):
  // the running child must keep it alive until exited and lost went out.
  runtime_fixture fx;
  std::vector<event_log_ptr> logs;
  for (int i = 0; i < 20; ++i) {
    auto log = std::make_shared<event_log>();
    logs.push_back(log);
    sub_recorder st{log};
    st.keep_transport = false;
    async_subprocess_exec(*fx.rt, {"true"}, record(st), {}, nullptr);
  }
  for (auto& log : logs) {
    REQUIRE(log->wait_for_event("lost", true));
    check_order(log->events());
    CHECK(log->count("exited:0") == 1);
    CHECK(log->events().back() == "lost");
  }
}

TEST_CASE("stdin to a child that never reads: pause, then EPIPE (C85)") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  sub_recorder st{log};
  st.on_connected = [](auto self, const subprocess_transport_actor& t) {
    self->send(
        t, shardwire::write{buffer::copy_of(std::string(2500 * 1024, 'x'))});
  };
  // The child never reads; it exits on SIGUSR1, sent once the write is
  // stuck (`pause`).
  // It says when its trap is set: the pipe fills (and `pause` comes) before
  // the shell may even have run `trap`, and a signal before it would kill
  // the child instead of ending it with status 0.
  auto sp = subprocess_shell(
      *fx.rt, "trap 'exit 0' USR1; echo armed; while :; do sleep 0.05; done",
      record(st));
  REQUIRE(sp);
  REQUIRE(log->wait_for_event("pause"));
  REQUIRE(log->wait_for_event("out:armed", true));
  caf::scoped_actor self{fx.rt->system()};
  self->send(sp->transport, shardwire::signal{SIGUSR1, false});
  REQUIRE(log->wait_for_event("lost", true));
  check_order(log->events());
  CHECK(log->count("pause") == 1);
  CHECK(log->count("pipe_lost:0:errno: Broken pipe", true) == 1);
  CHECK(log->count("exited:0") == 1);
}

TEST_CASE("no pipes at all: connected, exited, lost (C87)") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  subprocess_options opts;
  opts.stdin_ = stdio::devnull;
  opts.stdout_ = stdio::devnull;
  opts.stderr_ = stdio::devnull;
  auto sp = subprocess_exec(*fx.rt, {"true"}, record({log}), opts);
  REQUIRE(sp);
  REQUIRE(log->wait_for_event("lost", true));
  CHECK(log->events() ==
        std::vector<std::string>{"connected", "exited:0", "lost"});
  auto none =
      ask<transport_actor>(*fx.rt, sp->transport, get_pipe_transport{1});
  // The transport is gone after lost; before, fd 1 would have been refused.
  CHECK(!none);
}

TEST_CASE("closing the child's stdout early: it dies writing (C89)") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  sub_recorder st{log};
  st.on_connected = [](auto self, const subprocess_transport_actor& t) {
    self->request(t, deadline, get_pipe_transport{1})
        .then([=](transport_actor& p) { self->send(p, shardwire::close{}); });
  };
  subprocess_options opts;
  opts.stdin_ = stdio::devnull;
  opts.stderr_ = stdio::devnull;
  // `yes` writes until stdout breaks, then exits with status 1 (EPIPE) or
  // by SIGPIPE, which the child has back at its default.
  auto sp = subprocess_exec(*fx.rt, {"yes"}, record(st), opts);
  REQUIRE(sp);
  REQUIRE(log->wait_for_event("lost", true));
  check_order(log->events());
  CHECK(log->count("pipe_lost:1") == 1);
  auto ev = log->events();
  bool died = std::count(ev.begin(), ev.end(), "exited:1") == 1 ||
              std::count(ev.begin(), ev.end(), "exited:-13") == 1;
  CHECK(died);
  // asyncio: pcl(1), process_exited, cl. The pipe sends its `lost` before
  // its descriptor closes, and the child meets EPIPE only after that.
  auto out_lost = index_of(ev, "pipe_lost:1");
  auto exit_at = index_of(ev, "exited:", true);
  REQUIRE(out_lost != std::string::npos);
  REQUIRE(exit_at != std::string::npos);
  CHECK(out_lost < exit_at);
  CHECK(ev.back() == "lost");
}

TEST_CASE("get_pipe_transport: 0 writes, 1 and 2 read, 3 is refused (C84)") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  auto sp = subprocess_exec(*fx.rt, {"cat"}, record({log}));
  REQUIRE(sp);
  for (int fd = 0; fd < 3; ++fd) {
    auto p =
        ask<transport_actor>(*fx.rt, sp->transport, get_pipe_transport{fd});
    REQUIRE(p);
    auto info = ask<transport_info>(*fx.rt, *p, get_extra_info{});
    REQUIRE(info);
    CHECK(info->kind == (fd == 0 ? "write_pipe" : "read_pipe"));
  }
  auto none =
      ask<transport_actor>(*fx.rt, sp->transport, get_pipe_transport{3});
  REQUIRE(!none);
  CHECK(is(none.error(), sw_errc::invalid_argument));
  caf::scoped_actor self{fx.rt->system()};
  self->send(sp->transport, write_eof{});
  REQUIRE(log->wait_for_event("lost", true));
  CHECK(log->count("exited:0") == 1);
}

namespace {

// A callback subprocess protocol whose every callback logs, then throws.
class throwing_subprocess_protocol : public subprocess_protocol {
public:
  explicit throwing_subprocess_protocol(event_log_ptr log)
      : log_(std::move(log)) {}

  void connection_made(subprocess_transport_ref&) override {
    fail("connected");
  }
  void pipe_data_received(int fd, const buffer& bytes) override {
    fail((fd == 1 ? "out:" : "err:") + bytes.str());
  }
  void pipe_connection_lost(int fd, const caf::error&) override {
    fail("pipe_lost:" + std::to_string(fd));
  }
  void process_exited(int returncode) override {
    fail("exited:" + std::to_string(returncode));
  }
  void connection_lost(const caf::error& reason) override {
    fail(reason ? "lost:" + describe(reason) : "lost");
  }

private:
  void fail(const std::string& ev) {
    log_->add(ev);
    throw std::runtime_error("callback failed: " + ev);
  }
  event_log_ptr log_;
};

} // namespace

TEST_CASE("callback subprocess protocol: an exception in any callback is "
          "logged and the child runs on (asyncio's policy)") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  auto sp = subprocess_shell(
      *fx.rt, "echo out; echo err >&2; exit 3",
      make_subprocess_protocol<throwing_subprocess_protocol>(log));
  REQUIRE(sp);
  REQUIRE(log->wait_for_event("lost", true));
  // Every callback ran, in the guaranteed order, though each one threw.
  check_order(log->events());
  CHECK(output(*log, "out:") == "out\n");
  CHECK(output(*log, "err:") == "err\n");
  CHECK(log->count("pipe_lost:1") == 1);
  CHECK(log->count("pipe_lost:2") == 1);
  CHECK(log->count("exited:3") == 1);
  CHECK(log->events().back() == "lost");
  CHECK(wait_down(*fx.rt, sp->protocol, [](caf::scoped_actor&) {}));
}

TEST_CASE("set_subprocess_protocol hands later events to the new protocol") {
  runtime_fixture fx;
  auto log1 = std::make_shared<event_log>();
  auto log2 = std::make_shared<event_log>();
  // The child waits for a line, so nothing happens before the switch.
  auto sp = subprocess_shell(*fx.rt, "read x; echo after; exit 5",
                             record({log1}));
  REQUIRE(sp);
  sub_recorder second_st{log2};
  second_st.keep_transport = false;
  auto second = spawn_fun_on(fx.rt->shard_at(sp->info.shard),
                             sub_recorder_impl, second_st);
  caf::anon_send(sp->transport, set_subprocess_protocol{second});
  // Handled after the switch (same sender, in order).
  auto now = ask<subprocess_protocol_actor>(*fx.rt, sp->transport,
                                            get_protocol{});
  REQUIRE(now);
  CHECK(*now == second);
  caf::anon_send(sp->transport, shardwire::write{buffer::copy_of("go\n")});
  REQUIRE(log2->wait_for_event("lost", true));
  CHECK(output(*log2, "out:") == "after\n");
  CHECK(log2->count("exited:5") == 1);
  CHECK(log2->count("connected") == 0);
  CHECK(log1->events() == std::vector<std::string>{"connected"});
  // The first protocol is no longer the transport's business.
  CHECK(wait_down(*fx.rt, sp->protocol, [&](caf::scoped_actor& self) {
    self->send_exit(sp->protocol, caf::exit_reason::user_shutdown);
  }));
}

namespace {

// A callback subprocess protocol that logs what its transport handle says
// in process_exited and connection_lost.
class exit_reader : public subprocess_protocol {
public:
  explicit exit_reader(event_log_ptr log) : log_(std::move(log)) {}

  void process_exited(int returncode) override {
    log_->add("exited:" + std::to_string(returncode) +
              ":closing=" + (transport().is_closing() ? "true" : "false"));
  }
  void connection_lost(const caf::error& reason) override {
    auto& t = transport();
    auto rc = t.returncode();
    log_->add(std::string{reason ? "lost:error" : "lost"} +
              ":pid=" + std::to_string(t.pid()) +
              ":rc=" + (rc ? std::to_string(*rc) : "none") +
              ":closing=" + (t.is_closing() ? "true" : "false"));
  }

private:
  event_log_ptr log_;
};

} // namespace

TEST_CASE("callback subprocess protocol: not closing after a natural exit; "
          "pid and returncode readable in connection_lost (C83)") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  auto sp = subprocess_shell(*fx.rt, "exit 4",
                             make_subprocess_protocol<exit_reader>(log));
  REQUIRE(sp);
  REQUIRE(log->wait_for_event("lost", true));
  CHECK(wait_down(*fx.rt, sp->protocol, [](caf::scoped_actor&) {}));
  auto ev = log->events();
  REQUIRE(ev.size() == 2);
  // asyncio's is_closing() after a natural exit: False (only close sets it).
  CHECK(ev[0] == "exited:4:closing=false");
  // asyncio's get_pid() and returncode still answer in connection_lost, and
  // is_closing() is still False there (close() was never called).
  CHECK(ev[1] == "lost:pid=" + std::to_string(sp->info.pid) +
                     ":rc=4:closing=false");
}
