// Tests for tools/fault_proxy.hpp: a client (raw blocking socket) talks
// through the proxy to an in-process echo server, loopback only.
//
// Timing faults are checked with lower bounds only (steady_clock), never
// exact durations. Waits are on bytes, EOF, errors or counters, each with a
// deadline.
#include "tools/fault_proxy.hpp"

#include "tests/support/raw_read.hpp"
#include "tests/transports/helpers.hpp"
#include "transports/tcp.hpp"

#include <cerrno>
#include <poll.h>
#include <sys/socket.h>

using namespace shardwire;
using namespace shardwire::test;
using namespace std::chrono_literals;
using std::chrono::steady_clock;

namespace {

/// Polls `pred` every 2 ms until it holds or the deadline passes. For
/// counters only (no message to wait on); the condition, not the sleep,
/// is what the test synchronises on.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = deadline) {
  auto until = steady_clock::now() + timeout;
  while (!pred()) {
    if (steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
  return s;
}

/// An echo server (info_recorder with echo) and a proxy in front of it.
struct proxy_fixture : runtime_fixture {
  info_sink_ptr upstream = std::make_shared<info_sink>();
  server echo;
  fault_proxy proxy;

  explicit proxy_fixture(fault_set faults = {}) {
    auto srv = create_server(*rt, info_recorder(upstream), server_options{});
    REQUIRE(srv);
    echo = *srv;
    fault_proxy_options opts;
    opts.upstream_port = echo.sockets.at(0).port;
    opts.faults = faults;
    opts.seed = 42;
    auto p = fault_proxy::start(*rt, opts);
    REQUIRE(p);
    proxy = std::move(*p);
  }

  ~proxy_fixture() {
    proxy.stop();
    close_server(*rt, echo.actor);
  }

  int connect() {
    int fd = raw_connect(proxy.address().port);
    REQUIRE(fd >= 0);
    return fd;
  }

  std::string upstream_received() const {
    return joined_data(upstream->log->events());
  }
};

fault_set with(std::initializer_list<std::pair<const char*, const char*>> kv) {
  fault_set f;
  for (auto& [k, v] : kv)
    REQUIRE(!set_fault(f, k, v));
  return f;
}

} // namespace

TEST_CASE("fault specs parse and print their text form", "[fault_proxy]") {
  fault_set f;
  CHECK(!set_fault(f, "down.latency-ms", "200"));
  CHECK(f.down.latency == 200ms);
  CHECK(f.up.is_clean());
  CHECK(!set_fault(f, "both.cut-after", "10"));
  CHECK(f.up.cut_after == 10u);
  CHECK(f.down.cut_after == 10u);
  CHECK(!set_fault(f, "up.cut-after", "-1"));
  CHECK(!f.up.cut_after);
  CHECK(!set_fault(f, "up.slice-min", "8"));
  CHECK(is(set_fault(f, "up.slice-max", "4"), sw_errc::invalid_argument));
  CHECK(f.up.slice_max == 0u); // unchanged on error
  CHECK(is(set_fault(f, "up.nonsense", "1"), sw_errc::invalid_argument));
  CHECK(
      is(set_fault(f, "sideways.latency-ms", "1"), sw_errc::invalid_argument));
  CHECK(is(set_fault(f, "up.latency-ms", "-5"), sw_errc::invalid_argument));
  CHECK(is(set_fault(f, "up.black-hole", "maybe"), sw_errc::invalid_argument));
  CHECK(to_string(f.down) == "latency-ms=200 cut-after=10");
  CHECK(to_string(fault_spec{}) == "clean");
  for (auto& key : fault_keys()) {
    fault_spec s;
    auto v = get_fault(s, key);
    CHECK(!v.empty());
    CHECK(!set_fault(s, key, v)); // every printed value parses back
    CHECK(s == fault_spec{});
  }
}

TEST_CASE("a clean proxy relays both ways unchanged", "[fault_proxy]") {
  proxy_fixture fx;
  int fd = fx.connect();
  auto text = pattern(200 * 1024);
  REQUIRE(raw_send_all(fd, text));
  auto r = read_from(fd, text.size());
  CHECK(r.bytes == text);
  CHECK(fx.upstream_received() == text);
  // Half-close travels too: the echo server closes on EOF, the client sees
  // EOF through the proxy.
  ::shutdown(fd, SHUT_WR);
  auto rest = read_from(fd);
  CHECK(rest.eof);
  CHECK(rest.bytes.empty());
  raw_close(fd);
  CHECK(eventually([&] { return fx.proxy.stats().live_connections == 0; }));
  auto st = fx.proxy.stats();
  CHECK(st.connections == 1);
  CHECK(st.bytes_up == text.size());
  CHECK(st.bytes_down == text.size());
}

TEST_CASE("slicing cuts the stream into small pieces, intact and in order",
          "[fault_proxy]") {
  proxy_fixture fx{with({{"down.slice-min", "1"},
                         {"down.slice-max", "16"},
                         {"down.slice-delay-us", "300"}})};
  int fd = fx.connect();
  auto text = pattern(4000);
  REQUIRE(raw_send_all(fd, text));
  auto r = read_from(fd, text.size());
  CHECK(r.bytes == text);
  // Up is clean: the upstream got the bytes in its usual large chunks; down
  // went out as at least size / slice-max separate writes.
  auto st = fx.proxy.stats();
  CHECK(st.writes_down >= text.size() / 16);
  CHECK(st.writes_up < 10);
  // Pieces are 300 us apart, so even a busy reader sees many of them
  // separately (unsliced, this is 1 to 3 reads).
  CHECK(r.reads >= 20);
  raw_close(fd);
}

TEST_CASE("concurrent connections keep their streams apart", "[fault_proxy]") {
  proxy_fixture fx{with({{"down.slice-min", "1"},
                         {"down.slice-max", "64"},
                         {"up.latency-ms", "5"},
                         {"up.jitter-ms", "5"}})};
  constexpr int n = 16;
  std::vector<int> fds;
  std::vector<std::string> texts;
  // Everything is sent before anything is read: the 16 sessions (spread
  // over both shards) run their pipelines at the same time.
  for (int i = 0; i < n; ++i) {
    fds.push_back(fx.connect());
    texts.push_back(std::to_string(i) + ":" + pattern(3000 + 100 * i));
    REQUIRE(raw_send_all(fds.back(), texts.back()));
  }
  for (int i = 0; i < n; ++i) {
    auto r = read_from(fds[i], texts[i].size());
    CHECK(r.bytes == texts[i]);
    raw_close(fds[i]);
  }
  CHECK(eventually([&] { return fx.proxy.stats().live_connections == 0; }));
  CHECK(fx.proxy.stats().connections == n);
}

TEST_CASE("latency delays each direction by at least the configured time",
          "[fault_proxy]") {
  proxy_fixture fx{with({{"up.latency-ms", "60"},
                         {"down.latency-ms", "90"},
                         {"down.jitter-ms", "20"}})};
  int fd = fx.connect();
  for (int i = 0; i < 3; ++i) {
    auto t0 = steady_clock::now();
    REQUIRE(raw_send_all(fd, "ping"));
    auto r = read_from(fd, 4);
    auto took = steady_clock::now() - t0;
    CHECK(r.bytes == "ping");
    // 60 up + (90 - 20) down at the very least.
    CHECK(took >= 130ms);
  }
  raw_close(fd);
}

TEST_CASE("jitter never reorders the stream", "[fault_proxy]") {
  proxy_fixture fx{with({{"up.latency-ms", "5"},
                         {"up.jitter-ms", "5"},
                         {"down.jitter-ms", "3"}})};
  int fd = fx.connect();
  std::string all;
  for (int i = 0; i < 60; ++i) {
    auto part = std::to_string(i) + ",";
    all += part;
    REQUIRE(raw_send_all(fd, part)); // separate sends, separate chunks
  }
  auto r = read_from(fd, all.size());
  CHECK(r.bytes == all);
  raw_close(fd);
}

TEST_CASE("bandwidth bounds the rate from above", "[fault_proxy]") {
  proxy_fixture fx{with({{"down.bandwidth", "200000"}})};
  int fd = fx.connect();
  auto text = pattern(60000);
  auto t0 = steady_clock::now();
  REQUIRE(raw_send_all(fd, text));
  auto r = read_from(fd, text.size());
  auto took = steady_clock::now() - t0;
  CHECK(r.bytes == text);
  // 60,000 bytes at 200,000 B/s take at least 300 ms.
  CHECK(took >= 300ms);
  raw_close(fd);
}

TEST_CASE("cut-after delivers exactly N bytes, then EOF", "[fault_proxy]") {
  proxy_fixture fx{with({{"down.cut-after", "1000"}})};
  int fd = fx.connect();
  auto text = pattern(5000);
  REQUIRE(raw_send_all(fd, text));
  auto r = read_from(fd);
  CHECK(r.eof);
  CHECK(r.error == 0);
  CHECK(r.bytes == text.substr(0, 1000));
  raw_close(fd);
  CHECK(eventually([&] { return fx.proxy.stats().live_connections == 0; }));
  CHECK(fx.proxy.stats().cuts == 1);
  // The upstream side was closed as well.
  CHECK(fx.upstream->log->wait_for_event("lost", true));
}

TEST_CASE("reset-after gives the client a connection reset", "[fault_proxy]") {
  SECTION("after N bytes") {
    proxy_fixture fx{with({{"down.reset-after", "100"}})};
    int fd = fx.connect();
    REQUIRE(raw_send_all(fd, pattern(1000)));
    auto r = read_from(fd);
    CHECK(r.error == ECONNRESET);
    CHECK(!r.eof);
    CHECK(r.bytes.size() <= 100);
    raw_close(fd);
    CHECK(eventually([&] { return fx.proxy.stats().live_connections == 0; }));
    CHECK(fx.proxy.stats().resets == 1);
  }
  SECTION("after T ms on an idle connection") {
    proxy_fixture fx{with({{"up.reset-after-ms", "100"}})};
    auto t0 = steady_clock::now();
    int fd = fx.connect();
    auto r = read_from(fd);
    CHECK(r.error == ECONNRESET);
    CHECK(steady_clock::now() - t0 >= 100ms);
    raw_close(fd);
  }
  SECTION("sever_all resets live connections") {
    proxy_fixture fx;
    int fd = fx.connect();
    REQUIRE(round_trip(fd, "hi") == "hi");
    fx.proxy.sever_all();
    auto r = read_from(fd);
    CHECK(r.error == ECONNRESET);
    raw_close(fd);
  }
}

TEST_CASE("a black hole swallows data and keeps the connection open",
          "[fault_proxy]") {
  proxy_fixture fx{with({{"up.black-hole", "1"}})};
  int fd = fx.connect();
  REQUIRE(raw_send_all(fd, "swallowed"));
  REQUIRE(eventually([&] { return fx.proxy.stats().swallowed_up == 9; }));
  // Lift it at run time: the next bytes get through on the same
  // connection, and the upstream never saw the swallowed ones (a stream
  // keeps order, so they would have arrived first).
  REQUIRE(!fx.proxy.set("up.black-hole", "0"));
  CHECK(round_trip(fd, "later") == "later");
  CHECK(fx.upstream_received() == "later");
  CHECK(fx.proxy.stats().bytes_up == 5);
  raw_close(fd);
}

TEST_CASE("faults changed at run time apply to live connections",
          "[fault_proxy]") {
  proxy_fixture fx;
  int fd = fx.connect();
  REQUIRE(round_trip(fd, "fast") == "fast");
  CHECK(fx.proxy.execute("set both.latency-ms 80") == "OK\n");
  CHECK(fx.proxy.execute("get down.latency-ms") == "80\nOK\n");
  auto t0 = steady_clock::now();
  CHECK(round_trip(fd, "slow") == "slow");
  CHECK(steady_clock::now() - t0 >= 160ms);
  fault_spec slow_down;
  slow_down.latency = 50ms;
  fx.proxy.update(fault_direction::down, slow_down);
  CHECK(fx.proxy.faults().down == slow_down);
  CHECK(fx.proxy.faults().up.latency == 80ms); // the other direction kept
  CHECK(fx.proxy.execute("reset-all") == "OK\n");
  CHECK(fx.proxy.faults() == fault_set{});
  CHECK(fx.proxy.execute("faults") == "up: clean\ndown: clean\nOK\n");
  CHECK(fx.proxy.execute("set down.latency-ms abc").rfind("ERR ", 0) == 0);
  CHECK(fx.proxy.execute("frobnicate").rfind("ERR ", 0) == 0);
  CHECK(fx.proxy.execute("status").find("connections=1 live=1") == 0);
  // A reset timer armed at run time fires on an idle connection.
  CHECK(fx.proxy.execute("set up.reset-after-ms 0") == "OK\n");
  auto r = read_from(fd);
  CHECK(r.error == ECONNRESET);
  raw_close(fd);
}

TEST_CASE("a refused upstream closes the client and leaks nothing",
          "[fault_proxy]") {
  runtime_fixture fx;
  uint16_t dead_port = 0;
  {
    raw_listener l; // bound and closed: nothing listens there any more
    dead_port = l.port();
  }
  fault_proxy_options opts;
  opts.upstream_port = dead_port;
  auto proxy = fault_proxy::start(*fx.rt, opts);
  REQUIRE(proxy);
  for (int i = 0; i < 3; ++i) {
    int fd = raw_connect(proxy->address().port);
    REQUIRE(fd >= 0);
    auto r = read_from(fd);
    CHECK(r.eof);
    CHECK(r.bytes.empty());
    raw_close(fd);
  }
  CHECK(eventually([&] {
    auto st = proxy->stats();
    return st.upstream_failures == 3 && st.live_connections == 0;
  }));
  proxy->stop();
  // runtime_fixture's destructor checks that no actor and no fd is left.
}

TEST_CASE("a stalled upstream stops the proxy from reading the client",
          "[fault_proxy]") {
  runtime_fixture fx;
  // The upstream never reads: its transport is paused from the start.
  auto log = std::make_shared<event_log>();
  recorder_options ro;
  ro.pause_in_connected = true;
  auto srv = create_server(*fx.rt, recorder(log, ro), server_options{});
  REQUIRE(srv);
  fault_proxy_options opts;
  opts.upstream_port = srv->sockets.at(0).port;
  auto proxy = fault_proxy::start(*fx.rt, opts);
  REQUIRE(proxy);
  int fd = raw_connect(proxy->address().port);
  REQUIRE(fd >= 0);
  // Push until the client's socket stays full. Without flow control the
  // proxy would take everything into its write queue and the client would
  // reach `cap`; with it, the total is bounded by the four kernel buffers
  // (at most tcp_wmem max + tcp_rmem max per hop: 2 x (4 + 32) MiB on a
  // default Debian 12 box; about 7.5 MiB was measured) plus the proxy's
  // queue and the transports' limits (about 1.5 MiB).
  constexpr size_t cap = 160u * 1024 * 1024;
  std::string chunk(256 * 1024, 'x');
  size_t total = 0;
  while (total < cap) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 500) <= 0) break; // stayed full for 500 ms: stalled
    auto n = ::send(fd, chunk.data(), chunk.size(), MSG_DONTWAIT);
    if (n > 0) total += static_cast<size_t>(n);
  }
  CHECK(total < cap);
  CHECK(proxy->stats().bytes_up < cap);
  if (std::getenv("FAULT_PROXY_TEST_VERBOSE"))
    std::cerr << "stalled upstream: client pushed " << total
              << " bytes, proxy forwarded " << proxy->stats().bytes_up << "\n";
  raw_close(fd);
  proxy->stop();
  close_server(*fx.rt, srv->actor);
}

