// The stream guarantees of actors/messages.hpp and asyncio's conformance
// checklist (reference/asyncio-semantics.md, section 7), one test case per
// guarantee. Transports are TCP (create_server / create_connection against
// raw peers) or one end of a socketpair (connect_accepted_socket): with a
// Unix socketpair the bytes a raw peer sends are in the transport's receive
// queue as soon as send() returns, and a peer that does not read freezes the
// transport's write buffer, which makes "nothing happened" checks exact.
#include "transports/stream.hpp"

#include "actors/extra_info.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/log_capture.hpp"
#include "transports/socket.hpp"
#include "transports/tcp.hpp"

#include <caf/atom.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <future>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <thread>
#include <unistd.h>

using namespace shardwire;
using namespace shardwire::test;

namespace {

using ping_atom = caf::atom_constant<caf::atom("ping")>;

// -- a pingable recording protocol
// ---------------------------------------------

/// A recording protocol that also answers `ping`, so a test can wait until
/// it handled everything sent to it before ("nothing else arrived" checks).
using probe_actor =
    protocol_actor::extend<caf::replies_to<ping_atom>::with<bool>>;

struct probe_options {
  bool keep_open_on_eof = false;
  /// Quit after `lost` (like `recorder`). false keeps the actor alive, so a
  /// message after `lost` would be logged.
  bool quit_on_lost = true;
  /// On `resume`, ask the transport for its buffer size, log "resume-size:N".
  bool query_size_on_resume = false;
};

struct probe_state {
  event_log_ptr log;
  probe_options opts;
  std::shared_ptr<transport_actor> transport;
};

probe_actor::behavior_type probe_impl(probe_actor::pointer self,
                                      probe_state st) {
  return {
      [st](connected& msg) {
        *st.transport = msg.transport;
        st.log->add("connected");
      },
      [st](data& msg) { st.log->add("data:" + msg.bytes.str()); },
      [st](eof) {
        st.log->add("eof");
        return st.opts.keep_open_on_eof;
      },
      [st](shardwire::pause) { st.log->add("pause"); },
      [self, st](shardwire::resume) {
        st.log->add("resume");
        if (st.opts.query_size_on_resume)
          self->request(*st.transport, caf::infinite, get_write_buffer_size{})
              .then([st](uint64_t n) {
                st.log->add("resume-size:" + std::to_string(n));
              });
      },
      [self, st](lost& msg) {
        st.log->add(msg.reason ? "lost:" + describe(msg.reason) : "lost");
        if (st.opts.quit_on_lost) self->quit();
      },
      [](ping_atom) { return true; },
  };
}

struct probe {
  event_log_ptr log = std::make_shared<event_log>();
  std::shared_ptr<transport_actor> transport =
      std::make_shared<transport_actor>();
  std::shared_ptr<probe_actor> self = std::make_shared<probe_actor>();

  protocol_factory factory(probe_options opts = {}) {
    probe_state st{log, opts, transport};
    auto out = self;
    return [st, out](shard& s) -> protocol_actor {
      auto hdl = spawn_fun_on(s, probe_impl, st);
      *out = hdl;
      return caf::actor_cast<protocol_actor>(hdl);
    };
  }
};

// -- helpers
// -------------------------------------------------------------------

/// Round trip to `hdl`: everything sent to it before has been handled.
template <class Handle>
void sync(runtime& rt, const Handle& hdl) {
  auto st = ask<transport_status>(rt, hdl, get_status{});
  REQUIRE(st);
}

/// Everything the probe was sent before this call has been handled.
void ping(runtime& rt, const probe_actor& p) {
  auto res = ask<bool>(rt, p, ping_atom::value);
  REQUIRE(res);
}

/// The transport handled everything sent to it so far and the probe handled
/// everything the transport sent it until then.
void settle(runtime& rt, const transport_actor& t, const probe_actor& p) {
  sync(rt, t);
  ping(rt, p);
}

/// Waits until the actor behind `hdl` terminated; false on deadline.
template <class Handle>
bool await_down(runtime& rt, const Handle& hdl, caf::error* reason = nullptr) {
  caf::scoped_actor self{rt.system()};
  self->monitor(hdl);
  bool down = false;
  self->receive(
      [&](caf::down_msg& msg) {
        down = true;
        if (reason) *reason = msg.reason;
      },
      caf::after(deadline) >> [] {});
  return down;
}

/// Tells a probe that does not quit on `lost` to go away.
void stop(const probe_actor& p) {
  caf::anon_send_exit(p, caf::exit_reason::user_shutdown);
}

void make_pair(int& a, int& b) {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  a = sv[0];
  b = sv[1];
}

/// Bytes waiting in the receive queue of `fd` (nobody read them yet).
size_t inq(int fd) {
  int n = 0;
  REQUIRE(::ioctl(fd, FIONREAD, &n) == 0);
  return static_cast<size_t>(n);
}

/// A counting pattern: offset i holds byte (i * 7 + i / 251) % 256, so any
/// loss, duplication or reordering of a chunk changes the text.
std::string pattern(size_t n, size_t offset = 0) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    auto k = i + offset;
    out[i] = static_cast<char>((k * 7 + k / 251) & 0xff);
  }
  return out;
}

enum class read_end { eof, error, timeout };

/// Reads until EOF, an error (e.g. ECONNRESET) or the deadline.
std::string read_all(int fd, read_end& how,
                     std::chrono::milliseconds timeout = deadline) {
  auto until = std::chrono::steady_clock::now() + timeout;
  std::string out;
  std::vector<char> buf(256 * 1024);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      how = read_end::timeout;
      return out;
    }
    pollfd p{fd, POLLIN, 0};
    auto rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) {
      how = read_end::timeout;
      return out;
    }
    auto got = ::recv(fd, buf.data(), buf.size(), 0);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got < 0) {
      how = read_end::error;
      return out;
    }
    if (got == 0) {
      how = read_end::eof;
      return out;
    }
    out.append(buf.data(), static_cast<size_t>(got));
  }
}

/// Sends a write as a request: the reply comes after the transport handled it.
caf::error request_write(runtime& rt, const transport_actor& t, buffer bytes) {
  caf::scoped_actor self{rt.system()};
  caf::error result = make_error(sw_errc::timeout, "no reply");
  self->request(t, deadline, shardwire::write{std::move(bytes)})
      .receive([&] { result = caf::error{}; },
               [&](caf::error& err) { result = std::move(err); });
  return result;
}

size_t count_prefix(const std::vector<std::string>& evs, const char* prefix) {
  size_t n = 0;
  for (auto& e : evs)
    if (e.rfind(prefix, 0) == 0) ++n;
  return n;
}

/// The non-data events, in order ("data" once per run of data events).
std::vector<std::string> shape(const std::vector<std::string>& evs) {
  std::vector<std::string> out;
  for (auto& e : evs) {
    auto s = e.rfind("data:", 0) == 0 ? std::string{"data"} : e;
    if (s == "data" && !out.empty() && out.back() == "data") continue;
    out.push_back(s);
  }
  return out;
}

