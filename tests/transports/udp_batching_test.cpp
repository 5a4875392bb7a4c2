// Datagram batching (transports/detail/datagram_transport.cpp): zero-copy
// receive (datagrams of one recvmmsg batch are slices of one block, and
// their read credit adds up to that block) and queued sends flushed with
// sendmmsg. Loopback and socketpairs only; every wait has a deadline.
#include "transports/detail/datagram_transport.hpp"
#include "transports/udp.hpp"

#include "tests/support/fixtures.hpp"

#include <caf/send.hpp>

#include <chrono>
#include <cstdio>
#include <future>
#include <mutex>
#include <optional>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

using namespace shardwire;
using namespace shardwire::test;

namespace {

/// What the keeping protocol saw: every datagram's bytes (a copy sharing its
/// storage) and the read credit its message held.
struct kept {
  std::mutex mtx;
  std::vector<buffer> bytes;
  std::vector<size_t> weights;
};

/// Keeps every datagram's bytes; logs "connected", "n:<count>", "lost".
datagram_protocol_factory keeper(event_log_ptr log, std::shared_ptr<kept> k,
                                 std::shared_ptr<datagram_transport_actor> t) {
  return datagram_protocol_fun(
      [](datagram_protocol_actor::pointer self, event_log_ptr log,
         std::shared_ptr<kept> k, std::shared_ptr<datagram_transport_actor> t)
          -> datagram_protocol_actor::behavior_type {
        return {
            [=](datagram_connected& msg) {
              *t = msg.transport;
              log->add("connected");
            },
            [=](datagram& msg) {
              size_t n;
              {
                std::lock_guard<std::mutex> guard{k->mtx};
                k->bytes.push_back(msg.bytes);
                k->weights.push_back(msg.ticket.bytes());
                n = k->bytes.size();
              }
              log->add("n:" + std::to_string(n));
            },
            [=](datagram_error& msg) {
              log->add("error:" + describe(msg.reason));
            },
            [=](shardwire::pause) { log->add("pause"); },
            [=](shardwire::resume) { log->add("resume"); },
            [=](lost&) {
              log->add("lost");
              self->quit();
            },
        };
      },
      std::move(log), std::move(k), std::move(t));
}

/// A keeper transport on one end of a Unix datagram socketpair (delivery to
/// it is synchronous and lossless, unlike UDP); `peer` is the test's end.
struct keeper_pair {
  explicit keeper_pair(runtime& rt, size_t max_size = 256 * 1024) {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
    peer = sv[1];
    auto done =
        std::make_shared<std::promise<caf::expected<datagram_endpoint>>>();
    auto fut = done->get_future();
    datagram_settings ds;
    ds.connected = true;
    ds.max_size = max_size;
    ds.read_high_water = rt.config().read_high_water;
    ds.read_low_water = rt.config().read_low_water;
    detail::spawn_datagram_transport(
        rt.shard_at(0), sv[0], "unix_dgram", keeper(log, k, t), ds,
        [done](caf::expected<datagram_endpoint> x) {
          done->set_value(std::move(x));
        });
    auto ep = fut.get();
    REQUIRE(ep);
    transport = ep->transport;
  }
  ~keeper_pair() {
    if (peer >= 0) ::close(peer);
  }
  event_log_ptr log = std::make_shared<event_log>();
  std::shared_ptr<kept> k = std::make_shared<kept>();
  std::shared_ptr<datagram_transport_actor> t =
      std::make_shared<datagram_transport_actor>();
  datagram_transport_actor transport;
  int peer = -1;
};

std::string unique_path(const char* tag) {
  static int counter = 0;
  return "/tmp/sw_udp_batching_" + std::to_string(::getpid()) + "_" + tag +
         std::to_string(++counter);
}

/// A Unix datagram socket bound to `path`.
int bound_unix(const std::string& path) {
  ::unlink(path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un sun = {};
  sun.sun_family = AF_UNIX;
  std::snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) == 0);
  return fd;
}

std::optional<std::string>
recv_one(int fd, std::chrono::milliseconds timeout = deadline) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1)
    return std::nullopt;
  std::string buf(8192, '\0');
  auto n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<size_t>(n));
  return buf;
}

} // namespace

