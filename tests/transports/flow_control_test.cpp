// Memory bounds of a stream transport against a peer that does not read
// (docs/flow-control.md): reads that follow writes, and the hard cap on the
// write buffer.
#include "transports/stream.hpp"

#include "tests/support/fixtures.hpp"
#include "transports/socket.hpp"
#include "transports/tcp.hpp"

#include <caf/send.hpp>

#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace shardwire;
using namespace shardwire::test;

namespace {

// asyncio's default write high-water mark, and the largest read a stream
// transport makes.
constexpr uint64_t high_water = 64 * 1024;
constexpr uint64_t max_read = 256 * 1024;

std::string pattern(size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i)
    out[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
  return out;
}

/// Sends `bytes` on non-blocking `fd` until everything went out or the
/// kernel took nothing for `stall` (the receiver stopped reading). Returns
/// how many bytes were sent.
size_t send_until_stalled(int fd, const std::string& bytes,
                          std::chrono::milliseconds stall) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    auto n = ::send(fd, bytes.data() + sent,
                    std::min<size_t>(256 * 1024, bytes.size() - sent),
                    MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    REQUIRE((n < 0 && (errno == EAGAIN || errno == EINTR)));
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(stall.count())) == 0) break;
  }
  return sent;
}

/// Reads exactly `n` bytes from non-blocking `fd` (deadline bounded).
std::string read_n(int fd, size_t n) {
  std::string out;
  std::vector<char> buf(256 * 1024);
  auto until = std::chrono::steady_clock::now() + deadline;
  while (out.size() < n && std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 100);
    auto got = ::recv(fd, buf.data(), buf.size(), 0);
    if (got > 0) out.append(buf.data(), static_cast<size_t>(got));
    else if (got == 0) break;
  }
  return out;
}

/// A transport over one end of a socketpair whose other end (`peer`) the
/// test drives; the transport's protocol records into `log`.
struct pair_connection {
  explicit pair_connection(runtime& rt) {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    peer = sv[1];
    auto c = connect_accepted_socket(rt, sv[0], recorder(log));
    REQUIRE(c);
    transport = c->transport;
  }
  ~pair_connection() { raw_close(peer); }

  event_log_ptr log = std::make_shared<event_log>();
  transport_actor transport;
  int peer = -1;
};

struct echo_run {
  size_t sent = 0;
  uint64_t write_buffer = 0;
  bool intact = false;
};

/// An echo server (a recorder that writes back) and a client that sends up
/// to `total` bytes without reading, then reads the echo.
echo_run run_echo_against_silent_peer(bool reads_follow_writes, size_t total) {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  auto transport = std::make_shared<transport_actor>();
  recorder_options ro;
  ro.echo = true;
  server_options so;
  so.reads_follow_writes = reads_follow_writes;
  auto srv = create_server(*fx.rt, recorder(log, ro, transport), so);
  REQUIRE(srv);
  int c = raw_connect(srv->sockets.front().port);
  REQUIRE(c >= 0);
  REQUIRE(log->wait_for_event("connected"));
  REQUIRE(::fcntl(c, F_SETFL, ::fcntl(c, F_GETFL) | O_NONBLOCK) == 0);
  auto payload = pattern(total);
  echo_run out;
  out.sent = send_until_stalled(c, payload, std::chrono::milliseconds(500));
  if (!reads_follow_writes) {
    // The transport reads on: wait until the protocol got every byte sent
    // (a loaded machine may still have some in the kernel), so that the
    // write buffer is measured after the whole burst, not mid-way.
    auto got_all = [&](const std::vector<std::string>& evs) {
      size_t n = 0;
      for (const auto& ev : evs)
        if (ev.rfind("data:", 0) == 0) n += ev.size() - 5;
      return n >= out.sent;
    };
    REQUIRE(log->wait_for(got_all));
  }
  auto size = ask<uint64_t>(*fx.rt, *transport, get_write_buffer_size{});
  REQUIRE(size);
  out.write_buffer = *size;
  // The client reads now: every byte it sent comes back, in order.
  auto echoed = read_n(c, out.sent);
  out.intact = echoed == payload.substr(0, out.sent);
  raw_close(c);
  REQUIRE(log->wait_for_event("lost", true));
  caf::anon_send(srv->actor, shardwire::close{});
  return out;
}

} // namespace

TEST_CASE("reads follow writes: an echo stops reading from a peer that does "
          "not read its replies") {
  constexpr size_t total = 32 * 1024 * 1024;
  auto r = run_echo_against_silent_peer(true, total);
  CAPTURE(r.sent, r.write_buffer);
  // The sender was held back by TCP, since the transport stopped reading.
  CHECK(r.sent < total);
  // What the transport holds: the high-water mark plus the read that took
  // it past it.
  CHECK(r.write_buffer <= high_water + max_read);
  CHECK(r.intact);
}

TEST_CASE("without reads following writes the same echo buffers the peer's "
          "bytes (the behaviour the option exists to prevent)") {
  // Shows that the case above can fail: the protocol ignores `pause`, so
  // everything the peer sends ends up in the write buffer.
  constexpr size_t total = 16 * 1024 * 1024;
  auto r = run_echo_against_silent_peer(false, total);
  CAPTURE(r.sent, r.write_buffer);
  CHECK(r.write_buffer > 4 * (high_water + max_read));
  CHECK(r.intact);
}

TEST_CASE("a write buffer past its hard cap aborts the connection with "
          "write_buffer_overflow") {
  constexpr size_t cap = 1024 * 1024;
  runtime_fixture fx{2, [](test_config& cfg) { cfg.write_buffer_cap = cap; }};
  pair_connection pc{*fx.rt};
  auto& log = pc.log;
  // The peer never reads; the writer ignores `pause`.
  auto chunk = buffer::copy_of(pattern(128 * 1024));
  for (int i = 0; i < 200 && log->count("lost", true) == 0; ++i)
    caf::anon_send(pc.transport, shardwire::write{chunk});
  REQUIRE(log->wait_for_event("lost", true));
  auto evs = log->events();
  INFO(evs.back());
  CHECK(evs.back().find("write_buffer_overflow") != std::string::npos);
  CHECK(evs.back().find("write buffer cap of 1048576") != std::string::npos);
  // The protocol was told to stop first.
  CHECK(log->count("pause") == 1);
  // Nothing follows `lost`, and the transport is gone.
  auto st = ask<transport_status>(*fx.rt, pc.transport, get_status{});
  CHECK_FALSE(st);
}

TEST_CASE("below the cap a slow peer loses nothing") {
  constexpr size_t cap = 8 * 1024 * 1024;
  runtime_fixture fx{2, [](test_config& cfg) { cfg.write_buffer_cap = cap; }};
  pair_connection pc{*fx.rt};
  auto payload = pattern(4 * 1024 * 1024);
  caf::anon_send(pc.transport, shardwire::write{buffer::copy_of(payload)});
  caf::anon_send(pc.transport, shardwire::close{});
  REQUIRE(::fcntl(pc.peer, F_SETFL, ::fcntl(pc.peer, F_GETFL) | O_NONBLOCK) ==
          0);
  CHECK(read_n(pc.peer, payload.size()) == payload);
  REQUIRE(pc.log->wait_for_event("lost", true));
  CHECK(pc.log->events().back() == "lost");
}
