// Tests for tools/toxiproxy_api.hpp: requests go to `handle` directly (no
// HTTP), the traffic is real: a client (raw blocking socket) talks through
// an API-created proxy to an in-process echo server, loopback only.
//
// Timing toxics are checked with generous lower bounds (steady_clock) and,
// where a toxic must NOT apply, upper bounds far below the toxic's delay.
// Waits are on bytes, EOF, errors or futures, each with a deadline.
#include "tools/toxiproxy_api.hpp"

#include "tests/support/raw_read.hpp"
#include "tests/transports/helpers.hpp"
#include "transports/tcp.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <future>
#include <poll.h>
#include <sys/socket.h>

using namespace shardwire;
using namespace shardwire::test;
using namespace std::chrono_literals;
using std::chrono::steady_clock;
using json = nlohmann::json;

namespace {
std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
  return s;
}

http_request request(std::string method, std::string target,
                     std::string body = {}) {
  http_request r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.body = std::move(body);
  return r;
}

uint16_t port_of(const std::string& hostport) {
  auto x = parse_host_port(hostport);
  REQUIRE(x);
  return x->port;
}

/// An echo server and the API, with helpers to call routes.
struct api_fixture : runtime_fixture {
  event_log_ptr log = std::make_shared<event_log>();
  server echo;
  std::optional<toxiproxy_api> api;

  api_fixture() {
    recorder_options ro;
    ro.echo = true;
    auto srv = create_server(*rt, recorder(log, ro), server_options{});
    REQUIRE(srv);
    echo = *srv;
    toxiproxy_api_options o;
    o.default_seed = 42;
    api.emplace(*rt, o);
  }

  ~api_fixture() {
    api.reset();
    close_server(*rt, echo.actor);
  }

  std::string upstream() const {
    return "127.0.0.1:" + std::to_string(echo.sockets.at(0).port);
  }

  http_response call(std::string method, std::string target,
                     std::string body = {}) {
    return api->handle(
        request(std::move(method), std::move(target), std::move(body)));
  }

  /// Calls and checks the status; returns the parsed body (null if empty).
  json expect(int status, std::string method, std::string target,
              std::string body = {}) {
    auto r = call(method, target, body);
    INFO(method << ' ' << target << ' ' << body << " -> " << r.status << ' '
                << r.body);
    REQUIRE(r.status == status);
    if (r.body.empty()) return nullptr;
    auto j = json::parse(r.body, nullptr, false);
    REQUIRE(!j.is_discarded());
    return j;
  }

  /// Creates proxy `name` to the echo server; returns its listening port.
  uint16_t create(const std::string& name, std::string extra = {}) {
    auto j = expect(201, "POST", "/proxies",
                    R"({"name":")" + name + R"(","upstream":")" + upstream() +
                        R"(")" + extra + "}");
    CHECK(j["name"] == name);
    CHECK(j["enabled"] == true);
    auto port = port_of(j["listen"].get<std::string>());
    CHECK(port != 0);
    return port;
  }

  void add_toxic(const std::string& proxy, const std::string& body) {
    expect(200, "POST", "/proxies/" + proxy + "/toxics", body);
  }
};

int connect_to(uint16_t port) {
  int fd = raw_connect(port);
  REQUIRE(fd >= 0);
  return fd;
}

/// One echo round trip of `text`; returns its duration.
std::chrono::milliseconds timed_round_trip(int fd, const std::string& text) {
  auto t0 = steady_clock::now();
  REQUIRE(raw_send_all(fd, text));
  auto r = read_from(fd, text.size());
  REQUIRE(r.bytes == text);
  return std::chrono::duration_cast<std::chrono::milliseconds>(
      steady_clock::now() - t0);
}

} // namespace

