// The blocking variants (create_connection, create_datagram_endpoint,
// subprocess_exec) wait on their caller's thread for a shard: called on a
// shard thread they would wait on themselves, so they refuse with
// invalid_argument instead of hanging.
#include "transports/subprocess.hpp"
#include "transports/tcp.hpp"
#include "transports/udp.hpp"

#include "tests/support/fixtures.hpp"

#include <future>
#include <string>

using namespace shardwire;
using namespace shardwire::test;

namespace {

struct refusals {
  caf::error connect;
  caf::error datagram;
  caf::error subprocess;
};

} // namespace

TEST_CASE("blocking calls on a shard thread are refused, not hung") {
  runtime_fixture fx;
  std::promise<refusals> done;
  auto fut = done.get_future();
  fx.rt->shard_at(0).post([&] {
    // The results are dropped before set_value: this thread then holds no
    // reference to the errors' context messages once the test thread reads
    // them (under TSan, a last reference dropped here after the test thread
    // released its copy was reported as a race on the message's string).
    refusals r = [&] {
      refusals r;
      connect_options copts;
      copts.host = "127.0.0.1";
      copts.port = 1;
      auto conn = create_connection(*fx.rt, copts, protocol_factory{});
      r.connect = conn ? caf::error{} : conn.error();
      auto ep = create_datagram_endpoint(*fx.rt, datagram_protocol_factory{},
                                         datagram_options{});
      r.datagram = ep ? caf::error{} : ep.error();
      auto proc =
          subprocess_exec(*fx.rt, {"/bin/true"}, subprocess_protocol_factory{},
                          subprocess_options{});
      r.subprocess = proc ? caf::error{} : proc.error();
      return r;
    }();
    done.set_value(std::move(r));
  });
  REQUIRE(fut.wait_for(std::chrono::seconds{10}) == std::future_status::ready);
  auto r = fut.get();
  for (auto* err : {&r.connect, &r.datagram, &r.subprocess}) {
    CHECK(*err == sw_errc::invalid_argument);
    CHECK(describe(*err).find("shard thread") != std::string::npos);
  }
}
