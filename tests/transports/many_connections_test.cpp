// Many simultaneous connections: 1,000 clients, each streaming its own byte
// pattern through a persistent echo server that spreads connections over two
// shards; every byte must come back intact and in order.
//
// The clients are non-blocking raw sockets driven by one poll loop on the
// test thread, so the only actors are the server's (one listener, 1,000
// transports, 1,000 protocols).
#include "transports/tcp.hpp"

#include "tests/support/fixtures.hpp"
#include "tests/transports/helpers.hpp"

#include <sys/resource.h>

using namespace shardwire;
using namespace shardwire::test;

namespace {

constexpr size_t n_clients = 1000;

// Raises the soft RLIMIT_NOFILE to the hard limit for the test, restores it
// afterwards.
struct nofile_raised {
  nofile_raised() {
    ::getrlimit(RLIMIT_NOFILE, &saved);
    rlimit raised = saved;
    raised.rlim_cur = saved.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &raised);
    ::getrlimit(RLIMIT_NOFILE, &now);
  }
  ~nofile_raised() { ::setrlimit(RLIMIT_NOFILE, &saved); }
  rlimit saved = {};
  rlimit now = {};
};

// Byte `j` of connection `i`'s pattern: differs between connections and
// along the stream (a lost, duplicated or swapped chunk shows up).
inline char pattern_byte(size_t i, size_t j) {
  auto x = static_cast<uint32_t>(i * 2654435761u) ^ static_cast<uint32_t>(j) ^
           static_cast<uint32_t>(j >> 8) * 40503u;
  return static_cast<char>((x ^ (x >> 13)) & 0xff);
}

// Lengths differ too, from 8 KiB to a bit over 24 KiB.
inline size_t pattern_size(size_t i) {
  return 8 * 1024 + (i * 977) % (16 * 1024 + 1);
}

struct echo_stats {
  std::atomic<size_t> per_shard[2] = {};
  std::atomic<size_t> connected{0};
  std::atomic<size_t> bytes{0};
  event_log_ptr lost = std::make_shared<event_log>();
};

using echo_stats_ptr = std::shared_ptr<echo_stats>;

// A persistent echo protocol (actor style) counting where it runs.
protocol_factory counting_echo(echo_stats_ptr stats) {
  auto impl = [](protocol_actor::pointer self,
                 echo_stats_ptr stats) -> protocol_actor::behavior_type {
    auto transport = std::make_shared<transport_actor>();
    return {
        [=](connected& msg) {
          *transport = msg.transport;
          stats->per_shard[msg.info.shard % 2].fetch_add(1);
          stats->connected.fetch_add(1);
        },
        [=](data& msg) {
          stats->bytes.fetch_add(msg.bytes.size());
          self->send(*transport, shardwire::write{msg.bytes});
        },
        [](eof) { return false; },
        [](shardwire::pause) {},
        [](shardwire::resume) {},
        [=](lost& msg) {
          stats->lost->add(msg.reason ? "lost:" + describe(msg.reason)
                                      : "lost");
          self->quit();
        },
    };
  };
  return protocol_fun(impl, std::move(stats));
}

struct client {
  int fd = -1;
  size_t size = 0;
  size_t sent = 0;
  size_t received = 0;
  bool connected = false;
  bool failed = false;
  std::string error;
};

} // namespace

