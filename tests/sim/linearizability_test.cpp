// sim/linearizability.hpp (and sim/history.hpp): verdicts on classic
// histories, fail/unknown semantics, the step budget, the shrunk report,
// JSON lines, and the search against brute force on random histories.
#include "sim/linearizability.hpp"

#include "sim/history.hpp"
#include "sim/random.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

using namespace shardwire;
using namespace shardwire::sim;
using std::chrono::nanoseconds;

namespace {

using value = std::optional<std::string>;

operation ok_op(uint64_t client, call c, value out, int64_t inv, int64_t ret) {
  operation op;
  op.client = client;
  op.what = std::move(c);
  op.output = std::move(out);
  op.status = op_status::ok;
  op.invoke = nanoseconds{inv};
  op.ret = nanoseconds{ret};
  return op;
}

operation unknown_op(uint64_t client, call c, int64_t inv) {
  operation op;
  op.client = client;
  op.what = std::move(c);
  op.status = op_status::unknown;
  op.invoke = nanoseconds{inv};
  return op;
}

operation fail_op(uint64_t client, call c, int64_t inv, int64_t ret) {
  auto op = ok_op(client, std::move(c), {}, inv, ret);
  op.status = op_status::fail;
  return op;
}

std::vector<operation> numbered(std::vector<operation> ops) {
  for (size_t i = 0; i < ops.size(); ++i)
    ops[i].id = i;
  return ops;
}

check_outcome verdict(std::vector<operation> ops, const model& m) {
  auto r = check(numbered(std::move(ops)), m);
  INFO(r.report);
  return r.outcome;
}

constexpr auto lin = check_outcome::linearizable;
constexpr auto not_lin = check_outcome::not_linearizable;

// -- an independent sequential specification of one register ----------------

// Applies `op` to `state`: false if it cannot return its output there.
bool spec_apply(value& state, const operation& op) {
  const auto& k = op.what.kind;
  bool unknown = op.status == op_status::unknown;
  if (k == "read" || k == "get") return unknown || state == op.output;
  if (k == "write" || k == "put") {
    state = op.what.input;
    return true;
  }
  if (k == "delete") {
    state.reset();
    return true;
  }
  if (k == "cas") {
    bool refused = !unknown && op.output == value{"false"};
    if (refused) return state != op.what.expected;
    if (state != op.what.expected) return false;
    state = op.what.input;
    return true;
  }
  return false;
}

// True if `ids` is a valid linearization of `ops` (one register): every ok
// op once, real-time order respected, the spec accepts every output.
bool valid_order(const std::vector<operation>& ops,
                 const std::vector<uint64_t>& ids, value init = {}) {
  std::map<uint64_t, const operation*> by_id;
  for (const auto& op : ops)
    by_id[op.id] = &op;
  std::set<uint64_t> placed;
  value state = init;
  for (auto id : ids) {
    auto* op = by_id.at(id);
    if (op->status == op_status::fail || !placed.insert(id).second)
      return false;
    for (const auto& other : ops)
      if (other.ret && other.status == op_status::ok &&
          *other.ret < op->invoke && !placed.count(other.id))
        return false;
    if (!spec_apply(state, *op)) return false;
  }
  for (const auto& op : ops)
    if (op.status == op_status::ok && !placed.count(op.id)) return false;
  return true;
}

// Brute force: some subset of the unknown ops plus all ok ops in some
// order that respects real time and the spec.
bool brute_force(const std::vector<operation>& all, value init = {}) {
  std::vector<operation> ops;
  for (const auto& op : all)
    if (op.status != op_status::fail) ops.push_back(op);
  std::vector<size_t> unknown;
  for (size_t i = 0; i < ops.size(); ++i)
    if (ops[i].status == op_status::unknown) unknown.push_back(i);
  for (uint64_t mask = 0; mask < (uint64_t{1} << unknown.size()); ++mask) {
    std::vector<bool> included(ops.size(), true);
    for (size_t u = 0; u < unknown.size(); ++u)
      included[unknown[u]] = (mask >> u) & 1;
    std::vector<bool> done(ops.size(), false);
    std::function<bool(value, size_t)> dfs = [&](value state, size_t left) {
      if (left == 0) return true;
      for (size_t i = 0; i < ops.size(); ++i) {
        if (!included[i] || done[i]) continue;
        bool ready = true;
        for (size_t j = 0; j < ops.size() && ready; ++j)
          ready = !(included[j] && !done[j] && j != i && ops[j].ret &&
                    *ops[j].ret < ops[i].invoke);
        if (!ready) continue;
        value next = state;
        if (!spec_apply(next, ops[i])) continue;
        done[i] = true;
        bool found = dfs(next, left - 1);
        done[i] = false;
        if (found) return true;
      }
      return false;
    };
    size_t count = std::count(included.begin(), included.end(), true);
    if (dfs(init, count)) return true;
  }
  return false;
}

value random_value(sim::random& rng) {
  switch (rng.uniform(0, 2)) {
  case 0:
    return std::nullopt;
  case 1:
    return "1";
  default:
    return "2";
  }
}

} // namespace

