// The stream transport core's state machine (transports/core/stream_core.hpp)
// over a scripted backend (tests/support/scripted_backend.hpp), on the test
// thread with CAF's test coordinator (tests/support/core_harness.hpp): no
// sockets, no threads, no sleeps. Each case asserts the exact messages the
// protocol got, in order, and the exact bytes that reached the "wire"; every
// case ends in `ended()`, which checks what holds on every path: `lost`
// exactly once and last, the backend stopped exactly once, no contract
// violation, no actor left.
#include "transports/core/stream_core.hpp"

#include "tests/support/core_harness.hpp"
#include "tests/support/scripted_backend.hpp"

#include <caf/send.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

using namespace shardwire;
using namespace shardwire::test;
using transport_core::stream_direction;

namespace shardwire::transport_core {
template class stream_core<test::scripted_backend>;
} // namespace shardwire::transport_core

namespace {

using scripted_core = transport_core::stream_core<scripted_backend>;
using events = std::vector<std::string>;

/// Bytes of read credit one read of `size` bytes weighs (the storage of the
/// chunk the backend reads into, as with the fd backend).
size_t read_weight(size_t size) {
  mutable_buffer chunk{size};
  return std::move(chunk).freeze(1).footprint();
}

/// set_write_buffer_limits with `high` (and `low`, if given).
set_write_buffer_limits limits(uint64_t high,
                               caf::optional<uint64_t> low = caf::none) {
  return set_write_buffer_limits{high, low};
}

/// One transport over a scripted backend with a recording protocol.
struct core_fixture {
  core_harness h;
  script_ptr script = std::make_shared<backend_script>();
  record_ptr proto = std::make_shared<protocol_record>();
  std::vector<record_ptr> others; // protocols made by the test (set_protocol)
  stream_settings settings;
  /// The protocol factory; unset: a recording protocol writing into `proto`.
  protocol_factory factory;
  transport_actor transport;
  // What the connect callback got (no handles: they would outlive the
  // actor system).
  int connect_calls = 0;
  bool connect_ok = false;
  caf::error connect_error;

  core_fixture() { settings.read_chunk_size = transport_core::min_read_size; }

  ~core_fixture() {
    // Handles go before the actor system (teardown runs this first).
    h.on_teardown([this] {
      transport = nullptr;
      factory = nullptr;
      proto->drop_handles();
      for (auto& p : others)
        p->drop_handles();
    });
    h.teardown();
  }

  /// Spawns the transport and runs until it waits.
  void start(stream_direction dir = stream_direction::both) {
    auto hdl = spawn_on<scripted_core>(
        h.home(), factory ? factory : recording_protocol(proto), settings,
        [this](caf::expected<connection> res) {
          ++connect_calls;
          connect_ok = static_cast<bool>(res);
          if (!res) connect_error = res.error();
        },
        dir, script);
    transport = caf::actor_cast<transport_actor>(std::move(hdl));
    h.run();
  }

  /// Sends `msg` to the transport from no actor, then runs.
  template <class Msg>
  void tell(Msg msg) {
    caf::anon_send(transport, std::move(msg));
    h.run();
  }

  void send_bytes(const std::string& s) {
    tell(shardwire::write{buffer::copy_of(s)});
  }

  /// Readiness from the "kernel", then runs.
  void ready(bool r, bool w = false, bool f = false) {
    script->ready(r, w, f);
    h.run();
  }

  const events& log() const { return *proto->log; }

  /// A second recording protocol for set_protocol, named `name`, logging
  /// into the same log.
  record_ptr another(const std::string& name) {
    auto rec = std::make_shared<protocol_record>();
    rec->name = name;
    rec->log = proto->log;
    rec->self = spawn_fun_on(h.home(), recording_protocol_impl, rec);
    others.push_back(rec);
    return rec;
  }

  template <class R, class Msg>
  std::shared_ptr<reply<R>> ask(Msg msg) {
    auto r = h.request<R>(transport, std::move(msg));
    h.run();
    return r;
  }

  transport_status status() {
    auto r = ask<transport_status>(get_status{});
    REQUIRE(r->done);
    REQUIRE(r->value);
    return *r->value;
  }

  uint64_t buffered() {
    auto r = ask<uint64_t>(get_write_buffer_size{});
    REQUIRE(r->done);
    REQUIRE(r->value);
    return *r->value;
  }
};

/// The vocabulary's guarantees on one protocol's events (messages.hpp):
/// `lost` exactly once and last, `eof` at most once and never followed by
/// `data`, `pause` / `resume` alternating from `pause`.
void check_vocabulary(const events& ev, bool expect_connected = true) {
  if (expect_connected) {
    REQUIRE_FALSE(ev.empty());
    CHECK(ev.front() == "connected");
  }
  size_t lost = 0;
  size_t eofs = 0;
  bool paused = false;
  for (size_t i = 0; i < ev.size(); ++i) {
    const auto& e = ev[i];
    INFO("event " << i << ": " << e);
    if (e.rfind("lost", 0) == 0) {
      ++lost;
      CHECK(i + 1 == ev.size());
    } else if (e == "eof") {
      ++eofs;
    } else if (e.rfind("data:", 0) == 0) {
      CHECK(eofs == 0);
    } else if (e == "pause") {
      CHECK_FALSE(paused);
      paused = true;
    } else if (e == "resume") {
      CHECK(paused);
      paused = false;
    } else if (e == "connected") {
      CHECK(i == 0);
    }
  }
  CHECK(lost == 1);
  CHECK(eofs <= 1);
}

/// What holds at the end of every path: the protocol's events are well
/// formed with `lost` once and last, the backend was stopped exactly once,
/// nothing broke the backend contract, no actor is left.
void ended(core_fixture& f) {
  f.h.run();
  INFO("calls: " << Catch::Detail::stringify(f.script->calls));
  INFO("events: " << Catch::Detail::stringify(f.proto->own));
  check_vocabulary(f.proto->own);
  CHECK(f.proto->lost_count == 1);
  CHECK(f.script->stops == 1);
  CHECK_FALSE(f.script->open);
  CHECK(f.script->violations.empty());
  CHECK(f.connect_calls == 1);
  CHECK(f.h.live_actors(true) == 0);
  // A protocol that does not quit on `lost` (to show a message after it)
  // is left for teardown.
  if (f.proto->quit_on_lost) CHECK(f.h.live_actors() == 0);
  // Nothing ran after the backend stopped.
  REQUIRE_FALSE(f.script->calls.empty());
  CHECK(f.script->calls.back() == "stop");
}

bool wanted_read_before(const backend_script& s, size_t n_calls) {
  for (size_t i = 0; i < n_calls && i < s.calls.size(); ++i)
    if (s.calls[i].rfind("want:r", 0) == 0) return true;
  return false;
}

} // namespace

