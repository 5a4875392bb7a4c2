// Tests for tools/toxiproxy_model.hpp: JSON in and out, defaults, the HTTP
// status of each refusal, merging updates, and the translation of toxics into
// fault specs. Pure: no runtime, no sockets.
#include "tools/toxiproxy_model.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

using namespace shardwire;
using namespace shardwire::toxiproxy;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

toxic parsed_toxic(std::string_view body) {
  toxic t;
  auto err = parse_toxic(body, t);
  INFO(body << " -> " << (err ? err->message : "ok"));
  REQUIRE(!err);
  return t;
}

int toxic_status(std::string_view body) {
  toxic t;
  auto err = parse_toxic(body, t);
  return err ? err->status : 200;
}

int proxy_status(std::string_view body) {
  proxy_config p;
  auto err = parse_proxy(body, p);
  return err ? err->status : 200;
}

} // namespace

TEST_CASE("a proxy needs a name and an upstream; listen and enabled default",
          "[toxiproxy_model]") {
  proxy_config p;
  REQUIRE(!parse_proxy(R"({"name":"db","upstream":"127.0.0.1:5432"})", p));
  CHECK(p.name == "db");
  CHECK(p.upstream == "127.0.0.1:5432");
  CHECK(p.listen == "127.0.0.1:0");
  CHECK(p.enabled);
  CHECK(!p.seed);

  REQUIRE(!parse_proxy(R"({"name":"x","upstream":"localhost:1","listen":)"
                       R"("[::1]:0","enabled":false,"seed":7,"toxics":[]})",
                       p));
  CHECK(p.listen == "[::1]:0");
  CHECK(!p.enabled);
  CHECK(p.seed == 7u);

  auto err = parse_proxy(R"({"upstream":"127.0.0.1:1"})", p);
  REQUIRE(err);
  CHECK(err->status == 400);
  CHECK(err->message == "missing required field: name");
  err = parse_proxy(R"({"name":"a"})", p);
  REQUIRE(err);
  CHECK(err->message == "missing required field: upstream");
}

TEST_CASE("bad proxy bodies are 400 with the reason", "[toxiproxy_model]") {
  for (auto body :
       {"", "{", "[]", "null", "42", R"({"name":1,"upstream":"a:1"})",
        R"({"name":"a","upstream":"a:1","enabled":"yes"})",
        R"({"name":"a","upstream":"a:1","bogus":1})",
        R"({"name":"a","upstream":"nowhere"})",
        R"({"name":"a","upstream":"a:70000"})",
        R"({"name":"a","upstream":"a:1","listen":"::1:5"})",
        R"({"name":"a","upstream":"a:1","seed":-1})"}) {
    INFO(body);
    CHECK(proxy_status(body) == 400);
  }
  proxy_config p;
  auto err = parse_proxy(R"({"name":"a","upstream":"a:1","bogus":1})", p);
  REQUIRE(err);
  CHECK(err->message.find("bogus") != std::string::npos);
}

TEST_CASE("a proxy update is partial and refuses a rename",
          "[toxiproxy_model]") {
  proxy_config p;
  p.name = "db";
  p.listen = "127.0.0.1:4000";
  p.upstream = "127.0.0.1:5432";
  REQUIRE(!apply_proxy_update(R"({"enabled":false})", p));
  CHECK(!p.enabled);
  CHECK(p.listen == "127.0.0.1:4000");
  // Clients send the whole proxy back: the same name is fine.
  REQUIRE(!apply_proxy_update(
      R"({"name":"db","upstream":"127.0.0.1:6000","toxics":[]})", p));
  CHECK(p.upstream == "127.0.0.1:6000");
  auto before = p;
  auto err = apply_proxy_update(R"({"name":"other"})", p);
  REQUIRE(err);
  CHECK(err->status == 400);
  err = apply_proxy_update(R"({"enabled":true,"listen":"bad"})", p);
  REQUIRE(err);
  CHECK(p == before); // unchanged on error
}

