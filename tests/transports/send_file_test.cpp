// send_file (asyncio's loop.sendfile): a regular file's bytes go out after
// what is queued, the reply counts them, writes are refused meanwhile, and
// close waits for the file as for queued bytes.
#include "tests/support/fixtures.hpp"
#include "tests/transports/helpers.hpp"
#include "transports/pipe.hpp"
#include "transports/socket.hpp"

#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <future>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

using namespace shardwire;
using namespace shardwire::test;

namespace {

std::string pattern_of(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + (i * 13 + i / 509) % 26);
  return s;
}

/// Reads `n` bytes from a pipe, or what came before the deadline.
std::string read_pipe_exact(int fd, size_t n) {
  auto until = std::chrono::steady_clock::now() + deadline;
  std::string out;
  char buf[65536];
  while (out.size() < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    pollfd pfd{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0)
      break;
    auto got = ::read(fd, buf, std::min(sizeof(buf), n - out.size()));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

/// A regular file holding `content`, already unlinked (gone with its fd).
struct temp_file {
  explicit temp_file(const std::string& content) {
    char path[] = "/tmp/shardwire-send-file-XXXXXX";
    fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::unlink(path);
    REQUIRE(::write(fd, content.data(), content.size()) ==
            static_cast<ssize_t>(content.size()));
  }
  ~temp_file() { ::close(fd); }
  int fd = -1;
};

/// An adopted socketpair end with a recording protocol; `peer` is the raw
/// other end.
struct adopted_pair {
  explicit adopted_pair(runtime& rt) {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    peer = fds[1];
    auto conn = connect_accepted_socket(rt, fds[0], recorder(log));
    REQUIRE(conn);
    transport = conn->transport;
  }
  ~adopted_pair() { ::close(peer); }
  event_log_ptr log = std::make_shared<event_log>();
  transport_actor transport;
  int peer = -1;
};

} // namespace

TEST_CASE("send_file sends the file after the queued bytes and counts it") {
  runtime_fixture fx;
  adopted_pair p{*fx.rt};
  auto content = pattern_of((3 << 20) + 17); // more than the socket holds
  temp_file file{content};
  // Queued first: the file goes after it (asyncio flushes before sending).
  caf::anon_send(p.transport, shardwire::write{buffer::copy_of("head:")});
  std::future<std::string> got = std::async(std::launch::async, [&] {
    return raw_read_exact(p.peer, 5 + content.size() - 10 + 5);
  });
  auto n = ask<uint64_t>(*fx.rt, p.transport, send_file{file.fd, 10, 0});
  REQUIRE(n);
  CHECK(*n == content.size() - 10);
  caf::anon_send(p.transport, shardwire::write{buffer::copy_of(":tail")});
  CHECK(got.get() == "head:" + content.substr(10) + ":tail");
  // The transport never moved the descriptor's own offset.
  CHECK(::lseek(file.fd, 0, SEEK_CUR) == static_cast<off_t>(content.size()));
  // Nothing of the file's went through the protocol's watermarks.
  CHECK(p.log->count("pause") == 0);
}

TEST_CASE("send_file: offset and count, a range past the end, a short file") {
  runtime_fixture fx;
  adopted_pair p{*fx.rt};
  auto content = pattern_of(5000);
  temp_file file{content};
  auto n = ask<uint64_t>(*fx.rt, p.transport, send_file{file.fd, 100, 1000});
  REQUIRE(n);
  CHECK(*n == 1000);
  CHECK(raw_read_exact(p.peer, 1000) == content.substr(100, 1000));
  // Starting at the end: nothing to send.
  n = ask<uint64_t>(*fx.rt, p.transport, send_file{file.fd, 5000, 0});
  REQUIRE(n);
  CHECK(*n == 0);
  // Asking for more than the file holds: what there is.
  n = ask<uint64_t>(*fx.rt, p.transport, send_file{file.fd, 4000, 9999});
  REQUIRE(n);
  CHECK(*n == 1000);
  CHECK(raw_read_exact(p.peer, 1000) == content.substr(4000));
}

TEST_CASE("send_file refuses what is not a regular file and keeps the "
          "connection") {
  runtime_fixture fx;
  adopted_pair p{*fx.rt};
  int pfd[2];
  REQUIRE(::pipe2(pfd, O_CLOEXEC) == 0);
  auto n = ask<uint64_t>(*fx.rt, p.transport, send_file{pfd[0], 0, 0});
  REQUIRE(!n);
  CHECK(is(n.error(), sw_errc::invalid_argument));
  n = ask<uint64_t>(*fx.rt, p.transport, send_file{-1, 0, 0});
  REQUIRE(!n);
  CHECK(is(n.error(), sw_errc::invalid_argument));
  ::close(pfd[0]);
  ::close(pfd[1]);
  // Still open: a write goes through.
  caf::anon_send(p.transport, shardwire::write{buffer::copy_of("still here")});
  CHECK(raw_read_exact(p.peer, 10) == "still here");
  // After write_eof: refused as a write is.
  temp_file file{"abc"};
  caf::anon_send(p.transport, shardwire::write_eof{});
  n = ask<uint64_t>(*fx.rt, p.transport, send_file{file.fd, 0, 0});
  REQUIRE(!n);
  CHECK(is(n.error(), sw_errc::write_after_eof));
}

TEST_CASE("send_file: writes and a second send_file are refused while it "
          "runs; close waits for it") {
  runtime_fixture fx;
  adopted_pair p{*fx.rt};
  auto content = pattern_of(8 << 20); // the peer does not read yet: it waits
  temp_file file{content};
  caf::scoped_actor self{fx.rt->system()};
  auto file_reply =
      self->request(p.transport, deadline, send_file{file.fd, 0, 0});
  // Same sender, so handled after send_file started.
  caf::error refused;
  self->request(p.transport, deadline, shardwire::write{buffer::copy_of("y")})
      .receive([] {}, [&](caf::error& err) { refused = std::move(err); });
  CHECK(is(refused, sw_errc::not_supported));
  caf::error second;
  self->request(p.transport, deadline, send_file{file.fd, 0, 0})
      .receive([](uint64_t) {}, [&](caf::error& err) { second = err; });
  CHECK(is(second, sw_errc::invalid_argument));
  self->send(p.transport, shardwire::close{});
  bool eof = false;
  auto got = std::async(std::launch::async,
                        [&] { return raw_read_to_eof(p.peer, &eof); });
  std::optional<uint64_t> n;
  caf::error failed;
  file_reply.receive([&](uint64_t x) { n = x; },
                     [&](caf::error& err) { failed = std::move(err); });
  REQUIRE(n);
  CHECK(*n == content.size());
  auto received = got.get();
  CHECK(received.size() == content.size());
  CHECK(received == content);
  CHECK(eof);
  CHECK(p.log->wait_for_event("lost"));
}

TEST_CASE("send_file: abort ends it with an error reply") {
  runtime_fixture fx;
  adopted_pair p{*fx.rt};
  temp_file file{pattern_of(8 << 20)};
  caf::scoped_actor self{fx.rt->system()};
  auto file_reply =
      self->request(p.transport, deadline, send_file{file.fd, 0, 0});
  self->send(p.transport, shardwire::abort{});
  caf::error failed;
  file_reply.receive([](uint64_t) {},
                     [&](caf::error& err) { failed = std::move(err); });
  CHECK(is(failed, sw_errc::closed));
  CHECK(p.log->wait_for_event("lost"));
}

TEST_CASE("send_file over a write pipe") {
  runtime_fixture fx;
  int pfd[2];
  REQUIRE(::pipe2(pfd, O_CLOEXEC) == 0);
  auto log = std::make_shared<event_log>();
  auto conn = connect_write_pipe(*fx.rt, pfd[1], recorder(log));
  REQUIRE(conn);
  auto content = pattern_of(300000); // more than a pipe holds
  temp_file file{content};
  auto got = std::async(std::launch::async,
                        [&] { return read_pipe_exact(pfd[0], content.size()); });
  auto n = ask<uint64_t>(*fx.rt, conn->transport, send_file{file.fd, 0, 0});
  REQUIRE(n);
  CHECK(*n == content.size());
  CHECK(got.get() == content);
  caf::anon_send(conn->transport, shardwire::close{});
  CHECK(log->wait_for_event("lost"));
  ::close(pfd[0]);
}
