// Spawn-and-reap benchmark (issue 5; not run in CI; figures in
// docs/subprocess.md):
// 1. processes/s for `true` with stdin/stdout/stderr as pipes, through
//    shardwire's subprocess transport and through a plain loop of
//    pipe2 + posix_spawn + read-to-EOF + waitpid in the same run, with 1 and
//    with --inflight children at a time;
// 2. the cost of each subprocess option (env_merge, child_limits: the fork
//    path), as a ratio to no option, with --inflight children at a time;
// 3. churn: --churn children (default 1,000) through shardwire, then checks
//    that no descriptor leaked and no child (zombie or not) is left.
//
//   spawn_bench [--count=2000] [--inflight=16] [--churn=1000] [--shards=1]
//
// Ctrl-C (or SIGTERM) ends it at once with exit code 1
// (bench/stop_signal.hpp).
#include "bench/option_checks.hpp"
#include "bench/spawn_measure.hpp"
#include "bench/stop_signal.hpp"

#include "actors/config.hpp"
#include "runtime/runtime.hpp"
#include "tools/metrics_endpoint.hpp"

#include <cstdio>
#include <string>

using namespace shardwire;

namespace {

struct bench_config : config {
  size_t count = 2000;
  size_t inflight = 16;
  size_t churn = 1000;
  std::string program = "true";
  bench_config() {
    opt_group{custom_options_, "global"}
        .add(count, "count,n", "processes per measurement")
        .add(inflight, "inflight,i", "children running at once")
        .add(churn, "churn", "children in the churn check (0: skip)")
        .add(program, "program", "what to run (no arguments)");
    shards = 1;
  }
};

} // namespace

// Beyond these a run takes days or runs out of processes (children at
// once) before it measures anything.
constexpr size_t max_count = 10'000'000;
constexpr size_t max_inflight = 1024;

int main(int argc, char** argv) {
  bench::stop_on_signal();
  bench_config cfg;
  auto valid = [&] {
    bool ok = bench::check_range(cfg.count, 1, max_count, "count");
    ok &= bench::check_range(cfg.inflight, 1, max_inflight, "inflight");
    ok &= bench::check_range(cfg.churn, 0, max_count, "churn", " (0: skip)");
    ok &= check_option(bench::runnable(cfg.program), "program",
                       "'" + cfg.program.substr(0, 200) +
                           "' is not an executable file (in PATH)");
    return ok;
  };
  if (auto rc = parse_args(cfg, argc, argv, valid)) return *rc;
  runtime rt{cfg};
  auto metrics = serve_metrics_option(rt, cfg, [](std::string_view line) {
    std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
  });
  if (!metrics) return 1;
  std::printf("spawn_bench: %zu x `%s` (stdin/stdout/stderr as pipes), "
              "%zu shard(s)\n\n",
              cfg.count, cfg.program.c_str(), rt.shard_count());
  // The measurements are shared with echo_bench --suite=spawn
  // (bench/spawn_measure.*).
  auto rows =
      bench::measure_spawn(rt, cfg.program, cfg.count, {1, cfg.inflight});
  bench::print_spawn(rows);
  int rc = 0;
  for (auto& r : rows)
    if (r.failed > 0) rc = 1;
  std::printf("\n");
  auto costs =
      bench::measure_option_costs(rt, cfg.program, cfg.count, cfg.inflight);
  bench::print_option_costs(costs, cfg.inflight);
  for (auto& c : costs)
    if (c.failed > 0) rc = 1;
  if (cfg.churn > 0) {
    auto churn = bench::spawn_churn(rt, cfg.program, cfg.churn, cfg.inflight);
    std::printf("\n");
    bench::print_churn(churn);
    if (!churn.ok()) rc = 1;
  }
  return rc;
}
