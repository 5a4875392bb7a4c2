// Datagram endpoints (transports/udp.hpp): the datagram guarantees of
// actors/messages.hpp and asyncio's checklist C55-C68
// (reference/asyncio-semantics.md, section 3). Loopback only; every wait is
// bounded (event_log deadlines, poll timeouts), none is a sleep.
#include "transports/detail/datagram_transport.hpp"
#include "transports/udp.hpp"

#include "actors/extra_info.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/log_capture.hpp"
#include "tests/transports/helpers.hpp"
#include "transports/tcp.hpp" // server_options, for C66's positive check

#include <caf/send.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <future>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace shardwire;
using namespace shardwire::test;

namespace {

struct dgram_recorder_options {
  /// Send every datagram back to its sender.
  bool echo = false;
};

/// Logs "connected", "dgram:<bytes>", "from:<peer>", "error:<describe>",
/// "pause", "resume", "lost" / "lost:<error>"; stores its transport.
datagram_protocol_factory
dgram_recorder(event_log_ptr log, dgram_recorder_options opts = {},
               std::shared_ptr<datagram_transport_actor> out = nullptr) {
  if (!out) out = std::make_shared<datagram_transport_actor>();
  return datagram_protocol_fun(
      [](datagram_protocol_actor::pointer self, event_log_ptr log,
         dgram_recorder_options opts,
         std::shared_ptr<datagram_transport_actor> out)
          -> datagram_protocol_actor::behavior_type {
        // Per actor: several endpoints may share `out` (reuse_port test).
        auto mine = std::make_shared<datagram_transport_actor>();
        auto shard_id = std::make_shared<uint32_t>(0);
        return {
            [=](datagram_connected& msg) {
              *mine = msg.transport;
              *shard_id = msg.info.shard;
              *out = msg.transport;
              log->add("connected");
            },
            [=](datagram& msg) {
              log->add("from:" + to_string(msg.peer));
              log->add("on-shard:" + std::to_string(*shard_id) + ":" +
                       to_string(msg.peer));
              log->add("dgram:" + msg.bytes.str());
              if (opts.echo)
                self->send(*mine, shardwire::sendto{msg.bytes, msg.peer});
            },
            [=](datagram_error& msg) {
              log->add("error:" + describe(msg.reason));
              log->add(is_errno(msg.reason, ECONNREFUSED) ? "refused"
                       : is_errno(msg.reason, EMSGSIZE)   ? "msgsize"
                                                          : "other-error");
            },
            [=](shardwire::pause) { log->add("pause"); },
            [=](shardwire::resume) { log->add("resume"); },
            [=](lost& msg) {
              log->add(msg.reason ? "lost:" + describe(msg.reason) : "lost");
              self->quit();
            },
        };
      },
      std::move(log), opts, std::move(out));
}

datagram_options local(std::string host = "127.0.0.1", uint16_t port = 0) {
  datagram_options o;
  o.local_addr = host_port{std::move(host), port};
  return o;
}

datagram_options remote(uint16_t port, std::string host = "127.0.0.1") {
  datagram_options o;
  o.remote_addr = host_port{std::move(host), port};
  return o;
}

/// A raw blocking UDP socket bound to 127.0.0.1:0.
struct raw_udp {
  raw_udp() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  ~raw_udp() {
    if (fd >= 0) ::close(fd);
  }
  uint16_t port() const {
    sockaddr_in a = {};
    socklen_t len = sizeof(a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
  }
  bool send_to(uint16_t port, std::string_view bytes) const {
    sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return ::sendto(fd, bytes.data(), bytes.size(), 0,
                    reinterpret_cast<sockaddr*>(&a),
                    sizeof(a)) == static_cast<ssize_t>(bytes.size());
  }
  int fd = -1;
};

/// Receives one datagram from `fd` within `timeout`; nullopt on timeout.
std::optional<std::string>
recv_one(int fd, std::chrono::milliseconds timeout = deadline) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1)
    return std::nullopt;
  std::string buf(300 * 1024, '\0');
  auto n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<size_t>(n));
  return buf;
}

bool ipv6_loopback_available() {
  int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 a = {};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

/// A port on 127.0.0.1 that nobody listens on (bound once, then closed).
uint16_t closed_udp_port() {
  raw_udp r;
  return r.port();
}

/// Sends `msg` as a request; the error reply, or none on success.
caf::error request_sendto(runtime& rt, const datagram_transport_actor& t,
                          shardwire::sendto msg) {
  caf::scoped_actor self{rt.system()};
  caf::error result = make_error(sw_errc::timeout, "no reply");
  self->request(t, std::chrono::seconds(10), std::move(msg))
      .receive([&] { result = caf::error{}; },
               [&](caf::error& err) { result = std::move(err); });
  return result;
}

transport_status status_of(runtime& rt, const datagram_transport_actor& t) {
  auto st = ask<transport_status>(rt, t, get_status{});
  REQUIRE(st);
  return *st;
}

/// 127.0.0.1:`port` as a datagram peer.
endpoint ipv4_peer(uint16_t port) {
  return endpoint{endpoint::kind::ipv4, "127.0.0.1", port, {}};
}

/// The captured log lines, one per line (for INFO).
std::string lines_of(const log_capture& cap) {
  std::string out;
  for (auto& line : cap.lines())
    out += line + "\n";
  return out;
}

} // namespace