TEST_CASE("register: classic linearizable and non-linearizable histories") {
  auto m = register_model();
  // Sequential: the read sees the completed write.
  CHECK(verdict({ok_op(1, call::write("1"), {}, 0, 10),
                 ok_op(2, call::read(), "1", 20, 30)},
                m) == lin);
  // Stale: a read that begins after a write completed returns the old
  // value.
  CHECK(verdict({ok_op(1, call::write("1"), {}, 0, 10),
                 ok_op(2, call::read(), std::nullopt, 20, 30)},
                m) == not_lin);
  CHECK(verdict({ok_op(1, call::write("1"), {}, 0, 10),
                 ok_op(1, call::write("2"), {}, 20, 30),
                 ok_op(2, call::read(), "1", 40, 50)},
                m) == not_lin);
  // Concurrent with the write: both outcomes are fine.
  CHECK(verdict({ok_op(1, call::write("1"), {}, 0, 10),
                 ok_op(2, call::read(), std::nullopt, 5, 15)},
                m) == lin);
  CHECK(verdict({ok_op(1, call::write("1"), {}, 0, 10),
                 ok_op(2, call::read(), "1", 5, 15)},
                m) == lin);
  // Two concurrent writes, either order, but then the value stays.
  for (const char* last : {"1", "2"})
    CHECK(verdict({ok_op(1, call::write("1"), {}, 0, 100),
                   ok_op(2, call::write("2"), {}, 0, 100),
                   ok_op(3, call::read(), last, 200, 210)},
                  m) == lin);
  CHECK(verdict({ok_op(1, call::write("1"), {}, 0, 100),
                 ok_op(2, call::write("2"), {}, 0, 100),
                 ok_op(3, call::read(), "1", 200, 210),
                 ok_op(3, call::read(), "2", 220, 230)},
                m) == not_lin);
  // A read that sees a value nobody wrote.
  CHECK(verdict({ok_op(1, call::read(), "7", 0, 10)}, m) == not_lin);
  // The initial value is configurable.
  CHECK(verdict({ok_op(1, call::read(), "7", 0, 10)}, register_model("7")) ==
        lin);
}

TEST_CASE("register: a linearizable history comes with a valid order") {
  auto ops = numbered({ok_op(1, call::write("1"), {}, 0, 100),
                       ok_op(2, call::write("2"), {}, 10, 60),
                       ok_op(3, call::read(), "2", 70, 80),
                       ok_op(3, call::read(), "1", 90, 120)});
  auto r = check(ops, register_model());
  REQUIRE(r.outcome == lin);
  REQUIRE(r.orders.size() == 1);
  CHECK(r.orders[0].ids == std::vector<uint64_t>{1, 2, 0, 3});
  CHECK(valid_order(ops, r.orders[0].ids));
}