// -- starting -----------------------------------------------------------------

TEST_CASE("connected comes first and nothing is read before it is "
          "acknowledged",
          "[stream_core]") {
  core_fixture f;
  f.proto->hold_connected = true;
  f.script->reads = {read_step::data("hello")};
  f.script->readable = true; // bytes are there from the start
  f.start();
  CHECK(f.log() == events{"connected"});
  CHECK(f.script->reads_done == 0);
  CHECK_FALSE(wanted_read_before(*f.script, f.script->calls.size()));
  CHECK(f.connect_calls == 0); // reported once the protocol answered
  // Bytes written from the protocol before it answered go out.
  f.send_bytes("early");
  CHECK(f.script->wire == "early");
  f.proto->ack_connected();
  f.h.run();
  CHECK(f.connect_calls == 1);
  CHECK(f.connect_ok);
  CHECK(f.log() == events{"connected", "data:hello"});
  f.tell(shardwire::abort{});
  CHECK(f.log() == events{"connected", "data:hello", "lost"});
  ended(f);
}

TEST_CASE("pause_reading from the connected handler is honoured",
          "[stream_core]") {
  core_fixture f;
  f.proto->on_event = [](protocol_record& rec, const std::string& ev) {
    if (ev == "connected") rec.actor->send(rec.transport, pause_reading{});
  };
  f.script->reads = {read_step::data("abc")};
  f.script->readable = true;
  f.start();
  CHECK(f.log() == events{"connected"});
  CHECK(f.script->reads_done == 0);
  CHECK_FALSE(f.status().reading);
  f.tell(resume_reading{});
  CHECK(f.log() == events{"connected", "data:abc"});
  f.tell(shardwire::close{});
  CHECK(f.log() == events{"connected", "data:abc", "lost"});
  ended(f);
}

TEST_CASE("a backend that fails to start reports the error and no protocol "
          "is made",
          "[stream_core]") {
  core_fixture f;
  f.script->start_errno = EMFILE;
  f.start();
  f.h.run();
  CHECK(f.connect_calls == 1);
  CHECK_FALSE(f.connect_ok);
  CHECK(is_errno(f.connect_error, EMFILE));
  CHECK(f.log().empty());
  CHECK(f.proto->lost_count == 0);
  CHECK(f.script->stops == 1);
  CHECK(f.script->violations.empty());
  CHECK(f.h.live_actors() == 0);
}

// -- writing ------------------------------------------------------------------

TEST_CASE("a partial write keeps the order of the bytes", "[stream_core]") {
  core_fixture f;
  f.start();
  f.script->writes = {write_step::take(3)};
  f.send_bytes("0123456789");
  CHECK(f.script->wire == "012");
  CHECK(f.buffered() == 7);
  CHECK((f.script->wanted & fd_write) != 0);
  // Queued behind the rest: not written before it.
  f.send_bytes("abc");
  f.tell(writelines{{buffer::copy_of("de"), buffer::copy_of("f")}});
  CHECK(f.script->wire == "012");
  CHECK(f.buffered() == 13);
  f.ready(false, true);
  CHECK(f.script->wire == "0123456789abcdef");
  CHECK(f.buffered() == 0);
  CHECK((f.script->wanted & fd_write) == 0);
  f.tell(shardwire::close{});
  CHECK(f.log() == events{"connected", "lost"});
  ended(f);
}

TEST_CASE("writelines over more parts than the backend takes at once keeps "
          "order",
          "[stream_core]") {
  core_fixture f;
  f.start();
  // max_parts is 2: the immediate write offers "a" and "b" only; the rest
  // waits for writability (which the test gives only later).
  f.script->writes = {write_step::all()};
  f.script->write_default = write_step::block();
  f.tell(writelines{{buffer::copy_of("a"), buffer::copy_of("b"),
                     buffer::copy_of("c"), buffer::copy_of("d"),
                     buffer::copy_of("e")}});
  CHECK(f.script->wire == "ab");
  CHECK(f.script->wanted == (fd_read | fd_write));
  CHECK(f.buffered() == 3);
  f.script->write_default = write_step::all();
  f.ready(false, true);
  CHECK(f.script->wire == "abcde");
  CHECK(f.script->count("write:2/2") == 2);
  CHECK(f.script->count("write:1/1") == 1);
  CHECK(f.script->count("write:block") == 1);
  f.tell(shardwire::close{});
  ended(f);
}

TEST_CASE("would_block on write waits for writability", "[stream_core]") {
  core_fixture f;
  f.start();
  f.script->writes = {write_step::block()};
  f.send_bytes("hello");
  CHECK(f.script->wire.empty());
  CHECK(f.script->count("write:block") == 1);
  f.send_bytes(" world");
  CHECK(f.script->writes_done == 1); // no write while blocked
  f.ready(false, true);
  CHECK(f.script->wire == "hello world");
  CHECK(f.log() == events{"connected"});
  f.tell(shardwire::close{});
  CHECK(f.log() == events{"connected", "lost"});
  ended(f);
}

TEST_CASE("pause above the high-water mark, resume at or below the low one",
          "[stream_core]") {
  core_fixture f;
  f.start();
  auto lim = f.ask<write_buffer_limits>(limits(8, 4));
  REQUIRE(lim->done);
  REQUIRE(lim->value);
  CHECK(*lim->value == write_buffer_limits{4, 8});
  f.script->block_writes();
  f.send_bytes("aaaa");
  f.send_bytes("bbbb"); // 8: not above high
  CHECK(f.log() == events{"connected"});
  f.send_bytes("c"); // 9 > 8
  CHECK(f.log() == events{"connected", "pause"});
  f.send_bytes("dddd"); // no second pause
  CHECK(f.log() == events{"connected", "pause"});
  // Each readiness call makes one short write (the core waits after a
  // write that took less than offered).
  f.script->writes = {write_step::take(3), write_step::take(4),
                      write_step::take(1), write_step::take(1)};
  f.ready(false, true); // 13 - 3 = 10
  CHECK(f.log() == events{"connected", "pause"});
  f.ready(false, true); // 10 - 4 = 6 > 4
  CHECK(f.log() == events{"connected", "pause"});
  f.ready(false, true); // 6 - 1 = 5 > 4
  CHECK(f.log() == events{"connected", "pause"});
  CHECK(f.buffered() == 5);
  f.ready(false, true); // 5 - 1 = 4: at low
  CHECK(f.log() == events{"connected", "pause", "resume"});
  CHECK(f.buffered() == 4);
  f.ready(false, true);
  CHECK(f.script->wire == "aaaabbbbcdddd");
  f.tell(shardwire::close{});
  CHECK(f.log() == events{"connected", "pause", "resume", "lost"});
  ended(f);
}

