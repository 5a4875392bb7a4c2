#include "runtime/config.hpp"

#include <caf/timespan.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string_view>
#include <thread>

namespace shardwire {

runtime_config::runtime_config() {
  if (const char* env = std::getenv("SHARDWIRE_FAST_PATH"))
    fast_path = std::string_view{env} != "0";
  opt_group{custom_options_, "global"}
      .add(shards, "shards,s", "number of shards (0 = one per hardware thread)")
      .add(log_level, "log-level", "quiet, error, warning, info or debug");
  opt_group{custom_options_, "shardwire"}
      .add(max_throughput, "max-throughput",
           "messages an actor handles per turn before yielding its shard")
      .add(read_chunk_size, "read-chunk-size", "bytes per socket read")
      .add(read_high_water, "read-high-water",
           "pause reading above this many unprocessed bytes at the protocol")
      .add(read_low_water, "read-low-water",
           "resume reading at this many unprocessed bytes")
      .add(fast_path, "fast-path",
           "deliver messages between idle co-located actors synchronously")
      .add(shutdown_grace_ms, "shutdown-grace-ms",
           "ms to wait for protocols to exit at shutdown before killing them");
  // shardwire runs its own I/O threads; keep CAF's worker pool small so the
  // two pools do not oversubscribe the machine.
  set("scheduler.max-threads",
      std::max<size_t>(2, std::thread::hardware_concurrency() / 2));
  // An idle CAF worker wakes up every relaxed-sleep-duration (CAF: 10 ms)
  // to try to steal work: ~100 timed waits per second per worker in a
  // process with nothing to do, each preempting the shard thread on its
  // core (measured: ~1.5 % of a busy 1-shard server's CPU). New work wakes
  // a sleeping worker at once whatever the value; only stealing from a
  // busy worker's backlog waits for the timeout.
  set("work-stealing.relaxed-sleep-duration",
      caf::timespan{std::chrono::milliseconds{100}});
  // Debian's CAF prints a startup banner at this level otherwise.
  set("logger.console", caf::atom("none"));
}

size_t runtime_config::effective_shards() const {
  if (shards > 0) return shards;
  auto n = std::thread::hardware_concurrency();
  return n > 0 ? n : 1;
}

std::optional<int> parse_args(runtime_config& cfg, int argc, char** argv) {
  if (auto err = cfg.parse(argc, argv)) {
    std::cerr << "error: " << caf::to_string(err) << " (see --help)\n";
    return 1;
  }
  if (cfg.cli_helptext_printed) return 0;
  return std::nullopt;
}

} // namespace shardwire
