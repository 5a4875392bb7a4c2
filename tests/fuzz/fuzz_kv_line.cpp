// Fuzz target: kv_cluster's client line protocol (demos/kv_line_protocol.hpp),
// the framing (line_reader) and the parsing (parse_line) of bytes from any
// TCP client.
//
// Input: byte 0 sets the line bound (small, so the limit is reached), byte 1
// seeds how the rest is cut into reads, the rest is the byte stream.
// Oracles, besides the sanitizers:
// - framing does not depend on how the stream is cut: the lines delivered
//   are those of splitting the whole stream at '\n' (one trailing '\r'
//   dropped), and `feed` refuses exactly when the unterminated tail passes
//   the bound;
// - a parsed request reproduces its line: "SET k v" / "GET k" / "DEL k",
//   with a non-empty key without spaces.
#include "demos/kv_line_protocol.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

[[noreturn]] void fail(const char* what, std::string_view line) {
  std::fprintf(stderr, "fuzz_kv_line: %s: '%.*s'\n", what,
               static_cast<int>(line.size()), line.data());
  std::abort();
}

void check_parse(std::string_view line) {
  auto p = kv::parse_line(line);
  switch (p.kind) {
  case kv::parsed_line::ping:
    if (line != "PING" && line != "PING ") fail("ping from", line);
    return;
  case kv::parsed_line::error:
    if (!p.key.empty() || !p.value.empty()) fail("error with content", line);
    return;
  case kv::parsed_line::request:
    break;
  }
  if (p.key.empty() || p.key.find(' ') != std::string::npos)
    fail("bad key", line);
  std::string expect;
  switch (p.what) {
  case kv::op::set:
    expect = "SET " + p.key + " " + p.value;
    if (line != expect && !(p.value.empty() && line == "SET " + p.key))
      fail("SET does not reproduce its line", line);
    return;
  case kv::op::get:
    expect = "GET " + p.key;
    break;
  case kv::op::del:
    expect = "DEL " + p.key;
    break;
  }
  if (line != expect && line != expect + " ")
    fail("GET/DEL does not reproduce its line", line);
}

std::string_view strip_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t max_line = 1 + size_t{data[0]} * 4;
  uint32_t rng = data[1] | 0x100u;
  std::string_view stream{reinterpret_cast<const char*>(data) + 2, size - 2};

  kv::line_reader reader{max_line};
  std::vector<std::string> got;
  auto on_line = [&](std::string_view line) {
    check_parse(line);
    got.emplace_back(line);
  };
  size_t fed = 0;
  bool refused = false;
  while (fed < stream.size()) {
    rng = rng * 1103515245u + 12345u;
    size_t n = 1 + (rng >> 16) % 64;
    auto chunk = stream.substr(fed, n);
    fed += chunk.size();
    bool ok = reader.feed(chunk, on_line);
    auto last_nl = stream.substr(0, fed).rfind('\n');
    size_t tail = last_nl == std::string_view::npos ? fed : fed - last_nl - 1;
    if (ok != (tail <= max_line)) fail("feed's verdict", stream.substr(0, fed));
    if (reader.pending() != tail) fail("pending", stream.substr(0, fed));
    if (!ok) {
      refused = true;
      break;
    }
  }
  if (!refused) reader.finish(on_line);

  // The same lines, from the whole stream fed so far at once.
  std::vector<std::string> want;
  auto seen = stream.substr(0, fed);
  size_t pos = 0;
  for (;;) {
    auto nl = seen.find('\n', pos);
    if (nl == std::string_view::npos) break;
    want.emplace_back(strip_cr(seen.substr(pos, nl - pos)));
    pos = nl + 1;
  }
  if (!refused && pos < seen.size())
    want.emplace_back(strip_cr(seen.substr(pos)));
  if (got != want) fail("lines depend on how the stream was cut", seen);
  return 0;
}
