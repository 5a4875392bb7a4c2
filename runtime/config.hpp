// Configuration of a shardwire program, built on CAF's configuration system.
//
// `runtime_config` is a `caf::actor_system_config`: command-line options use
// CAF's `--name=value` syntax (short forms `-x value`), `--help` prints CAF's
// generated help text on stderr, and programs add their own options with
// `opt_group`.
//
// Validation happens in one place, `parse_args`, before a program binds or
// prints anything: a value out of range, a contradictory pair, an unknown log
// level, a stray positional argument or a value CAF cannot parse is refused
// with one line per problem on stderr,
//   error: --NAME: what is wrong; accepted values (see --help)
// and the program exits with code 1.
#pragma once

#include <caf/actor_system_config.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace shardwire {

class runtime_config : public caf::actor_system_config {
public:
  runtime_config();

  /// Number of shards; 0 means one per hardware thread. At most
  /// `max_shards()`.
  size_t shards = 0;

  /// Messages a pinned actor handles per resume before yielding its shard.
  size_t max_throughput = 64;

  /// Bytes requested from the buffer pool for each socket read.
  size_t read_chunk_size = 64 * 1024;

  /// Read back-pressure: a transport stops reading while more than
  /// `read_high_water` bytes of `data` sit unprocessed at its protocol, and
  /// resumes at `read_low_water` (which must not exceed the high mark).
  size_t read_high_water = 1024 * 1024;
  size_t read_low_water = 256 * 1024;

  /// Hard cap on one stream transport's write buffer: a write that takes the
  /// unsent bytes past it aborts the connection, whose protocol gets
  /// `lost{sw_errc::write_buffer_overflow}` (see docs/flow-control.md).
  /// 0 = no cap.
  size_t write_buffer_cap = 64 * 1024 * 1024;

  /// Deliver messages between idle co-located pinned actors synchronously
  /// (see pinned.hpp). Default on; the environment variable
  /// SHARDWIRE_FAST_PATH=0 turns it off (the test suite runs both ways).
  bool fast_path = true;

  /// Collect the per-shard metrics on the data path (runtime/metrics.hpp).
  /// Default on; off skips every shard-side update but the stall count
  /// (`--shardwire.metrics-collect=false`), to measure what they cost.
  bool metrics_collect = true;

  /// `--shardwire.metrics-collect=true|false` as given (empty: not given);
  /// `parse_args` sets `metrics_collect` from it. A text option because
  /// CAF 0.17's command line takes a boolean option only as a flag (its
  /// presence means true), so `=false` could not be written otherwise.
  std::string metrics_collect_option;

  /// Stall detector: a shard handler that runs longer than this many
  /// milliseconds is logged with the actor that runs and a backtrace of the
  /// shard thread taken while it is stuck (docs/metrics.md). 0 = off.
  size_t stall_ms = 0;

  /// `--metrics=HOST:PORT`: where the program serves Prometheus' /metrics
  /// (tools/metrics_endpoint.hpp; port 0 picks a free one). Empty = off,
  /// the default. Checked by `parse_args`; served by the program, since the
  /// HTTP server is a tool above the runtime.
  std::string metrics;

  /// Global log level: quiet, error, warning, info, debug.
  std::string log_level = "warning";

  /// How long shutdown waits for protocol actors to exit after their `lost`
  /// before it terminates them, in milliseconds.
  size_t shutdown_grace_ms = 2000;

  /// Shard count after resolving 0 to the hardware thread count.
  size_t effective_shards() const;
};

/// The largest shard count `--shards` accepts on this machine: 16 per
/// hardware thread, and no more than the open-file limit allows (each shard
/// holds a few descriptors; at most a sixteenth of the limit goes to them so
/// that connections keep the rest).
size_t max_shards();

/// Prints `error: --NAME: MESSAGE (see --help)` on stderr unless `ok`, and
/// returns `ok`. For program-specific checks inside a `parse_args`
/// validator: `return check_option(port != 0, "port", "must be 1-65535");`.
bool check_option(bool ok, std::string_view name, std::string_view message);

/// For a program that runs no shardwire runtime of its own (a simulation,
/// a benchmark driving other processes): refuses `--metrics`, which it
/// could not serve, naming the option; true when it was not given.
bool refuse_metrics_option(const runtime_config& cfg);

/// Checks the options every shardwire program has (shards, log level, read
/// watermarks, ...); prints one error line per problem, returns true if none.
bool validate_runtime_options(const runtime_config& cfg);

/// Parses the command line into `cfg` with CAF's parser and validates it.
/// Returns nothing to continue, or the exit code the program should return
/// now: 0 after `--help` printed CAF's help text (on stderr), 1 after error
/// lines on stderr for a value CAF cannot parse, a stray positional
/// argument, or a value `validate` refuses (it prints its own lines, with
/// `check_option`, and returns false). Works for any CAF config; for a
/// `runtime_config` use the overload below, which adds the runtime checks.
std::optional<int> parse_options(caf::actor_system_config& cfg, int argc,
                                 char** argv,
                                 const std::function<bool()>& validate = {});

/// `parse_options` plus `validate_runtime_options`.
std::optional<int> parse_args(runtime_config& cfg, int argc, char** argv,
                              const std::function<bool()>& validate = {});

} // namespace shardwire
