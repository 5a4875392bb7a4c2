// Fuzz target: the JSON half of chaos_proxy's Toxiproxy API
// (tools/toxiproxy_model.hpp), the pure functions every request body meets
// after the HTTP parser (fuzz_http_request covers that half).
//
// Input: byte 0 picks the body's route (a new proxy, a proxy update,
// /populate, a new toxic, a toxic update), the rest is the body.
//
// Oracles, besides the sanitizers:
// - nothing throws (a body is any bytes: bad JSON, deep nesting, huge
//   numbers, invalid UTF-8);
// - an error is one of the statuses the API answers for a body (400) with a
//   message, and leaves an updated value unchanged;
// - what parses prints back as JSON that parses again to the same value
//   (proxies and toxics), so a client reading a response can send it back;
// - a parsed toxic composes into a fault spec (to_fault_spec, compose,
//   stack with itself) without crashing.
#include "tools/fault_spec.hpp"
#include "tools/toxiproxy_model.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using namespace shardwire;
using namespace shardwire::toxiproxy;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_toxiproxy_model: %s\n", what);
  std::abort();
}

void check_error(const std::optional<api_error>& err) {
  if (!err) return;
  if (err->status != 400) fail("a body error that is not 400");
  if (err->message.empty()) fail("an error without a message");
  if (to_json(*err).empty()) fail("an error that prints as nothing");
}

proxy_config sample_proxy() {
  proxy_config cfg;
  cfg.name = "p";
  cfg.listen = "127.0.0.1:0";
  cfg.upstream = "127.0.0.1:9";
  return cfg;
}

void check_toxic(const toxic& t) {
  toxic again;
  auto err = parse_toxic(to_json(t), again);
  if (err) fail("a parsed toxic does not parse back from its JSON");
  if (!(again == t)) fail("a toxic's JSON round trip changes it");
  auto spec = to_fault_spec(t);
  (void)stack(spec, spec);
  (void)compose({t, t}, t.stream);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view body{reinterpret_cast<const char*>(data) + 1, size - 1};
  switch (data[0] % 5) {
  case 0: {
    proxy_config cfg;
    auto err = parse_proxy(body, cfg);
    check_error(err);
    if (!err && cfg.name.empty()) fail("a proxy without a name parsed");
    break;
  }
  case 1: {
    auto cfg = sample_proxy();
    auto before = cfg;
    auto err = apply_proxy_update(body, cfg);
    check_error(err);
    if (err && !(cfg == before)) fail("a refused update changed the proxy");
    break;
  }
  case 2: {
    std::vector<proxy_config> out;
    auto err = parse_populate(body, out);
    check_error(err);
    if (err && !out.empty()) fail("a refused populate returned proxies");
    break;
  }
  case 3: {
    toxic t;
    auto err = parse_toxic(body, t);
    check_error(err);
    if (!err) check_toxic(t);
    break;
  }
  default: {
    toxic t;
    if (parse_toxic(R"({"type":"latency","attributes":{"latency":5}})", t))
      fail("the sample toxic does not parse");
    auto before = t;
    auto err = apply_toxic_update(body, t);
    check_error(err);
    if (err && !(t == before)) fail("a refused update changed the toxic");
    if (!err) check_toxic(t);
    break;
  }
  }
  return 0;
}