TEST_CASE("datagrams of one batch share one block; their credit adds up to "
          "it") {
  runtime_fixture fx;
  keeper_pair p{*fx.rt};
  // Held in the kernel while paused, so one recvmmsg finds all of them.
  caf::anon_send(p.transport, pause_reading{});
  REQUIRE(ask<transport_status>(*fx.rt, p.transport, get_status{}));
  // Small ones, an empty one, and one longer than a slot (copied).
  std::vector<std::string> sent{"alpha", "beta", "", std::string(3000, 'L'),
                                "gamma", "delta"};
  for (auto& s : sent)
    REQUIRE(::send(p.peer, s.data(), s.size(), 0) ==
            static_cast<ssize_t>(s.size()));
  caf::anon_send(p.transport, resume_reading{});
  REQUIRE(p.log->wait_for_event("n:" + std::to_string(sent.size())));
  std::vector<buffer> got;
  std::vector<size_t> weights;
  {
    std::lock_guard<std::mutex> guard{p.k->mtx};
    got = p.k->bytes;
    weights = p.k->weights;
  }
  REQUIRE(got.size() == sent.size());
  for (size_t i = 0; i < sent.size(); ++i)
    CHECK(got[i].str() == sent[i]);
  // The first read uses a 4 KiB block of two slots: "alpha" and "beta" are
  // slices of it, with no copy, and their credit is the whole block.
  CHECK(got[0].shares_storage_with(got[1]));
  CHECK(got[0].footprint() == 4096);
  CHECK(weights[0] + weights[1] == got[0].footprint());
  // Empty: no storage, no credit. Longer than a slot: a buffer of its own,
  // counted by its own footprint.
  CHECK(got[2].empty());
  CHECK(weights[2] == 0);
  CHECK_FALSE(got[3].shares_storage_with(got[0]));
  CHECK_FALSE(got[3].shares_storage_with(got[4]));
  CHECK(weights[3] == got[3].footprint());
  // The next batch (a larger block) holds the rest: slices again.
  CHECK(got[4].shares_storage_with(got[5]));
  CHECK_FALSE(got[4].shares_storage_with(got[0]));
  // Every block's credit adds up to its footprint: group by storage.
  size_t total_weight = 0;
  size_t total_footprint = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    total_weight += weights[i];
    bool first = true;
    for (size_t j = 0; j < i; ++j)
      if (got[i].shares_storage_with(got[j])) first = false;
    if (first) total_footprint += got[i].footprint();
  }
  CHECK(total_weight == total_footprint);
  caf::anon_send(p.transport, shardwire::close{});
  CHECK(p.log->wait_for_event("lost"));
}

TEST_CASE("a datagram longer than its slot arrives whole up to max_size; "
          "a longer one is truncated to max_size, as before") {
  runtime_fixture fx;
  keeper_pair p{*fx.rt, 10000};
  std::string whole(9000, 'w');
  std::string longer(12000, 't');
  REQUIRE(::send(p.peer, whole.data(), whole.size(), 0) == 9000);
  REQUIRE(::send(p.peer, longer.data(), longer.size(), 0) == 12000);
  REQUIRE(p.log->wait_for_event("n:2"));
  std::lock_guard<std::mutex> guard{p.k->mtx};
  CHECK(p.k->bytes[0].str() == whole);
  CHECK(p.k->bytes[1].str() == longer.substr(0, 10000));
  CHECK(p.log->count("error:", true) == 0);
}