TEST_CASE("register: cas") {
  auto m = register_model();
  CHECK(verdict({ok_op(1, call::write("1"), {}, 0, 10),
                 ok_op(2, call::cas("1", "2"), {}, 20, 30),
                 ok_op(3, call::read(), "2", 40, 50)},
                m) == lin);
  // The read began after the cas applied.
  CHECK(verdict({ok_op(1, call::write("1"), {}, 0, 10),
                 ok_op(2, call::cas("1", "2"), {}, 20, 30),
                 ok_op(3, call::read(), "1", 40, 50)},
                m) == not_lin);
  // A cas that says it found another value, but the value matched.
  CHECK(verdict({ok_op(1, call::write("1"), {}, 0, 10),
                 ok_op(2, call::cas("1", "2"), "false", 20, 30)},
                m) == not_lin);
  CHECK(verdict({ok_op(1, call::write("3"), {}, 0, 10),
                 ok_op(2, call::cas("1", "2"), "false", 20, 30),
                 ok_op(3, call::read(), "3", 40, 50)},
                m) == lin);
  // cas from absent.
  CHECK(verdict({ok_op(2, call::cas(std::nullopt, "2"), {}, 20, 30),
                 ok_op(3, call::read(), "2", 40, 50)},
                m) == lin);
  // Two concurrent cas from the same value cannot both apply.
  CHECK(verdict({ok_op(1, call::write("1"), {}, 0, 10),
                 ok_op(2, call::cas("1", "2"), {}, 20, 30),
                 ok_op(3, call::cas("1", "3"), {}, 20, 30)},
                m) == not_lin);
}

TEST_CASE("fail operations are dropped, unknown ones may or may not apply") {
  auto m = register_model();
  // A failed write never took effect.
  CHECK(verdict({fail_op(1, call::write("2"), 0, 10),
                 ok_op(2, call::read(), std::nullopt, 20, 30)},
                m) == lin);
  CHECK(verdict({fail_op(1, call::write("2"), 0, 10),
                 ok_op(2, call::read(), "2", 20, 30)},
                m) == not_lin);
  // An unknown write: either outcome is linearizable, even long after.
  for (value seen : {value{"1"}, value{}})
    CHECK(verdict({unknown_op(1, call::write("1"), 0),
                   ok_op(2, call::read(), seen, 50, 60)},
                  m) == lin);
  // ...and it may take effect late, between two reads...
  CHECK(verdict({unknown_op(1, call::write("1"), 0),
                 ok_op(2, call::read(), std::nullopt, 50, 60),
                 ok_op(2, call::read(), "1", 70, 80)},
                m) == lin);
  // ...but only once.
  CHECK(verdict({unknown_op(1, call::write("1"), 0),
                 ok_op(2, call::read(), "1", 50, 60),
                 ok_op(2, call::read(), std::nullopt, 70, 80)},
                m) == not_lin);
  // Not before its invoke.
  CHECK(verdict({ok_op(2, call::read(), "1", 0, 10),
                 unknown_op(1, call::write("1"), 20)},
                m) == not_lin);
  // An unknown cas that may not have applied.
  CHECK(verdict({ok_op(1, call::write("1"), {}, 0, 10),
                 unknown_op(2, call::cas("1", "2"), 20),
                 ok_op(3, call::read(), "1", 40, 50),
                 ok_op(3, call::read(), "2", 60, 70)},
                m) == lin);
  // An unknown read constrains nothing.
  CHECK(verdict({unknown_op(2, call::read(), 0),
                 ok_op(3, call::read(), std::nullopt, 40, 50)},
                m) == lin);
}

TEST_CASE("history: recording, pending operations count as unknown") {
  history h;
  auto w = h.invoke(1, call::put("x", "1"), nanoseconds{0});
  auto r = h.invoke(2, call::get("x"), nanoseconds{5});
  auto f = h.invoke(3, call::put("x", "9"), nanoseconds{6});
  auto u = h.invoke(4, call::put("y", "1"), nanoseconds{7});
  auto p = h.invoke(5, call::put("z", "1"), nanoseconds{8});
  CHECK(h.complete_ok(w, std::nullopt, nanoseconds{10}));
  CHECK(h.complete_ok(r, "1", nanoseconds{12}));
  CHECK(h.complete_fail(f, nanoseconds{14}));
  CHECK(h.complete_unknown(u));
  CHECK_FALSE(h.complete_ok(w, std::nullopt, nanoseconds{20})); // twice
  CHECK_FALSE(h.complete_ok(99, std::nullopt, nanoseconds{20}));
  CHECK_FALSE(h.complete_ok(p, std::nullopt, nanoseconds{1})); // < invoke
  auto ops = h.operations();
  REQUIRE(ops.size() == 5);
  CHECK(ops[w].status == op_status::ok);
  CHECK(ops[f].status == op_status::fail);
  CHECK(ops[u].status == op_status::unknown);
  CHECK(ops[p].status == op_status::unknown);
  CHECK_FALSE(ops[p].ret);
  CHECK(check(h, kv_model()).outcome == lin);
}