TEST_CASE("lowering the high-water mark below the queue pauses at once",
          "[stream_core]") {
  core_fixture f;
  f.start();
  f.script->block_writes();
  f.send_bytes("0123456789");
  CHECK(f.log() == events{"connected"});
  auto lim = f.ask<write_buffer_limits>(limits(6));
  REQUIRE(lim->value);
  CHECK(*lim->value == write_buffer_limits{1, 6});
  CHECK(f.log() == events{"connected", "pause"});
  // Invalid limits are refused and change nothing.
  auto bad = f.ask<write_buffer_limits>(limits(1, 2));
  REQUIRE(bad->done);
  CHECK(is(bad->err, sw_errc::invalid_argument));
  f.ready(false, true);
  CHECK(f.log() == events{"connected", "pause", "resume"});
  f.tell(shardwire::close{});
  ended(f);
}

TEST_CASE("the write cap aborts with write_buffer_overflow", "[stream_core]") {
  core_fixture f;
  f.settings.write_buffer_cap = 16;
  f.start();
  auto lim = f.ask<write_buffer_limits>(limits(8));
  REQUIRE(lim->value);
  f.script->block_writes();
  f.send_bytes("0123456789"); // 10 > 8: pause
  CHECK(f.log() == events{"connected", "pause"});
  f.send_bytes("0123456"); // 17 > 16: the cap
  REQUIRE(f.log().size() == 3);
  CHECK(f.log()[2].rfind("lost:", 0) == 0);
  CHECK(is(f.proto->lost_reason, sw_errc::write_buffer_overflow));
  // No resume: the queue was dropped, not drained.
  f.ready(false, true);
  CHECK(f.script->wire.empty());
  CHECK(f.script->writes_done == 1);
  ended(f);
}

// -- errors -------------------------------------------------------------------

TEST_CASE("an errno from read gives lost with it, no eof, the queue dropped",
          "[stream_core]") {
  core_fixture f;
  f.start();
  auto lim = f.ask<write_buffer_limits>(limits(2));
  REQUIRE(lim->value);
  f.script->block_writes();
  f.send_bytes("queued");
  CHECK(f.log() == events{"connected", "pause"});
  f.script->reads = {read_step::data("ab"), read_step::error(ECONNRESET)};
  f.ready(true);
  REQUIRE(f.log().size() == 4);
  CHECK(f.log()[1] == "pause");
  CHECK(f.log()[2] == "data:ab");
  CHECK(f.log()[3].rfind("lost:", 0) == 0);
  CHECK(is_errno(f.proto->lost_reason, ECONNRESET));
  // The queue went with the connection: nothing more is written.
  f.ready(false, true);
  CHECK(f.script->wire.empty());
  CHECK(f.script->writes_done == 1);
  CHECK(f.script->shutdowns == 0);
  ended(f);
}

TEST_CASE("a reset in the middle of a flush gives lost once", "[stream_core]") {
  core_fixture f;
  f.start();
  f.script->writes = {write_step::block(), write_step::all(),
                      write_step::error(ECONNRESET)};
  f.send_bytes("aa");
  f.send_bytes("bb");
  f.send_bytes("cc");
  CHECK(f.script->wire.empty());
  // One readiness call: "aa" + "bb" go (max_parts 2), "cc" meets the reset.
  f.ready(false, true);
  CHECK(f.script->wire == "aabb");
  REQUIRE(f.log().size() == 2);
  CHECK(is_errno(f.proto->lost_reason, ECONNRESET));
  CHECK(f.script->count("write:errno") == 1);
  ended(f);
}

TEST_CASE("an errno from the immediate write gives lost with it",
          "[stream_core]") {
  core_fixture f;
  f.start();
  f.script->writes = {write_step::error(EPIPE)};
  f.send_bytes("x");
  f.send_bytes("y"); // dropped: the transport is gone
  REQUIRE(f.log().size() == 2);
  CHECK(is_errno(f.proto->lost_reason, EPIPE));
  CHECK(f.script->writes_done == 1);
  ended(f);
}

TEST_CASE("an error pending on the connection is reported by the next read",
          "[stream_core]") {
  core_fixture f;
  f.start();
  f.script->reads = {read_step::error(ECONNRESET)};
  f.ready(false, false, true);
  CHECK(f.log().size() == 2);
  CHECK(is_errno(f.proto->lost_reason, ECONNRESET));
  ended(f);
}

// -- end of input -------------------------------------------------------------

TEST_CASE("EOF while reading is paused waits for resume_reading",
          "[stream_core]") {
  core_fixture f;
  f.start();
  f.tell(pause_reading{});
  CHECK((f.script->wanted & fd_read) == 0);
  f.script->reads = {read_step::data("abc"), read_step::end()};
  f.ready(true);
  CHECK(f.script->reads_done == 0);
  CHECK(f.log() == events{"connected"});
  f.tell(pause_reading{}); // idempotent
  f.tell(resume_reading{});
  CHECK(f.log() == events{"connected", "data:abc", "eof", "lost"});
  CHECK(f.proto->lost_reason == caf::error{});
  ended(f);
}

TEST_CASE("eof answered false closes the transport", "[stream_core]") {
  core_fixture f;
  f.start();
  SECTION("with nothing queued") {
    f.script->reads = {read_step::end()};
    f.ready(true);
    CHECK(f.log() == events{"connected", "eof", "lost"});
  }
  SECTION("with bytes queued: flushed first") {
    f.script->block_writes();
    f.send_bytes("bye");
    f.script->reads = {read_step::end()};
    f.ready(true);
    CHECK(f.log() == events{"connected", "eof"});
    f.ready(false, true);
    CHECK(f.script->wire == "bye");
    CHECK(f.log() == events{"connected", "eof", "lost"});
  }
  CHECK_FALSE(f.proto->lost_reason);
  CHECK(f.script->count("read:eof") == 1);
  // close releases the connection through stop, not a half-close
  CHECK(f.script->shutdowns == 0);
  ended(f);
}

TEST_CASE("eof answered true keeps writing possible until close",
          "[stream_core]") {
  core_fixture f;
  f.proto->eof_reply = true;
  f.start();
  f.script->reads = {read_step::data("q"), read_step::end()};
  f.ready(true);
  CHECK(f.log() == events{"connected", "data:q", "eof"});
  auto st = f.status();
  CHECK_FALSE(st.reading);
  CHECK_FALSE(st.closing);
  f.send_bytes("answer");
  CHECK(f.script->wire == "answer");
  // No read after the end of input, however often it is readable.
  f.ready(true);
  CHECK(f.script->reads_done == 2);
  f.script->block_writes();
  f.send_bytes(" more");
  f.tell(shardwire::close{});
  CHECK(f.log() == events{"connected", "data:q", "eof"});
  f.ready(false, true);
  CHECK(f.script->wire == "answer more");
  CHECK(f.log() == events{"connected", "data:q", "eof", "lost"});
  ended(f);
}

