// The message vocabulary (actors/messages.hpp), errors (actors/errors.hpp)
// and the callback-style adapter (actors/protocol.hpp).
#include "actors/messages.hpp"

#include "actors/errors.hpp"
#include "actors/protocol.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/log_capture.hpp"
#include "transports/socket.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/message.hpp>
#include <caf/send.hpp>

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <type_traits>

using namespace shardwire;
using namespace shardwire::test;

namespace {

template <class... Ts>
constexpr bool all_copyable() {
  return ((std::is_copy_constructible_v<Ts> && std::is_copy_assignable_v<Ts> &&
           std::is_default_constructible_v<Ts>)&&...);
}

static_assert(
    all_copyable<
        connected, data, eof, shardwire::pause, resume, lost, shardwire::write,
        writelines, write_eof, shardwire::close, shardwire::abort,
        pause_reading, resume_reading, set_write_buffer_limits,
        write_buffer_limits, get_write_buffer_size, get_write_buffer_limits,
        get_extra_info, transport_info, get_status, transport_status,
        set_protocol, get_sockets, start_serving, stop_serving, is_serving,
        close_clients, abort_clients, read_credit_returned, endpoint, buffer>(),
    "every message type is a copyable value");

/// Serializes `x` with CAF's binary serializer and reads it back.
template <class T>
T round_trip(caf::actor_system& sys, const T& x) {
  std::vector<char> bytes;
  caf::binary_serializer sink{sys, bytes};
  T copy = x;
  auto err = sink(copy);
  REQUIRE_FALSE(err);
  T out;
  caf::binary_deserializer source{sys, bytes};
  err = source(out);
  REQUIRE_FALSE(err);
  return out;
}

/// The same as an element of a caf::message: needs the type registered by
/// shardwire::config (the way a message crosses the middleman).
template <class T>
T message_round_trip(caf::actor_system& sys, const T& x) {
  auto msg = caf::make_message(x);
  std::vector<char> bytes;
  caf::binary_serializer sink{sys, bytes};
  auto err = sink(msg);
  REQUIRE_FALSE(err);
  caf::message out;
  caf::binary_deserializer source{sys, bytes};
  err = source(out);
  REQUIRE_FALSE(err);
  REQUIRE(out.match_elements<T>());
  return out.get_as<T>(0);
}

/// Both round trips, checked by `same`.
template <class T, class F>
void check_round_trip(caf::actor_system& sys, const T& x, F same) {
  CHECK(same(round_trip(sys, x), x));
  CHECK(same(message_round_trip(sys, x), x));
}

template <class T>
void check_empty_round_trip(caf::actor_system& sys) {
  check_round_trip(sys, T{}, [](const T&, const T&) { return true; });
}

bool same_info(const transport_info& x, const transport_info& y) {
  return x.kind == y.kind && x.peername == y.peername &&
         x.sockname == y.sockname && x.fd == y.fd && x.shard == y.shard;
}

bool same_error(const caf::error& x, const caf::error& y) {
  return x.code() == y.code() && x.category() == y.category() &&
         describe(x) == describe(y);
}

} // namespace

