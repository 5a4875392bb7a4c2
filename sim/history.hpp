// A history of client operations on a (distributed) service: what each
// client asked, what it was told, and when. sim/linearizability.hpp checks
// such a history against a sequential model.
//
// Works the same for simulated runs (times are the simulation's virtual
// nanoseconds, sim::duration) and for real processes (times from any
// monotonic clock shared by the recording clients; `history::steady_now`
// is one). A history can be saved and loaded as JSON lines, one operation
// per line, so histories recorded elsewhere can be checked here.
//
// What a status means, exactly:
// - `ok`: the operation took effect exactly once, at one instant between
//   its invoke time and its return time; its output is what it observed.
// - `fail`: the operation certainly did not take effect (the service said
//   so, e.g. a refused write). It is dropped before checking.
// - `unknown`: the client never learned the outcome (a timeout, a crash, a
//   lost reply). The operation may have taken effect at any instant after
//   its invoke, or never: its return time is infinity and its output is
//   unconstrained. An unknown read changes nothing and may be dropped.
// An operation still pending when the history is read (never completed)
// counts as unknown.
//
// Real-time order: operation a precedes b iff a's return time is strictly
// less than b's invoke time; otherwise they are concurrent.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace shardwire::sim {

/// How an operation ended (see the header comment for the exact meaning).
enum class op_status { ok, fail, unknown };

/// "ok", "fail" or "unknown".
const char* to_string(op_status s) noexcept;

/// What a client asked for: kind, key and inputs, without the outcome.
///
/// Kinds of the built-in models (sim/linearizability.hpp): `read`,
/// `write`, `cas` on a plain register (empty key) and `get`, `put`,
/// `delete`, `cas` on a key-value store. A user's own model may use any
/// other non-empty kind.
struct call {
  std::string kind;
  /// Empty for a plain register.
  std::string key;
  /// The value written (`write`, `put`, the new value of `cas`); nothing
  /// means "absent" (a write of absent deletes).
  std::optional<std::string> input;
  /// `cas` only: the value expected before; nothing means "expects absent".
  std::optional<std::string> expected;

  static call read() { return {"read", {}, {}, {}}; }
  static call write(std::optional<std::string> v) {
    return {"write", {}, std::move(v), {}};
  }
  static call cas(std::optional<std::string> expected,
                  std::optional<std::string> v) {
    return {"cas", {}, std::move(v), std::move(expected)};
  }
  static call get(std::string key) { return {"get", std::move(key), {}, {}}; }
  static call put(std::string key, std::string v) {
    return {"put", std::move(key), std::move(v), {}};
  }
  static call del(std::string key) {
    return {"delete", std::move(key), {}, {}};
  }
  static call cas(std::string key, std::optional<std::string> expected,
                  std::optional<std::string> v) {
    return {"cas", std::move(key), std::move(v), std::move(expected)};
  }

  friend bool operator==(const call&, const call&) = default;
};

/// One operation of a history: the call, who made it, its outcome and its
/// times.
struct operation {
  /// Position in the history (0-based; the line number minus one in a
  /// JSON-lines file).
  uint64_t id = 0;
  uint64_t client = 0;
  call what;
  /// What the operation observed: the value a `read`/`get` returned
  /// (nothing: the key or register was absent). For `cas`, "false" means
  /// it found another value than expected and changed nothing; anything
  /// else (or nothing) means it applied. Ignored for writes and for
  /// `unknown` operations.
  std::optional<std::string> output;
  op_status status = op_status::unknown;
  std::chrono::nanoseconds invoke{0};
  /// Absent for `unknown` (infinity); present for `ok` and `fail`.
  std::optional<std::chrono::nanoseconds> ret;

  friend bool operator==(const operation&, const operation&) = default;
};

/// Bounds on what `read_jsonl` accepts (and `history` records).
inline constexpr size_t max_history_operations = 4'000'000;
inline constexpr size_t max_history_string_bytes = 1 << 20;
/// A line longer than this is refused before it is parsed.
inline constexpr size_t max_history_line_bytes = 4 << 20;

/// A history being recorded, or loaded from a file.
///
/// Thread-safe: every member may be called from any thread concurrently
/// (one mutex); clients running on several threads record into one
/// history. Times are whatever the caller passes, so they must come from
/// one clock shared by all recording clients.
class history {
public:
  history() = default;
  /// A history of these operations; their ids are reassigned to their
  /// positions.
  explicit history(std::vector<operation> ops);
  history(const history& other);
  history(history&& other) noexcept;
  history& operator=(history other) noexcept;

  /// Nanoseconds of std::chrono::steady_clock, a clock for recording real
  /// clients in one process.
  static std::chrono::nanoseconds steady_now() noexcept;

  // -- recording ------------------------------------------------------------

  /// Records that `client` invoked `c` at time `at`; returns the id to
  /// complete it with. The operation is pending (unknown) until completed.
  uint64_t invoke(uint64_t client, call c, std::chrono::nanoseconds at);

  /// Completes a pending operation as `ok` with what it observed. Returns
  /// false (and records nothing) for an unknown id, an operation already
  /// completed, or `at` before the invoke time.
  bool complete_ok(uint64_t id, std::optional<std::string> output,
                   std::chrono::nanoseconds at);

  /// Completes a pending operation as `fail`: it certainly did not take
  /// effect. Same refusals as `complete_ok`.
  bool complete_fail(uint64_t id, std::chrono::nanoseconds at);

  /// Completes a pending operation as `unknown`: its outcome will never be
  /// known. Returns false for an unknown id or one already completed.
  bool complete_unknown(uint64_t id);

  /// Appends a whole operation (its id becomes its position) and returns
  /// the id. An `ok`/`fail` operation without a return time, or with one
  /// before its invoke, is recorded as `unknown`.
  uint64_t add(operation op);

  // -- reading --------------------------------------------------------------

  /// A snapshot of all operations in id order; pending ones are `unknown`.
  std::vector<operation> operations() const;

  size_t size() const;

  /// Writes one JSON object per line (see `read_jsonl`), pending
  /// operations as unknown. Strings that are not valid UTF-8 are written
  /// with U+FFFD in place of the bad bytes (values are meant to be text).
  void write_jsonl(std::ostream& out) const;

private:
  mutable std::mutex mtx_;
  std::vector<operation> ops_;
  /// ops_[i] has not been completed yet.
  std::vector<bool> pending_;
};

/// The outcome of `read_jsonl`: a history, or why the input was refused.
struct read_result {
  std::optional<history> value;
  /// Empty on success; otherwise "line N: field: what is wrong".
  std::string error;
  /// The 1-based line of the error (0 on success or for an I/O error).
  size_t line = 0;

  explicit operator bool() const noexcept { return value.has_value(); }
};

/// Reads JSON lines, one operation per line:
///   {"client": 1, "kind": "put", "key": "x", "input": "1",
///    "status": "ok", "invoke": 100, "return": 250}
/// Fields: client (unsigned integer), kind (non-empty string), key
/// (string, default ""), input / expected / output (string or null,
/// default null = absent), status ("ok" | "fail" | "unknown"), invoke
/// (integer nanoseconds), return (integer nanoseconds >= invoke; required
/// for ok and fail, null or missing for unknown). Unknown fields are
/// refused. Blank lines are skipped; ids are the positions of the
/// operations. Refuses, naming the line and the field: bad JSON, a wrong
/// type, a missing field, a string over max_history_string_bytes, a line
/// over max_history_line_bytes, more than max_history_operations. Never
/// throws (but std::bad_alloc).
read_result read_jsonl(std::istream& in);

} // namespace shardwire::sim
