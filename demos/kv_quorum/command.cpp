#include "demos/kv_quorum/command.hpp"

#include "demos/kv_quorum/simulation.hpp"

#include "actors/config.hpp"
#include "runtime/config.hpp"
#include "sim/sweep.hpp"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace kv_quorum {

namespace {

constexpr size_t max_jobs = 1024;
constexpr double max_sweep_seconds = 7 * 24 * 3600.0;

struct simulate_config : shardwire::config {
  uint64_t seed = 1;
  std::string seeds;
  size_t jobs = 0;
  double sweep_seconds = 0;
  bool determinism = false;
  std::string bug;

  simulate_config() {
    opt_group{custom_options_, "global"}
        .add(seed, "seed", "one simulated run with this seed (default 1)")
        .add(seeds, "seeds",
             "sweep over seeds A-B, random:N[@BASE] or N in parallel; exit 0 "
             "when every history is linearizable")
        .add(jobs, "jobs",
             "threads of a --seeds sweep (0 = one per hardware thread)")
        .add(sweep_seconds, "sweep-seconds",
             "wall-clock budget of a --seeds sweep: seeds not started by "
             "then are not run (0 = no limit)")
        .add(determinism, "determinism",
             "with --seeds: run each seed twice and compare the traces")
        .add(bug, "bug",
             "a deliberate bug the checker must catch: stale-read (gets "
             "return one replica's answer)");
  }

  bool given(std::string_view name) const {
    return caf::get_if(&content, name) != nullptr;
  }
};

bool validate(const simulate_config& cfg,
              std::optional<shardwire::sim::seed_set>& seeds) {
  using shardwire::check_option;
  bool ok = shardwire::refuse_metrics_option(cfg);
  ok &= check_option(cfg.bug.empty() || cfg.bug == "stale-read", "bug",
                     "'" + cfg.bug +
                         "' is not a known bug; accepted: "
                         "stale-read");
  if (!cfg.given("seeds")) {
    for (auto name : {"jobs", "sweep-seconds", "determinism"})
      if (cfg.given(name))
        ok &= check_option(false, name, "only with --seeds (a sweep)");
    return ok;
  }
  std::string error;
  seeds = shardwire::sim::seed_set::parse(cfg.seeds, error);
  ok &= check_option(seeds.has_value(), "seeds",
                     error + "; accepted: A-B, random:N[@BASE] or N");
  // CAF 0.17 reads --seed as a signed 64-bit integer.
  constexpr auto max_seed =
      static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (seeds && !seeds->empty())
    ok &= check_option((*seeds)[seeds->size() - 1] <= max_seed, "seeds",
                       "seeds above " + std::to_string(max_seed) +
                           " cannot be replayed with --seed");
  ok &= check_option(!cfg.given("seed"), "seed",
                     "not with --seeds (the sweep gives each run its seed)");
  ok &= check_option(cfg.jobs <= max_jobs, "jobs",
                     "must be 0 (one per hardware thread) to " +
                         std::to_string(max_jobs));
  ok &= check_option(
      std::isfinite(cfg.sweep_seconds) && cfg.sweep_seconds >= 0 &&
          cfg.sweep_seconds <= max_sweep_seconds,
      "sweep-seconds",
      "must be 0 (no limit) to " +
          std::to_string(static_cast<int>(max_sweep_seconds)) + " seconds");
  return ok;
}

int run_sweep(const simulate_config& cfg, shardwire::sim::seed_set seeds,
              const std::string& program) {
  namespace sim = shardwire::sim;
  sim::sweep_options opts;
  opts.seeds = std::move(seeds);
  opts.jobs = static_cast<unsigned>(cfg.jobs);
  opts.time_limit =
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(cfg.sweep_seconds));
  opts.determinism = cfg.determinism;
  opts.seed_from_env = false; // --seed replays, not SHARDWIRE_SIM_SEED
  std::string prefix;
  if (const char* fp = std::getenv("SHARDWIRE_FAST_PATH");
      fp != nullptr && std::string_view{fp} == "0")
    prefix = "SHARDWIRE_FAST_PATH=0 ";
  std::string bug = cfg.bug.empty() ? "" : " --bug=" + cfg.bug;
  opts.replay_command = [&](uint64_t seed) {
    return prefix + sim::shell_quote(program) +
           " --simulate --seed=" + std::to_string(seed) + bug;
  };
  run_options ro;
  ro.stale_read_bug = cfg.bug == "stale-read";
  ro.keep_trace = cfg.determinism;
  auto result = sim::sweep(opts, [ro](uint64_t seed) {
    auto rep = run_seed(seed, ro);
    return sim::seed_outcome{rep.ok, std::move(rep.trace),
                             std::move(rep.message)};
  });
  std::cout << result.summary();
  std::cout << "linearizable: " << result.seeds_passed << " of "
            << result.seeds_run << " seeds";
  if (result.first_failure)
    std::cout << ", first failing seed " << result.first_failure->seed
              << " (replay: " << result.first_failure->replay << ")";
  std::cout << std::endl;
  return result.passed() ? 0 : 1;
}

} // namespace

int simulate_main(int argc, char** argv) {
  simulate_config cfg;
  std::optional<shardwire::sim::seed_set> seeds;
  // The word --simulate stands in for the program name in CAF's parser.
  if (auto rc = shardwire::parse_args(cfg, argc - 1, argv + 1,
                                      [&] { return validate(cfg, seeds); }))
    return *rc;
  if (seeds) return run_sweep(cfg, std::move(*seeds), argv[0]);
  run_options ro;
  ro.stale_read_bug = cfg.bug == "stale-read";
  ro.keep_trace = false;
  auto rep = run_seed(cfg.seed, ro);
  std::cout << (rep.ok ? rep.summary : rep.message);
  std::cout << "VERDICT: " << (rep.ok ? "PASS" : "FAIL") << " (seed "
            << cfg.seed << ")" << std::endl;
  return rep.ok ? 0 : 1;
}

} // namespace kv_quorum
