#include "demos/kv_quorum/command.hpp"

#include "demos/kv_quorum/simulation.hpp"

#include "demos/sweep_option.hpp"

#include "actors/config.hpp"
#include "runtime/config.hpp"
#include "sim/sweep.hpp"

#include <cstdint>
#include <iostream>
#include <optional>
#include <string>

namespace kv_quorum {

namespace {

struct simulate_config : shardwire::config {
  uint64_t seed = 1;
  std::string bug;
  demo::sweep_flags sweep;

  simulate_config() {
    opt_group{custom_options_, "global"}
        .add(seed, "seed", "one simulated run with this seed (default 1)")
        .add(bug, "bug",
             "a deliberate bug the checker must catch: stale-read (gets "
             "return one replica's answer)");
    sweep.declare(custom_options_,
                  "with --seeds: run each seed twice and compare the traces");
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
  return demo::check_sweep_flags(cfg, cfg.sweep, seeds) && ok;
}

int run_sweep(const simulate_config& cfg, shardwire::sim::seed_set seeds,
              const std::string& program) {
  namespace sim = shardwire::sim;
  std::string bug = cfg.bug.empty() ? "" : " --bug=" + cfg.bug;
  auto opts = demo::make_sweep_options(
      cfg.sweep, std::move(seeds), program, [bug](uint64_t seed) {
        return " --simulate --seed=" + std::to_string(seed) + bug;
      });
  run_options ro;
  ro.stale_read_bug = cfg.bug == "stale-read";
  ro.keep_trace = cfg.sweep.determinism;
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
