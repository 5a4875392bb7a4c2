// The load generator spread over worker processes, so that a machine with
// many cores can drive a server with many shards: each worker is a forked
// process with its own epoll loop and its own share of the connections; the
// parent collects each worker's counts and latency samples over a pipe.
#pragma once

#include "bench/load_generator.hpp"

#include <cstddef>
#include <vector>

namespace bench {

/// Runs `opts` split over `procs` worker processes: connections (and a
/// `requests` limit) divided as evenly as possible, all workers released at
/// once after every one has been forked. Worker i is pinned to
/// `cpus[i % cpus.size()]` when `cpus` is not empty. Returns the merged
/// result: counts summed, latency samples concatenated, `seconds` the longest
/// worker's. A worker that dies counts its connections as failed.
/// `procs <= 1` runs the load in this process (`run_load`). Forks: call it
/// from a process without other threads.
load_result run_load_procs(const load_options& opts, size_t procs,
                           const std::vector<int>& cpus);

} // namespace bench
