// Starting a child with fork + exec: the path for children whose limits or
// identity (transports/child_limits.hpp) posix_spawn cannot set.
//
// The child is a real fork (not vfork: it must call setrlimit, setuid and
// friends on its own copy of the process). Between fork and exec it calls
// only async-signal-safe functions, with every signal blocked until the
// dispositions are back to their defaults, so none of the parent's handlers
// runs in it. A failing step is reported to the parent through a
// close-on-exec pipe (which step, and its errno); the parent then reaps the
// child and returns the error, so a failed start leaves no process behind.
#pragma once

#include "transports/child_limits.hpp"

#include <caf/expected.hpp>

#include <string>
#include <sys/types.h>
#include <vector>

namespace shardwire::detail {

/// child_limits with the user name looked up and the ranges checked, ready
/// to be applied in the child without touching the heap.
struct resolved_limits {
  struct rlimit_entry {
    int resource;
    uint64_t value;
  };
  std::vector<rlimit_entry> rlimits;
  bool set_uid = false;
  uid_t uid = 0;
  bool set_gid = false;
  gid_t gid = 0;
  bool set_groups = false;
  std::vector<gid_t> groups;
  bool set_nice = false;
  int nice = 0;
  bool set_umask = false;
  mode_t umask = 0;
};

/// Looks up `user` (getpwnam, getgrouplist) and checks the ranges. Errors:
/// sw_errc::invalid_argument naming the field.
caf::expected<resolved_limits> resolve_limits(const child_limits& limits);

/// What to do with one standard stream in the child.
struct stdio_action {
  enum kind_t : uint8_t { keep, dup_fd, devnull, merge } kind = keep;
  int fd = -1; ///< dup_fd: the descriptor to put in place
};

struct fork_exec_request {
  const std::vector<std::string>* argv = nullptr;
  char** envp = nullptr;
  const std::string* cwd = nullptr; ///< null: the parent's
  stdio_action stdio[3];
  bool new_process_group = true;
  /// >= 0: the child leads a new session (instead of a new process group)
  /// with this descriptor, a terminal it has as one of its standard
  /// streams, as controlling terminal.
  int controlling_terminal = -1;
  const resolved_limits* limits = nullptr;
  /// A cgroup's cgroup.procs, open for writing: the child moves itself in
  /// first, so that everything it does after is counted there (-1: none).
  int cgroup_procs_fd = -1;
};

/// Forks, applies the request in the child and execs argv[0] (looked up in
/// PATH when it holds no '/'). Returns the child's pid once it has exec'd,
/// or the errno of the step that failed, with `context` and the step in
/// the message.
caf::expected<pid_t> fork_exec(const fork_exec_request& req,
                               const std::string& context);

} // namespace shardwire::detail
