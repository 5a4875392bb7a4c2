// Checks a history (sim/history.hpp) for linearizability against a
// sequential model: is there one order of the operations, consistent with
// their real-time order, in which the model accepts every operation with
// the output it returned?
//
// The search is Wing & Gong's, with Lowe's memoization as in Porcupine:
// operations are tried in order of invocation, backtracking when an
// operation's return is reached before it could be placed, and a cache of
// (set of linearized operations, model state) prunes every configuration
// already explored. A model that splits a history into independent parts
// (the key-value model: one part per key) has each part checked alone,
// which turns one exponential search into many small ones.
//
// Complexity: exponential in the number of mutually concurrent operations
// of one part in the worst case, near-linear for histories with little
// concurrency. Each configuration costs one model step and a cache entry
// of n/8 bytes (n: operations in the part); `check_options` bounds steps,
// wall-clock time and cache memory, and a check that hits a bound answers
// `timed_out` instead of hanging.
//
// Pure functions of their arguments; no threads. Safe to call from several
// threads at once on different (or the same const) histories.
#pragma once

#include "sim/history.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardwire::sim {

/// A named part of a history, checked independently of the others.
struct history_part {
  std::string name;
  std::vector<operation> ops;
};

/// A sequential specification.
///
/// States are strings: a user's model encodes its state however it likes
/// (a serialized struct, a sorted list), and the memoization cache gets
/// hashing and equality for free, with no templates leaking into this
/// interface. The built-in models encode "absent" as "" and a value v as
/// "=" + v.
struct model {
  std::string name;
  /// The state before any operation (of every part).
  std::string init;
  /// The state after `op` applied in `state`, or nothing if `op` cannot
  /// return its output in `state` (or is not an operation of this model).
  /// For an `unknown` operation the output must be ignored. Required.
  std::function<std::optional<std::string>(std::string_view state,
                                           const operation& op)>
      step;
  /// Optional: splits the operations (in id order) into parts that are
  /// independent for this model (the key-value model: by key). Without
  /// it, the history is one part named "".
  std::function<std::vector<history_part>(const std::vector<operation>&)>
      partition;
  /// Optional: one line for an operation, e.g. "put(x, 1)" or
  /// "get(x) -> absent". Without it, a generic form is used.
  std::function<std::string(const operation&)> describe;
  /// Optional: a state for the report. Without it, the string itself.
  std::function<std::string(std::string_view state)> describe_state;
  /// Optional: true for operations that never change the state; such an
  /// operation with status `unknown` is dropped before checking.
  std::function<bool(const operation&)> read_only;
  /// Optional: true if `writer` could have produced what `reader`
  /// observed (a write of the value a read returned). Shrinking keeps at
  /// least one explaining operation for each remaining reader, so a stale
  /// read's report still shows where its value came from. With it, an
  /// `unknown` operation that explains no `ok` operation is dropped before
  /// the search (it may never have taken effect, and nothing shows it
  /// did), so it must name every pair where the reader's output could
  /// depend on the writer's effect, or a linearizable history may be
  /// refused.
  std::function<bool(const operation& writer, const operation& reader)>
      explains;
};

/// One register: `read` (output: the value, nothing = absent), `write`
/// (input; nothing = absent), `cas` (expected -> input; output "false":
/// it found another value and changed nothing, else it applied). Every
/// operation is on the one register, whatever its key. Starts as
/// `initial` (default absent).
model register_model(std::optional<std::string> initial = std::nullopt);

/// A key-value store: `get`, `put`, `delete`, `cas` (as the register's
/// read, write, write of absent, cas), each key independent and starting
/// absent. Parts are the keys.
model kv_model();

/// Bounds of one `check` call.
struct check_options {
  /// Model steps over the search of all parts together.
  uint64_t max_steps = 20'000'000;
  /// Wall-clock bound for the search and the shrinking together; zero
  /// means none.
  std::chrono::milliseconds time_limit{10'000};
  /// Bound on the memoization cache of one part, in bytes (approximate).
  uint64_t max_cache_bytes = uint64_t{1} << 30;
  /// Shrink a failing part to a smaller failing set for the report.
  bool shrink = true;
  /// Model steps for all shrinking searches together.
  uint64_t max_shrink_steps = 5'000'000;
};

enum class check_outcome { linearizable, not_linearizable, timed_out };

/// "linearizable", "not linearizable" or "timed out".
const char* to_string(check_outcome o) noexcept;

/// A valid linearization of one part: operation ids in the order they
/// took effect. `unknown` operations appear only if they took effect in
/// that order; `fail` operations never appear.
struct part_order {
  std::string part;
  std::vector<uint64_t> ids;
};

/// What `check` found.
struct check_result {
  check_outcome outcome = check_outcome::linearizable;
  /// not_linearizable: the first failing part (in name order); timed_out:
  /// the part whose search hit a bound.
  std::string part;
  /// not_linearizable: every part found failing (name order).
  std::vector<std::string> failing_parts;
  /// not_linearizable: the failing part shrunk (see `shrink_complete`),
  /// sorted by invoke time, then id.
  std::vector<operation> smallest;
  /// True if dropping any one operation of `smallest` (that is not the
  /// only explanation of another's output) makes it linearizable; false
  /// if shrinking stopped at its budget or was disabled.
  bool shrink_complete = false;
  /// not_linearizable: the longest sequence of `smallest` the search could
  /// linearize, in its order, and the state it led to.
  std::vector<operation> longest_prefix;
  std::string state_after_prefix;
  /// linearizable: a valid order for every part (name order).
  std::vector<part_order> orders;
  /// Model steps of the search (without shrinking).
  uint64_t steps = 0;
  /// A readable multi-line account (for every outcome).
  std::string report;
};

/// Checks `ops` (a history's operations, ids as in the history) against
/// `m`. Never throws (but std::bad_alloc).
check_result check(const std::vector<operation>& ops, const model& m,
                   const check_options& opts = {});

/// Checks a snapshot of `h` (pending operations count as unknown).
check_result check(const history& h, const model& m,
                   const check_options& opts = {});

} // namespace shardwire::sim