TEST_CASE("no address and no family is invalid_argument (asyncio's rule)") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  auto ep = create_datagram_endpoint(*fx.rt, dgram_recorder(log), {});
  REQUIRE_FALSE(ep);
  CHECK(is(ep.error(), sw_errc::invalid_argument));
}

TEST_CASE("port 0 reports the bound port in sockname") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  auto ep = create_datagram_endpoint(*fx.rt, dgram_recorder(log), local());
  REQUIRE(ep);
  CHECK(ep->info.kind == "udp");
  CHECK(ep->info.sockname.family == endpoint::kind::ipv4);
  CHECK(ep->info.sockname.port != 0);
  CHECK_FALSE(ep->info.peername.valid()); // C61: unconnected
  CHECK(log->count("connected") == 1);
  auto lim = ask<write_buffer_limits>(*fx.rt, ep->transport,
                                      get_write_buffer_limits{});
  REQUIRE(lim);
  CHECK(*lim == write_buffer_limits{16384, 65536}); // C65
  caf::anon_send(ep->transport, shardwire::close{});
  CHECK(log->wait_for_event("lost")); // C67
}

TEST_CASE("set_protocol, get_protocol and extra info by name on a datagram "
          "endpoint") {
  runtime_fixture fx;
  auto log1 = std::make_shared<event_log>();
  auto ep = create_datagram_endpoint(*fx.rt, dgram_recorder(log1), local());
  REQUIRE(ep);
  // asyncio's names: an unconnected endpoint has no peername.
  CHECK(std::get<int64_t>(extra_info(ep->info, "socket")) == ep->info.fd);
  CHECK(std::get<endpoint>(extra_info(ep->info, "sockname")) ==
        ep->info.sockname);
  CHECK(std::holds_alternative<std::monostate>(
      extra_info(ep->info, "peername")));
  CHECK_FALSE(ep->info.can_write_eof);
  auto before = ask<datagram_protocol_actor>(*fx.rt, ep->transport,
                                             get_protocol{});
  REQUIRE(before);
  CHECK(*before == ep->protocol);
  raw_udp peer;
  REQUIRE(peer.send_to(ep->info.sockname.port, "one"));
  REQUIRE(log1->wait_for_event("dgram:one"));
  auto log2 = std::make_shared<event_log>();
  auto second = dgram_recorder(log2)(fx.rt->shard_at(ep->info.shard));
  caf::anon_send(ep->transport, set_datagram_protocol{second});
  // Handled after set_datagram_protocol (same sender, in order).
  auto after = ask<datagram_protocol_actor>(*fx.rt, ep->transport,
                                            get_protocol{});
  REQUIRE(after);
  CHECK(*after == second);
  REQUIRE(peer.send_to(ep->info.sockname.port, "two"));
  REQUIRE(log2->wait_for_event("dgram:two"));
  caf::anon_send(ep->transport, shardwire::close{});
  REQUIRE(log2->wait_for_event("lost"));
  // The new protocol got no datagram_connected; the first one nothing after
  // the switch (and no lost: it is no longer the transport's business).
  CHECK(log2->count("connected") == 0);
  CHECK(log1->count("dgram:two") == 0);
  CHECK(log1->count("lost") == 0);
  CHECK(wait_down(*fx.rt, ep->protocol, [&](caf::scoped_actor& self) {
    self->send_exit(ep->protocol, caf::exit_reason::user_shutdown);
  }));
}

TEST_CASE("echo over IPv4 and IPv6") {
  runtime_fixture fx;
  std::vector<std::string> hosts{"127.0.0.1"};
  if (ipv6_loopback_available())
    hosts.emplace_back("::1");
  else
    WARN("::1 unavailable: IPv6 echo skipped");
  for (auto& host : hosts) {
    INFO(host);
    auto slog = std::make_shared<event_log>();
    auto srv = create_datagram_endpoint(
        *fx.rt, dgram_recorder(slog, {.echo = true}), local(host));
    REQUIRE(srv);
    auto clog = std::make_shared<event_log>();
    auto cli = create_datagram_endpoint(*fx.rt, dgram_recorder(clog),
                                        remote(srv->info.sockname.port, host));
    REQUIRE(cli);
    CHECK(cli->info.peername == srv->info.sockname); // C61: connected
    caf::anon_send(cli->transport,
                   shardwire::sendto{buffer::copy_of("ping"), caf::none});
    // C55: the remote address itself is accepted as well.
    caf::anon_send(cli->transport, shardwire::sendto{buffer::copy_of("pong"),
                                                     srv->info.sockname});
    CHECK(clog->wait_for_event("dgram:pong"));
    CHECK(clog->count("dgram:ping") == 1);
    CHECK(slog->count("from:" + to_string(cli->info.sockname)) == 2);
    caf::anon_send(cli->transport, shardwire::close{});
    caf::anon_send(srv->transport, shardwire::close{});
    CHECK(clog->wait_for_event("lost"));
    CHECK(slog->wait_for_event("lost"));
  }
}

