// Spawn-and-reap measurements: processes/s through shardwire's subprocess
// transport and through a plain posix_spawn + waitpid loop, and a churn check
// for leaked descriptors and unreaped children. Shared by spawn_bench and
// echo_bench --suite=spawn.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace shardwire {
class runtime;
} // namespace shardwire

namespace bench {

/// Whether `program` names an executable file, looked up in PATH as
/// posix_spawnp does when it has no '/'.
bool runnable(const std::string& program);

/// Descriptors open in this process now.
size_t open_fds();

/// Processes/s for `count` runs of `program` (no arguments, stdin/stdout/
/// stderr as pipes, read to EOF, reaped) with `inflight` children at a time,
/// by a plain loop of pipe2 + posix_spawnp + read + waitpid on this thread.
double spawn_plain_rate(const std::string& program, size_t count,
                        size_t inflight);

/// The same through `async_subprocess_exec` on `rt` (called from a thread
/// that is not one of its shards). Adds the spawns that failed to `*failed`
/// when given.
double spawn_shardwire_rate(shardwire::runtime& rt, const std::string& program,
                            size_t count, size_t inflight,
                            size_t* failed = nullptr);

struct spawn_row {
  size_t inflight = 0;
  double plain_per_s = 0;
  double shardwire_per_s = 0;
  size_t failed = 0;
};

/// Both rates for each entry of `inflights`, baseline first.
std::vector<spawn_row> measure_spawn(shardwire::runtime& rt,
                                     const std::string& program, size_t count,
                                     const std::vector<size_t>& inflights);

void print_spawn(const std::vector<spawn_row>& rows);

/// The cost of each subprocess option: the shardwire rate with it on, and
/// its ratio to the rate with no option (first row), in the same run.
struct option_cost {
  std::string option;
  double per_s = 0;
  size_t failed = 0;
};

std::vector<option_cost> measure_option_costs(shardwire::runtime& rt,
                                              const std::string& program,
                                              size_t count, size_t inflight);

void print_option_costs(const std::vector<option_cost>& rows, size_t inflight);

struct churn_result {
  size_t children = 0;
  double per_s = 0;
  size_t fds_before = 0;
  size_t fds_after = 0;
  /// waitpid(-1, WNOHANG) found no child of this process afterwards.
  bool no_children = false;
  size_t failed = 0;

  bool ok() const {
    // A leak is growth: a descriptor of the previous measurement that was
    // still closing when `fds_before` was counted makes after < before.
    return fds_after <= fds_before && no_children && failed == 0;
  }
};

/// Runs `children` x `program` through shardwire, `inflight` at a time, then
/// checks that no descriptor leaked and no child is left. Call it when this
/// process has no other children.
churn_result spawn_churn(shardwire::runtime& rt, const std::string& program,
                         size_t children, size_t inflight);

void print_churn(const churn_result& r);

} // namespace bench