/// The events without pause/resume (write flow control, checked apart).
std::vector<std::string> without_flow(std::vector<std::string> evs) {
  std::erase_if(
      evs, [](const std::string& e) { return e == "pause" || e == "resume"; });
  return evs;
}

/// pause/resume events strictly alternate, starting with pause.
bool alternates(const std::vector<std::string>& evs) {
  bool paused = false;
  for (auto& e : evs) {
    if (e == "pause") {
      if (paused) return false;
      paused = true;
    } else if (e == "resume") {
      if (!paused) return false;
      paused = false;
    }
  }
  return true;
}

/// Sum of the sizes of the data events logged so far (no copies).
size_t received_bytes(event_log& log) {
  size_t n = 0;
  log.wait_for(
      [&](const std::vector<std::string>& evs) {
        for (auto& e : evs)
          if (e.rfind("data:", 0) == 0) n += e.size() - 5;
        return true;
      },
      std::chrono::milliseconds(0));
  return n;
}

bool await_received(event_log& log, size_t n) {
  return log.wait_for([n](const std::vector<std::string>& evs) {
    size_t sum = 0;
    for (auto& e : evs)
      if (e.rfind("data:", 0) == 0) sum += e.size() - 5;
    return sum >= n;
  });
}

/// A TCP connection from a shardwire client to a raw peer.
struct tcp_to_raw {
  raw_listener listener;
  caf::expected<connection> conn{caf::error{}};
  int peer = -1;

  tcp_to_raw(runtime& rt, protocol_factory f,
             caf::optional<size_t> shard = caf::none) {
    connect_options co;
    co.port = listener.port();
    co.shard = shard;
    conn = create_connection(rt, co, std::move(f));
    REQUIRE(conn);
    peer = listener.accept_one();
    REQUIRE(peer >= 0);
  }
  ~tcp_to_raw() { raw_close(peer); }
};

/// Big enough that loopback TCP buffers cannot absorb it while the peer does
/// not read (tcp_wmem max 4 MiB plus the receiver's unread window).
constexpr size_t big_size = 16 * 1024 * 1024;

} // namespace

// -- lifecycle
// ------------------------------------------------------------------

TEST_CASE("connected is first and reading starts only after it was handled") {
  runtime_fixture fx;
  // The protocol lives on shard 1, the transport on shard 0, so the test can
  // hold the protocol inside its `connected` handler while the transport's
  // shard keeps running.
  int a, b;
  make_pair(a, b);
  REQUIRE(raw_send_all(b, "early bytes"));
  auto log = std::make_shared<event_log>();
  std::promise<void> release;
  auto released = release.get_future().share();
  auto transport = std::make_shared<transport_actor>();
  protocol_factory slow_connect = [&, released, transport](shard&) {
    return spawn_fun_on(
        fx.rt->shard_at(1),
        [log, released, transport](
            protocol_actor::pointer self) -> protocol_actor::behavior_type {
          return {
              [=](connected& msg) {
                *transport = msg.transport;
                log->add("connected:enter");
                // Blocks shard 1 only (test code); bounded.
                released.wait_for(deadline);
                log->add("connected:leave");
              },
              [=](data& msg) { log->add("data:" + msg.bytes.str()); },
              [=](eof) {
                log->add("eof");
                return false;
              },
              [](shardwire::pause) {},
              [](shardwire::resume) {},
              [=](lost& msg) {
                log->add(msg.reason ? "lost:" + describe(msg.reason) : "lost");
                self->quit();
              },
          };
        });
  };
  std::promise<caf::expected<connection>> result;
  async_connect_accepted_socket(
      *fx.rt, a, slow_connect,
      [&](caf::expected<connection> c) { result.set_value(std::move(c)); },
      size_t{0});
  REQUIRE(log->wait_for_event("connected:enter"));
  // While `connected` is being handled the transport must not read: the
  // bytes stay in the kernel across several round trips to the transport
  // (each lets its shard poll the socket).
  for (int i = 0; i < 5; ++i) {
    auto st = ask<transport_status>(*fx.rt, *transport, get_status{});
    REQUIRE(st);
    CHECK_FALSE(st->reading);
    CHECK(inq(a) == 11);
  }
  release.set_value();
  auto fut = result.get_future();
  REQUIRE(fut.wait_for(deadline) == std::future_status::ready);
  auto conn = fut.get();
  REQUIRE(conn);
  REQUIRE(await_received(*log, 11));
  ::shutdown(b, SHUT_WR);
  REQUIRE(log->wait_for_event("lost", true));
  auto evs = log->events();
  CHECK(evs.at(0) == "connected:enter");
  CHECK(evs.at(1) == "connected:leave");
  CHECK(log->received() == "early bytes");
  CHECK(shape(evs) == std::vector<std::string>{"connected:enter",
                                               "connected:leave", "data", "eof",
                                               "lost"});
  raw_close(b);
}

TEST_CASE("pause_reading sent from the connected handler is honoured") {
  runtime_fixture fx;
  int a, b;
  make_pair(a, b);
  REQUIRE(raw_send_all(b, "sent before connect"));
  auto log = std::make_shared<event_log>();
  recorder_options opts;
  opts.pause_in_connected = true;
  auto conn = connect_accepted_socket(*fx.rt, a, recorder(log, opts));
  REQUIRE(conn);
  REQUIRE(raw_send_all(b, "+after"));
  for (int i = 0; i < 5; ++i) {
    auto st = ask<transport_status>(*fx.rt, conn->transport, get_status{});
    REQUIRE(st);
    CHECK_FALSE(st->reading);
    CHECK_FALSE(st->closing);
  }
  // Nothing was read: all bytes still sit in the transport's socket.
  CHECK(inq(a) == 25);
  CHECK(log->events() == std::vector<std::string>{"connected"});
  caf::anon_send(conn->transport, resume_reading{});
  REQUIRE(await_received(*log, 25));
  CHECK(log->received() == "sent before connect+after");
  ::shutdown(b, SHUT_WR);
  REQUIRE(log->wait_for_event("lost", true));
  CHECK(shape(log->events()) ==
        std::vector<std::string>{"connected", "data", "eof", "lost"});
  raw_close(b);
}