TEST_CASE("an empty datagram is delivered as empty (C60)") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  auto srv = create_datagram_endpoint(*fx.rt, dgram_recorder(log), local());
  REQUIRE(srv);
  raw_udp peer;
  REQUIRE(peer.send_to(srv->info.sockname.port, ""));
  REQUIRE(peer.send_to(srv->info.sockname.port, "after"));
  CHECK(log->wait_for_event("dgram:after"));
  auto ev = log->events();
  auto empty = std::find(ev.begin(), ev.end(), "dgram:");
  REQUIRE(empty != ev.end());
  CHECK(*(empty - 2) == "from:127.0.0.1:" + std::to_string(peer.port()));
}

TEST_CASE("connected endpoint: ICMP unreachable is a datagram_error and the "
          "transport stays open (C57)") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  auto cli = create_datagram_endpoint(*fx.rt, dgram_recorder(log),
                                      remote(closed_udp_port()));
  REQUIRE(cli);
  caf::anon_send(cli->transport,
                 shardwire::sendto{buffer::copy_of("x"), caf::none});
  REQUIRE(log->wait_for_event("refused"));
  CHECK_FALSE(status_of(*fx.rt, cli->transport).closing);
  CHECK(log->count("lost", true) == 0);
  // Still usable: another send fails the same way, no crash, no close.
  caf::anon_send(cli->transport,
                 shardwire::sendto{buffer::copy_of("y"), caf::none});
  CHECK(log->wait_for([](const std::vector<std::string>& ev) {
    return std::count(ev.begin(), ev.end(), "refused") >= 2;
  }));
  CHECK_FALSE(status_of(*fx.rt, cli->transport).closing);
}

TEST_CASE("unconnected endpoint: ICMP unreachable is not reported and the "
          "endpoint serves on (C58)") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  auto ep = create_datagram_endpoint(*fx.rt, dgram_recorder(log), local());
  REQUIRE(ep);
  auto nobody = ipv4_peer(closed_udp_port());
  caf::anon_send(ep->transport,
                 shardwire::sendto{buffer::copy_of("x"), nobody});
  caf::anon_send(ep->transport,
                 shardwire::sendto{buffer::copy_of("y"), nobody});
  raw_udp peer;
  caf::anon_send(ep->transport, shardwire::sendto{buffer::copy_of("ping"),
                                                  ipv4_peer(peer.port())});
  // Sent after the two refused ones (same sender, in order).
  REQUIRE(recv_one(peer.fd) == std::optional<std::string>{"ping"});
  REQUIRE(peer.send_to(ep->info.sockname.port, "answer"));
  REQUIRE(log->wait_for_event("dgram:answer"));
  // The port-unreachable errors came back before the answer was even sent:
  // a socket that asked for them (IP_RECVERR) would have reported them by
  // now, ahead of the answer.
  CHECK(log->count("error:", true) == 0);
  CHECK_FALSE(status_of(*fx.rt, ep->transport).closing);
  CHECK(log->count("lost", true) == 0);
  caf::anon_send(ep->transport, shardwire::close{});
  CHECK(log->wait_for_event("lost"));
}

TEST_CASE("sendto of an empty buffer sends an empty datagram (C59)") {
  runtime_fixture fx;
  raw_udp peer;
  auto ulog = std::make_shared<event_log>();
  auto unconnected =
      create_datagram_endpoint(*fx.rt, dgram_recorder(ulog), local());
  REQUIRE(unconnected);
  auto clog = std::make_shared<event_log>();
  auto connected = create_datagram_endpoint(*fx.rt, dgram_recorder(clog),
                                            remote(peer.port()));
  REQUIRE(connected);
  caf::anon_send(unconnected->transport,
                 shardwire::sendto{buffer{}, ipv4_peer(peer.port())});
  caf::anon_send(
      unconnected->transport,
      shardwire::sendto{buffer::copy_of("after"), ipv4_peer(peer.port())});
  // A datagram with no bytes comes first (3.11 would send nothing: the
  // first one read would be "after").
  CHECK(recv_one(peer.fd) == std::optional<std::string>{""});
  CHECK(recv_one(peer.fd) == std::optional<std::string>{"after"});
  // The same on a connected endpoint (no peer named).
  caf::anon_send(connected->transport, shardwire::sendto{buffer{}, caf::none});
  caf::anon_send(connected->transport,
                 shardwire::sendto{buffer::copy_of("after"), caf::none});
  CHECK(recv_one(peer.fd) == std::optional<std::string>{""});
  CHECK(recv_one(peer.fd) == std::optional<std::string>{"after"});
  caf::anon_send(unconnected->transport, shardwire::close{});
  caf::anon_send(connected->transport, shardwire::close{});
  CHECK(ulog->wait_for_event("lost"));
  CHECK(clog->wait_for_event("lost"));
  CHECK(ulog->count("error:", true) == 0);
  CHECK(clog->count("error:", true) == 0);
}