TEST_CASE("read credit returns in full: a flood through a small read window "
          "keeps flowing, in order") {
  // 8 KiB high / 2 KiB low: a batch in a block of 16 KiB or more stops
  // reading until its messages are destroyed (queued mode: the batch sits in
  // the protocol's mailbox; with the fast path each message is handled, and
  // its credit returned, as it is delivered); credit that did not return in
  // full would stall the endpoint for good (the sender times out).
  runtime_fixture fx{2, [](test_config& cfg) {
                       cfg.read_high_water = 8 * 1024;
                       cfg.read_low_water = 2 * 1024;
                     }};
  keeper_pair p{*fx.rt};
  constexpr int total = 2000;
  // A stalled endpoint makes the blocking sender fail, not hang.
  timeval tv{10, 0};
  ::setsockopt(p.peer, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::thread sender([&] {
    for (int i = 0; i < total; ++i) {
      auto s = std::to_string(i);
      if (::send(p.peer, s.data(), s.size(), 0) !=
          static_cast<ssize_t>(s.size()))
        return; // checked below: the count falls short
    }
  });
  bool all = p.log->wait_for_event("n:" + std::to_string(total));
  sender.join();
  REQUIRE(all);
  std::lock_guard<std::mutex> guard{p.k->mtx};
  REQUIRE(p.k->bytes.size() == total);
  for (int i = 0; i < total; ++i)
    CHECK(p.k->bytes[static_cast<size_t>(i)].str() == std::to_string(i));
  // Storage kept by the protocol is its own business (copies hold no
  // credit), as in asyncio.
  p.k->bytes.clear();
}

TEST_CASE("queued datagrams flushed with sendmmsg arrive in order at the "
          "right peers") {
  auto send_batch = GENERATE(size_t{64}, size_t{1});
  CAPTURE(send_batch);
  runtime_fixture fx;
  auto path_a = unique_path("a");
  auto path_b = unique_path("b");
  int rx_a = bound_unix(path_a);
  int rx_b = bound_unix(path_b);
  // An unconnected sender with a tiny send buffer: a Unix datagram stays
  // charged to the sender until read, so sends meet EAGAIN and queue.
  int tx = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(tx >= 0);
  int small = 1;
  ::setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  auto log = std::make_shared<event_log>();
  auto k = std::make_shared<kept>();
  auto t = std::make_shared<datagram_transport_actor>();
  auto done =
      std::make_shared<std::promise<caf::expected<datagram_endpoint>>>();
  auto fut = done->get_future();
  datagram_settings ds;
  ds.max_size = 256 * 1024;
  ds.send_batch = send_batch;
  detail::spawn_datagram_transport(fx.rt->shard_at(0), tx, "unix_dgram",
                                   keeper(log, k, t), ds,
                                   [done](caf::expected<datagram_endpoint> x) {
                                     done->set_value(std::move(x));
                                   });
  auto ep = fut.get();
  REQUIRE(ep);
  REQUIRE(ask<write_buffer_limits>(*fx.rt, ep->transport,
                                   set_write_buffer_limits{4096, 1024}));
  endpoint peer_a;
  peer_a.family = endpoint::kind::unix_path;
  peer_a.path = path_a;
  endpoint peer_b = peer_a;
  peer_b.path = path_b;
  constexpr int total = 300;
  auto payload = [](int i) {
    return std::to_string(i) + ":" +
           std::string(200, static_cast<char>('a' + i % 26));
  };
  for (int i = 0; i < total; ++i)
    caf::anon_send(ep->transport,
                   shardwire::sendto{buffer::copy_of(payload(i)),
                                     i % 2 == 0 ? peer_a : peer_b});
  // The queue built up (so the flush path ran, not just direct sends).
  REQUIRE(log->wait_for_event("pause"));
  // Drain both receivers; each sees its half, in order.
  int next_a = 0;
  int next_b = 1;
  auto until = std::chrono::steady_clock::now() + deadline;
  while ((next_a < total || next_b < total) &&
         std::chrono::steady_clock::now() < until) {
    if (next_a < total)
      if (auto d = recv_one(rx_a, std::chrono::milliseconds{10})) {
        REQUIRE(*d == payload(next_a));
        next_a += 2;
      }
    if (next_b < total)
      if (auto d = recv_one(rx_b, std::chrono::milliseconds{10})) {
        REQUIRE(*d == payload(next_b));
        next_b += 2;
      }
  }
  CHECK(next_a >= total);
  CHECK(next_b >= total);
  CHECK(log->wait_for_event("resume"));
  CHECK(log->count("error:", true) == 0);
  caf::anon_send(ep->transport, shardwire::close{});
  CHECK(log->wait_for_event("lost"));
  ::close(rx_a);
  ::close(rx_b);
  ::unlink(path_a.c_str());
  ::unlink(path_b.c_str());
}