TEST_CASE("every message survives a CAF binary serialization round trip") {
  runtime_fixture fx;
  auto& sys = fx.rt->system();
  // A live actor, so handles have something to point to.
  auto dummy = sys.spawn(
      [](caf::event_based_actor*) -> caf::behavior { return {[](int) {}}; });
  auto t = caf::actor_cast<transport_actor>(dummy);
  auto p = caf::actor_cast<protocol_actor>(dummy);

  transport_info info;
  info.kind = "tcp";
  info.peername = endpoint{endpoint::kind::ipv4, "127.0.0.1", 8888, {}};
  info.sockname = endpoint{endpoint::kind::ipv6, "::1", 4242, {}};
  info.fd = 17;
  info.shard = 3;
  check_round_trip(sys, info, same_info);
  check_round_trip(sys, endpoint{endpoint::kind::unix_path, {}, 0, "/tmp/s"},
                   [](const auto& x, const auto& y) { return x == y; });
  check_round_trip(sys, connected{t, info}, [](const auto& x, const auto& y) {
    return x.transport == y.transport && same_info(x.info, y.info);
  });
  check_round_trip(sys, connected{}, [](const auto& x, const auto& y) {
    return !x.transport && !y.transport;
  });
  check_round_trip(
      sys, data{buffer::copy_of("payload"), {}},
      [](const auto& x, const auto& y) { return x.bytes == y.bytes; });
  check_round_trip(sys, lost{},
                   [](const auto& x, const auto&) { return !x.reason; });
  check_round_trip(sys, lost{make_errno_error(ECONNRESET, "read")},
                   [](const auto& x, const auto& y) {
                     return is_errno(x.reason, ECONNRESET) &&
                            same_error(x.reason, y.reason);
                   });
  check_round_trip(sys, lost{make_error(sw_errc::protocol_failed, "ctx")},
                   [](const auto& x, const auto& y) {
                     return is(x.reason, sw_errc::protocol_failed) &&
                            same_error(x.reason, y.reason);
                   });
  check_round_trip(
      sys, shardwire::write{buffer::copy_of("w")},
      [](const auto& x, const auto& y) { return x.bytes == y.bytes; });
  check_round_trip(
      sys, writelines{{buffer::copy_of("a"), buffer{}, buffer::copy_of("bc")}},
      [](const auto& x, const auto& y) { return x.parts == y.parts; });
  check_round_trip(sys, set_write_buffer_limits{uint64_t{100}, caf::none},
                   [](const auto& x, const auto& y) {
                     return x.high == y.high && x.low == y.low && x.high &&
                            *x.high == 100 && !x.low;
                   });
  check_round_trip(sys, set_write_buffer_limits{caf::none, uint64_t{7}},
                   [](const auto& x, const auto& y) {
                     return x.high == y.high && x.low == y.low && !x.high;
                   });
  check_round_trip(sys, write_buffer_limits{16384, 65536},
                   [](const auto& x, const auto& y) { return x == y; });
  check_round_trip(sys, transport_status{true, false, 12345},
                   [](const auto& x, const auto& y) {
                     return x.closing == y.closing && x.reading == y.reading &&
                            x.write_buffer_size == y.write_buffer_size &&
                            x.write_buffer_size == 12345;
                   });
  check_round_trip(sys, set_protocol{p}, [](const auto& x, const auto& y) {
    return x.protocol == y.protocol && x.protocol;
  });
  check_empty_round_trip<eof>(sys);
  check_empty_round_trip<shardwire::pause>(sys);
  check_empty_round_trip<resume>(sys);
  check_empty_round_trip<write_eof>(sys);
  check_empty_round_trip<shardwire::close>(sys);
  check_empty_round_trip<shardwire::abort>(sys);
  check_empty_round_trip<pause_reading>(sys);
  check_empty_round_trip<resume_reading>(sys);
  check_empty_round_trip<get_write_buffer_size>(sys);
  check_empty_round_trip<get_write_buffer_limits>(sys);
  check_empty_round_trip<get_extra_info>(sys);
  check_empty_round_trip<get_status>(sys);
  check_empty_round_trip<read_credit_returned>(sys);
  check_empty_round_trip<get_sockets>(sys);
  check_empty_round_trip<start_serving>(sys);
  check_empty_round_trip<stop_serving>(sys);
  check_empty_round_trip<is_serving>(sys);
  check_empty_round_trip<close_clients>(sys);
  check_empty_round_trip<abort_clients>(sys);
  caf::anon_send_exit(dummy, caf::exit_reason::user_shutdown);
}