TEST_CASE("stack composes two specs: delays add, limits take the tighter",
          "[fault_proxy]") {
  auto a = with({{"down.latency-ms", "100"},
                 {"down.bandwidth", "5000"},
                 {"down.cut-after", "90"},
                 {"down.close-delay-ms", "10"}})
               .down;
  auto b = with({{"down.latency-ms", "50"},
                 {"down.bandwidth", "3000"},
                 {"down.cut-after-ms", "400"},
                 {"down.close-delay-ms", "5"},
                 {"down.black-hole", "1"}})
               .down;
  auto s = stack(a, b);
  CHECK(s.latency == 150ms);
  CHECK(s.bandwidth == 3000u);
  CHECK(s.cut_after == 90u);
  CHECK(s.cut_after_time == 400ms);
  CHECK(s.close_delay == 15ms);
  CHECK(s.black_hole);
  CHECK(stack(a, b) == stack(b, a));
  CHECK(stack(a, fault_spec{}) == a);
  // The new keys round-trip through the text form.
  fault_spec t;
  REQUIRE(!set_fault(t, "cut-after-ms", "250"));
  REQUIRE(!set_fault(t, "close-delay-ms", "30"));
  CHECK(get_fault(t, "cut-after-ms") == "250");
  CHECK(get_fault(t, "close-delay-ms") == "30");
  CHECK(to_string(t) == "cut-after-ms=250 close-delay-ms=30");
  CHECK(set_fault(t, "close-delay-ms", "-1"));
  CHECK(!set_fault(t, "cut-after-ms", "off"));
  CHECK(!t.cut_after_time);
}

