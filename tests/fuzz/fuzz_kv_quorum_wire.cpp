// Fuzz target: the quorum store's replica protocol (demos/kv_quorum/wire.hpp),
// the lines a replica reads from coordinators, a coordinator from replicas,
// and a replica replays from its data file.
//
// Input: the bytes, split at '\n' into lines as kv::line_reader delivers
// them. Oracles, besides the sanitizers:
// - `parse` is total: it answers for every line, never throws;
// - a parsed message encodes to one line ending in its only '\n', and that
//   line parses back to the same message (what a replica stores and what
//   it replays agree);
// - a parsed query or store has a key that is non-empty and has no space;
//   only a reply may be absent, and only with its "-" form.
#include "demos/kv_quorum/wire.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

[[noreturn]] void fail(const char* what, std::string_view line) {
  std::fprintf(stderr, "fuzz_kv_quorum_wire: %s: '%.*s'\n", what,
               static_cast<int>(line.size()), line.data());
  std::abort();
}

bool same(const kv_quorum::message& a, const kv_quorum::message& b) {
  return a.kind == b.kind && a.rid == b.rid && a.key == b.key &&
         a.version == b.version;
}

void check_line(std::string_view line) {
  auto m = kv_quorum::parse(line);
  if (!m) return;
  using kv_quorum::message;
  if ((m->kind == message::query || m->kind == message::store) &&
      (m->key.empty() || m->key.find(' ') != std::string::npos))
    fail("a key that is empty or has a space", line);
  if (m->kind == message::store && !m->version.value)
    fail("a store without a value", line);
  if (m->kind == message::reply && !m->version.value &&
      line.substr(line.size() - 2) != " -")
    fail("an absent reply not written as '-'", line);
  auto out = kv_quorum::encode(*m);
  if (out.empty() || out.back() != '\n' || out.find('\n') != out.size() - 1)
    fail("an encoding that is not one line", line);
  auto back = kv_quorum::parse(std::string_view{out}.substr(0, out.size() - 1));
  if (!back || !same(*m, *back))
    fail("an encoding that does not parse back to its message", line);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest{reinterpret_cast<const char*>(data), size};
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    check_line(rest.substr(0, nl));
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  return 0;
}
