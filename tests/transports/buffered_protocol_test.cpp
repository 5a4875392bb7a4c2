// Callback-style buffered protocols (actors/buffered_protocol.hpp,
// asyncio.BufferedProtocol) over TCP, an adopted Unix socket, a read pipe
// and the simulated network: the bytes land in the protocol's own memory
// (no `data` on the way), asyncio's error rules, set_protocol in and out.
// The core's side of lending is in stream_core_test.cpp ([buffered]).
#include "actors/buffered_protocol.hpp"

#include "sim/network.hpp"
#include "tests/sim/sim_support.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/transports/helpers.hpp"
#include "transports/pipe.hpp"
#include "transports/socket.hpp"
#include "transports/tcp.hpp"

#include <caf/send.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace shardwire;
using namespace shardwire::test;
using namespace std::chrono_literals;

namespace {

/// What a collector saw; written on its shard thread, read by the test
/// after `lost` (event_log's lock orders the two).
struct collected {
  event_log_ptr log = std::make_shared<event_log>();
  std::string bytes;          // every byte, in order, from buffer_updated
  std::atomic<int> updates{0};
  std::atomic<int> data_calls{0};   // bytes that came as `data` instead
  std::atomic<int> foreign{0};      // updates not in the lent memory
  // How it misbehaves, for the error cases.
  size_t chunk = 1000;
  bool echo = false;
  bool throw_in_get_buffer = false;
  bool throw_in_updated = false;
  // get_buffer returns an empty span from its call number `empty_from`
  // on (0: never).
  int empty_from = 0;
  int get_buffer_calls = 0;
  // Log "gb" for each get_buffer and "bu:<n>" for each buffer_updated.
  bool log_calls = false;
  // The transport's fd, if >= 0: each get_buffer notes whether it had
  // something to read (bytes or the end of the stream) at that moment.
  int watch_fd = -1;
  std::vector<bool> readable_at_get_buffer; // shard thread, read after lost
};

using collected_ptr = std::shared_ptr<collected>;

/// Lends `chunk` bytes of its own arena each time; echoes or collects.
class collector : public buffered_protocol {
public:
  explicit collector(collected_ptr st)
      : st_(std::move(st)), arena_(st_->chunk + 16) {}

  void connection_made(transport_ref&) override { st_->log->add("connected"); }

  std::span<std::byte> get_buffer(int64_t sizehint) override {
    if (sizehint != -1) st_->log->add("sizehint");
    if (st_->watch_fd >= 0) { // before "gb": the test sends on seeing it
      pollfd pfd{st_->watch_fd, POLLIN, 0};
      st_->readable_at_get_buffer.push_back(::poll(&pfd, 1, 0) == 1);
    }
    if (st_->log_calls) st_->log->add("gb");
    if (st_->throw_in_get_buffer) throw std::runtime_error("no memory today");
    if (st_->empty_from != 0 && ++st_->get_buffer_calls >= st_->empty_from)
      return {};
    lent_ = arena_.data();
    return {arena_.data(), st_->chunk};
  }

  void buffer_updated(size_t n) override {
    if (st_->log_calls) st_->log->add("bu:" + std::to_string(n));
    if (st_->throw_in_updated) throw std::runtime_error("cannot parse");
    // The transport read into the span handed out last: the bytes are
    // here without a copy of shardwire's own.
    if (lent_ != arena_.data()) ++st_->foreign;
    ++st_->updates;
    std::string_view got{reinterpret_cast<const char*>(arena_.data()), n};
    if (st_->echo) transport().write(got);
    st_->bytes.append(got);
  }

  void data_received(const buffer& bytes) override {
    ++st_->data_calls;
    buffered_protocol::data_received(bytes);
  }

  bool eof_received() override {
    st_->log->add("eof");
    return false;
  }

