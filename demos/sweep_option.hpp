// The seed-sweep options of every program that simulates (netsim_demo,
// kv_cluster --simulate): --seeds, --jobs, --sweep-seconds and
// --determinism, their checks, and the sim::sweep_options they make. One
// place, so the programs accept and refuse the same values with the same
// words and replay a failing seed the same way.
#pragma once

#include "runtime/config.hpp"
#include "sim/sweep.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/config_option_adder.hpp>
#include <caf/config_option_set.hpp>
#include <caf/settings.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace demo {

/// The values of the sweep options, as CAF's parser fills them.
struct sweep_flags {
  static constexpr size_t max_jobs = 1024;
  static constexpr double max_sweep_seconds = 7 * 24 * 3600.0;

  std::string seeds;
  size_t jobs = 0;
  double sweep_seconds = 0;
  bool determinism = false;

  /// Declares the four options in the "global" group of `opts` (a
  /// config's custom_options_); `determinism_help` says what is compared.
  void declare(caf::config_option_set& opts, const char* determinism_help) {
    caf::config_option_adder{opts, "global"}
        .add(seeds, "seeds",
             "sweep over seeds A-B, random:N[@BASE] or N in parallel; exit 0 "
             "when every seed passes")
        .add(jobs, "jobs",
             "threads of a --seeds sweep (0 = one per hardware thread)")
        .add(sweep_seconds, "sweep-seconds",
             "wall-clock budget of a --seeds sweep: seeds not started by "
             "then are not run (0 = no limit)")
        .add(determinism, "determinism", determinism_help);
  }
};

/// True if option `name` was given on the command line.
inline bool option_given(const caf::actor_system_config& cfg,
                         std::string_view name) {
  return caf::get_if(&cfg.content, name) != nullptr;
}

/// For parse_args' validator: false after a line per refused option. Sets
/// `seeds` when --seeds was given and parses. The single-run option --seed
/// is refused beside --seeds.
inline bool check_sweep_flags(const caf::actor_system_config& cfg,
                              const sweep_flags& f,
                              std::optional<shardwire::sim::seed_set>& seeds) {
  using shardwire::check_option;
  bool ok = true;
  if (!option_given(cfg, "seeds")) {
    for (auto name : {"jobs", "sweep-seconds", "determinism"})
      if (option_given(cfg, name))
        ok &= check_option(false, name, "only with --seeds (a sweep)");
    return ok;
  }
  std::string error;
  seeds = shardwire::sim::seed_set::parse(f.seeds, error);
  ok &= check_option(seeds.has_value(), "seeds",
                     error + "; accepted: A-B, random:N[@BASE] or N");
  // CAF 0.17 reads --seed as a signed 64-bit integer: larger seeds could
  // not be replayed.
  constexpr auto max_seed =
      static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (seeds && !seeds->empty())
    ok &= check_option((*seeds)[seeds->size() - 1] <= max_seed, "seeds",
                       "seeds above " + std::to_string(max_seed) +
                           " cannot be replayed with --seed");
  ok &= check_option(!option_given(cfg, "seed"), "seed",
                     "not with --seeds (the sweep gives each run its seed)");
  ok &= check_option(f.jobs <= sweep_flags::max_jobs, "jobs",
                     std::to_string(f.jobs) +
                         " is out of range; accepted 0 "
                         "(one per hardware thread) to " +
                         std::to_string(sweep_flags::max_jobs));
  ok &= check_option(
      std::isfinite(f.sweep_seconds) && f.sweep_seconds >= 0 &&
          f.sweep_seconds <= sweep_flags::max_sweep_seconds,
      "sweep-seconds",
      "must be 0 (no limit) to " +
          std::to_string(static_cast<int>(sweep_flags::max_sweep_seconds)) +
          " seconds");
  return ok;
}

/// The sweep the flags ask for over `seeds`. A failing seed is replayed by
/// `program` followed by `replay_args(seed)` (e.g. " --seed=7"), prefixed
/// with SHARDWIRE_FAST_PATH=0 when this run has it: the replay must order
/// work as the sweep did. The program takes its seed from --seed only, so
/// SHARDWIRE_SIM_SEED does not narrow the sweep.
inline shardwire::sim::sweep_options
make_sweep_options(const sweep_flags& f, shardwire::sim::seed_set seeds,
                   const std::string& program,
                   std::function<std::string(uint64_t)> replay_args) {
  shardwire::sim::sweep_options opts;
  opts.seeds = std::move(seeds);
  opts.jobs = static_cast<unsigned>(f.jobs);
  opts.time_limit =
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(f.sweep_seconds));
  opts.determinism = f.determinism;
  opts.seed_from_env = false;
  std::string prefix;
  if (const char* fp = std::getenv("SHARDWIRE_FAST_PATH");
      fp != nullptr && std::string_view{fp} == "0")
    prefix = "SHARDWIRE_FAST_PATH=0 ";
  opts.replay_command = [prefix, program,
                         args = std::move(replay_args)](uint64_t seed) {
    return prefix + shardwire::sim::shell_quote(program) + args(seed);
  };
  return opts;
}

} // namespace demo
