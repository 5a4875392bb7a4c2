// Limits, identity and scheduling of one child process, as systemd's
// LimitNOFILE= / User= / Nice= / UMask= or supervisord's user= / umask=.
//
// Guarantees:
//   - everything set here is applied in the child after fork and before
//     exec: the program runs under it from its first instruction (no window
//     in which it runs with the parent's limits or identity);
//   - a setting that the kernel refuses (no permission to change the user,
//     a limit above the hard limit, a nice value below the parent's without
//     CAP_SYS_NICE) fails the start like a missing program does: the error
//     names the setting and carries its errno, and no child is left;
//   - out-of-range values (`nice` outside -20..19, `umask` above 0777, an
//     unknown user name) are refused before anything is started, with
//     sw_errc::invalid_argument naming the field;
//   - with nothing set the child is started exactly as before (posix_spawn,
//     whose cost does not grow with the parent's memory). With anything set
//     it is started with fork + exec instead, whose cost grows with the
//     parent's page tables (bench/spawn_bench prints what each option costs).
//
// Order in the child: its cgroup, supplementary groups, gid, resource
// limits, nice, umask, then uid last (once the uid is dropped nothing else
// could be set).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace shardwire {

/// One cgroup v2 per child, as systemd gives one to each unit
/// (transports/detail/child_cgroup.hpp has the mechanics).
///
/// Guarantees, where the program may create cgroups under its own (a
/// writable cgroup v2 directory: root, or systemd's Delegate=yes):
///   - the child enters its cgroup before exec, so everything it ever forks
///     is in it, including processes that leave its process group (setsid,
///     daemons);
///   - closing or killing the child, its exit, the runtime's shutdown and
///     the program's death by any signal kill the whole cgroup at once
///     (`cgroup.kill`), then remove it: nothing it started survives it
///     (systemd's KillMode=control-group);
///   - a child killed by the kernel's OOM killer inside its memory.max is
///     reported as such (`exited::oom_killed`; a supervised child ends with
///     sw_errc::oom_killed);
///   - a limit set here whose controller the program's cgroup does not offer
///     fails the start with sw_errc::not_supported naming the field and the
///     controllers that are there; a cgroup asked for with no limit where no
///     cgroup can be created starts the child without one (the process
///     group still covers what stays in it) and the log says why, once.
struct child_cgroup {
  /// memory.max in bytes; above it the kernel reclaims, then OOM-kills.
  std::optional<uint64_t> memory_max;
  /// pids.max: fork fails in the child's tree beyond this many tasks.
  std::optional<uint64_t> pids_max;
  /// cpu.max as a share of CPUs (0.5: half of one CPU, 2: two CPUs), over
  /// a 100 ms period.
  std::optional<double> cpu_max;

  bool any_limit() const noexcept { return memory_max || pids_max || cpu_max; }
};

struct child_limits {
  /// setrlimit(2), soft and hard limit both set to the value.
  std::optional<uint64_t> open_files;    ///< RLIMIT_NOFILE
  std::optional<uint64_t> address_space; ///< RLIMIT_AS, bytes
  std::optional<uint64_t> cpu_seconds;   ///< RLIMIT_CPU (SIGXCPU, then SIGKILL)
  std::optional<uint64_t> core_size;     ///< RLIMIT_CORE, bytes (0: no core)

  /// Runs the child as this user: its uid, its primary gid and its
  /// supplementary groups (getpwnam + getgrouplist, read in the parent).
  /// `uid`, `gid` and `groups` below override the matching part.
  std::optional<std::string> user;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  /// Supplementary groups; an empty vector drops them all.
  std::optional<std::vector<gid_t>> groups;

  /// setpriority(2) for the child, -20 (first) .. 19 (last).
  std::optional<int> nice;
  /// The child's umask, 0 .. 0777.
  std::optional<mode_t> umask;

  /// A cgroup of its own (see child_cgroup above).
  std::optional<child_cgroup> cgroup;

  /// Whether anything is set (the fork path is taken only then).
  bool any() const noexcept {
    return open_files || address_space || cpu_seconds || core_size || user ||
           uid || gid || groups || nice || umask || cgroup;
  }
};

} // namespace shardwire
