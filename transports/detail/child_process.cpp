#include "transports/detail/child_process.hpp"

#include "actors/errors.hpp"
#include "transports/detail/fork_exec.hpp"
#include "transports/detail/orphan_guard.hpp"

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace shardwire::detail {

namespace {

// Closes every descriptor it holds unless released.
struct fd_guard {
  std::vector<int> fds;
  ~fd_guard() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
};

// posix_spawn's C objects, destroyed on every path.
struct spawn_objects {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  spawn_objects() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~spawn_objects() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

std::vector<char*> c_strings(const std::vector<std::string>& xs) {
  std::vector<char*> out;
  out.reserve(xs.size() + 1);
  for (auto& x : xs)
    out.push_back(const_cast<char*>(x.c_str()));
  out.push_back(nullptr);
  return out;
}

} // namespace

caf::expected<spawned_child> spawn_child(const child_request& req) {
  if (req.argv.empty() || req.argv[0].empty())
    return make_error(sw_errc::invalid_argument, "empty argv");
  if (req.in == child_stream::merge || req.out == child_stream::merge)
    return make_error(sw_errc::invalid_argument,
                      "only stderr can be merged into stdout");
  caf::expected<resolved_limits> limits{resolved_limits{}};
  if (req.limits.any()) {
    limits = resolve_limits(req.limits);
    if (!limits) return std::move(limits.error());
  }
  spawn_objects so;
  fork_exec_request forked; // the same plan, for the fork + exec path
  fd_guard child_ends;      // closed in the parent once the child has them
  spawned_child out;
  fd_guard parent_ends;
  const child_stream modes[3] = {req.in, req.out, req.err};
  for (int i = 0; i < 3; ++i) {
    switch (modes[i]) {
    case child_stream::pipe: {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) return make_errno_error(errno, "pipe2");
      // stdin: the child reads p[0]; stdout/stderr: the child writes p[1].
      int child_end = i == 0 ? p[0] : p[1];
      int parent_end = i == 0 ? p[1] : p[0];
      child_ends.fds.push_back(child_end);
      parent_ends.fds.push_back(parent_end);
      out.stdio[i] = parent_end;
      // dup2 clears close-on-exec on the child's copy.
      posix_spawn_file_actions_adddup2(&so.actions, child_end, i);
      forked.stdio[i] = {stdio_action::dup_fd, child_end};
      break;
    }
    case child_stream::inherit:
      break;
    case child_stream::devnull:
      posix_spawn_file_actions_addopen(&so.actions, i, "/dev/null",
                                       i == 0 ? O_RDONLY : O_WRONLY, 0);
      forked.stdio[i] = {stdio_action::devnull, -1};
      break;
    case child_stream::merge:
      posix_spawn_file_actions_adddup2(&so.actions, 1, 2);
      forked.stdio[i] = {stdio_action::merge, -1};
      break;
    }
  }
  if (req.cwd)
    posix_spawn_file_actions_addchdir_np(&so.actions, req.cwd->c_str());
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  // The child starts with no blocked signals and default dispositions (the
  // parent ignores SIGPIPE; a child must not inherit that).
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&so.attr, &none);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigdefault(&so.attr, &all);
  if (req.new_process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&so.attr, 0);
  }
  posix_spawnattr_setflags(&so.attr, flags);
  // The guard exists before the first child does: a program killed right
  // after this spawn still has it.
  start_orphan_guard();
  auto argv = c_strings(req.argv);
  std::vector<char*> envp;
  if (req.env) envp = c_strings(*req.env);
  char** env = req.env ? envp.data() : environ;
  std::string ctx = "spawn " + req.argv[0];
  if (req.limits.any()) {
    forked.argv = &req.argv;
    forked.envp = env;
    forked.cwd = req.cwd ? &*req.cwd : nullptr;
    forked.new_process_group = req.new_process_group;
    forked.limits = &*limits;
    // fork_exec registers the child with the orphan guard itself.
    auto pid = fork_exec(forked, ctx);
    if (!pid) return std::move(pid.error());
    out.pid = *pid;
    out.pgid = req.new_process_group ? *pid : ::getpgrp();
    parent_ends.fds.clear();
    return out;
  }
  pid_t pid = -1;
  int rc = req.argv[0].find('/') == std::string::npos
               ? ::posix_spawnp(&pid, argv[0], &so.actions, &so.attr,
                                argv.data(), env)
               : ::posix_spawn(&pid, argv[0], &so.actions, &so.attr,
                               argv.data(), env);
  if (rc != 0) {
    if (req.cwd) ctx += " (cwd " + *req.cwd + ")";
    return make_errno_error(rc, std::move(ctx));
  }
  out.pid = pid;
  out.pgid = req.new_process_group ? pid : ::getpgrp();
  // Killed with its group if the program dies before reaping it; a child in
  // the program's own group is killed alone.
  guard_child(pid, req.new_process_group ? pid : 0);
  parent_ends.fds.clear(); // handed to the caller
  return out;
}

int open_pidfd(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
#else
  errno = ENOSYS;
  return -1;
#endif
}

int pidfd_signal(int pidfd, int signo) noexcept {
#ifdef SYS_pidfd_send_signal
  return static_cast<int>(
      ::syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

namespace {

// Waits (or, unless `block`, looks) for `pid`'s exit without reaping it;
// false while it runs. Between this and the reap the pid cannot be
// recycled, so the orphan guard forgets it in that window.
bool exited_unreaped(pid_t pid, bool block) noexcept {
  siginfo_t info;
  for (;;) {
    info.si_pid = 0;
    int rc = ::waitid(P_PID, static_cast<id_t>(pid), &info,
                      WEXITED | WNOWAIT | (block ? 0 : WNOHANG));
    if (rc == 0) return info.si_pid != 0;
    if (errno != EINTR) return true; // ECHILD: the reap below reports it
  }
}

} // namespace

std::optional<int> try_reap(pid_t pid) noexcept {
  if (!exited_unreaped(pid, false)) return std::nullopt;
  forget_child(pid);
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return std::nullopt;
  if (r < 0) return 255; // ECHILD: reaped by someone else (asyncio: 255)
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return std::nullopt; // stopped/continued: not an exit
}

int kill_and_reap(pid_t pid, pid_t pgid, bool group) noexcept {
  if (group && pgid > 0) ::kill(-pgid, SIGKILL);
  ::kill(pid, SIGKILL);
  exited_unreaped(pid, true);
  forget_child(pid);
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return 255;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

} // namespace shardwire::detail
