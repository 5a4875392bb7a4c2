// Fuzz target: histories read from JSON lines (sim/history.hpp), the bytes
// a user hands the checker from a file recorded elsewhere, then checked
// (sim/linearizability.hpp) with a small budget on both built-in models.
//
// Oracles, besides the sanitizers:
// - nothing throws, whatever the bytes;
// - a refusal names its line;
// - what parses writes back as JSON lines that parse to the same
//   operations;
// - a check with a small budget ends with a verdict; a `linearizable`
//   register verdict comes with an order that respects real time and
//   holds every ok operation; a `not_linearizable` one has a non-empty
//   report and a failing set no larger than the history.
#include "sim/history.hpp"
#include "sim/linearizability.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>

using namespace shardwire::sim;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_history: %s\n", what);
  std::abort();
}

void check_order(const std::vector<operation>& ops, const check_result& r) {
  if (r.orders.size() != 1)
    fail("a register verdict with other than one order");
  std::set<uint64_t> placed;
  for (auto id : r.orders[0].ids) {
    if (id >= ops.size() || !placed.insert(id).second)
      fail("an order with a bad or repeated id");
    const auto& op = ops[id];
    if (op.status == op_status::fail) fail("a failed operation in an order");
    for (const auto& other : ops)
      if (other.status == op_status::ok && other.ret &&
          *other.ret < op.invoke && !placed.count(other.id))
        fail("an order against real time");
  }
  for (const auto& op : ops)
    if (op.status == op_status::ok && !placed.count(op.id))
      fail("an order without an ok operation");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in{std::string{reinterpret_cast<const char*>(data), size}};
  auto parsed = read_jsonl(in);
  if (!parsed) {
    if (parsed.error.empty() || parsed.line == 0)
      fail("a refusal without a message or a line");
    return 0;
  }
  auto ops = parsed.value->operations();
  std::ostringstream out;
  parsed.value->write_jsonl(out);
  std::istringstream again{out.str()};
  auto back = read_jsonl(again);
  if (!back || back.value->operations() != ops)
    fail("a history's JSON lines do not read back to it");

  check_options opts;
  opts.max_steps = 20'000;
  opts.max_shrink_steps = 20'000;
  // Steps only: a wall-clock bound would make runs differ.
  opts.time_limit = std::chrono::milliseconds{0};
  opts.max_cache_bytes = 16 << 20;
  for (const auto& m : {register_model(), kv_model()}) {
    auto r = check(ops, m, opts);
    if (r.report.empty()) fail("a verdict without a report");
    if (r.outcome == check_outcome::not_linearizable &&
        (r.smallest.size() > ops.size() || r.failing_parts.empty()))
      fail("a failing set larger than the history");
    if (r.outcome == check_outcome::linearizable && m.name == "register")
      check_order(ops, r);
  }
  return 0;
}
