// Crossing processes: every vocabulary type through CAF's binary
// serialization, a transport and its protocol on two actor systems joined by
// the middleman, and the node API of actors/node.hpp (lookups, their errors,
// the service watch).
#include "actors/node.hpp"

#include "actors/errors.hpp"
#include "actors/messages.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/remote_node.hpp"
#include "transports/socket.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/message.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include <sys/socket.h>
#include <unistd.h>

using namespace shardwire;
using namespace shardwire::test;

namespace {

/// Serializes `x` as an element of a caf::message (as the middleman does:
/// it needs the type registered) and reads it back.
template <class T>
T wire_round_trip(caf::actor_system& sys, const T& x) {
  auto msg = caf::make_message(x);
  std::vector<char> bytes;
  caf::binary_serializer sink{sys, bytes};
  REQUIRE_FALSE(sink(msg));
  caf::message out;
  caf::binary_deserializer source{sys, bytes};
  REQUIRE_FALSE(source(out));
  REQUIRE(out.match_elements<T>());
  return out.get_as<T>(0);
}

bool same_error(const caf::error& x, const caf::error& y) {
  if (!x || !y) return !x && !y;
  return x.code() == y.code() && x.category() == y.category() &&
         describe(x) == describe(y);
}

bool same_info(const transport_info& x, const transport_info& y) {
  return x.kind == y.kind && x.peername == y.peername &&
         x.sockname == y.sockname && x.fd == y.fd && x.shard == y.shard;
}

template <class T>
bool empty_survives(caf::actor_system& sys) {
  wire_round_trip(sys, T{});
  return true;
}

/// A protocol actor on CAF's scheduler that echoes and logs, for running on
/// the "remote" actor system.
struct echo_state {
  // Not an aggregate: C++20 would let CAF construct it from the self pointer.
  echo_state() = default;
  transport_actor transport;
};

protocol_actor::behavior_type
remote_echo(protocol_actor::stateful_pointer<echo_state> self,
            event_log_ptr log) {
  return {
      [=](connected& c) {
        self->state.transport = c.transport;
        log->add("connected:" + c.info.kind);
      },
      [=](data& d) {
        log->add("data:" + d.bytes.str());
        self->send(self->state.transport, shardwire::write{d.bytes});
      },
      [=](eof&) {
        log->add("eof");
        return false;
      },
      [=](shardwire::pause&) { log->add("pause"); },
      [=](resume&) { log->add("resume"); },
      [=](lost& l) {
        log->add(l.reason ? "lost:" + describe(l.reason) : "lost");
        self->quit();
      },
  };
}

} // namespace