TEST_CASE("write_eof waits for the queue to drain, then shuts down once",
          "[stream_core]") {
  core_fixture f;
  f.start();
  SECTION("with bytes queued") {
    f.script->block_writes();
    f.send_bytes("abc");
    f.tell(write_eof{});
    f.tell(write_eof{});
    CHECK(f.script->shutdowns == 0);
    f.ready(false, true);
    CHECK(f.script->wire == "abc");
    CHECK(f.script->shutdowns == 1);
    // After the last write.
    REQUIRE(f.script->count("shutdown_write") == 1);
    auto i = std::find(f.script->calls.begin(), f.script->calls.end(),
                       "shutdown_write");
    CHECK(*(i - 1) == "write:3/3");
  }
  SECTION("with nothing queued: at once") {
    f.tell(write_eof{});
    CHECK(f.script->shutdowns == 1);
  }
  f.tell(write_eof{});
  CHECK(f.script->shutdowns == 1);
  // Reading goes on after a half-close; the peer's eof then closes.
  f.script->reads = {read_step::data("reply"), read_step::end()};
  f.ready(true);
  CHECK(f.log() == events{"connected", "data:reply", "eof", "lost"});
  CHECK(f.script->shutdowns == 1);
  ended(f);
}

TEST_CASE("write after write_eof is refused", "[stream_core]") {
  core_fixture f;
  f.start();
  f.send_bytes("last");
  f.tell(write_eof{});
  auto r = f.ask<caf::unit_t>(shardwire::write{buffer::copy_of("late")});
  REQUIRE(r->done);
  CHECK(is(r->err, sw_errc::write_after_eof));
  auto r2 = f.ask<caf::unit_t>(writelines{{buffer::copy_of("late")}});
  REQUIRE(r2->done);
  CHECK(is(r2->err, sw_errc::write_after_eof));
  f.send_bytes("dropped"); // a plain send: logged, dropped
  CHECK(f.script->wire == "last");
  CHECK(f.log() == events{"connected"});
  f.tell(shardwire::close{});
  CHECK(f.log() == events{"connected", "lost"});
  ended(f);
}

// -- close and abort ----------------------------------------------------------

TEST_CASE("close with bytes queued waits for writability", "[stream_core]") {
  core_fixture f;
  f.start();
  f.script->block_writes();
  f.send_bytes("abc");
  f.tell(shardwire::close{});
  CHECK(f.log() == events{"connected"});
  auto st = f.status();
  CHECK(st.closing);
  CHECK_FALSE(st.reading);
  CHECK((f.script->wanted & fd_read) == 0);
  // Reading stopped; writes after close are dropped.
  f.script->reads = {read_step::data("ignored")};
  f.ready(true);
  f.send_bytes("dropped");
  CHECK(f.script->reads_done == 0);
  CHECK(f.log() == events{"connected"});
  f.ready(false, true);
  CHECK(f.script->wire == "abc");
  CHECK(f.log() == events{"connected", "lost"});
  ended(f);
}

TEST_CASE("close while reading is paused flushes, then lost", "[stream_core]") {
  core_fixture f;
  f.start();
  f.tell(pause_reading{});
  f.script->block_writes();
  f.send_bytes("abc");
  f.tell(shardwire::close{});
  CHECK(f.log() == events{"connected"});
  f.ready(false, true);
  CHECK(f.script->wire == "abc");
  CHECK(f.log() == events{"connected", "lost"});
  ended(f);
}

TEST_CASE("close while writing is paused flushes, then resume and lost",
          "[stream_core]") {
  // asyncio's _write_ready resumes the protocol before connection_lost too.
  core_fixture f;
  f.start();
  REQUIRE(f.ask<write_buffer_limits>(limits(4))->value);
  f.script->block_writes();
  f.send_bytes("0123456789");
  CHECK(f.log() == events{"connected", "pause"});
  f.tell(shardwire::close{});
  CHECK(f.log() == events{"connected", "pause"});
  f.ready(false, true);
  CHECK(f.script->wire == "0123456789");
  CHECK(f.log() == events{"connected", "pause", "resume", "lost"});
  ended(f);
}

TEST_CASE("abort drops the queue at once, with no resume", "[stream_core]") {
  core_fixture f;
  f.start();
  REQUIRE(f.ask<write_buffer_limits>(limits(4))->value);
  f.script->block_writes();
  f.send_bytes("0123456789");
  CHECK(f.log() == events{"connected", "pause"});
  f.tell(shardwire::abort{});
  CHECK(f.log() == events{"connected", "pause", "lost"});
  f.ready(false, true);
  CHECK(f.script->wire.empty());
  CHECK(f.script->writes_done == 1);
  ended(f);
}

TEST_CASE("abort after close does not wait for the queue", "[stream_core]") {
  core_fixture f;
  f.start();
  f.script->block_writes();
  f.send_bytes("abc");
  f.tell(shardwire::close{});
  f.tell(shardwire::abort{});
  CHECK(f.log() == events{"connected", "lost"});
  CHECK(f.script->wire.empty());
  ended(f);
}

TEST_CASE("a protocol that exits normally closes its transport after a "
          "flush",
          "[stream_core]") {
  core_fixture f;
  f.start();
  f.script->block_writes();
  f.send_bytes("abc");
  f.proto->on_event = [](protocol_record& rec, const std::string& ev) {
    if (ev == "data:bye") rec.actor->quit();
  };
  f.script->reads = {read_step::data("bye")};
  f.ready(true);
  CHECK(f.script->stops == 0); // waits for the queue
  f.ready(false, true);
  CHECK(f.script->wire == "abc");
  CHECK(f.log() == events{"connected", "data:bye"});
  CHECK(f.proto->lost_count == 0); // it is gone: no lost to deliver
  CHECK(f.script->stops == 1);
  CHECK(f.script->violations.empty());
  CHECK(f.h.live_actors() == 0);
}

TEST_CASE("a protocol that fails aborts its transport", "[stream_core]") {
  core_fixture f;
  f.start();
  f.script->block_writes();
  f.send_bytes("abc");
  f.proto->on_event = [](protocol_record& rec, const std::string& ev) {
    if (ev == "data:boom")
      rec.actor->quit(make_error(sw_errc::protocol_failed, "test"));
  };
  f.script->reads = {read_step::data("boom")};
  f.ready(true);
  CHECK(f.script->stops == 1);
  f.ready(false, true);
  CHECK(f.script->wire.empty());
  CHECK(f.proto->lost_count == 0);
  CHECK(f.script->violations.empty());
  CHECK(f.h.live_actors() == 0);
}

// -- read credit --------------------------------------------------------------