TEST_CASE("the read ticket of a data message is not copied") {
  auto credit = caf::make_counted<read_credit>(caf::actor_addr{}, 1000, 100);
  credit->take(300);
  {
    data d{buffer::copy_of("abc"), read_ticket{credit, 300}};
    CHECK(d.ticket.bytes() == 300);
    data copy = d;
    CHECK(copy.ticket.bytes() == 0);
    CHECK(copy.bytes.shares_storage_with(d.bytes));
    data assigned;
    assigned = d;
    CHECK(assigned.ticket.bytes() == 0);
    {
      // Copies going away return nothing.
      data tmp = d;
    }
    CHECK(credit->outstanding() == 300);
    data moved = std::move(d);
    CHECK(moved.ticket.bytes() == 300);
    CHECK(d.ticket.bytes() == 0);
    CHECK(credit->outstanding() == 300);
    moved.ticket.reset(); // returned early
    CHECK(credit->outstanding() == 0);
    CHECK(moved.ticket.bytes() == 0);
  }
  CHECK(credit->outstanding() == 0); // returned once, not twice
  credit->take(50);
  {
    data d{buffer::copy_of("x"), read_ticket{credit, 50}};
    runtime_fixture fx;
    auto out = round_trip(fx.rt->system(), d);
    CHECK(out.ticket.bytes() == 0); // not serialized
    CHECK(out.bytes.view() == "x");
  }
  CHECK(credit->outstanding() == 0);
}

TEST_CASE("read credit asks the transport to wait above high") {
  auto credit = caf::make_counted<read_credit>(caf::actor_addr{}, 1000, 100);
  credit->take(1000);
  CHECK_FALSE(credit->must_wait()); // exactly high: keep reading
  credit->take(1);
  CHECK(credit->must_wait());
  credit->give(901);
  CHECK(credit->outstanding() == 100);
  CHECK_FALSE(credit->must_wait());
}

TEST_CASE("errors: errno and shardwire categories") {
  auto e = make_errno_error(ECONNRESET, "read");
  CHECK(e);
  CHECK(is_errno(e, ECONNRESET));
  CHECK_FALSE(is_errno(e, EPIPE));
  CHECK_FALSE(is(e, sw_errc::closed));
  CHECK(describe(e) ==
        std::string{"errno: "} + std::strerror(ECONNRESET) + " (read)");
  auto plain = make_errno_error(ECONNREFUSED);
  CHECK(is_errno(plain, ECONNREFUSED));
  CHECK(describe(plain) ==
        std::string{"errno: "} + std::strerror(ECONNREFUSED));

  auto w = make_error(sw_errc::write_after_eof);
  CHECK(is(w, sw_errc::write_after_eof));
  CHECK_FALSE(is(w, sw_errc::closed));
  CHECK_FALSE(is_errno(w, static_cast<int>(sw_errc::write_after_eof)));
  CHECK(describe(w) == "shardwire: write_after_eof");
  CHECK(describe(make_error(sw_errc::timeout, "connect 10.0.0.1")) ==
        "shardwire: timeout (connect 10.0.0.1)");
  CHECK(describe(caf::error{}) == "none");
  CHECK(describe(caf::make_error(caf::sec::request_timeout))
            .rfind("system: ", 0) == 0);
  for (auto x :
       {sw_errc::write_after_eof, sw_errc::protocol_failed,
        sw_errc::unknown_host, sw_errc::timeout, sw_errc::invalid_argument,
        sw_errc::shutdown, sw_errc::closed, sw_errc::factory_failed})
    CHECK(to_string(x) != "unknown");
}

// -- the callback adapter
// ----------------------------------------------------------

namespace {

enum class read_end { eof, error, timeout };

std::string read_all(int fd, read_end& how) {
  auto until = std::chrono::steady_clock::now() + deadline;
  std::string out;
  char buf[65536];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 ||
        ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      how = read_end::timeout;
      return out;
    }
    auto got = ::recv(fd, buf, sizeof(buf), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      how = got == 0 ? read_end::eof : read_end::error;
      return out;
    }
    out.append(buf, static_cast<size_t>(got));
  }
}

void make_pair(int& a, int& b) {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  a = sv[0];
  b = sv[1];
}