TEST_CASE("close-delay holds the EOF back; cut-after-ms closes in time",
          "[fault_proxy]") {
  proxy_fixture fx{with({{"down.close-delay-ms", "300"}})};
  int fd = fx.connect();
  REQUIRE(raw_send_all(fd, "abc"));
  CHECK(read_from(fd, 3).bytes == "abc");
  auto t0 = steady_clock::now();
  ::shutdown(fd, SHUT_WR); // the echo server closes, its EOF comes back late
  auto r = read_from(fd);
  CHECK(r.eof);
  CHECK(steady_clock::now() - t0 >= 250ms);
  raw_close(fd);

  fx.proxy.update(with({{"up.cut-after-ms", "300"}}));
  fd = fx.connect();
  t0 = steady_clock::now();
  r = read_from(fd);
  CHECK(r.eof);
  CHECK(steady_clock::now() - t0 >= 250ms);
  CHECK(eventually([&] { return fx.proxy.stats().cuts == 1; }));
  raw_close(fd);
}

TEST_CASE("a layer applies to the connections its seeded toxicity draw picks",
          "[fault_proxy]") {
  // With cut-after 1, a connection the layer applies to echoes 1 byte and
  // ends; the others echo all 5. The draw of connection k uses seed + k, so
  // a second proxy with the same seed picks the same connections.
  auto picks = [] {
    proxy_fixture fx;
    fault_layer layer;
    layer.id = 1;
    layer.dir = fault_direction::down;
    layer.toxicity = 0.5;
    layer.spec.cut_after = 1;
    fx.proxy.set_layers({layer});
    REQUIRE(fx.proxy.layers().size() == 1);
    std::string out;
    for (int i = 0; i < 16; ++i) {
      int fd = fx.connect();
      REQUIRE(raw_send_all(fd, "hello"));
      auto r = read_from(fd, 5);
      CHECK((r.bytes == "hello" || r.bytes == "h"));
      out += r.bytes == "h" ? '1' : '0';
      raw_close(fd);
    }
    return out;
  };
  auto first = picks();
  CHECK(first.find('1') != std::string::npos);
  CHECK(first.find('0') != std::string::npos);
  CHECK(picks() == first);
}

TEST_CASE("toxicity 0 and 1 and layer changes on live connections",
          "[fault_proxy]") {
  proxy_fixture fx;
  int fd = fx.connect();
  REQUIRE(raw_send_all(fd, "one"));
  CHECK(read_from(fd, 3).bytes == "one");
  fault_layer never;
  never.id = 1;
  never.toxicity = 0.0;
  never.spec.black_hole = true;
  fault_layer always;
  always.id = 2;
  always.toxicity = 1.0;
  always.spec.latency = 300ms;
  fx.proxy.set_layers({never, always});
  auto t0 = steady_clock::now();
  REQUIRE(raw_send_all(fd, "two"));
  CHECK(read_from(fd, 3).bytes == "two");
  CHECK(steady_clock::now() - t0 >= 250ms);
  fx.proxy.set_layers({});
  REQUIRE(raw_send_all(fd, "three"));
  CHECK(read_from(fd, 5).bytes == "three");
  raw_close(fd);
}