TEST_CASE("reads stop while unacknowledged data passes read_high_water and "
          "restart when the protocol drops it",
          "[stream_core]") {
  core_fixture f;
  auto w = read_weight(transport_core::min_read_size);
  f.settings.read_high_water = 2 * w; // the third read passes it
  f.settings.read_low_water = w;
  f.proto->hold_data = true;
  f.start();
  for (int i = 0; i < 7; ++i)
    f.script->reads.push_back(read_step::data("c" + std::to_string(i)));
  f.ready(true);
  CHECK(f.log() == events{"connected", "data:c0", "data:c1", "data:c2"});
  CHECK(f.script->reads_done == 3);
  CHECK((f.script->wanted & fd_read) == 0);
  // Readable all along, but no read until the credit comes back.
  f.ready(true);
  CHECK(f.script->reads_done == 3);
  f.proto->release_data();
  f.h.run();
  CHECK(f.log() == events{"connected", "data:c0", "data:c1", "data:c2",
                          "data:c3", "data:c4", "data:c5"});
  f.proto->hold_data = false;
  f.proto->release_data();
  f.h.run();
  CHECK(f.log().back() == "data:c6");
  CHECK(f.script->calls.back() == "want:r--");
  f.tell(shardwire::close{});
  ended(f);
}

// -- set_protocol -------------------------------------------------------------

TEST_CASE("set_protocol mid-stream: later data goes to the new protocol only",
          "[stream_core]") {
  core_fixture f;
  f.start();
  f.script->reads = {read_step::data("one")};
  f.ready(true);
  auto b = f.another("B:");
  f.tell(set_protocol{b->self});
  f.script->reads = {read_step::data("two"), read_step::data("three"),
                     read_step::end()};
  REQUIRE(f.ask<write_buffer_limits>(limits(1))->value);
  f.script->block_writes();
  f.send_bytes("xy");
  f.ready(true);
  f.ready(false, true);
  CHECK(f.log() == events{"connected", "data:one", "B:pause", "B:data:two",
                          "B:data:three", "B:eof", "B:resume", "B:lost"});
  CHECK(f.proto->own == events{"connected", "data:one"});
  CHECK(f.script->wire == "xy");
  CHECK(b->lost_count == 1);
  check_vocabulary(b->own, false);
  // The first protocol never gets lost (asyncio's set_protocol): end it.
  caf::anon_send_exit(f.proto->self, caf::exit_reason::user_shutdown);
  f.h.run();
  CHECK(f.script->stops == 1);
  CHECK(f.h.live_actors() == 0);
  CHECK(f.script->violations.empty());
}

TEST_CASE("get_protocol answers the protocol now; an invalid set_protocol "
          "changes nothing",
          "[stream_core]") {
  core_fixture f;
  f.start();
  auto first = f.ask<protocol_actor>(get_protocol{});
  REQUIRE(first->value);
  CHECK(*first->value == f.proto->self);
  auto b = f.another("B:");
  f.tell(set_protocol{b->self});
  auto second = f.ask<protocol_actor>(get_protocol{});
  REQUIRE(second->value);
  CHECK(*second->value == b->self);
  f.tell(set_protocol{protocol_actor{}}); // refused with a warning
  auto third = f.ask<protocol_actor>(get_protocol{});
  REQUIRE(third->value);
  CHECK(*third->value == b->self);
  f.tell(shardwire::close{});
  CHECK(b->lost_count == 1);
  caf::anon_send_exit(f.proto->self, caf::exit_reason::user_shutdown);
  f.h.run();
  CHECK(f.script->stops == 1);
  CHECK(f.h.live_actors() == 0);
  CHECK(f.script->violations.empty());
}

TEST_CASE("set_protocol from a data handler: the next chunk goes to the new "
          "protocol",
          "[stream_core]") {
  core_fixture f;
  f.start();
  auto b = f.another("B:");
  f.proto->on_event = [b](protocol_record& rec, const std::string& ev) {
    if (ev == "data:one") rec.actor->send(rec.transport, set_protocol{b->self});
  };
  f.script->reads = {read_step::data("one"), read_step::data("two")};
  f.ready(true);
  CHECK(f.log() == events{"connected", "data:one", "B:data:two"});
  f.tell(shardwire::close{});
  CHECK(f.log() == events{"connected", "data:one", "B:data:two", "B:lost"});
  caf::anon_send_exit(f.proto->self, caf::exit_reason::user_shutdown);
  f.h.run();
  CHECK(f.script->stops == 1);
  CHECK(f.h.live_actors() == 0);
}

// -- pipes --------------------------------------------------------------------

TEST_CASE("read pipe: eof is followed by lost and write is refused",
          "[stream_core]") {
  core_fixture f;
  f.proto->eof_reply = true; // a pipe has no write side to keep
  f.start(stream_direction::read_only);
  auto info = f.ask<transport_info>(get_extra_info{});
  REQUIRE(info->value);
  CHECK_FALSE(info->value->can_write_eof); // a read pipe has no write side
  auto r = f.ask<caf::unit_t>(shardwire::write{buffer::copy_of("no")});
  REQUIRE(r->done);
  CHECK(is(r->err, sw_errc::not_supported));
  f.tell(write_eof{}); // ignored
  f.script->reads = {read_step::data("out"), read_step::end()};
  f.ready(true);
  CHECK(f.log() == events{"connected", "data:out", "eof", "lost"});
  CHECK_FALSE(f.proto->lost_reason);
  CHECK(f.script->writes_done == 0);
  CHECK(f.script->shutdowns == 0);
  ended(f);
}

TEST_CASE("write pipe: the reader going away ends it", "[stream_core]") {
  core_fixture f;
  f.start(stream_direction::write_only);
  CHECK((f.script->wanted & fd_hangup) != 0);
  CHECK((f.script->wanted & fd_read) == 0);
  f.script->reads = {read_step::data("never")};
  f.ready(true); // not wanted: nothing happens
  CHECK(f.script->reads_done == 0);
  SECTION("with nothing queued: clean lost") {
    f.ready(false, false, true);
    CHECK(f.log() == events{"connected", "lost"});
    CHECK_FALSE(f.proto->lost_reason);
  }
  SECTION("with bytes queued, the flush finds EPIPE") {
    f.script->writes = {write_step::block(), write_step::error(EPIPE)};
    f.send_bytes("abc");
    f.ready(false, false, true);
    CHECK(f.log().size() == 2);
    CHECK(is_errno(f.proto->lost_reason, EPIPE));
  }
  SECTION("with bytes queued that still do not go: lost EPIPE") {
    f.script->block_writes();
    f.script->write_default = write_step::block();
    f.send_bytes("abc");
    f.ready(false, false, true);
    CHECK(f.log().size() == 2);
    CHECK(is_errno(f.proto->lost_reason, EPIPE));
  }
  CHECK(f.script->reads_done == 0);
  ended(f);
}