TEST_CASE("history: clients on several threads record into one history") {
  history h;
  std::mutex reg_mtx;
  value reg;
  std::vector<std::thread> clients;
  for (uint64_t c = 0; c < 4; ++c)
    clients.emplace_back([&, c] {
      for (int i = 0; i < 50; ++i) {
        bool write = i % 2 == 0;
        auto v = std::to_string(c * 100 + i);
        auto id = h.invoke(c, write ? call::write(v) : call::read(),
                           history::steady_now());
        value out;
        {
          std::lock_guard guard{reg_mtx};
          if (write)
            reg = v;
          else
            out = reg;
        }
        h.complete_ok(id, out, history::steady_now());
      }
    });
  for (auto& t : clients)
    t.join();
  REQUIRE(h.size() == 200);
  auto r = check(h, register_model());
  INFO(r.report);
  CHECK(r.outcome == lin);
}

TEST_CASE("kv: per-key decomposition finds the key with a stale read") {
  auto ops = numbered({ok_op(1, call::put("x", "1"), {}, 0, 10),
                       ok_op(2, call::put("y", "1"), {}, 0, 10),
                       ok_op(1, call::put("x", "2"), {}, 20, 30),
                       ok_op(3, call::get("y"), "1", 40, 50),
                       ok_op(3, call::get("x"), "1", 40, 50),
                       ok_op(2, call::del("y"), {}, 60, 70),
                       ok_op(3, call::get("y"), std::nullopt, 80, 90)});
  auto r = check(ops, kv_model());
  INFO(r.report);
  REQUIRE(r.outcome == not_lin);
  CHECK(r.part == "x");
  CHECK(r.failing_parts == std::vector<std::string>{"x"});
  CHECK(r.report.find("\"x\"") != std::string::npos);
  // Without the stale read, each key has its own order.
  ops.erase(ops.begin() + 4);
  auto ok = check(ops, kv_model());
  REQUIRE(ok.outcome == lin);
  REQUIRE(ok.orders.size() == 2);
  CHECK(ok.orders[0].part == "x");
  CHECK(ok.orders[1].part == "y");
}

TEST_CASE("report: a planted stale read shrinks to the ops that matter") {
  // 200 sequential puts and gets over three keys, each put of a fresh
  // value, then a get of "b" returning its first value.
  std::vector<operation> ops;
  int64_t t = 0;
  std::map<std::string, std::vector<uint64_t>> puts;
  const char* keys[] = {"a", "b", "c"};
  for (int i = 0; i < 100; ++i) {
    std::string key = keys[i % 3];
    auto v = "v" + std::to_string(i);
    puts[key].push_back(ops.size());
    ops.push_back(ok_op(1 + i % 2, call::put(key, v), {}, t, t + 5));
    t += 10;
    ops.push_back(ok_op(2 - i % 2, call::get(key), v, t, t + 5));
    t += 10;
  }
  auto stale = ops.size();
  ops.push_back(ok_op(3, call::get("b"), "v1", t, t + 5));
  ops = numbered(std::move(ops));
  auto r = check(ops, kv_model());
  INFO(r.report);
  REQUIRE(r.outcome == not_lin);
  CHECK(r.part == "b");
  CHECK(r.shrink_complete);
  // The first put of b (what the read saw), the last (why it is stale),
  // and the read.
  std::vector<uint64_t> ids;
  for (const auto& op : r.smallest)
    ids.push_back(op.id);
  CHECK(ids ==
        std::vector<uint64_t>{puts["b"].front(), puts["b"].back(), stale});
  CHECK(r.longest_prefix.size() == 2);
  CHECK(r.report.find("#" + std::to_string(stale) + " ") != std::string::npos);
  CHECK(r.report.find("get(b) -> v1") != std::string::npos);
  CHECK(r.report.find("put(b, v1)") != std::string::npos);
  CHECK(r.report.find("put(a,") == std::string::npos);
  CHECK(r.report.find("get(b) -> v4 ") == std::string::npos);
}

