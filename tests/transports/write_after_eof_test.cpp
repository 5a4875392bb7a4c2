// A write after write_eof is dropped and must not hurt the writer: only a
// request gets the write_after_eof error back (tested in
// stream_semantics_test); a plain send or transport_ref::write is dropped
// with a logged error, nothing more reaches the peer, and the protocol still
// gets its one `lost` when the connection ends.
#include "transports/tcp.hpp"

#include "tests/support/fixtures.hpp"

#include <sys/socket.h>

using namespace shardwire;
using namespace shardwire::test;

namespace {

// Actor style: writes, half-closes, then (wrongly) writes again with a plain
// send, all in its `connected` handler.
protocol_actor::behavior_type late_writer(protocol_actor::pointer self,
                                          event_log_ptr log) {
  return {
      [self, log](connected& msg) {
        self->send(msg.transport, shardwire::write{buffer::copy_of("early")});
        self->send(msg.transport, write_eof{});
        self->send(msg.transport, shardwire::write{buffer::copy_of("late")});
        log->add("connected");
      },
      [log](data& msg) { log->add("data:" + msg.bytes.str()); },
      [log](eof) {
        log->add("eof");
        return false;
      },
      [](shardwire::pause) {},
      [](shardwire::resume) {},
      [self, log](lost& msg) {
        log->add(msg.reason ? "lost:" + describe(msg.reason) : "lost");
        self->quit();
      },
  };
}

// Callback style: the same through transport_ref (which may take the fast
// path with an anonymous message).
class late_writer_cb : public protocol {
public:
  explicit late_writer_cb(event_log_ptr log) : log_(std::move(log)) {}

  void connection_made(transport_ref& t) override {
    t.write("early");
    t.write_eof();
    t.write("late");
    log_->add("connected");
  }

  bool eof_received() override {
    log_->add("eof");
    return false;
  }

  void connection_lost(const caf::error& reason) override {
    log_->add(reason ? "lost:" + describe(reason) : "lost");
  }

private:
  event_log_ptr log_;
};

void check_late_write_dropped(runtime_fixture& fx, protocol_factory factory,
                              const event_log_ptr& log) {
  auto srv = create_server(*fx.rt, std::move(factory), {});
  REQUIRE(srv);
  int peer = raw_connect(srv->sockets.at(0).port);
  REQUIRE(peer >= 0);
  REQUIRE(log->wait_for_event("connected"));
  // The peer gets the early bytes, then EOF; the late write never arrives.
  bool eof_seen = false;
  CHECK(raw_read_to_eof(peer, &eof_seen) == "early");
  CHECK(eof_seen);
  // The protocol is still alive: closing our side delivers eof and lost.
  ::shutdown(peer, SHUT_WR);
  REQUIRE(log->wait_for_event("lost"));
  CHECK(log->events() == std::vector<std::string>{"connected", "eof", "lost"});
  raw_close(peer);
  caf::anon_send(srv->actor, shardwire::close{});
}

} // namespace

TEST_CASE("a plain send after write_eof is dropped, the writer lives on") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  check_late_write_dropped(fx, protocol_fun(late_writer, log), log);
}

TEST_CASE("transport_ref::write after write_eof is dropped, lost follows") {
  runtime_fixture fx;
  auto log = std::make_shared<event_log>();
  check_late_write_dropped(fx, make_protocol<late_writer_cb>(log), log);
}
