// Pipe transports: connect_read_pipe / connect_write_pipe (asyncio section 4
// setup and the pipe rules of the conformance checklist).
#include "transports/pipe.hpp"

#include "actors/extra_info.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/log_capture.hpp"
#include "tests/transports/helpers.hpp"

#include <fcntl.h>
#include <stdexcept>
#include <unistd.h>

using namespace shardwire;
using namespace shardwire::test;

namespace {

struct pipe_fds {
  int r = -1;
  int w = -1;
  pipe_fds() {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    r = p[0];
    w = p[1];
  }
  ~pipe_fds() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
  // The transport owns this end from now on.
  int give_r() { return std::exchange(r, -1); }
  int give_w() { return std::exchange(w, -1); }
};

bool write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    auto n = ::write(fd, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads what is available (blocking fd) until EOF.
std::string read_to_eof(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

} // namespace

TEST_CASE("read pipe: data, then eof and lost whatever eof answers") {
  runtime_fixture fx;
  pipe_fds p;
  auto log = std::make_shared<event_log>();
  recorder_options opts;
  opts.keep_open_on_eof = true; // ignored for a pipe, as in asyncio
  auto conn = connect_read_pipe(*fx.rt, p.give_r(), recorder(log, opts));
  REQUIRE(conn);
  CHECK(conn->info.kind == "read_pipe");
  // asyncio: a read pipe has no write side; its extra info is "pipe".
  CHECK_FALSE(conn->info.can_write_eof);
  CHECK(std::get<int64_t>(extra_info(conn->info, "pipe")) ==
        conn->info.fd);
  CHECK(std::holds_alternative<std::monostate>(
      extra_info(conn->info, "socket")));
  CHECK(std::holds_alternative<std::monostate>(
      extra_info(conn->info, "peername")));
  REQUIRE(write_all(p.w, "hello "));
  REQUIRE(write_all(p.w, "pipe"));
  ::close(p.give_w());
  REQUIRE(log->wait_for_event("lost", true));
  CHECK(log->received() == "hello pipe");
  auto ev = log->events();
  CHECK(ev.front() == "connected");
  REQUIRE(ev.size() >= 4);
  CHECK(ev[ev.size() - 2] == "eof");
  CHECK(ev.back() == "lost");
}

TEST_CASE("read pipe: write is refused with not_supported") {
  runtime_fixture fx;
  pipe_fds p;
  auto log = std::make_shared<event_log>();
  auto conn = connect_read_pipe(*fx.rt, p.give_r(), recorder(log));
  REQUIRE(conn);
  caf::scoped_actor self{fx.rt->system()};
  caf::error err;
  self->request(conn->transport, deadline,
                shardwire::write{buffer::copy_of("x")})
      .receive([] {}, [&](caf::error& e) { err = std::move(e); });
  CHECK(is(err, sw_errc::not_supported));
  ::close(p.give_w());
  REQUIRE(log->wait_for_event("lost", true));
  CHECK(log->count("lost") == 1);
}

TEST_CASE("write pipe: bytes arrive in order and write_eof closes it") {
  runtime_fixture fx;
  pipe_fds p;
  auto log = std::make_shared<event_log>();
  auto conn = connect_write_pipe(*fx.rt, p.give_w(), recorder(log));
  REQUIRE(conn);
  CHECK(conn->info.kind == "write_pipe");
  CHECK(conn->info.can_write_eof); // write_eof closes the pipe
  CHECK(std::get<int64_t>(extra_info(conn->info, "pipe")) ==
        conn->info.fd);
  std::string expected;
  caf::scoped_actor self{fx.rt->system()};
  for (int i = 0; i < 100; ++i) {
    auto chunk = std::to_string(i) + ",";
    expected += chunk;
    self->send(conn->transport, shardwire::write{buffer::copy_of(chunk)});
  }
  self->send(conn->transport, write_eof{});
  CHECK(read_to_eof(p.r) == expected);
  REQUIRE(log->wait_for_event("lost", true));
  CHECK(log->events() == std::vector<std::string>{"connected", "lost"});
}

TEST_CASE("write pipe: the reader closing its end ends the transport") {
  runtime_fixture fx;
  pipe_fds p;
  auto log = std::make_shared<event_log>();
  auto conn = connect_write_pipe(*fx.rt, p.give_w(), recorder(log));
  REQUIRE(conn);
  SECTION("nothing queued: a clean lost") {
    ::close(p.give_r());
    REQUIRE(log->wait_for_event("lost", true));
    CHECK(log->events() == std::vector<std::string>{"connected", "lost"});
  }
  SECTION("bytes queued: lost with EPIPE") {
    caf::scoped_actor self{fx.rt->system()};
    // More than the pipe holds, so most of it is queued.
    self->send(conn->transport,
               shardwire::write{buffer::copy_of(std::string(1 << 20, 'x'))});
    REQUIRE(log->wait_for_event("pause"));
    ::close(p.give_r());
    REQUIRE(log->wait_for_event("lost:", true));
    auto ev = log->events();
    CHECK(ev.back().find("Broken pipe") != std::string::npos);
    CHECK(log->count("lost", true) == 1);
  }
}

TEST_CASE("write pipe: pause and resume follow the water marks") {
  runtime_fixture fx;
  pipe_fds p;
  auto log = std::make_shared<event_log>();
  auto conn = connect_write_pipe(*fx.rt, p.give_w(), recorder(log));
  REQUIRE(conn);
  caf::scoped_actor self{fx.rt->system()};
  const std::string big(512 * 1024, 'y');
  self->send(conn->transport, shardwire::write{buffer::copy_of(big)});
  REQUIRE(log->wait_for_event("pause"));
  self->send(conn->transport, write_eof{});
  // Draining the pipe lets the buffer fall under the low mark.
  auto got = read_to_eof(p.r);
  CHECK(got.size() == big.size());
  REQUIRE(log->wait_for_event("lost", true));
  CHECK(log->events() ==
        std::vector<std::string>{"connected", "pause", "resume", "lost"});
}

TEST_CASE("pipe transports refuse regular files and close them (C75)") {
  auto write_side = GENERATE(false, true);
  CAPTURE(write_side);
  runtime_fixture fx;
  char path[] = "/tmp/shardwire-pipe-test-XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::unlink(path);
  auto log = std::make_shared<event_log>();
  // asyncio: ValueError for connect_write_pipe on a regular file.
  auto conn = write_side ? connect_write_pipe(*fx.rt, fd, recorder(log))
                         : connect_read_pipe(*fx.rt, fd, recorder(log));
  REQUIRE(!conn);
  CHECK(is(conn.error(), sw_errc::invalid_argument));
  CHECK((::fcntl(fd, F_GETFD) == -1 && errno == EBADF));
  CHECK(log->events().empty());
}

TEST_CASE("read pipe: get_status reports reading, paused and resumed "
          "(C75)") {
  runtime_fixture fx;
  pipe_fds p;
  auto log = std::make_shared<event_log>();
  auto conn = connect_read_pipe(*fx.rt, p.give_r(), recorder(log));
  REQUIRE(conn);
  caf::scoped_actor self{fx.rt->system()};
  // Each get_status follows the message before it from the same sender, so
  // it sees that message's effect.
  auto reading = [&]() -> std::string {
    std::string got = "no reply";
    self->request(conn->transport, deadline, get_status{})
        .receive(
            [&](const transport_status& st) {
              got = st.reading ? "reading" : "not reading";
            },
            [&](caf::error& e) { got = describe(e); });
    return got;
  };
  CHECK(reading() == "reading"); // asyncio's is_reading(): True
  self->send(conn->transport, pause_reading{});
  CHECK(reading() == "not reading");
  self->send(conn->transport, resume_reading{});
  CHECK(reading() == "reading");
  // Still delivering after the resume.
  REQUIRE(write_all(p.w, "after"));
  REQUIRE(log->wait_for_event("data:after"));
  ::close(p.give_w());
  REQUIRE(log->wait_for_event("lost", true));
}

TEST_CASE("write pipe: close flushes a big buffer first (C73)") {
  runtime_fixture fx;
  pipe_fds p;
  auto log = std::make_shared<event_log>();
  auto conn = connect_write_pipe(*fx.rt, p.give_w(), recorder(log));
  REQUIRE(conn);
  caf::scoped_actor self{fx.rt->system()};
  const std::string big(200000, 'z');
  self->send(conn->transport, shardwire::write{buffer::copy_of(big)});
  self->send(conn->transport, shardwire::close{});
  CHECK(read_to_eof(p.r) == big);
  REQUIRE(log->wait_for_event("lost", true));
  CHECK(log->events() ==
        std::vector<std::string>{"connected", "pause", "resume", "lost"});
}

TEST_CASE("write pipe: a write after write_eof is refused; not closing until "
          "lost (C74)") {
  runtime_fixture fx;
  log_capture cap{log::level::error};
  pipe_fds p;
  auto log = std::make_shared<event_log>();
  auto conn = connect_write_pipe(*fx.rt, p.give_w(), recorder(log));
  REQUIRE(conn);
  caf::scoped_actor self{fx.rt->system()};
  // More than the pipe holds: most of it stays queued, so the transport
  // cannot close the pipe before the reader drains it.
  const std::string big(1 << 20, 'e');
  self->send(conn->transport, shardwire::write{buffer::copy_of(big)});
  REQUIRE(log->wait_for_event("pause"));
  self->send(conn->transport, write_eof{});
  // asyncio ignores it silently; here a request gets the error back.
  caf::error err;
  self->request(conn->transport, deadline,
                shardwire::write{buffer::copy_of("late")})
      .receive([] {}, [&](caf::error& e) { err = std::move(e); });
  CHECK(is(err, sw_errc::write_after_eof));
  // A plain send is dropped and logged.
  self->send(conn->transport, shardwire::write{buffer::copy_of("later")});
  CHECK(cap.wait_for("write after write_eof dropped"));
  // What the library reports today between write_eof and lost: not closing
  // (asyncio's is_closing() is already True), the queue still there.
  auto st = ask<transport_status>(*fx.rt, conn->transport, get_status{});
  REQUIRE(st);
  CHECK_FALSE(st->closing);
  CHECK(st->write_buffer_size > 0);
  // The reader gets the bytes queued before write_eof, nothing after.
  CHECK(read_to_eof(p.r) == big);
  REQUIRE(log->wait_for_event("lost", true));
  CHECK(log->events() ==
        std::vector<std::string>{"connected", "pause", "resume", "lost"});
}

namespace {

// A callback protocol for a read pipe whose data_received throws.
class throwing_reader : public protocol {
public:
  explicit throwing_reader(event_log_ptr log) : log_(std::move(log)) {}

  void data_received(const buffer& bytes) override {
    log_->add("data:" + bytes.str());
    throw std::runtime_error("reader failed");
  }
  // Logs "lost:protocol_failed:<description>" for that error.
  void connection_lost(const caf::error& reason) override {
    if (!reason)
      log_->add("lost");
    else if (is(reason, sw_errc::protocol_failed))
      log_->add("lost:protocol_failed:" + describe(reason));
    else
      log_->add("lost:" + describe(reason));
  }

private:
  event_log_ptr log_;
};

} // namespace

TEST_CASE("read pipe: an exception in data_received aborts the pipe (C70)") {
  runtime_fixture fx;
  log_capture cap{log::level::error};
  pipe_fds p;
  auto log = std::make_shared<event_log>();
  auto conn = connect_read_pipe(*fx.rt, p.give_r(),
                                make_protocol<throwing_reader>(log));
  REQUIRE(conn);
  // asyncio keeps a read pipe open and delivers the next chunk; shardwire
  // applies the stream adapter's policy: the transport is aborted.
  REQUIRE(wait_down(*fx.rt, conn->transport,
                    [&](caf::scoped_actor&) { REQUIRE(write_all(p.w, "x")); }));
  REQUIRE(log->wait_for_event("lost", true));
  auto ev = log->events();
  CAPTURE(ev);
  REQUIRE(ev.size() == 2);
  CHECK(ev[0] == "data:x");
  CHECK(ev[1].rfind("lost:protocol_failed:", 0) == 0);
  CHECK(ev[1].find("data_received") != std::string::npos);
  CHECK(cap.count("Fatal error: protocol.data_received() call failed:") == 1);
  // The read end is closed: the writer's next write fails (SIGPIPE is
  // ignored by the runtime).
  errno = 0;
  CHECK(::write(p.w, "y", 1) == -1);
  CHECK(errno == EPIPE);
  CHECK(wait_down(*fx.rt, conn->protocol, [](caf::scoped_actor&) {}));
}