  void connection_lost(const caf::error& reason) override {
    st_->log->add(reason ? "lost:" + describe(reason) : "lost");
  }

private:
  collected_ptr st_;
  std::vector<std::byte> arena_;
  std::byte* lent_ = nullptr;
};

std::string pattern_of(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

} // namespace

TEST_CASE("buffered protocol: TCP echo, every byte through lent memory") {
  runtime_fixture fx;
  auto st = std::make_shared<collected>();
  st->echo = true;
  st->chunk = 16 * 1024;
  auto srv = create_server(*fx.rt, make_buffered_protocol<collector>(st), {});
  REQUIRE(srv);
  int c = raw_connect(srv->sockets.at(0).port);
  REQUIRE(c >= 0);
  auto payload = pattern_of(1 << 20); // 1 MiB
  std::thread sender{[&] { raw_send_all(c, payload); }};
  auto echoed = raw_read_exact(c, payload.size());
  sender.join();
  CHECK(echoed == payload);
  ::shutdown(c, SHUT_WR);
  REQUIRE(st->log->wait_for_event("lost"));
  CHECK(st->bytes == payload);
  CHECK(st->data_calls == 0); // never a `data`: no copy on the way in
  CHECK(st->foreign == 0);
  CHECK(st->updates >= static_cast<int>(payload.size() / st->chunk));
  CHECK(st->log->count("sizehint") == 0); // asyncio's -1
  CHECK(st->log->events() ==
        std::vector<std::string>{"connected", "eof", "lost"});
  raw_close(c);
  REQUIRE(close_server(*fx.rt, srv->actor));
}

TEST_CASE("buffered protocol: adopted Unix socket, small lent buffers") {
  runtime_fixture fx;
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  auto st = std::make_shared<collected>();
  st->chunk = 7; // many reads per send: each one fills a lease
  auto conn = connect_accepted_socket(*fx.rt, fds[0],
                                      make_buffered_protocol<collector>(st));
  REQUIRE(conn);
  auto payload = pattern_of(10000);
  REQUIRE(raw_send_all(fds[1], payload));
  ::shutdown(fds[1], SHUT_WR);
  REQUIRE(st->log->wait_for_event("lost"));
  CHECK(st->bytes == payload);
  CHECK(st->updates >= 10000 / 7);
  CHECK(st->data_calls == 0);
  ::close(fds[1]);
}

TEST_CASE("buffered protocol: one more get_buffer, with no buffer_updated, "
          "before eof (C92)") {
  runtime_fixture fx;
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  // Everything is in the socket before the transport exists: 10 bytes, then
  // the end of the stream.
  REQUIRE(raw_send_all(fds[1], "0123456789"));
  ::shutdown(fds[1], SHUT_WR);
  auto st = std::make_shared<collected>();
  st->chunk = 4;
  st->log_calls = true;
  auto conn = connect_accepted_socket(*fx.rt, fds[0],
                                      make_buffered_protocol<collector>(st));
  REQUIRE(conn);
  REQUIRE(st->log->wait_for_event("lost"));
  // asyncio: get_buffer on each readable event, the last one included, so
  // one buffer is lent (and never filled) when EOF comes. shardwire asks
  // for the first when the first bytes are there and lends each next one
  // right after buffer_updated: the same calls in the same order.
  CHECK(st->log->events() ==
        std::vector<std::string>{"connected", "gb", "bu:4", "gb", "bu:4",
                                 "gb", "bu:2", "gb", "eof", "lost"});
  CHECK(st->bytes == "0123456789");
  CHECK(st->data_calls == 0);
  ::close(fds[1]);
}

TEST_CASE("buffered protocol: the first get_buffer runs when there is "
          "something to read, so a connection that never received holds no "
          "lent buffer") {
  runtime_fixture fx;
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  auto st = std::make_shared<collected>();
  st->chunk = 64;
  st->log_calls = true;
  st->watch_fd = fds[0];
  auto conn = connect_accepted_socket(*fx.rt, fds[0],
                                      make_buffered_protocol<collector>(st));
  REQUIRE(conn);
  REQUIRE(st->log->wait_for_event("connected"));
  // Three writes, each sent once the last one is read and the next buffer
  // asked for, then the end.
  for (int i = 0; i < 3; ++i) {
    REQUIRE(raw_send_all(fds[1], "hello"));
    REQUIRE(st->log->wait_for([i](const std::vector<std::string>& ev) {
      return std::count(ev.begin(), ev.end(), "gb") == i + 2;
    }));
  }
  ::shutdown(fds[1], SHUT_WR);
  REQUIRE(st->log->wait_for_event("lost"));
  CHECK(st->log->events() ==
        std::vector<std::string>{"connected", "gb", "bu:5", "gb", "bu:5", "gb",
                                 "bu:5", "gb", "eof", "lost"});
  REQUIRE(st->readable_at_get_buffer.size() == 4);
  // The first buffer is asked for only once bytes are there, fast path on
  // or off; the later ones are lent ahead, right after buffer_updated
  // (actors/buffered_protocol.hpp), when the socket is drained.
  CHECK(st->readable_at_get_buffer ==
        std::vector<bool>{true, false, false, false});
  ::close(fds[1]);
}

TEST_CASE("buffered protocol: read pipe, then eof and lost") {
  runtime_fixture fx;
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  auto st = std::make_shared<collected>();
  st->chunk = 100;
  auto conn =
      connect_read_pipe(*fx.rt, p[0], make_buffered_protocol<collector>(st));
  REQUIRE(conn);
  auto payload = pattern_of(5000); // fits the pipe's buffer: one write
  REQUIRE(::write(p[1], payload.data(), payload.size()) ==
          static_cast<ssize_t>(payload.size()));
  ::close(p[1]);
  REQUIRE(st->log->wait_for_event("lost"));
  CHECK(st->bytes == payload);
  CHECK(st->data_calls == 0);
  CHECK(st->log->events() ==
        std::vector<std::string>{"connected", "eof", "lost"});
}

TEST_CASE("buffered protocol: the errors asyncio makes fatal") {
  runtime_fixture fx;
  // "empty later": the empty buffer is the one lent after the first read,
  // inside that read's delivery (the in-place lease on the fast path).
  auto which = GENERATE(as<std::string>{}, "empty", "empty later", "get_buffer",
                        "buffer_updated");
  CAPTURE(which);
  auto st = std::make_shared<collected>();
  if (which == "empty") st->chunk = 0;
  if (which == "empty later") st->empty_from = 2;
  if (which == "get_buffer") st->throw_in_get_buffer = true;
  if (which == "buffer_updated") st->throw_in_updated = true;
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  // The first buffer is asked for when the first bytes are there (asyncio:
  // on the first readable event). connection_lost runs last.
  auto conn = connect_accepted_socket(*fx.rt, fds[0],
                                      make_buffered_protocol<collector>(st));
  CHECK(conn);
  raw_send_all(fds[1], "some bytes"); // may meet a closed socket
  REQUIRE(st->log->wait_for_event("lost", true));
  CHECK(st->log->count("connected") == 1);
  auto last = st->log->events().back();
  if (which == "empty" || which == "empty later")
    CHECK(last.find("invalid_argument") != std::string::npos);
  else
    CHECK(last.find("protocol_failed") != std::string::npos);
  if (which == "empty later") CHECK(st->updates == 1); // the first read came
  // The transport was aborted: the peer sees the end of the stream (a
  // reset when our bytes were still unread).
  pollfd pfd{fds[1], POLLIN, 0};
  REQUIRE(::poll(&pfd, 1, 10000) == 1);
  char byte;
  auto n = ::recv(fds[1], &byte, 1, 0);
  CHECK((n == 0 || (n < 0 && errno == ECONNRESET)));
  ::close(fds[1]);
}

TEST_CASE("buffered protocol: set_protocol from a plain protocol mid-stream") {
  runtime_fixture fx;
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  auto first_log = std::make_shared<event_log>();
  auto conn = connect_accepted_socket(*fx.rt, fds[0], recorder(first_log));
  REQUIRE(conn);
  REQUIRE(raw_send_all(fds[1], "plain "));
  REQUIRE(first_log->wait_for_event("data:plain "));
  auto st = std::make_shared<collected>();
  st->chunk = 64;
  auto next = make_buffered_protocol<collector>(st)(
      fx.rt->shard_at(conn->info.shard));
  caf::anon_send(conn->transport, set_protocol{next});
  REQUIRE(ask<transport_status>(*fx.rt, conn->transport, get_status{}));
  auto rest = pattern_of(3000);
  REQUIRE(raw_send_all(fds[1], rest));
  ::shutdown(fds[1], SHUT_WR);
  REQUIRE(st->log->wait_for_event("lost"));
  CHECK(st->bytes == rest);
  // At most the first read after the switch came as `data` (copied through
  // get_buffer); the rest went straight into lent memory.
  CHECK(st->data_calls <= 1);
  CHECK(st->updates > st->data_calls);
  caf::anon_send_exit(conn->protocol, caf::exit_reason::user_shutdown);
  ::close(fds[1]);
}

TEST_CASE("buffered protocol: the simulator runs the same echo") {
  sim::network net{42};
  net.add_host("client");
  net.add_host("server");
  auto st = std::make_shared<collected>();
  st->echo = true;
  st->chunk = 5; // smaller than one ping: several leases per message
  REQUIRE(!net.listen("server", 7, make_buffered_protocol<collector>(st)));
  auto log = std::make_shared<event_log>();
  auto conn = net.create_connection({"client", "server", 7},
                                    test::pinger({log, 5, 10ms}));
  REQUIRE(conn);
  CHECK(net.run_until([&] { return log->count("lost", true) == 1; }, 1h));
  std::vector<std::string> expected{"connected"};
  for (int i = 0; i < 5; ++i)
    expected.push_back("echo:ping " + std::to_string(i));
  expected.push_back("lost");
  CHECK(log->events() == expected);
  CHECK(st->data_calls == 0);
  CHECK(st->foreign == 0);
}
