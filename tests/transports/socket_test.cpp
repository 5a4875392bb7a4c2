// Adopting connected sockets: connect_accepted_socket (asyncio's
// create_connection(sock=...) / connect_accepted_socket, example 6.5).
#include "transports/socket.hpp"

#include "actors/buffered_protocol.hpp"

#include "tests/support/fixtures.hpp"
#include "tests/transports/helpers.hpp"

#include <algorithm>
#include <fcntl.h>

using namespace shardwire;
using namespace shardwire::test;

namespace {

// The asyncio documentation's protocol: print what arrives, then close.
class my_protocol : public protocol {
public:
  explicit my_protocol(event_log_ptr log) : log_(std::move(log)) {}

  void connection_made(transport_ref&) override { log_->add("connected"); }

  void data_received(const buffer& bytes) override {
    log_->add("Received: " + bytes.str());
    transport().close();
  }

  void connection_lost(const caf::error& reason) override {
    log_->add(reason ? "lost:" + describe(reason) : "lost");
  }

private:
  event_log_ptr log_;
};

// Reads its transport's extra info by name in connection_made, as asyncio
// code does with transport.get_extra_info(name, default).
class info_protocol : public protocol {
public:
  explicit info_protocol(event_log_ptr log) : log_(std::move(log)) {}

  void connection_made(transport_ref& t) override {
    auto fd = t.get_extra_info("socket", int64_t{-1});
    log_->add("socket:" + std::to_string(std::get<int64_t>(fd)));
    log_->add(std::string{"can_write_eof:"} +
              (t.can_write_eof() ? "yes" : "no"));
    auto peer = t.get_extra_info("peername");
    log_->add(std::string{"peername:"} +
              (std::holds_alternative<endpoint>(peer) ? "endpoint" : "none"));
    auto pipe = t.get_extra_info("pipe");
    log_->add(std::string{"pipe:"} +
              (std::holds_alternative<std::monostate>(pipe) ? "none" : "set"));
  }

  void connection_lost(const caf::error& reason) override {
    // asyncio: the extra info stays readable after the connection is gone.
    auto fd = transport().get_extra_info("socket", int64_t{-1});
    log_->add("socket after lost:" + std::to_string(std::get<int64_t>(fd)));
    log_->add(reason ? "lost:" + describe(reason) : "lost");
  }

private:
  event_log_ptr log_;
};

// Writes a string, then overwrites it in place (asyncio C21: a bytearray
// changed after write() does not change what is sent).
class overwriting_protocol : public protocol {
public:
  void connection_made(transport_ref& t) override {
    std::string text(1 << 20, 'a');
    t.write(text);
    std::fill(text.begin(), text.end(), 'b');
    t.write_eof();
  }
};

// Ends its connection inside connection_made: says goodbye and closes, or
// aborts at once (asyncio: create_connection still returns the transport).
class leaving_protocol : public protocol {
public:
  leaving_protocol(event_log_ptr log, bool abort_it)
      : log_(std::move(log)), abort_(abort_it) {}

  void connection_made(transport_ref& t) override {
    log_->add("connected");
    if (abort_) {
      t.abort();
    } else {
      t.write(std::string_view{"bye"});
      t.close();
    }
    log_->add(std::string{"closing:"} + (t.is_closing() ? "yes" : "no"));
  }

  void connection_lost(const caf::error& reason) override {
    log_->add(reason ? "lost:" + describe(reason) : "lost");
  }

private:
  event_log_ptr log_;
  bool abort_;
};

// A buffered protocol whose first buffer is empty, the error asyncio makes
// fatal at the first read.
class empty_buffer_protocol : public buffered_protocol {
public:
  explicit empty_buffer_protocol(event_log_ptr log) : log_(std::move(log)) {}

  void connection_made(transport_ref&) override { log_->add("connected"); }

  std::span<std::byte> get_buffer(int64_t) override { return {}; }

  void buffer_updated(size_t) override { log_->add("updated"); }