TEST_CASE("lost is delivered exactly once and is the last message") {
  runtime_fixture fx;
  probe p;
  probe_options opts;
  opts.quit_on_lost = false; // anything after `lost` would be logged
  tcp_to_raw c{*fx.rt, p.factory(opts)};
  auto& t = c.conn->transport;
  std::vector<std::string> expected_shape;
  std::string expected_lost = "lost";

  SECTION("peer sends data and FIN, eof reply false") {
    REQUIRE(raw_send_all(c.peer, "bye"));
    ::shutdown(c.peer, SHUT_WR);
    expected_shape = {"connected", "data", "eof", "lost"};
  }
  SECTION("close, then abort, close, write_eof, reading control") {
    caf::anon_send(t, shardwire::close{});
    caf::anon_send(t, shardwire::abort{});
    caf::anon_send(t, shardwire::close{});
    caf::anon_send(t, write_eof{});
    caf::anon_send(t, pause_reading{});
    caf::anon_send(t, resume_reading{});
    expected_shape = {"connected", "lost"};
  }
  SECTION("abort, then close and abort again") {
    caf::anon_send(t, shardwire::abort{});
    caf::anon_send(t, shardwire::close{});
    caf::anon_send(t, shardwire::abort{});
    expected_shape = {"connected", "lost"};
  }
  SECTION("peer closes, local close races with the eof auto-close") {
    ::shutdown(c.peer, SHUT_WR);
    caf::anon_send(t, shardwire::close{});
    caf::anon_send(t, shardwire::close{});
  }
  REQUIRE(await_down(*fx.rt, t));
  // The transport is gone, so it cannot send more; the ping makes sure the
  // probe handled everything it was sent.
  ping(*fx.rt, *p.self);
  auto evs = p.log->events();
  CHECK(count_prefix(evs, "lost") == 1);
  CHECK(evs.back() == expected_lost);
  CHECK(evs.front() == "connected");
  if (!expected_shape.empty()) CHECK(shape(evs) == expected_shape);
  CHECK(count_prefix(evs, "eof") <= 1);
  stop(*p.self);
}

TEST_CASE("eof at most once and never followed by data; half-open on true") {
  runtime_fixture fx;
  probe p;
  probe_options opts;
  opts.keep_open_on_eof = true;
  tcp_to_raw c{*fx.rt, p.factory(opts)};
  auto& t = c.conn->transport;
  REQUIRE(raw_send_all(c.peer, "half"));
  ::shutdown(c.peer, SHUT_WR);
  REQUIRE(p.log->wait_for_event("eof"));
  // asyncio 3.11 quirk C49 must not be reproduced: pausing and resuming after
  // EOF gives no second eof; reading is off for good.
  caf::anon_send(t, pause_reading{});
  caf::anon_send(t, resume_reading{});
  auto st = ask<transport_status>(*fx.rt, t, get_status{});
  REQUIRE(st);
  CHECK_FALSE(st->closing); // C4: still open
  CHECK_FALSE(st->reading);
  // Local writes still reach the peer.
  caf::anon_send(t, shardwire::write{buffer::copy_of("still writable")});
  CHECK(raw_read_exact(c.peer, 14) == "still writable");
  settle(*fx.rt, t, *p.self);
  CHECK(p.log->count("lost", true) == 0); // no lost before a local close
  caf::anon_send(t, shardwire::close{});
  REQUIRE(p.log->wait_for_event("lost"));
  read_end how;
  CHECK(read_all(c.peer, how).empty());
  CHECK(how == read_end::eof);
  auto evs = p.log->events();
  CHECK(shape(evs) ==
        std::vector<std::string>{"connected", "data", "eof", "lost"});
  CHECK(p.log->received() == "half");
}

TEST_CASE("eof reply false closes the transport") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  tcp_to_raw c{*fx.rt, recorder(log)};
  REQUIRE(raw_send_all(c.peer, "x"));
  ::shutdown(c.peer, SHUT_WR);
  // No local close: the eof reply alone closes it, the peer sees EOF.
  REQUIRE(log->wait_for_event("lost"));
  read_end how;
  CHECK(read_all(c.peer, how).empty());
  CHECK(how == read_end::eof);
  CHECK(shape(log->events()) ==
        std::vector<std::string>{"connected", "data", "eof", "lost"});
  CHECK(await_down(*fx.rt, c.conn->transport));
}

// -- closing
// --------------------------------------------------------------------

TEST_CASE("write_eof half-closes after the buffer drained") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  tcp_to_raw c{*fx.rt, recorder(log)};
  auto& t = c.conn->transport;
  auto big = pattern(big_size);
  caf::anon_send(t, shardwire::write{buffer::copy_of(big)});
  auto queued = ask<uint64_t>(*fx.rt, t, get_write_buffer_size{});
  REQUIRE(queued);
  REQUIRE(*queued > 0); // SHUT_WR must wait for these bytes
  caf::anon_send(t, write_eof{});
  // C16: a write after write_eof is an error reply.
  auto err = request_write(*fx.rt, t, buffer::copy_of("too late"));
  CHECK(is(err, sw_errc::write_after_eof));
  // C17: idempotent. C19: not closing.
  caf::anon_send(t, write_eof{});
  auto st = ask<transport_status>(*fx.rt, t, get_status{});
  REQUIRE(st);
  CHECK_FALSE(st->closing);
  CHECK(st->reading);
  // C18: the peer gets every byte, then EOF.
  read_end how;
  auto got = read_all(c.peer, how);
  CHECK(how == read_end::eof);
  CHECK(got.size() == big.size());
  CHECK(got == big);
  // Reading continues after write_eof.
  REQUIRE(raw_send_all(c.peer, "reply"));
  REQUIRE(log->wait_for_event("data:reply"));
  CHECK(log->count("lost", true) == 0);
  ::shutdown(c.peer, SHUT_WR);
  REQUIRE(log->wait_for_event("lost"));
  auto evs = log->events();
  CHECK(alternates(evs));
  CHECK(shape(without_flow(evs)) ==
        std::vector<std::string>{"connected", "data", "eof", "lost"});
}

TEST_CASE("close stops reading, flushes the write buffer, then lost") {
  runtime_fixture fx;
  probe p;
  tcp_to_raw c{*fx.rt, p.factory()};
  auto& t = c.conn->transport;
  auto big = pattern(big_size);
  caf::anon_send(t, shardwire::write{buffer::copy_of(big)});
  caf::anon_send(t, shardwire::close{});
  auto st = ask<transport_status>(*fx.rt, t, get_status{});
  REQUIRE(st);
  CHECK(st->closing); // C8: closing at once
  CHECK_FALSE(st->reading);
  CHECK(st->write_buffer_size > 0);
  // C47: reading control on a closing transport is a no-op.
  caf::anon_send(t, resume_reading{});
  st = ask<transport_status>(*fx.rt, t, get_status{});
  REQUIRE(st);
  CHECK_FALSE(st->reading);
  ping(*fx.rt, *p.self);
  // C9: the peer has not read, so the buffer cannot have drained: no lost.
  CHECK(p.log->count("lost", true) == 0);
  // Only now the peer starts reading: every byte, then EOF.
  read_end how;
  auto got = read_all(c.peer, how);
  CHECK(how == read_end::eof);
  CHECK(got.size() == big.size());
  CHECK(got == big);
  REQUIRE(p.log->wait_for_event("lost", true));
  auto evs = p.log->events();
  CHECK(evs.back() == "lost"); // clean
  CHECK(count_prefix(evs, "lost") == 1);
  // C43: a resume may come after close, but only before lost.
  CHECK(alternates(evs));
  CHECK(p.log->count("data", true) == 0);
}

