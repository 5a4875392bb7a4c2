// One run of a process child's liveness probe (process_spec::liveness):
// a shell command that must exit 0, or a TCP connect that must succeed,
// each within the probe's timeout. Private to transports/.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace shardwire {
class runtime;
class shard;
struct liveness_probe;
} // namespace shardwire

namespace shardwire::detail {

/// Why `probe` is malformed (none set, both set, a zero interval, timeout
/// or threshold), or nullopt.
std::optional<std::string> probe_problem(const liveness_probe& probe);

/// Starts one probe on `home` and calls `done(passed, what)` once, on a
/// shard thread: `what` names the probe and, on failure, why ("command
/// `curl -f ...` exited 22", "tcp 127.0.0.1:8080: connection refused",
/// "... timed out after 1000 ms"). A command probe runs under coreutils'
/// `timeout -s KILL`, so a hung command is killed at the timeout.
void run_probe(runtime& rt, shard& home, const liveness_probe& probe,
               std::function<void(bool passed, std::string what)> done);

} // namespace shardwire::detail
