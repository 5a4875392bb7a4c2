// TCP client and server: create_connection, create_server and the server
// actor (asyncio sections 1.4 and 7: C1, C24, C28, C34, C50-C54).
#include "transports/tcp.hpp"

#include "tests/support/fixtures.hpp"
#include "tests/support/log_capture.hpp"
#include "tests/transports/helpers.hpp"

#include <cstring>
#include <fstream>
#include <future>
#include <netdb.h>
#include <optional>
#include <set>
#include <sstream>

using namespace shardwire;
using namespace shardwire::test;

namespace {

size_t count_connected(const event_log& log) {
  return log.count("connected");
}

/// Number of connections waiting in the accept queue of the TCP socket that
/// listens on `ep`, as the kernel reports it (/proc/net/tcp or tcp6: for a
/// socket in LISTEN state, st 0A, the rx_queue column is the accept queue
/// length); nullopt if no such socket is found.
std::optional<size_t> accept_queue_of(const endpoint& ep) {
  bool v6 = ep.family == endpoint::kind::ipv6;
  unsigned char want[16] = {};
  if (::inet_pton(v6 ? AF_INET6 : AF_INET, ep.host.c_str(), want) != 1)
    return std::nullopt;
  std::ifstream in(v6 ? "/proc/net/tcp6" : "/proc/net/tcp");
  std::string line;
  std::getline(in, line); // the header
  while (std::getline(in, line)) {
    std::istringstream fields{line};
    std::string sl, local, remote, st, queues;
    if (!(fields >> sl >> local >> remote >> st >> queues)) continue;
    auto colon = local.find(':');
    auto words = colon / 8;
    if (st != "0A" || colon == std::string::npos || colon % 8 != 0 ||
        words != (v6 ? 4u : 1u) ||
        std::stoul(local.substr(colon + 1), nullptr, 16) != ep.port)
      continue;
    // Each 32-bit word of the address is printed in hex as the kernel holds
    // it in memory: copying the parsed value back gives network order.
    unsigned char addr[16] = {};
    for (size_t w = 0; w < words; ++w) {
      auto word = static_cast<uint32_t>(
          std::stoul(local.substr(w * 8, 8), nullptr, 16));
      std::memcpy(addr + 4 * w, &word, 4);
    }
    if (std::memcmp(addr, want, 4 * words) != 0) continue;
    return std::stoul(queues.substr(queues.find(':') + 1), nullptr, 16);
  }
  return std::nullopt;
}

/// Waits (deadline bounded) until the kernel shows `n` connections in the
/// accept queue of the socket listening on `ep`. Polling the kernel, not
/// synchronising: nothing else tells when a loopback handshake's last ACK
/// was processed (normally before connect returns, but softirq work may be
/// deferred to ksoftirqd).
bool wait_accept_queue(const endpoint& ep, size_t n) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (accept_queue_of(ep) != n) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

/// Request/reply round trips to the server actor, each answered "not
/// serving", that prove its shard ran its poller after a connection was
/// queued. A shard runs the actors' jobs as handlers on its io_context,
/// taking turns with the reactor: the reactor runs between the handling of
/// one request and the next, and queues the poller's work (serving every
/// descriptor that was ready then) ahead of any request sent after that
/// run. Whatever the timing, that holds for the third request at the latest,
/// so a listener that still accepted would have taken a connection queued
/// before the first request by the time the third reply comes.
void round_trips_not_serving(runtime& rt, const server_actor& srv) {
  for (int i = 0; i < 3; ++i) {
    auto serving = ask<bool>(rt, srv, is_serving{});
    REQUIRE(serving);
    CHECK(!*serving);
  }
}

/// The captured log lines, one per line (for INFO).
std::string lines_of(const log_capture& cap) {
  std::string out;
  for (auto& line : cap.lines())
    out += line + "\n";
  return out;
}

/// The distinct addresses getaddrinfo gives for a passive stream socket on
/// `host`, as create_server asks for them: "4 127.0.0.1", "6 ::1" ...
std::set<std::string> passive_addresses(const char* host) {
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_ADDRCONFIG;
  addrinfo* res = nullptr;
  std::set<std::string> out;
  if (::getaddrinfo(host, "0", &hints, &res) != 0) return out;
  for (auto* p = res; p != nullptr; p = p->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    if (p->ai_family == AF_INET) {
      auto* sa = reinterpret_cast<const sockaddr_in*>(p->ai_addr);
      ::inet_ntop(AF_INET, &sa->sin_addr, text, sizeof(text));
      out.insert(std::string{"4 "} + text);
    } else if (p->ai_family == AF_INET6) {
      auto* sa = reinterpret_cast<const sockaddr_in6*>(p->ai_addr);
      ::inet_ntop(AF_INET6, &sa->sin6_addr, text, sizeof(text));
      out.insert(std::string{"6 "} + text);
    }
  }
  ::freeaddrinfo(res);
  return out;
}

/// `ep` in the form passive_addresses uses.
std::string address_of(const endpoint& ep) {
  return (ep.family == endpoint::kind::ipv6 ? "6 " : "4 ") + ep.host;
}

/// Connects a blocking TCP socket to `ep` (IPv4 or IPv6); fd or -1.
int raw_connect_to(const endpoint& ep) {
  sockaddr_storage ss = {};
  socklen_t len = 0;
  if (ep.family == endpoint::kind::ipv6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(ep.port);
    if (::inet_pton(AF_INET6, ep.host.c_str(), &sa->sin6_addr) != 1) return -1;
    len = sizeof(sockaddr_in6);
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(ep.port);
    if (::inet_pton(AF_INET, ep.host.c_str(), &sa->sin_addr) != 1) return -1;
    len = sizeof(sockaddr_in);
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

} // namespace

// -- create_connection
// ----------------------------------------------------------

TEST_CASE("create_connection over IPv4 runs connection_made before it "
          "returns") {
  runtime_fixture fx;
  auto sink = std::make_shared<info_sink>();
  auto srv = create_server(*fx.rt, info_recorder(sink), {});
  REQUIRE(srv);
  auto client_log = std::make_shared<event_log>();
  connect_options co;
  co.host = "127.0.0.1";
  co.port = srv->sockets.at(0).port;
  auto conn = create_connection(*fx.rt, co, recorder(client_log));
  REQUIRE(conn);
  // C1: no wait here; the protocol handled `connected` before the return.
  auto evs = client_log->events();
  REQUIRE(!evs.empty());
  CHECK(evs.front() == "connected");
  CHECK(conn->info.kind == "tcp");
  CHECK(conn->info.peername.family == endpoint::kind::ipv4);
  CHECK(conn->info.peername.host == "127.0.0.1");
  CHECK(conn->info.peername.port == co.port);
  CHECK(conn->info.sockname.host == "127.0.0.1");
  CHECK(conn->info.sockname.port != 0);
  CHECK(conn->info.fd >= 0);
  CHECK(conn->info.shard < fx.rt->shard_count());
  CHECK(conn->transport);
  CHECK(conn->protocol);
  // The transport answers extra-info requests with the same facts.
  auto info = ask<transport_info>(*fx.rt, conn->transport, get_extra_info{});
  REQUIRE(info);
  CHECK(info->fd == conn->info.fd);
  CHECK(info->peername == conn->info.peername);
  // Data goes through the server's echo.
  caf::anon_send(conn->transport, shardwire::write{buffer::copy_of("ping")});
  REQUIRE(client_log->wait_for(
      [](auto& evs) { return joined_data(evs) == "ping"; }));
  // The server side saw the client's address as its peer.
  REQUIRE(sink->log->wait_for_event("connected"));
  auto server_infos = sink->snapshot();
  REQUIRE(server_infos.size() == 1);
  CHECK(server_infos[0].peername == conn->info.sockname);
  caf::anon_send(conn->transport, shardwire::close{});
  REQUIRE(client_log->wait_for_event("lost"));
  REQUIRE(sink->log->wait_for_event("lost"));
  CHECK(client_log->events().back() == "lost");
  REQUIRE(close_server(*fx.rt, srv->actor));
}

TEST_CASE("create_connection over IPv6 (::1)") {
  if (!have_ipv6_loopback()) {
    WARN("::1 is not available on this machine; IPv6 test skipped");
    return;
  }
  runtime_fixture fx;
  auto sink = std::make_shared<info_sink>();
  server_options so;
  so.hosts = {"::1"};
  auto srv = create_server(*fx.rt, info_recorder(sink), so);
  REQUIRE(srv);
  REQUIRE(srv->sockets.size() == 1);
  CHECK(srv->sockets[0].family == endpoint::kind::ipv6);
  CHECK(srv->sockets[0].host == "::1");
  auto client_log = std::make_shared<event_log>();
  connect_options co;
  co.host = "::1";
  co.port = srv->sockets[0].port;
  auto conn = create_connection(*fx.rt, co, recorder(client_log));
  REQUIRE(conn);
  CHECK(client_log->events().at(0) == "connected");
  CHECK(conn->info.peername.family == endpoint::kind::ipv6);
  CHECK(conn->info.peername.host == "::1");
  CHECK(conn->info.peername.port == co.port);
  CHECK(tcp_nodelay_of(conn->info.fd) == 1);
  caf::anon_send(conn->transport, shardwire::write{buffer::copy_of("six")});
  REQUIRE(client_log->wait_for(
      [](auto& evs) { return joined_data(evs) == "six"; }));
  // Restricting the family to IPv4 leaves no usable address for "::1".
  connect_options v4only = co;
  v4only.family = AF_INET;
  auto none = create_connection(*fx.rt, v4only, recorder(client_log));
  REQUIRE(!none);
  CHECK(is(none.error(), sw_errc::unknown_host));
  caf::anon_send(conn->transport, shardwire::close{});
  REQUIRE(client_log->wait_for_event("lost"));
  REQUIRE(close_server(*fx.rt, srv->actor));
}

TEST_CASE("create_connection to a closed port fails with ECONNREFUSED and "
          "no protocol") {
  runtime_fixture fx;
  // A socket bound but not listening: its port is taken by us (no other
  // process can listen on it meanwhile) and connects to it are refused.
  int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(holder, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
  socklen_t len = sizeof(sa);
  ::getsockname(holder, reinterpret_cast<sockaddr*>(&sa), &len);
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto log = std::make_shared<event_log>();
  connect_options co;
  co.port = ntohs(sa.sin_port);
  auto conn = create_connection(*fx.rt, co, counting(calls, recorder(log)));
  ::close(holder);
  REQUIRE(!conn);
  INFO(describe(conn.error()));
  CHECK(is_errno(conn.error(), ECONNREFUSED));
  CHECK(describe(conn.error()).find("refused") != std::string::npos);
  // C24: the protocol factory never ran, so no `connected` either.
  CHECK(calls->load() == 0);
  CHECK(log->count("connected") == 0);
}

TEST_CASE("create_connection to an unknown host fails with unknown_host") {
  runtime_fixture fx;
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto log = std::make_shared<event_log>();
  connect_options co;
  co.host = "no-such-host.invalid"; // RFC 6761: never resolves
  co.port = 9;
  co.timeout = std::chrono::milliseconds{8000};
  auto conn = create_connection(*fx.rt, co, counting(calls, recorder(log)));
  REQUIRE(!conn);
  INFO(describe(conn.error()));
  CHECK(is(conn.error(), sw_errc::unknown_host));
  CHECK(calls->load() == 0);
}

TEST_CASE("create_connection times out on a listener whose accept queue is "
          "full") {
  runtime_fixture fx;
  // A listener with backlog 0 and nobody accepting: Linux queues one
  // connection, then drops further SYNs, so a connect stays in SYN_SENT
  // (the first retransmission comes after 1 s). Loopback only.
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
  REQUIRE(::listen(lfd, 0) == 0);
  socklen_t len = sizeof(sa);
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len);
  // Fill the accept queue: connect until one attempt no longer completes.
  std::vector<int> fillers;
  bool full = false;
  for (int i = 0; i < 16 && !full; ++i) {
    int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    fillers.push_back(c);
    int rc = ::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
    if (rc == 0) continue;
    REQUIRE(errno == EINPROGRESS);
    pollfd p{c, POLLOUT, 0};
    // A bounded probe: a queued connect completes within microseconds on
    // loopback; one whose SYN was dropped does not complete for 1 s.
    full = ::poll(&p, 1, 300) == 0;
  }
  if (!full) {
    WARN("could not fill the accept queue of a backlog-0 listener; connect "
         "timeout test skipped");
  } else {
    auto calls = std::make_shared<std::atomic<int>>(0);
    auto log = std::make_shared<event_log>();
    connect_options co;
    co.port = ntohs(sa.sin_port);
    co.timeout = std::chrono::milliseconds{300};
    auto t0 = std::chrono::steady_clock::now();
    auto conn = create_connection(*fx.rt, co, counting(calls, recorder(log)));
    auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE(!conn);
    INFO(describe(conn.error()));
    CHECK(is(conn.error(), sw_errc::timeout));
    CHECK(took >= std::chrono::milliseconds{250});
    CHECK(took < std::chrono::seconds{5});
    CHECK(calls->load() == 0);
  }
  for (int c : fillers)
    ::close(c);
  ::close(lfd);
}

TEST_CASE("TCP_NODELAY is set on client and server transports") {
  runtime_fixture fx;
  auto sink = std::make_shared<info_sink>();
  auto srv = create_server(*fx.rt, info_recorder(sink), {});
  REQUIRE(srv);
  auto log = std::make_shared<event_log>();
  connect_options co;
  co.port = srv->sockets.at(0).port;
  auto conn = create_connection(*fx.rt, co, recorder(log));
  REQUIRE(conn);
  CHECK(tcp_nodelay_of(conn->info.fd) == 1);
  REQUIRE(sink->log->wait_for_event("connected"));
  auto infos = sink->snapshot();
  REQUIRE(infos.size() == 1);
  CHECK(tcp_nodelay_of(infos[0].fd) == 1);
  // A raw socket does not have it by default: the check can fail.
  int raw = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(tcp_nodelay_of(raw) == 0);
  ::close(raw);
  caf::anon_send(conn->transport, shardwire::close{});
  REQUIRE(log->wait_for_event("lost"));
  REQUIRE(sink->log->wait_for_event("lost"));
}

// -- create_server
// ----------------------------------------------------------------

TEST_CASE("create_server with port 0 reports the bound port") {
  runtime_fixture fx;
  auto sink = std::make_shared<info_sink>();
  auto srv = create_server(*fx.rt, info_recorder(sink), {});
  REQUIRE(srv);
  REQUIRE(srv->sockets.size() == 1);
  auto& ep = srv->sockets[0];
  CHECK(ep.family == endpoint::kind::ipv4);
  CHECK(ep.host == "127.0.0.1");
  REQUIRE(ep.port != 0);
  auto socks = ask<std::vector<endpoint>>(*fx.rt, srv->actor, get_sockets{});
  REQUIRE(socks);
  CHECK(*socks == srv->sockets);
  // The reported port really is the one listening.
  int c = raw_connect(ep.port);
  REQUIRE(c >= 0);
  CHECK(round_trip(c, "port zero") == "port zero");
  raw_close(c);
  REQUIRE(sink->log->wait_for_event("lost"));
  REQUIRE(close_server(*fx.rt, srv->actor));
}

TEST_CASE("create_server binds several addresses (127.0.0.1 and ::1)") {
  if (!have_ipv6_loopback()) {
    WARN("::1 is not available on this machine; test skipped");
    return;
  }
  runtime_fixture fx;
  auto sink = std::make_shared<info_sink>();
  server_options so;
  so.hosts = {"127.0.0.1", "::1"};
  auto srv = create_server(*fx.rt, info_recorder(sink), so);
  REQUIRE(srv);
  REQUIRE(srv->sockets.size() == 2);
  CHECK(srv->sockets[0].family == endpoint::kind::ipv4);
  CHECK(srv->sockets[1].family == endpoint::kind::ipv6);
  CHECK(srv->sockets[1].host == "::1");
  int c4 = raw_connect(srv->sockets[0].port);
  int c6 = raw_connect6(srv->sockets[1].port);
  REQUIRE(c4 >= 0);
  REQUIRE(c6 >= 0);
  CHECK(round_trip(c4, "over v4") == "over v4");
  CHECK(round_trip(c6, "over v6") == "over v6");
  REQUIRE(sink->log->wait_for([](auto& evs) {
    return std::count(evs.begin(), evs.end(), "connected") == 2;
  }));
  std::set<endpoint::kind> families;
  for (auto& info : sink->snapshot())
    families.insert(info.sockname.family);
  CHECK(families.size() == 2);
  raw_close(c4);
  raw_close(c6);
  REQUIRE(sink->log->wait_for([](auto& evs) {
    return std::count(evs.begin(), evs.end(), "lost") == 2;
  }));
  REQUIRE(close_server(*fx.rt, srv->actor));
}

TEST_CASE("create_server binds every address a host name resolves to "
          "(localhost, C54)") {
  auto expected = passive_addresses("localhost");
  REQUIRE_FALSE(expected.empty());
  runtime_fixture fx;
  auto sink = std::make_shared<info_sink>();
  server_options so;
  so.hosts = {"localhost"};
  auto srv = create_server(*fx.rt, info_recorder(sink), so);
  REQUIRE(srv);
  // One socket per distinct address, each on its own port (port 0).
  std::multiset<std::string> bound;
  std::set<uint16_t> ports;
  for (auto& ep : srv->sockets) {
    bound.insert(address_of(ep));
    ports.insert(ep.port);
  }
  CHECK(bound == std::multiset<std::string>(expected.begin(), expected.end()));
  CHECK(ports.size() == srv->sockets.size());
  CHECK(ports.count(0) == 0);
  // Each one accepts.
  for (auto& ep : srv->sockets) {
    INFO(to_string(ep));
    int c = raw_connect_to(ep);
    REQUIRE(c >= 0);
    CHECK(round_trip(c, "via " + ep.host) == "via " + ep.host);
    raw_close(c);
  }
  auto n = srv->sockets.size();
  REQUIRE(sink->log->wait_for([n](auto& evs) {
    return static_cast<size_t>(std::count(evs.begin(), evs.end(), "lost")) == n;
  }));
  std::set<std::string> served;
  for (auto& info : sink->snapshot())
    served.insert(address_of(info.sockname));
  CHECK(served == expected);
  REQUIRE(close_server(*fx.rt, srv->actor));
}

TEST_CASE("reuse_port lets two servers share a port; without it the second "
          "bind fails with EADDRINUSE") {
  runtime_fixture fx;
  auto sink = std::make_shared<info_sink>();
  server_options so;
  so.reuse_port = true;
  auto first = create_server(*fx.rt, info_recorder(sink), so);
  REQUIRE(first);
  auto port = first->sockets.at(0).port;
  so.port = port;
  auto second = create_server(*fx.rt, info_recorder(sink), so);
  REQUIRE(second);
  CHECK(second->sockets.at(0).port == port);
  // Without reuse_port the same bind is refused.
  server_options plain;
  plain.port = port;
  auto third = create_server(*fx.rt, info_recorder(sink), plain);
  REQUIRE(!third);
  INFO(describe(third.error()));
  CHECK(is_errno(third.error(), EADDRINUSE));
  // Both sharing servers accept (the kernel spreads connections among them);
  // close the first and the second still serves the port.
  REQUIRE(close_server(*fx.rt, first->actor));
  int c = raw_connect(port);
  REQUIRE(c >= 0);
  CHECK(round_trip(c, "shared") == "shared");
  raw_close(c);
  REQUIRE(sink->log->wait_for_event("lost"));
  REQUIRE(close_server(*fx.rt, second->actor));
}

TEST_CASE("create_server on a port in use gives a clear EADDRINUSE error") {
  runtime_fixture fx;
  raw_listener busy;
  auto log = std::make_shared<event_log>();
  server_options so;
  so.port = busy.port();
  auto fds = open_fd_count();
  auto srv = create_server(*fx.rt, recorder(log), so);
  REQUIRE(!srv);
  auto text = describe(srv.error());
  INFO(text);
  CHECK(is_errno(srv.error(), EADDRINUSE));
  // The message names the address that could not be bound.
  CHECK(text.find("127.0.0.1:" + std::to_string(busy.port())) !=
        std::string::npos);
  CHECK(text.find("in use") != std::string::npos);
  // The failed attempt left no socket behind.
  CHECK(open_fd_count() == fds);
}

TEST_CASE("a server with several hosts releases every socket when one bind "
          "fails") {
  runtime_fixture fx;
  raw_listener busy;
  auto log = std::make_shared<event_log>();
  auto fds = open_fd_count();
  server_options so;
  // 127.0.0.2 binds (loopback /8), then 127.0.0.1 on the busy port fails.
  so.hosts = {"127.0.0.2", "127.0.0.1"};
  so.port = busy.port();
  auto srv = create_server(*fx.rt, recorder(log), so);
  REQUIRE(!srv);
  CHECK(is_errno(srv.error(), EADDRINUSE));
  CHECK(open_fd_count() == fds);
}

// -- the server actor
// -------------------------------------------------------------

TEST_CASE("server actor: get_sockets, is_serving, stop_serving and "
          "start_serving") {
  runtime_fixture fx;
  auto sink = std::make_shared<info_sink>();
  auto srv = create_server(*fx.rt, info_recorder(sink), {});
  REQUIRE(srv);
  auto port = srv->sockets.at(0).port;
  auto socks = ask<std::vector<endpoint>>(*fx.rt, srv->actor, get_sockets{});
  REQUIRE(socks);
  REQUIRE(socks->size() == 1);
  CHECK(socks->at(0).port == port);
  auto serving = ask<bool>(*fx.rt, srv->actor, is_serving{});
  REQUIRE(serving);
  CHECK(*serving);
  // One connection accepted while serving.
  int first = raw_connect(port);
  REQUIRE(first >= 0);
  CHECK(round_trip(first, "before") == "before");
  // Stop: the reply to is_serving comes after stop_serving was handled.
  caf::anon_send(srv->actor, stop_serving{});
  serving = ask<bool>(*fx.rt, srv->actor, is_serving{});
  REQUIRE(serving);
  CHECK(!*serving);
  // A new client completes its connect in the kernel (backlog) but gets no
  // protocol: it still waits in the accept queue after the listener's shard
  // had its turn to accept it, and no `connected` was logged.
  int late = raw_connect(port);
  REQUIRE(late >= 0);
  REQUIRE(raw_send_all(late, "queued"));
  REQUIRE(wait_accept_queue(srv->sockets.at(0), 1));
  round_trips_not_serving(*fx.rt, srv->actor);
  CHECK(accept_queue_of(srv->sockets.at(0)) == size_t{1});
  CHECK(count_connected(*sink->log) == 1);
  // The existing connection is still served.
  CHECK(round_trip(first, "during") == "during");
  // Resume: the queued connection is accepted and its bytes echoed.
  caf::anon_send(srv->actor, start_serving{});
  CHECK(raw_read_exact(late, 6) == "queued");
  serving = ask<bool>(*fx.rt, srv->actor, is_serving{});
  REQUIRE(serving);
  CHECK(*serving);
  CHECK(count_connected(*sink->log) == 2);
  raw_close(first);
  raw_close(late);
  REQUIRE(sink->log->wait_for([](auto& evs) {
    return std::count(evs.begin(), evs.end(), "lost") == 2;
  }));
  REQUIRE(close_server(*fx.rt, srv->actor));
}

TEST_CASE("server actor: close stops listening and leaves connections "
          "open") {
  runtime_fixture fx;
  auto sink = std::make_shared<info_sink>();
  auto srv = create_server(*fx.rt, info_recorder(sink), {});
  REQUIRE(srv);
  auto port = srv->sockets.at(0).port;
  int c = raw_connect(port);
  REQUIRE(c >= 0);
  CHECK(round_trip(c, "one") == "one");
  REQUIRE(close_server(*fx.rt, srv->actor));
  // The listening socket is gone: new connects are refused.
  int refused = raw_connect(port);
  CHECK(refused < 0);
  raw_close(refused);
  // The server actor no longer answers.
  auto socks = ask<std::vector<endpoint>>(*fx.rt, srv->actor, get_sockets{});
  CHECK(!socks);
  // The accepted connection carries on (C51).
  CHECK(round_trip(c, "still here") == "still here");
  CHECK(sink->log->count("lost", true) == 0);
  raw_close(c);
  REQUIRE(sink->log->wait_for_event("lost"));
}

TEST_CASE("server actor: close_clients flushes and closes every accepted "
          "connection") {
  runtime_fixture fx;
  auto sink = std::make_shared<info_sink>(); // echoes
  auto srv = create_server(*fx.rt, info_recorder(sink), {});
  REQUIRE(srv);
  auto port = srv->sockets.at(0).port;
  int a = raw_connect(port);
  int b = raw_connect(port);
  REQUIRE(a >= 0);
  REQUIRE(b >= 0);
  CHECK(round_trip(a, "a") == "a");
  CHECK(round_trip(b, "b") == "b");
  caf::anon_send(srv->actor, close_clients{});
  bool eof_a = false;
  bool eof_b = false;
  CHECK(raw_read_to_eof(a, &eof_a).empty());
  CHECK(raw_read_to_eof(b, &eof_b).empty());
  CHECK(eof_a);
  CHECK(eof_b);
  REQUIRE(sink->log->wait_for([](auto& evs) {
    return std::count(evs.begin(), evs.end(), "lost") == 2;
  }));
  // The server itself keeps serving.
  auto serving = ask<bool>(*fx.rt, srv->actor, is_serving{});
  REQUIRE(serving);
  CHECK(*serving);
  int c = raw_connect(port);
  REQUIRE(c >= 0);
  CHECK(round_trip(c, "after") == "after");
  raw_close(a);
  raw_close(b);
  raw_close(c);
  REQUIRE(sink->log->wait_for([](auto& evs) {
    return std::count(evs.begin(), evs.end(), "lost") == 3;
  }));
  REQUIRE(close_server(*fx.rt, srv->actor));
}

TEST_CASE("server actor: abort_clients drops every accepted connection") {
  runtime_fixture fx;
  auto sink = std::make_shared<info_sink>();
  auto srv = create_server(*fx.rt, info_recorder(sink), {});
  REQUIRE(srv);
  auto port = srv->sockets.at(0).port;
  int a = raw_connect(port);
  int b = raw_connect(port);
  REQUIRE(a >= 0);
  REQUIRE(b >= 0);
  CHECK(round_trip(a, "a") == "a");
  CHECK(round_trip(b, "b") == "b");
  caf::anon_send(srv->actor, abort_clients{});
  REQUIRE(sink->log->wait_for([](auto& evs) {
    return std::count(evs.begin(), evs.end(), "lost") == 2;
  }));
  // Both peers see the end of the stream (EOF or reset: read returns <= 0).
  bool eof_a = false;
  raw_read_to_eof(a, &eof_a, std::chrono::milliseconds{2000});
  pollfd p{b, POLLIN, 0};
  CHECK(::poll(&p, 1, 2000) == 1); // readable: EOF or error pending
  char ch;
  CHECK(::recv(b, &ch, 1, 0) <= 0);
  raw_close(a);
  raw_close(b);
  REQUIRE(close_server(*fx.rt, srv->actor));
}

TEST_CASE("server with start_serving = false accepts only after "
          "start_serving") {
  runtime_fixture fx;
  auto sink = std::make_shared<info_sink>();
  server_options so;
  so.start_serving = false;
  auto srv = create_server(*fx.rt, info_recorder(sink), so);
  REQUIRE(srv);
  auto serving = ask<bool>(*fx.rt, srv->actor, is_serving{});
  REQUIRE(serving);
  CHECK(!*serving);
  // Bound and listening: the kernel completes the connect, and the
  // connection stays in the accept queue after the listener's shard had its
  // turn to accept it.
  int c = raw_connect(srv->sockets.at(0).port);
  REQUIRE(c >= 0);
  REQUIRE(raw_send_all(c, "early"));
  REQUIRE(wait_accept_queue(srv->sockets.at(0), 1));
  round_trips_not_serving(*fx.rt, srv->actor);
  CHECK(accept_queue_of(srv->sockets.at(0)) == size_t{1});
  CHECK(count_connected(*sink->log) == 0);
  caf::anon_send(srv->actor, start_serving{});
  CHECK(raw_read_exact(c, 5) == "early");
  CHECK(count_connected(*sink->log) == 1);
  serving = ask<bool>(*fx.rt, srv->actor, is_serving{});
  REQUIRE(serving);
  CHECK(*serving);
  raw_close(c);
  REQUIRE(sink->log->wait_for_event("lost"));
  REQUIRE(close_server(*fx.rt, srv->actor));
}

TEST_CASE("a protocol factory that throws closes that connection only, and "
          "says so only at level debug (C34)") {
  runtime_fixture fx;
  auto sink = std::make_shared<info_sink>();
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto inner = info_recorder(sink);
  // The first two connections fail: one at the default level, one at debug.
  protocol_factory flaky = [calls, inner](shard& s) -> protocol_actor {
    if (calls->fetch_add(1) < 2) throw std::runtime_error("factory failure");
    return inner(s);
  };
  auto srv = create_server(*fx.rt, flaky, {});
  REQUIRE(srv);
  auto port = srv->sockets.at(0).port;
  // C34: the client sees EOF, nothing else.
  auto refused_connection = [&] {
    int bad = raw_connect(port);
    REQUIRE(bad >= 0);
    bool eof = false;
    CHECK(raw_read_to_eof(bad, &eof).empty());
    CHECK(eof);
    raw_close(bad);
  };
  {
    // The default level (warning; the fixture's runtime set `error`): no
    // line at all. The transport closes the socket after it logged, so the
    // EOF orders the two.
    log_capture cap{log::level::warning};
    refused_connection();
    CHECK(calls->load() == 1);
    INFO(lines_of(cap));
    CHECK(cap.count("factory") == 0);
    CHECK(cap.lines().empty());
  }
  {
    // At debug the exception is logged (so the check above can fail).
    log_capture cap{log::level::debug};
    refused_connection();
    CHECK(calls->load() == 2);
    bool logged = cap.wait_for("DEBUG protocol factory threw: factory failure");
    INFO(lines_of(cap));
    CHECK(logged);
    CHECK(cap.count("factory") == 1);
  }
  // The server keeps serving.
  auto serving = ask<bool>(*fx.rt, srv->actor, is_serving{});
  REQUIRE(serving);
  CHECK(*serving);
  int good = raw_connect(port);
  REQUIRE(good >= 0);
  CHECK(round_trip(good, "fine") == "fine");
  CHECK(calls->load() == 3);
  CHECK(count_connected(*sink->log) == 1);
  raw_close(good);
  REQUIRE(sink->log->wait_for_event("lost"));
  REQUIRE(close_server(*fx.rt, srv->actor));
}

// -- placement
// ------------------------------------------------------------------

TEST_CASE("accepted and outgoing connections spread over the shards") {
  runtime_fixture fx; // two shards
  REQUIRE(fx.rt->shard_count() == 2);
  constexpr int n = 6;
  SECTION("accepted connections") {
    auto sink = std::make_shared<info_sink>();
    auto srv = create_server(*fx.rt, info_recorder(sink), {});
    REQUIRE(srv);
    std::vector<int> clients;
    for (int i = 0; i < n; ++i) {
      clients.push_back(raw_connect(srv->sockets.at(0).port));
      REQUIRE(clients.back() >= 0);
      CHECK(round_trip(clients.back(), "x" + std::to_string(i)) ==
            "x" + std::to_string(i));
    }
    std::set<uint32_t> shards;
    for (auto& info : sink->snapshot())
      shards.insert(info.shard);
    CHECK(shards.size() == 2);
    for (int c : clients)
      raw_close(c);
    REQUIRE(sink->log->wait_for([](auto& evs) {
      return std::count(evs.begin(), evs.end(), "lost") == n;
    }));
    REQUIRE(close_server(*fx.rt, srv->actor));
  }
  SECTION("outgoing connections") {
    raw_listener peer;
    std::vector<connection> conns;
    std::vector<int> accepted;
    auto log = std::make_shared<event_log>();
    std::set<uint32_t> shards;
    for (int i = 0; i < n; ++i) {
      connect_options co;
      co.port = peer.port();
      auto conn = create_connection(*fx.rt, co, recorder(log));
      REQUIRE(conn);
      shards.insert(conn->info.shard);
      // The transport really runs there: ask it.
      auto info =
          ask<transport_info>(*fx.rt, conn->transport, get_extra_info{});
      REQUIRE(info);
      CHECK(info->shard == conn->info.shard);
      conns.push_back(*conn);
      accepted.push_back(peer.accept_one());
      REQUIRE(accepted.back() >= 0);
    }
    CHECK(shards.size() == 2);
    for (auto& c : conns)
      caf::anon_send(c.transport, shardwire::close{});
    REQUIRE(log->wait_for([](auto& evs) {
      return std::count(evs.begin(), evs.end(), "lost") == n;
    }));
    for (int fd : accepted)
      raw_close(fd);
  }
}

TEST_CASE("a burst of accepted connections is dealt out evenly") {
  // The listener takes all of them in one handler run: each placement must
  // see the ones made before it (a load counted only once a transport ran
  // on its shard put ~80 % of a 50-connection burst on one of two shards).
  runtime_fixture fx; // two shards
  auto sink = std::make_shared<info_sink>();
  server_options so;
  so.start_serving = false;
  auto srv = create_server(*fx.rt, info_recorder(sink), so);
  REQUIRE(srv);
  constexpr int n = 40;
  std::vector<int> clients;
  for (int i = 0; i < n; ++i) {
    clients.push_back(raw_connect(srv->sockets.at(0).port));
    REQUIRE(clients.back() >= 0);
  }
  caf::anon_send(srv->actor, start_serving{});
  REQUIRE(sink->log->wait_for([](auto& evs) {
    return std::count(evs.begin(), evs.end(), "connected") == n;
  }));
  int on_first = 0;
  for (auto& info : sink->snapshot())
    if (info.shard == 0) ++on_first;
  CHECK(on_first == n / 2);
  CHECK(fx.rt->shard_at(0).load() == n / 2);
  CHECK(fx.rt->shard_at(1).load() == n / 2);
  for (int c : clients)
    raw_close(c);
  REQUIRE(sink->log->wait_for([](auto& evs) {
    return std::count(evs.begin(), evs.end(), "lost") == n;
  }));
  REQUIRE(close_server(*fx.rt, srv->actor));
}

// -- transport_ref ------------------------------------------------------------

namespace {

struct ref_state {
  transport_ref transport;
  bool reported = false;
};

// Echoes through a transport_ref bound with or without the info, and
// reports what info() held when the first chunk came.
protocol_actor::behavior_type
ref_echo(protocol_actor::stateful_pointer<ref_state> self, bool keep_info,
         std::shared_ptr<std::promise<transport_info>> seen) {
  return {
      [=](connected& msg) {
        if (keep_info)
          self->state.transport.bind(self, std::move(msg.transport),
                                     std::move(msg.info));
        else
          self->state.transport.bind(self, std::move(msg.transport));
      },
      [=](data& msg) {
        if (!self->state.reported) {
          self->state.reported = true;
          seen->set_value(self->state.transport.info());
        }
        self->state.transport.write(std::move(msg.bytes));
      },
      [](eof) { return false; },
      [](shardwire::pause) {},
      [](shardwire::resume) {},
      [self](lost&) { self->quit(); },
  };
}

} // namespace

TEST_CASE("transport_ref keeps the transport's info only when bound with it") {
  runtime_fixture fx;
  for (bool keep : {true, false}) {
    auto seen = std::make_shared<std::promise<transport_info>>();
    auto fut = seen->get_future();
    auto srv = create_server(*fx.rt, protocol_fun(ref_echo, keep, seen), {});
    REQUIRE(srv);
    auto log = std::make_shared<event_log>();
    connect_options co;
    co.host = "127.0.0.1";
    co.port = srv->sockets.at(0).port;
    auto conn = create_connection(*fx.rt, co, recorder(log));
    REQUIRE(conn);
    caf::anon_send(conn->transport, shardwire::write{buffer::copy_of("hi")});
    // Writes go through the ref either way.
    REQUIRE(log->wait_for([](auto& evs) { return joined_data(evs) == "hi"; }));
    REQUIRE(fut.wait_for(std::chrono::seconds(10)) ==
            std::future_status::ready);
    auto info = fut.get();
    if (keep) {
      CHECK(info.kind == "tcp");
      CHECK(info.peername.port == conn->info.sockname.port);
      CHECK(info.fd >= 0);
    } else {
      CHECK(info.kind.empty());
      CHECK(info.fd == -1);
    }
    caf::anon_send(conn->transport, shardwire::close{});
    REQUIRE(log->wait_for_event("lost"));
  }
}

// -- transport lifetime -------------------------------------------------------

namespace {

// Logs what it gets and keeps no handle on its transport.
protocol_actor::behavior_type handle_less(protocol_actor::pointer self,
                                          event_log_ptr log) {
  return {
      [log](connected&) { log->add("connected"); },
      [log](data& msg) { log->add("data:" + msg.bytes.str()); },
      [log](eof) {
        log->add("eof");
        return false;
      },
      [](shardwire::pause) {},
      [](shardwire::resume) {},
      [self, log](lost&) {
        log->add("lost");
        self->quit();
      },
  };
}

} // namespace

TEST_CASE("a connection lives on when nobody keeps its transport handle") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  auto srv = create_server(*fx.rt, protocol_fun(handle_less, log), {});
  REQUIRE(srv);
  int c = raw_connect(srv->sockets.at(0).port);
  REQUIRE(c >= 0);
  REQUIRE(log->wait_for_event("connected"));
  // The server actor held the last handle on the accepted transport; once
  // it is gone, only the transport itself keeps the connection alive (as
  // asyncio's loop does).
  REQUIRE(close_server(*fx.rt, srv->actor));
  REQUIRE(::send(c, "late", 4, MSG_NOSIGNAL) == 4);
  REQUIRE(log->wait_for([](auto& evs) { return joined_data(evs) == "late"; }));
  CHECK(log->count("lost") == 0);
  raw_close(c);
  REQUIRE(log->wait_for_event("lost"));
}

// -- keep-alive and TCP_USER_TIMEOUT ------------------------------------------

namespace {

int int_sockopt(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof(v);
  if (::getsockopt(fd, level, name, &v, &len) != 0) return -1;
  return v;
}

} // namespace

TEST_CASE("keep-alive and TCP_USER_TIMEOUT are set where asked, on both "
          "sides, and only there") {
  runtime_fixture fx;
  auto sink = std::make_shared<info_sink>();
  server_options so;
  so.keepalive =
      tcp_keepalive{std::chrono::seconds{30}, std::chrono::seconds{5}, 4};
  so.user_timeout = std::chrono::milliseconds{1500};
  auto srv = create_server(*fx.rt, info_recorder(sink), so);
  REQUIRE(srv);
  auto log = std::make_shared<event_log>();
  connect_options co;
  co.port = srv->sockets.at(0).port;
  co.keepalive =
      tcp_keepalive{std::chrono::seconds{60}, std::chrono::seconds{10}, 3};
  co.user_timeout = std::chrono::milliseconds{2000};
  auto conn = create_connection(*fx.rt, co, recorder(log));
  REQUIRE(conn);
  int c = conn->info.fd;
  CHECK(int_sockopt(c, SOL_SOCKET, SO_KEEPALIVE) == 1);
  CHECK(int_sockopt(c, IPPROTO_TCP, TCP_KEEPIDLE) == 60);
  CHECK(int_sockopt(c, IPPROTO_TCP, TCP_KEEPINTVL) == 10);
  CHECK(int_sockopt(c, IPPROTO_TCP, TCP_KEEPCNT) == 3);
  CHECK(int_sockopt(c, IPPROTO_TCP, TCP_USER_TIMEOUT) == 2000);
  REQUIRE(sink->log->wait_for_event("connected"));
  auto infos = sink->snapshot();
  REQUIRE(infos.size() == 1);
  int s = infos[0].fd;
  CHECK(int_sockopt(s, SOL_SOCKET, SO_KEEPALIVE) == 1);
  CHECK(int_sockopt(s, IPPROTO_TCP, TCP_KEEPIDLE) == 30);
  CHECK(int_sockopt(s, IPPROTO_TCP, TCP_KEEPINTVL) == 5);
  CHECK(int_sockopt(s, IPPROTO_TCP, TCP_KEEPCNT) == 4);
  CHECK(int_sockopt(s, IPPROTO_TCP, TCP_USER_TIMEOUT) == 1500);
  // Without the options: neither is set.
  auto log2 = std::make_shared<event_log>();
  connect_options plain;
  plain.port = co.port;
  auto conn2 = create_connection(*fx.rt, plain, recorder(log2));
  REQUIRE(conn2);
  CHECK(int_sockopt(conn2->info.fd, SOL_SOCKET, SO_KEEPALIVE) == 0);
  CHECK(int_sockopt(conn2->info.fd, IPPROTO_TCP, TCP_USER_TIMEOUT) == 0);
  for (auto& t : {conn->transport, conn2->transport})
    caf::anon_send(t, shardwire::close{});
  REQUIRE(log->wait_for_event("lost"));
  REQUIRE(log2->wait_for_event("lost"));
}

TEST_CASE("TCP_USER_TIMEOUT ends a connection whose peer stopped reading") {
  runtime_fixture fx;
  raw_listener peer; // accepts, never reads: its window closes
  int small = 4096;
  ::setsockopt(peer.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  auto log = std::make_shared<event_log>();
  connect_options co;
  co.port = peer.port();
  co.user_timeout = std::chrono::milliseconds{1000};
  auto conn = create_connection(*fx.rt, co, recorder(log));
  REQUIRE(conn);
  int accepted = peer.accept_one();
  REQUIRE(accepted >= 0);
  // More than both kernels' buffers hold: the rest waits on a closed
  // window, which the kernel probes until the user timeout runs out.
  for (int i = 0; i < 8; ++i)
    caf::anon_send(conn->transport, shardwire::write{buffer::copy_of(
                                        std::string(1 << 20, 'x'))});
  auto start = std::chrono::steady_clock::now();
  REQUIRE(log->wait_for_event("lost", true));
  auto took = std::chrono::steady_clock::now() - start;
  auto events = log->events();
  auto lost = *std::find_if(events.begin(), events.end(),
                            [](auto& e) { return e.rfind("lost", 0) == 0; });
  INFO(lost);
  CHECK(lost.find("timed out") != std::string::npos);
  CHECK(took < std::chrono::seconds{8});
  ::close(accepted);
}

TEST_CASE("keep-alive and user-timeout values out of range are refused by "
          "name") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  struct bad_case {
    const char* field;
    tcp_keepalive ka;
    std::chrono::milliseconds user_timeout;
  };
  for (auto& c :
       {bad_case{"keepalive.idle", {std::chrono::seconds{40000}, {}, 0}, {}},
        bad_case{"keepalive.idle", {std::chrono::seconds{-1}, {}, 0}, {}},
        bad_case{"keepalive.interval",
                 {std::chrono::seconds{10}, std::chrono::seconds{99999}, 0},
                 {}},
        bad_case{"keepalive.count", {std::chrono::seconds{10}, {}, 128}, {}},
        bad_case{"user_timeout", {}, std::chrono::milliseconds{-5}}}) {
    INFO(c.field);
    connect_options co;
    co.port = 1;
    co.keepalive = c.ka;
    co.user_timeout = c.user_timeout;
    auto conn = create_connection(*fx.rt, co, recorder(log));
    REQUIRE_FALSE(conn);
    CHECK(is(conn.error(), sw_errc::invalid_argument));
    CHECK(describe(conn.error()).find(c.field) != std::string::npos);
    server_options so;
    so.keepalive = c.ka;
    so.user_timeout = c.user_timeout;
    auto srv = create_server(*fx.rt, recorder(log), so);
    REQUIRE_FALSE(srv);
    CHECK(describe(srv.error()).find(c.field) != std::string::npos);
  }
}
