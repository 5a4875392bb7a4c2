// sim/network.hpp: every fault fires and has its effect; hosts
// crash, restart and pause; messages are held and released.
#include "sim/network.hpp"

#include "actors/errors.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/sim/sim_support.hpp"

#include <caf/send.hpp>

#include <cerrno>

using namespace shardwire;
using namespace std::chrono_literals;

namespace {

// A network with hosts a, b, c and a recording server on b:7.
struct sim_fixture {
  explicit sim_fixture(uint64_t seed = 42) : net(seed) {
    net.add_host("a");
    net.add_host("b");
    net.add_host("c");
    REQUIRE(!net.listen("b", 7, test::recorder(server, opts)));
  }

  ~sim_fixture() {
    // A failing check prints the seed and the whole trace.
    if (dump) UNSCOPED_INFO("seed " << net.seed() << "\n" << net.trace_text());
  }

  connection connect(test::recorder_options client_opts = {}) {
    auto conn = net.create_connection({"a", "b", 7},
                                      test::recorder(client, client_opts));
    REQUIRE(conn);
    return *conn;
  }

  void write(const connection& c, std::string s) {
    caf::anon_send(c.transport, shardwire::write{buffer::copy_of(s)});
  }

  bool until(const std::function<bool()>& pred, sim::duration d = 10min) {
    return net.run_until(pred, d);
  }

  sim::network net;
  test::recorder_options opts{false, true};
  test::event_log_ptr server = std::make_shared<test::event_log>();
  test::event_log_ptr client = std::make_shared<test::event_log>();
  bool dump = false;
};

struct dgram_state {
  test::event_log_ptr log;
};

datagram_protocol_actor::behavior_type
dgram_recorder(datagram_protocol_actor::pointer self, dgram_state st) {
  return {
      [=](datagram_connected&) { st.log->add("connected"); },
      [=](datagram& d) { st.log->add("dgram:" + d.bytes.str()); },
      [=](datagram_error& e) {
        st.log->add(is_errno(e.reason, ECONNREFUSED) ? "error:refused"
                                                     : "error");
      },
      [=](shardwire::pause) {},
      [=](shardwire::resume) {},
      [=](lost&) {
        st.log->add("lost");
        self->quit();
      },
  };
}

std::vector<std::string> dgrams(const test::event_log& log) {
  std::vector<std::string> out;
  for (auto& e : log.events())
    if (e.rfind("dgram:", 0) == 0) out.push_back(e.substr(6));
  return out;
}

} // namespace

TEST_CASE("latency, jitter and bandwidth set the virtual arrival time") {
  sim_fixture fx;
  fx.net.link("a", "b").latency = 40ms;
  fx.net.link("b", "a").latency = 10ms;
  auto c = fx.connect();
  // Connect = one round trip: SYN 40 ms, SYN-ACK 10 ms.
  CHECK(fx.net.now() == 50ms);
  fx.net.link("a", "b").bandwidth = 1000; // bytes per second
  auto t0 = fx.net.now();
  fx.write(c, std::string(500, 'x'));
  REQUIRE(fx.until([&] { return fx.server->received().size() == 500; }));
  // 500 bytes at 1000 B/s = 500 ms, plus 40 ms latency.
  CHECK(fx.net.now() - t0 == 540ms);
  CHECK(fx.net.fired("bandwidth a->b") == 1);
  fx.net.link("a", "b").jitter = 20ms;
  fx.net.link("a", "b").bandwidth = 0;
  fx.write(c, "y");
  REQUIRE(fx.until([&] { return fx.server->received().size() == 501; }));
  CHECK(fx.net.fired("jitter") >= 1);
  CHECK(fx.net.unfired().empty());
}

TEST_CASE("slicing cuts stream writes into small random chunks") {
  sim_fixture fx;
  fx.net.link("a", "b").slice_max = 4;
  auto c = fx.connect();
  std::string msg = "the quick brown fox jumps over the lazy dog";
  fx.write(c, msg);
  REQUIRE(fx.until([&] { return fx.server->received() == msg; }));
  // Many chunks, none over 4 bytes, same bytes in order.
  auto chunks = fx.server->count("data:", true);
  CHECK(chunks >= msg.size() / 4);
  for (auto& e : fx.server->events())
    if (e.rfind("data:", 0) == 0) CHECK(e.size() - 5 <= 4);
  CHECK(fx.net.fired("slice a->b") >= 1);
}