TEST_CASE("routes answer with Toxiproxy's status codes", "[toxiproxy_api]") {
  api_fixture fx;
  CHECK(fx.expect(200, "GET", "/proxies") == json::object());
  auto port = fx.create("echo");
  // listen shows the bound port, and GET shows the same.
  auto j = fx.expect(200, "GET", "/proxies/echo");
  CHECK(port_of(j["listen"]) == port);
  CHECK(j["upstream"] == fx.upstream());
  CHECK(j["toxics"] == json::array());
  CHECK(fx.expect(200, "GET", "/proxies")["echo"]["name"] == "echo");

  j = fx.expect(409, "POST", "/proxies",
                R"({"name":"echo","upstream":")" + fx.upstream() + R"("})");
  CHECK(j == json{{"error", "proxy already exists"}, {"status", 409}});
  j = fx.expect(400, "POST", "/proxies", R"({"name":"x"})");
  CHECK(j["error"] == "missing required field: upstream");
  fx.expect(400, "POST", "/proxies", "{not json");
  fx.expect(400, "POST", "/proxies", R"({"name":"x","upstream":"h:0"})");
  j = fx.expect(404, "GET", "/proxies/nope");
  CHECK(j == json{{"error", "proxy not found"}, {"status", 404}});
  fx.expect(404, "GET", "/proxies/nope/toxics");
  fx.expect(404, "POST", "/proxies/nope/toxics", R"({"type":"latency"})");
  fx.expect(404, "DELETE", "/proxies/nope");
  fx.expect(404, "GET", "/nothing/here");
  fx.expect(405, "PUT", "/proxies");
  fx.expect(405, "GET", "/reset");

  // Toxics: create 200, duplicate 409, bad type/stream 400, list, get,
  // update, delete 204 then 404.
  j = fx.expect(200, "POST", "/proxies/echo/toxics",
                R"({"type":"latency","attributes":{"latency":10}})");
  CHECK(j["name"] == "latency_downstream");
  fx.expect(409, "POST", "/proxies/echo/toxics",
            R"({"type":"latency","attributes":{"latency":10}})");
  j = fx.expect(400, "POST", "/proxies/echo/toxics", R"({"type":"nope"})");
  CHECK(j["error"] == "invalid toxic type");
  fx.expect(400, "POST", "/proxies/echo/toxics",
            R"({"type":"latency","stream":"sideways"})");
  CHECK(fx.expect(200, "GET", "/proxies/echo/toxics").size() == 1);
  CHECK(
      fx.expect(
          200, "GET",
          "/proxies/echo/toxics/latency_downstream")["attributes"]["latency"] ==
      10);
  fx.expect(404, "GET", "/proxies/echo/toxics/nope");
  j = fx.expect(200, "PATCH", "/proxies/echo/toxics/latency_downstream",
                R"({"attributes":{"jitter":3}})");
  CHECK(j["attributes"] == json{{"latency", 10}, {"jitter", 3}});
  j = fx.expect(200, "POST", "/proxies/echo/toxics/latency_downstream",
                R"({"toxicity":0.5})");
  CHECK(j["toxicity"] == 0.5);
  fx.expect(400, "POST", "/proxies/echo/toxics/latency_downstream",
            R"({"attributes":{"latency":-1}})");
  CHECK(fx.expect(200, "GET", "/proxies/echo")["toxics"].size() == 1);
  CHECK(fx.call("DELETE", "/proxies/echo/toxics/latency_downstream").status ==
        204);
  fx.expect(404, "DELETE", "/proxies/echo/toxics/latency_downstream");

  auto v = fx.expect(200, "GET", "/version");
  CHECK(v["version"].is_string());
  CHECK(fx.call("HEAD", "/proxies/echo").status == 200);
  auto del = fx.call("DELETE", "/proxies/echo");
  CHECK(del.status == 204);
  CHECK(del.body.empty());
  fx.expect(404, "GET", "/proxies/echo");
  // Its port is free again: nothing listens there.
  CHECK(raw_connect(port) < 0);
}

TEST_CASE("latency delays a round trip and applies to live connections",
          "[toxiproxy_api]") {
  api_fixture fx;
  auto port = fx.create("echo");
  int fd = connect_to(port);
  timed_round_trip(fd, "warm-up"); // the connection is live before the toxic
  fx.add_toxic("echo", R"({"type":"latency","attributes":{"latency":300}})");
  CHECK(timed_round_trip(fd, "hello") >= 250ms);
  // Updated in place: the new value applies to the same connection.
  fx.expect(200, "PATCH", "/proxies/echo/toxics/latency_downstream",
            R"({"attributes":{"latency":600}})");
  CHECK(timed_round_trip(fd, "again") >= 500ms);
  fx.expect(204, "DELETE", "/proxies/echo/toxics/latency_downstream");
  CHECK(timed_round_trip(fd, "fast") < 500ms);
  raw_close(fd);
}

