// The orphan guard: no child outlives the program, however the program dies.
//
// A program that dies by SIGKILL (or any signal it does not handle) runs no
// destructor, so its transports never kill their children: without help the
// children, and their own children, keep running under PID 1. The guard is
// a small process forked the first time the program starts a child. It
// holds the read end of a pipe whose only write end is the program's; the
// kernel closes that end when the program dies, by any cause, and the guard
// then SIGKILLs every child it was told about, with its whole process group
// (children lead their own group by default, so grandchildren that stay in
// it go too), and exits.
//
// Guarantees:
//   - every child registered here and not yet reaped is killed within
//     milliseconds of the program's death, SIGKILL of the program included;
//   - a SIGKILL or Ctrl-C sent to the program's process group does not stop
//     the guard (it leads its own group and ignores the stop signals);
//   - a pid is forgotten before it is reaped, so the guard never kills a
//     recycled pid;
//   - registering never blocks (a full pipe drops the entry: a guard that is
//     that far behind is reported once by the log).
//   - where children have cgroups of their own (child_limits::cgroup), the
//     guard also kills each of the program's child cgroups whole
//     (cgroup.kill) and removes them: that catches grandchildren that left
//     the group (setsid, daemons).
// Not covered: a grandchild that leaves its group (setsid, setpgid) of a
// child without a cgroup, and a guard that is itself SIGKILLed by pid. The
// guard costs one process and one descriptor for the program's life, from its
// first child on; a program that never starts a child never starts the guard.
#pragma once

#include <sys/types.h>

namespace shardwire::detail {

/// Starts the guard if it does not run yet (idempotent, thread-safe). Call
/// before starting a child, so that the guard is there once the child is.
void start_orphan_guard() noexcept;

/// Registers a child just started: at the program's death the guard kills
/// `pgid` as a group when `pgid` > 0 (and `pid` itself in every case).
/// Starts the guard if needed; where it cannot start (fork fails) the log
/// says so once and children go unguarded.
void guard_child(pid_t pid, pid_t pgid) noexcept;

/// Forgets `pid`. Call after the child exited and before it is reaped.
void forget_child(pid_t pid) noexcept;

/// The guard's pid, or -1 while none runs (tests).
pid_t orphan_guard_pid() noexcept;

} // namespace shardwire::detail