TEST_CASE("close drops unread incoming data") {
  runtime_fixture fx;
  int a, b;
  make_pair(a, b);
  auto log = std::make_shared<event_log>();
  auto conn = connect_accepted_socket(*fx.rt, a, recorder(log));
  REQUIRE(conn);
  caf::anon_send(conn->transport, pause_reading{});
  sync(*fx.rt, conn->transport);
  REQUIRE(raw_send_all(b, "never delivered"));
  REQUIRE(inq(a) == 15);
  caf::anon_send(conn->transport, shardwire::close{});
  caf::anon_send(conn->transport, resume_reading{});
  REQUIRE(log->wait_for_event("lost"));
  CHECK(log->events() == std::vector<std::string>{"connected", "lost"});
  raw_close(b);
}

TEST_CASE("abort drops the write buffer and delivers no resume") {
  runtime_fixture fx;
  probe p;
  probe_options opts;
  opts.quit_on_lost = false;
  tcp_to_raw c{*fx.rt, p.factory(opts)};
  auto& t = c.conn->transport;
  auto big = pattern(big_size);
  caf::anon_send(t, shardwire::write{buffer::copy_of(big)});
  REQUIRE(p.log->wait_for_event("pause"));
  auto queued = ask<uint64_t>(*fx.rt, t, get_write_buffer_size{});
  REQUIRE(queued);
  REQUIRE(*queued > 0);
  caf::anon_send(t, shardwire::abort{});
  REQUIRE(await_down(*fx.rt, t));
  ping(*fx.rt, *p.self);
  auto evs = p.log->events();
  // C12/C13: lost without error, no resume although writing was paused.
  CHECK(evs == std::vector<std::string>{"connected", "pause", "lost"});
  read_end how;
  auto got = read_all(c.peer, how);
  CHECK(how != read_end::timeout);
  CHECK(got.size() < big.size());
  CHECK(got == big.substr(0, got.size()));
  stop(*p.self);
}

TEST_CASE("writes after close are dropped") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  tcp_to_raw c{*fx.rt, recorder(log)};
  auto& t = c.conn->transport;
  auto big = pattern(big_size);
  caf::anon_send(t, shardwire::write{buffer::copy_of(big)});
  caf::anon_send(t, shardwire::close{});
  // The buffer is still full (the peer does not read yet): these writes
  // reach a live, closing transport and must be dropped without an error.
  auto err = request_write(*fx.rt, t, buffer::copy_of(std::string(1000, 'Z')));
  CHECK_FALSE(err);
  caf::anon_send(t, writelines{{buffer::copy_of("ZZ"), buffer::copy_of("Z")}});
  caf::anon_send(t, shardwire::write{buffer::copy_of("ZZZ")});
  read_end how;
  auto got = read_all(c.peer, how);
  CHECK(how == read_end::eof);
  CHECK(got.size() == big.size());
  CHECK(got == big);
  REQUIRE(log->wait_for_event("lost"));
  REQUIRE(await_down(*fx.rt, t));
  // After the transport is gone, writes go nowhere and nothing crashes.
  caf::anon_send(t, shardwire::write{buffer::copy_of("after lost")});
  CHECK(log->count("lost", true) == 1);
}

TEST_CASE("writes after close are dropped with a warning on the 1st and "
          "every 1000th drop (C14)") {
  runtime_fixture fx;
  log_capture cap{log::level::warning}; // after the runtime set its level
  int a, b;
  make_pair(a, b);
  auto log = std::make_shared<event_log>();
  auto conn = connect_accepted_socket(*fx.rt, a, recorder(log));
  REQUIRE(conn);
  auto& t = conn->transport;
  // More than the socket pair holds while b does not read: the transport
  // stays alive, closing, with bytes queued.
  auto big = pattern(4 << 20);
  caf::anon_send(t, shardwire::write{buffer::copy_of(big)});
  caf::anon_send(t, shardwire::close{});
  auto st = ask<transport_status>(*fx.rt, t, get_status{});
  REQUIRE(st);
  REQUIRE(st->closing);
  REQUIRE(st->write_buffer_size > 0);
  for (int i = 0; i < 999; ++i)
    caf::anon_send(t, shardwire::write{buffer::copy_of("Z")});
  sync(*fx.rt, t);
  // The 1st drop warned, the 2nd to the 999th did not.
  CHECK(cap.lines() ==
        std::vector<std::string>{
            "WARN write on closed transport (unix) dropped (1 so far)"});
  caf::anon_send(t, shardwire::write{buffer::copy_of("Z")});
  REQUIRE(cap.wait_for("(1000 so far)"));
  sync(*fx.rt, t);
  CHECK(cap.lines() ==
        std::vector<std::string>{
            "WARN write on closed transport (unix) dropped (1 so far)",
            "WARN write on closed transport (unix) dropped (1000 so far)"});
  // None of the dropped bytes reach the peer: the queue, then EOF.
  read_end how;
  auto got = read_all(b, how);
  CHECK(how == read_end::eof);
  CHECK(got.size() == big.size());
  CHECK(got == big);
  REQUIRE(log->wait_for_event("lost"));
  REQUIRE(await_down(*fx.rt, t));
  // After lost the transport is gone: a write goes nowhere, silently.
  caf::anon_send(t, shardwire::write{buffer::copy_of("after lost")});
  CHECK(cap.count("write on closed transport") == 2);
  raw_close(b);
}

// -- failures
// ---------------------------------------------------------------------

TEST_CASE("a protocol actor that throws aborts its transport") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  recorder_options opts;
  opts.throw_on_data = true;
  tcp_to_raw c{*fx.rt, recorder(log, opts)};
  auto t = c.conn->transport;
  auto home = c.conn->info.shard;
  caf::scoped_actor self{fx.rt->system()};
  self->monitor(t);
  REQUIRE(raw_send_all(c.peer, "boom"));
  bool down = false;
  self->receive([&](caf::down_msg&) { down = true; },
                caf::after(deadline) >> [] {});
  CHECK(down);
  read_end how;
  auto got = read_all(c.peer, how);
  CHECK(got.empty());
  CHECK(how != read_end::timeout); // EOF or reset
  CHECK(fx.rt->shard_at(home).await_actors(
      true, std::chrono::steady_clock::now() + deadline));
  CHECK(log->count("lost", true) == 0); // the protocol died first
}

TEST_CASE("a transport that dies is lost to its protocol") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  tcp_to_raw c{*fx.rt, recorder(log)};
  caf::anon_send_exit(c.conn->transport, caf::exit_reason::kill);
  REQUIRE(log->wait_for_event("lost", true));
  REQUIRE(await_down(*fx.rt, c.conn->protocol));
  auto evs = log->events();
  CHECK(evs.size() == 2);
  CHECK(evs.front() == "connected");
  CHECK(evs.back().rfind("lost:", 0) == 0); // with an error, not clean
  CHECK(count_prefix(evs, "lost") == 1);
  read_end how;
  read_all(c.peer, how);
  CHECK(how != read_end::timeout); // the socket was closed
}