template <class Handle>
bool await_down(runtime& rt, const Handle& hdl) {
  caf::scoped_actor self{rt.system()};
  self->monitor(hdl);
  bool down = false;
  self->receive([&](caf::down_msg&) { down = true; },
                caf::after(deadline) >> [] {});
  return down;
}

/// Logs every callback; behaviour switches per test.
class logging_protocol : public protocol {
public:
  struct options {
    bool throw_in_made = false;
    bool throw_in_data = false;
    bool keep_open = false;
    bool reply_on_data = false;
    bool throw_in_eof = false;
    bool throw_in_flow = false; // pause_writing and resume_writing
    bool throw_in_lost = false;
    // connection_lost logs "lost:closing" ("lost:open") when
    // transport().is_closing() is (is not) true there.
    bool log_closing_in_lost = false;
    // data "flood": write this many bytes at once (with a high water mark
    // of 1, so the transport pauses).
    size_t flood = 0;
  };

  logging_protocol(event_log_ptr log, options opts)
      : log_(std::move(log)), opts_(opts) {}

  void connection_made(transport_ref& t) override {
    log_->add("made");
    if (opts_.throw_in_made) {
      t.write("hi");
      throw std::runtime_error("connection_made failed");
    }
  }

  void data_received(const buffer& bytes) override {
    log_->add("data:" + bytes.str());
    if (opts_.throw_in_data) throw std::runtime_error("bad data");
    if (opts_.flood > 0 && bytes.view() == "flood") {
      transport().set_write_buffer_limits(uint64_t{1}, uint64_t{0});
      transport().write(std::string(opts_.flood, 'f'));
      return;
    }
    if (opts_.reply_on_data) transport().write("pong");
  }

  void pause_writing() override {
    log_->add("pause");
    if (opts_.throw_in_flow) throw std::runtime_error("pause failed");
  }

  void resume_writing() override {
    log_->add("resume");
    if (opts_.throw_in_flow) throw std::runtime_error("resume failed");
  }

  bool eof_received() override {
    log_->add(transport().is_closing() ? "eof:closing" : "eof");
    if (opts_.throw_in_eof) throw std::runtime_error("bad eof");
    if (opts_.keep_open) transport().write("bye");
    return opts_.keep_open;
  }

  void connection_lost(const caf::error& reason) override {
    if (opts_.throw_in_lost) {
      log_->add("lost:throwing");
      throw std::runtime_error("lost failed");
    }
    if (opts_.log_closing_in_lost) {
      log_->add(transport().is_closing() ? "lost:closing" : "lost:open");
      return;
    }
    if (!reason)
      log_->add("lost");
    else if (is(reason, sw_errc::protocol_failed))
      log_->add("lost:protocol_failed:" + describe(reason));
    else
      log_->add("lost:" + describe(reason));
  }

private:
  event_log_ptr log_;
  options opts_;
};

} // namespace

// C20: asyncio's write('str') raises TypeError. transport_ref has no text
// type: `write` takes a buffer or bytes as std::string_view, and a number does
// not compile. (A requires-expression outside a template may not contain an
// invalid expression, hence the variable templates.)
template <class T>
constexpr bool writes_int = requires(T& t) {
  t.write(42);
};
template <class T>
constexpr bool writes_double = requires(T& t) {
  t.write(4.2);
};
template <class T>
constexpr bool writes_char = requires(T& t) {
  t.write('x');
};
template <class T>
constexpr bool writes_null = requires(T& t) {
  t.write(nullptr);
};
template <class T>
constexpr bool writes_zero = requires(T& t) {
  t.write(0);
};
template <class T>
constexpr bool writes_bytes = requires(T& t, std::string_view s, buffer b,
                                       std::string str) {
  t.write(s);
  t.write(b);
  t.write(str);
  t.write("literal");
};

