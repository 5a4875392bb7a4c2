// Starting, signalling and reaping one child process, without actors.
//
// Children are started with posix_spawn (glibc runs it as clone(CLONE_VM |
// CLONE_VFORK), so the cost does not grow with the parent's memory, and an
// exec failure comes back as an error code instead of a child that exits
// 127). Every descriptor the parent opens here is close-on-exec, so children
// spawned concurrently never inherit each other's pipes (which would keep a
// pipe from reaching EOF).
#pragma once

#include "transports/child_limits.hpp"
#include "transports/detail/child_cgroup.hpp"
#include "transports/pty_options.hpp"

#include <caf/expected.hpp>

#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace shardwire::detail {

/// What to connect one of the child's standard streams to.
enum class child_stream : uint8_t {
  pipe,    ///< a new pipe; the parent gets the other end
  inherit, ///< the parent's own descriptor
  devnull, ///< /dev/null
  merge,   ///< stderr only: the same as stdout
};

struct child_request {
  /// argv[0] is looked up in PATH when it holds no '/'.
  std::vector<std::string> argv;
  std::optional<std::string> cwd;
  /// Replaces the whole environment ("NAME=value" entries) when set.
  std::optional<std::vector<std::string>> env;
  child_stream in = child_stream::pipe;
  child_stream out = child_stream::pipe;
  child_stream err = child_stream::pipe;
  /// The child leads a new process group (pgid = pid).
  bool new_process_group = true;
  /// Limits and identity; with any set the child is started with fork +
  /// exec instead of posix_spawn (transports/detail/fork_exec.hpp).
  child_limits limits;
  /// A pseudo-terminal for the streams set to `pipe` (pty_options.hpp): the
  /// child leads a new session with it as controlling terminal.
  std::optional<pty_options> pty;
};

struct spawned_child {
  pid_t pid = -1;
  pid_t pgid = -1;
  /// Parent ends of the pipes (-1 where the stream is not a pipe): the
  /// write end of stdin, the read ends of stdout and stderr. With a pty:
  /// the terminal's master for stdout, a duplicate of it for stdin, none for
  /// stderr (its output arrives with stdout's).
  int stdio[3] = {-1, -1, -1};
  /// The child's own cgroup where child_limits::cgroup asked for one and
  /// one could be made: whoever reaps the child calls release() on it.
  std::shared_ptr<child_cgroup_dir> cgroup;
};

/// Starts a child. Errors: errno category (ENOENT for a missing program,
/// EACCES, EPERM for a limit or identity the kernel refused ...), with the
/// program name and the failed setting in the context; invalid_argument
/// for a child_limits value out of range.
caf::expected<spawned_child> spawn_child(const child_request& req);

/// pidfd_open(2); -1 with errno set where the kernel lacks it (< 5.3).
int open_pidfd(pid_t pid) noexcept;

/// Sends `signo` through a pidfd (never reaches a recycled pid).
int pidfd_signal(int pidfd, int signo) noexcept;

/// Reaps `pid` if it exited; returns asyncio's return code (exit status, or
/// minus the signal number), or nullopt while it runs. A child reaped by
/// someone else reads as 255, as in asyncio.
std::optional<int> try_reap(pid_t pid) noexcept;

/// SIGKILLs `pid` (and its group if `group`) and waits for it. For teardown
/// only: blocks until the kernel has killed it.
int kill_and_reap(pid_t pid, pid_t pgid, bool group) noexcept;

} // namespace shardwire::detail