TEST_CASE("corruption flips one byte of a segment") {
  sim_fixture fx;
  fx.net.link("a", "b").corrupt = 1.0;
  auto c = fx.connect();
  std::string msg(64, 'A');
  fx.write(c, msg);
  REQUIRE(fx.until([&] { return fx.server->received().size() == 64; }));
  auto got = fx.server->received();
  size_t diff = 0;
  for (size_t i = 0; i < msg.size(); ++i)
    diff += got[i] != msg[i];
  CHECK(diff == 1);
  CHECK(fx.net.fired("corrupt a->b") == 1);
}

TEST_CASE("connection reset: both ends get lost with ECONNRESET") {
  sim_fixture fx;
  auto c = fx.connect();
  fx.write(c, "hi");
  REQUIRE(fx.until([&] { return fx.client->received() == "hi"; }));
  fx.net.reset_connections("a", "b");
  REQUIRE(fx.until([&] {
    return fx.client->count("lost:", true) == 1 &&
           fx.server->count("lost:", true) == 1;
  }));
  CHECK(fx.net.fired("reset") == 1);
}

TEST_CASE("refused and hanging connects") {
  sim_fixture fx;
  SECTION("no listener: ECONNREFUSED after one round trip") {
    auto r =
        fx.net.create_connection({"a", "b", 99}, test::recorder(fx.client));
    REQUIRE(!r);
    CHECK(is_errno(r.error(), ECONNREFUSED));
    CHECK(fx.net.now() == 2ms);
  }
  SECTION("refuse_connect fault") {
    fx.net.link("a", "b").refuse_connect = true;
    auto r = fx.net.create_connection({"a", "b", 7}, test::recorder(fx.client));
    REQUIRE(!r);
    CHECK(is_errno(r.error(), ECONNREFUSED));
    CHECK(fx.net.unfired().empty());
  }
  SECTION("hang_connect: only the timeout ends it") {
    fx.net.link("a", "b").hang_connect = true;
    auto r =
        fx.net.create_connection({"a", "b", 7, 30s}, test::recorder(fx.client));
    REQUIRE(!r);
    CHECK(is(r.error(), sw_errc::timeout));
    CHECK(fx.net.now() == 30s);
    CHECK(fx.client->events().empty());
  }
}

TEST_CASE("cut_after resets a stream after N bytes") {
  sim_fixture fx;
  fx.net.link("a", "b").cut_after = 10;
  auto c = fx.connect();
  fx.write(c, "0123456789abcdef");
  REQUIRE(fx.until([&] { return fx.client->count("lost:", true) == 1; }));
  REQUIRE(fx.until([&] { return fx.server->count("lost", true) == 1; }));
  CHECK(fx.server->received().substr(0, 10) == "0123456789");
  CHECK(fx.server->received().size() <= 10);
  CHECK(fx.net.fired("cut_after a->b") == 1);
}

TEST_CASE("half-close and slow close") {
  sim_fixture fx;
  fx.opts.keep_open_on_eof = true; // the server keeps writing after EOF
  fx.net.stop_listening("b", 7);
  REQUIRE(!fx.net.listen("b", 7, test::recorder(fx.server, fx.opts)));
  fx.net.link("a", "b").slow_close = 5s;
  auto c = fx.connect({true, false});
  fx.write(c, "req");
  caf::anon_send(c.transport, write_eof{});
  // The FIN lags 5 s behind the data.
  REQUIRE(fx.until([&] { return fx.server->received() == "req"; }));
  auto t_data = fx.net.now();
  REQUIRE(fx.until([&] { return fx.server->count("eof") == 1; }));
  CHECK(fx.net.now() - t_data >= 5s);
  // Half-closed: the server still answers (its echo), the client reads it.
  REQUIRE(fx.until([&] { return fx.client->received() == "req"; }));
  CHECK(fx.net.fired("slow_close a->b") == 1);
}