TEST_CASE("a bad peer is a clear error reply and the transport stays open "
          "(C55/C56)") {
  runtime_fixture fx;
  auto slog = std::make_shared<event_log>();
  auto srv = create_datagram_endpoint(*fx.rt, dgram_recorder(slog), local());
  REQUIRE(srv);
  SECTION("connected endpoint, another peer") {
    auto clog = std::make_shared<event_log>();
    auto cli = create_datagram_endpoint(*fx.rt, dgram_recorder(clog),
                                        remote(srv->info.sockname.port));
    REQUIRE(cli);
    endpoint other{endpoint::kind::ipv4, "127.0.0.1", 1, {}};
    auto r = request_sendto(*fx.rt, cli->transport,
                            shardwire::sendto{buffer::copy_of("a"), other});
    REQUIRE(r);
    CHECK(is(r, sw_errc::invalid_argument));
    // A plain send with a bad peer is logged and dropped.
    caf::anon_send(cli->transport,
                   shardwire::sendto{buffer::copy_of("b"), other});
    auto ok =
        request_sendto(*fx.rt, cli->transport,
                       shardwire::sendto{buffer::copy_of("c"), caf::none});
    CHECK_FALSE(ok);
    CHECK(slog->wait_for_event("dgram:c"));
    CHECK(slog->count("dgram:a") == 0);
    CHECK(slog->count("dgram:b") == 0);
    CHECK_FALSE(status_of(*fx.rt, cli->transport).closing);
  }
  SECTION("unconnected endpoint, no peer") {
    // After the runtime set the level from its config (fixture above).
    log_capture cap{log::level::warning};
    auto r = request_sendto(*fx.rt, srv->transport,
                            shardwire::sendto{buffer::copy_of("a"), caf::none});
    REQUIRE(r);
    CHECK(is(r, sw_errc::invalid_argument));
    endpoint bad{endpoint::kind::ipv4, "not-an-address", 1, {}};
    auto r2 = request_sendto(*fx.rt, srv->transport,
                             shardwire::sendto{buffer::copy_of("a"), bad});
    REQUIRE(r2);
    CHECK(is(r2, sw_errc::invalid_argument));
    // C56: a plain send without a peer is logged and dropped (asyncio: a
    // fatal TypeError that closes the transport).
    caf::anon_send(srv->transport,
                   shardwire::sendto{buffer::copy_of("b"), caf::none});
    REQUIRE(cap.wait_for("sendto dropped: "));
    CHECK_FALSE(status_of(*fx.rt, srv->transport).closing);
    CHECK(slog->count("lost", true) == 0);
    // Still sending: a datagram to a real peer arrives.
    raw_udp peer;
    caf::anon_send(srv->transport, shardwire::sendto{buffer::copy_of("after"),
                                                     ipv4_peer(peer.port())});
    CHECK(recv_one(peer.fd) == std::optional<std::string>{"after"});
    // Only the plain send was logged (a request gets the error instead).
    INFO(lines_of(cap));
    CHECK(cap.count("sendto dropped: ") == 1);
    CHECK(cap.count("needs a peer address") == 1);
    CHECK(cap.lines().size() == 1);
  }
}

TEST_CASE("an oversized datagram is a datagram_error (EMSGSIZE)") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  auto ep = create_datagram_endpoint(*fx.rt, dgram_recorder(log), local());
  REQUIRE(ep);
  std::string big(70000, 'x');
  caf::anon_send(ep->transport,
                 shardwire::sendto{buffer::copy_of(big), ep->info.sockname});
  CHECK(log->wait_for_event("msgsize"));
  // The largest UDP payload still arrives intact (C63).
  std::string max(65507, 'y');
  caf::anon_send(ep->transport,
                 shardwire::sendto{buffer::copy_of(max), ep->info.sockname});
  CHECK(log->wait_for_event("dgram:" + max));
  CHECK_FALSE(status_of(*fx.rt, ep->transport).closing);
}