TEST_CASE("toxicity 0 never applies, 1 always", "[toxiproxy_api]") {
  api_fixture fx;
  auto port = fx.create("echo");
  fx.add_toxic("echo", R"({"type":"latency","name":"never","toxicity":0,)"
                       R"("attributes":{"latency":2000}})");
  for (int i = 0; i < 3; ++i) {
    int fd = connect_to(port);
    CHECK(timed_round_trip(fd, "x") < 1500ms);
    raw_close(fd);
  }
  fx.add_toxic("echo", R"({"type":"latency","name":"always","toxicity":1,)"
                       R"("attributes":{"latency":200}})");
  for (int i = 0; i < 2; ++i) {
    int fd = connect_to(port);
    auto t = timed_round_trip(fd, "x");
    CHECK(t >= 150ms);
    CHECK(t < 1500ms);
    raw_close(fd);
  }
}

TEST_CASE("limit_data closes after N bytes", "[toxiproxy_api]") {
  api_fixture fx;
  auto port = fx.create("echo");
  fx.add_toxic("echo", R"({"type":"limit_data","attributes":{"bytes":10}})");
  int fd = connect_to(port);
  REQUIRE(raw_send_all(fd, pattern(100)));
  auto r = read_from(fd);
  CHECK(r.bytes == pattern(100).substr(0, 10));
  CHECK((r.eof || r.error != 0));
  raw_close(fd);
}

TEST_CASE("reset_peer resets the connection", "[toxiproxy_api]") {
  api_fixture fx;
  auto port = fx.create("echo");
  fx.add_toxic("echo", R"({"type":"reset_peer","stream":"upstream",)"
                       R"("attributes":{"timeout":200}})");
  int fd = connect_to(port);
  auto t0 = steady_clock::now();
  REQUIRE(raw_send_all(fd, "doomed"));
  auto r = read_from(fd);
  CHECK(r.bytes.empty()); // the data was swallowed
  CHECK(r.error == ECONNRESET);
  CHECK(steady_clock::now() - t0 >= 150ms);
  raw_close(fd);
  // As Toxiproxy's: the timer starts with the first byte of the toxic's
  // direction after it was added, so a silent connection is left alone and
  // data that flowed before the toxic does not count.
  fx.expect(204, "DELETE", "/proxies/echo/toxics/reset_peer_upstream");
  fd = connect_to(port);
  timed_round_trip(fd, "alive");
  fx.add_toxic("echo", R"({"type":"reset_peer","attributes":{"timeout":300}})");
  r = read_from(fd, std::string::npos, 700ms);
  CHECK(r.bytes.empty());
  CHECK(r.error == 0); // silent: no reset
  CHECK_FALSE(r.eof);
  t0 = steady_clock::now();
  REQUIRE(raw_send_all(fd, "wake")); // echoed: downstream data arrives
  r = read_from(fd);
  CHECK(r.bytes.empty());
  CHECK(r.error == ECONNRESET);
  CHECK(steady_clock::now() - t0 >= 250ms);
  raw_close(fd);
}

TEST_CASE("timeout swallows data, then closes", "[toxiproxy_api]") {
  api_fixture fx;
  auto port = fx.create("echo");
  fx.add_toxic("echo", R"({"type":"timeout","attributes":{"timeout":300}})");
  int fd = connect_to(port);
  auto t0 = steady_clock::now();
  REQUIRE(raw_send_all(fd, "into the void"));
  auto r = read_from(fd);
  CHECK(r.bytes.empty());
  CHECK(r.eof);
  CHECK(steady_clock::now() - t0 >= 250ms);
  raw_close(fd);
  // timeout 0: swallowed, and the connection stays open.
  fx.expect(200, "PATCH", "/proxies/echo/toxics/timeout_downstream",
            R"({"attributes":{"timeout":0}})");
  fd = connect_to(port);
  REQUIRE(raw_send_all(fd, "still void"));
  r = read_from(fd, std::string::npos, 600ms);
  CHECK(r.bytes.empty());
  CHECK(!r.eof);
  CHECK(r.error == 0);
  raw_close(fd);
}