TEST_CASE("partitions stall streams until heal; patterns cut the right "
          "links") {
  sim_fixture fx;
  auto c = fx.connect();
  fx.net.partition({"a"}, {"b"});
  fx.write(c, "during partition");
  fx.net.run_for(30s);
  CHECK(fx.server->received().empty());
  CHECK(fx.net.held().size() == 1);
  fx.net.heal();
  REQUIRE(
      fx.until([&] { return fx.client->received() == "during partition"; }));
  CHECK(fx.net.fired("partition a->b") >= 1);

  SECTION("one-way") {
    fx.net.partition_oneway({"a"}, {"b"});
    CHECK(fx.net.is_blocked("a", "b"));
    CHECK(!fx.net.is_blocked("b", "a"));
  }
  SECTION("named patterns") {
    sim::network net{5};
    for (auto h : {"n1", "n2", "n3", "n4", "n5"})
      net.add_host(h);
    auto hosts = net.hosts();
    auto seen = [&](const std::string& x) {
      size_t n = 1;
      for (auto& y : hosts)
        if (y != x && !net.is_blocked(x, y)) ++n;
      return n;
    };
    net.partition_halves();
    std::vector<size_t> sizes;
    for (auto& h : hosts)
      sizes.push_back(seen(h));
    std::sort(sizes.begin(), sizes.end());
    CHECK(sizes == std::vector<size_t>{2, 2, 3, 3, 3});
    net.heal();
    net.isolate("n3");
    CHECK(seen("n3") == 1);
    CHECK(seen("n1") == 4);
    net.heal();
    net.partition_majorities_ring();
    std::set<std::set<std::string>> views;
    for (auto& h : hosts) {
      CHECK(seen(h) == 3); // a bare majority each
      std::set<std::string> v{h};
      for (auto& y : hosts)
        if (y != h && !net.is_blocked(h, y)) v.insert(y);
      views.insert(v);
    }
    CHECK(views.size() == 5); // no two hosts see the same majority
    net.heal();
    net.partition_bridge();
    size_t bridges = 0;
    for (auto& h : hosts)
      if (seen(h) == 5) ++bridges;
    CHECK(bridges == 1);
  }
}

TEST_CASE("host crash and restart") {
  sim_fixture fx;
  int boots = 0;
  fx.net.on_boot("c", [&](sim::network& net) {
    ++boots;
    REQUIRE(!net.listen("c", 9, test::recorder(fx.server, fx.opts)));
  });
  CHECK(boots == 1);
  auto conn =
      fx.net.create_connection({"a", "c", 9}, test::recorder(fx.client));
  REQUIRE(conn);
  fx.net.crash("c");
  // A crashed host sends nothing: the client hears nothing yet.
  fx.write(*conn, "into the void");
  fx.net.run_for(10s);
  CHECK(fx.client->count("lost", true) == 0);
  // Every actor of the host died with it (no callbacks: a crash).
  CHECK(fx.net.shard_of("c").live_actors() == 0);
  // Connects to the crashed host hang.
  auto r = fx.net.create_connection(
      {"b", "c", 9, 5s}, test::recorder(std::make_shared<test::event_log>()));
  CHECK(!r);
  fx.net.restart("c");
  CHECK(boots == 2);
  // After the restart the old connection is reset at the next segment.
  fx.write(*conn, "hello again");
  REQUIRE(fx.until([&] { return fx.client->count("lost:", true) == 1; }));
  auto again = fx.net.create_connection(
      {"a", "c", 9}, test::recorder(std::make_shared<test::event_log>()));
  CHECK(again);
}

TEST_CASE("a paused host runs nothing until resumed") {
  sim_fixture fx;
  auto c = fx.connect();
  fx.net.pause("b");
  fx.write(c, "wait");
  fx.net.run_for(1min);
  CHECK(fx.server->received().empty());
  fx.net.resume("b");
  REQUIRE(fx.until([&] { return fx.client->received() == "wait"; }));
}