TEST_CASE("write pipe: write_eof closes it once drained", "[stream_core]") {
  core_fixture f;
  f.start(stream_direction::write_only);
  f.script->block_writes();
  f.send_bytes("abc");
  f.tell(write_eof{});
  CHECK(f.log() == events{"connected"});
  f.ready(false, true);
  CHECK(f.script->wire == "abc");
  CHECK(f.log() == events{"connected", "lost"});
  CHECK(f.script->shutdowns == 0); // a pipe has no half-close
  ended(f);
}

// -- reads follow writes -----------------------------------------------------

TEST_CASE("reads_follow_writes: no reading while writes are paused",
          "[stream_core]") {
  core_fixture f;
  f.settings.reads_follow_writes = true;
  f.start();
  REQUIRE(f.ask<write_buffer_limits>(limits(4))->value);
  f.script->block_writes();
  f.send_bytes("0123456789");
  CHECK(f.log() == events{"connected", "pause"});
  f.script->reads = {read_step::data("in")};
  f.ready(true);
  CHECK(f.script->reads_done == 0);
  CHECK((f.script->wanted & fd_read) == 0);
  f.ready(false, true);
  CHECK(f.script->wire == "0123456789");
  CHECK(f.log() == events{"connected", "pause", "resume", "data:in"});
  f.tell(shardwire::close{});
  ended(f);
}

// -- odd starts ---------------------------------------------------------------

TEST_CASE("a protocol factory that throws: the error is reported, no lost",
          "[stream_core]") {
  core_fixture f;
  f.factory = [](shard&) -> protocol_actor {
    throw std::runtime_error("no protocol today");
  };
  f.start();
  CHECK(f.connect_calls == 1);
  CHECK(is(f.connect_error, sw_errc::factory_failed));
  CHECK(f.log().empty());
  CHECK(f.script->stops == 1);
  CHECK(f.script->violations.empty());
  CHECK(f.h.live_actors() == 0);
}

TEST_CASE("close before connected was acknowledged: lost, and the connect "
          "callback still gets the connection (asyncio)",
          "[stream_core]") {
  core_fixture f;
  f.proto->hold_connected = true;
  f.start();
  // Only the protocol has the handle before the acknowledgement: a close
  // now is its connection_made closing, and asyncio's create_connection
  // returns the (closing) transport then.
  f.tell(shardwire::close{});
  CHECK(f.log() == events{"connected", "lost"});
  CHECK(f.connect_calls == 1);
  CHECK(f.connect_ok);
  f.proto->ack_connected(); // too late: nobody is listening
  f.h.run();
  CHECK(f.script->reads_done == 0);
  ended(f);
}

namespace {

/// A regular file of `n` patterned bytes, unlinked (gone with its fd).
struct scratch_file {
  explicit scratch_file(size_t n) {
    char path[] = "/tmp/shardwire-core-file-XXXXXX";
    fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::unlink(path);
    for (size_t i = 0; i < n; ++i)
      content.push_back(static_cast<char>('a' + i % 23));
    REQUIRE(::write(fd, content.data(), n) == static_cast<ssize_t>(n));
  }
  ~scratch_file() { ::close(fd); }
  int fd = -1;
  std::string content;
};

} // namespace

TEST_CASE("send_file without sendfile in the backend: the core reads the "
          "file in chunks after the queued bytes, writes wait, close waits",
          "[stream_core]") {
  core_fixture f;
  f.start();
  scratch_file file{200000}; // several 64 KiB chunks
  f.script->block_writes();
  f.send_bytes("head:"); // queued: the file goes after it
  auto sent = f.ask<uint64_t>(send_file{file.fd, 7, 0});
  CHECK_FALSE(sent->done); // waits for the queue, then for the backend
  auto w = f.ask<caf::unit_t>(shardwire::write{buffer::copy_of("x")});
  REQUIRE(w->done);
  CHECK(is(w->err, sw_errc::not_supported));
  f.tell(shardwire::close{}); // waits for the file too
  CHECK(f.log() == events{"connected"});
  // Partial writes all the way: the rest of each chunk waits in the queue.
  f.script->write_default = write_step::take(10000);
  while (!sent->done && f.script->writes_done < 1000)
    f.ready(false, true);
  REQUIRE(sent->done);
  REQUIRE(sent->value);
  CHECK(*sent->value == file.content.size() - 7);
  f.h.run();
  CHECK(f.script->wire == "head:" + file.content.substr(7));
  CHECK(f.log() == events{"connected", "lost"});
  ended(f);
}

TEST_CASE("empty writes never reach the backend", "[stream_core]") {
  core_fixture f;
  f.start();
  f.send_bytes("");
  f.tell(writelines{{buffer{}, buffer{}}});
  f.tell(writelines{});
  CHECK(f.script->writes_done == 0);
  f.tell(shardwire::close{});
  ended(f);
}

// -- bugs these tests found in the core (fixed) ------------------------------

TEST_CASE("an interest change failing right after a read: no data after "
          "lost, and the transport is finalized",
          "[stream_core]") {
  // on_io_ready: on_readable() returned `data`, then sync_interest() ->
  // want() gave an errno -> fatal() -> finish(): `lost` is sent and the
  // actor quits. The handler used to tail-send the data after `lost` and
  // return without finalize_if_quit(), leaving the quit actor alive with
  // its backend never stopped.
  core_fixture f;
  f.proto->quit_on_lost = false; // so that the late data shows in the log
  f.script->fail_on = backend_script::op_want;
  f.script->fail_at = 1; // 0: after `connected`; 1: after the first read
  f.script->reads = {read_step::data("x")};
  f.script->readable = true;
  f.start();
  INFO("calls: " << Catch::Detail::stringify(f.script->calls));
  CHECK(f.script->count("want:r--:errno") == 1);
  CHECK(is_errno(f.proto->lost_reason, ECONNRESET));
  check_vocabulary(f.proto->own); // lost last
  CHECK(f.script->stops == 1);
  CHECK(f.h.live_actors(true) == 0);
}

TEST_CASE("writelines never hands the backend an empty part",
          "[stream_core]") {
  // The backend contract (stream_backend.hpp): write() gets parts "none
  // empty". enqueue_write's immediate write used to pass the message's
  // parts as they were.
  core_fixture f;
  f.start();
  f.tell(writelines{{buffer::copy_of("a"), buffer{}, buffer::copy_of("b")}});
  CHECK(f.script->wire == "ab");
  CHECK(f.script->violations.empty());
  f.tell(shardwire::close{});
}

// -- an error at every step ---------------------------------------------------