TEST_CASE("1,000 connections over two shards echo distinct patterns "
          "intact") {
  nofile_raised limit;
  // One fd per client, one per accepted connection, plus the runtime's own.
  if (limit.now.rlim_cur < 2 * n_clients + 200) {
    WARN("RLIMIT_NOFILE hard limit " << limit.now.rlim_max
                                     << " is too low for 2,000+ sockets; "
                                        "test skipped");
    return;
  }
  runtime_fixture fx;
  REQUIRE(fx.rt->shard_count() == 2);
  auto stats = std::make_shared<echo_stats>();
  server_options so;
  so.backlog = 1024; // all clients connect at once
  auto srv = create_server(*fx.rt, counting_echo(stats), so);
  REQUIRE(srv);
  sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(srv->sockets.at(0).port);

  std::vector<client> clients(n_clients);
  size_t total = 0;
  for (size_t i = 0; i < n_clients; ++i) {
    auto& c = clients[i];
    c.size = pattern_size(i);
    total += c.size;
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(c.fd >= 0);
    int rc = ::connect(c.fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
    REQUIRE((rc == 0 || errno == EINPROGRESS));
    c.connected = rc == 0;
  }

  // Drive every client until its whole pattern came back, or the deadline.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds{90};
  size_t done = 0;
  size_t failures = 0;
  std::vector<pollfd> pfds(n_clients);
  std::vector<char> buf(64 * 1024);
  std::string chunk;
  while (done + failures < n_clients &&
         std::chrono::steady_clock::now() < until) {
    for (size_t i = 0; i < n_clients; ++i) {
      auto& c = clients[i];
      bool active = !c.failed && c.received < c.size;
      pfds[i].fd = active ? c.fd : -1;
      pfds[i].events = static_cast<short>(
          POLLIN | (!c.connected || c.sent < c.size ? POLLOUT : 0));
      pfds[i].revents = 0;
    }
    int rc = ::poll(pfds.data(), pfds.size(), 1000);
    REQUIRE(rc >= 0);
    for (size_t i = 0; i < n_clients; ++i) {
      auto& c = clients[i];
      auto ev = pfds[i].revents;
      if (ev == 0 || pfds[i].fd < 0) continue;
      auto fail = [&](std::string why) {
        c.failed = true;
        c.error = std::move(why);
        ++failures;
      };
      if (!c.connected && (ev & (POLLOUT | POLLERR | POLLHUP))) {
        int err = 0;
        socklen_t len = sizeof(err);
        ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          fail(std::string{"connect: "} + std::strerror(err));
          continue;
        }
        c.connected = true;
      }
      if (c.connected && (ev & POLLOUT) && c.sent < c.size) {
        // Send in pieces of varying size so chunks interleave.
        auto n = std::min<size_t>(c.size - c.sent, 1500 + (i % 5) * 2000);
        chunk.resize(n);
        for (size_t j = 0; j < n; ++j)
          chunk[j] = pattern_byte(i, c.sent + j);
        auto w = ::send(c.fd, chunk.data(), n, MSG_NOSIGNAL);
        if (w > 0)
          c.sent += static_cast<size_t>(w);
        else if (w < 0 && errno != EAGAIN && errno != EINTR) {
          fail(std::string{"send: "} + std::strerror(errno));
          continue;
        }
      }
      if (ev & (POLLIN | POLLERR | POLLHUP)) {
        auto r = ::recv(c.fd, buf.data(), buf.size(), 0);
        if (r == 0) {
          fail("unexpected EOF after " + std::to_string(c.received));
          continue;
        }
        if (r < 0) {
          if (errno != EAGAIN && errno != EINTR)
            fail(std::string{"recv: "} + std::strerror(errno));
          continue;
        }
        for (ssize_t j = 0; j < r; ++j) {
          if (c.received + j >= c.sent ||
              buf[j] != pattern_byte(i, c.received + j)) {
            fail("byte " + std::to_string(c.received + j) + " differs");
            break;
          }
        }
        if (c.failed) continue;
        c.received += static_cast<size_t>(r);
        if (c.received == c.size) ++done;
      }
    }
  }
  for (auto& c : clients)
    if (c.failed) {
      FAIL_CHECK("client failed: " << c.error);
      break; // one message is enough
    }
  CHECK(failures == 0);
  REQUIRE(done == n_clients);
  // All 1,000 were alive at the same time: none was lost yet.
  CHECK(stats->connected.load() == n_clients);
  CHECK(stats->lost->count("lost", true) == 0);
  CHECK(stats->bytes.load() == total);
  // Both shards served connections.
  auto s0 = stats->per_shard[0].load();
  auto s1 = stats->per_shard[1].load();
  INFO("shard 0: " << s0 << " connections, shard 1: " << s1);
  CHECK(s0 > 0);
  CHECK(s1 > 0);
  CHECK(s0 + s1 == n_clients);
  // Close every client; each server side ends cleanly.
  for (auto& c : clients)
    raw_close(c.fd);
  REQUIRE(
      stats->lost->wait_for([](auto& evs) { return evs.size() == n_clients; },
                            std::chrono::seconds{30}));
  CHECK(stats->lost->count("lost") == n_clients);
  REQUIRE(close_server(*fx.rt, srv->actor));
}