TEST_CASE("a request to a transport after lost fails at once (C26)") {
  runtime_fixture fx;
  int a, b;
  make_pair(a, b);
  auto log = std::make_shared<event_log>();
  auto conn = connect_accepted_socket(*fx.rt, a, recorder(log));
  REQUIRE(conn);
  REQUIRE(log->wait_for_event("connected"));
  // Before: the protocol of the connection.
  auto before = ask<protocol_actor>(*fx.rt, conn->transport, get_protocol{});
  REQUIRE(before);
  CHECK(*before == conn->protocol);
  ::shutdown(b, SHUT_WR);
  REQUIRE(log->wait_for_event("lost"));
  REQUIRE(await_down(*fx.rt, conn->transport));
  // After: the transport actor has ended, so a request is answered with an
  // error at once (CAF bounces it), not a None and not a timeout.
  auto started = std::chrono::steady_clock::now();
  auto after = ask<protocol_actor>(*fx.rt, conn->transport, get_protocol{});
  REQUIRE_FALSE(after);
  CHECK(after.error() == caf::sec::request_receiver_down);
  auto st = ask<transport_status>(*fx.rt, conn->transport, get_status{});
  REQUIRE_FALSE(st);
  CHECK(st.error() == caf::sec::request_receiver_down);
  CHECK(std::chrono::steady_clock::now() - started < deadline / 2);
  raw_close(b);
}

TEST_CASE("peer reset gives lost with ECONNRESET and no eof") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  tcp_to_raw c{*fx.rt, recorder(log)};
  raw_reset(c.peer);
  c.peer = -1;
  REQUIRE(log->wait_for_event("lost", true));
  auto evs = log->events();
  CHECK(evs.size() == 2);
  CHECK(evs.front() == "connected");
  auto expected = "lost:" + describe(make_errno_error(ECONNRESET));
  CHECK(evs.back().rfind(expected, 0) == 0);
  CHECK(log->count("eof") == 0);
}

// -- write flow control
// -------------------------------------------------------------

TEST_CASE("write buffer limits follow asyncio's rules") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  int a, b;
  make_pair(a, b);
  auto conn = connect_accepted_socket(*fx.rt, a, recorder(log));
  REQUIRE(conn);
  auto& t = conn->transport;
  auto get = [&] {
    auto x = ask<write_buffer_limits>(*fx.rt, t, get_write_buffer_limits{});
    REQUIRE(x);
    return *x;
  };
  auto set = [&](caf::optional<uint64_t> high, caf::optional<uint64_t> low) {
    return ask<write_buffer_limits>(*fx.rt, t,
                                    set_write_buffer_limits{high, low});
  };
  CHECK(get() == write_buffer_limits{16384, 65536}); // C35
  auto r = set(uint64_t{100}, caf::none);            // C36
  REQUIRE(r);
  CHECK(*r == write_buffer_limits{25, 100});
  CHECK(get() == write_buffer_limits{25, 100});
  r = set(caf::none, uint64_t{10});
  REQUIRE(r);
  CHECK(*r == write_buffer_limits{10, 40});
  r = set(uint64_t{0}, caf::none);
  REQUIRE(r);
  CHECK(*r == write_buffer_limits{0, 0});
  r = set(uint64_t{300}, uint64_t{200});
  REQUIRE(r);
  CHECK(*r == write_buffer_limits{200, 300});
  r = set(caf::none, caf::none);
  REQUIRE(r);
  CHECK(*r == write_buffer_limits{16384, 65536});
  r = set(uint64_t{10}, uint64_t{20}); // C37
  REQUIRE_FALSE(r);
  CHECK(is(r.error(), sw_errc::invalid_argument));
  CHECK(get() == write_buffer_limits{16384, 65536}); // unchanged
  caf::anon_send(t, shardwire::close{});
  REQUIRE(log->wait_for_event("lost"));
  CHECK(log->count("pause") == 0);
  raw_close(b);
}

TEST_CASE("pause when the buffer exceeds high (strictly), once") {
  runtime_fixture fx;
  probe p;
  int a, b;
  make_pair(a, b); // the peer b never reads: the buffer cannot drain
  auto conn = connect_accepted_socket(*fx.rt, a, p.factory());
  REQUIRE(conn);
  auto& t = conn->transport;
  auto size = [&] {
    auto n = ask<uint64_t>(*fx.rt, t, get_write_buffer_size{});
    REQUIRE(n);
    return *n;
  };
  auto set = [&](uint64_t high, uint64_t low) {
    auto r =
        ask<write_buffer_limits>(*fx.rt, t, set_write_buffer_limits{high, low});
    REQUIRE(r);
  };
  uint64_t huge = uint64_t{1} << 40;
  set(huge, 0);
  // Fill the kernel; the rest stays in the user-space buffer.
  REQUIRE_FALSE(request_write(*fx.rt, t, buffer::copy_of(pattern(1 << 20))));
  auto s0 = size();
  REQUIRE(s0 > 0);
  REQUIRE(s0 < (1u << 20));
  ping(*fx.rt, *p.self);
  CHECK(p.log->count("pause") == 0);

  SECTION("exactly high does not pause, high + 1 does (C38, C39, C40)") {
    set(s0 + 100, 0);
    REQUIRE_FALSE(request_write(*fx.rt, t, buffer::copy_of(pattern(100))));
    CHECK(size() == s0 + 100);
    ping(*fx.rt, *p.self);
    CHECK(p.log->count("pause") == 0);
    REQUIRE_FALSE(request_write(*fx.rt, t, buffer::copy_of("x")));
    CHECK(size() == s0 + 101);
    // The pause was sent before the write's reply: the ping finds it.
    ping(*fx.rt, *p.self);
    CHECK(p.log->count("pause") == 1);
    for (int i = 0; i < 10; ++i)
      REQUIRE_FALSE(request_write(*fx.rt, t, buffer::copy_of("more")));
    set(s0, 0);
    ping(*fx.rt, *p.self);
    CHECK(p.log->count("pause") == 1); // not repeated while paused
  }
  SECTION("lowering high below the size pauses at once (C42)") {
    set(s0, 0);
    ping(*fx.rt, *p.self);
    CHECK(p.log->count("pause") == 0); // equal is not above
    set(s0 - 1, 0);
    ping(*fx.rt, *p.self);
    CHECK(p.log->count("pause") == 1);
    // Raising the limits never resumes.
    set(huge, 0);
    ping(*fx.rt, *p.self);
    CHECK(p.log->count("resume") == 0);
  }
  SECTION("high = 0 pauses on any buffered byte") {
    set(0, 0);
    ping(*fx.rt, *p.self);
    CHECK(p.log->count("pause") == 1);
  }
  caf::anon_send(t, shardwire::abort{});
  REQUIRE(p.log->wait_for_event("lost"));
  CHECK(p.log->count("resume") == 0);
  CHECK(alternates(p.log->events()));
  raw_close(b);
}