TEST_CASE("every vocabulary type crosses the wire, datagrams and buffer "
          "included") {
  runtime_fixture fx{1, networked};
  auto& sys = fx.rt->system();
  auto dummy = sys.spawn(
      [](caf::event_based_actor*) -> caf::behavior { return {[](int) {}}; });
  transport_info info;
  info.kind = "udp";
  info.peername = endpoint{endpoint::kind::ipv4, "127.0.0.1", 9, {}};
  info.sockname = endpoint{endpoint::kind::ipv6, "::1", 4242, {}};
  info.fd = 5;
  info.shard = 1;
  endpoint peer{endpoint::kind::ipv6, "::1", 53, {}};
  std::string binary{"\0\x01\xff\n payload", 12};

  SECTION("buffers: empty, binary and sliced") {
    CHECK(wire_round_trip(sys, buffer{}).empty());
    CHECK(wire_round_trip(sys, buffer::copy_of(binary)).view() == binary);
    auto big = buffer::adopt(std::string(100000, 'x'));
    CHECK(wire_round_trip(sys, big.slice(10, 50000)) == big.slice(10, 50000));
  }
  SECTION("stream protocol side") {
    auto c = wire_round_trip(
        sys, connected{caf::actor_cast<transport_actor>(dummy), info});
    CHECK(c.transport == caf::actor_cast<transport_actor>(dummy));
    CHECK(same_info(c.info, info));
    CHECK(
        wire_round_trip(sys, data{buffer::copy_of(binary), {}}).bytes.view() ==
        binary);
    auto err = make_errno_error(ECONNRESET, "read");
    CHECK(same_error(wire_round_trip(sys, lost{err}).reason, err));
    CHECK_FALSE(wire_round_trip(sys, lost{}).reason);
    CHECK(empty_survives<eof>(sys));
    CHECK(empty_survives<shardwire::pause>(sys));
    CHECK(empty_survives<resume>(sys));
  }
  SECTION("stream transport side") {
    CHECK(wire_round_trip(sys, shardwire::write{buffer::copy_of(binary)})
              .bytes.view() == binary);
    std::vector<buffer> parts{buffer::copy_of("a"), buffer{},
                              buffer::copy_of(binary)};
    CHECK(wire_round_trip(sys, writelines{parts}).parts == parts);
    auto l = wire_round_trip(sys, set_write_buffer_limits{uint64_t{9}, {}});
    CHECK((l.high && *l.high == 9 && !l.low));
    CHECK(wire_round_trip(sys, write_buffer_limits{1, 2}) ==
          write_buffer_limits{1, 2});
    auto s = wire_round_trip(sys, transport_status{true, true, 77});
    CHECK((s.closing && s.reading && s.write_buffer_size == 77));
    auto sp = wire_round_trip(
        sys, set_protocol{caf::actor_cast<protocol_actor>(dummy)});
    CHECK(sp.protocol == caf::actor_cast<protocol_actor>(dummy));
    CHECK(same_info(wire_round_trip(sys, info), info));
    CHECK(wire_round_trip(sys, peer) == peer);
    CHECK(empty_survives<write_eof>(sys));
    CHECK(empty_survives<shardwire::close>(sys));
    CHECK(empty_survives<shardwire::abort>(sys));
    CHECK(empty_survives<pause_reading>(sys));
    CHECK(empty_survives<resume_reading>(sys));
    CHECK(empty_survives<get_write_buffer_size>(sys));
    CHECK(empty_survives<get_write_buffer_limits>(sys));
    CHECK(empty_survives<get_extra_info>(sys));
    CHECK(empty_survives<get_status>(sys));
    CHECK(empty_survives<read_credit_returned>(sys));
  }
  SECTION("servers") {
    CHECK(empty_survives<get_sockets>(sys));
    CHECK(empty_survives<start_serving>(sys));
    CHECK(empty_survives<stop_serving>(sys));
    CHECK(empty_survives<is_serving>(sys));
    CHECK(empty_survives<close_clients>(sys));
    CHECK(empty_survives<abort_clients>(sys));
    auto srv = caf::actor_cast<server_actor>(dummy);
    CHECK(wire_round_trip(sys, srv) == srv);
  }
  SECTION("datagrams") {
    auto dt = caf::actor_cast<datagram_transport_actor>(dummy);
    auto dc = wire_round_trip(sys, datagram_connected{dt, info});
    CHECK(dc.transport == dt);
    CHECK(same_info(dc.info, info));
    auto d = wire_round_trip(sys, datagram{buffer::copy_of(binary), peer, {}});
    CHECK(d.bytes.view() == binary);
    CHECK(d.peer == peer);
    CHECK(wire_round_trip(sys, datagram{}).bytes.empty());
    auto err = make_errno_error(ECONNREFUSED, "recv");
    CHECK(same_error(wire_round_trip(sys, datagram_error{err}).reason, err));
    auto st =
        wire_round_trip(sys, shardwire::sendto{buffer::copy_of("q"), peer});
    CHECK((st.bytes.view() == "q" && st.peer && *st.peer == peer));
    CHECK_FALSE(
        wire_round_trip(sys, shardwire::sendto{buffer::copy_of("q"), {}}).peer);
    auto dp = caf::actor_cast<datagram_protocol_actor>(dummy);
    CHECK(wire_round_trip(sys, dp) == dp);
    CHECK(wire_round_trip(sys, dt) == dt);
  }
  SECTION("handles and node messages") {
    auto t = caf::actor_cast<transport_actor>(dummy);
    auto p = caf::actor_cast<protocol_actor>(dummy);
    CHECK(wire_round_trip(sys, t) == t);
    CHECK(wire_round_trip(sys, p) == p);
    auto q = wire_round_trip(sys, service_lookup{"kv"});
    CHECK((q.name == "kv" && q.version == node_protocol_version));
    auto e = wire_round_trip(sys, service_entry{dummy, {"a", "b"}});
    CHECK((e.actor == dummy && e.interface == std::set<std::string>{"a", "b"}));
    CHECK(wire_round_trip(sys, service_up{"kv", dummy}).actor == dummy);
    auto down = make_error(sw_errc::node_unavailable, "kv@h:1");
    CHECK(same_error(wire_round_trip(sys, service_down{"kv", down}).reason,
                     down));
  }
  caf::anon_send_exit(dummy, caf::exit_reason::user_shutdown);
}

TEST_CASE("local delivery shares a buffer's storage: no copy, no "
          "serialization") {
  runtime_fixture fx{1, networked};
  auto& sys = fx.rt->system();
  // Echoes the bytes of `data` back as `write`, as a protocol would.
  auto echo = sys.spawn([](caf::event_based_actor*) -> caf::behavior {
    return {[](data& d) { return shardwire::write{d.bytes}; }};
  });
  auto sent = buffer::copy_of("not copied on the local path");
  auto back = ask<shardwire::write>(*fx.rt, echo, data{sent, {}});
  REQUIRE(back);
  CHECK(back->bytes.shares_storage_with(sent));
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
}

