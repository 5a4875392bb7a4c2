#include "sim/linearizability.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <limits>
#include <map>
#include <unordered_set>
#include <utility>

namespace shardwire::sim {

const char* to_string(check_outcome o) noexcept {
  switch (o) {
  case check_outcome::linearizable:
    return "linearizable";
  case check_outcome::not_linearizable:
    return "not linearizable";
  case check_outcome::timed_out:
    return "timed out";
  }
  return "timed out";
}

// -- built-in models ----------------------------------------------------------

namespace {

std::string encode(const std::optional<std::string>& v) {
  return v ? "=" + *v : std::string{};
}

bool is_read(const operation& op) {
  return op.what.kind == "read" || op.what.kind == "get";
}

bool is_write(const operation& op) {
  return op.what.kind == "write" || op.what.kind == "put";
}

// A cas that reported finding another value: it changed nothing.
bool cas_refused(const operation& op) {
  return op.status == op_status::ok && op.output && *op.output == "false";
}

std::optional<std::string> register_step(std::string_view state,
                                         const operation& op) {
  const auto& k = op.what.kind;
  if (is_read(op)) {
    if (op.status == op_status::unknown || state == encode(op.output))
      return std::string{state};
    return std::nullopt;
  }
  if (is_write(op)) return encode(op.what.input);
  if (k == "delete") return std::string{};
  if (k == "cas") {
    bool match = state == encode(op.what.expected);
    if (cas_refused(op))
      return match ? std::nullopt : std::optional<std::string>{state};
    if (!match) return std::nullopt;
    return encode(op.what.input);
  }
  return std::nullopt;
}

// Values as the report shows them: bare if plain, quoted otherwise.
std::string show_value(const std::optional<std::string>& v) {
  if (!v) return "absent";
  bool plain = !v->empty() && v->size() <= 64 && *v != "absent";
  for (char c : *v)
    plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
                      c == '-' || c == '.');
  if (plain) return *v;
  std::string out = "\"";
  size_t shown = 0;
  for (char c : *v) {
    if (++shown > 64) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string describe_state(std::string_view state) {
  if (state.empty()) return "absent";
  return show_value(std::string{state.substr(1)});
}

std::string describe_op(const operation& op) {
  std::string args;
  auto arg = [&](const std::string& a) {
    if (!args.empty()) args += ", ";
    args += a;
  };
  if (!op.what.key.empty()) arg(show_value(op.what.key));
  const auto& k = op.what.kind;
  if (k == "cas")
    arg(show_value(op.what.expected) + " -> " + show_value(op.what.input));
  else if (op.what.input || is_write(op))
    arg(show_value(op.what.input));
  std::string out = k + "(" + args + ")";
  if (op.status == op_status::unknown) return out + " -> ?";
  if (is_read(op))
    out += " -> " + show_value(op.output);
  else if (k == "cas")
    out += cas_refused(op) ? " -> false" : " -> true";
  else if (op.output)
    out += " -> " + show_value(op.output);
  return out;
}

// The value an operation observed, if it observed one.
std::optional<std::optional<std::string>> observed(const operation& op) {
  if (op.status != op_status::ok) return std::nullopt;
  if (is_read(op)) return op.output;
  if (op.what.kind == "cas" && !cas_refused(op)) return op.what.expected;
  return std::nullopt;
}

// The value an operation leaves in the register, if it writes one.
std::optional<std::optional<std::string>> written(const operation& op) {
  if (is_write(op) || (op.what.kind == "cas" && !cas_refused(op)))
    return op.what.input;
  if (op.what.kind == "delete") return std::optional<std::string>{};
  return std::nullopt;
}

bool register_explains(const operation& writer, const operation& reader) {
  auto value = written(writer);
  if (!value) return false;
  // A refused cas saw some value other than the one it expected: any
  // write of another value may be what it saw.
  if (cas_refused(reader)) return *value != reader.what.expected;
  auto seen = observed(reader);
  return seen && *value == *seen;
}

model base_model(std::string name) {
  model m;
  m.name = std::move(name);
  m.step = register_step;
  m.describe = describe_op;
  m.describe_state = describe_state;
  m.read_only = [](const operation& op) {
    return is_read(op) || cas_refused(op);
  };
  m.explains = register_explains;
  return m;
}

} // namespace

model register_model(std::optional<std::string> initial) {
  auto m = base_model("register");
  m.init = encode(initial);
  return m;
}

model kv_model() {
  auto m = base_model("kv");
  m.partition = [](const std::vector<operation>& ops) {
    std::map<std::string, std::vector<operation>> by_key;
    for (const auto& op : ops)
      by_key[op.what.key].push_back(op);
    std::vector<history_part> parts;
    parts.reserve(by_key.size());
    for (auto& [key, part_ops] : by_key)
      parts.push_back({key, std::move(part_ops)});
    return parts;
  };
  return m;
}

// -- the search
// ----------------------------------------------------------------

namespace {

using clock_type = std::chrono::steady_clock;

// What one search may still spend.
struct budget {
  uint64_t steps_left = 0;
  std::optional<clock_type::time_point> deadline;
  uint64_t max_cache_bytes = 0;
  uint64_t used = 0;

