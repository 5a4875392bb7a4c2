// Telling the service manager how this program is doing, the systemd way
// (sd_notify(3)), without linking libsystemd: one datagram per call to the
// socket named by $NOTIFY_SOCKET ("@name" is the abstract namespace).
//
// The runtime uses it on its own (runtime.hpp): when $WATCHDOG_USEC is set
// (and $WATCHDOG_PID is unset or this process), a health check posts a
// no-op to every shard every half interval and sends WATCHDOG=1 only when
// every shard ran the previous one, so a shard stuck in a handler stops the
// pings and systemd restarts the program; `shutdown` sends STOPPING=1.
// Programs send READY=1 themselves once they serve (runtime::notify_ready).
//
// Outside systemd (no $NOTIFY_SOCKET) every call is a no-op returning false.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace shardwire::sd {

/// Sends `state` (newline-separated "KEY=VALUE" lines, e.g. "READY=1\n
/// STATUS=serving") to $NOTIFY_SOCKET. False when the variable is unset or
/// malformed or the send failed. Thread-safe; never blocks.
bool notify(std::string_view state) noexcept;

/// The watchdog interval systemd expects pings within: $WATCHDOG_USEC when
/// it is a positive number and $WATCHDOG_PID is unset or this process's
/// pid; nullopt otherwise.
std::optional<std::chrono::microseconds> watchdog_interval() noexcept;

} // namespace shardwire::sd