TEST_CASE("transport_ref::write takes bytes, not numbers (C20)") {
  // The positive check: the same kind of expression does compile for bytes,
  // so the negative ones can fail.
  static_assert(writes_bytes<transport_ref>);
  static_assert(!writes_int<transport_ref>);
  static_assert(!writes_double<transport_ref>);
  static_assert(!writes_char<transport_ref>);
  // A null pointer constant would convert to std::string_view through
  // const char* (a null read at run time): write(nullptr_t) is deleted.
  static_assert(!writes_null<transport_ref>);
  static_assert(!writes_zero<transport_ref>);
  // The message itself neither: write{42} does not make a write.
  static_assert(std::is_constructible_v<shardwire::write, buffer>);
  static_assert(!std::is_constructible_v<shardwire::write, int>);
  SUCCEED("checked at compile time");
}

TEST_CASE("callback adapter: data_received throwing is fatal (C29)") {
  runtime_fixture fx;
  log_capture cap{log::level::warning}; // after the runtime set its level
  int a, b;
  make_pair(a, b);
  auto log = std::make_shared<event_log>();
  logging_protocol::options opts;
  opts.throw_in_data = true;
  auto conn = connect_accepted_socket(
      *fx.rt, a, make_protocol<logging_protocol>(log, opts));
  REQUIRE(conn);
  caf::scoped_actor self{fx.rt->system()};
  self->monitor(conn->transport);
  REQUIRE(raw_send_all(b, "x"));
  REQUIRE(log->wait_for_event("lost", true));
  // The transport was aborted: it terminates and the peer sees EOF (the byte
  // was read, so closing the socket pair is a clean end, as asyncio's FIN).
  bool down = false;
  self->receive([&](caf::down_msg&) { down = true; },
                caf::after(deadline) >> [] {});
  CHECK(down);
  read_end how;
  CHECK(read_all(b, how).empty());
  CHECK(how == read_end::eof);
  CHECK(await_down(*fx.rt, conn->protocol));
  auto evs = log->events();
  REQUIRE(evs.size() == 3);
  CHECK(evs[0] == "made");
  CHECK(evs[1] == "data:x");
  CHECK(evs[2].rfind("lost:protocol_failed:", 0) == 0);
  CHECK(evs[2].find("data_received") != std::string::npos);
  // Reported as asyncio does, once, with the exception's text.
  REQUIRE(cap.wait_for("Fatal error: protocol.data_received() call failed"));
  CHECK(cap.lines() ==
        std::vector<std::string>{
            "ERROR Fatal error: protocol.data_received() call failed: "
            "bad data"});
  raw_close(b);
}

TEST_CASE("callback adapter: connection_made throwing keeps the connection "
          "(C31)") {
  runtime_fixture fx;
  log_capture cap{log::level::warning}; // after the runtime set its level
  int a, b;
  make_pair(a, b);
  auto log = std::make_shared<event_log>();
  logging_protocol::options opts;
  opts.throw_in_made = true;
  opts.reply_on_data = true;
  auto conn = connect_accepted_socket(
      *fx.rt, a, make_protocol<logging_protocol>(log, opts));
  REQUIRE(conn);
  CHECK(raw_read_exact(b, 2) == "hi"); // its write before the throw went out
  REQUIRE(raw_send_all(b, "ping"));
  CHECK(raw_read_exact(b, 4) == "pong"); // reading works
  auto st = ask<transport_status>(*fx.rt, conn->transport, get_status{});
  REQUIRE(st);
  CHECK_FALSE(st->closing);
  ::shutdown(b, SHUT_WR);
  REQUIRE(log->wait_for_event("lost", true));
  read_end how;
  CHECK(read_all(b, how).empty());
  CHECK(how == read_end::eof);
  CHECK(log->events() ==
        std::vector<std::string>{"made", "data:ping", "eof", "lost"});
  // The exception was logged, once, and nothing else was.
  REQUIRE(cap.wait_for("protocol.connection_made() failed:"));
  CHECK(cap.lines() ==
        std::vector<std::string>{"ERROR protocol.connection_made() failed: "
                                 "connection_made failed"});
  raw_close(b);
}