TEST_CASE("slow_close delays the close", "[toxiproxy_api]") {
  api_fixture fx;
  auto port = fx.create("echo");
  fx.add_toxic("echo", R"({"type":"slow_close","attributes":{"delay":400}})");
  int fd = connect_to(port);
  REQUIRE(timed_round_trip(fd, "bye") < 5s);
  // Our FIN reaches the echo server, which closes; its EOF comes back late.
  auto t0 = steady_clock::now();
  ::shutdown(fd, SHUT_WR);
  auto r = read_from(fd);
  CHECK(r.eof);
  CHECK(steady_clock::now() - t0 >= 350ms);
  raw_close(fd);
}

TEST_CASE("bandwidth slows a transfer", "[toxiproxy_api]") {
  api_fixture fx;
  auto port = fx.create("echo");
  // 20 KB/s = 20,000 bytes per second: 12,000 bytes take about 0.6 s.
  fx.add_toxic("echo", R"({"type":"bandwidth","attributes":{"rate":20}})");
  int fd = connect_to(port);
  auto text = pattern(12000);
  CHECK(timed_round_trip(fd, text) >= 450ms);
  raw_close(fd);
}

TEST_CASE("slicer splits the stream, intact and in order", "[toxiproxy_api]") {
  api_fixture fx;
  auto port = fx.create("echo");
  fx.add_toxic("echo", R"({"type":"slicer","attributes":{"average_size":8,)"
                       R"("size_variation":4,"delay":300}})");
  int fd = connect_to(port);
  auto text = pattern(4000);
  REQUIRE(raw_send_all(fd, text));
  auto r = read_from(fd, text.size());
  CHECK(r.bytes == text);
  CHECK(r.reads >= 20);
  auto stats = fx.expect(200, "GET", "/proxies/echo/stats");
  CHECK(stats["writes_down"].get<uint64_t>() >= text.size() / 12);
  raw_close(fd);
}

TEST_CASE("disable refuses connections, enable listens on the same port",
          "[toxiproxy_api]") {
  api_fixture fx;
  auto port = fx.create("echo");
  int live = connect_to(port);
  timed_round_trip(live, "up");
  auto j = fx.expect(200, "POST", "/proxies/echo", R"({"enabled":false})");
  CHECK(j["enabled"] == false);
  CHECK(port_of(j["listen"]) == port);
  // The live connection was closed, new ones are refused.
  auto r = read_from(live);
  CHECK((r.eof || r.error != 0));
  raw_close(live);
  CHECK(raw_connect(port) < 0);
  j = fx.expect(200, "PATCH", "/proxies/echo", R"({"enabled":true})");
  CHECK(j["enabled"] == true);
  CHECK(port_of(j["listen"]) == port);
  int fd = connect_to(port);
  timed_round_trip(fd, "back");
  raw_close(fd);
  // Moving the listener restarts the proxy on the new address.
  j = fx.expect(200, "POST", "/proxies/echo", R"({"listen":"127.0.0.1:0"})");
  auto moved = port_of(j["listen"]);
  CHECK(moved != 0);
  fd = connect_to(moved);
  timed_round_trip(fd, "moved");
  raw_close(fd);
  // Counters survive restarts.
  auto stats = fx.expect(200, "GET", "/proxies/echo/stats");
  CHECK(stats["connections"].get<uint64_t>() >= 3);
}