TEST_CASE("resume comes at or below low, pause and resume alternate") {
  runtime_fixture fx;
  probe p;
  probe_options opts;
  opts.query_size_on_resume = true;
  int a, b;
  make_pair(a, b);
  auto conn = connect_accepted_socket(*fx.rt, a, p.factory(opts));
  REQUIRE(conn);
  auto& t = conn->transport;
  constexpr uint64_t high = 64 * 1024;
  constexpr uint64_t low = 16 * 1024;
  auto r =
      ask<write_buffer_limits>(*fx.rt, t, set_write_buffer_limits{high, low});
  REQUIRE(r);
  std::string sent;
  for (int round = 1; round <= 3; ++round) {
    auto chunk = pattern(1 << 20, sent.size());
    sent += chunk;
    caf::anon_send(t, shardwire::write{buffer::copy_of(chunk)});
    REQUIRE(p.log->wait_for([round](const std::vector<std::string>& evs) {
      return std::count(evs.begin(), evs.end(), "pause") == round;
    }));
    // The peer drains everything; the transport resumes once, at <= low.
    CHECK(raw_read_exact(b, chunk.size()) == chunk);
    REQUIRE(p.log->wait_for([round](const std::vector<std::string>& evs) {
      return count_prefix(evs, "resume-size:") == static_cast<size_t>(round);
    }));
  }
  auto evs = p.log->events();
  for (auto& e : evs)
    if (e.rfind("resume-size:", 0) == 0)
      CHECK(std::stoull(e.substr(12)) <= low);
  std::vector<std::string> flow;
  for (auto& e : evs)
    if (e == "pause" || e == "resume") flow.push_back(e);
  CHECK(flow == std::vector<std::string>{"pause", "resume", "pause", "resume",
                                         "pause", "resume"});
  caf::anon_send(t, shardwire::close{});
  REQUIRE(p.log->wait_for_event("lost"));
  raw_close(b);
}

namespace {

// A writer that behaves as asyncio asks: it stops writing on `pause` and
// continues on `resume`. Each write is a request, so a `pause` caused by it
// (sent before the reply) is handled before the writer decides to go on.
struct writer_state {
  event_log_ptr log;
  std::shared_ptr<const std::string> payload;
  size_t chunk = 16 * 1024;
  size_t offset = 0;
  bool paused = false;
  bool in_flight = false;
  bool done = false;
  transport_actor transport;
  std::shared_ptr<std::atomic<uint64_t>> max_size;
};

protocol_actor::behavior_type writer_impl(protocol_actor::pointer self,
                                          std::shared_ptr<writer_state> st) {
  auto step = std::make_shared<std::function<void()>>();
  *step = [self, st, step_w = std::weak_ptr<std::function<void()>>(step)] {
    if (st->paused || st->in_flight || st->done) return;
    if (st->offset >= st->payload->size()) {
      st->done = true;
      st->log->add("all-written");
      self->send(st->transport, shardwire::close{});
      return;
    }
    auto n = std::min(st->chunk, st->payload->size() - st->offset);
    auto bytes = buffer::copy_of(st->payload->data() + st->offset, n);
    st->offset += n;
    st->in_flight = true;
    self->request(st->transport, caf::infinite, shardwire::write{bytes})
        .then([self, st, step_w] {
          self->request(st->transport, caf::infinite, get_write_buffer_size{})
              .then([st, step_w](uint64_t size) {
                auto prev = st->max_size->load();
                while (size > prev &&
                       !st->max_size->compare_exchange_weak(prev, size))
                  ;
                st->in_flight = false;
                if (auto f = step_w.lock()) (*f)();
              });
        });
  };
  return {
      [st, step](connected& msg) {
        st->transport = msg.transport;
        st->log->add("connected");
        (*step)();
      },
      [st](data& msg) { st->log->add("data:" + msg.bytes.str()); },
      [st](eof) {
        st->log->add("eof");
        return false;
      },
      [st](shardwire::pause) {
        st->log->add("pause");
        st->paused = true;
      },
      [st, step](shardwire::resume) {
        st->log->add("resume");
        st->paused = false;
        (*step)();
      },
      [self, st, step](lost& msg) {
        st->log->add(msg.reason ? "lost:" + describe(msg.reason) : "lost");
        *step = nullptr; // breaks the cycle
        self->quit();
      },
  };
}

} // namespace

TEST_CASE("a writer that stops on pause keeps the buffer bounded") {
  runtime_fixture fx;
  int a, b;
  make_pair(a, b);
  auto log = std::make_shared<event_log>();
  auto payload = std::make_shared<const std::string>(pattern(4 << 20));
  auto max_size = std::make_shared<std::atomic<uint64_t>>(0);
  constexpr size_t chunk = 16 * 1024;
  protocol_factory factory = [=](shard& s) -> protocol_actor {
    auto st = std::make_shared<writer_state>();
    st->log = log;
    st->payload = payload;
    st->chunk = chunk;
    st->max_size = max_size;
    return spawn_fun_on(s, writer_impl, st);
  };
  auto conn = connect_accepted_socket(*fx.rt, a, factory);
  REQUIRE(conn);
  constexpr uint64_t high = 65536;
  // The peer does not read: the writer must stop at the first pause.
  REQUIRE(log->wait_for_event("pause"));
  for (int i = 0; i < 3; ++i) {
    auto n = ask<uint64_t>(*fx.rt, conn->transport, get_write_buffer_size{});
    REQUIRE(n);
    CHECK(*n > high);
    CHECK(*n <= high + chunk);
  }
  CHECK(max_size->load() <= high + chunk);
  CHECK(log->count("all-written") == 0);
  // Now the peer reads everything; the writer resumes whenever told to.
  read_end how;
  auto got = read_all(b, how);
  CHECK(how == read_end::eof);
  CHECK(got.size() == payload->size());
  CHECK(got == *payload);
  REQUIRE(log->wait_for_event("lost", true));
  auto evs = log->events();
  CHECK(evs.back() == "lost");
  CHECK(alternates(evs));
  CHECK(log->count("pause") >= 2);
  CHECK(max_size->load() <= high + chunk);
  raw_close(b);
}

// -- read flow control
// ----------------------------------------------------------------