TEST_CASE("hold parks messages, release delivers them one by one") {
  sim_fixture fx;
  auto c = fx.connect();
  fx.net.hold("a", "b");
  fx.write(c, "one");
  fx.net.run_for(1s);
  fx.write(c, "two");
  fx.net.run_for(1s);
  auto held = fx.net.held();
  REQUIRE(held.size() == 2);
  CHECK(held[0].kind == "segment");
  CHECK(held[0].bytes == 3);
  // Releasing the second releases the first before it (byte order).
  REQUIRE(fx.net.release(held[0].id));
  REQUIRE(fx.until([&] { return fx.server->received() == "one"; }));
  CHECK(fx.net.held().size() == 1);
  fx.net.unhold("a", "b");
  REQUIRE(fx.until([&] { return fx.server->received() == "onetwo"; }));
  CHECK(fx.net.fired("hold a->b") == 2);
}

TEST_CASE("datagrams: loss, burst loss, duplication, reordering") {
  sim::network net{99};
  CAPTURE(net.seed());
  net.add_host("a");
  net.add_host("b");
  auto rx = std::make_shared<test::event_log>();
  auto tx = std::make_shared<test::event_log>();
  auto server = net.create_datagram_endpoint(
      {"b", 53, std::nullopt},
      datagram_protocol_fun(dgram_recorder, dgram_state{rx}));
  REQUIRE(server);
  auto client = net.create_datagram_endpoint(
      {"a", 0, std::make_pair(std::string{"b"}, uint16_t{53})},
      datagram_protocol_fun(dgram_recorder, dgram_state{tx}));
  REQUIRE(client);
  CHECK(client->info.kind == "udp");
  auto send_n = [&](int from, int to) {
    for (int i = from; i < to; ++i)
      caf::anon_send(client->transport,
                     sendto{buffer::copy_of(std::to_string(i)), caf::none});
    net.run_for(1s);
  };
  send_n(0, 10);
  CHECK(dgrams(*rx).size() == 10);

  auto& f = net.link("a", "b");
  f.loss = 0.3;
  send_n(10, 210);
  auto n = dgrams(*rx).size() - 10;
  CHECK(n > 100);
  CHECK(n < 180);
  CHECK(net.fired("loss a->b") == 200 - n);
  f.loss = 0;

  f.burst = {0.05, 0.3, 1.0, 0.0};
  auto before = dgrams(*rx).size();
  send_n(210, 1210);
  auto got = dgrams(*rx);
  // Losses come in runs: find at least one gap of 3 or more.
  size_t longest = 0, run = 0;
  std::set<int> have;
  for (size_t i = before; i < got.size(); ++i)
    have.insert(std::stoi(got[i]));
  for (int i = 210; i < 1210; ++i) {
    run = have.count(i) ? 0 : run + 1;
    longest = std::max(longest, run);
  }
  CHECK(longest >= 3);
  CHECK(net.fired("burst_loss a->b") > 0);
  f.burst = {};

  f.duplicate = 1.0;
  before = dgrams(*rx).size();
  send_n(2000, 2005);
  CHECK(dgrams(*rx).size() - before == 10);
  f.duplicate = 0;

  f.reorder = 0.5;
  f.reorder_delay = 50ms;
  before = dgrams(*rx).size();
  for (int i = 3000; i < 3020; ++i) {
    caf::anon_send(client->transport,
                   sendto{buffer::copy_of(std::to_string(i)), caf::none});
    net.run_for(1ms);
  }
  net.run_for(1s);
  got = dgrams(*rx);
  std::vector<int> order;
  for (size_t i = before; i < got.size(); ++i)
    order.push_back(std::stoi(got[i]));
  CHECK(order.size() == 20);
  CHECK(!std::is_sorted(order.begin(), order.end()));
  CHECK(net.fired("reorder a->b") > 0);

  // A connected endpoint hears ICMP port unreachable.
  net.link("a", "b") = sim::link_faults{};
  caf::anon_send(server->transport, shardwire::close{});
  net.run_for(1s);
  caf::anon_send(client->transport, sendto{buffer::copy_of("x"), caf::none});
  CHECK(net.run_until([&] { return tx->count("error:refused") == 1; }, 1s));
}

TEST_CASE("unfired reports faults that never fired") {
  sim::network net{1};
  net.add_host("a");
  net.add_host("b");
  net.link("a", "b").loss = 0.5;
  auto left = net.unfired();
  REQUIRE(left.size() == 1);
  CHECK(left[0] == "loss a->b");
}
