// A supervised OS process as an actor: the building block for supervising
// subprocess fleets (actors/supervisor.hpp treats it like any child actor).
//
// The process child actor is the subprocess protocol of one child process.
// It adds what a supervisor needs on top of the subprocess transport:
// - graceful stop: an exit message (e.g. the supervisor's user_shutdown) is
//   trapped; the child's whole process group gets `stop_signal`, and SIGKILL
//   after `stop_timeout`; the actor then exits with the reason it was asked
//   to exit with. Its group is killed when the child exits, so grandchildren
//   never outlive it (kill_group_on_exit);
// - exit reasons a supervisor can judge: `normal` after a status listed in
//   `success_statuses` (exit status 0 by default), sw_errc::process_failed
//   ("exit status 3", "signal 9") otherwise, and the
//   spawn error (ENOENT ...) when the program could not be started;
// - readiness: `on_ready` runs once the child printed a line containing
//   `ready_line`, or once it has run for `ready_after` (whichever is set;
//   immediately after the spawn when neither is), or, with `notify`, once
//   it sent READY=1 the systemd way;
// - liveness, with `notify` and `watchdog`: a child that stops sending
//   WATCHDOG=1 is killed and the actor ends with sw_errc::watchdog_timeout;
//   with a `liveness` probe (a command or a TCP connect) that keeps
//   failing, with sw_errc::liveness_failed;
// - output as messages: every line (or chunk) of stdout/stderr goes to
//   `subscriber` as `process_output`, in order per stream. Each message holds
//   read credit until the subscriber handled it, so a chatty child is
//   stopped by its pipe, not buffered without bound.
//
// The actor is pinned to one shard together with its transport and pipes.
#pragma once

#include "actors/supervisor.hpp"
#include "transports/subprocess.hpp"

#include <caf/actor.hpp>

#include <chrono>
#include <csignal>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace shardwire {

/// A log file for one output stream, with size rotation as supervisord's
/// stdout_logfile / stdout_logfile_maxbytes / stdout_logfile_backups
/// (transports/detail/rotating_log.hpp): `path` holds the newest output,
/// `path.1` ... `path.<backups>` the older files.
struct process_log_file {
  std::string path;
  /// Rotate before a write would take the file past this; 0: never.
  uint64_t max_bytes = uint64_t{50} << 20;
  /// Old files kept; 0: the file is emptied instead of rotated.
  uint32_t backups = 10;
};