TEST_CASE("populate takes an array and names the failing proxy",
          "[toxiproxy_model]") {
  std::vector<proxy_config> out;
  REQUIRE(!parse_populate(R"([{"name":"a","upstream":"h:1"},)"
                          R"({"name":"b","upstream":"h:2","enabled":false}])",
                          out));
  REQUIRE(out.size() == 2);
  CHECK(out[1].name == "b");
  CHECK(!out[1].enabled);
  REQUIRE(!parse_populate("[]", out));
  CHECK(out.empty());
  auto err =
      parse_populate(R"([{"name":"a","upstream":"h:1"},{"name":"b"}])", out);
  REQUIRE(err);
  CHECK(err->status == 400);
  CHECK(err->message == "missing required field: upstream at proxy 2");
  CHECK(parse_populate(R"({"name":"a"})", out)->status == 400);
}

TEST_CASE("toxic defaults: downstream, toxicity 1, name type_stream, "
          "attributes 0",
          "[toxiproxy_model]") {
  auto t = parsed_toxic(R"({"type":"latency","attributes":{"latency":100}})");
  CHECK(t.name == "latency_downstream");
  CHECK(t.stream == fault_direction::down);
  CHECK(t.toxicity == 1.0);
  CHECK(t.attributes ==
        std::map<std::string, int64_t>{{"jitter", 0}, {"latency", 100}});
  t = parsed_toxic(R"({"type":"bandwidth","stream":"upstream","name":"bw",)"
                   R"("toxicity":0.25,"attributes":{"rate":5}})");
  CHECK(t.name == "bw");
  CHECK(t.stream == fault_direction::up);
  CHECK(t.toxicity == 0.25);
  t = parsed_toxic(R"({"type":"slow_close","stream":"upstream"})");
  CHECK(t.name == "slow_close_upstream");
  CHECK(t.attributes.at("delay") == 0);
  for (auto& type : toxic_types()) {
    INFO(type);
    auto x = parsed_toxic(json{{"type", type}}.dump());
    CHECK(x.attributes.size() == toxic_attributes(type)->size());
  }
}

TEST_CASE("toxic refusals carry Toxiproxy's status and message",
          "[toxiproxy_model]") {
  toxic t;
  auto err = parse_toxic(R"({"type":"nope"})", t);
  REQUIRE(err);
  CHECK(*err == api_error{400, "invalid toxic type"});
  err = parse_toxic(R"({"attributes":{}})", t);
  REQUIRE(err);
  CHECK(err->message == "invalid toxic type");
  err = parse_toxic(R"({"type":"latency","stream":"sideways"})", t);
  REQUIRE(err);
  CHECK(*err ==
        api_error{400,
                  "stream was invalid, can be either upstream or downstream"});
  for (
      auto body :
      {"", "not json", "[1]", R"({"type":"latency","toxicity":1.5})",
       R"({"type":"latency","toxicity":-0.1})",
       R"({"type":"latency","toxicity":"1"})",
       R"({"type":"latency","attributes":{"latency":-1}})",
       R"({"type":"latency","attributes":{"latency":1.5}})",
       R"({"type":"latency","attributes":{"latency":"5"}})",
       R"({"type":"latency","attributes":{"rate":5}})",
       R"({"type":"latency","attributes":[]})",
       R"({"type":"latency","extra":1})",
       R"({"type":"latency","attributes":{"latency":1e300}})",
       R"({"type":"limit_data","attributes":{"bytes":18446744073709551615}})"}) {
    INFO(body);
    CHECK(toxic_status(body) == 400);
  }
  // Integral floats are integers (JavaScript clients send numbers).
  CHECK(parsed_toxic(R"({"type":"latency","attributes":{"latency":100.0}})")
            .attributes.at("latency") == 100);
}

