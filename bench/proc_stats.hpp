// Process statistics read from /proc, for the benchmark's CPU and memory
// figures.
#pragma once

#include <sys/types.h>

namespace bench {

/// User + system CPU seconds consumed so far by process `pid` (all threads),
/// to the nanosecond where the process CPU clock can be read.
double cpu_seconds(pid_t pid);

/// Resident set size of `pid` in bytes.
long rss_bytes(pid_t pid);

/// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft
/// limit.
long raise_fd_limit();

} // namespace bench
