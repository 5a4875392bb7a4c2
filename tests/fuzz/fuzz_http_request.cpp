// Fuzz target: the HTTP/1.x request parser (tools/http_request_parser.hpp)
// over libhttp-parser: the bytes of any client of the HTTP server
// (tools/http_server.hpp: chaos_proxy's Toxiproxy API, /metrics).
//
// Input: byte 0 sets the header bound, byte 1 the body bound (both small,
// so the limits are reached), byte 2 seeds how the rest is cut into reads,
// the rest is the byte stream. The stream is fed as the server feeds it:
// what a feed does not consume is offered again, with the next read
// appended, after the request was taken.
//
// Oracles, besides the sanitizers (libhttp-parser itself is Debian's
// uninstrumented build; the glue and the callbacks are instrumented):
// - `feed` consumes at most what it is offered; all of it while it needs
//   more, none of it in the other states;
// - a request respects the limits (body, and method + target + header
//   names and values within the header bound), is HTTP/1.x, has a method
//   and a target, and an HTTP/1.1 request has a Host header;
// - a request that is not keep-alive is the last one (state done);
// - an error carries one of the statuses the server answers (400, 413,
//   431, 505) and a message;
// - the requests, the end state and the error status do not depend on how
//   the stream is cut into reads.
#include "tools/http_request_parser.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using namespace shardwire;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_http_request: %s\n", what);
  std::abort();
}

struct outcome {
  std::vector<http_request> requests;
  http_request_parser::state end = http_request_parser::state::need_more;
  int error_status = 0;
};

bool iequals(std::string_view x, std::string_view y) {
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i) {
    auto a = static_cast<unsigned char>(x[i]);
    auto b = static_cast<unsigned char>(y[i]);
    if (a >= 'A' && a <= 'Z') a = static_cast<unsigned char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = static_cast<unsigned char>(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

void check_request(const http_request& req, const http_limits& lim) {
  if (req.body.size() > lim.max_body_bytes) fail("body over the limit");
  size_t head = req.method.size() + req.target.size();
  bool host = false;
  for (auto& [name, value] : req.headers) {
    if (name.empty()) fail("header without a name");
    head += name.size() + value.size();
    host = host || iequals(name, "Host");
  }
  if (head > lim.max_header_bytes) fail("headers over the limit");
  if (req.http_major != 1) fail("request of a version other than 1.x");
  if (req.method.empty()) fail("request without a method");
  if (req.target.empty()) fail("request without a target");
  if (req.http_minor >= 1 && !host) fail("HTTP/1.1 request without Host");
}

/// Feeds `stream` in reads whose sizes come from `seed` (0: one read).
outcome run(std::string_view stream, const http_limits& lim, uint8_t seed) {
  http_request_parser p{lim};
  outcome out;
  size_t consumed = 0;
  size_t available = 0;
  uint32_t rng = seed;
  for (;;) {
    auto offered = available - consumed;
    auto n = p.feed(stream.substr(consumed, offered));
    if (n > offered) fail("consumed more than offered");
    auto st = p.current_state();
    if (st == http_request_parser::state::need_more && n != offered)
      fail("needs more but left bytes unconsumed");
    consumed += n;
    (void)p.take_continue();
    if (auto req = p.next()) {
      check_request(*req, lim);
      bool last = !req->keep_alive;
      out.requests.push_back(std::move(*req));
      if (last != (p.current_state() == http_request_parser::state::done))
        fail("keep-alive and the state after next() disagree");
      if (last && p.feed(stream.substr(consumed, available - consumed)) != 0)
        fail("parsed after the last request");
      // Offer what is left again (the loop's next feed).
      continue;
    }
    if (st == http_request_parser::state::request_ready)
      fail("request_ready without a request");
    if (st != http_request_parser::state::need_more) break;
    if (available == stream.size()) break;
    size_t step = stream.size();
    if (seed != 0) {
      rng = rng * 1103515245u + 12345u;
      step = 1 + (rng >> 16) % 64;
    }
    available = std::min(stream.size(), available + step);
  }
  out.end = p.current_state();
  if (out.end == http_request_parser::state::failed) {
    auto& err = p.error();
    out.error_status = err.status;
    if (err.status != 400 && err.status != 413 && err.status != 431 &&
        err.status != 505)
      fail("unexpected error status");
    if (err.message.empty()) fail("error without a message");
    if (p.feed(stream.substr(consumed)) != 0) fail("consumed after failing");
    if (p.next()) fail("a request after failing");
  }
  return out;
}

bool same(const http_request& x, const http_request& y) {
  return x.method == y.method && x.target == y.target &&
         x.headers == y.headers && x.body == y.body &&
         x.http_major == y.http_major && x.http_minor == y.http_minor &&
         x.keep_alive == y.keep_alive;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  http_limits lim;
  lim.max_header_bytes = 16 + size_t{data[0]} * 8;
  lim.max_body_bytes = size_t{data[1]} * 4;
  uint8_t seed = data[2];
  std::string_view stream{reinterpret_cast<const char*>(data + 3), size - 3};

  auto whole = run(stream, lim, 0);
  if (seed == 0) return 0;
  auto split = run(stream, lim, seed);
  if (split.requests.size() != whole.requests.size())
    fail("the number of requests depends on the reads");
  for (size_t i = 0; i < whole.requests.size(); ++i)
    if (!same(split.requests[i], whole.requests[i]))
      fail("a request depends on the reads");
  if (split.end != whole.end) fail("the end state depends on the reads");
  if (split.error_status != whole.error_status)
    fail("the error depends on the reads");
  return 0;
}