TEST_CASE("a toxic update merges attributes and toxicity only",
          "[toxiproxy_model]") {
  auto t = parsed_toxic(
      R"({"type":"latency","toxicity":0.5,"attributes":{"latency":100,"jitter":7}})");
  REQUIRE(!apply_toxic_update(R"({"attributes":{"latency":300}})", t));
  CHECK(t.attributes.at("latency") == 300);
  CHECK(t.attributes.at("jitter") == 7);
  CHECK(t.toxicity == 0.5);
  REQUIRE(!apply_toxic_update(R"({"toxicity":1})", t));
  CHECK(t.toxicity == 1.0);
  // The whole toxic sent back (Go's client) is accepted.
  REQUIRE(!apply_toxic_update(to_json(t), t));
  auto before = t;
  for (auto body : {R"({"attributes":{"latency":-5}})",
                    R"({"attributes":{"bogus":1}})", R"({"toxicity":2})",
                    R"({"type":"bandwidth"})", R"({"stream":"upstream"})",
                    R"({"name":"renamed"})", "nope", R"({"unknown":true})"}) {
    INFO(body);
    auto err = apply_toxic_update(body, t);
    REQUIRE(err);
    CHECK(err->status == 400);
    CHECK(t == before);
  }
}

TEST_CASE("each toxic maps onto the fault pipeline", "[toxiproxy_model]") {
  auto spec = [](std::string_view body) {
    return to_fault_spec(parsed_toxic(body));
  };
  auto s =
      spec(R"({"type":"latency","attributes":{"latency":100,"jitter":10}})");
  CHECK(s.latency == 100ms);
  CHECK(s.jitter == 10ms);
  // Toxiproxy: rate is KB/s with 1 KB = 1000 bytes (len * 1 ms / rate).
  CHECK(spec(R"({"type":"bandwidth","attributes":{"rate":64}})").bandwidth ==
        64000u);
  CHECK(spec(R"({"type":"bandwidth","attributes":{"rate":0}})").is_clean());
  CHECK(
      spec(R"({"type":"slow_close","attributes":{"delay":250}})").close_delay ==
      250ms);
  s = spec(R"({"type":"timeout","attributes":{"timeout":500}})");
  CHECK(s.black_hole);
  CHECK(s.cut_after_time == 500ms);
  s = spec(R"({"type":"timeout","attributes":{"timeout":0}})");
  CHECK(s.black_hole);
  CHECK(!s.cut_after_time);
  s = spec(R"({"type":"reset_peer","attributes":{"timeout":0}})");
  CHECK(s.black_hole);
  CHECK(s.reset_after_time == 0ms);
  s = spec(R"({"type":"slicer","attributes":{"average_size":10,)"
           R"("size_variation":4,"delay":50}})");
  CHECK(s.slice_min == 6u);
  CHECK(s.slice_max == 14u);
  CHECK(s.slice_delay == 50us);
  // Variation above the average: pieces of at least one byte.
  CHECK(spec(R"({"type":"slicer","attributes":{"average_size":3,)"
             R"("size_variation":9}})")
            .slice_min == 1u);
  CHECK(spec(R"({"type":"slicer"})").is_clean());
  CHECK(spec(R"({"type":"limit_data","attributes":{"bytes":42}})").cut_after ==
        42u);
  CHECK(spec(R"({"type":"black_hole"})").black_hole);
}

TEST_CASE("toxics of one direction compose in order", "[toxiproxy_model]") {
  std::vector<toxic> ts{
      parsed_toxic(R"({"type":"latency","attributes":{"latency":100}})"),
      parsed_toxic(R"({"type":"latency","name":"l2","attributes":)"
                   R"({"latency":50,"jitter":5}})"),
      parsed_toxic(R"({"type":"bandwidth","attributes":{"rate":10}})"),
      parsed_toxic(
          R"({"type":"bandwidth","name":"b2","attributes":{"rate":3}})"),
      parsed_toxic(R"({"type":"limit_data","attributes":{"bytes":90}})"),
      parsed_toxic(
          R"({"type":"limit_data","name":"d2","attributes":{"bytes":70}})"),
      parsed_toxic(
          R"({"type":"latency","stream":"upstream","attributes":{"latency":9}})"),
  };
  auto down = compose(ts, fault_direction::down);
  CHECK(down.latency == 150ms);
  CHECK(down.jitter == 5ms);
  CHECK(down.bandwidth == 3000u);
  CHECK(down.cut_after == 70u);
  auto up = compose(ts, fault_direction::up);
  CHECK(up.latency == 9ms);
  CHECK(up.bandwidth == 0u);
  CHECK(compose({}, fault_direction::down).is_clean());
}

