// Seed sweeps: one simulated scenario run over many seeds, in parallel,
// with a wall-clock budget, reporting the first failing seed and the exact
// command that replays it.
//
//   sim::sweep_options opts;
//   opts.seeds = sim::seed_set::range(1, 500);
//   opts.determinism = true;                 // each seed twice, traces equal
//   auto r = sim::sweep(opts, [](uint64_t seed) {
//     sim::scenario sc{seed, {"client", "server"}};
//     ...                                     // no Catch2 macros in here
//     return sim::seed_outcome{done, sc->trace_text(), done ? "" :
//     sc.report()};
//   });
//   INFO(r.summary());
//   REQUIRE(r.passed());
//
// Threads: `sweep` blocks its caller. It runs the scenario on `jobs` worker
// threads of its own, never on the calling thread; every call of the
// scenario runs wholly on one worker thread, which is therefore the thread
// that creates, runs and destroys the seed's `network` (one network per
// seed, as network.hpp requires). Scenarios for different seeds run at the
// same time, so whatever they share must be thread-safe; Catch2's
// assertion macros are not, which is why a scenario reports through its
// return value and never asserts.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardwire::sim {

/// An ordered set of seeds: a range `A-B` (inclusive), `random:N[@BASE]`
/// (N distinct seeds below 2^32 drawn from BASE, run in ascending order) or
/// a single seed `N`. Indexing runs from the smallest seed to the largest.
class seed_set {
public:
  /// The most seeds one set may hold.
  static constexpr uint64_t max_size = 10'000'000;

  /// The empty set (a sweep refuses it).
  seed_set() = default;

  /// Seeds `first` to `last` inclusive. Throws std::invalid_argument when
  /// `first > last` or the range holds more than `max_size` seeds.
  static seed_set range(uint64_t first, uint64_t last);

  /// One seed.
  static seed_set single(uint64_t seed);

  /// `count` distinct seeds in [0, 2^32) drawn by a generator seeded with
  /// `base`: the same base gives the same seeds. Throws
  /// std::invalid_argument when `count` is 0 or above `max_size`.
  static seed_set random(uint64_t count, uint64_t base);

  /// Parses `A-B`, `random:N`, `random:N@BASE` or `N` (decimal, no
  /// signs or spaces). `random:N` draws its base from std::random_device;
  /// `text()` then names it, so the sweep can be repeated. On a bad spec
  /// returns nothing and sets `error` to one line naming what is wrong.
  static std::optional<seed_set> parse(std::string_view spec,
                                       std::string& error);

  size_t size() const noexcept;
  bool empty() const noexcept { return size() == 0; }
  /// The `i`-th smallest seed; `i < size()`.
  uint64_t operator[](size_t i) const noexcept;

  /// The spec that gives this set again: "1-200", "7", "random:50@1234".
  std::string text() const;

private:
  uint64_t first_ = 0;
  uint64_t count_ = 0;           // a range (random_ empty)
  std::vector<uint64_t> random_; // or these, ascending
  uint64_t base_ = 0;
  bool is_random_ = false;
};

/// What one run of a scenario for one seed gives back.
struct seed_outcome {
  /// The run passed its checks.
  bool ok = false;
  /// What determinism mode compares between the two runs of a seed, byte
  /// for byte: typically `network::trace_text()`, plus any output the run
  /// makes. Empty traces compare equal, so they check nothing.
  std::string trace;
  /// Why the run failed (e.g. `scenario::report()`); may span lines.
  std::string message;
};

/// A scenario: builds its own network (or `sim::scenario`) from `seed`,
/// runs it and says how it went. An exception it throws fails the seed,
/// with the exception's text as the message.
using sweep_scenario = std::function<seed_outcome(uint64_t seed)>;

struct sweep_options {
  /// The seeds to run; a sweep of the empty set throws std::invalid_argument.
  seed_set seeds;

  /// Worker threads; 0 means one per hardware thread (at least 1). Never
  /// more than there are seeds.
  unsigned jobs = 0;

  /// Wall-clock budget for the whole sweep; zero means none. Once it has
  /// passed no further seed is started (those are counted as not run, and
  /// `timed_out` is set); seeds already running are waited for, so a sweep
  /// can overrun by one seed's run time.
  std::chrono::steady_clock::duration time_limit{0};

  /// Runs every seed twice on its worker thread and fails it unless both
  /// runs pass and their traces are equal byte for byte; the message shows
  /// the first line where they differ.
  bool determinism = false;

  /// After a failure no seed above the lowest failing one is started; the
  /// seeds below it are all still run. Either way the reported failure is
  /// the lowest failing seed of those run, whatever the thread timing.
  bool stop_at_first_failure = true;

  /// When SHARDWIRE_SIM_SEED holds a number, the sweep runs that one seed
  /// instead of `seeds` (the replay of a reported failure), as
  /// `sim::scenario` lets that variable win over the seed in code.
  bool seed_from_env = true;

  /// The command that replays a seed, for the report. Unset: see
  /// `default_replay_command`.
  std::function<std::string(uint64_t seed)> replay_command;
};

/// The failure the sweep reports.
struct seed_failure {
  uint64_t seed = 0;
  std::string message;
  /// `replay_command(seed)`.
  std::string replay;
};

struct sweep_result {
  /// Seeds the sweep was asked to run (1 when the environment chose one).
  size_t seeds_total = 0;
  /// Seeds whose scenario ran to the end (both runs in determinism mode).
  size_t seeds_run = 0;
  size_t seeds_passed = 0;
  size_t seeds_failed = 0;
  /// The lowest failing seed among those run.
  std::optional<seed_failure> first_failure;
  /// Seeds never started: after the time limit or after a failure.
  size_t not_run = 0;
  /// The time limit passed before every seed was started.
  bool timed_out = false;
  /// Seeds were skipped because one failed (`stop_at_first_failure`).
  bool stopped_at_failure = false;
  /// SHARDWIRE_SIM_SEED replaced the seed set.
  bool seed_from_env = false;
  std::chrono::steady_clock::duration elapsed{0};
  unsigned jobs = 0;
  bool determinism = false;
  /// `seed_set::text()` of what was run.
  std::string seeds;

  /// No seed failed and at least one ran (a sweep cut short by its time
  /// limit still passes: it checked what it had time for).
  bool passed() const noexcept { return !first_failure && seeds_run > 0; }
  /// Every seed ran.
  bool complete() const noexcept { return not_run == 0; }

  /// A few lines for a log or a test's INFO: what ran, the failure with
  /// its message and replay command, what was not run and why. The last
  /// line is `passed: N of M seeds`, followed on failure by
  /// `, first failing seed K (replay: COMMAND)`.
  std::string summary() const;
};

/// Runs `scenario` for every seed of `opts.seeds` on `opts.jobs` threads and
/// returns once every started seed finished. Seeds are started in ascending
/// order. Throws std::invalid_argument for an empty seed set; never throws
/// because a scenario did.
sweep_result sweep(const sweep_options& opts, const sweep_scenario& scenario);

/// "SHARDWIRE_SIM_SEED=K PROGRAM ARGS...": the running program's own
/// command line (from /proc/self/cmdline, shell-quoted), prefixed with
/// SHARDWIRE_FAST_PATH=0 when that is set, since the delivery mode changes
/// traces.
std::string default_replay_command(uint64_t seed);

/// `text` quoted for a POSIX shell where it needs it.
std::string shell_quote(std::string_view text);

} // namespace shardwire::sim