namespace {

/// A fixed conversation: reads, a partial write, gathered writes, eof kept
/// half-open, write_eof, close. Every step tolerates a transport that is
/// already gone.
void half_open_conversation(core_fixture& f) {
  f.proto->eof_reply = true;
  f.script->reads = {read_step::data("r1"), read_step::data("r2")};
  f.script->readable = true;
  f.start();
  f.script->writes = {write_step::take(3)};
  f.send_bytes("w1-0123456789");
  f.ready(false, true);
  f.tell(writelines{
      {buffer::copy_of("a"), buffer::copy_of("b"), buffer::copy_of("c")}});
  f.ready(false, true);
  f.script->reads = {read_step::data("r3"), read_step::end()};
  f.ready(true);
  f.send_bytes("tail");
  f.tell(write_eof{});
  f.tell(shardwire::close{});
}

/// Another: read credit running out and coming back, the write watermarks
/// crossed both ways, EOF met while reading is paused, eof answered false.
void flow_control_conversation(core_fixture& f) {
  auto w = read_weight(transport_core::min_read_size);
  f.settings.read_high_water = 2 * w;
  f.settings.read_low_water = w;
  f.proto->hold_data = true;
  for (int i = 0; i < 5; ++i)
    f.script->reads.push_back(read_step::data("c" + std::to_string(i)));
  f.script->readable = true;
  f.start();
  f.tell(limits(4));
  f.script->writes = {write_step::take(2)};
  f.send_bytes("0123456789"); // 8 queued: pause
  f.proto->release_data();    // two more reads, then would_block
  f.h.run();
  f.ready(false, true); // drained: resume
  f.proto->hold_data = false;
  f.proto->release_data();
  f.h.run();
  f.tell(pause_reading{});
  f.script->reads = {read_step::data("last"), read_step::end()};
  f.ready(true);
  f.tell(resume_reading{});
}

using conversation_fn = void (*)(core_fixture&);

/// Runs `conv` once cleanly, counting the backend calls of the kinds in
/// `kinds`, then once per call with ECONNRESET injected at that call.
void error_at_every_step(conversation_fn conv, uint8_t kinds,
                         const events& clean_events,
                         const std::string& clean_wire) {
  long steps = 0;
  {
    core_fixture clean;
    clean.script->fail_on = kinds;
    conv(clean);
    CHECK(clean.log() == clean_events);
    CHECK(clean.script->wire == clean_wire);
    ended(clean);
    steps = clean.script->steps;
  }
  REQUIRE(steps > 5);
  for (long k = 0; k < steps; ++k) {
    core_fixture f;
    f.proto->quit_on_lost = false; // a message after `lost` would show
    f.script->fail_on = kinds;
    f.script->fail_at = k;
    f.script->fail_errno = ECONNRESET;
    conv(f);
    INFO("error injected at step " << k << " of " << steps);
    ended(f);
    CHECK(is_errno(f.proto->lost_reason, ECONNRESET));
    CHECK(f.script->wire == clean_wire.substr(0, f.script->wire.size()));
  }
}

const events half_open_events{"connected", "data:r1", "data:r2",
                              "data:r3",   "eof",     "lost"};
const std::string half_open_wire = "w1-0123456789abctail";
const events flow_control_events{"connected", "data:c0", "data:c1", "data:c2",
                                 "pause",     "data:c3", "data:c4", "resume",
                                 "data:last", "eof",     "lost"};
const std::string flow_control_wire = "0123456789";

} // namespace

TEST_CASE("an error from read or write at every step ends the transport "
          "once, last",
          "[stream_core]") {
  uint8_t io = backend_script::op_read | backend_script::op_write;
  SECTION("half-open conversation") {
    error_at_every_step(half_open_conversation, io, half_open_events,
                        half_open_wire);
  }
  SECTION("flow-control conversation") {
    error_at_every_step(flow_control_conversation, io, flow_control_events,
                        flow_control_wire);
  }
}

TEST_CASE("an error from want() at every step ends the transport once, "
          "last",
          "[stream_core]") {
  uint8_t kinds = backend_script::op_want;
  SECTION("half-open conversation") {
    error_at_every_step(half_open_conversation, kinds, half_open_events,
                        half_open_wire);
  }
  SECTION("flow-control conversation") {
    error_at_every_step(flow_control_conversation, kinds, flow_control_events,
                        flow_control_wire);
  }
}

// -- buffered reading (lend_buffer / buffer_filled) ---------------------------

namespace {

/// A buffered protocol (actor style) that lends `lend_size` bytes of its own
/// arena: logs "connected", "filled:<bytes>", "data:<bytes>", "eof", "lost"
/// or "lost:<reason>", and whether each filled lease was its own memory.
struct lender {
  std::shared_ptr<std::vector<std::byte>> arena =
      std::make_shared<std::vector<std::byte>>(64);
  size_t lend_size = 4;
  bool lend_on_connected = true;
  bool lend_again = true;
  // Lend no memory ahead: the transport asks (buffer_filled with nbytes 0)
  // right before each read (read_lease::on_demand).
  bool on_demand = false;
  events log;
  int foreign_leases = 0; // filled leases that were not the arena
  buffered_protocol_actor self;
  transport_actor transport;

  read_lease lease() const {
    return read_lease{arena->data(), lend_size, arena};
  }
  read_lease next_lease() const {
    return on_demand ? read_lease{nullptr, 0, arena, true} : lease();
  }
};

using lender_ptr = std::shared_ptr<lender>;

buffered_protocol_actor::behavior_type
lender_impl(buffered_protocol_actor::pointer self, lender_ptr st) {
  return {
      [self, st](connected& msg) {
        st->transport = msg.transport;
        st->log.push_back("connected");
        if (st->lend_on_connected)
          self->send(st->transport, lend_buffer{st->next_lease()});
      },
      [self, st](buffer_filled& msg) {
        if (msg.nbytes == 0) {
          // The transport asks for memory: only for an on-demand lease.
          st->log.push_back(msg.lease.on_demand ? "ask" : "ask?");
          self->send(st->transport, lend_buffer{st->lease()});
          return;
        }
        if (msg.lease.data != st->arena->data()) ++st->foreign_leases;
        st->log.push_back(
            "filled:" +
            std::string{reinterpret_cast<const char*>(msg.lease.data),
                        static_cast<size_t>(msg.nbytes)});
        if (st->lend_again)
          self->send(st->transport,
                     lend_buffer{st->on_demand ? st->next_lease()
                                               : std::move(msg.lease)});
      },
      [st](data& msg) { st->log.push_back("data:" + msg.bytes.str()); },
      [st](eof) {
        st->log.push_back("eof");
        return false;
      },
      [st](shardwire::pause) { st->log.push_back("pause"); },
      [st](shardwire::resume) { st->log.push_back("resume"); },
      [self, st](lost& msg) {
        st->log.push_back(msg.reason ? "lost:" + describe(msg.reason)
                                     : "lost");
        self->quit();
      },
  };
}

protocol_factory lending(lender_ptr st) {
  return [st](shard& s) -> protocol_actor {
    st->self = spawn_fun_on(s, lender_impl, st);
    return st->self;
  };
}

/// The checks every buffered case ends with.
void lender_ended(core_fixture& f, const lender_ptr& st) {
  f.h.run();
  INFO("events: " << Catch::Detail::stringify(st->log));
  REQUIRE_FALSE(st->log.empty());
  CHECK(st->log.back().rfind("lost", 0) == 0);
  CHECK(std::count_if(st->log.begin(), st->log.end(), [](auto& e) {
          return e.rfind("lost", 0) == 0;
        }) == 1);
  CHECK(f.script->stops == 1);
  CHECK(f.script->violations.empty());
  st->self = nullptr;
  st->transport = nullptr;
  CHECK(f.h.live_actors() == 0);
}

} // namespace