namespace {

/// A datagram transport on one end of a Unix datagram socketpair; the other
/// end (`peer`) is a raw socket the test reads (or not).
struct dgram_pair {
  explicit dgram_pair(runtime& rt) {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
    peer = sv[1];
    // A Unix datagram socketpair has no receive-queue length limit (the
    // receiver's peer is the sender); a small send buffer makes the sender
    // see EAGAIN after a few datagrams.
    int small = 4096;
    ::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    auto done =
        std::make_shared<std::promise<caf::expected<datagram_endpoint>>>();
    auto fut = done->get_future();
    datagram_settings ds;
    ds.connected = true;
    ds.max_size = 256 * 1024;
    detail::spawn_datagram_transport(
        rt.shard_at(0), sv[0], "unix_dgram", dgram_recorder(log, {}, hdl), ds,
        [done](caf::expected<datagram_endpoint> x) {
          done->set_value(std::move(x));
        });
    auto ep = fut.get();
    REQUIRE(ep);
    transport = ep->transport;
  }
  ~dgram_pair() {
    if (peer >= 0) ::close(peer);
  }
  event_log_ptr log = std::make_shared<event_log>();
  std::shared_ptr<datagram_transport_actor> hdl =
      std::make_shared<datagram_transport_actor>();
  datagram_transport_actor transport;
  int peer = -1;
};

bool alternates(const std::vector<std::string>& ev) {
  std::string expect = "pause";
  for (auto& e : ev) {
    if (e != "pause" && e != "resume") continue;
    if (e != expect) return false;
    expect = expect == "pause" ? "resume" : "pause";
  }
  return true;
}

} // namespace

TEST_CASE("sendto queues under EAGAIN; pause and resume strictly alternate; "
          "close flushes") {
  runtime_fixture fx;
  dgram_pair p{*fx.rt};
  auto lim = ask<write_buffer_limits>(*fx.rt, p.transport,
                                      set_write_buffer_limits{4096, 1024});
  REQUIRE(lim);
  constexpr int total = 200;
  for (int i = 0; i < total; ++i)
    caf::anon_send(
        p.transport,
        shardwire::sendto{buffer::copy_of(std::string(1000, 'a' + i % 26)),
                          caf::none});
  REQUIRE(p.log->wait_for_event("pause"));
  auto size = ask<uint64_t>(*fx.rt, p.transport, get_write_buffer_size{});
  REQUIRE(size);
  CHECK(*size > 4096);
  caf::anon_send(p.transport, shardwire::close{});
  // The reader drains: every queued datagram arrives, in order, then lost.
  for (int i = 0; i < total; ++i) {
    auto d = recv_one(p.peer);
    REQUIRE(d);
    CHECK(*d == std::string(1000, 'a' + i % 26));
  }
  CHECK(p.log->wait_for_event("lost"));
  CHECK(alternates(p.log->events()));
  CHECK(p.log->count("resume") <= p.log->count("pause"));
}

TEST_CASE("close flushes queued datagrams and a sendto after close is "
          "dropped with a warning (C64)") {
  runtime_fixture fx;
  SECTION("connected endpoint, datagrams queued behind EAGAIN") {
    dgram_pair p{*fx.rt};
    log_capture cap{log::level::warning};
    REQUIRE(ask<write_buffer_limits>(*fx.rt, p.transport,
                                     set_write_buffer_limits{4096, 1024}));
    constexpr int total = 50;
    for (int i = 0; i < total; ++i)
      caf::anon_send(
          p.transport,
          shardwire::sendto{buffer::copy_of(std::string(1000, 'a' + i % 26)),
                            caf::none});
    REQUIRE(p.log->wait_for_event("pause")); // some are queued for sure
    caf::anon_send(p.transport, shardwire::close{});
    caf::anon_send(p.transport,
                   shardwire::sendto{buffer::copy_of("late"), caf::none});
    // Handled after close (same sender, in order): dropped and logged.
    REQUIRE(cap.wait_for("sendto on closed transport (unix_dgram)"));
    // The flush goes on as the peer reads: every datagram sent before
    // close, in order.
    for (int i = 0; i < total; ++i) {
      auto d = recv_one(p.peer);
      REQUIRE(d);
      CHECK(*d == std::string(1000, 'a' + i % 26));
    }
    REQUIRE(p.log->wait_for_event("lost"));
    // `lost` is last: nothing was sent after it, and a Unix datagram lands
    // in the peer's queue at once, so the queue is complete now: no "late".
    char byte;
    auto n = ::recv(p.peer, &byte, 1, MSG_DONTWAIT);
    int err = errno;
    CHECK(n < 0);
    CHECK((err == EAGAIN || err == EWOULDBLOCK));
    INFO(lines_of(cap));
    CHECK(cap.count("sendto on closed transport") == 1);
    CHECK(cap.lines().size() == 1);
  }
  SECTION("unconnected endpoint") {
    auto log = std::make_shared<event_log>();
    auto ep = create_datagram_endpoint(*fx.rt, dgram_recorder(log), local());
    REQUIRE(ep);
    raw_udp peer;
    for (auto text : {"one", "two", "three"})
      caf::anon_send(ep->transport, shardwire::sendto{buffer::copy_of(text),
                                                      ipv4_peer(peer.port())});
    caf::anon_send(ep->transport, shardwire::close{});
    caf::anon_send(ep->transport, shardwire::sendto{buffer::copy_of("late"),
                                                    ipv4_peer(peer.port())});
    REQUIRE(log->wait_for_event("lost"));
    // Nothing was queued, so `close` ended the transport at once and "late"
    // met an actor that had quit: no warning is logged for it (the guide
    // promises one; see docs/asyncio-conformance.md C64), but it is dropped.
    // A loopback UDP send is in the peer's queue when sendto returns, and
    // `lost` comes after the last one: read without waiting.
    std::vector<std::string> got;
    std::string buf(64, '\0');
    ssize_t n;
    while ((n = ::recv(peer.fd, buf.data(), buf.size(), MSG_DONTWAIT)) >= 0)
      got.emplace_back(buf.data(), static_cast<size_t>(n));
    int err = errno;
    CHECK((err == EAGAIN || err == EWOULDBLOCK));
    CHECK(got == std::vector<std::string>{"one", "two", "three"});
  }
}