TEST_CASE("a transport and its protocol on two actor systems, joined by the "
          "middleman") {
  runtime_fixture fx{2, networked};
  auto log = std::make_shared<event_log>();
  {
    remote_node remote;
    auto proto = remote.sys->spawn(remote_echo, log);
    remote.n->add("echo", proto);
    // The transport's runtime looks the protocol up and adopts a socket
    // whose protocol is the remote actor: the transport is only an address.
    auto hdl = lookup<protocol_actor>(fx.rt->system(), remote.address("echo"));
    REQUIRE(hdl);
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    auto conn = connect_accepted_socket(*fx.rt, fds[0],
                                        [hdl = *hdl](shard&) { return hdl; });
    REQUIRE(conn);
    CHECK(log->wait_for_event("connected:", true));
    REQUIRE(raw_send_all(fds[1], "hello over the middleman"));
    CHECK(raw_read_exact(fds[1], 24) == "hello over the middleman");
    CHECK(log->received() == "hello over the middleman");
    ::shutdown(fds[1], SHUT_WR);
    bool eof_seen = false;
    raw_read_to_eof(fds[1], &eof_seen);
    CHECK(eof_seen); // eof -> false -> the transport closed its end
    CHECK(log->wait_for_event("lost"));
    auto ev = log->events();
    REQUIRE(ev.size() >= 3);
    CHECK(ev.front().rfind("connected:", 0) == 0);
    CHECK(ev[ev.size() - 2] == "eof");
    CHECK(ev.back() == "lost");
    raw_close(fds[1]);
  }
}

TEST_CASE("lookups: clear errors for unknown, incompatible and unreachable") {
  runtime_fixture fx{1, networked};
  auto& sys = fx.rt->system();
  using namespace std::chrono_literals;
  {
    remote_node remote;
    auto log = std::make_shared<event_log>();
    auto proto = remote.sys->spawn(remote_echo, log);
    remote.n->add("echo", proto);
    auto unknown = lookup<protocol_actor>(sys, remote.address("nope"));
    REQUIRE_FALSE(unknown);
    CHECK(is(unknown.error(), sw_errc::unknown_service));
    // The actor there handles protocol messages, not transport ones.
    auto wrong = lookup<transport_actor>(sys, remote.address("echo"));
    REQUIRE_FALSE(wrong);
    CHECK(is(wrong.error(), sw_errc::incompatible_node));
    auto untyped = lookup<caf::actor>(sys, remote.address("echo"));
    CHECK(untyped); // no interface asked for, none checked
    caf::anon_send_exit(proto, caf::exit_reason::user_shutdown);
  }
  // A port nobody listens on (the node above is gone).
  raw_listener spare;
  auto port = spare.port();
  ::close(spare.fd);
  spare.fd = -1;
  auto gone = lookup<protocol_actor>(sys, {"127.0.0.1", port, "echo"}, 2s);
  REQUIRE_FALSE(gone);
  CHECK(is(gone.error(), sw_errc::node_unavailable));
  CHECK(describe(gone.error()).find("echo@127.0.0.1:") != std::string::npos);
  auto bad = parse_service_address("localhost", "kv");
  CHECK_FALSE(bad);
  auto ok = parse_service_address("[::1]:7001", "kv");
  REQUIRE(ok);
  CHECK((ok->host == "::1" && ok->port == 7001 &&
         to_string(*ok) == "kv@[::1]:7001"));
}

TEST_CASE("a service watch reports down and up as the remote service goes "
          "and returns") {
  runtime_fixture fx{1, networked};
  auto& sys = fx.rt->system();
  remote_node remote;
  auto log = std::make_shared<event_log>();
  auto first = remote.sys->spawn(remote_echo, log);
  remote.n->add("echo", first);
  caf::scoped_actor owner{sys};
  watch_backoff fast;
  fast.initial = std::chrono::milliseconds(10);
  fast.max = std::chrono::milliseconds(100);
  auto watch = spawn_service_watch(sys, caf::actor_cast<caf::actor>(owner),
                                   remote.address("echo"),
                                   sys.message_types<protocol_actor>(), fast);
  auto expect_up = [&] {
    caf::actor got;
    owner->receive([&](service_up& up) { got = up.actor; },
                   caf::after(deadline) >> [] {});
    return got;
  };
  auto expect_down = [&] {
    caf::error got;
    owner->receive([&](service_down& down) { got = down.reason; },
                   caf::after(deadline) >> [] {});
    return got;
  };
  auto up1 = expect_up();
  REQUIRE(up1);
  // The remote actor dies: a down message, seen as service_down.
  caf::anon_send_exit(first, caf::exit_reason::user_shutdown);
  auto why = expect_down();
  CHECK(is(why, sw_errc::node_unavailable));
  // Lookups now fail (unknown service) and are retried with back-off; a
  // new actor under the same name is found.
  auto second = remote.sys->spawn(remote_echo, log);
  remote.n->add("echo", second);
  auto up2 = expect_up();
  REQUIRE(up2);
  CHECK(up2 != up1);
  // Exactly one down per outage: nothing else arrived meanwhile.
  bool extra = false;
  owner->receive([&](service_down&) { extra = true; },
                 [&](service_up&) { extra = true; },
                 caf::after(std::chrono::milliseconds(200)) >> [] {});
  CHECK_FALSE(extra);
  caf::anon_send_exit(watch, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(second, caf::exit_reason::user_shutdown);
}