TEST_CASE("populate creates and replaces; reset clears toxics and enables",
          "[toxiproxy_api]") {
  api_fixture fx;
  auto up = fx.upstream();
  auto body = R"([{"name":"a","upstream":")" + up +
              R"("},{"name":"b","upstream":")" + up + R"(","enabled":false}])";
  auto j = fx.expect(201, "POST", "/populate", body);
  REQUIRE(j["proxies"].size() == 2);
  CHECK(j["proxies"][1]["enabled"] == false);
  auto a_port = port_of(j["proxies"][0]["listen"]);
  fx.add_toxic("a", R"({"type":"latency","attributes":{"latency":50}})");

  // Same listen and upstream: kept (toxics too); otherwise replaced.
  auto a_listen = "127.0.0.1:" + std::to_string(a_port);
  body = R"([{"name":"a","listen":")" + a_listen + R"(","upstream":")" + up +
         R"("},{"name":"b","upstream":")" + up + R"("}])";
  j = fx.expect(201, "POST", "/populate", body);
  REQUIRE(j["proxies"].size() == 2);
  CHECK(j["proxies"][0]["toxics"].size() == 1);
  // b never listened, so its listen is still port 0 and unchanged: kept
  // disabled, as Toxiproxy's AddOrReplace keeps it.
  CHECK(j["proxies"][1]["enabled"] == false);
  // A different upstream replaces a (a new proxy: no toxics).
  body = R"([{"name":"a","listen":")" + a_listen + R"(","upstream":")" +
         "127.0.0.1:" + std::to_string(a_port) + R"("}])";
  j = fx.expect(201, "POST", "/populate", body);
  CHECK(j["proxies"][0]["toxics"] == json::array());
  CHECK(port_of(j["proxies"][0]["listen"]) == a_port);
  fx.add_toxic("a", R"({"type":"latency","attributes":{"latency":50}})");

  j = fx.expect(400, "POST", "/populate", R"([{"name":"c"}])");
  CHECK(j["proxies"] == json::array());
  CHECK(j["status"] == 400);
  fx.expect(400, "POST", "/populate", R"({"name":"c"})");

  CHECK(fx.call("POST", "/reset").status == 204);
  auto all = fx.expect(200, "GET", "/proxies");
  CHECK(all["a"]["toxics"] == json::array());
  CHECK(all["b"]["enabled"] == true);
  int fd = connect_to(port_of(all["b"]["listen"]));
  timed_round_trip(fd, "after reset");
  raw_close(fd);
  CHECK(!fx.api->populate("[]"));
  CHECK(fx.api->populate("[{}]")->status == 400);
}

TEST_CASE("metrics use Toxiproxy's names plus chaos_proxy counters",
          "[toxiproxy_api]") {
  api_fixture fx;
  auto port = fx.create("echo");
  int fd = connect_to(port);
  timed_round_trip(fd, "12345");
  raw_close(fd);
  auto r = fx.call("GET", "/metrics");
  CHECK(r.status == 200);
  CHECK(r.content_type.rfind("text/plain", 0) == 0);
  auto labels = "listener=\"127.0.0.1:" + std::to_string(port) +
                "\",proxy=\"echo\",upstream=\"" + fx.upstream() + "\"";
  CHECK(
      r.body.find("toxiproxy_proxy_sent_bytes_total{direction=\"downstream\"," +
                  labels + "} 5\n") != std::string::npos);
  CHECK(r.body.find("toxiproxy_proxy_received_bytes_total{direction="
                    "\"upstream\"," +
                    labels + "} 5\n") != std::string::npos);
  CHECK(r.body.find("# TYPE chaos_proxy_connections_total counter") !=
        std::string::npos);
  CHECK(r.body.find("chaos_proxy_connections_total{proxy=\"echo\"} 1") !=
        std::string::npos);
}

TEST_CASE("sever resets live connections; the proxy keeps serving",
          "[toxiproxy_api]") {
  api_fixture fx;
  auto port = fx.create("echo");
  int fd = connect_to(port);
  timed_round_trip(fd, "x");
  fx.expect(204, "POST", "/proxies/echo/sever");
  auto r = read_from(fd);
  CHECK(r.error == ECONNRESET);
  raw_close(fd);
  fd = connect_to(port);
  timed_round_trip(fd, "y");
  raw_close(fd);
}

namespace {

// Stands in for http_server's responder: move-only, called once.
struct test_responder {
  std::promise<http_response> done;
  void operator()(http_response r) && { done.set_value(std::move(r)); }
};

} // namespace

TEST_CASE("the async handler answers from the worker, 503 after stop",
          "[toxiproxy_api]") {
  api_fixture fx;
  auto handler = fx.api->async_handler<test_responder>();
  test_responder r1;
  auto f1 = r1.done.get_future();
  handler(request("GET", "/version"), std::move(r1));
  REQUIRE(f1.wait_for(deadline) == std::future_status::ready);
  CHECK(f1.get().status == 200);
  fx.api->stop();
  test_responder r2;
  auto f2 = r2.done.get_future();
  handler(request("GET", "/version"), std::move(r2));
  REQUIRE(f2.wait_for(deadline) == std::future_status::ready);
  CHECK(f2.get().status == 503);
}
