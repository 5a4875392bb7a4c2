// One cgroup v2 per child: the directory, its limits, whole-tree kills and
// the OOM count (the guarantees are on child_cgroup, child_limits.hpp).
//
// Where: under the program's own cgroup, found once from /proc/self/cgroup
// ("0::/path") and the cgroup2 mount in /proc/self/mountinfo, used only when
// the program may write there (root, or a unit with systemd's Delegate=yes).
// Each child's cgroup is named "shardwire-<program pid>-<n>", so that the
// orphan guard can find and kill them all after the program died without
// being told each name.
//
// Limits need their controller in the program's cgroup.subtree_control; a
// controller offered by cgroup.controllers but not enabled yet is enabled on
// first use. Under the cgroup v2 rule that a non-root cgroup with processes
// cannot enable controllers for its children, that fails for a program that
// sits in its delegated cgroup itself: the error says so (systemd's
// DelegateSubgroup= moves the program into a leaf of its own).
#pragma once

#include "transports/child_limits.hpp"

#include <caf/expected.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace shardwire::detail {

/// Where the program may create child cgroups: `dir`, or why not.
struct cgroup_place {
  std::string dir;
  std::string why_not;
  bool ok() const noexcept { return why_not.empty(); }
};

/// Found once, on first use (thread-safe).
const cgroup_place& cgroup_base();

/// Tests: what cgroup_base() returns from now on.
void override_cgroup_base(cgroup_place place);

/// "shardwire-<pid>-": the prefix of every child cgroup of program `pid`.
std::string child_cgroup_prefix(pid_t program);

class child_cgroup_dir {
public:
  /// Creates the child's cgroup and writes its limits. Returns nullptr, and
  /// logs the reason once, where no cgroup can be made and no limit is set.
  /// Errors: sw_errc::not_supported (a limit without its controller, or no
  /// cgroup where a limit needs one), errno errors from the cgroup files;
  /// `context` names the program.
  static caf::expected<std::unique_ptr<child_cgroup_dir>>
  create(const child_cgroup& opts, const std::string& context);

  child_cgroup_dir(const child_cgroup_dir&) = delete;
  child_cgroup_dir& operator=(const child_cgroup_dir&) = delete;

  /// release() if it was not called.
  ~child_cgroup_dir();

  const std::string& path() const noexcept { return path_; }

  /// cgroup.procs opened for writing (close-on-exec): the child writes "0"
  /// to it between fork and exec to move itself in. -1 after close_procs().
  int procs_fd() const noexcept { return procs_fd_; }
  void close_procs() noexcept;

  /// SIGKILLs every process in the cgroup at once (cgroup.kill, Linux 5.14;
  /// before that each pid of cgroup.procs, until it is empty).
  void kill_all() noexcept;

  /// How many processes the OOM killer killed in it (memory.events'
  /// oom_kill); 0 where the memory controller is not enabled.
  uint64_t oom_kills() const noexcept;

  /// Kills what is left and removes the directory. Killed processes take a
  /// moment to exit: a directory still busy is removed by a later call (any
  /// create or release) or, at the latest, by the orphan guard at exit.
  void release() noexcept;

private:
  explicit child_cgroup_dir(std::string path) : path_(std::move(path)) {}

  std::string path_;
  int procs_fd_ = -1;
  bool released_ = false;
};

} // namespace shardwire::detail