TEST_CASE("pause/resume alternate over several cycles") {
  runtime_fixture fx;
  dgram_pair p{*fx.rt};
  REQUIRE(ask<write_buffer_limits>(*fx.rt, p.transport,
                                   set_write_buffer_limits{2048, 512}));
  constexpr int per_round = 60;
  constexpr size_t dgram_size = 500;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < per_round; ++i)
      caf::anon_send(
          p.transport,
          shardwire::sendto{buffer::copy_of(std::string(dgram_size, 'x')),
                            caf::none});
    auto pauses = static_cast<size_t>(round + 1);
    REQUIRE(p.log->wait_for([&](const std::vector<std::string>& ev) {
      return static_cast<size_t>(std::count(ev.begin(), ev.end(), "pause")) ==
             pauses;
    }));
    // Handled after every sendto of this round (sent before it): the queue
    // only shrinks from here, so this round pauses once and resumes once.
    // What is not queued was sent into the socket; the previous rounds were
    // read entirely, so the peer's queue holds the rest of this round.
    auto queued = ask<uint64_t>(*fx.rt, p.transport, get_write_buffer_size{});
    REQUIRE(queued);
    CHECK(*queued > 2048);
    CHECK(*queued <= per_round * dgram_size);
    // Read every datagram of the round: each one must come (the transport
    // flushes as the peer reads), so a receive only times out on a bug.
    for (int i = 0; i < per_round; ++i) {
      auto d = recv_one(p.peer);
      REQUIRE(d);
      CHECK(d->size() == dgram_size);
    }
    // The queue drained past the low mark: `resume` was sent, and nothing is
    // left queued.
    REQUIRE(p.log->wait_for([&](const std::vector<std::string>& ev) {
      return static_cast<size_t>(std::count(ev.begin(), ev.end(), "resume")) ==
             pauses;
    }));
    auto left = ask<uint64_t>(*fx.rt, p.transport, get_write_buffer_size{});
    REQUIRE(left);
    CHECK(*left == 0);
  }
  CHECK(alternates(p.log->events()));
  CHECK(p.log->count("pause") == 3);
}

TEST_CASE("abort drops queued datagrams") {
  runtime_fixture fx;
  dgram_pair p{*fx.rt};
  constexpr int total = 100;
  for (int i = 0; i < total; ++i)
    caf::anon_send(
        p.transport,
        shardwire::sendto{buffer::copy_of(std::string(1000, 'z')), caf::none});
  REQUIRE(p.log->wait_for_event("pause")); // some are queued for sure
  caf::anon_send(p.transport, shardwire::abort{});
  REQUIRE(p.log->wait_for_event("lost"));
  // `lost` comes last: the transport sends nothing after it, and a Unix
  // datagram send lands in the peer's queue at once. So the queue now holds
  // everything that was flushed before the abort: read it without waiting.
  int got = 0;
  std::string buf(2000, '\0');
  ssize_t n;
  while ((n = ::recv(p.peer, buf.data(), buf.size(), MSG_DONTWAIT)) >= 0) {
    CHECK(n == 1000);
    ++got;
  }
  int err = errno;
  CHECK((err == EAGAIN || err == EWOULDBLOCK));
  CHECK(got < total);
  CHECK(p.log->count("resume") == 0);
}

namespace {

class throwing_protocol : public datagram_protocol {
public:
  explicit throwing_protocol(event_log_ptr log) : log_(std::move(log)) {}
  void connection_made(datagram_transport_ref&) override {
    log_->add("connected");
  }
  void datagram_received(const buffer& bytes, const endpoint&) override {
    if (bytes.view() == "boom") throw std::runtime_error("boom");
    log_->add("dgram:" + bytes.str());
  }
  void error_received(const caf::error&) override {
    throw std::runtime_error("error boom");
  }
  void connection_lost(const caf::error& err) override {
    log_->add(err ? "lost:" + describe(err) : "lost");
  }

private:
  event_log_ptr log_;
};

} // namespace