  void connection_lost(const caf::error& reason) override {
    log_->add(reason ? "lost:" + describe(reason) : "lost");
  }

private:
  event_log_ptr log_;
};

bool fd_is_open(int fd) {
  return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

} // namespace

TEST_CASE("connect_accepted_socket over a socketpair: Received: abc") {
  runtime_fixture fx;
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  auto log = std::make_shared<event_log>();
  auto conn =
      connect_accepted_socket(*fx.rt, fds[0], make_protocol<my_protocol>(log));
  REQUIRE(conn);
  // connection_made ran before the call returned (C1).
  REQUIRE(!log->events().empty());
  CHECK(log->events().front() == "connected");
  CHECK(conn->info.kind == "unix");
  CHECK(conn->info.fd == fds[0]);
  // "Simulate the reception of data from the network", as in the example.
  REQUIRE(::send(fds[1], "abc", 3, MSG_NOSIGNAL) == 3);
  REQUIRE(log->wait_for_event("lost"));
  CHECK(log->events() ==
        std::vector<std::string>{"connected", "Received: abc", "lost"});
  // close() reached the other end: EOF.
  bool eof = false;
  CHECK(raw_read_to_eof(fds[1], &eof).empty());
  CHECK(eof);
  ::close(fds[1]);
}

TEST_CASE("callback style: extra info by name and can_write_eof") {
  runtime_fixture fx;
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  auto log = std::make_shared<event_log>();
  auto conn = connect_accepted_socket(*fx.rt, fds[0],
                                      make_protocol<info_protocol>(log));
  REQUIRE(conn);
  caf::anon_send(conn->transport, shardwire::close{});
  REQUIRE(log->wait_for_event("lost"));
  CHECK(log->events() ==
        std::vector<std::string>{"socket:" + std::to_string(fds[0]),
                                 "can_write_eof:yes", "peername:endpoint",
                                 "pipe:none",
                                 "socket after lost:" + std::to_string(fds[0]),
                                 "lost"});
  ::close(fds[1]);
}

TEST_CASE("bytes changed by the caller after write are not what is sent "
          "(C21)") {
  runtime_fixture fx;
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  auto conn = connect_accepted_socket(*fx.rt, fds[0],
                                      make_protocol<overwriting_protocol>());
  REQUIRE(conn);
  bool eof = false;
  auto got = raw_read_to_eof(fds[1], &eof);
  CHECK(eof);
  CHECK(got.size() == (1u << 20));
  CHECK(got.find('b') == std::string::npos);
  ::close(fds[1]);
}

TEST_CASE("connect_accepted_socket adopts a socket accepted elsewhere") {
  runtime_fixture fx;
  raw_listener lst;
  int client = raw_connect(lst.port());
  REQUIRE(client >= 0);
  int accepted = lst.accept_one();
  REQUIRE(accepted >= 0);
  auto log = std::make_shared<event_log>();
  recorder_options echo;
  echo.echo = true;
  auto conn =
      connect_accepted_socket(*fx.rt, accepted, recorder(log, echo), size_t{1});
  REQUIRE(conn);
  CHECK(conn->info.kind == "tcp");
  CHECK(conn->info.shard == 1); // the caller-chosen shard
  CHECK(conn->info.peername.port != 0);
  CHECK(tcp_nodelay_of(conn->info.fd) == 1);
  CHECK(round_trip(client, "adopted") == "adopted");
  raw_close(client);
  REQUIRE(log->wait_for_event("lost"));
  CHECK(log->events().back() == "lost");
}

TEST_CASE("connect_accepted_socket rejects and closes a non-socket fd") {
  runtime_fixture fx;
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  REQUIRE(fd_is_open(p[0]));
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto log = std::make_shared<event_log>();
  auto conn =
      connect_accepted_socket(*fx.rt, p[0], counting(calls, recorder(log)));
  REQUIRE(!conn);
  INFO(describe(conn.error()));
  CHECK(is(conn.error(), sw_errc::invalid_argument));
  CHECK(calls->load() == 0);
  // The fd was taken over and closed: the write end now sees no reader.
  CHECK(!fd_is_open(p[0]));
  pollfd pf{p[1], POLLOUT, 0};
  REQUIRE(::poll(&pf, 1, 1000) == 1);
  CHECK((pf.revents & POLLERR) != 0);
  ::close(p[1]);
}

TEST_CASE("connect_accepted_socket rejects a datagram socket") {
  runtime_fixture fx;
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds) == 0);
  auto log = std::make_shared<event_log>();
  auto conn = connect_accepted_socket(*fx.rt, fds[0], recorder(log));
  REQUIRE(!conn);
  CHECK(is(conn.error(), sw_errc::invalid_argument));
  CHECK(!fd_is_open(fds[0]));
  ::close(fds[1]);
}

TEST_CASE("a protocol that ends the connection in connection_made still "
          "gets its transport from the connect call, as in asyncio") {
  runtime_fixture fx;
  SECTION("close: the written bytes are flushed, then EOF") {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    auto log = std::make_shared<event_log>();
    auto conn = connect_accepted_socket(
        *fx.rt, fds[0], make_protocol<leaving_protocol>(log, false));
    REQUIRE(conn); // not sw_errc::closed: connection_made ran
    CHECK(conn->transport);
    CHECK(conn->info.fd == fds[0]);
    REQUIRE(log->wait_for_event("lost"));
    CHECK(log->events() ==
          std::vector<std::string>{"connected", "closing:yes", "lost"});
    bool eof = false;
    CHECK(raw_read_to_eof(fds[1], &eof) == "bye");
    CHECK(eof);
    ::close(fds[1]);
  }
  SECTION("abort: nothing is sent") {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    auto log = std::make_shared<event_log>();
    auto conn = connect_accepted_socket(
        *fx.rt, fds[0], make_protocol<leaving_protocol>(log, true));
    REQUIRE(conn);
    REQUIRE(log->wait_for_event("lost"));
    CHECK(log->events() ==
          std::vector<std::string>{"connected", "closing:yes", "lost"});
    bool eof = false;
    CHECK(raw_read_to_eof(fds[1], &eof).empty());
    CHECK(eof);
    ::close(fds[1]);
  }
  SECTION("a buffered protocol's empty first buffer (asked for at the "
          "first read, as asyncio does): connected, then lost with the "
          "error") {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    auto log = std::make_shared<event_log>();
    auto conn = connect_accepted_socket(
        *fx.rt, fds[0], make_buffered_protocol<empty_buffer_protocol>(log));
    REQUIRE(conn);
    REQUIRE(raw_send_all(fds[1], "x")); // the first read asks for memory
    REQUIRE(log->wait_for_event("lost:", true));
    auto events = log->events();
    REQUIRE(events.size() == 2);
    CHECK(events[0] == "connected");
    CHECK(events[1].find("invalid_argument") != std::string::npos);
    ::close(fds[1]);
  }
}