TEST_CASE("pause_reading and resume_reading are idempotent and hold eof") {
  runtime_fixture fx;
  int a, b;
  make_pair(a, b);
  auto log = std::make_shared<event_log>();
  auto conn = connect_accepted_socket(*fx.rt, a, recorder(log));
  REQUIRE(conn);
  auto& t = conn->transport;
  auto reading = [&] {
    auto st = ask<transport_status>(*fx.rt, t, get_status{});
    REQUIRE(st);
    return st->reading;
  };
  CHECK(reading());
  caf::anon_send(t, pause_reading{});
  CHECK_FALSE(reading());
  caf::anon_send(t, pause_reading{});
  CHECK_FALSE(reading());
  caf::anon_send(t, resume_reading{});
  CHECK(reading());
  caf::anon_send(t, resume_reading{});
  CHECK(reading());
  caf::anon_send(t, pause_reading{});
  caf::anon_send(t, pause_reading{});
  CHECK_FALSE(reading());
  // While paused, neither data nor EOF is delivered (C46).
  REQUIRE(raw_send_all(b, "held back"));
  ::shutdown(b, SHUT_WR);
  for (int i = 0; i < 5; ++i)
    CHECK_FALSE(reading());
  CHECK(inq(a) == 9);
  CHECK(log->events() == std::vector<std::string>{"connected"});
  caf::anon_send(t, resume_reading{});
  caf::anon_send(t, resume_reading{});
  REQUIRE(log->wait_for_event("lost", true));
  CHECK(log->received() == "held back");
  CHECK(shape(log->events()) ==
        std::vector<std::string>{"connected", "data", "eof", "lost"});
  raw_close(b);
}

TEST_CASE("read back-pressure bounds unprocessed data of a slow protocol") {
  runtime_fixture fx;
  // Read settings are taken from the config when a connection is created.
  constexpr size_t high = 64 * 1024;
  fx.cfg.read_high_water = high;
  fx.cfg.read_low_water = 16 * 1024;
  fx.cfg.read_chunk_size = 4 * 1024;
  int a, b;
  make_pair(a, b);
  auto log = std::make_shared<event_log>();
  recorder_options opts;
  opts.slow_ms = 20;
  auto conn = connect_accepted_socket(*fx.rt, a, recorder(log, opts));
  REQUIRE(conn);
  REQUIRE(::fcntl(b, F_SETFL, ::fcntl(b, F_GETFL) | O_NONBLOCK) == 0);
  auto payload = pattern(4 << 20);
  size_t sent = 0;
  size_t max_unprocessed = 0;
  size_t blocked = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (sent < payload.size() && std::chrono::steady_clock::now() < until) {
    auto n = ::send(b, payload.data() + sent,
                    std::min<size_t>(64 * 1024, payload.size() - sent),
                    MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else {
      REQUIRE((n < 0 && (errno == EAGAIN || errno == EINTR)));
      if (errno == EAGAIN) {
        ++blocked;
        pollfd pf{b, POLLOUT, 0};
        ::poll(&pf, 1, 100);
      }
    }
    // Unprocessed = read by the transport (sent minus what is still in its
    // socket) minus handled by the protocol. The log is sampled first, so
    // the estimate can only be too high, never too low.
    auto handled = received_bytes(*log);
    auto read = sent - inq(a);
    if (read > handled)
      max_unprocessed = std::max(max_unprocessed, read - handled);
  }
  REQUIRE(sent == payload.size());
  ::shutdown(b, SHUT_WR);
  REQUIRE(log->wait_for_event("lost", true, std::chrono::seconds(60)));
  // The sender was held back by the transport, not by the protocol's speed.
  CHECK(blocked > 0);
  // Bound: high water, plus one read beyond it (reads grow to 256 KiB), plus
  // what the protocol handled between the two samples (one chunk).
  CAPTURE(max_unprocessed);
  CHECK(max_unprocessed <= high + 2 * 256 * 1024);
  // No byte lost or reordered.
  CHECK(log->received() == payload);
  CHECK(shape(log->events()) ==
        std::vector<std::string>{"connected", "data", "eof", "lost"});
  raw_close(b);
}

// -- set_protocol, writelines, extra info, ordering
// -------------------------------------

TEST_CASE("set_protocol hands later messages to the new protocol") {
  runtime_fixture fx;
  int a, b;
  make_pair(a, b);
  auto log1 = std::make_shared<event_log>();
  auto log2 = std::make_shared<event_log>();
  auto conn = connect_accepted_socket(*fx.rt, a, recorder(log1));
  REQUIRE(conn);
  auto payload = pattern(4 << 20);
  const size_t half = payload.size() / 2;
  std::atomic<bool> send_ok{false};
  std::promise<void> switched;
  auto switched_fut = switched.get_future();
  std::thread sender{[&] {
    // Paced in small pieces so the switch can land mid-stream; the second
    // half only goes once the transport has handled set_protocol, so the
    // new protocol surely gets bytes (whatever the scheduling).
    auto send_range = [&](size_t from, size_t to) {
      for (size_t off = from; off < to; off += 4096)
        if (!raw_send_all(b, std::string_view{payload}.substr(off, 4096)))
          return false;
      return true;
    };
    bool ok = send_range(0, half);
    switched_fut.wait();
    send_ok = ok && send_range(half, payload.size());
  }};
  REQUIRE(await_received(*log1, 1));
  // asyncio's get_protocol: the first protocol until set_protocol.
  auto before = ask<protocol_actor>(*fx.rt, conn->transport, get_protocol{});
  REQUIRE(before);
  CHECK(*before == conn->protocol);
  auto second = recorder(log2)(fx.rt->shard_at(conn->info.shard));
  caf::anon_send(conn->transport, set_protocol{second});
  auto after = ask<protocol_actor>(*fx.rt, conn->transport, get_protocol{});
  REQUIRE(after);
  CHECK(*after == second);
  // Handled after set_protocol: both were enqueued by this thread in order.
  auto status = ask<transport_status>(*fx.rt, conn->transport, get_status{});
  switched.set_value();
  sender.join();
  REQUIRE(status);
  REQUIRE(send_ok);
  ::shutdown(b, SHUT_WR);
  REQUIRE(log2->wait_for_event("lost", true));
  // Nothing lost or duplicated across the two logs.
  auto first_part = log1->received();
  auto second_part = log2->received();
  CHECK(first_part.size() + second_part.size() == payload.size());
  CHECK(first_part + second_part == payload);
  CHECK(second_part.size() >= payload.size() - half); // the switch happened
  auto evs2 = log2->events();
  CHECK(log2->count("connected") == 0);
  CHECK(shape(evs2) == std::vector<std::string>{"data", "eof", "lost"});
  auto evs1 = log1->events();
  CHECK(shape(evs1) == std::vector<std::string>{"connected", "data"});
  // The first protocol is no longer the transport's business.
  caf::anon_send_exit(conn->protocol, caf::exit_reason::user_shutdown);
  CHECK(await_down(*fx.rt, conn->protocol));
  raw_close(b);
}

TEST_CASE("writelines sends the concatenation") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  tcp_to_raw c{*fx.rt, recorder(log)};
  std::vector<buffer> parts;
  std::string expected;
  // More parts than one gathered write takes (64), some empty, some large.
  for (size_t i = 0; i < 150; ++i) {
    auto n = i % 7 == 0 ? 0 : (i % 5 == 0 ? 70000 : i * 3);
    auto part = pattern(n, expected.size());
    expected += part;
    parts.push_back(buffer::copy_of(part));
  }
  caf::anon_send(c.conn->transport, writelines{parts});
  caf::anon_send(c.conn->transport, writelines{{}});
  caf::anon_send(c.conn->transport,
                 writelines{{buffer::copy_of("1"), buffer::copy_of("2"),
                             buffer::copy_of("3")}});
  expected += "123";
  caf::anon_send(c.conn->transport, shardwire::close{});
  read_end how;
  auto got = read_all(c.peer, how);
  CHECK(how == read_end::eof);
  CHECK(got.size() == expected.size());
  CHECK(got == expected);
  REQUIRE(log->wait_for_event("lost"));
}