TEST_CASE("an exception in a callback datagram protocol is not fatal (C62)") {
  runtime_fixture fx;
  log_capture cap{log::level::warning};
  auto log = std::make_shared<event_log>();
  auto ep = create_datagram_endpoint(
      *fx.rt, make_datagram_protocol<throwing_protocol>(log), local());
  REQUIRE(ep);
  raw_udp peer;
  REQUIRE(peer.send_to(ep->info.sockname.port, "boom"));
  REQUIRE(peer.send_to(ep->info.sockname.port, "next"));
  CHECK(log->wait_for_event("dgram:next"));
  // Reported (logged before the adapter took the next datagram).
  INFO(lines_of(cap));
  CHECK(cap.count("datagram_protocol.datagram_received() failed: boom") == 1);
  CHECK(cap.lines().size() == 1);
  CHECK_FALSE(status_of(*fx.rt, ep->transport).closing);
  caf::anon_send(ep->transport, shardwire::close{});
  CHECK(log->wait_for_event("lost"));
}

namespace {

// Sends one datagram and closes inside connection_made.
class leaving_datagram_protocol : public datagram_protocol {
public:
  leaving_datagram_protocol(event_log_ptr log, uint16_t peer_port)
      : log_(std::move(log)), peer_port_(peer_port) {}
  void connection_made(datagram_transport_ref& t) override {
    log_->add("connected");
    t.sendto(std::string_view{"bye"}, endpoint{endpoint::kind::ipv4, "127.0.0.1", peer_port_, {}});
    t.close();
  }
  void connection_lost(const caf::error& err) override {
    log_->add(err ? "lost:" + describe(err) : "lost");
  }

private:
  event_log_ptr log_;
  uint16_t peer_port_;
};

} // namespace

TEST_CASE("a datagram protocol that closes in connection_made still gets "
          "its endpoint from create_datagram_endpoint, as in asyncio") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  raw_udp peer;
  auto ep = create_datagram_endpoint(
      *fx.rt, make_datagram_protocol<leaving_datagram_protocol>(log, peer.port()),
      local());
  REQUIRE(ep); // not sw_errc::closed: connection_made ran
  CHECK(ep->transport);
  REQUIRE(log->wait_for_event("lost"));
  CHECK(log->events() == std::vector<std::string>{"connected", "lost"});
  CHECK(recv_one(peer.fd) == std::optional<std::string>{"bye"}); // flushed before the close
}

TEST_CASE("Unix datagram endpoints by path") {
  runtime_fixture fx;
  auto base = "/tmp/shardwire-udp-test-" + std::to_string(::getpid());
  auto srv_path = base + "-srv";
  auto cli_path = base + "-cli";
  {
    // A stale socket file at the server path is replaced (asyncio does).
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, srv_path.c_str(), sizeof(addr.sun_path) - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    ::close(fd);
  }
  auto slog = std::make_shared<event_log>();
  datagram_options so;
  so.local_path = srv_path;
  auto srv = create_datagram_endpoint(*fx.rt,
                                      dgram_recorder(slog, {.echo = true}), so);
  REQUIRE(srv);
  CHECK(srv->info.kind == "unix_dgram");
  auto clog = std::make_shared<event_log>();
  datagram_options co;
  co.local_path = cli_path;
  co.remote_path = srv_path;
  auto cli = create_datagram_endpoint(*fx.rt, dgram_recorder(clog), co);
  REQUIRE(cli);
  caf::anon_send(cli->transport,
                 shardwire::sendto{buffer::copy_of("hi"), caf::none});
  CHECK(clog->wait_for_event("dgram:hi"));
  CHECK(slog->count("from:" + cli_path) == 1);
  caf::anon_send(cli->transport, shardwire::close{});
  caf::anon_send(srv->transport, shardwire::close{});
  CHECK(clog->wait_for_event("lost"));
  CHECK(slog->wait_for_event("lost"));
  ::unlink(srv_path.c_str());
  ::unlink(cli_path.c_str());
}

