// Subprocess transports (asyncio's subprocess_exec / subprocess_shell): a
// child process driven by one transport actor, its stdin/stdout/stderr pipes
// as pipe transports on the same shard, and a protocol actor per child.
//
// Lifecycle, as in asyncio (section 4 of the semantics notes):
// - the child is spawned first; a spawn failure (missing program, no
//   permission, bad cwd) is reported to `done` as an errno error and no
//   protocol is ever created;
// - then the protocol gets `subprocess_connected`; no pipe is read before it
//   handled it;
// - output arrives as `pipe_data{fd}`, the end of each pipe as `pipe_lost{fd}`,
//   the exit as `exited{status}` (minus the signal number for a signal
//   death), and `lost` comes last, after the exit and every pipe's end;
// - `close` closes the pipes and SIGKILLs a child that still runs; when the
//   protocol actor dies the transport does the same.
//
// Reaping: a pidfd per child (Linux >= 5.3) watched on the shard's
// io_context; where the kernel has no pidfd, SIGCHLD through Asio's signal
// handling, with a waitpid(pid, WNOHANG) per child (never waitpid(-1), so
// children started by other code are left to it). Signals go through the
// pidfd, or to a pid this transport has not reaped yet, so never to a
// recycled pid; after the exit they are refused (sw_errc::process_exited).
//
// Runtime shutdown kills (SIGKILL) and reaps every child that still runs,
// with its whole process group when it has its own.
#pragma once

#include "actors/subprocess_protocol.hpp"
#include "transports/child_limits.hpp"
#include "transports/pty_options.hpp"

#include <caf/expected.hpp>
#include <caf/optional.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace shardwire {

class runtime;

/// Where one of the child's standard streams goes.
enum class stdio : uint8_t {
  pipe,    ///< a pipe to the transport (asyncio.subprocess.PIPE)
  inherit, ///< the parent's stream (None)
  devnull, ///< /dev/null (DEVNULL)
  stdout_, ///< stderr only: into stdout's pipe or file (STDOUT)
};

/// How the transport learns that its child exited.
enum class child_watcher : uint8_t {
  automatic, ///< pidfd where the kernel has it, SIGCHLD otherwise
  pidfd,
  sigchld,
};

struct subprocess_options {
  /// Working directory of the child (default: the parent's).
  std::optional<std::string> cwd;
  /// The child's whole environment as "NAME=value" (default: inherited).
  std::optional<std::vector<std::string>> env;
  /// Applied on top of `env` (or of the inherited environment): "NAME=value"
  /// sets NAME, a bare "NAME" removes it. Later entries win.
  std::vector<std::string> env_merge;
  /// rlimits, user / groups, nice, umask (transports/child_limits.hpp).
  child_limits limits;
  stdio stdin_ = stdio::pipe;
  stdio stdout_ = stdio::pipe;
  stdio stderr_ = stdio::pipe;
  /// The child leads a new process group, so a group signal also reaches
  /// its descendants (default on; asyncio's process_group=0).
  bool new_process_group = true;
  /// When the child exits, SIGKILL what is left of its process group before
  /// reaping it (no grandchild outlives it). Needs new_process_group.
  bool kill_group_on_exit = false;
  /// Runs the child on a pseudo-terminal: the streams set to stdio::pipe
  /// are the terminal, its output arrives on fd 1 (transports/
  /// pty_options.hpp). The child leads a session of its own.
  std::optional<pty_options> pty;
  child_watcher watcher = child_watcher::automatic;
  /// Shard of the transport and its pipes (default: least loaded).
  caf::optional<size_t> shard;
};

/// A running child: its transport and protocol actors, on `info.shard`.
struct subprocess {
  subprocess_transport_actor transport;
  subprocess_protocol_actor protocol;
  process_info info;
};

/// Called once: with the child after its protocol handled
/// `subprocess_connected`, or with the error. Runs on a shard thread.
using subprocess_callback = std::function<void(caf::expected<subprocess>)>;

/// Starts `argv` (no shell; argv[0] looked up in PATH unless it has a '/').
void async_subprocess_exec(runtime& rt, std::vector<std::string> argv,
                           subprocess_protocol_factory factory,
                           subprocess_options opts, subprocess_callback done);

/// Starts `/bin/sh -c cmd`.
void async_subprocess_shell(runtime& rt, std::string cmd,
                            subprocess_protocol_factory factory,
                            subprocess_options opts, subprocess_callback done);

/// Blocking variants; must not be called on a shard thread.
caf::expected<subprocess> subprocess_exec(runtime& rt,
                                          std::vector<std::string> argv,
                                          subprocess_protocol_factory factory,
                                          subprocess_options opts = {});
caf::expected<subprocess> subprocess_shell(runtime& rt, std::string cmd,
                                           subprocess_protocol_factory factory,
                                           subprocess_options opts = {});

} // namespace shardwire