TEST_CASE("budget: a pathological history times out instead of hanging") {
  // 40 concurrent writes, then a read of a value none wrote: the search
  // must try every subset of the writes before giving up.
  std::vector<operation> ops;
  for (int i = 0; i < 40; ++i)
    ops.push_back(ok_op(i, call::write(std::to_string(i)), {}, 0, 1000));
  ops.push_back(ok_op(99, call::read(), "none", 2000, 2010));
  ops = numbered(std::move(ops));
  check_options opts;
  opts.max_steps = 100'000;
  auto r = check(ops, register_model(), opts);
  CHECK(r.outcome == check_outcome::timed_out);
  CHECK(r.steps <= 100'000);
  CHECK(r.report.find("timed out") != std::string::npos);
  opts.max_steps = UINT64_MAX;
  opts.time_limit = std::chrono::milliseconds{50};
  CHECK(check(ops, register_model(), opts).outcome == check_outcome::timed_out);
  opts.time_limit = std::chrono::milliseconds{0};
  opts.max_cache_bytes = 1 << 20;
  CHECK(check(ops, register_model(), opts).outcome == check_outcome::timed_out);
}

TEST_CASE("unknown writes nothing observed are left out of the search") {
  // What a history recorded under faults looks like: many writes whose
  // outcome is unknown (timeouts), then an acknowledged write and a stale
  // read. Each unknown write is a branch of the search (applied here,
  // later, or never); none is needed to explain a read, so the checker
  // decides at once instead of trying every subset.
  std::vector<operation> ops;
  ops.push_back(ok_op(0, call::write("old"), {}, 0, 10));
  for (int i = 0; i < 40; ++i)
    ops.push_back(
        unknown_op(1 + i, call::write("lost" + std::to_string(i)), 20 + i));
  ops.push_back(ok_op(50, call::write("new"), {}, 100, 110));
  ops.push_back(ok_op(51, call::read(), "old", 200, 210));
  ops = numbered(std::move(ops));
  check_options opts;
  opts.max_steps = 10'000;
  auto r = check(ops, register_model(), opts);
  CHECK(r.outcome == check_outcome::not_linearizable);
  CHECK(r.steps < 1'000);

  // Observed, an unknown write still counts: a read of its value makes
  // the history linearizable (and keeps that write in the search).
  ops.push_back(ok_op(52, call::read(), "lost7", 300, 310));
  ops = numbered(std::move(ops));
  // read "old" after "new" acknowledged is still stale.
  CHECK(check(ops, register_model(), opts).outcome ==
        check_outcome::not_linearizable);
  ops.erase(ops.end() - 2); // drop the stale read
  ops = numbered(std::move(ops));
  auto ok = check(ops, register_model(), opts);
  CHECK(ok.outcome == check_outcome::linearizable);
  REQUIRE(ok.orders.size() == 1);
  CHECK(std::count(ok.orders[0].ids.begin(), ok.orders[0].ids.end(),
                   uint64_t{8}) == 1); // the write of "lost7" (id 8)

  // A refused cas saw some other value: an unknown write of another value
  // may be what it saw, so that write is kept.
  std::vector<operation> cas_ops;
  cas_ops.push_back(ok_op(0, call::write("a"), {}, 0, 10));
  cas_ops.push_back(unknown_op(1, call::write("b"), 20));
  cas_ops.push_back(ok_op(2, call::cas("a", "c"), "false", 30, 40));
  cas_ops = numbered(std::move(cas_ops));
  CHECK(check(cas_ops, register_model()).outcome ==
        check_outcome::linearizable);
}

TEST_CASE("json lines: round trip") {
  history h;
  h.add(ok_op(1, call::put("x", "1"), {}, -5, 10));
  h.add(ok_op(2, call::get("x"), std::nullopt, 0, 10));
  h.add(ok_op(2, call::get("quote\"\nnew line \xc3\xa9"), "", 0, 10));
  h.add(ok_op(3, call::cas("x", std::nullopt, "2"), "false", 1, 2));
  h.add(unknown_op(UINT64_MAX, call::del("x"), INT64_MAX));
  h.add(fail_op(4, call::write("w"), 3, 4));
  h.invoke(5, call::read(), nanoseconds{7}); // pending: written as unknown
  std::stringstream buf;
  h.write_jsonl(buf);
  auto back = read_jsonl(buf);
  INFO(back.error);
  REQUIRE(back);
  CHECK(back.value->operations() == h.operations());
}

TEST_CASE("json lines: malformed input is refused with line and field") {
  auto refused = [](const std::string& text) {
    std::istringstream in{text};
    auto r = read_jsonl(in);
    CHECK_FALSE(r);
    return r.error;
  };
  const std::string good =
      R"({"client":1,"kind":"read","status":"ok","invoke":1,"return":2})";
  CHECK(refused(good + "\nnot json\n") == "line 2: not valid JSON");
  CHECK(refused(good + "\n\n[1]\n") == "line 3: not a JSON object");
  CHECK(refused(R"({"kind":"read","status":"ok","invoke":1,"return":2})") ==
        "line 1: client: missing");
  CHECK(refused(R"({"client":-1,"kind":"read","status":"ok","invoke":1})")
            .starts_with("line 1: client:"));
  CHECK(refused(R"({"client":1,"kind":"read","status":"maybe","invoke":1})")
            .starts_with("line 1: status:"));
  CHECK(refused(R"({"client":1,"kind":"read","status":"ok","invoke":1})") ==
        "line 1: return: missing (required for ok and fail)");
  CHECK(
      refused(
          R"({"client":1,"kind":"read","status":"ok","invoke":5,"return":2})") ==
      "line 1: return: before invoke");
  CHECK(refused(R"({"client":1,"kind":"read","status":"unknown","invoke":5,)"
                R"("return":7})")
            .starts_with("line 1: return:"));
  CHECK(refused(good + "\n" + good.substr(0, good.size() - 1) +
                R"(,"extra":1})") == "line 2: extra: unknown field");
  CHECK(refused(R"({"client":1,"kind":"","status":"ok","invoke":1,"return":2})")
            .starts_with("line 1: kind:"));
  CHECK(refused(R"({"client":1,"kind":"put","input":5,"status":"ok",)"
                R"("invoke":1,"return":2})")
            .starts_with("line 1: input:"));
  CHECK(refused(R"({"client":1,"kind":"put","status":"ok","invoke":1.5,)"
                R"("return":2})")
            .starts_with("line 1: invoke:"));
  std::string huge(max_history_string_bytes + 1, 'a');
  CHECK(refused(R"({"client":1,"kind":"put","input":")" + huge +
                R"(","status":"ok","invoke":1,"return":2})")
            .starts_with("line 1: input: longer than"));
  CHECK(refused(std::string(max_history_line_bytes + 10, ' ') + "\n")
            .starts_with("line 1: longer than"));
  // Blank lines are skipped; an empty input is an empty history.
  std::istringstream in{"\n" + good + "\n  \n" + good};
  auto r = read_jsonl(in);
  REQUIRE(r);
  CHECK(r.value->size() == 2);
  std::istringstream empty;
  CHECK(read_jsonl(empty).value->size() == 0);
}