TEST_CASE("a Unix datagram endpoint cuts a longer datagram to 262144 bytes "
          "by default (C63)") {
  runtime_fixture fx;
  auto path = "/tmp/shardwire-udp-test-" + std::to_string(::getpid()) + "-c63";
  auto log = std::make_shared<event_log>();
  datagram_options so;
  so.local_path = path;
  auto ep = create_datagram_endpoint(*fx.rt, dgram_recorder(log), so);
  REQUIRE(ep);
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  // The default send buffer (about 208 KiB) refuses a 300000-byte datagram;
  // the kernel caps the request at twice wmem_max.
  int big = 1 << 20;
  REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)) == 0);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  std::string payload(300000, '\0');
  for (size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  auto sent = ::sendto(fd, payload.data(), payload.size(), 0,
                       reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  INFO("sendto: " << (sent < 0 ? std::strerror(errno) : "ok"));
  REQUIRE(sent == static_cast<ssize_t>(payload.size()));
  REQUIRE(::sendto(fd, "after", 5, 0, reinterpret_cast<sockaddr*>(&addr),
                   sizeof(addr)) == 5);
  REQUIRE(log->wait_for_event("dgram:after"));
  auto ev = log->events();
  auto first = std::find_if(ev.begin(), ev.end(), [](const std::string& e) {
    return e.rfind("dgram:", 0) == 0;
  });
  REQUIRE(first != ev.end());
  auto got = first->substr(6);
  CHECK(got.size() == 262144);
  CHECK((got == payload.substr(0, 262144))); // no 256 KiB dump on failure
  CHECK(log->count("dgram:", true) == 2); // the cut one, then "after"
  CHECK(log->count("error:", true) == 0);
  ::close(fd);
  caf::anon_send(ep->transport, shardwire::close{});
  CHECK(log->wait_for_event("lost"));
  ::unlink(path.c_str());
}

TEST_CASE("reuse_port endpoints on two shards share one port") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  auto eps = create_datagram_endpoints(
      *fx.rt, dgram_recorder(log, {.echo = true}), local(), 2);
  REQUIRE(eps);
  REQUIRE(eps->size() == 2);
  auto port = (*eps)[0].info.sockname.port;
  CHECK(port != 0);
  CHECK((*eps)[1].info.sockname.port == port);
  CHECK((*eps)[0].info.shard != (*eps)[1].info.shard);
  // Several peers: each gets its echo from whichever socket its flow hashes
  // to.
  // Flow affinity: all datagrams of one peer land on one shard, in order.
  for (int i = 0; i < 8; ++i) {
    raw_udp peer;
    for (int j = 0; j < 4; ++j) {
      auto msg = "peer" + std::to_string(i) + "-" + std::to_string(j);
      REQUIRE(peer.send_to(port, msg));
    }
    for (int j = 0; j < 4; ++j) {
      auto back = recv_one(peer.fd);
      REQUIRE(back);
      CHECK(*back == "peer" + std::to_string(i) + "-" + std::to_string(j));
    }
    auto who = "127.0.0.1:" + std::to_string(peer.port());
    CHECK(log->count("on-shard:0:" + who) + log->count("on-shard:1:" + who) ==
          4);
    CHECK((log->count("on-shard:0:" + who) == 0 ||
           log->count("on-shard:1:" + who) == 0));
  }
  for (auto& ep : *eps)
    caf::anon_send(ep.transport, shardwire::close{});
  CHECK(log->wait_for([](const std::vector<std::string>& ev) {
    return std::count(ev.begin(), ev.end(), "lost") == 2;
  }));
}

TEST_CASE("runtime shutdown delivers lost to a datagram protocol") {
  auto log = std::make_shared<event_log>();
  {
    runtime_fixture fx;
    auto ep = create_datagram_endpoint(*fx.rt, dgram_recorder(log), local());
    REQUIRE(ep);
    fx.rt->shutdown();
  }
  CHECK(log->count("lost", true) == 1);
}

TEST_CASE("pause_reading holds datagrams in the kernel until resume_reading "
          "(C68)") {
  runtime_fixture fx;
  dgram_pair p{*fx.rt};
  {
    // A request, so the transport handled it before the peer sends.
    caf::scoped_actor self{fx.rt->system()};
    bool paused = false;
    self->request(p.transport, std::chrono::seconds(10), pause_reading{})
        .receive([&] { paused = true; }, [&](caf::error&) {});
    REQUIRE(paused);
  }
  REQUIRE(::send(p.peer, "held", 4, 0) == 4);
  CHECK_FALSE(status_of(*fx.rt, p.transport).reading);
  // The transport waits for no readiness while paused: two more round trips
  // through its mailbox and still nothing was delivered.
  CHECK_FALSE(status_of(*fx.rt, p.transport).reading);
  CHECK(p.log->count("dgram:held") == 0);
  caf::anon_send(p.transport, resume_reading{});
  CHECK(p.log->wait_for_event("dgram:held"));
  CHECK(status_of(*fx.rt, p.transport).reading);
}

namespace {

// C66: asyncio's `sock=` (with `local_addr`, a ValueError) and
// `reuse_address=True` (a TypeError since 3.11) cannot be written at all.
// Variable templates: a requires-expression outside a template may not
// name a member that does not exist.
template <class O>
constexpr bool has_reuse_address = requires(O& o) { o.reuse_address; };

template <class O>
constexpr bool has_sock = requires(O& o) { o.sock; };

template <class O>
constexpr bool has_reuse_port = requires(O& o) { o.reuse_port; };

/// Has a member `sock`: shows that `has_sock` detects one.
struct with_sock {
  int sock = -1;
};

} // namespace

TEST_CASE("datagram_options has no sock and no reuse_address (C66)") {
  static_assert(!has_reuse_address<datagram_options>);
  static_assert(!has_sock<datagram_options>);
  // The checks see members that exist: the same names elsewhere, and a
  // datagram option of the same kind.
  static_assert(has_reuse_address<server_options>);
  static_assert(has_sock<with_sock>);
  static_assert(has_reuse_port<datagram_options>);
  CHECK_FALSE(has_reuse_address<datagram_options>);
  CHECK_FALSE(has_sock<datagram_options>);
}
