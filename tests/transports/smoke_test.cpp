#include "transports/tcp.hpp"

#include "tests/support/fixtures.hpp"

using namespace shardwire;
using namespace shardwire::test;

TEST_CASE("echo over TCP between two recording protocols") {
  runtime_fixture fx;
  auto server_log = std::make_shared<event_log>();
  auto client_log = std::make_shared<event_log>();
  recorder_options echo;
  echo.echo = true;
  auto srv = create_server(*fx.rt, recorder(server_log, echo), {});
  REQUIRE(srv);
  connect_options co;
  co.port = srv->sockets.at(0).port;
  auto client_transport = std::make_shared<transport_actor>();
  auto conn =
      create_connection(*fx.rt, co, recorder(client_log, {}, client_transport));
  REQUIRE(conn);
  caf::anon_send(conn->transport, shardwire::write{buffer::copy_of("hello")});
  REQUIRE(client_log->wait_for([](auto& evs) {
    std::string all;
    for (auto& e : evs)
      if (e.rfind("data:", 0) == 0) all += e.substr(5);
    return all == "hello";
  }));
  caf::anon_send(conn->transport, shardwire::close{});
  REQUIRE(client_log->wait_for_event("lost"));
  REQUIRE(server_log->wait_for_event("lost", true));
  auto evs = client_log->events();
  CHECK(evs.front() == "connected");
  CHECK(evs.back() == "lost");
}
