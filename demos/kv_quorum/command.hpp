// `kv_cluster --simulate`: the quorum store under the simulator, one seed
// or a sweep (demos/kv_quorum/simulation.hpp, sim/sweep.hpp).
//
//   kv_cluster --simulate [--seed=K] [--bug=stale-read]
//   kv_cluster --simulate --seeds=A-B|random:N[@BASE]|N [--jobs=N]
//              [--sweep-seconds=S] [--determinism] [--bug=stale-read]
//
// A sweep prints sim::sweep's summary and then, as its last line,
// `linearizable: N of N seeds` (exit 0), or `linearizable: P of N seeds,
// first failing seed K (replay: COMMAND)` (exit 1). One seed prints its
// summary (and on failure the checker's report and the fault schedule),
// then `VERDICT: PASS (seed K)` or `VERDICT: FAIL (seed K)`.
#pragma once

namespace kv_quorum {

/// Runs the simulate mode. `argv[0]` is the program (for the replay
/// command), `argv[1]` the word "--simulate", then the options. Returns
/// the exit code.
int simulate_main(int argc, char** argv);

} // namespace kv_quorum
