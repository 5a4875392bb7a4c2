// A child on a pseudo-terminal (subprocess_options::pty,
// transports/pty_options.hpp): what the child sees (a terminal of the given
// size, its controlling terminal), what comes back (the terminal's output on
// fd 1, stderr included, echo, "\r\n"), and the end of the output once the
// child is gone.
#include "transports/subprocess.hpp"

#include "tests/support/fixtures.hpp"

#include <algorithm>
#include <csignal>
#include <future>

using namespace shardwire;
using namespace shardwire::test;

namespace {

struct child_result {
  std::string out; // fd 1
  std::string err; // fd 2 (stays empty when stderr is on the terminal)
  int status = 0;
};

class collector : public subprocess_protocol {
public:
  collector(std::shared_ptr<std::promise<child_result>> done,
            std::shared_ptr<std::promise<void>> saw, std::string wanted)
      : done_(std::move(done)), saw_(std::move(saw)),
        wanted_(std::move(wanted)) {}
  void pipe_data_received(int fd, const buffer& bytes) override {
    (fd == 1 ? result_.out : result_.err) += bytes.str();
    if (saw_ && result_.out.find(wanted_) != std::string::npos) {
      saw_->set_value();
      saw_.reset();
    }
  }
  void process_exited(int rc) override { result_.status = rc; }
  void connection_lost(const caf::error&) override {
    done_->set_value(std::move(result_));
  }

private:
  std::shared_ptr<std::promise<child_result>> done_;
  std::shared_ptr<std::promise<void>> saw_;
  std::string wanted_;
  child_result result_;
};

struct running {
  caf::expected<subprocess> sp{caf::error{}};
  std::future<child_result> done;
  std::future<void> saw; // `wanted` appeared in the output
};

running start(runtime& rt, const std::string& cmd, subprocess_options opts,
              std::string wanted = "\x01never") {
  auto done = std::make_shared<std::promise<child_result>>();
  auto saw = std::make_shared<std::promise<void>>();
  running r;
  r.done = done->get_future();
  r.saw = saw->get_future();
  r.sp = subprocess_shell(
      rt, cmd,
      make_subprocess_protocol<collector>(done, saw, std::move(wanted)),
      std::move(opts));
  return r;
}

subprocess_options on_terminal(uint16_t rows = 24, uint16_t cols = 80) {
  subprocess_options opts;
  opts.pty = pty_options{rows, cols};
  return opts;
}

const char* introspect =
    "test -t 0 && test -t 1 && test -t 2 && echo tty; stty size; "
    "exec 3</dev/tty && echo ctty; echo on-stderr >&2";

void check_terminal(const child_result& r, const std::string& size) {
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find("tty\r\n") != std::string::npos);
  CHECK(r.out.find(size + "\r\n") != std::string::npos);
  CHECK(r.out.find("ctty\r\n") != std::string::npos);
  CHECK(r.out.find("on-stderr\r\n") != std::string::npos);
  CHECK(r.err.empty());
}

} // namespace

TEST_CASE("pty: the child sees a terminal of the given size, as its "
          "controlling terminal") {
  runtime_fixture fx;
  auto r = start(*fx.rt, introspect, on_terminal(40, 120));
  REQUIRE(r.sp);
  CHECK(r.sp->info.pgid == r.sp->info.pid); // a session of its own
  REQUIRE(r.done.wait_for(deadline) == std::future_status::ready);
  check_terminal(r.done.get(), "40 120");
}

TEST_CASE("pty: the same on the fork path (limits set)") {
  runtime_fixture fx;
  auto opts = on_terminal(30, 100);
  opts.limits.umask = 022;
  auto r = start(*fx.rt, introspect, opts);
  REQUIRE(r.sp);
  REQUIRE(r.done.wait_for(deadline) == std::future_status::ready);
  check_terminal(r.done.get(), "30 100");
}

TEST_CASE("pty: input is echoed by the terminal and read by the child") {
  runtime_fixture fx;
  auto r = start(*fx.rt, "echo ready; read line; echo \"got $line\"",
                 on_terminal(), "ready\r\n");
  REQUIRE(r.sp);
  // Written once the child reads: input before the child set the terminal
  // up could be echoed in another order.
  REQUIRE(r.saw.wait_for(deadline) == std::future_status::ready);
  caf::anon_send(r.sp->transport, shardwire::write{buffer::copy_of("hi\n")});
  REQUIRE(r.done.wait_for(deadline) == std::future_status::ready);
  auto res = r.done.get();
  INFO(res.out);
  CHECK(res.status == 0);
  CHECK(res.out == "ready\r\nhi\r\ngot hi\r\n");
}

TEST_CASE("pty: all output arrives before the end, then the end") {
  runtime_fixture fx;
  // More than a terminal buffers: the child blocks until it is read.
  auto r =
      start(*fx.rt, "head -c 200000 /dev/zero | tr '\\0' x", on_terminal());
  REQUIRE(r.sp);
  REQUIRE(r.done.wait_for(deadline) == std::future_status::ready);
  auto res = r.done.get();
  CHECK(res.status == 0);
  CHECK(res.out.size() == 200000);
  CHECK(std::count(res.out.begin(), res.out.end(), 'x') == 200000);
}

TEST_CASE("pty: closing the transport ends a child that reads forever") {
  runtime_fixture fx;
  auto r = start(*fx.rt, "echo ready; cat", on_terminal(), "ready\r\n");
  REQUIRE(r.sp);
  REQUIRE(r.saw.wait_for(deadline) == std::future_status::ready);
  caf::anon_send(r.sp->transport, shardwire::close{});
  REQUIRE(r.done.wait_for(deadline) == std::future_status::ready);
  auto st = r.done.get().status;
  // Hung up (SIGHUP from the closed terminal) or killed, whichever came
  // first: both are signals, and the child is gone.
  CHECK((st == -SIGKILL || st == -SIGHUP));
}

TEST_CASE("pty: stdout off the terminal is refused") {
  runtime_fixture fx;
  auto opts = on_terminal();
  opts.stdout_ = stdio::devnull;
  auto r = start(*fx.rt, "true", opts);
  REQUIRE_FALSE(r.sp);
  CHECK(is(r.sp.error(), sw_errc::invalid_argument));
  CHECK(describe(r.sp.error()).find("pty") != std::string::npos);
}

TEST_CASE("pty: stdin kept off the terminal; output still on it") {
  runtime_fixture fx;
  auto opts = on_terminal();
  opts.stdin_ = stdio::devnull;
  auto r = start(
      *fx.rt, "test -t 0 || echo no-tty-in; test -t 1 && echo tty-out", opts);
  REQUIRE(r.sp);
  REQUIRE(r.done.wait_for(deadline) == std::future_status::ready);
  auto res = r.done.get();
  INFO(res.out);
  CHECK(res.out == "no-tty-in\r\ntty-out\r\n");
}

TEST_CASE("pty: Ctrl-C written to the terminal interrupts the child") {
  runtime_fixture fx;
  auto r =
      start(*fx.rt, "echo ready; exec sleep 30", on_terminal(), "ready\r\n");
  REQUIRE(r.sp);
  REQUIRE(r.saw.wait_for(deadline) == std::future_status::ready);
  // The terminal's line discipline turns ^C into SIGINT for its foreground
  // group: the child's, since the terminal is its controlling terminal.
  caf::anon_send(r.sp->transport, shardwire::write{buffer::copy_of("\x03")});
  REQUIRE(r.done.wait_for(deadline) == std::future_status::ready);
  CHECK(r.done.get().status == -SIGINT);
}