/// A liveness probe, as Kubernetes' livenessProbe: from readiness on, every
/// `interval` one probe runs; after `failure_threshold` failures in a row
/// the child is killed as for a missed watchdog (`watchdog_signal`, SIGKILL
/// after `stop_timeout`) and the actor ends with sw_errc::liveness_failed,
/// naming the probe and the last failure. Set exactly one kind.
struct liveness_probe {
  /// `/bin/sh -c command`, passing when it exits 0 within `timeout` (it
  /// runs under coreutils' `timeout -s KILL`).
  std::optional<std::string> command;
  /// Or a TCP connect to tcp_host:tcp_port within `timeout`.
  std::string tcp_host = "127.0.0.1";
  std::optional<uint16_t> tcp_port;
  std::chrono::milliseconds interval{10'000};
  std::chrono::milliseconds timeout{1'000};
  uint32_t failure_threshold = 3;
};

/// Whose notifications a `notify` child's socket takes (systemd's
/// NotifyAccess=).
enum class notify_access : uint8_t {
  /// Any process that knows the socket, so `systemd-notify` started from a
  /// shell script works (the default here).
  all,
  /// Only the child itself, by the sender pid the kernel reports
  /// (SO_PASSCRED); others' datagrams are dropped. systemd's default for
  /// Type=notify.
  main,
};

struct process_spec {
  /// Name used in output messages and logs.
  std::string id;
  std::vector<std::string> argv;
  /// stdin defaults to /dev/null; stdout/stderr to pipes; a new process
  /// group per child (always: the group is what gets stopped).
  subprocess_options options = [] {
    subprocess_options o;
    o.stdin_ = stdio::devnull;
    return o;
  }();
  /// Return codes that count as success, as asyncio reports them (the
  /// exit status, or minus the signal number): the actor then exits
  /// `normal`, so a transient child is not restarted (systemd's
  /// SuccessExitStatus=, supervisord's exitcodes=). Any other code ends it
  /// with sw_errc::process_failed.
  std::vector<int> success_statuses{0};
  int stop_signal = SIGTERM;
  std::chrono::milliseconds stop_timeout{5000};
  /// Gets `process_output`; none: output is read and dropped.
  caf::actor subscriber;
  /// The child's output, byte for byte as it arrives, also goes to these
  /// files (appended; opened before the child starts, and a file that
  /// cannot be opened fails the start, naming it). With
  /// `options.stderr_ = stdio::stdout_` stderr is merged into stdout_log.
  /// Written on the child's shard thread (regular files: the page cache).
  std::optional<process_log_file> stdout_log;
  std::optional<process_log_file> stderr_log;
  /// Split output into lines (a line longer than max_line is cut there).
  bool split_lines = true;
  size_t max_line = 64 * 1024;
  std::optional<std::string> ready_line;
  std::optional<std::chrono::milliseconds> ready_after;
  /// systemd's Type=notify (sd_notify(3)): the child gets NOTIFY_SOCKET
  /// and counts as ready when it sends READY=1 (`ready_line` and
  /// `ready_after` are then not used). STATUS=... goes to `subscriber` as
  /// `process_status`; STOPPING=1 and MAINPID= are logged. A program
  /// written for Type=notify runs unchanged. Without `notify` the child
  /// does not inherit the program's own NOTIFY_SOCKET / WATCHDOG_USEC (it
  /// must not notify the program's supervisor in its name).
  bool notify = false;
  notify_access notify_from = notify_access::all;
  /// With `notify`, systemd's WatchdogSec=: the child gets WATCHDOG_USEC,
  /// and once ready it must send WATCHDOG=1 at least this often (a
  /// WATCHDOG_USEC=... from the child changes the interval). When it does
  /// not, or sends WATCHDOG=trigger, its group gets `watchdog_signal`, then
  /// SIGKILL after `stop_timeout`, and the actor ends with
  /// sw_errc::watchdog_timeout (a transient child is restarted).
  std::optional<std::chrono::milliseconds> watchdog;
  int watchdog_signal = SIGABRT;
  /// Optional liveness probe (see liveness_probe); works with or without
  /// `notify`.
  std::optional<liveness_probe> liveness;
  /// Under a supervisor: how long a child with `ready_line` (or `notify`)
  /// may take to print it (send READY=1) before the start counts as failed.
  std::chrono::milliseconds ready_timeout{30'000};
};

/// Starts `spec` as a process child on a shard of `rt` and returns its
/// handle at once; the spawn itself happens on that shard (a spawn failure
/// ends the actor with the spawn error). `on_ready` (may be empty) is called
/// once, on the shard thread, when the child counts as ready. `on_extend`
/// (may be empty) is called when a `notify` child that is starting or
/// stopping sends EXTEND_TIMEOUT_USEC=, with that time: whoever waits for
/// its readiness should wait at least that much longer. While stopping,
/// the child's own SIGKILL after `stop_timeout` moves the same way.
caf::actor
spawn_process_child(runtime& rt, process_spec spec,
                    std::function<void()> on_ready = nullptr,
                    std::function<void(caf::timespan)> on_extend = nullptr);

/// A supervisor child spec (actors/supervisor.hpp) running `spec` as an OS
/// process child. Readiness by ready line or minimum run time is reported to
/// the supervisor with `child_ready`, EXTEND_TIMEOUT_USEC= with
/// `child_extend_timeout`; the supervisor's shutdown grace is the
/// child's own stop timeout plus one second, so the SIGTERM -> SIGKILL
/// escalation always runs before CAF's kill. `rt` must outlive the
/// supervisor.
child_spec process_child_spec(runtime& rt, process_spec spec,
                              restart_type restart = restart_type::permanent);

} // namespace shardwire