TEST_CASE("buffered: each read lands in the lent memory, one lease at a time",
          "[stream_core][buffered]") {
  core_fixture f;
  auto st = std::make_shared<lender>();
  f.factory = lending(st);
  f.start();
  f.script->reads = {read_step::data("abcdefghij"), read_step::end()};
  f.ready(true);
  // The lease is 4 bytes: three reads, each straight into the arena (the
  // backend's copy is the only one), each after the lease came back.
  CHECK(st->log == events{"connected", "filled:abcd", "filled:efgh",
                          "filled:ij", "eof", "lost"});
  CHECK(st->foreign_leases == 0);
  CHECK(f.script->last_read_max == 4);
  CHECK(f.script->last_read_at == st->arena->data());
  lender_ended(f, st);
}

TEST_CASE("buffered: an on-demand lease is asked for right before each read",
          "[stream_core][buffered]") {
  core_fixture f;
  auto st = std::make_shared<lender>();
  st->on_demand = true;
  f.factory = lending(st);
  f.start();
  // Nothing to read yet: no ask, reading stays on (it has a lease to ask
  // with), so the first readable event is served.
  f.h.run();
  CHECK(st->log == events{"connected"});
  CHECK(f.status().reading);
  f.script->reads = {read_step::data("abcdefghij"), read_step::end()};
  f.ready(true);
  // asyncio's order: get_buffer on each readable event, the last one (the
  // end of the stream) included, so one buffer is never filled.
  CHECK(st->log == events{"connected", "ask", "filled:abcd", "ask",
                          "filled:efgh", "ask", "filled:ij", "ask", "eof",
                          "lost"});
  CHECK(st->foreign_leases == 0);
  CHECK(f.script->last_read_at == st->arena->data());
  lender_ended(f, st);
}

TEST_CASE("buffered: no read while no buffer is lent", "[stream_core][buffered]") {
  core_fixture f;
  auto st = std::make_shared<lender>();
  st->lend_again = false;
  f.factory = lending(st);
  f.start();
  f.script->reads = {read_step::data("abcdefgh")};
  f.ready(true);
  CHECK(st->log == events{"connected", "filled:abcd"});
  // The rest waits in the "kernel" until the protocol lends again.
  auto reads = f.script->reads_done;
  f.ready(true);
  CHECK(f.script->reads_done == reads);
  CHECK(f.status().reading); // reading is on; it waits for memory
  caf::anon_send(f.transport, lend_buffer{st->lease()});
  f.h.run();
  CHECK(st->log.back() == "filled:efgh");
  f.tell(shardwire::close{});
  lender_ended(f, st);
}

TEST_CASE("buffered: an empty lease is fatal, as asyncio's empty get_buffer",
          "[stream_core][buffered]") {
  core_fixture f;
  auto st = std::make_shared<lender>();
  st->lend_size = 0;
  f.factory = lending(st);
  f.start();
  f.script->reads = {read_step::data("never read")};
  f.ready(true);
  REQUIRE(st->log.size() == 2);
  CHECK(st->log.back().rfind("lost:", 0) == 0);
  CHECK(f.script->reads_done == 0);
  lender_ended(f, st);
}

TEST_CASE("buffered: pause_reading holds buffered reads as it holds data",
          "[stream_core][buffered]") {
  core_fixture f;
  auto st = std::make_shared<lender>();
  f.factory = lending(st);
  f.start();
  f.tell(pause_reading{});
  f.script->reads = {read_step::data("abc")};
  f.ready(true);
  CHECK(st->log == events{"connected"});
  f.tell(resume_reading{});
  CHECK(st->log == events{"connected", "filled:abc"});
  f.tell(shardwire::close{});
  lender_ended(f, st);
}

TEST_CASE("buffered: set_protocol switches between lent buffers and data in "
          "both directions",
          "[stream_core][buffered]") {
  core_fixture f;
  auto st = std::make_shared<lender>();
  f.factory = lending(st);
  f.start();
  f.script->reads = {read_step::data("abcd")};
  f.ready(true);
  CHECK(st->log == events{"connected", "filled:abcd"});
  // Buffered -> plain: the lease goes back unused, the next read is `data`.
  auto b = f.another("B:");
  f.tell(set_protocol{b->self});
  f.script->reads = {read_step::data("plain")};
  f.ready(true);
  CHECK(b->own == events{"data:plain"});
  // Plain -> buffered: `data` until the new protocol lends.
  auto st2 = std::make_shared<lender>();
  st2->self = spawn_fun_on(f.h.home(), lender_impl, st2);
  st2->transport = f.transport;
  f.tell(set_protocol{st2->self});
  f.script->reads = {read_step::data("xy")};
  f.ready(true);
  CHECK(st2->log == events{"data:xy"});
  caf::anon_send(f.transport, lend_buffer{st2->lease()});
  f.script->reads = {read_step::data("zw"), read_step::end()};
  f.ready(true);
  CHECK(st2->log == events{"data:xy", "filled:zw", "eof", "lost"});
  CHECK(st->log == events{"connected", "filled:abcd"}); // nothing after
  // The first two protocols are no longer the transport's business.
  caf::anon_send_exit(st->self, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(b->self, caf::exit_reason::user_shutdown);
  f.h.run();
  st->self = nullptr;
  st->transport = nullptr;
  st2->self = nullptr;
  st2->transport = nullptr;
  CHECK(f.script->stops == 1);
  CHECK(f.script->violations.empty());
}

TEST_CASE("buffered: a refused set_protocol keeps the lease and the mode",
          "[stream_core][buffered]") {
  core_fixture f;
  auto st = std::make_shared<lender>();
  f.factory = lending(st);
  f.start();
  f.tell(set_protocol{protocol_actor{}}); // refused with a warning
  f.script->reads = {read_step::data("abc")};
  f.ready(true);
  CHECK(st->log == events{"connected", "filled:abc"});
  f.tell(shardwire::close{});
  lender_ended(f, st);
}
