// Configuration of a shardwire program, built on CAF's configuration system.
//
// `runtime_config` is a `caf::actor_system_config`: command-line options use
// CAF's `--name=value` syntax (short forms `-x value`), `--help` prints CAF's
// generated help text, and programs add their own options with `opt_group`.
#pragma once

#include <caf/actor_system_config.hpp>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

namespace shardwire {

class runtime_config : public caf::actor_system_config {
public:
  runtime_config();

  /// Number of shards; 0 means one per hardware thread.
  size_t shards = 0;

  /// Messages a pinned actor handles per resume before yielding its shard.
  size_t max_throughput = 64;

  /// Bytes requested from the buffer pool for each socket read.
  size_t read_chunk_size = 64 * 1024;

  /// Read back-pressure: a transport stops reading while more than
  /// `read_high_water` bytes of `data` sit unprocessed at its protocol, and
  /// resumes at `read_low_water`.
  size_t read_high_water = 1024 * 1024;
  size_t read_low_water = 256 * 1024;

  /// Deliver messages between idle co-located pinned actors synchronously
  /// (see pinned.hpp). Default on; the environment variable
  /// SHARDWIRE_FAST_PATH=0 turns it off (the test suite runs both ways).
  bool fast_path = true;

  /// Global log level: quiet, error, warning, info, debug.
  std::string log_level = "warning";

  /// How long shutdown waits for protocol actors to exit after their `lost`
  /// before it terminates them, in milliseconds.
  size_t shutdown_grace_ms = 2000;

  /// Shard count after resolving 0 to the hardware thread count.
  size_t effective_shards() const;
};

/// Parses the command line into `cfg`. Returns nothing to continue, or the
/// exit code the program should return now: 0 after `--help` printed CAF's
/// help text, 1 (with a message on stderr) for a bad option.
std::optional<int> parse_args(runtime_config& cfg, int argc, char** argv);

} // namespace shardwire