TEST_CASE("callback adapter: eof_received returning true keeps it half-open") {
  runtime_fixture fx;
  int a, b;
  make_pair(a, b);
  auto log = std::make_shared<event_log>();
  logging_protocol::options opts;
  opts.keep_open = true;
  auto conn = connect_accepted_socket(
      *fx.rt, a, make_protocol<logging_protocol>(log, opts));
  REQUIRE(conn);
  REQUIRE(raw_send_all(b, "last words"));
  ::shutdown(b, SHUT_WR);
  // The write from inside eof_received reaches the peer; no EOF yet.
  CHECK(raw_read_exact(b, 3) == "bye");
  auto st = ask<transport_status>(*fx.rt, conn->transport, get_status{});
  REQUIRE(st);
  CHECK_FALSE(st->closing);
  caf::anon_send(conn->transport, shardwire::write{buffer::copy_of("more")});
  CHECK(raw_read_exact(b, 4) == "more");
  CHECK(log->count("lost", true) == 0);
  caf::anon_send(conn->transport, shardwire::close{});
  REQUIRE(log->wait_for_event("lost", true));
  read_end how;
  CHECK(read_all(b, how).empty());
  CHECK(how == read_end::eof);
  CHECK(log->events() ==
        std::vector<std::string>{"made", "data:last words", "eof", "lost"});
  raw_close(b);
}

TEST_CASE("callback adapter: is_closing() is false in eof_received and true "
          "in connection_lost (C5, C26)") {
  runtime_fixture fx;
  int a, b;
  make_pair(a, b);
  auto log = std::make_shared<event_log>();
  logging_protocol::options opts;
  opts.log_closing_in_lost = true;
  SECTION("half-open, then closed by a message the protocol never sees") {
    opts.keep_open = true;
    auto conn = connect_accepted_socket(
        *fx.rt, a, make_protocol<logging_protocol>(log, opts));
    REQUIRE(conn);
    REQUIRE(raw_send_all(b, "last words"));
    ::shutdown(b, SHUT_WR);
    CHECK(raw_read_exact(b, 3) == "bye");
    // The protocol did not call close(): only the adapter can mark its
    // handle closing, before connection_lost runs.
    caf::anon_send(conn->transport, shardwire::close{});
    REQUIRE(log->wait_for_event("lost", true));
    read_end how;
    CHECK(read_all(b, how).empty());
    CHECK(how == read_end::eof);
    CHECK(await_down(*fx.rt, conn->protocol));
    CHECK(log->events() == std::vector<std::string>{"made", "data:last words",
                                                    "eof", "lost:closing"});
  }
  SECTION("eof_received returning false closes") {
    auto conn = connect_accepted_socket(
        *fx.rt, a, make_protocol<logging_protocol>(log, opts));
    REQUIRE(conn);
    ::shutdown(b, SHUT_WR);
    REQUIRE(log->wait_for_event("lost", true));
    read_end how;
    CHECK(read_all(b, how).empty());
    CHECK(how == read_end::eof);
    CHECK(await_down(*fx.rt, conn->protocol));
    CHECK(log->events() ==
          std::vector<std::string>{"made", "eof", "lost:closing"});
  }
  raw_close(b);
}

TEST_CASE("callback adapter: eof_received throwing is fatal") {
  runtime_fixture fx;
  int a, b;
  make_pair(a, b);
  auto log = std::make_shared<event_log>();
  logging_protocol::options opts;
  opts.throw_in_eof = true;
  opts.keep_open = true; // would keep it half-open, had it returned
  auto conn = connect_accepted_socket(
      *fx.rt, a, make_protocol<logging_protocol>(log, opts));
  REQUIRE(conn);
  ::shutdown(b, SHUT_WR);
  REQUIRE(log->wait_for_event("lost", true));
  auto evs = log->events();
  REQUIRE(evs.size() == 3);
  CHECK(evs[1] == "eof");
  CHECK(evs[2].rfind("lost:protocol_failed:", 0) == 0);
  CHECK(evs[2].find("eof_received") != std::string::npos);
  // Aborted, not half-open: the peer sees the end, and nothing of "bye"
  // (written before the throw) is promised; the transport is gone.
  CHECK(await_down(*fx.rt, conn->transport));
  read_end how;
  read_all(b, how);
  CHECK(how != read_end::timeout);
  raw_close(b);
}