TEST_CASE("JSON out has Toxiproxy's field names", "[toxiproxy_model]") {
  auto t = parsed_toxic(R"({"type":"latency","attributes":{"latency":100}})");
  auto j = json::parse(to_json(t));
  CHECK(j["name"] == "latency_downstream");
  CHECK(j["type"] == "latency");
  CHECK(j["stream"] == "downstream");
  CHECK(j["toxicity"] == 1.0);
  CHECK(j["attributes"]["latency"] == 100);
  CHECK(j["attributes"]["jitter"] == 0);

  proxy_view p;
  p.config.name = "db";
  p.config.listen = "127.0.0.1:4000";
  p.config.upstream = "127.0.0.1:5432";
  p.toxics.push_back(t);
  j = json::parse(to_json(p));
  CHECK(j["name"] == "db");
  CHECK(j["listen"] == "127.0.0.1:4000");
  CHECK(j["upstream"] == "127.0.0.1:5432");
  CHECK(j["enabled"] == true);
  CHECK(j["toxics"].size() == 1);
  CHECK(!j.contains("seed"));
  j = json::parse(proxies_object_json({p}));
  CHECK(j["db"]["name"] == "db");
  api_error err{409, "proxy already exists"};
  j = json::parse(populate_json({p}, &err));
  CHECK(j["proxies"].size() == 1);
  CHECK(j["status"] == 409);
  CHECK(j["error"] == "proxy already exists");
  CHECK(json::parse(populate_json({}, nullptr)) ==
        json{{"proxies", json::array()}});
  CHECK(json::parse(to_json(err)) ==
        json{{"error", "proxy already exists"}, {"status", 409}});
  CHECK(json::parse(version_json("1.2")) == json{{"version", "1.2"}});
  // A name that is not UTF-8 still gives valid JSON.
  p.config.name = "\xff";
  CHECK(json::accept(to_json(p)));
}

TEST_CASE("host:port parsing", "[toxiproxy_model]") {
  auto x = parse_host_port("localhost:80");
  REQUIRE(x);
  CHECK(x->host == "localhost");
  CHECK(x->port == 80);
  x = parse_host_port("[::1]:0");
  REQUIRE(x);
  CHECK(x->host == "::1");
  CHECK(to_string(*x) == "[::1]:0");
  x = parse_host_port(":8474");
  REQUIRE(x);
  CHECK(x->host.empty());
  for (auto bad :
       {"", "host", "host:", "host:-1", "host:65536", "host:1x", "::1:80", ":"})
    CHECK(!parse_host_port(bad));
}

TEST_CASE("no input makes the model throw", "[toxiproxy_model]") {
  // A few hostile shapes; the fuzz target covers the rest.
  std::string deep(100000, '[');
  for (auto body : {deep.c_str(), "\xff\xfe", "{\"type\":\"latency\"", "\0",
                    R"({"type":"latency","attributes":{"latency":1e400}})"}) {
    toxic t;
    proxy_config p;
    std::vector<proxy_config> ps;
    CHECK_NOTHROW(parse_toxic(body, t));
    CHECK_NOTHROW(parse_proxy(body, p));
    CHECK_NOTHROW(parse_populate(body, ps));
    CHECK_NOTHROW(apply_toxic_update(body, t));
  }
}