  // Takes one step; false once steps or time are spent.
  bool take() {
    if (steps_left == 0) return false;
    --steps_left;
    // The clock only every 1024 steps: a step is far cheaper than a read
    // of the clock.
    if ((++used & 1023) == 0 && deadline && clock_type::now() > *deadline) {
      steps_left = 0;
      return false;
    }
    return true;
  }
};

enum class verdict { linearizable, not_linearizable, out_of_budget };

struct search_output {
  verdict result = verdict::out_of_budget;
  // linearizable: indices into the searched ops, in linearization order.
  std::vector<size_t> order;
  // not_linearizable: the deepest stack of linearized ops seen, and the
  // state it led to.
  std::vector<size_t> longest;
  std::string longest_state;
  // The operation whose return stopped the deepest attempt (none: n).
  size_t blocked = std::numeric_limits<size_t>::max();
};

uint64_t mix64(uint64_t x) {
  // splitmix64's finalizer: per-operation keys for an incremental hash of
  // the linearized set (XOR in and out as the set changes).
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct cache_entry {
  std::vector<uint64_t> linearized;
  std::string state;
  size_t hash;

  friend bool operator==(const cache_entry& a, const cache_entry& b) {
    return a.hash == b.hash && a.linearized == b.linearized &&
           a.state == b.state;
  }
};

struct cache_hash {
  size_t operator()(const cache_entry& e) const noexcept { return e.hash; }
};

// Wing & Gong's search over a list of call and return entries sorted by
// time, with Lowe's cache of (linearized set, state), as Porcupine's
// checkSingle. Entry 2i is operation i's call, 2i+1 its return; `unknown`
// operations return at infinity, and the search succeeds once every `ok`
// operation is linearized (an unknown one left out never took effect).
search_output search(const std::vector<operation>& ops, const model& m,
                     budget& b) {
  search_output out;
  const size_t n = ops.size();
  constexpr int64_t infinity = std::numeric_limits<int64_t>::max();
  auto time_of = [&](size_t entry) {
    const auto& op = ops[entry / 2];
    if (entry % 2 == 0) return op.invoke.count();
    if (op.status != op_status::ok || !op.ret) return infinity;
    return std::max(op.ret->count(), op.invoke.count());
  };
  std::vector<size_t> sorted(2 * n);
  for (size_t i = 0; i < 2 * n; ++i)
    sorted[i] = i;
  // At equal times calls come first: ops touching at one instant are
  // concurrent (a precedes b only if a.return < b.invoke).
  std::sort(sorted.begin(), sorted.end(), [&](size_t x, size_t y) {
    auto tx = time_of(x), ty = time_of(y);
    if (tx != ty) return tx < ty;
    if (x % 2 != y % 2) return x % 2 < y % 2;
    return x < y;
  });
  // A doubly linked list over the entries; `head` is a sentinel.
  constexpr size_t none = std::numeric_limits<size_t>::max();
  const size_t head = 2 * n;
  std::vector<size_t> next(2 * n + 1, none), prev(2 * n + 1, none);
  size_t last = head;
  for (size_t e : sorted) {
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  auto lift = [&](size_t i) {
    for (size_t e : {2 * i, 2 * i + 1}) {
      next[prev[e]] = next[e];
      if (next[e] != none) prev[next[e]] = prev[e];
    }
  };
  auto unlift = [&](size_t i) {
    for (size_t e : {2 * i + 1, 2 * i}) {
      next[prev[e]] = e;
      if (next[e] != none) prev[next[e]] = e;
    }
  };

  size_t remaining_ok = 0;
  for (const auto& op : ops)
    remaining_ok += op.status == op_status::ok ? 1 : 0;
  std::vector<uint64_t> linearized((n + 63) / 64, 0);
  uint64_t set_hash = 0;
  auto flip = [&](size_t i) {
    linearized[i / 64] ^= uint64_t{1} << (i % 64);
    set_hash ^= mix64(i);
  };
  std::unordered_set<cache_entry, cache_hash> cache;
  uint64_t cache_bytes = 0;
  struct frame {
    size_t op;
    std::string state_before;
  };
  std::vector<frame> stack;
  std::string state = m.init;
  std::hash<std::string> hash_state;

  size_t entry = next[head];
  for (;;) {
    if (remaining_ok == 0) {
      out.result = verdict::linearizable;
      for (const auto& f : stack)
        out.order.push_back(f.op);
      return out;
    }
    if (entry == none || entry % 2 == 1) {
      // A return reached before its operation was placed: backtrack.
      if (stack.size() > out.longest.size() || out.longest.empty()) {
        out.longest.clear();
        for (const auto& f : stack)
          out.longest.push_back(f.op);
        out.longest_state = state;
        out.blocked = entry == none ? n : entry / 2;
      }
      if (stack.empty()) {
        out.result = verdict::not_linearizable;
        return out;
      }
      auto top = std::move(stack.back());
      stack.pop_back();
      state = std::move(top.state_before);
      flip(top.op);
      unlift(top.op);
      if (ops[top.op].status == op_status::ok) ++remaining_ok;
      entry = next[2 * top.op];
      continue;
    }
    size_t i = entry / 2;
    if (!b.take()) return out; // out_of_budget
    auto next_state = m.step(state, ops[i]);
    if (next_state) {
      flip(i);
      cache_entry key{linearized, *next_state,
                      set_hash ^ (hash_state(*next_state) * 31)};
      size_t bytes = key.linearized.size() * 8 + key.state.size() + 64;
      if (cache.insert(std::move(key)).second) {
        cache_bytes += bytes;
        if (cache_bytes > b.max_cache_bytes) {
          b.steps_left = 0;
          return out; // out_of_budget
        }
        stack.push_back({i, std::move(state)});
        state = std::move(*next_state);
        lift(i);
        if (ops[i].status == op_status::ok) --remaining_ok;
        entry = next[head];
        continue;
      }
      flip(i);
    }
    entry = next[entry];
  }
}

bool by_invoke(const operation& a, const operation& b) {
  if (a.invoke != b.invoke) return a.invoke < b.invoke;
  return a.id < b.id;
}

// What is searched of a part: `fail` operations dropped, unknown ones that
// cannot change the state, and unknown ones whose effect nothing observed.
// The last rule keeps the search small: every unknown write is a branch
// (it took effect here, or later, or never), and a history recorded under
// faults has many. It is sound because an unknown operation may never have
// taken effect: if a linearization needs it, some operation saw its
// effect, and `explains` names every such pair.
std::vector<operation> searched_ops(const std::vector<operation>& ops,
                                    const model& m) {
  std::vector<operation> result;
  result.reserve(ops.size());
  for (const auto& op : ops) {
    if (op.status == op_status::fail) continue;
    if (op.status == op_status::unknown && m.read_only && m.read_only(op))
      continue;
    result.push_back(op);
  }
  if (m.explains) {
    auto seen_by_some = [&](const operation& u) {
      for (const auto& r : result)
        if (r.status == op_status::ok && m.explains(u, r)) return true;
      return false;
    };
    std::vector<bool> keep(result.size());
    for (size_t i = 0; i < result.size(); ++i)
      keep[i] =
          result[i].status != op_status::unknown || seen_by_some(result[i]);
    std::vector<operation> kept;
    kept.reserve(result.size());
    for (size_t i = 0; i < result.size(); ++i)
      if (keep[i]) kept.push_back(std::move(result[i]));
    result = std::move(kept);
  }
  // Invoke order: the report lists them so, and shrinking tries the
  // earliest first.
  std::sort(result.begin(), result.end(), by_invoke);
  return result;
}

// Whether dropping ops[drop] leaves some remaining reader without any
// remaining operation that explains what it observed.
bool only_explanation(const std::vector<operation>& ops, size_t drop,
                      const model& m) {
  if (!m.explains) return false;
  for (size_t r = 0; r < ops.size(); ++r) {
    if (r == drop || !m.explains(ops[drop], ops[r])) continue;
    bool other = false;
    for (size_t w = 0; w < ops.size() && !other; ++w)
      other = w != drop && w != r && m.explains(ops[w], ops[r]);
    if (!other) return true;
  }
  return false;
}

// Greedy shrinking: drop each operation in turn and keep the drop if the
// rest is still not linearizable; repeat until a pass drops nothing.
// `current` is failing on entry and on exit. Returns whether it finished
// (false: the budget ran out first).
bool shrink(std::vector<operation>& current, search_output& failing,
            const model& m, budget& b) {
  bool changed = true;
  while (changed) {
    changed = false;
    for (size_t i = 0; i < current.size();) {
      if (only_explanation(current, i, m)) {
        ++i;
        continue;
      }
      auto candidate = current;
      candidate.erase(candidate.begin() + static_cast<std::ptrdiff_t>(i));
      auto r = search(candidate, m, b);
      if (r.result == verdict::out_of_budget) return false;
      if (r.result == verdict::not_linearizable) {
        current = std::move(candidate);
        failing = std::move(r);
        changed = true;
      } else {
        ++i;
      }
    }
  }
  return true;
}

std::string format_ns(int64_t ns) {
  char buf[48];
  if (ns > -1'000'000 && ns < 1'000'000)
    std::snprintf(buf, sizeof(buf), "%+lldns", static_cast<long long>(ns));
  else
    std::snprintf(buf, sizeof(buf), "%+.6fms", static_cast<double>(ns) / 1e6);
  return buf;
}

std::string describe(const model& m, const operation& op) {
  if (m.describe) return m.describe(op);
  std::string out = op.what.kind + "(" + show_value(op.what.key);
  if (op.what.expected) out += ", " + show_value(op.what.expected);
  if (op.what.input) out += ", " + show_value(op.what.input);
  out += ") -> ";
  out += op.status == op_status::unknown ? "?" : show_value(op.output);
  return out;
}

std::string show_state(const model& m, std::string_view state) {
  return m.describe_state ? m.describe_state(state)
                          : show_value(std::string{state});
}

std::string part_label(const std::string& part) {
  return part.empty() ? std::string{"(the whole history)"} : "\"" + part + "\"";
}

// The failing part of the report: the shrunk operations with their times
// (relative to the first invoke shown), then the search's longest prefix.
std::string failure_report(const model& m, const check_result& r,
                           const operation* blocked, size_t part_size,
                           size_t parts) {
  std::string out = "not linearizable (" + m.name + " model): part " +
                    part_label(r.part) + "; " +
                    std::to_string(r.failing_parts.size()) + " of " +
                    std::to_string(parts) + " parts fail\n";
  out += "smallest failing set: " + std::to_string(r.smallest.size()) + " of " +
         std::to_string(part_size) + " operations of the part";
  out += r.shrink_complete
             ? " (dropping any other one makes it linearizable or hides "
               "where an observed value came from)\n"
             : " (shrinking incomplete)\n";
  int64_t t0 = r.smallest.empty() ? 0 : r.smallest.front().invoke.count();
  out += "times relative to t0 = " + std::to_string(t0) + "ns\n";
  size_t width = 0;
  for (const auto& op : r.smallest)
    width = std::max(width, std::min<size_t>(describe(m, op).size(), 48));
  for (const auto& op : r.smallest) {
    char head[64];
    std::snprintf(head, sizeof(head), "  #%-6llu client %-4llu ",
                  static_cast<unsigned long long>(op.id),
                  static_cast<unsigned long long>(op.client));
    out += head;
    auto text = describe(m, op);
    text.resize(std::max(text.size(), width), ' ');
    out += text;
    out += "  ";
    out += to_string(op.status);
    out += "  [" + format_ns(op.invoke.count() - t0) + ", " +
           (op.ret ? format_ns(op.ret->count() - t0) : std::string{"inf"}) +
           "]\n";
  }
  out += "longest linearizable prefix the search reached (" +
         std::to_string(r.longest_prefix.size()) + " operations), from state " +
         show_state(m, m.init) + ":\n";
  for (const auto& op : r.longest_prefix)
    out += "  #" + std::to_string(op.id) + " " + describe(m, op) + "\n";
  out += "state then: " + show_state(m, r.state_after_prefix);
  if (blocked)
    out += "; #" + std::to_string(blocked->id) + " " + describe(m, *blocked) +
           " returned before it could take effect\n";
  else
    out += "\n";
  return out;
}

} // namespace

check_result check(const history& h, const model& m,
                   const check_options& opts) {
  return check(h.operations(), m, opts);
}

check_result check(const std::vector<operation>& ops, const model& m,
                   const check_options& opts) {
  check_result result;
  if (!m.step) {
    result.outcome = check_outcome::not_linearizable;
    result.report = "model " + m.name + " has no step function\n";
    return result;
  }
  auto start = clock_type::now();
  std::optional<clock_type::time_point> deadline;
  if (opts.time_limit.count() > 0) deadline = start + opts.time_limit;

  std::vector<history_part> parts;
  if (m.partition)
    parts = m.partition(ops);
  else
    parts.push_back({"", ops});
  std::sort(parts.begin(), parts.end(),
            [](const history_part& a, const history_part& b) {
              return a.name < b.name;
            });

  budget b{opts.max_steps, deadline, opts.max_cache_bytes, 0};
  std::optional<std::string> timed_out_part;
  std::vector<operation> first_failing;
  search_output first_output;
  for (const auto& part : parts) {
    auto searched = searched_ops(part.ops, m);
    uint64_t before = b.steps_left;
    auto r = search(searched, m, b);
    result.steps += before - b.steps_left;
    if (r.result == verdict::out_of_budget) {
      if (!timed_out_part) timed_out_part = part.name;
      // A part that hit the cache bound zeroed the steps: the others get
      // no further search, so their verdict is unknown too.
      if (b.steps_left == 0) break;
      continue;
    }
    if (r.result == verdict::not_linearizable) {
      if (result.failing_parts.empty()) {
        result.part = part.name;
        first_failing = std::move(searched);
        first_output = std::move(r);
      }
      result.failing_parts.push_back(part.name);
      continue;
    }
    part_order order{part.name, {}};
    for (size_t i : r.order)
      order.ids.push_back(searched[i].id);
    result.orders.push_back(std::move(order));
  }

  if (!result.failing_parts.empty()) {
    // A definite violation beats parts that ran out of budget.
    result.outcome = check_outcome::not_linearizable;
    result.orders.clear();
    size_t part_size = first_failing.size();
    if (opts.shrink) {
      budget sb{opts.max_shrink_steps, deadline, opts.max_cache_bytes, 0};
      result.shrink_complete = shrink(first_failing, first_output, m, sb);
    }
    result.smallest = first_failing;
    for (size_t i : first_output.longest)
      result.longest_prefix.push_back(first_failing[i]);
    result.state_after_prefix = first_output.longest_state;
    if (result.longest_prefix.empty()) result.state_after_prefix = m.init;
    const operation* blocked = first_output.blocked < first_failing.size()
                                   ? &first_failing[first_output.blocked]
                                   : nullptr;
    result.report = failure_report(m, result, blocked, part_size, parts.size());
    if (timed_out_part)
      result.report += "(the search of part " + part_label(*timed_out_part) +
                       " ran out of budget)\n";
    return result;
  }
  if (timed_out_part) {
    result.outcome = check_outcome::timed_out;
    result.part = *timed_out_part;
    result.orders.clear();
    result.report = "timed out (" + m.name + " model): the search of part " +
                    part_label(result.part) + " hit its bound after " +
                    std::to_string(result.steps) +
                    " steps; no violation found in the parts checked\n";
    return result;
  }
  result.outcome = check_outcome::linearizable;
  result.report = "linearizable (" + m.name +
                  " model): " + std::to_string(parts.size()) + " parts, " +
                  std::to_string(ops.size()) + " operations, " +
                  std::to_string(result.steps) + " steps\n";
  return result;
}

} // namespace shardwire::sim