TEST_CASE("property: the checker agrees with brute force on small histories") {
  sim::random rng{20240521};
  auto m = register_model();
  int linearizable = 0;
  for (int round = 0; round < 1500; ++round) {
    std::vector<operation> ops;
    auto n = rng.uniform(1, 7);
    auto clients = rng.uniform(2, 3);
    for (uint64_t i = 0; i < n; ++i) {
      auto inv = static_cast<int64_t>(rng.uniform(0, 20));
      auto ret = inv + static_cast<int64_t>(rng.uniform(0, 10));
      call c;
      switch (rng.uniform(0, 2)) {
      case 0:
        c = call::read();
        break;
      case 1:
        c = call::write(random_value(rng));
        break;
      default:
        c = call::cas(random_value(rng), random_value(rng));
      }
      value out = c.kind == "read" ? random_value(rng)
                  : c.kind == "cas"
                      ? (rng.chance(0.3) ? value{"false"} : value{})
                      : value{};
      auto op = ok_op(rng.uniform(1, clients), c, out, inv, ret);
      auto s = rng.uniform(0, 9);
      if (s == 0)
        op = fail_op(op.client, c, inv, ret);
      else if (s == 1)
        op = unknown_op(op.client, c, inv);
      ops.push_back(op);
    }
    ops = numbered(std::move(ops));
    bool expected = brute_force(ops);
    auto r = check(ops, m);
    INFO("round " << round << "\n" << r.report);
    REQUIRE(r.outcome == (expected ? lin : not_lin));
    if (expected) {
      ++linearizable;
      REQUIRE(valid_order(ops, r.orders.at(0).ids));
    }
  }
  // Both verdicts are well represented.
  CHECK(linearizable > 300);
  CHECK(linearizable < 1200);
}