TEST_CASE("get_extra_info returns peername, sockname, fd and shard") {
  runtime_fixture fx;
  auto server_log = std::make_shared<event_log>();
  auto server_transport = std::make_shared<transport_actor>();
  auto srv =
      create_server(*fx.rt, recorder(server_log, {}, server_transport), {});
  REQUIRE(srv);
  auto port = srv->sockets.at(0).port;
  auto client_log = std::make_shared<event_log>();
  connect_options co;
  co.port = port;
  co.shard = size_t{1};
  auto conn = create_connection(*fx.rt, co, recorder(client_log));
  REQUIRE(conn);
  auto info = ask<transport_info>(*fx.rt, conn->transport, get_extra_info{});
  REQUIRE(info);
  CHECK(info->kind == "tcp");
  CHECK(info->shard == 1);
  CHECK(info->peername.family == endpoint::kind::ipv4);
  CHECK(info->peername.host == "127.0.0.1");
  CHECK(info->peername.port == port);
  CHECK(info->sockname.family == endpoint::kind::ipv4);
  CHECK(info->sockname.host == "127.0.0.1");
  REQUIRE(info->fd >= 0);
  CHECK(::fcntl(info->fd, F_GETFD) != -1);
  sockaddr_in sa = {};
  socklen_t len = sizeof(sa);
  REQUIRE(::getsockname(info->fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  CHECK(info->sockname.port == ntohs(sa.sin_port));
  // The connection result carries the same facts.
  CHECK(conn->info.fd == info->fd);
  CHECK(conn->info.peername == info->peername);
  CHECK(conn->info.sockname == info->sockname);
  // By name, as asyncio's get_extra_info(name, default).
  CHECK(std::get<endpoint>(extra_info(*info, "peername")) ==
        info->peername);
  CHECK(std::get<endpoint>(extra_info(*info, "sockname")) ==
        info->sockname);
  CHECK(std::get<int64_t>(extra_info(*info, "socket")) == info->fd);
  CHECK(std::get<std::string>(extra_info(*info, "kind")) == "tcp");
  CHECK(std::get<int64_t>(extra_info(*info, "shard")) == 1);
  // Names a socket does not have give the default (None by default).
  CHECK(std::holds_alternative<std::monostate>(extra_info(*info, "pipe")));
  CHECK(std::get<int64_t>(extra_info(*info, "pipe", int64_t{-7})) == -7);
  CHECK(std::get<std::string>(extra_info(*info, "cipher",
                                             std::string{"none"})) == "none");
  CHECK(info->can_write_eof);
  // The server side sees the mirror image.
  REQUIRE(server_log->wait_for_event("connected"));
  auto sinfo = ask<transport_info>(*fx.rt, *server_transport, get_extra_info{});
  REQUIRE(sinfo);
  CHECK(sinfo->peername == info->sockname);
  CHECK(sinfo->sockname == info->peername);
  CHECK(sinfo->shard < fx.rt->shard_count());
  caf::anon_send(conn->transport, shardwire::close{});
  REQUIRE(server_log->wait_for_event("lost"));
  REQUIRE(client_log->wait_for_event("lost"));
  caf::anon_send(srv->actor, shardwire::close{});
  CHECK(await_down(*fx.rt, srv->actor));
}

TEST_CASE("data chunks of a large burst hold 1 to 262144 bytes each (C6)") {
  runtime_fixture fx;
  int a, b;
  make_pair(a, b);
  // Let the sender queue as much as the system allows, so reads may find more
  // than 256 KiB waiting. A send that blocks past the deadline fails instead
  // of hanging the sender thread.
  int sndbuf = 4 << 20;
  ::setsockopt(b, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  timeval tv{std::chrono::seconds(deadline).count(), 0};
  REQUIRE(::setsockopt(b, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0);
  auto log = std::make_shared<event_log>();
  auto conn = connect_accepted_socket(*fx.rt, a, recorder(log));
  REQUIRE(conn);
  auto payload = pattern(2 << 20);
  std::atomic<bool> sent{false};
  std::thread sender{[&] {
    sent = raw_send_all(b, payload);
    ::shutdown(b, SHUT_WR);
  }};
  bool ended = log->wait_for_event("lost", true);
  sender.join();
  CHECK(sent);
  REQUIRE(ended);
  auto evs = log->events();
  CHECK(evs.front() == "connected");
  CHECK(evs.back() == "lost");
  size_t chunks = 0;
  size_t largest = 0;
  for (auto& e : evs) {
    if (e.rfind("data:", 0) != 0) continue;
    auto n = e.size() - 5;
    ++chunks;
    largest = std::max(largest, n);
    CHECK(n >= 1);
    CHECK(n <= 262144);
  }
  INFO("chunks: " << chunks << ", largest: " << largest);
  CHECK(chunks >= 8); // 2 MiB cannot come in fewer chunks of 256 KiB
  CHECK(log->received() == payload);
  raw_close(b);
}

TEST_CASE("messages of one connection arrive in order over a long stream") {
  runtime_fixture fx;
  auto server_log = std::make_shared<event_log>();
  auto server_transport = std::make_shared<transport_actor>();
  auto srv =
      create_server(*fx.rt, recorder(server_log, {}, server_transport), {});
  REQUIRE(srv);
  int peer = raw_connect(srv->sockets.at(0).port);
  REQUIRE(peer >= 0);
  auto payload = pattern(4 << 20);
  std::thread sender{[&] { raw_send_all(peer, payload); }};
  REQUIRE(server_log->wait_for_event("connected"));
  // The other direction at the same time: 1024 writes of 4 KiB, in order.
  auto reverse = pattern(4 << 20, 12345);
  for (size_t off = 0; off < reverse.size(); off += 4096)
    caf::anon_send(*server_transport, shardwire::write{buffer::copy_of(
                                          reverse.data() + off, 4096)});
  auto got = raw_read_exact(peer, reverse.size());
  sender.join();
  CHECK(got.size() == reverse.size());
  CHECK(got == reverse);
  REQUIRE(await_received(*server_log, payload.size()));
  CHECK(server_log->received() == payload);
  ::shutdown(peer, SHUT_WR);
  REQUIRE(server_log->wait_for_event("lost", true));
  auto evs = server_log->events();
  CHECK(evs.front() == "connected");
  CHECK(evs.back() == "lost");
  CHECK(alternates(evs));
  caf::anon_send(srv->actor, shardwire::close{});
  CHECK(await_down(*fx.rt, srv->actor));
  raw_close(peer);
}