TEST_CASE("callback adapter: pause_writing and resume_writing throwing are "
          "logged, the connection carries on (C33)") {
  runtime_fixture fx;
  log_capture cap{log::level::warning}; // after the runtime set its level
  int a, b;
  make_pair(a, b);
  auto log = std::make_shared<event_log>();
  logging_protocol::options opts;
  opts.throw_in_flow = true;
  opts.reply_on_data = true;
  opts.flood = 8 << 20; // more than the socket pair holds: it pauses
  auto conn = connect_accepted_socket(
      *fx.rt, a, make_protocol<logging_protocol>(log, opts));
  REQUIRE(conn);
  REQUIRE(raw_send_all(b, "flood"));
  REQUIRE(log->wait_for_event("pause"));
  // Draining the flood lets the queue go below low: resume (which throws
  // too).
  CHECK(raw_read_exact(b, opts.flood).size() == opts.flood);
  REQUIRE(log->wait_for_event("resume"));
  // Still served: a request gets its answer.
  REQUIRE(raw_send_all(b, "ping"));
  CHECK(raw_read_exact(b, 4) == "pong");
  ::shutdown(b, SHUT_WR);
  REQUIRE(log->wait_for_event("lost", true));
  CHECK(log->events() ==
        std::vector<std::string>{"made", "data:flood", "pause", "resume",
                                 "data:ping", "eof", "lost"});
  // One line for each exception, in the order they were thrown.
  REQUIRE(cap.wait_for("protocol.resume_writing() failed:"));
  CHECK(cap.lines() ==
        std::vector<std::string>{
            "ERROR protocol.pause_writing() failed: pause failed",
            "ERROR protocol.resume_writing() failed: resume failed"});
  raw_close(b);
}

TEST_CASE("callback adapter: connection_lost throwing is logged, the "
          "protocol still ends (C32)") {
  runtime_fixture fx;
  log_capture cap{log::level::warning}; // after the runtime set its level
  int a, b;
  make_pair(a, b);
  auto log = std::make_shared<event_log>();
  logging_protocol::options opts;
  opts.throw_in_lost = true;
  auto conn = connect_accepted_socket(
      *fx.rt, a, make_protocol<logging_protocol>(log, opts));
  REQUIRE(conn);
  ::shutdown(b, SHUT_WR);
  // eof_received returned false: the socket is closed, the peer sees EOF.
  read_end how;
  CHECK(read_all(b, how).empty());
  CHECK(how == read_end::eof);
  REQUIRE(log->wait_for_event("lost:throwing"));
  CHECK(await_down(*fx.rt, conn->protocol));
  CHECK(await_down(*fx.rt, conn->transport));
  CHECK(log->events() ==
        std::vector<std::string>{"made", "eof", "lost:throwing"});
  REQUIRE(cap.wait_for("protocol.connection_lost() failed:"));
  CHECK(cap.lines() ==
        std::vector<std::string>{
            "ERROR protocol.connection_lost() failed: lost failed"});
  raw_close(b);
}

// Kept last: on failure it crashes (SIGSEGV), which would hide the cases
// after it.
TEST_CASE("errors: the predicates are false for the empty error") {
  // `lost{}` (a clean close) carries an empty error; code that asks
  // is_errno(msg.reason, ...) or is(msg.reason, ...) must get false.
  CHECK_FALSE(is_errno(caf::error{}, 0));
  CHECK_FALSE(is_errno(lost{}.reason, ECONNRESET));
  CHECK_FALSE(is(caf::error{}, sw_errc::closed));
}