namespace {

// A sequential execution of `n` ops (reads, writes, cas, on `keys` keys),
// each given an interval of random width around its linearization point.
std::vector<operation> real_execution(sim::random& rng, size_t n, size_t keys,
                                      int64_t spread) {
  std::map<std::string, value> state;
  std::vector<operation> ops;
  for (size_t i = 0; i < n; ++i) {
    auto key = keys == 0 ? std::string{}
                         : "k" + std::to_string(rng.uniform(0, keys - 1));
    auto& cur = state[key];
    auto v = std::to_string(i);
    call c;
    value out;
    switch (rng.uniform(0, 3)) {
    case 0:
    case 1:
      c = keys ? call::get(key) : call::read();
      out = cur;
      break;
    case 2:
      c = keys ? call::put(key, v) : call::write(v);
      cur = v;
      break;
    default: {
      value expected = rng.chance(0.5) ? cur : value{"x"};
      c = keys ? call::cas(key, expected, v) : call::cas(expected, v);
      if (expected == cur)
        cur = v;
      else
        out = "false";
    }
    }
    auto point = static_cast<int64_t>(i) * 10;
    auto inv = point - static_cast<int64_t>(rng.uniform(0, spread));
    auto ret = point + static_cast<int64_t>(rng.uniform(0, spread));
    auto op = ok_op(rng.uniform(1, 5), c, out, inv, ret);
    // Some outcomes are lost: still linearizable.
    if (rng.chance(0.05)) op = unknown_op(op.client, c, inv);
    ops.push_back(op);
  }
  return numbered(std::move(ops));
}

} // namespace

TEST_CASE("property: histories of real sequential executions linearize") {
  sim::random rng{7};
  for (int round = 0; round < 300; ++round) {
    auto ops = real_execution(rng, rng.uniform(1, 40), 0, 25);
    auto r = check(ops, register_model());
    INFO("round " << round << "\n" << r.report);
    REQUIRE(r.outcome == lin);
    REQUIRE(valid_order(ops, r.orders.at(0).ids));
  }
  // Large ones: 600 operations with up to ~6 concurrent neighbours.
  for (int round = 0; round < 3; ++round) {
    auto reg = real_execution(rng, 600, 0, 30);
    auto r = check(reg, register_model());
    INFO(r.report);
    REQUIRE(r.outcome == lin);
    CHECK(valid_order(reg, r.orders.at(0).ids));
    auto kv = real_execution(rng, 2000, 8, 60);
    auto rk = check(kv, kv_model());
    INFO(rk.report);
    REQUIRE(rk.outcome == lin);
    CHECK(rk.orders.size() == 8);
  }
}
